/*
 * config.c — loads bordergate.yaml and the regions file it names into an immutable,
 * reference-counted bg_config_t (config.h). Validation collects every problem as
 * "FILE:LINE:COL: message" instead of stopping at the first; warnings never fail a load.
 * Invariants: a returned snapshot is complete (every field set, defaults applied) and never
 * changes; everything it points to is owned by it and freed by the last bg_config_release.
 * Loading runs on the main thread; the lookup functions are read-only and run on any thread.
 */
#include "config.h"
#include "classify.h"
#include "config_yaml.h"
#include "policy.h"
#include "seal.h"
#include "util.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE_SIZE (8u << 20)  /* a config or regions file larger than this is refused */
#define MAX_DIAG 1000             /* messages kept per list */
#define MAX_LISTENERS 64
#define MAX_WORKERS 1024
#define DAY_S 86400
#define WARN_DAYS 30

/* ------------------------------------------------------------------ diagnostics */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        abort();
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        abort();
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

void bg_diag_init(bg_diag_t *d) { memset(d, 0, sizeof *d); }

void bg_diag_dispose(bg_diag_t *d)
{
    for (size_t i = 0; i < d->nerrors; i++)
        free(d->errors[i]);
    for (size_t i = 0; i < d->nwarnings; i++)
        free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    bg_diag_init(d);
}

static void diag_push(char ***list, size_t *n, char *msg)
{
    /* Grow at powers of two; the list is NULL-free and exactly n long. */
    if ((*n & (*n - 1)) == 0 || *n == 0)
        *list = xrealloc(*list, (*n ? *n * 2 : 4) * sizeof **list);
    (*list)[(*n)++] = msg;
}

static void diag_add(char ***list, size_t *n, const char *file, bg_pos_t pos, const char *prefix,
                     const char *fmt, va_list ap)
{
    if (*n > MAX_DIAG)
        return;
    if (*n == MAX_DIAG) {
        diag_push(list, n, xstrdup("too many problems; only the first 1000 are listed"));
        return;
    }
    char head[512];
    int hl;
    if (!file)
        hl = snprintf(head, sizeof head, "%s", prefix);
    else if (pos.line > 0)
        hl = snprintf(head, sizeof head, "%.400s:%d:%d: %s", file, pos.line, pos.col, prefix);
    else
        hl = snprintf(head, sizeof head, "%.400s: %s", file, prefix);
    if (hl < 0)
        hl = 0;
    if ((size_t)hl >= sizeof head)
        hl = sizeof head - 1;
    va_list ap2;
    va_copy(ap2, ap);
    int bl = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (bl < 0)
        bl = 0;
    char *msg = xmalloc((size_t)hl + (size_t)bl + 1);
    memcpy(msg, head, (size_t)hl);
    vsnprintf(msg + hl, (size_t)bl + 1, fmt, ap);
    msg[hl + bl] = 0;
    diag_push(list, n, msg);
}

void bg_diag_error(bg_diag_t *d, const char *file, bg_pos_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(&d->errors, &d->nerrors, file, pos, "", fmt, ap);
    va_end(ap);
}

void bg_diag_warn(bg_diag_t *d, const char *file, bg_pos_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(&d->warnings, &d->nwarnings, file, pos, "warning: ", fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ parse helpers */

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

/* Digits at *p into *v (overflow: -1). Advances *p. */
static int parse_u64(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    if (!is_digit((unsigned char)*s))
        return -1;
    for (; is_digit((unsigned char)*s); s++) {
        unsigned dig = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - dig) / 10)
            return -1;
        x = x * 10 + dig;
    }
    *p = s;
    *v = x;
    return 0;
}

int bg_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"kb", 1000ull},
        {"kib", 1024ull},
        {"mb", 1000000ull},
        {"mib", 1048576ull},
        {"gb", 1000000000ull},
        {"gib", 1073741824ull},
        {"tb", 1000000000000ull},
        {"tib", 1099511627776ull},
    };
    uint64_t v;
    if (!s || parse_u64(&s, &v) != 0)
        return -1;
    while (*s == ' ')
        s++;
    for (size_t i = 0; i < BG_ARRAY_SIZE(units); i++)
        if (bg_span_ieq(s, strlen(s), units[i].unit)) {
            if (v > UINT64_MAX / units[i].mult)
                return -1;
            *out = v * units[i].mult;
            return 0;
        }
    return -1;
}

int bg_parse_duration_ms(const char *s, uint64_t *out)
{
    uint64_t total = 0;
    if (!s || !*s)
        return -1;
    while (*s) {
        uint64_t v, mult;
        if (parse_u64(&s, &v) != 0)
            return -1;
        if (s[0] == 'm' && s[1] == 's') {
            mult = 1;
            s += 2;
        } else if (*s == 's') {
            mult = 1000;
            s++;
        } else if (*s == 'm') {
            mult = 60000;
            s++;
        } else if (*s == 'h') {
            mult = 3600000;
            s++;
        } else if (*s == 'd') {
            mult = 86400000;
            s++;
        } else {
            return -1;
        }
        if (v > UINT64_MAX / mult || total > UINT64_MAX - v * mult)
            return -1;
        total += v * mult;
    }
    *out = total;
    return 0;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int bg_parse_date(const char *s, int64_t *out_s)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !is_digit((unsigned char)s[i]))
            return -1;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1970 || m < 1 || m > 12 || d < 1)
        return -1;
    if (d > dim[m - 1] + (m == 2 && leap(y)))
        return -1;
    *out_s = bg_days_from_civil(y, (unsigned)m, (unsigned)d) * DAY_S;
    return 0;
}

/* An IPv4 or IPv6 literal into addr (network order); returns the family or 0. */
static int parse_ip(const char *s, size_t len, uint8_t addr[16])
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return 0;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, tmp, addr) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, tmp, addr) == 1)
        return AF_INET6;
    return 0;
}

int bg_parse_cidr(const char *s, bg_cidr_t *out)
{
    if (!s)
        return -1;
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    bg_cidr_t c;
    memset(&c, 0, sizeof c);
    c.family = parse_ip(s, alen, c.addr);
    if (!c.family)
        return -1;
    int max = c.family == AF_INET ? 32 : 128;
    c.prefix = max;
    if (slash) {
        const char *p = slash + 1;
        uint64_t v;
        if (strlen(p) > 3 || parse_u64(&p, &v) != 0 || *p || v > (uint64_t)max)
            return -1;
        c.prefix = (int)v;
    }
    /* Host bits set ("10.0.0.1/8") is almost always a typo for a different network. */
    for (int bit = c.prefix; bit < max; bit++)
        if (c.addr[bit / 8] & (0x80 >> (bit % 8)))
            return -1;
    *out = c;
    return 0;
}

int bg_parse_sockaddr(const char *s, bg_sockaddr_t *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return -1;
    const char *host, *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        host = s + 1;
        hlen = (size_t)(rb - host);
        colon = rb + 1;
    } else {
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return -1;
        host = s;
        hlen = (size_t)(colon - s);
    }
    const char *p = colon + 1;
    uint64_t port;
    if (strlen(p) > 5 || parse_u64(&p, &port) != 0 || *p || port > 65535)
        return -1;
    uint8_t addr[16];
    int fam = parse_ip(host, hlen, addr);
    if (!fam || (s[0] == '[') != (fam == AF_INET6))
        return -1;
    if (fam == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, addr, 4);
        out->addrlen = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        memcpy(&sin6->sin6_addr, addr, 16);
        out->addrlen = sizeof *sin6;
    }
    out->text = xstrdup(s);
    return 0;
}

/* Every officially assigned ISO 3166-1 alpha-2 code (249), sorted. */
static const char iso_codes[] =
    "ADAEAFAGAIALAMAOAQARASATAUAWAXAZ"
    "BABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ"
    "CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZ"
    "DEDJDKDMDODZ"
    "ECEEEGEHERESET"
    "FIFJFKFMFOFR"
    "GAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGY"
    "HKHMHNHRHTHU"
    "IDIEILIMINIOIQIRISIT"
    "JEJMJOJP"
    "KEKGKHKIKMKNKPKRKWKYKZ"
    "LALBLCLILKLRLSLTLULVLY"
    "MAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZ"
    "NANCNENFNGNINLNONPNRNUNZ"
    "OM"
    "PAPEPFPGPHPKPLPMPNPRPSPTPWPY"
    "QA"
    "RERORSRURW"
    "SASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZ"
    "TCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZ"
    "UAUGUMUSUYUZ"
    "VAVCVEVGVIVNVU"
    "WFWS"
    "YEYT"
    "ZAZMZW";

/* The codes as one bit per (first letter, second letter), made once from iso_codes: a request's
 * destination country is checked several times per request (policy, region, adequacy). */
static uint32_t iso_bits[26];
static pthread_once_t iso_once = PTHREAD_ONCE_INIT;

static void iso_bits_make(void)
{
    for (size_t i = 0; i + 1 < sizeof iso_codes; i += 2)
        iso_bits[iso_codes[i] - 'A'] |= 1u << (iso_codes[i + 1] - 'A');
}

bool bg_country_valid(const char *s)
{
    if (!s || !(s[0] >= 'A' && s[0] <= 'Z') || !(s[1] >= 'A' && s[1] <= 'Z') || s[2])
        return false;
    pthread_once(&iso_once, iso_bits_make);
    return iso_bits[s[0] - 'A'] >> (s[1] - 'A') & 1u;
}

bool bg_cidr_contains(const bg_cidr_t *net, const struct sockaddr *sa)
{
    const uint8_t *a;
    int family;
    if (!net || !sa)
        return false;
    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        family = AF_INET6;
        /* An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address for matching. */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (net->family == AF_INET && memcmp(a, mapped, 12) == 0) {
            a += 12;
            family = AF_INET;
        }
    } else {
        return false;
    }
    if (family != net->family)
        return false;
    int full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(a, net->addr, (size_t)full) != 0)
        return false;
    if (rest) {
        uint8_t mask = (uint8_t)(0xff << (8 - rest));
        if ((a[full] & mask) != (net->addr[full] & mask))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ validation context */

typedef struct {
    const char *host;
    size_t vendor;
    bg_pos_t pos;
} host_ref_t;

typedef struct {
    const char *file; /* the file being walked: messages point into it */
    bg_diag_t *d;
    bg_config_t *cfg;
    int64_t now;
    bool regions_ok;
    host_ref_t *hosts;
    size_t nhosts;
    char q[4][104]; /* printable copies of values for messages, used round-robin */
    int qi;
} ctx_t;

#define ERR(c, pos, ...) bg_diag_error((c)->d, (c)->file, (pos), __VA_ARGS__)
#define WARN(c, pos, ...) bg_diag_warn((c)->d, (c)->file, (pos), __VA_ARGS__)

/* A value made safe to quote in a message: printable ASCII, at most 80 bytes. */
static const char *qs(ctx_t *c, const char *s, size_t len)
{
    char *o = c->q[c->qi++ & 3];
    size_t n = 0;
    for (size_t i = 0; i < len && n < 80; i++) {
        unsigned char ch = (unsigned char)s[i];
        o[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (len > 80) {
        memcpy(o + n, "...", 3);
        n += 3;
    }
    o[n] = 0;
    return o;
}

static const char *qn(ctx_t *c, const bg_ynode_t *n) { return qs(c, n->str, n->len); }

static const char *kind_desc(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const names[] = {"a scalar", "a mapping", "a list"};
    if (n->kind == BG_YNODE_SCALAR) {
        if (n->null)
            return "an empty value";
        char *o = c->q[c->qi++ & 3];
        snprintf(o, sizeof c->q[0], "'%.90s'", qs(c, n->str, n->len));
        return o;
    }
    return names[n->kind];
}

/* Levenshtein distance of two short strings (ASCII case-insensitive), capped at 99. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = a[i - 1] >= 'A' && a[i - 1] <= 'Z' ? a[i - 1] + 32 : a[i - 1];
            int cb = b[j - 1] >= 'A' && b[j - 1] <= 'Z' ? b[j - 1] + 32 : b[j - 1];
            int best = diag + (ca != cb);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = row[j];
            row[j] = best;
        }
    }
    return row[lb];
}

/* The candidate closest to s, when close enough to be a plausible typo; else NULL. */
static const char *closest(const char *s, const char *const *cands, size_t n)
{
    const char *best = NULL;
    int bestd = 99;
    size_t len = strlen(s);
    int limit = len <= 3 ? 1 : len <= 8 ? 2 : 3;
    for (size_t i = 0; i < n; i++) {
        int dd = edit_distance(s, cands[i]);
        if (dd < bestd) {
            bestd = dd;
            best = cands[i];
        }
    }
    return bestd <= limit ? best : NULL;
}

/* " (did you mean 'x'?)" or "" into a round-robin buffer. */
static const char *hint(ctx_t *c, const char *s, const char *const *cands, size_t n)
{
    /* Past the message cap nothing is shown: skip the quadratic distance work. */
    const char *b = c->d->nerrors >= MAX_DIAG ? NULL : closest(s, cands, n);
    char *o = c->q[c->qi++ & 3];
    if (b)
        snprintf(o, sizeof c->q[0], " (did you mean '%.64s'?)", b);
    else
        o[0] = 0;
    return o;
}

static bool want(ctx_t *c, const bg_ynode_t *n, bg_ynode_kind_t kind, const char *what)
{
    static const char *const names[] = {"a scalar", "a mapping", "a list"};
    if (n->kind == kind && !(kind == BG_YNODE_SCALAR && n->null))
        return true;
    ERR(c, n->pos, "%s: expected %s, got %s", what, kind == BG_YNODE_SCALAR ? "a value" : names[kind],
        kind_desc(c, n));
    return false;
}

/* Check a mapping's keys against `allowed` (NULL-terminated, at most 32): scalars, known, not
 * repeated. Linear in the mapping's size, whatever the input. */
static bool check_keys(ctx_t *c, const bg_ynode_t *map, const char *const *allowed, const char *where)
{
    bool ok = true;
    size_t nallowed = 0;
    const bg_ynode_t *first[32] = {0};
    while (nallowed < 32 && allowed[nallowed])
        nallowed++;
    if (allowed[nallowed])
        abort(); /* a key list longer than first[] holds: its keys past 32 would read as unknown */
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const bg_ynode_t *k = map->items[i];
        if (k->kind != BG_YNODE_SCALAR) {
            ERR(c, k->pos, "%s: keys must be plain names, got %s", where, kind_desc(c, k));
            ok = false;
            continue;
        }
        size_t a = 0;
        while (a < nallowed && !(strlen(allowed[a]) == k->len && memcmp(allowed[a], k->str, k->len) == 0))
            a++;
        if (a == nallowed && k->len == 2 && memcmp(k->str, "<<", 2) == 0) {
            /* YAML 1.1's merge key: another mapping's keys pulled in unseen. bordergate reads YAML 1.2
             * without it, so say what it is rather than "unknown key". */
            ERR(c, k->pos, "YAML merge keys ('<<') are not supported in %s: write the keys out (an alias may "
                "stand for a whole value)", where);
            ok = false;
        } else if (a == nallowed) {
            ERR(c, k->pos, "unknown key '%s' in %s%s", qn(c, k), where,
                k->len < 64 && strlen(k->str) == k->len ? hint(c, k->str, allowed, nallowed) : "");
            ok = false;
        } else if (first[a]) {
            ERR(c, k->pos, "duplicate key '%s' in %s (first at line %d)", qn(c, k), where, first[a]->pos.line);
            ok = false;
        } else {
            first[a] = k;
        }
    }
    return ok;
}

/* The value of `key` in a mapping (first occurrence), or NULL. */
static const bg_ynode_t *mget(const bg_ynode_t *map, const char *key)
{
    size_t kl = strlen(key);
    if (!map || map->kind != BG_YNODE_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const bg_ynode_t *k = map->items[i];
        if (k->kind == BG_YNODE_SCALAR && k->len == kl && memcmp(k->str, key, kl) == 0)
            return map->items[i + 1];
    }
    return NULL;
}

static const bg_ynode_t *require(ctx_t *c, const bg_ynode_t *map, const char *key, const char *where)
{
    const bg_ynode_t *v = mget(map, key);
    if (!v)
        ERR(c, map->pos, "%s: missing required key '%s'", where, key);
    return v;
}

/* A scalar as a C string (no embedded NUL); NULL after an error. */
static const char *scalar(ctx_t *c, const bg_ynode_t *n, const char *what)
{
    if (!want(c, n, BG_YNODE_SCALAR, what))
        return NULL;
    if (strlen(n->str) != n->len) {
        ERR(c, n->pos, "%s: value contains a NUL byte", what);
        return NULL;
    }
    return n->str;
}

static bool get_str(ctx_t *c, const bg_ynode_t *n, const char *what, char **out)
{
    const char *s = scalar(c, n, what);
    if (!s)
        return false;
    free(*out);
    *out = xstrdup(s);
    return true;
}

/* YAML 1.1's bool words; 0, or -1 for anything else. */
static int bool_word(const char *s, bool *out)
{
    static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
    static const char *const f[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
    for (size_t i = 0; i < BG_ARRAY_SIZE(t); i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static bool get_bool(ctx_t *c, const bg_ynode_t *n, const char *what, bool *out)
{
    const char *s = scalar(c, n, what);
    if (!s)
        return false;
    if (bool_word(s, out) == 0)
        return true;
    ERR(c, n->pos, "%s: expected a bool (true or false), got %s", what, kind_desc(c, n));
    return false;
}

static bool get_uint(ctx_t *c, const bg_ynode_t *n, const char *what, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    const char *s = scalar(c, n, what);
    if (!s)
        return false;
    uint64_t v;
    const char *p = s;
    if (s[0] == '0' && is_digit((unsigned char)s[1])) {
        ERR(c, n->pos, "%s: '%s' has a leading zero, which YAML 1.1 tools read as octal; write the number "
            "without it", what, qn(c, n));
        return false;
    }
    if (parse_u64(&p, &v) != 0 || *p || v < min || v > max) {
        ERR(c, n->pos, "%s: expected a number from %llu to %llu, got %s", what, (unsigned long long)min,
            (unsigned long long)max, kind_desc(c, n));
        return false;
    }
    *out = v;
    return true;
}

static bool get_size(ctx_t *c, const bg_ynode_t *n, const char *what, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    const char *s = scalar(c, n, what);
    if (!s)
        return false;
    uint64_t v;
    if (bg_parse_size(s, &v) != 0) {
        ERR(c, n->pos, "%s: expected a size such as 1MiB, 512KiB, 10MB or 1048576, got %s", what,
            kind_desc(c, n));
        return false;
    }
    if (v < min || v > max) {
        ERR(c, n->pos, "%s: %s is out of range (%llu to %llu bytes)", what, qn(c, n),
            (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

static bool get_duration(ctx_t *c, const bg_ynode_t *n, const char *what, uint64_t *out)
{
    const char *s = scalar(c, n, what);
    if (!s)
        return false;
    uint64_t v;
    if (bg_parse_duration_ms(s, &v) != 0 || v == 0 || v > 30ull * 86400000) {
        ERR(c, n->pos, "%s: expected a duration such as 250ms, 10s, 5m or 1h (more than 0, at most 30d), got %s",
            what, kind_desc(c, n));
        return false;
    }
    *out = v;
    return true;
}

static bool get_date(ctx_t *c, const bg_ynode_t *n, const char *what, int64_t *out)
{
    const char *s = scalar(c, n, what);
    if (!s)
        return false;
    if (bg_parse_date(s, out) != 0) {
        ERR(c, n->pos, "%s: expected a date YYYY-MM-DD (a real calendar day), got %s", what, kind_desc(c, n));
        return false;
    }
    return true;
}

/* One of names[] (NULL-terminated): its index, or -1 after an error. */
static int get_enum(ctx_t *c, const bg_ynode_t *n, const char *what, const char *const *names)
{
    const char *s = scalar(c, n, what);
    if (!s)
        return -1;
    size_t k = 0;
    char list[160] = "";
    for (; names[k]; k++) {
        if (strcmp(s, names[k]) == 0)
            return (int)k;
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", k ? ", " : "", names[k]);
    }
    ERR(c, n->pos, "%s: expected one of %s, got %s%s", what, list, kind_desc(c, n), hint(c, s, names, k));
    return -1;
}

/* A file the config refers to must be readable now (a directory when dir is set). */
static bool check_path(ctx_t *c, const bg_ynode_t *n, const char *what, const char *path, bool dir)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        ERR(c, n->pos, "%s: cannot read '%s': %s", what, qs(c, path, strlen(path)), strerror(errno));
        return false;
    }
    if (dir && !S_ISDIR(st.st_mode)) {
        ERR(c, n->pos, "%s: '%s' is not a directory", what, qs(c, path, strlen(path)));
        return false;
    }
    if (!dir && S_ISDIR(st.st_mode)) {
        ERR(c, n->pos, "%s: '%s' is a directory, expected a file", what, qs(c, path, strlen(path)));
        return false;
    }
    if (access(path, R_OK) != 0) {
        ERR(c, n->pos, "%s: cannot read '%s': %s", what, qs(c, path, strlen(path)), strerror(errno));
        return false;
    }
    return true;
}

static bool get_path(ctx_t *c, const bg_ynode_t *n, const char *what, bool dir, char **out)
{
    if (!get_str(c, n, what, out))
        return false;
    return check_path(c, n, what, *out, dir);
}

/* A country code with hints for the usual mistakes. */
static bool get_country(ctx_t *c, const bg_ynode_t *n, const char *what, char out[3])
{
    const char *s = scalar(c, n, what);
    if (!s)
        return false;
    if (bg_country_valid(s)) {
        memcpy(out, s, 3);
        return true;
    }
    const char *h = "";
    char lower_hint[64] = "";
    if (strcmp(s, "EL") == 0)
        h = " (did you mean GR (ISO code for Greece)?)";
    else if (strcmp(s, "UK") == 0)
        h = " (did you mean GB (ISO code for the United Kingdom)?)";
    else if (strcmp(s, "EU") == 0)
        h = " (EU is not a country; name a region such as EEA)";
    else if (n->len == 2) {
        char up[3] = {(char)(s[0] >= 'a' && s[0] <= 'z' ? s[0] - 32 : s[0]),
                      (char)(s[1] >= 'a' && s[1] <= 'z' ? s[1] - 32 : s[1]), 0};
        if (bg_country_valid(up)) {
            snprintf(lower_hint, sizeof lower_hint, " (did you mean %s?)", up);
            h = lower_hint;
        }
    }
    ERR(c, n->pos, "%s: '%s' is not an ISO 3166-1 alpha-2 country code%s", what, qn(c, n), h);
    return false;
}

/* A listen address "IP:PORT". */
static bool get_sockaddr(ctx_t *c, const bg_ynode_t *n, const char *what, bg_sockaddr_t *out)
{
    const char *s = scalar(c, n, what);
    if (!s)
        return false;
    bg_sockaddr_t sa;
    if (bg_parse_sockaddr(s, &sa) != 0) {
        ERR(c, n->pos, "bad %s '%s': expected IP:PORT such as 127.0.0.1:8080 or [::1]:8080", what, qn(c, n));
        return false;
    }
    free(out->text);
    *out = sa;
    return true;
}

/* Whether two listen addresses would collide: same family and port, and the same address or a
 * wildcard (0.0.0.0, ::) on either side. Port 0 (kernel-chosen) never collides. */
static bool same_sockaddr(const bg_sockaddr_t *a, const bg_sockaddr_t *b)
{
    static const uint8_t any[16];
    const struct sockaddr *x = (const struct sockaddr *)&a->addr, *y = (const struct sockaddr *)&b->addr;
    if (x->sa_family != y->sa_family)
        return false;
    if (x->sa_family == AF_INET) {
        const struct sockaddr_in *p = (const void *)x, *q = (const void *)y;
        return p->sin_port == q->sin_port && p->sin_port != 0 &&
               (memcmp(&p->sin_addr, &q->sin_addr, 4) == 0 || memcmp(&p->sin_addr, any, 4) == 0 ||
                memcmp(&q->sin_addr, any, 4) == 0);
    }
    const struct sockaddr_in6 *p = (const void *)x, *q = (const void *)y;
    return p->sin6_port == q->sin6_port && p->sin6_port != 0 &&
           (memcmp(&p->sin6_addr, &q->sin6_addr, 16) == 0 || memcmp(&p->sin6_addr, any, 16) == 0 ||
            memcmp(&q->sin6_addr, any, 16) == 0);
}

/* ------------------------------------------------------------------ files */

/* Read a whole file (at most MAX_FILE_SIZE). Returns 0, or an errno value (EFBIG: too large). */
static int read_file(const char *path, char **out, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno ? errno : ENOENT;
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE_SIZE + 1)
                break;
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (!err && len > MAX_FILE_SIZE)
        err = EFBIG;
    if (err) {
        free(buf);
        return err;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

/* ------------------------------------------------------------------ regions file */

static const char *const reserved_regions[] = {"adequate", "third_country", "unknown", NULL};

static bool region_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || is_digit((unsigned char)ch) || ch == '_' ||
              ch == '-'))
            return false;
    }
    return true;
}

static int region_index(const bg_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nregions; i++)
        if (strcmp(cfg->regions[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Two-letter codes compared as one 16-bit value: these run for every request's destination. */
static inline uint16_t cc16(const char *cc) { return (uint16_t)((unsigned char)cc[0] << 8 | (unsigned char)cc[1]); }

static bool region_has(const bg_region_t *r, const char *cc)
{
    uint16_t want = cc16(cc);
    for (size_t i = 0; i < r->ncountries; i++)
        if (cc16(r->countries[i]) == want)
            return true;
    return false;
}

static const bg_adequacy_t *adequacy_of(const bg_config_t *cfg, const char *cc)
{
    uint16_t want = cc16(cc);
    for (size_t i = 0; i < cfg->nadequacy; i++)
        if (cc16(cfg->adequacy[i].country) == want)
            return &cfg->adequacy[i];
    return NULL;
}

static void parse_region(ctx_t *c, const bg_ynode_t *k, const bg_ynode_t *v)
{
    static const char *const keys[] = {"description", "countries", NULL};
    bg_config_t *cfg = c->cfg;
    const char *name = scalar(c, k, "region name");
    if (!name)
        return;
    if (!region_name_ok(name)) {
        ERR(c, k->pos, "region name '%s' may only contain letters, digits, '_' and '-' (at most 32)", qn(c, k));
        return;
    }
    if (bg_country_valid(name)) {
        ERR(c, k->pos, "region name '%s' is a country code; use another name", name);
        return;
    }
    for (size_t i = 0; reserved_regions[i]; i++)
        if (strcmp(name, reserved_regions[i]) == 0) {
            ERR(c, k->pos, "region name '%s' is reserved", name);
            return;
        }
    if (cfg->nregions >= 1000) {
        ERR(c, k->pos, "too many regions (at most 1000)");
        return;
    }
    if (region_index(cfg, name) >= 0) {
        ERR(c, k->pos, "duplicate region '%s'", name);
        return;
    }
    const bg_ynode_t *list = v;
    if (v->kind == BG_YNODE_MAP) {
        if (!check_keys(c, v, keys, "region"))
            return;
        if (!(list = require(c, v, "countries", "region")))
            return;
    }
    if (!want(c, list, BG_YNODE_SEQ, "region countries"))
        return;
    if (list->n == 0) {
        /* As the jurisdiction every destination would be a third country; as a vendor's region it
         * would cover nothing: never what was meant. */
        ERR(c, list->pos, "region '%s' lists no country", name);
        return;
    }
    bg_region_t *r = &cfg->regions[cfg->nregions];
    r->name = xstrdup(name);
    r->countries = xcalloc(list->n, sizeof *r->countries);
    cfg->nregions++;
    for (size_t i = 0; i < list->n; i++) {
        char cc[3];
        if (!get_country(c, list->items[i], "region country", cc))
            continue;
        if (region_has(r, cc)) {
            ERR(c, list->items[i]->pos, "duplicate country %s in region '%s'", cc, name);
            continue;
        }
        memcpy(r->countries[r->ncountries++], cc, 3);
    }
}

static void parse_adequacy(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const keys[] = {"country", "name", "scope", "date", "expires", "reference", "note", NULL};
    static const char *const scopes[] = {"full", "commercial", "dpf", NULL};
    bg_config_t *cfg = c->cfg;
    if (!want(c, n, BG_YNODE_MAP, "adequacy entry") || !check_keys(c, n, keys, "adequacy entry"))
        return;
    const bg_ynode_t *cn = require(c, n, "country", "adequacy entry");
    bg_adequacy_t a;
    memset(&a, 0, sizeof a);
    if (!cn || !get_country(c, cn, "adequacy country", a.country))
        return;
    if (adequacy_of(cfg, a.country)) {
        ERR(c, cn->pos, "duplicate adequacy entry for %s", a.country);
        return;
    }
    const bg_ynode_t *v;
    if ((v = mget(n, "name")) && !scalar(c, v, "adequacy name"))
        return;
    if ((v = mget(n, "reference")) && !scalar(c, v, "adequacy reference"))
        return;
    if ((v = mget(n, "note")) && !scalar(c, v, "adequacy note"))
        return;
    if ((v = mget(n, "scope"))) {
        int s = get_enum(c, v, "adequacy scope", scopes);
        if (s < 0)
            return;
        a.scope = (bg_adequacy_scope_t)s;
    }
    const bg_ynode_t *dn = mget(n, "date"), *en = mget(n, "expires");
    if (dn && !get_date(c, dn, "adequacy date", &a.date))
        return;
    if (en && !get_date(c, en, "adequacy expires", &a.expires))
        return;
    if (dn && en && a.expires <= a.date) {
        ERR(c, en->pos, "adequacy entry for %s: expires %s is not after date %s", a.country, qn(c, en), qn(c, dn));
        return;
    }
    /* The policy applies a decision only while it is in force (date <= now < expires), at the time
     * of each request; say so now when a load already falls outside, or near the sunset. */
    if (en && a.expires <= c->now) {
        WARN(c, en->pos, "adequacy decision for %s expired on %s; transfers there need scc or bcr", a.country,
             qn(c, en));
    } else if (en && (a.expires - c->now + DAY_S - 1) / DAY_S <= WARN_DAYS) {
        int64_t days = (a.expires - c->now + DAY_S - 1) / DAY_S;
        WARN(c, en->pos, "adequacy decision for %s expires on %s (in %lld day%s)", a.country, qn(c, en),
             (long long)days, days == 1 ? "" : "s");
    }
    if (dn && a.date > c->now)
        WARN(c, dn->pos, "adequacy decision for %s applies from %s; until then transfers there need scc or bcr",
             a.country, qn(c, dn));
    cfg->adequacy[cfg->nadequacy++] = a;
}

/* Parse the regions file into cfg; errors point into it. Returns true when it is usable. */
static bool load_regions(ctx_t *c, const char *data, size_t len)
{
    static const char *const keys[] = {"regions", "adequacy", NULL};
    bg_config_t *cfg = c->cfg;
    size_t before = c->d->nerrors;
    bg_ydoc_t doc;
    bg_pos_t top = {1, 1};
    if (bg_ydoc_parse(&doc, c->file, data, len, c->d) != 0)
        goto done;
    const bg_ynode_t *root = doc.root;
    if (!root || (root->kind == BG_YNODE_SCALAR && root->null)) {
        ERR(c, top, "empty regions file");
        goto done;
    }
    if (!want(c, root, BG_YNODE_MAP, "regions file") || !check_keys(c, root, keys, "regions file"))
        goto done;
    const bg_ynode_t *regs = require(c, root, "regions", "regions file");
    if (regs && want(c, regs, BG_YNODE_MAP, "regions")) {
        cfg->regions = xcalloc(regs->n / 2, sizeof *cfg->regions);
        for (size_t i = 0; i + 1 < regs->n; i += 2)
            parse_region(c, regs->items[i], regs->items[i + 1]);
    }
    const bg_ynode_t *adq = mget(root, "adequacy");
    if (adq && want(c, adq, BG_YNODE_SEQ, "adequacy")) {
        cfg->adequacy = xcalloc(adq->n, sizeof *cfg->adequacy);
        for (size_t i = 0; i < adq->n; i++)
            parse_adequacy(c, adq->items[i]);
    }
done:
    bg_ydoc_dispose(&doc);
    return c->d->nerrors == before;
}

/* ------------------------------------------------------------------ sections */

static void parse_listen(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const keys[] = {"address", "tls", "vendor", "max_connections", "requests_per_second",
                                       "request_burst", NULL};
    static const char *const tls_keys[] = {"certificate", "key", "client_ca", NULL};
    bg_config_t *cfg = c->cfg;
    if (!want(c, n, BG_YNODE_SEQ, "listen"))
        return;
    if (n->n == 0) {
        ERR(c, n->pos, "listen: at least one listener is needed");
        return;
    }
    if (n->n > MAX_LISTENERS) {
        ERR(c, n->pos, "listen: at most %d listeners", MAX_LISTENERS);
        return;
    }
    cfg->listen = xcalloc(n->n, sizeof *cfg->listen);
    for (size_t i = 0; i < n->n; i++) {
        const bg_ynode_t *it = n->items[i], *a, *t, *v;
        if (!want(c, it, BG_YNODE_MAP, "listener") || !check_keys(c, it, keys, "listener"))
            continue;
        if (!(a = require(c, it, "address", "listener")))
            continue;
        /* Fill the next slot; it only counts when the address parsed, but its tls block is
         * checked either way so every problem is reported. */
        bg_listen_t *l = &cfg->listen[cfg->nlisten];
        bool addr_ok = get_sockaddr(c, a, "listen address", &l->address);
        l->pos = a->pos;
        l->vendor_index = -1;
        if ((v = mget(it, "vendor")) && get_str(c, v, "listener vendor", &l->vendor))
            l->vendor_pos = v->pos;
        uint64_t u;
        if ((v = mget(it, "max_connections")) && get_uint(c, v, "listener max_connections", 0, 10000000, &u))
            l->max_connections = (uint32_t)u;
        if ((v = mget(it, "requests_per_second")) &&
            get_uint(c, v, "listener requests_per_second", 0, 100000000, &u))
            l->requests_per_second = (uint32_t)u;
        if ((v = mget(it, "request_burst")) && get_uint(c, v, "listener request_burst", 1, 100000000, &u))
            l->request_burst = (uint32_t)u;
        if (!l->request_burst)
            l->request_burst = l->requests_per_second;
        for (size_t j = 0; addr_ok && j < cfg->nlisten; j++)
            if (same_sockaddr(&cfg->listen[j].address, &l->address)) {
                ERR(c, a->pos, "listen address %s is already used by the listener at line %d", qn(c, a),
                    cfg->listen[j].pos.line);
                break;
            }
        if ((t = mget(it, "tls")) && want(c, t, BG_YNODE_MAP, "listener tls") &&
            check_keys(c, t, tls_keys, "listener tls")) {
            l->tls = true;
            /* The positions are the values', as in every other message about these keys: the
             * runtime points at them when a file that can be read is no certificate or key. */
            if ((v = require(c, t, "certificate", "listener tls"))) {
                l->certificate_pos = v->pos;
                get_path(c, v, "tls certificate", false, &l->certificate);
            }
            if ((v = require(c, t, "key", "listener tls"))) {
                l->key_pos = v->pos;
                get_path(c, v, "tls key", false, &l->key);
            }
            if ((v = mget(t, "client_ca"))) {
                l->client_ca_pos = v->pos;
                get_path(c, v, "tls client_ca", false, &l->client_ca);
            }
        }
        if (addr_ok) {
            cfg->nlisten++;
        } else {
            free(l->certificate);
            free(l->key);
            free(l->client_ca);
            free(l->vendor);
            memset(l, 0, sizeof *l);
        }
    }
}

static void parse_admin(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const keys[] = {"address", "token", NULL};
    bg_config_t *cfg = c->cfg;
    const bg_ynode_t *v;
    if (n->kind == BG_YNODE_SCALAR) {
        /* Not get_bool: its message quotes the value, and a word here may be the admin token
         * written one level too high. Messages go to logs and to POST /reload answers. */
        bool on;
        if (!n->null && strlen(n->str) == n->len && bool_word(n->str, &on) == 0)
            cfg->admin.enabled = on;
        else
            ERR(c, n->pos, "admin: expected off, or a mapping with address (and token); the value is not "
                "shown here, as it may be a secret");
        return;
    }
    if (!want(c, n, BG_YNODE_MAP, "admin") || !check_keys(c, n, keys, "admin"))
        return;
    if ((v = mget(n, "address")) && get_sockaddr(c, v, "admin address", &cfg->admin.address)) {
        for (size_t j = 0; j < cfg->nlisten; j++)
            if (same_sockaddr(&cfg->listen[j].address, &cfg->admin.address)) {
                ERR(c, v->pos, "admin address %s is already used by the listener at line %d", qn(c, v),
                    cfg->listen[j].pos.line);
                break;
            }
    }
    if ((v = mget(n, "token")) && get_str(c, v, "admin token", &cfg->admin.token) && !cfg->admin.token[0])
        ERR(c, v->pos, "admin token: must not be empty (leave it out for no token)");
}

static void parse_limits(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const keys[] = {
        "max_body_scan", "max_body_scan_per_connection", "max_body_scan_total", "max_body", "oversize_body",
        "header_timeout", "idle_timeout", "body_timeout", "upstream_connect_timeout",
        "upstream_timeout", "drain_timeout", "dns_ttl", "max_connections", "max_connections_per_caller", "max_header_size",
        "max_headers", "max_uri", "max_inflate", "requests_per_second_per_caller", "request_burst_per_caller", NULL};
    static const char *const oversize[] = {"block", "personal", NULL};
    bg_config_t *cfg = c->cfg;
    const bg_ynode_t *v;
    uint64_t u;
    if (!want(c, n, BG_YNODE_MAP, "limits"))
        return;
    check_keys(c, n, keys, "limits");
    if ((v = mget(n, "max_body_scan")))
        get_size(c, v, "limits.max_body_scan", 1, 1ull << 30, &cfg->limits.max_body_scan); /* held in memory and written in one buffer */
    if ((v = mget(n, "max_body_scan_per_connection")))
        get_size(c, v, "limits.max_body_scan_per_connection", 1, 1ull << 40,
                 &cfg->limits.max_body_scan_per_connection);
    if ((v = mget(n, "max_body_scan_total")))
        get_size(c, v, "limits.max_body_scan_total", 1, 1ull << 44, &cfg->limits.max_body_scan_total);
    if ((v = mget(n, "max_body")))
        get_size(c, v, "limits.max_body", 1, 1ull << 50, &cfg->limits.max_body);
    if ((v = mget(n, "max_inflate")))
        get_size(c, v, "limits.max_inflate", 1, 1ull << 40, &cfg->limits.max_inflate);
    if ((v = mget(n, "oversize_body"))) {
        int e = get_enum(c, v, "limits.oversize_body", oversize);
        if (e >= 0)
            cfg->limits.oversize_body = (bg_oversize_t)e;
    }
    if ((v = mget(n, "header_timeout")))
        get_duration(c, v, "limits.header_timeout", &cfg->limits.header_timeout_ms);
    if ((v = mget(n, "idle_timeout")))
        get_duration(c, v, "limits.idle_timeout", &cfg->limits.idle_timeout_ms);
    if ((v = mget(n, "dns_ttl")))
        get_duration(c, v, "limits.dns_ttl", &cfg->limits.dns_ttl_ms);
    if ((v = mget(n, "body_timeout")))
        get_duration(c, v, "limits.body_timeout", &cfg->limits.body_timeout_ms);
    if ((v = mget(n, "upstream_connect_timeout")))
        get_duration(c, v, "limits.upstream_connect_timeout", &cfg->limits.upstream_connect_timeout_ms);
    if ((v = mget(n, "upstream_timeout")))
        get_duration(c, v, "limits.upstream_timeout", &cfg->limits.upstream_timeout_ms);
    if ((v = mget(n, "drain_timeout")))
        get_duration(c, v, "limits.drain_timeout", &cfg->limits.drain_timeout_ms);
    if ((v = mget(n, "max_connections")) && get_uint(c, v, "limits.max_connections", 1, 10000000, &u))
        cfg->limits.max_connections = (uint32_t)u;
    if ((v = mget(n, "max_connections_per_caller")) &&
        get_uint(c, v, "limits.max_connections_per_caller", 0, 10000000, &u))
        cfg->limits.max_connections_per_caller = (uint32_t)u;
    if ((v = mget(n, "requests_per_second_per_caller")) &&
        get_uint(c, v, "limits.requests_per_second_per_caller", 0, 100000000, &u))
        cfg->limits.requests_per_second_per_caller = (uint32_t)u;
    if ((v = mget(n, "request_burst_per_caller")) &&
        get_uint(c, v, "limits.request_burst_per_caller", 1, 100000000, &u))
        cfg->limits.request_burst_per_caller = (uint32_t)u;
    if (!cfg->limits.request_burst_per_caller)
        cfg->limits.request_burst_per_caller = cfg->limits.requests_per_second_per_caller;
    if ((v = mget(n, "max_header_size")) && get_size(c, v, "limits.max_header_size", 1024, 16u << 20, &u))
        cfg->limits.max_header_size = (uint32_t)u;
    if ((v = mget(n, "max_headers")) && get_uint(c, v, "limits.max_headers", 1, 100000, &u))
        cfg->limits.max_headers = (uint32_t)u;
    if ((v = mget(n, "max_uri")) && get_size(c, v, "limits.max_uri", 256, 16u << 20, &u))
        cfg->limits.max_uri = (uint32_t)u;
}

static void parse_geoip(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const keys[] = {"database", "schema", "registered_country_fallback", "overrides", NULL};
    static const char *const okeys[] = {"network", "country", NULL};
    static const char *const schemas[] = {"auto", "maxmind", "dbip", NULL};
    bg_config_t *cfg = c->cfg;
    const bg_ynode_t *v;
    if (!want(c, n, BG_YNODE_MAP, "geoip"))
        return;
    check_keys(c, n, keys, "geoip");
    cfg->geoip.database_pos = n->pos;
    if ((v = mget(n, "database"))) {
        cfg->geoip.database_pos = v->pos;
        get_str(c, v, "geoip.database", &cfg->geoip.database);
    }
    if ((v = mget(n, "schema"))) {
        int e = get_enum(c, v, "geoip.schema", schemas);
        if (e >= 0)
            cfg->geoip.schema = (bg_geo_schema_t)e;
    }
    if ((v = mget(n, "registered_country_fallback")))
        get_bool(c, v, "geoip.registered_country_fallback", &cfg->geoip.registered_country_fallback);
    if (!(v = mget(n, "overrides")) || !want(c, v, BG_YNODE_SEQ, "geoip.overrides"))
        return;
    cfg->geoip.overrides = xcalloc(v->n, sizeof *cfg->geoip.overrides);
    for (size_t i = 0; i < v->n; i++) {
        const bg_ynode_t *it = v->items[i], *net, *cc;
        if (!want(c, it, BG_YNODE_MAP, "geoip override") || !check_keys(c, it, okeys, "geoip override"))
            continue;
        net = require(c, it, "network", "geoip override");
        cc = require(c, it, "country", "geoip override");
        if (!net || !cc)
            continue;
        bg_geo_override_t o;
        memset(&o, 0, sizeof o);
        const char *s = scalar(c, net, "geoip override network");
        bool ok = s != NULL;
        if (s && bg_parse_cidr(s, &o.net) != 0) {
            ERR(c, net->pos,
                "geoip override network: '%s' is not a network such as 10.0.0.0/8 or 2001:db8::/32 "
                "(host bits must be zero)",
                qn(c, net));
            ok = false;
        }
        if (get_country(c, cc, "geoip override country", o.country) && ok)
            cfg->geoip.overrides[cfg->geoip.noverrides++] = o;
    }
}

/* Detector names, each at its position: the enabled ones must be built-in or custom detectors of
 * this config, a custom one must not take a built-in's name or another's. The classifier checks
 * the same at start-up, but only the first problem and with no line (it never sees the YAML). */
static void check_detector_names(ctx_t *c, const bg_ynode_t *dets, const bg_ynode_t *custom)
{
    char err[256];
    bg_classifier_t *b = bg_classifier_create(NULL, err, sizeof err); /* the built-in detectors */
    if (!b)
        return;
    unsigned nb = bg_classifier_ndetectors(b);
    size_t ncustom = custom && custom->kind == BG_YNODE_SEQ ? custom->n : 0, nn = 0;
    const char **names = xcalloc(nb + ncustom + 1, sizeof *names);
    const bg_ynode_t **first = xcalloc(ncustom + 1, sizeof *first);
    for (unsigned i = 0; i < nb; i++)
        names[nn++] = bg_classifier_detector_name(b, i);
    for (size_t i = 0, nc = 0; i < ncustom; i++) {
        const bg_ynode_t *nm = mget(custom->items[i], "name");
        if (!nm || nm->kind != BG_YNODE_SCALAR || nm->null || strlen(nm->str) != nm->len)
            continue; /* reported by parse_classification */
        if (bg_classifier_detector_find(b, nm->str) >= 0) {
            ERR(c, nm->pos, "custom detector name '%s' is a built-in detector", qn(c, nm));
            continue;
        }
        size_t k = 0;
        while (k < nc && strcmp(first[k]->str, nm->str) != 0)
            k++;
        if (k < nc) {
            ERR(c, nm->pos, "duplicate custom detector '%s' (first at line %d)", qn(c, nm), first[k]->pos.line);
            continue;
        }
        first[nc++] = nm;
        names[nn++] = nm->str;
    }
    for (size_t i = 0; dets && dets->kind == BG_YNODE_SEQ && i < dets->n; i++) {
        const bg_ynode_t *it = dets->items[i];
        if (it->kind != BG_YNODE_SCALAR || it->null || strlen(it->str) != it->len)
            continue;
        size_t k = 0;
        while (k < nn && strcmp(names[k], it->str) != 0)
            k++;
        if (k == nn)
            ERR(c, it->pos, "classification.detectors: unknown detector '%s'%s", qn(c, it),
                it->len < 64 ? hint(c, it->str, names, nn) : "");
    }
    free(first);
    free(names);
    bg_classifier_destroy(b);
}

static void parse_classification(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const keys[] = {"detectors", "custom", NULL};
    static const char *const ckeys[] = {"name", "category", "keys", "prefix", "digits", NULL};
    bg_config_t *cfg = c->cfg;
    const bg_ynode_t *v;
    const char *cats[BG_CAT__COUNT];
    for (int i = 0; i < BG_CAT__COUNT; i++)
        cats[i] = bg_category_name(i);
    if (!want(c, n, BG_YNODE_MAP, "classification"))
        return;
    check_keys(c, n, keys, "classification");
    if ((v = mget(n, "detectors"))) {
        if (v->kind == BG_YNODE_SCALAR) {
            const char *s = scalar(c, v, "classification.detectors");
            if (s && strcmp(s, "all") != 0)
                ERR(c, v->pos, "classification.detectors: expected 'all' or a list of detector names, got %s",
                    kind_desc(c, v));
        } else if (want(c, v, BG_YNODE_SEQ, "classification.detectors")) {
            if (v->n == 0)
                /* No detector means no personal data is ever found: every transfer would pass. */
                ERR(c, v->pos, "classification.detectors: an empty list would find no personal data at all; "
                               "list at least one detector, or use all");
            cfg->classification.all = false;
            cfg->classification.detectors = xcalloc(v->n, sizeof(char *));
            for (size_t i = 0; i < v->n; i++) {
                char *name = NULL;
                if (get_str(c, v->items[i], "detector name", &name))
                    cfg->classification.detectors[cfg->classification.ndetectors++] = name;
            }
        }
    }
    check_detector_names(c, mget(n, "detectors"), mget(n, "custom"));
    if (!(v = mget(n, "custom")) || !want(c, v, BG_YNODE_SEQ, "classification.custom"))
        return;
    cfg->classification.custom = xcalloc(v->n, sizeof *cfg->classification.custom);
    for (size_t i = 0; i < v->n; i++) {
        const bg_ynode_t *it = v->items[i], *f;
        if (!want(c, it, BG_YNODE_MAP, "custom detector") || !check_keys(c, it, ckeys, "custom detector"))
            continue;
        bg_custom_detector_t *d = &cfg->classification.custom[cfg->classification.ncustom++];
        d->digits = -1;
        if ((f = require(c, it, "name", "custom detector")))
            get_str(c, f, "custom detector name", &d->name);
        if ((f = require(c, it, "category", "custom detector"))) {
            const char *s = scalar(c, f, "custom detector category");
            int cat = s ? bg_category_parse(s, strlen(s)) : -1;
            if (s && cat < 0)
                ERR(c, f->pos, "custom detector category: unknown category '%s'%s", qn(c, f),
                    hint(c, s, cats, BG_CAT__COUNT));
            d->category = cat < 0 ? 0 : (uint32_t)cat;
        }
        if ((f = require(c, it, "keys", "custom detector")) && want(c, f, BG_YNODE_SEQ, "custom detector keys")) {
            if (f->n == 0)
                ERR(c, f->pos, "custom detector keys: at least one key is needed");
            d->keys = xcalloc(f->n, sizeof(char *));
            for (size_t k = 0; k < f->n; k++) {
                char *key = NULL;
                if (get_str(c, f->items[k], "custom detector key", &key))
                    d->keys[d->nkeys++] = key;
            }
        }
        if ((f = mget(it, "prefix")))
            get_str(c, f, "custom detector prefix", &d->prefix);
        uint64_t dg;
        if ((f = mget(it, "digits")) && get_uint(c, f, "custom detector digits", 1, 64, &dg))
            d->digits = (int)dg;
    }
}

static bool key_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || is_digit((unsigned char)s[i]) ||
              s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

static void parse_encryption(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const keys[] = {"keys", "active_key", NULL};
    bg_config_t *cfg = c->cfg;
    const bg_ynode_t *k, *a;
    if (!want(c, n, BG_YNODE_MAP, "encryption") || !check_keys(c, n, keys, "encryption"))
        return;
    k = require(c, n, "keys", "encryption");
    a = require(c, n, "active_key", "encryption");
    if (!k || !a)
        return;
    cfg->encryption.keys_pos = k->pos;
    bool dir_ok = get_path(c, k, "encryption.keys", true, &cfg->encryption.keys_dir);
    if (!get_str(c, a, "encryption.active_key", &cfg->encryption.active_key))
        return;
    if (!key_id_ok(cfg->encryption.active_key)) {
        ERR(c, a->pos, "encryption.active_key: '%s' is not a key id (letters, digits, '_', '-', '.')", qn(c, a));
        return;
    }
    if (dir_ok) {
        bg_buf_t p;
        bg_buf_init(&p);
        bg_buf_printf(&p, "%s/%s.key", cfg->encryption.keys_dir, cfg->encryption.active_key);
        bool active_ok = check_path(c, a, "encryption.active_key", p.data, false);
        bg_buf_dispose(&p);
        /* Open the keys as the gateway will (every file: its id, mode 0600, base64 of 64 bytes), so a
         * key it would refuse is reported here, at the line naming the directory, rather than later
         * by the runtime with no position. Nothing of a key reaches a message. */
        bg_keyring_t *ring = NULL;
        char err[512];
        if (active_ok && bg_keyring_load(cfg->encryption.keys_dir, cfg->encryption.active_key, &ring, err,
                                         sizeof err) < 0) {
            for (char *q = err; *q; q++) /* file names from the directory listing: one printable line */
                if ((unsigned char)*q < 0x20 || (unsigned char)*q == 0x7f)
                    *q = '?';
            ERR(c, k->pos, "encryption.keys: %s", err);
        }
        bg_keyring_destroy(ring);
    }
}

static void parse_records(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const keys[] = {"path", "rotate_size", "retention_days", "fsync", "queue_size", "stall_timeout", NULL};
    static const char *const fsyncs[] = {"batch", "always", "never", NULL};
    bg_config_t *cfg = c->cfg;
    const bg_ynode_t *v;
    uint64_t u;
    if (!want(c, n, BG_YNODE_MAP, "records"))
        return;
    check_keys(c, n, keys, "records");
    if ((v = mget(n, "path")) && get_str(c, v, "records.path", &cfg->records.path) && !cfg->records.path[0])
        ERR(c, v->pos, "records.path: must not be empty");
    if ((v = mget(n, "rotate_size")))
        get_size(c, v, "records.rotate_size", 4096, 1ull << 50, &cfg->records.rotate_size);
    if ((v = mget(n, "retention_days")) && get_uint(c, v, "records.retention_days", 1, 36500, &u))
        cfg->records.retention_days = (int)u;
    if ((v = mget(n, "queue_size")) && get_uint(c, v, "records.queue_size", 16, 1u << 20, &u))
        cfg->records.queue_size = (uint32_t)u;
    if ((v = mget(n, "stall_timeout")))
        get_duration(c, v, "records.stall_timeout", &cfg->records.stall_timeout_ms);
    if ((v = mget(n, "fsync"))) {
        int e = get_enum(c, v, "records.fsync", fsyncs);
        if (e >= 0)
            cfg->records.fsync = (bg_fsync_t)e;
    }
}

static void parse_metrics(ctx_t *c, const bg_ynode_t *n)
{
    static const char *const keys[] = {"max_series", NULL};
    const bg_ynode_t *v;
    uint64_t u;
    if (!want(c, n, BG_YNODE_MAP, "metrics"))
        return;
    check_keys(c, n, keys, "metrics");
    /* Each worker allocates twice this many slots up front and a scrape walks them all. */
    if ((v = mget(n, "max_series")) && get_uint(c, v, "metrics.max_series", 16, 262144, &u))
        c->cfg->metrics.max_series = (uint32_t)u;
}

/* ------------------------------------------------------------------ vendors */

static bool vendor_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || is_digit((unsigned char)s[i]) ||
              s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

/* Lowercase h in place and check it is a DNS name, optionally "*." + a name of 2+ labels. */
static bool host_ok(char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (h[i] >= 'A' && h[i] <= 'Z')
            h[i] = (char)(h[i] + 32);
    char *p = h;
    if (p[0] == '*') {
        if (p[1] != '.' || !strchr(p + 2, '.'))
            return false;
        p += 2;
    }
    size_t label = 0;
    for (; *p; p++) {
        char ch = *p;
        if (ch == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || is_digit((unsigned char)ch) || ch == '-' || ch == '_'))
            return false;
        if (label == 0 && ch == '-')
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0 && p[-1] != '-';
}

/* "*.co.uk", "*.com.au", "*.gov.uk": a wildcard whose suffix is a generic second-level label under a
 * two-letter country code is a public suffix, as "*.com" is a top-level one (host_ok refuses
 * those). Not the whole Public Suffix List, but the registries' common shapes: such a pattern
 * would route every company registered there to one vendor. h is lowercase. */
static bool wildcard_public_suffix(const char *h)
{
    static const char *const sld[] = {"ac", "co", "com", "edu", "go", "gob", "gouv", "gov", "govt", "ltd", "mil",
                                      "ne", "net", "nhs", "nom", "or", "org", "plc", "sch", NULL};
    if (h[0] != '*')
        return false;
    const char *first = h + 2, *dot = strchr(first, '.');
    if (!dot || strchr(dot + 1, '.') || strlen(dot + 1) != 2)
        return false;
    for (size_t i = 0; sld[i]; i++)
        if (strlen(sld[i]) == (size_t)(dot - first) && memcmp(sld[i], first, (size_t)(dot - first)) == 0)
            return true;
    return false;
}

static void push_host(ctx_t *c, const char *host, size_t vendor, bg_pos_t pos)
{
    if ((c->nhosts & (c->nhosts - 1)) == 0)
        c->hosts = xrealloc(c->hosts, (c->nhosts ? c->nhosts * 2 : 8) * sizeof *c->hosts);
    c->hosts[c->nhosts].host = host;
    c->hosts[c->nhosts].vendor = vendor;
    c->hosts[c->nhosts].pos = pos;
    c->nhosts++;
}

/* An upstream address: an IP literal ("203.0.113.10", "2001:db8::1" or "[2001:db8::1]"). */
static bool get_upstream_addr(ctx_t *c, const bg_ynode_t *n, uint16_t port, bg_sockaddr_t *out)
{
    const char *s = scalar(c, n, "upstream address");
    if (!s)
        return false;
    size_t len = strlen(s);
    const char *ip = s;
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        ip = s + 1;
        len -= 2;
    }
    uint8_t addr[16];
    int fam = parse_ip(ip, len, addr);
    if (!fam) {
        ERR(c, n->pos, "upstream address: '%s' is not an IP address (no port here: set upstream.port)", qn(c, n));
        return false;
    }
    memset(out, 0, sizeof *out);
    if (fam == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, addr, 4);
        out->addrlen = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        memcpy(&sin6->sin6_addr, addr, 16);
        out->addrlen = sizeof *sin6;
    }
    out->text = xstrdup(s);
    return true;
}

static void parse_upstream(ctx_t *c, bg_vendor_t *v, const bg_ynode_t *n)
{
    static const char *const keys[] = {"port", "tls", "verify", "ca", "client_certificate", "client_key",
                                       "sni", "addresses", "protocol", "max_connections", NULL};
    static const char *const protos[] = {"auto", "http1", "http2", NULL};
    const bg_ynode_t *f;
    uint64_t port = 0;
    if (!want(c, n, BG_YNODE_MAP, "upstream"))
        return;
    check_keys(c, n, keys, "upstream");
    if ((f = mget(n, "tls")))
        get_bool(c, f, "upstream.tls", &v->upstream.tls);
    if ((f = mget(n, "port")))
        get_uint(c, f, "upstream.port", 1, 65535, &port);
    v->upstream.port = port ? (uint16_t)port : v->upstream.tls ? 443 : 80;
    if ((f = mget(n, "verify")) && get_bool(c, f, "upstream.verify", &v->upstream.verify) && !v->upstream.verify)
        WARN(c, f->pos, "vendor '%s': upstream verify: false; the vendor's certificate is not checked", v->name);
    if ((f = mget(n, "ca"))) {
        v->upstream.ca_pos = f->pos;
        get_path(c, f, "upstream.ca", false, &v->upstream.ca);
    }
    const bg_ynode_t *cc = mget(n, "client_certificate"), *ck = mget(n, "client_key");
    if (cc) {
        v->upstream.client_certificate_pos = cc->pos;
        get_path(c, cc, "upstream.client_certificate", false, &v->upstream.client_certificate);
    }
    if (ck) {
        v->upstream.client_key_pos = ck->pos;
        get_path(c, ck, "upstream.client_key", false, &v->upstream.client_key);
    }
    if (!cc != !ck)
        ERR(c, (cc ? cc : ck)->pos, "vendor '%s': upstream client_certificate and client_key go together", v->name);
    if ((f = mget(n, "sni")) && get_str(c, f, "upstream.sni", &v->upstream.sni)) {
        char *tmp = xstrdup(v->upstream.sni);
        if (!host_ok(tmp) || tmp[0] == '*')
            ERR(c, f->pos, "upstream.sni: '%s' is not a host name", qn(c, f));
        free(tmp);
    }
    uint64_t mc;
    if ((f = mget(n, "max_connections")) && get_uint(c, f, "upstream.max_connections", 1, 1000000, &mc))
        v->upstream.max_connections = (uint32_t)mc;
    if ((f = mget(n, "protocol"))) {
        int e = get_enum(c, f, "upstream.protocol", protos);
        if (e == BG_PROTO_HTTP2 && !v->upstream.tls)
            ERR(c, f->pos, "vendor '%s': upstream.protocol: http2 needs upstream tls: true (HTTP/2 to vendors is negotiated by ALPN; cleartext h2c is not spoken)", v->name);
        else if (e >= 0)
            v->upstream.protocol = (bg_upstream_proto_t)e;
    }
    if ((f = mget(n, "addresses")) && want(c, f, BG_YNODE_SEQ, "upstream.addresses")) {
        if (f->n == 0)
            ERR(c, f->pos, "upstream.addresses: leave it out to use DNS, or list at least one address");
        v->upstream.addresses = xcalloc(f->n, sizeof *v->upstream.addresses);
        for (size_t i = 0; i < f->n; i++)
            if (get_upstream_addr(c, f->items[i], v->upstream.port, &v->upstream.addresses[v->upstream.naddresses]))
                v->upstream.naddresses++;
    }
}

static void parse_vendor_regions(ctx_t *c, bg_vendor_t *v, const bg_ynode_t *n)
{
    bg_config_t *cfg = c->cfg;
    if (!want(c, n, BG_YNODE_SEQ, "regions"))
        return;
    if (n->n == 0)
        ERR(c, n->pos, "vendor '%s': regions must name at least one country or region", v->name);
    v->regions = xcalloc(n->n, sizeof *v->regions);
    const char **cands = xcalloc(cfg->nregions + 1, sizeof *cands);
    for (size_t i = 0; i < cfg->nregions; i++)
        cands[i] = cfg->regions[i].name;
    cands[cfg->nregions] = "adequate";
    for (size_t i = 0; i < n->n; i++) {
        const bg_ynode_t *it = n->items[i];
        const char *s = scalar(c, it, "vendor region");
        if (!s)
            continue;
        bg_region_ref_t *r = &v->regions[v->nregions];
        if (strcmp(s, "adequate") == 0 || region_index(cfg, s) >= 0) {
            r->is_region = true;
            r->name = xstrdup(s);
            v->nregions++;
        } else if (it->len == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z') {
            if (get_country(c, it, "vendor region", r->country))
                v->nregions++;
        } else if (c->regions_ok) {
            const char *h = hint(c, s, cands, cfg->nregions + 1);
            if (!h[0] && it->len == 2) {
                char up[3] = {(char)(s[0] & ~0x20), (char)(s[1] & ~0x20), 0};
                if (bg_country_valid(up)) {
                    char *o = c->q[c->qi++ & 3];
                    snprintf(o, sizeof c->q[0], " (did you mean %s?)", up);
                    h = o;
                }
            }
            ERR(c, it->pos, "vendor '%s': unknown region '%s'%s", v->name, qn(c, it), h);
        }
    }
    free(cands);
}

static void warn_expiry(ctx_t *c, const bg_vendor_t *v, const bg_ynode_t *at, const char *what, int64_t expires)
{
    if (expires <= c->now) {
        WARN(c, at->pos, "vendor '%s': %s expired on %s; it is no transfer basis", v->name, what, qn(c, at));
        return;
    }
    int64_t days = (expires - c->now + DAY_S - 1) / DAY_S;
    if (days <= WARN_DAYS)
        WARN(c, at->pos, "vendor '%s': %s expires on %s (in %lld day%s)", v->name, what, qn(c, at),
             (long long)days, days == 1 ? "" : "s");
}

/* role_known: the vendor's role parsed (or was left at its default), so a module it cannot sign is
 * this SCC's problem and not an echo of a bad role. */
static void parse_scc(ctx_t *c, bg_vendor_t *v, const bg_ynode_t *n, bool role_known)
{
    static const char *const kinds[] = {"", "controller to controller", "controller to processor",
                                        "processor to processor", "processor to controller"};
    static const char *const keys[] = {"module", "reference", "signed", "expires", NULL};
    const bg_ynode_t *m, *s, *e, *r;
    if (!want(c, n, BG_YNODE_MAP, "scc") || !check_keys(c, n, keys, "scc"))
        return;
    m = require(c, n, "module", "scc");
    s = require(c, n, "signed", "scc");
    e = require(c, n, "expires", "scc");
    bool ok = m && s && e;
    if (m) {
        const char *ms = scalar(c, m, "scc.module");
        if (ms && (m->len != 1 || ms[0] < '1' || ms[0] > '4')) {
            ERR(c, m->pos, "vendor '%s': scc module must be 1, 2, 3 or 4 (Decision 2021/914), got %s", v->name,
                kind_desc(c, m));
            ok = false;
        } else if (!ms) {
            ok = false;
        } else {
            v->scc.module = ms[0] - '0';
        }
    }
    if ((r = mget(n, "reference")) && !get_str(c, r, "scc.reference", &v->scc.reference))
        ok = false;
    if (s && !get_date(c, s, "scc.signed", &v->scc.signed_at))
        ok = false;
    if (e && !get_date(c, e, "scc.expires", &v->scc.expires))
        ok = false;
    if (!ok)
        return;
    if (v->scc.expires <= v->scc.signed_at) {
        ERR(c, e->pos, "vendor '%s': scc expires %s is not after signed %s", v->name, qn(c, e), qn(c, s));
        return;
    }
    /* The policy refuses a module the importer's role cannot sign on every request; loading it would
     * pass `check` and then block every transfer the SCC was written for. */
    if (role_known && !bg_policy_scc_module_fits(v->scc.module, v->role)) {
        bool ctrl = v->role == BG_ROLE_CONTROLLER;
        ERR(c, m->pos, "vendor '%s': scc module %d (%s) does not fit role %s (a %s signs module %s)", v->name,
            v->scc.module, kinds[v->scc.module], ctrl ? "controller" : "processor",
            ctrl ? "controller" : "processor", ctrl ? "1 or 4" : "2 or 3");
        return;
    }
    v->has_scc = true;
    /* Signed ahead of time is a valid config (deployed before it takes effect), but no basis yet. */
    if (v->scc.signed_at > c->now) {
        int64_t days = (v->scc.signed_at - c->now + DAY_S - 1) / DAY_S;
        WARN(c, s->pos, "vendor '%s': scc signed %s is in the future; it is no transfer basis before then (in %lld "
             "day%s)", v->name, qn(c, s), (long long)days, days == 1 ? "" : "s");
    }
    warn_expiry(c, v, e, "scc", v->scc.expires);
}

static void parse_dpf(ctx_t *c, bg_vendor_t *v, const bg_ynode_t *n)
{
    static const char *const keys[] = {"certified", "expires", NULL};
    const bg_ynode_t *cert, *e;
    if (!want(c, n, BG_YNODE_MAP, "dpf") || !check_keys(c, n, keys, "dpf"))
        return;
    if (!(cert = require(c, n, "certified", "dpf")) || !get_bool(c, cert, "dpf.certified", &v->dpf.certified))
        return;
    if ((e = mget(n, "expires"))) {
        if (!get_date(c, e, "dpf.expires", &v->dpf.expires))
            return;
        if (v->dpf.certified)
            warn_expiry(c, v, e, "dpf certification", v->dpf.expires);
    } else if (v->dpf.certified) {
        /* The policy never counts a certification without a date (they lapse unless renewed each
         * year): accepting it here would pass `check` and block every transfer to the US. */
        ERR(c, n->pos, "vendor '%s': dpf certified: true needs 'expires' (the date the certification must be "
            "renewed by); without it the certification is no transfer basis", v->name);
        return;
    }
    v->has_dpf = true;
}

/* Whether the vendor has a basis for one destination country; sets *why when not. */
static bool basis_covers(ctx_t *c, const bg_vendor_t *v, const char *cc, const char **why)
{
    bg_adequacy_scope_t scope = BG_SCOPE_FULL;
    bg_dest_kind_t k = bg_config_dest_kind(c->cfg, cc, &scope);
    bool sccbcr = v->has_scc || v->bcr;
    if (k == BG_DEST_DOMESTIC || (k == BG_DEST_ADEQUATE && scope == BG_SCOPE_FULL))
        return true;
    if (k == BG_DEST_ADEQUATE && scope == BG_SCOPE_DPF) {
        *why = "its adequacy decision covers only DPF-certified organisations; add dpf.certified: true, scc or bcr";
        return sccbcr || (v->has_dpf && v->dpf.certified);
    }
    if (k == BG_DEST_ADEQUATE && scope == BG_SCOPE_COMMERCIAL) {
        *why = "its adequacy decision covers only commercial organisations and the vendor is a public body; add "
               "scc or bcr";
        return sccbcr || !v->public_body;
    }
    *why = "a third country; add scc or bcr";
    return sccbcr;
}

/* Every destination a vendor is approved for must have a basis (or be domestic/adequate). */
static void check_basis(ctx_t *c, const bg_vendor_t *v, const bg_ynode_t *regs, bool warn_only)
{
    void (*report)(bg_diag_t *, const char *, bg_pos_t, const char *, ...) =
        warn_only ? bg_diag_warn : bg_diag_error;
    const bg_config_t *cfg = c->cfg;
    size_t ri = 0;
    for (size_t i = 0; i < regs->n && ri < v->nregions; i++) {
        const bg_ynode_t *it = regs->items[i];
        const bg_region_ref_t *r = &v->regions[ri];
        /* regions[] holds only the entries that parsed; match them up by text. */
        const char *text = r->is_region ? r->name : r->country;
        if (it->kind != BG_YNODE_SCALAR || strcmp(it->str, text) != 0)
            continue;
        ri++;
        const char *why = NULL;
        if (!r->is_region) {
            if (!basis_covers(c, v, r->country, &why))
                report(c->d, c->file, it->pos, "vendor '%s' is approved for %s but has no transfer basis for it: %s", v->name,
                    r->country, why);
            continue;
        }
        const bg_region_t *reg = NULL;
        size_t count;
        int idx = region_index(cfg, r->name);
        if (idx >= 0) {
            reg = &cfg->regions[idx];
            count = reg->ncountries;
        } else {
            count = cfg->nadequacy; /* "adequate" */
        }
        for (size_t k = 0; k < count; k++) {
            const char *cc = reg ? reg->countries[k] : cfg->adequacy[k].country;
            if (!basis_covers(c, v, cc, &why)) {
                report(c->d, c->file, it->pos, "vendor '%s' is approved for region '%s', which includes %s, but has no transfer "
                    "basis for %s: %s", v->name, r->name, cc, cc, why);
                break;
            }
        }
    }
}

static void parse_vendor(ctx_t *c, const bg_ynode_t *n, bool have_encryption)
{
    static const char *const keys[] = {"name", "entity", "role", "hosts", "upstream", "regions", "categories",
                                       "scc", "dpf", "bcr", "basis", "on_violation", "reveal_responses", "ai",
                                       "max_body", NULL};
    static const char *const ekeys[] = {"name", "country", "public_body", NULL};
    static const char *const roles[] = {"processor", "controller", NULL};
    static const char *const viol[] = {"block", "encrypt", NULL};
    bg_config_t *cfg = c->cfg;
    const bg_ynode_t *f, *nm, *hosts, *regs;
    const char *cats[BG_CAT__COUNT];
    for (int i = 0; i < BG_CAT__COUNT; i++)
        cats[i] = bg_category_name(i);
    if (!want(c, n, BG_YNODE_MAP, "vendor"))
        return;
    check_keys(c, n, keys, "vendor");
    if (!(nm = require(c, n, "name", "vendor")))
        return;
    const char *name = scalar(c, nm, "vendor name");
    if (!name)
        return;
    if (!vendor_name_ok(name)) {
        ERR(c, nm->pos, "vendor name '%s' may only contain letters, digits, '.', '_' and '-' (at most 64)",
            qn(c, nm));
        return;
    }
    size_t vi = cfg->nvendors++;
    bg_vendor_t *v = &cfg->vendors[vi];
    v->name = xstrdup(name);
    v->pos = nm->pos;
    v->upstream.tls = true;
    v->upstream.verify = true;
    v->upstream.port = 443;

    if ((f = mget(n, "entity")) && want(c, f, BG_YNODE_MAP, "entity") && check_keys(c, f, ekeys, "entity")) {
        const bg_ynode_t *g;
        if ((g = mget(f, "name")))
            get_str(c, g, "entity.name", &v->entity_name);
        if ((g = mget(f, "country")))
            get_country(c, g, "entity.country", v->entity_country);
        if ((g = mget(f, "public_body")))
            get_bool(c, g, "entity.public_body", &v->public_body);
    }
    bool role_known = true;
    if ((f = mget(n, "role"))) {
        int e = get_enum(c, f, "role", roles);
        if (e >= 0)
            v->role = (bg_role_t)e;
        role_known = e >= 0;
    }
    if ((hosts = require(c, n, "hosts", "vendor")) && want(c, hosts, BG_YNODE_SEQ, "hosts")) {
        if (hosts->n == 0)
            ERR(c, hosts->pos, "vendor '%s': hosts must list at least one host", v->name);
        v->hosts = xcalloc(hosts->n, sizeof(char *));
        for (size_t i = 0; i < hosts->n; i++) {
            const bg_ynode_t *h = hosts->items[i];
            char *host = NULL;
            if (!get_str(c, h, "host", &host))
                continue;
            if (strchr(host, ':') && !strchr(host, '['))
                ERR(c, h->pos, "vendor '%s': host '%s' must not include a port (set upstream.port)", v->name, qn(c, h));
            else if (!host_ok(host))
                ERR(c, h->pos, "vendor '%s': '%s' is not a valid host name (letters, digits, '-' and dots; a "
                    "wildcard only as '*.' in front of two or more labels)", v->name, qn(c, h));
            else if (wildcard_public_suffix(host))
                ERR(c, h->pos, "vendor '%s': '%s' would match every host under the public suffix '%s'; name the "
                    "vendor's own domain (such as '*.vendor.%s')", v->name, host, host + 2, host + 2);
            else {
                v->hosts[v->nhosts++] = host;
                push_host(c, host, vi, h->pos);
                continue;
            }
            free(host);
        }
    }
    if ((f = mget(n, "upstream")))
        parse_upstream(c, v, f);
    if ((regs = require(c, n, "regions", "vendor")))
        parse_vendor_regions(c, v, regs);
    if ((f = mget(n, "categories")) && want(c, f, BG_YNODE_SEQ, "categories")) {
        for (size_t i = 0; i < f->n; i++) {
            const char *s = scalar(c, f->items[i], "category");
            int cat = s ? bg_category_parse(s, strlen(s)) : -1;
            if (s && cat < 0)
                ERR(c, f->items[i]->pos, "vendor '%s': unknown category '%s'%s", v->name, qn(c, f->items[i]),
                    hint(c, s, cats, BG_CAT__COUNT));
            if (cat >= 0)
                v->categories |= 1u << cat;
        }
    }
    v->ai = (v->categories & (1u << BG_CAT_AI_INTERACTION)) != 0;
    /* A basis that is present but broken is reported once, not again as "no basis". */
    size_t basis_errors = c->d->nerrors;
    if ((f = mget(n, "scc")))
        parse_scc(c, v, f, role_known);
    if ((f = mget(n, "dpf")))
        parse_dpf(c, v, f);
    if ((f = mget(n, "bcr")))
        get_bool(c, f, "bcr", &v->bcr);
    basis_errors = c->d->nerrors - basis_errors;
    if ((f = mget(n, "on_violation"))) {
        int e = get_enum(c, f, "on_violation", viol);
        if (e >= 0)
            v->on_violation = (bg_violation_t)e;
        if (e == BG_VIOLATION_ENCRYPT && !have_encryption)
            ERR(c, f->pos, "vendor '%s': on_violation: encrypt needs an 'encryption' section (keys and active_key)",
                v->name);
    }
    if ((f = mget(n, "reveal_responses")) && get_bool(c, f, "reveal_responses", &v->reveal_responses) &&
        v->reveal_responses && v->on_violation != BG_VIOLATION_ENCRYPT)
        /* The data plane opens tokens in any answer of a vendor with reveal_responses, sealed for it
         * or not: on a vendor that never gets tokens that is almost certainly not what was meant. */
        WARN(c, f->pos, "vendor '%s': reveal_responses: true with on_violation: block: no tokens are sealed for "
             "this vendor, yet any token in its answers would be opened", v->name);
    if ((f = mget(n, "ai")))
        get_bool(c, f, "ai", &v->ai);
    if ((f = mget(n, "max_body")))
        get_size(c, f, "max_body", 1, 1ull << 50, &v->max_body);
    /* `basis: none` declares on purpose that the vendor has no transfer basis: approving it for a
     * third country is then a warning (personal data to it always meets on_violation), not an error. */
    bool no_basis = false;
    if ((f = mget(n, "basis"))) {
        static const char *const bases[] = {"none", NULL};
        no_basis = get_enum(c, f, "basis", bases) == 0;
        if (no_basis && (v->has_scc || v->bcr || (v->has_dpf && v->dpf.certified)))
            ERR(c, f->pos, "vendor '%s': basis: none contradicts its scc, dpf or bcr", v->name);
    }
    if (regs && regs->kind == BG_YNODE_SEQ && c->regions_ok && cfg->jurisdiction_region >= 0 && !basis_errors)
        check_basis(c, v, regs, no_basis);
}

static int host_cmp(const void *a, const void *b)
{
    const host_ref_t *x = a, *y = b;
    int r = strcmp(x->host, y->host);
    if (r)
        return r;
    if (x->pos.line != y->pos.line)
        return x->pos.line < y->pos.line ? -1 : 1;
    return x->pos.col < y->pos.col ? -1 : x->pos.col > y->pos.col;
}

/* Wildcards ordered by their suffix (".example.com"), for bsearch in warn_overlaps. */
static int wild_cmp(const void *a, const void *b)
{
    const host_ref_t *const *x = a, *const *y = b;
    return strcmp((*x)->host + 1, (*y)->host + 1);
}

/* A host (or wildcard) of one vendor that another vendor's wildcard also matches: routing is
 * well defined (an exact host beats a wildcard, the longest wildcard beats a shorter one, see
 * bg_config_route), but a security team adding "*.example.com" to one vendor may not know that
 * api.example.com belongs to another, or the reverse. A warning names both and who wins.
 * For each pattern, every proper suffix is looked up among the wildcards: O(hosts x labels x
 * log wildcards), whatever the input. */
static void warn_overlaps(ctx_t *c)
{
    const bg_config_t *cfg = c->cfg;
    const host_ref_t **wild = xcalloc(c->nhosts, sizeof *wild);
    size_t nwild = 0;
    for (size_t i = 0; i < c->nhosts; i++)
        if (c->hosts[i].host[0] == '*')
            wild[nwild++] = &c->hosts[i];
    if (nwild == 0) {
        free(wild);
        return;
    }
    qsort(wild, nwild, sizeof *wild, wild_cmp);
    for (size_t i = 0; i < c->nhosts && c->d->nwarnings < MAX_DIAG; i++) {
        const host_ref_t *hr = &c->hosts[i];
        bool is_wild = hr->host[0] == '*';
        /* Proper suffixes that start at a dot: for "*.a.b.c" start after ".a". */
        for (const char *p = strchr(hr->host + (is_wild ? 2 : 0), '.'); p; p = strchr(p + 1, '.')) {
            size_t lo = 0, hi = nwild;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(wild[mid]->host + 1, p) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (; lo < nwild && strcmp(wild[lo]->host + 1, p) == 0; lo++) {
                const host_ref_t *w = wild[lo];
                if (w->vendor == hr->vendor)
                    continue;
                const char *mine = cfg->vendors[hr->vendor].name, *theirs = cfg->vendors[w->vendor].name;
                if (is_wild)
                    WARN(c, hr->pos, "hosts under '%s' of vendor '%s' are also matched by '%s' of vendor '%s' (line %d); "
                         "they go to '%s' (the longest wildcard wins)", hr->host, mine, w->host, theirs, w->pos.line, mine);
                else
                    WARN(c, hr->pos, "host '%s' of vendor '%s' is also matched by '%s' of vendor '%s' (line %d); "
                         "requests for it go to '%s' (an exact host wins over a wildcard)", hr->host, mine, w->host,
                         theirs, w->pos.line, mine);
            }
        }
    }
    free(wild);
}

static int vendor_cmp(const void *a, const void *b)
{
    const bg_vendor_t *const *x = a, *const *y = b;
    int r = strcmp((*x)->name, (*y)->name);
    if (r)
        return r;
    return (*x)->pos.line < (*y)->pos.line ? -1 : (*x)->pos.line > (*y)->pos.line;
}

static void parse_vendors(ctx_t *c, const bg_ynode_t *n, bool have_encryption)
{
    bg_config_t *cfg = c->cfg;
    if (!want(c, n, BG_YNODE_SEQ, "vendors"))
        return;
    cfg->vendors = xcalloc(n->n, sizeof *cfg->vendors);
    for (size_t i = 0; i < n->n; i++)
        parse_vendor(c, n->items[i], have_encryption);
    /* Duplicate names, and hosts listed twice: sort, then compare neighbours. */
    if (cfg->nvendors > 1) {
        const bg_vendor_t **byname = xcalloc(cfg->nvendors, sizeof *byname);
        for (size_t i = 0; i < cfg->nvendors; i++)
            byname[i] = &cfg->vendors[i];
        qsort(byname, cfg->nvendors, sizeof *byname, vendor_cmp);
        for (size_t i = 1; i < cfg->nvendors; i++)
            if (strcmp(byname[i]->name, byname[i - 1]->name) == 0)
                ERR(c, byname[i]->pos, "duplicate vendor name '%s' (first at line %d)", byname[i]->name,
                    byname[i - 1]->pos.line);
        free(byname);
    }
    if (c->nhosts > 1)
        qsort(c->hosts, c->nhosts, sizeof *c->hosts, host_cmp);
    for (size_t i = 1; i < c->nhosts; i++) {
        const host_ref_t *a = &c->hosts[i - 1], *b = &c->hosts[i];
        if (strcmp(a->host, b->host) != 0)
            continue;
        if (a->vendor == b->vendor)
            ERR(c, b->pos, "vendor '%s': duplicate host '%s' (first at line %d)", cfg->vendors[b->vendor].name,
                qs(c, b->host, strlen(b->host)), a->pos.line);
        else
            ERR(c, b->pos, "host '%s' is on two vendors: '%s' (line %d) and '%s'", qs(c, b->host, strlen(b->host)),
                cfg->vendors[a->vendor].name, a->pos.line, cfg->vendors[b->vendor].name);
    }
    warn_overlaps(c);
}

/* ------------------------------------------------------------------ snapshot */

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void config_free(bg_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->jurisdiction);
    for (size_t i = 0; i < cfg->nlisten; i++) {
        free(cfg->listen[i].address.text);
        free(cfg->listen[i].certificate);
        free(cfg->listen[i].key);
        free(cfg->listen[i].client_ca);
        free(cfg->listen[i].vendor);
    }
    free(cfg->listen);
    free(cfg->admin.address.text);
    if (cfg->admin.token) {
        /* The admin token is a secret: wipe it before the memory is reused. */
        OPENSSL_cleanse(cfg->admin.token, strlen(cfg->admin.token));
        free(cfg->admin.token);
    }
    free(cfg->user);
    free(cfg->pid_file);
    free(cfg->geoip.database);
    free(cfg->geoip.overrides);
    free(cfg->regions_path);
    for (size_t i = 0; i < cfg->nregions; i++) {
        free(cfg->regions[i].name);
        free(cfg->regions[i].countries);
    }
    free(cfg->regions);
    free(cfg->adequacy);
    free_strv(cfg->classification.detectors, cfg->classification.ndetectors);
    for (size_t i = 0; i < cfg->classification.ncustom; i++) {
        bg_custom_detector_t *d = &cfg->classification.custom[i];
        free(d->name);
        free_strv(d->keys, d->nkeys);
        free(d->prefix);
    }
    free(cfg->classification.custom);
    free(cfg->encryption.keys_dir);
    free(cfg->encryption.active_key);
    free(cfg->records.path);
    for (size_t i = 0; i < cfg->nvendors; i++) {
        bg_vendor_t *v = &cfg->vendors[i];
        free(v->name);
        free(v->entity_name);
        free_strv(v->hosts, v->nhosts);
        free(v->upstream.ca);
        free(v->upstream.client_certificate);
        free(v->upstream.client_key);
        free(v->upstream.sni);
        for (size_t k = 0; k < v->upstream.naddresses; k++)
            free(v->upstream.addresses[k].text);
        free(v->upstream.addresses);
        for (size_t k = 0; k < v->nregions; k++)
            free(v->regions[k].name);
        free(v->regions);
        free(v->scc.reference);
    }
    free(cfg->vendors);
    free(cfg);
}

static void set_defaults(bg_config_t *cfg)
{
    atomic_init(&cfg->refcount, 1);
    cfg->mode = BG_MODE_ENFORCE;
    bg_parse_sockaddr("127.0.0.1:9901", &cfg->admin.address);
    cfg->admin.enabled = true;
    cfg->io_uring = true;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
    cfg->limits.max_body_scan = 1u << 20;
    cfg->limits.max_body_scan_per_connection = 16u << 20;
    cfg->limits.max_body_scan_total = 512u << 20;
    cfg->limits.max_body = 64u << 20;
    cfg->limits.oversize_body = BG_OVERSIZE_BLOCK;
    cfg->limits.header_timeout_ms = 10000;
    cfg->limits.idle_timeout_ms = 60000;
    cfg->limits.dns_ttl_ms = 30000;
    cfg->limits.body_timeout_ms = 60000;
    cfg->limits.upstream_connect_timeout_ms = 5000;
    cfg->limits.upstream_timeout_ms = 30000;
    cfg->limits.drain_timeout_ms = 30000;
    cfg->limits.max_connections = 10000;
    cfg->limits.max_header_size = 16u << 10;
    cfg->limits.max_headers = 100;
    cfg->limits.max_uri = 8u << 10;
    cfg->limits.max_inflate = 16u << 20;
    cfg->geoip.database = xstrdup("config/geoip/dbip-country-lite.mmdb");
    cfg->geoip.schema = BG_GEO_SCHEMA_AUTO;
    cfg->geoip.registered_country_fallback = true;
    cfg->regions_path = xstrdup("config/regions.yaml");
    cfg->jurisdiction_region = -1;
    cfg->classification.all = true;
    cfg->records.path = xstrdup("records/transfers.jsonl");
    cfg->records.rotate_size = 100ull << 20;
    cfg->records.retention_days = 400;
    cfg->records.fsync = BG_FSYNC_BATCH;
    cfg->records.queue_size = 16384;
    cfg->records.stall_timeout_ms = 30000;
    cfg->metrics.max_series = 4096;
}

static void parse_jurisdiction(ctx_t *c, const bg_ynode_t *n)
{
    bg_config_t *cfg = c->cfg;
    if (!get_str(c, n, "jurisdiction", &cfg->jurisdiction) || !c->regions_ok)
        return;
    int idx = region_index(cfg, cfg->jurisdiction);
    if (idx >= 0) {
        cfg->jurisdiction_region = idx;
        return;
    }
    if (bg_country_valid(cfg->jurisdiction)) {
        ERR(c, n->pos, "jurisdiction: '%s' is a country, not a region; name a region of %s (such as EEA)",
            cfg->jurisdiction, qs(c, cfg->regions_path, strlen(cfg->regions_path)));
        return;
    }
    const char **cands = xcalloc(cfg->nregions, sizeof *cands);
    for (size_t i = 0; i < cfg->nregions; i++)
        cands[i] = cfg->regions[i].name;
    ERR(c, n->pos, "jurisdiction: unknown region '%s'%s", qn(c, n), hint(c, cfg->jurisdiction, cands, cfg->nregions));
    free(cands);
}

/* Position of a "FILE:LINE:COL: ..." message as a sort key: the regions file's messages first,
 * then the config's, each by line and column. Anything else sorts last. */
static uint64_t msg_key(const char *m, const char *name, const char *regions)
{
    uint64_t group;
    size_t skip;
    if (regions && strncmp(m, regions, strlen(regions)) == 0 && m[strlen(regions)] == ':') {
        group = 0;
        skip = strlen(regions);
    } else if (strncmp(m, name, strlen(name)) == 0 && m[strlen(name)] == ':') {
        group = 1;
        skip = strlen(name);
    } else {
        return UINT64_MAX;
    }
    const char *p = m + skip + 1;
    uint64_t line = 0, col = 0;
    if (parse_u64(&p, &line) != 0 || *p != ':')
        return group << 62; /* "FILE: message": first in its file */
    p++;
    if (parse_u64(&p, &col) != 0)
        col = 0;
    if (line > 0x3fffffff)
        line = 0x3fffffff;
    if (col > 0xffffffff)
        col = 0xffffffff;
    return group << 62 | line << 32 | col;
}

/* Sort the messages a load added (from index `from`) into file order; stable, so messages at
 * one position keep the order they were found in. At most MAX_DIAG + 1 entries. */
static void sort_messages(char **list, size_t from, size_t n, const char *name, const char *regions)
{
    if (n > MAX_DIAG) /* keep the "too many problems" line last */
        n = MAX_DIAG;
    for (size_t i = from + 1; i < n; i++) {
        char *m = list[i];
        uint64_t k = msg_key(m, name, regions);
        size_t j = i;
        while (j > from && msg_key(list[j - 1], name, regions) > k) {
            list[j] = list[j - 1];
            j--;
        }
        list[j] = m;
    }
}

static int load(const char *name, const char *data, size_t len, int64_t now_s, bg_config_t **out, bg_diag_t *d)
{
    static const char *const top_keys[] = {"jurisdiction", "mode", "listen", "admin", "workers", "user",
                                           "pid_file", "io_uring", "limits", "geoip", "regions", "classification",
                                           "encryption", "records", "metrics", "vendors", NULL};
    static const char *const modes[] = {"enforce", "report-only", NULL};
    size_t before = d->nerrors, wbefore = d->nwarnings;
    bg_config_t *cfg = xcalloc(1, sizeof *cfg);
    set_defaults(cfg);
    cfg->path = xstrdup(name);
    ctx_t c;
    memset(&c, 0, sizeof c);
    c.file = name;
    c.d = d;
    c.cfg = cfg;
    c.now = now_s;
    char *rdata = NULL;
    size_t rlen = 0;
    bg_ydoc_t doc;
    const bg_ynode_t *v, *root;
    bg_pos_t top = {1, 1}, nopos = {0, 0};

    if (bg_ydoc_parse(&doc, name, data, len, d) != 0)
        goto fail;
    root = doc.root;
    if (!root || (root->kind == BG_YNODE_SCALAR && root->null)) {
        ERR(&c, top, "empty configuration: expected a mapping with jurisdiction, listen and vendors");
        goto fail;
    }
    if (!want(&c, root, BG_YNODE_MAP, "top level"))
        goto fail;
    check_keys(&c, root, top_keys, "the top level");

    /* The regions file first: jurisdiction and vendors are checked against it. */
    bg_pos_t rpos = {0, 0};
    if ((v = mget(root, "regions"))) {
        if (!get_str(&c, v, "regions", &cfg->regions_path))
            goto fail;
        rpos = v->pos;
    }
    int err = read_file(cfg->regions_path, &rdata, &rlen);
    if (err) {
        ERR(&c, rpos, "regions: cannot read '%s'%s: %s", qs(&c, cfg->regions_path, strlen(cfg->regions_path)),
            rpos.line ? "" : " (the default)", err == EFBIG ? "file too large" : strerror(err));
    } else {
        ctx_t rc = c;
        rc.file = cfg->regions_path;
        c.regions_ok = load_regions(&rc, rdata, rlen);
    }
    {
        /* version: SHA-256 over both inputs, each prefixed with its length so the split is unambiguous. */
        bg_buf_t h;
        bg_buf_init(&h);
        bg_buf_printf(&h, "bordergate-config %zu\n", len);
        bg_buf_append(&h, data, len);
        bg_buf_printf(&h, "\nregions %zu\n", rlen);
        if (rdata)
            bg_buf_append(&h, rdata, rlen);
        bg_sha256_hex(h.data, h.len, cfg->version);
        bg_buf_dispose(&h);
    }

    if ((v = require(&c, root, "jurisdiction", "top level")))
        parse_jurisdiction(&c, v);
    if ((v = mget(root, "mode"))) {
        int e = get_enum(&c, v, "mode", modes);
        if (e >= 0)
            cfg->mode = (bg_mode_t)e;
    }
    if ((v = require(&c, root, "listen", "top level")))
        parse_listen(&c, v);
    if ((v = mget(root, "admin")))
        parse_admin(&c, v);
    if ((v = mget(root, "workers"))) {
        uint64_t w;
        if (v->kind == BG_YNODE_SCALAR && v->len == 4 && memcmp(v->str, "auto", 4) == 0)
            ; /* the default: online CPUs */
        else if (v->kind == BG_YNODE_SCALAR && !v->null && is_digit((unsigned char)v->str[0])) {
            if (get_uint(&c, v, "workers", 1, MAX_WORKERS, &w))
                cfg->workers = (int)w;
        } else {
            ERR(&c, v->pos, "workers: expected 'auto' or a number from 1 to %d, got %s", MAX_WORKERS,
                kind_desc(&c, v));
        }
    }
    if ((v = mget(root, "user")) && get_str(&c, v, "user", &cfg->user) && !cfg->user[0])
        ERR(&c, v->pos, "user: must not be empty");
    if ((v = mget(root, "pid_file")) && get_str(&c, v, "pid_file", &cfg->pid_file) && !cfg->pid_file[0])
        ERR(&c, v->pos, "pid_file: must not be empty");
    if ((v = mget(root, "io_uring")))
        get_bool(&c, v, "io_uring", &cfg->io_uring);
    if ((v = mget(root, "limits")))
        parse_limits(&c, v);
    if ((v = mget(root, "geoip")))
        parse_geoip(&c, v);
    {
        const bg_ynode_t *g = mget(root, "geoip"), *db = g ? mget(g, "database") : NULL;
        if (db && db->kind == BG_YNODE_SCALAR && !db->null)
            check_path(&c, db, "geoip.database", cfg->geoip.database, false);
        else if (!db) {
            struct stat st;
            if (stat(cfg->geoip.database, &st) != 0)
                ERR(&c, g ? g->pos : nopos, "geoip.database: cannot read '%s' (the default): %s", cfg->geoip.database, strerror(errno));
        }
    }
    if ((v = mget(root, "classification")))
        parse_classification(&c, v);
    if ((v = mget(root, "encryption")))
        parse_encryption(&c, v);
    if ((v = mget(root, "metrics")))
        parse_metrics(&c, v);
    if ((v = mget(root, "records")))
        parse_records(&c, v);
    if ((v = mget(root, "vendors")))
        parse_vendors(&c, v, mget(root, "encryption") != NULL);
    for (size_t i = 0; i < cfg->nvendors; i++) {
        if (cfg->vendors[i].max_body == 0)
            cfg->vendors[i].max_body = cfg->limits.max_body;
        if (cfg->vendors[i].upstream.max_connections == 0)
            cfg->vendors[i].upstream.max_connections = 256;
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        bg_listen_t *l = &cfg->listen[i];
        if (!l->vendor)
            continue;
        for (size_t j = 0; j < cfg->nvendors && l->vendor_index < 0; j++)
            if (strcmp(cfg->vendors[j].name, l->vendor) == 0)
                l->vendor_index = (int)j;
        if (l->vendor_index < 0)
            bg_diag_error(d, name, l->vendor_pos, "listener vendor '%s' is not a vendor in this config", l->vendor);
    }

    sort_messages(d->errors, before, d->nerrors, name, cfg->regions_path);
    sort_messages(d->warnings, wbefore, d->nwarnings, name, cfg->regions_path);
    if (d->nerrors != before)
        goto fail;
    bg_ydoc_dispose(&doc);
    free(c.hosts);
    free(rdata);
    *out = cfg;
    return 0;
fail:
    bg_ydoc_dispose(&doc);
    free(c.hosts);
    free(rdata);
    config_free(cfg);
    *out = NULL;
    return -1;
}

int bg_config_load_buffer(const char *name, const char *data, size_t len, int64_t now_s, bg_config_t **out,
                          bg_diag_t *diag)
{
    return load(name ? name : "<buffer>", data ? data : "", data ? len : 0, now_s, out, diag);
}

int bg_config_load(const char *file, int64_t now_s, bg_config_t **out, bg_diag_t *diag)
{
    char *data = NULL;
    size_t len = 0;
    *out = NULL;
    int err = read_file(file, &data, &len);
    if (err) {
        bg_diag_error(diag, file, (bg_pos_t){0, 0}, "cannot read: %s", err == EFBIG ? "file too large" : strerror(err));
        return -1;
    }
    int rc = load(file, data, len, now_s, out, diag);
    free(data);
    return rc;
}

bg_config_t *bg_config_retain(bg_config_t *cfg)
{
    if (cfg)
        atomic_fetch_add_explicit(&cfg->refcount, 1, memory_order_relaxed);
    return cfg;
}

void bg_config_release(bg_config_t *cfg)
{
    if (cfg && atomic_fetch_sub_explicit(&cfg->refcount, 1, memory_order_acq_rel) == 1)
        config_free(cfg);
}

/* ------------------------------------------------------------------ lookups */

static inline int ascii_lower(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

/* host[0..len) equals the lowercase NUL-terminated h, ignoring ASCII case (h is stored lowercase). */
static bool host_eq(const char *host, size_t len, const char *h)
{
    size_t i = 0;
    for (; i < len; i++)
        if (h[i] == 0 || ascii_lower((unsigned char)host[i]) != h[i])
            return false;
    return h[i] == 0;
}

/* Linear over the vendors' hosts: the struct is public and may be built by hand, so there is no
 * private index to rely on. A few hundred hosts cost a few microseconds. */
const bg_vendor_t *bg_config_route(const bg_config_t *cfg, const char *host, size_t len)
{
    if (!cfg || !host)
        return NULL;
    if (len && host[len - 1] == '.') /* the absolute form "api.example." names the same host */
        len--;
    if (len == 0 || len > 253)
        return NULL;
    int first = ascii_lower((unsigned char)host[0]);
    for (size_t i = 0; i < cfg->nvendors; i++)
        for (size_t k = 0; k < cfg->vendors[i].nhosts; k++) {
            const char *h = cfg->vendors[i].hosts[k];
            if (h[0] == first && host_eq(host, len, h))
                return &cfg->vendors[i];
        }
    /* Wildcards: the longest matching suffix wins; "*.x.com" needs a non-empty label before ".x.com". */
    const bg_vendor_t *best = NULL;
    size_t bestlen = 0;
    for (size_t i = 0; i < cfg->nvendors; i++)
        for (size_t k = 0; k < cfg->vendors[i].nhosts; k++) {
            const char *h = cfg->vendors[i].hosts[k];
            if (h[0] != '*')
                continue;
            size_t sl = strlen(h + 1);
            if (len > sl && sl > bestlen && host[len - sl - 1] != '.' && host_eq(host + len - sl, sl, h + 1)) {
                best = &cfg->vendors[i];
                bestlen = sl;
            }
        }
    return best;
}

bg_dest_kind_t bg_config_dest_kind(const bg_config_t *cfg, const char *country, bg_adequacy_scope_t *scope)
{
    if (!cfg || !bg_country_valid(country))
        return BG_DEST_UNKNOWN;
    if (cfg->jurisdiction_region >= 0 && (size_t)cfg->jurisdiction_region < cfg->nregions &&
        region_has(&cfg->regions[cfg->jurisdiction_region], country))
        return BG_DEST_DOMESTIC;
    const bg_adequacy_t *a = adequacy_of(cfg, country);
    if (a) {
        if (scope)
            *scope = a->scope;
        return BG_DEST_ADEQUATE;
    }
    return BG_DEST_THIRD;
}

bool bg_config_adequacy_in_force(const bg_config_t *cfg, const char *country, int64_t now_s)
{
    const bg_adequacy_t *a = cfg && bg_country_valid(country) ? adequacy_of(cfg, country) : NULL;
    return a && (!a->date || now_s >= a->date) && (!a->expires || now_s < a->expires);
}

const char *bg_config_dest_region_label(const bg_config_t *cfg, bg_dest_kind_t kind)
{
    switch (kind) {
    case BG_DEST_DOMESTIC:
        return cfg && cfg->jurisdiction ? cfg->jurisdiction : "domestic";
    case BG_DEST_ADEQUATE:
        return "adequate";
    case BG_DEST_THIRD:
        return "third_country";
    default:
        return "unknown";
    }
}

bool bg_config_vendor_covers(const bg_config_t *cfg, const bg_vendor_t *v, const char *country)
{
    if (!cfg || !v || !bg_country_valid(country))
        return false;
    for (size_t i = 0; i < v->nregions; i++) {
        const bg_region_ref_t *r = &v->regions[i];
        if (!r->is_region) {
            if (r->country[0] == country[0] && r->country[1] == country[1])
                return true;
        } else if (strcmp(r->name, "adequate") == 0) {
            if (adequacy_of(cfg, country))
                return true;
        } else {
            int idx = region_index(cfg, r->name);
            if (idx >= 0 && region_has(&cfg->regions[idx], country))
                return true;
        }
    }
    return false;
}
