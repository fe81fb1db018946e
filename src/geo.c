/*
 * geo.c — the country of a destination address: CIDR overrides (most specific wins), then a
 * MaxMind DB file through libmaxminddb (MMDB_MODE_MMAP). Invariants: an opened bg_geo_t is
 * never written again (but for its atomic refcount), so lookups from any thread need no lock;
 * a lookup allocates nothing;
 * every failure (bad sockaddr, database error, odd value) ends as "" (unknown), never as a
 * guess. Addresses are handled in one 16-byte form: IPv4 (and IPv4-mapped IPv6) as
 * ::ffff:a.b.c.d. The per-worker cache is a two-way set-associative table owned by one loop
 * thread.
 */
#include "geo.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct bg_geo {
    atomic_int refcount; /* the only field written after open */
    MMDB_s mmdb;
    bg_geo_schema_t schema; /* MAXMIND, DBIP, or AUTO = try both */
    bool registered_fallback;
    char type[128];
    int64_t build_epoch;
};

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ---- addresses --------------------------------------------------------------------- */

/* sockaddr → 16-byte form; 0, or -1 for NULL / another family. */
static int addr_norm(const struct sockaddr *sa, uint8_t a[16])
{
    if (!sa)
        return -1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        memcpy(a, v4mapped_prefix, 12);
        memcpy(a + 12, &s4->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        memcpy(a, &s6->sin6_addr, 16);
        return 0;
    }
    return -1;
}

static bool addr_is_v4(const uint8_t a[16]) { return memcmp(a, v4mapped_prefix, 12) == 0; }

/* Do the first `bits` bits of x and y agree? */
static bool prefix_eq(const uint8_t *x, const uint8_t *y, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (full && memcmp(x, y, (size_t)full) != 0)
        return false;
    if (rest) {
        uint8_t mask = (uint8_t)(0xff << (8 - rest));
        if ((x[full] ^ y[full]) & mask)
            return false;
    }
    return true;
}

/* A CIDR in the 16-byte form: IPv4 a.b.c.d/p becomes ::ffff:a.b.c.d/(96+p), so IPv4 nets and
 * ::ffff:0:0/96 nets written as IPv6 match the same addresses. Returns the prefix in that
 * form, or -1 for an invalid CIDR (never matches). */
static int cidr_norm(const bg_cidr_t *net, uint8_t a[16])
{
    if (net->family == AF_INET) {
        if (net->prefix < 0 || net->prefix > 32)
            return -1;
        memcpy(a, v4mapped_prefix, 12);
        memcpy(a + 12, net->addr, 4);
        return 96 + net->prefix;
    }
    if (net->family == AF_INET6) {
        if (net->prefix < 0 || net->prefix > 128)
            return -1;
        memcpy(a, net->addr, 16);
        return net->prefix;
    }
    return -1;
}

/* The most specific override containing a, or NULL. An override whose country is not two
 * letters still wins (and yields unknown): it never falls through to the database. */
static const bg_geo_override_t *override_find(const bg_geo_override_t *ov, size_t nov, const uint8_t a[16])
{
    const bg_geo_override_t *best = NULL;
    int best_prefix = -1;
    for (size_t i = 0; i < nov; i++) {
        uint8_t net[16];
        int p = cidr_norm(&ov[i].net, net);
        if (p > best_prefix && prefix_eq(net, a, p)) {
            best = &ov[i];
            best_prefix = p;
        }
    }
    return best;
}

/* Copy a two-letter code, upper-cased; false (and "") unless it is two ASCII letters.
 * "ZZ" is DB-IP's "unassigned" marker: unknown, not a country. */
static bool country_set(char country[3], const char *p, size_t n)
{
    country[0] = 0;
    if (n != 2)
        return false;
    char c[2];
    for (int i = 0; i < 2; i++) {
        c[i] = p[i];
        if (c[i] >= 'a' && c[i] <= 'z')
            c[i] = (char)(c[i] - 'a' + 'A');
        if (c[i] < 'A' || c[i] > 'Z')
            return false;
    }
    if (c[0] == 'Z' && c[1] == 'Z')
        return false;
    country[0] = c[0];
    country[1] = c[1];
    country[2] = 0;
    return true;
}

/* ---- database ---------------------------------------------------------------------- */

static const char *const path_iso[] = {"country", "iso_code", NULL};
static const char *const path_registered[] = {"registered_country", "iso_code", NULL};
static const char *const path_code[] = {"country_code", NULL};

static bool entry_country(MMDB_entry_s *e, const char *const *path, char country[3])
{
    MMDB_entry_data_s d;
    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING)
        return false;
    return country_set(country, d.utf8_string, d.data_size);
}

static bool db_country(const bg_geo_t *geo, const uint8_t a[16], char country[3])
{
    union {
        struct sockaddr sa;
        struct sockaddr_in s4;
        struct sockaddr_in6 s6;
    } u;
    memset(&u, 0, sizeof u);
    if (addr_is_v4(a)) {
        u.s4.sin_family = AF_INET;
        memcpy(&u.s4.sin_addr, a + 12, 4);
    } else {
        u.s6.sin6_family = AF_INET6;
        memcpy(&u.s6.sin6_addr, a, 16);
    }
    int mmdb_err = MMDB_SUCCESS;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(&geo->mmdb, &u.sa, &mmdb_err);
    if (mmdb_err != MMDB_SUCCESS || !r.found_entry)
        return false;
    if (geo->schema != BG_GEO_SCHEMA_DBIP) {
        if (entry_country(&r.entry, path_iso, country))
            return true;
        if (geo->registered_fallback && entry_country(&r.entry, path_registered, country))
            return true;
    }
    if (geo->schema != BG_GEO_SCHEMA_MAXMIND && entry_country(&r.entry, path_code, country))
        return true;
    country[0] = 0;
    return false;
}

static int lookup_norm(const bg_geo_t *geo, const bg_geo_override_t *ov, size_t nov, const uint8_t a[16],
                       char country[3])
{
    const bg_geo_override_t *o = override_find(ov, nov, a);
    if (o)
        return country_set(country, o->country, strnlen(o->country, 3)) ? 0 : 1;
    if (geo && db_country(geo, a, country))
        return 0;
    country[0] = 0;
    return 1;
}

int bg_geo_lookup(const bg_geo_t *geo, const bg_geo_override_t *ov, size_t nov, const struct sockaddr *sa,
                  char country[3])
{
    uint8_t a[16];
    if (addr_norm(sa, a) != 0) {
        country[0] = 0;
        return 1;
    }
    return lookup_norm(geo, ov, nov, a, country);
}

static bool starts_with_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static bg_geo_schema_t schema_detect(const char *type)
{
    if (starts_with_ci(type, "GeoIP2") || starts_with_ci(type, "GeoLite2") || starts_with_ci(type, "GeoIP-"))
        return BG_GEO_SCHEMA_MAXMIND;
    /* ip-location-db (sapics) names its files "country ipv4", "country ipv6", "country ipvAll". */
    if (starts_with_ci(type, "country ipv"))
        return BG_GEO_SCHEMA_DBIP;
    /* DB-IP's own downloads ("DBIP-Country-Lite") use the GeoIP2 layout, repackagers use
     * country_code: anything else gets both, iso_code first. */
    return BG_GEO_SCHEMA_AUTO;
}

/* Walk a few addresses so that a file with valid metadata but a broken tree or data section
 * fails at open, with a message, rather than answering "unknown" for everything later. */
static int probe(const bg_geo_t *geo, char *err, size_t errlen, const char *path)
{
    static const char *const probes[] = {"8.8.8.8", "1.1.1.1", "127.0.0.1", "2001:4860:4860::8888", "::1"};
    for (size_t i = 0; i < BG_ARRAY_SIZE(probes); i++) {
        struct sockaddr_storage ss;
        if (bg_geo_parse_addr(probes[i], &ss) != 0)
            continue;
        if (ss.ss_family == AF_INET6 && geo->mmdb.metadata.ip_version == 4)
            continue;
        int mmdb_err = MMDB_SUCCESS;
        MMDB_lookup_result_s r = MMDB_lookup_sockaddr(&geo->mmdb, (struct sockaddr *)&ss, &mmdb_err);
        if (mmdb_err != MMDB_SUCCESS) {
            snprintf(err, errlen, "geoip database '%s': lookup of %s failed: %s", path, probes[i],
                     MMDB_strerror(mmdb_err));
            return -1;
        }
        if (r.found_entry) {
            MMDB_entry_data_list_s *list = NULL;
            int rc = MMDB_get_entry_data_list(&r.entry, &list);
            MMDB_free_entry_data_list(list);
            if (rc != MMDB_SUCCESS) {
                snprintf(err, errlen, "geoip database '%s': bad data record for %s: %s", path, probes[i],
                         MMDB_strerror(rc));
                return -1;
            }
        }
    }
    return 0;
}

int bg_geo_open(const char *path, bg_geo_schema_t schema, bool registered_fallback, bg_geo_t **out,
                char *err, size_t errlen)
{
    bg_geo_t *geo = NULL;
    bool opened = false;
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    if (out)
        *out = NULL;
    if (!out || !path || !*path) {
        snprintf(err, errlen, "geoip database: no path given");
        return -1;
    }
    /* Messages quote the path as the config's do: printable ASCII only, so that a name with a
     * newline cannot forge a second FILE:LINE:COL line. */
    char shown[160];
    size_t sn = 0;
    for (const char *p = path; *p && sn + 4 < sizeof shown; p++)
        shown[sn++] = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f ? *p : '?';
    if (strlen(path) > sn)
        memcpy(shown + sn, "...", 3), sn += 3;
    shown[sn] = 0;
    const char *raw = path;
    path = shown;
    struct stat st;
    if (stat(raw, &st) != 0) {
        snprintf(err, errlen, "geoip database '%s': %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "geoip database '%s': not a regular file%s", path,
                 S_ISDIR(st.st_mode) ? " (a directory)" : "");
        return -1;
    }
    if (st.st_size == 0) {
        snprintf(err, errlen, "geoip database '%s': empty file", path);
        return -1;
    }
    if (schema != BG_GEO_SCHEMA_AUTO && schema != BG_GEO_SCHEMA_MAXMIND && schema != BG_GEO_SCHEMA_DBIP) {
        snprintf(err, errlen, "geoip database '%s': unknown schema %d", path, (int)schema);
        return -1;
    }
    geo = calloc(1, sizeof *geo);
    if (!geo)
        abort();
    int rc = MMDB_open(raw, MMDB_MODE_MMAP, &geo->mmdb);
    if (rc != MMDB_SUCCESS) {
        if (rc == MMDB_IO_ERROR)
            snprintf(err, errlen, "geoip database '%s': %s: %s", path, MMDB_strerror(rc), strerror(errno));
        else
            snprintf(err, errlen, "geoip database '%s': not a valid MaxMind DB file (%s)", path, MMDB_strerror(rc));
        goto fail;
    }
    opened = true;
    const MMDB_metadata_s *md = &geo->mmdb.metadata;
    if (md->binary_format_major_version != 2) {
        snprintf(err, errlen, "geoip database '%s': unsupported binary format version %u", path,
                 (unsigned)md->binary_format_major_version);
        goto fail;
    }
    if (md->ip_version != 4 && md->ip_version != 6) {
        snprintf(err, errlen, "geoip database '%s': bad ip_version %u", path, (unsigned)md->ip_version);
        goto fail;
    }
    if (md->node_count == 0) {
        snprintf(err, errlen, "geoip database '%s': empty search tree", path);
        goto fail;
    }
    snprintf(geo->type, sizeof geo->type, "%s", md->database_type ? md->database_type : "");
    geo->build_epoch = md->build_epoch > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)md->build_epoch;
    geo->registered_fallback = registered_fallback;
    geo->schema = schema == BG_GEO_SCHEMA_AUTO ? schema_detect(geo->type) : schema;
    if (probe(geo, err, errlen, path) != 0)
        goto fail;
    atomic_init(&geo->refcount, 1);
    *out = geo;
    return 0;
fail:
    if (opened)
        MMDB_close(&geo->mmdb);
    free(geo);
    return -1;
}

bg_geo_t *bg_geo_retain(bg_geo_t *geo)
{
    if (geo)
        atomic_fetch_add_explicit(&geo->refcount, 1, memory_order_relaxed);
    return geo;
}

void bg_geo_close(bg_geo_t *geo)
{
    if (!geo || atomic_fetch_sub_explicit(&geo->refcount, 1, memory_order_acq_rel) != 1)
        return;
    MMDB_close(&geo->mmdb);
    free(geo);
}

int64_t bg_geo_build_epoch(const bg_geo_t *geo) { return geo ? geo->build_epoch : 0; }
const char *bg_geo_database_type(const bg_geo_t *geo) { return geo ? geo->type : ""; }
bg_geo_schema_t bg_geo_schema(const bg_geo_t *geo) { return geo ? geo->schema : BG_GEO_SCHEMA_AUTO; }
int bg_geo_ip_version(const bg_geo_t *geo) { return geo ? (int)geo->mmdb.metadata.ip_version : 0; }
uint32_t bg_geo_node_count(const bg_geo_t *geo) { return geo ? geo->mmdb.metadata.node_count : 0; }

int bg_geo_age_days(const bg_geo_t *geo, int64_t now_s)
{
    if (!geo)
        return -1;
    int64_t d = now_s - geo->build_epoch;
    int64_t days = d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
    if (days > INT32_MAX)
        return INT32_MAX;
    if (days < INT32_MIN)
        return INT32_MIN;
    return (int)days;
}

int bg_geo_parse_addr(const char *text, struct sockaddr_storage *out)
{
    if (!text || !out)
        return -1;
    memset(out, 0, sizeof *out);
    struct sockaddr_in *s4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

/* ---- per-worker cache -------------------------------------------------------------- */

typedef struct {
    uint64_t k0, k1;  /* the address, 16-byte form */
    uint32_t gen;     /* valid when == cache->gen */
    char country[3];  /* "" = unknown */
} cache_entry_t;

struct bg_geo_cache {
    cache_entry_t *slots;
    size_t mask;
    unsigned shift; /* 64 - log2(slots) */
    uint32_t gen;
    /* what the entries were computed with */
    const bg_geo_t *geo;
    int64_t geo_epoch;
    const bg_geo_override_t *ov;
    size_t nov;
    uint64_t hits, misses;
};

bg_geo_cache_t *bg_geo_cache_create(size_t entries)
{
    if (entries == 0)
        return NULL;
    size_t n = 16;
    unsigned bits = 4;
    while (n < entries && bits < 24) {
        n <<= 1;
        bits++;
    }
    bg_geo_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->slots = calloc(n, sizeof *c->slots);
    if (!c->slots)
        abort();
    c->mask = n - 1;
    c->shift = 64 - bits;
    c->gen = 1; /* calloc'd slots have gen 0: all invalid */
    return c;
}

void bg_geo_cache_destroy(bg_geo_cache_t *c)
{
    if (!c)
        return;
    free(c->slots);
    free(c);
}

void bg_geo_cache_clear(bg_geo_cache_t *c)
{
    if (!c)
        return;
    if (++c->gen == 0) { /* wrapped: old generations could look valid again */
        memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
        c->gen = 1;
    }
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

int bg_geo_cache_lookup(bg_geo_cache_t *c, const bg_geo_t *geo, const bg_geo_override_t *ov, size_t nov,
                        const struct sockaddr *sa, char country[3])
{
    if (!c)
        return bg_geo_lookup(geo, ov, nov, sa, country);
    uint8_t a[16];
    if (addr_norm(sa, a) != 0) {
        country[0] = 0;
        return 1;
    }
    int64_t epoch = bg_geo_build_epoch(geo);
    if (c->geo != geo || c->geo_epoch != epoch || c->ov != ov || c->nov != nov) {
        bg_geo_cache_clear(c);
        c->geo = geo;
        c->geo_epoch = epoch;
        c->ov = ov;
        c->nov = nov;
    }
    uint64_t k0 = load64(a), k1 = load64(a + 8);
    uint64_t h = (k0 ^ 0x9e3779b97f4a7c15ull) * 0xff51afd7ed558ccdull;
    h ^= k1 * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ull;
    /* Two-way set associative: way 0 holds the most recently used entry of the set. */
    cache_entry_t *set = &c->slots[((h >> c->shift) & c->mask) & ~(size_t)1];
    for (int w = 0; w < 2; w++) {
        cache_entry_t *e = &set[w];
        if (e->gen == c->gen && e->k0 == k0 && e->k1 == k1) {
            c->hits++;
            memcpy(country, e->country, 3);
            if (w == 1) {
                cache_entry_t t = set[0];
                set[0] = set[1];
                set[1] = t;
            }
            return country[0] ? 0 : 1;
        }
    }
    c->misses++;
    int rc = lookup_norm(geo, ov, nov, a, country);
    set[1] = set[0];
    set[0].k0 = k0;
    set[0].k1 = k1;
    set[0].gen = c->gen;
    memcpy(set[0].country, country, 3);
    return rc;
}

void bg_geo_cache_stats(const bg_geo_cache_t *c, uint64_t *hits, uint64_t *misses)
{
    if (hits)
        *hits = c ? c->hits : 0;
    if (misses)
        *misses = c ? c->misses : 0;
}
