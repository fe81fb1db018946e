/*
 * tests/unit/geo.c — geo.c against databases written by tests/tools/mkmmdb.c (included below)
 * into a temporary directory and read back through the real libmaxminddb: both schemas,
 * IPv4/IPv6/IPv4-mapped, overrides precedence, unknown → "", broken files → an error at
 * open, registered_country fallback, the cache, and the embedded database when present.
 * Single-threaded.
 */
#define MKMMDB_NO_MAIN
#include "../tools/mkmmdb.c"

#include "geo.h"
#include "test.h"

#include <maxminddb.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char tmpdir[64];
static char paths[64][128];
static size_t npaths;

/* A fresh file name in the temporary directory (removed at the end). */
static const char *tmp_path(const char *name)
{
    if (npaths == BG_ARRAY_SIZE(paths))
        abort();
    snprintf(paths[npaths], sizeof paths[npaths], "%s/%s", tmpdir, name);
    return paths[npaths++];
}

/* Build a database: opts as for mkmmdb (schema, ip_version, type, record size, alias), then
 * NULL-terminated "CIDR=VALUE" arguments. */
typedef struct {
    int schema;
    int ip_version; /* 0: 6 */
    const char *type;
    int record_size;
    bool no_alias;
    uint64_t epoch;
} dbopts_t;

static const char *build_db_v(const char *name, dbopts_t o, const char *const *nets)
{
    const char *p = tmp_path(name);
    mmdbw_t *w = mmdbw_create();
    char err[256] = "";
    w->schema = o.schema;
    w->ip_version = o.ip_version ? o.ip_version : 6;
    if (o.type)
        snprintf(w->type, sizeof w->type, "%s", o.type);
    w->record_size = o.record_size;
    w->alias = !o.no_alias;
    if (o.epoch)
        w->build_epoch = o.epoch;
    for (size_t i = 0; nets[i]; i++) {
        if (mmdbw_add_arg(w, nets[i], err, sizeof err) != 0) {
            bg_test_fail(__FILE__, __LINE__, "mmdbw_add_arg(%s): %s", nets[i], err);
            break;
        }
    }
    if (mmdbw_write(w, p, err, sizeof err) != 0)
        bg_test_fail(__FILE__, __LINE__, "mmdbw_write(%s): %s", p, err);
    mmdbw_destroy(w);
    return p;
}
#define build_db(name, opts, ...) build_db_v(name, opts, (const char *const[]){__VA_ARGS__, NULL})

static bg_geo_t *open_ok(const char *path, bg_geo_schema_t schema, bool fallback)
{
    bg_geo_t *g = NULL;
    char err[256] = "";
    int rc = bg_geo_open(path, schema, fallback, &g, err, sizeof err);
    if (rc != 0)
        bg_test_fail(__FILE__, __LINE__, "bg_geo_open(%s): %s", path, err);
    return g;
}

/* Look up a textual address; returns the country ("" unknown) in a static-per-call buffer. */
static int look(const bg_geo_t *g, const bg_geo_override_t *ov, size_t nov, const char *ip, char cc[3])
{
    struct sockaddr_storage ss;
    memset(cc, 'x', 3);
    if (bg_geo_parse_addr(ip, &ss) != 0) {
        bg_test_fail(__FILE__, __LINE__, "bad test address %s", ip);
        cc[0] = 0;
        return -1;
    }
    return bg_geo_lookup(g, ov, nov, (struct sockaddr *)&ss, cc);
}

#define CHECK_GEO(g, ov, nov, ip, want)                                                            \
    do {                                                                                           \
        char _cc[3];                                                                               \
        int _rc = look(g, ov, nov, ip, _cc);                                                       \
        if (strcmp(_cc, want) != 0 || _rc != (want[0] ? 0 : 1))                                    \
            bg_test_fail(__FILE__, __LINE__, "lookup %s: got \"%s\" rc %d, want \"%s\"", ip, _cc, \
                         _rc, want);                                                               \
    } while (0)

static bg_geo_override_t ovr(const char *addr, int prefix, const char *cc)
{
    bg_geo_override_t o;
    memset(&o, 0, sizeof o);
    if (inet_pton(AF_INET, addr, o.net.addr) == 1)
        o.net.family = AF_INET;
    else if (inet_pton(AF_INET6, addr, o.net.addr) == 1)
        o.net.family = AF_INET6;
    else
        abort();
    o.net.prefix = prefix;
    snprintf(o.country, sizeof o.country, "%s", cc);
    return o;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_maxmind_v6(void)
{
    const char *p = build_db("mm6.mmdb", ((dbopts_t){.epoch = 1780000000}), "127.0.0.2/32=DE", "127.0.0.3/32=US",
                             "127.0.0.4/32=JP", "::1/128=CH", "10.0.0.0/8=FR", "10.1.0.0/16=IT",
                             "2001:db8::/32=SE");
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    if (!g)
        return;
    CHECK_INT(bg_geo_schema(g), BG_GEO_SCHEMA_MAXMIND);
    CHECK_STR(bg_geo_database_type(g), "GeoLite2-Country");
    CHECK_INT(bg_geo_ip_version(g), 6);
    CHECK_INT(bg_geo_build_epoch(g), 1780000000);
    CHECK(bg_geo_node_count(g) > 0);
    CHECK_GEO(g, NULL, 0, "127.0.0.2", "DE");
    CHECK_GEO(g, NULL, 0, "127.0.0.3", "US");
    CHECK_GEO(g, NULL, 0, "127.0.0.4", "JP");
    CHECK_GEO(g, NULL, 0, "::1", "CH");
    CHECK_GEO(g, NULL, 0, "::ffff:127.0.0.2", "DE");  /* IPv4-mapped → IPv4 */
    CHECK_GEO(g, NULL, 0, "::ffff:127.0.0.4", "JP");
    CHECK_GEO(g, NULL, 0, "10.200.0.1", "FR");
    CHECK_GEO(g, NULL, 0, "10.1.255.255", "IT");      /* more specific wins */
    CHECK_GEO(g, NULL, 0, "10.2.0.0", "FR");
    CHECK_GEO(g, NULL, 0, "2001:db8:ffff::1", "SE");
    CHECK_GEO(g, NULL, 0, "2001:db9::1", "");         /* unknown → "" and 1 */
    CHECK_GEO(g, NULL, 0, "127.0.0.5", "");
    CHECK_GEO(g, NULL, 0, "11.0.0.0", "");
    CHECK_GEO(g, NULL, 0, "::2", "");
    /* References: the handle stays usable until the last one is dropped (ASan would see). */
    CHECK(bg_geo_retain(g) == g);
    bg_geo_close(g);
    CHECK_GEO(g, NULL, 0, "127.0.0.2", "DE");
    CHECK(bg_geo_retain(NULL) == NULL);
    bg_geo_close(g);
}

static void test_order_independent(void)
{
    /* The /32 is given before the /8: it must still win. */
    const char *p = build_db("order.mmdb", ((dbopts_t){0}), "192.0.2.7/32=NL", "192.0.0.0/8=US", "::/0=CH",
                             "2001:db8::/32=SE");
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    if (!g)
        return;
    CHECK_GEO(g, NULL, 0, "192.0.2.7", "NL");
    CHECK_GEO(g, NULL, 0, "192.0.2.8", "US");
    CHECK_GEO(g, NULL, 0, "2001:db8::9", "SE");
    CHECK_GEO(g, NULL, 0, "2a00::1", "CH");
    CHECK_GEO(g, NULL, 0, "1.2.3.4", "CH"); /* ::/0 covers ::/96 too */
    CHECK_GEO(g, NULL, 0, "::ffff:192.0.2.7", "NL");
    bg_geo_close(g);
}

static void test_dbip_v4(void)
{
    const char *p = build_db("dbip4.mmdb", ((dbopts_t){.schema = MMDBW_DBIP, .ip_version = 4}), "127.0.0.2=DE",
                             "127.0.0.3=US", "127.0.0.0/8=PL");
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    if (!g)
        return;
    CHECK_INT(bg_geo_schema(g), BG_GEO_SCHEMA_DBIP);
    CHECK_STR(bg_geo_database_type(g), "country ipv4");
    CHECK_INT(bg_geo_ip_version(g), 4);
    CHECK_GEO(g, NULL, 0, "127.0.0.2", "DE");
    CHECK_GEO(g, NULL, 0, "127.0.0.3", "US");
    CHECK_GEO(g, NULL, 0, "127.9.9.9", "PL");
    CHECK_GEO(g, NULL, 0, "::ffff:127.0.0.3", "US"); /* mapped works on an IPv4 database */
    CHECK_GEO(g, NULL, 0, "::1", "");                /* IPv6 on an IPv4 database: unknown */
    CHECK_GEO(g, NULL, 0, "128.0.0.1", "");
    bg_geo_close(g);
}

static void test_dbip_v6(void)
{
    const char *p = build_db("dbip6.mmdb", ((dbopts_t){.schema = MMDBW_DBIP}), "127.0.0.2=DE", "::1=CH",
                             "2a01:4f8::/32=DE", "2600::/12=US");
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, false);
    if (!g)
        return;
    CHECK_INT(bg_geo_schema(g), BG_GEO_SCHEMA_DBIP);
    CHECK_STR(bg_geo_database_type(g), "country ipvAll");
    CHECK_GEO(g, NULL, 0, "127.0.0.2", "DE");
    CHECK_GEO(g, NULL, 0, "::ffff:127.0.0.2", "DE");
    CHECK_GEO(g, NULL, 0, "::1", "CH");
    CHECK_GEO(g, NULL, 0, "2a01:4f8:1:2::3", "DE");
    CHECK_GEO(g, NULL, 0, "2606:4700::1", "US");
    CHECK_GEO(g, NULL, 0, "2a02::1", "");
    bg_geo_close(g);
}

static void test_schema_forced_and_unknown_type(void)
{
    const char *mm = build_db("f-mm.mmdb", ((dbopts_t){0}), "127.0.0.2=DE");
    const char *db = build_db("f-db.mmdb", ((dbopts_t){.schema = MMDBW_DBIP}), "127.0.0.2=DE");
    const char *mmx = build_db("f-mmx.mmdb", ((dbopts_t){.type = "Acme-Country"}), "127.0.0.2=AT");
    const char *dbx = build_db("f-dbx.mmdb", ((dbopts_t){.schema = MMDBW_DBIP, .type = "Acme-Country"}),
                               "127.0.0.2=NL");
    bg_geo_t *g;
    /* The wrong schema forced: no country found, fail closed. */
    if ((g = open_ok(mm, BG_GEO_SCHEMA_DBIP, true))) {
        CHECK_INT(bg_geo_schema(g), BG_GEO_SCHEMA_DBIP);
        CHECK_GEO(g, NULL, 0, "127.0.0.2", "");
        bg_geo_close(g);
    }
    if ((g = open_ok(db, BG_GEO_SCHEMA_MAXMIND, true))) {
        CHECK_GEO(g, NULL, 0, "127.0.0.2", "");
        bg_geo_close(g);
    }
    /* The right schema forced. */
    if ((g = open_ok(db, BG_GEO_SCHEMA_DBIP, true))) {
        CHECK_GEO(g, NULL, 0, "127.0.0.2", "DE");
        bg_geo_close(g);
    }
    /* An unrecognised database_type under AUTO: both layouts are tried. */
    if ((g = open_ok(mmx, BG_GEO_SCHEMA_AUTO, true))) {
        CHECK_INT(bg_geo_schema(g), BG_GEO_SCHEMA_AUTO);
        CHECK_STR(bg_geo_database_type(g), "Acme-Country");
        CHECK_GEO(g, NULL, 0, "127.0.0.2", "AT");
        bg_geo_close(g);
    }
    if ((g = open_ok(dbx, BG_GEO_SCHEMA_AUTO, true))) {
        CHECK_GEO(g, NULL, 0, "127.0.0.2", "NL");
        bg_geo_close(g);
    }
    /* Type names of real databases. */
    const char *g2 = build_db("f-g2.mmdb", ((dbopts_t){.type = "GeoIP2-City"}), "127.0.0.2=FI");
    const char *dl = build_db("f-dl.mmdb", ((dbopts_t){.type = "DBIP-Country-Lite"}), "127.0.0.2=FI");
    if ((g = open_ok(g2, BG_GEO_SCHEMA_AUTO, true))) {
        CHECK_INT(bg_geo_schema(g), BG_GEO_SCHEMA_MAXMIND);
        CHECK_GEO(g, NULL, 0, "127.0.0.2", "FI");
        bg_geo_close(g);
    }
    if ((g = open_ok(dl, BG_GEO_SCHEMA_AUTO, true))) {
        CHECK_INT(bg_geo_schema(g), BG_GEO_SCHEMA_AUTO); /* DB-IP's own files: both layouts */
        CHECK_GEO(g, NULL, 0, "127.0.0.2", "FI");
        bg_geo_close(g);
    }
    const char *dd = build_db("f-dd.mmdb", ((dbopts_t){.schema = MMDBW_DBIP, .type = "DBIP-Country-Lite"}),
                              "127.0.0.2=EE");
    if ((g = open_ok(dd, BG_GEO_SCHEMA_AUTO, true))) {
        CHECK_GEO(g, NULL, 0, "127.0.0.2", "EE");
        bg_geo_close(g);
    }
}

static void test_registered_fallback(void)
{
    const char *p = build_db("reg.mmdb", ((dbopts_t){0}), "2001:db8::/32=:SE", "192.0.2.0/24=DE:US",
                             "198.51.100.0/24=");
    bg_geo_t *on = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    bg_geo_t *off = open_ok(p, BG_GEO_SCHEMA_AUTO, false);
    if (on) {
        CHECK_GEO(on, NULL, 0, "2001:db8::1", "SE");    /* registered_country used */
        CHECK_GEO(on, NULL, 0, "192.0.2.1", "DE");      /* country first */
        CHECK_GEO(on, NULL, 0, "198.51.100.1", "");     /* a record without any country */
    }
    if (off) {
        CHECK_GEO(off, NULL, 0, "2001:db8::1", "");
        CHECK_GEO(off, NULL, 0, "192.0.2.1", "DE");
        CHECK_GEO(off, NULL, 0, "198.51.100.1", "");
    }
    bg_geo_close(on);
    bg_geo_close(off);
}

static void test_country_values(void)
{
    const char *p = build_db("vals.mmdb", ((dbopts_t){0}), "192.0.2.1=de", "192.0.2.2=USA", "192.0.2.3=ZZ",
                             "192.0.2.4=1A", "192.0.2.5=X");
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    if (!g)
        return;
    CHECK_GEO(g, NULL, 0, "192.0.2.1", "DE"); /* upper-cased */
    CHECK_GEO(g, NULL, 0, "192.0.2.2", "");   /* not two letters: unknown */
    CHECK_GEO(g, NULL, 0, "192.0.2.3", "");   /* ZZ: unassigned */
    CHECK_GEO(g, NULL, 0, "192.0.2.4", "");
    CHECK_GEO(g, NULL, 0, "192.0.2.5", "");
    bg_geo_close(g);
}

static void test_overrides(void)
{
    const char *p = build_db("ov.mmdb", ((dbopts_t){0}), "10.0.0.0/8=FR", "192.0.2.0/24=US", "2001:db8::/32=SE");
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    if (!g)
        return;
    /* Most specific first, least specific last: the match must not be "first wins". */
    bg_geo_override_t ov[] = {
        ovr("10.1.2.3", 32, "NL"),
        ovr("10.0.0.0", 8, "DE"),
        ovr("10.1.0.0", 16, "AT"),
        ovr("2001:db8:1::", 48, "NO"),
        ovr("::ffff:172.16.0.0", 108, "PL"), /* an IPv4 net written IPv4-mapped */
        ovr("0.0.0.0", 0, "IS"),             /* everything IPv4 */
        ovr("203.0.113.0", 40, "XX"),        /* invalid prefix: never matches */
    };
    size_t n = BG_ARRAY_SIZE(ov);
    CHECK_GEO(g, ov, n, "10.1.2.3", "NL");
    CHECK_GEO(g, ov, n, "10.1.2.4", "AT");
    CHECK_GEO(g, ov, n, "10.2.0.1", "DE");   /* override beats the database (FR) */
    CHECK_GEO(g, ov, n, "::ffff:10.1.2.3", "NL");
    CHECK_GEO(g, ov, n, "172.16.5.5", "PL");
    CHECK_GEO(g, ov, n, "192.0.2.9", "IS");  /* the /0 override beats the database's /24 */
    CHECK_GEO(g, ov, n, "203.0.113.1", "IS");
    CHECK_GEO(g, ov, n, "2001:db8:1::5", "NO");
    CHECK_GEO(g, ov, n, "2001:db8:2::5", "SE"); /* no IPv6 override: the database */
    CHECK_GEO(g, ov, 3, "192.0.2.9", "US");  /* without the /0: the database */
    /* Overrides only (no database). */
    CHECK_GEO(NULL, ov, n, "10.1.2.3", "NL");
    CHECK_GEO(NULL, ov, 3, "192.0.2.9", "");
    CHECK_GEO(NULL, NULL, 0, "10.1.2.3", "");
    /* An IPv6 override covering the whole space also covers IPv4 (as ::ffff:0:0/96). */
    bg_geo_override_t all6[] = {ovr("::", 0, "LI")};
    CHECK_GEO(NULL, all6, 1, "8.8.8.8", "LI");
    /* An override with no valid country still wins: unknown, not the database's US. */
    bg_geo_override_t blank[] = {ovr("192.0.2.0", 25, "")};
    CHECK_GEO(g, blank, 1, "192.0.2.5", "");
    CHECK_GEO(g, blank, 1, "192.0.2.200", "US");
    bg_geo_close(g);
}

static void test_bad_sockaddr(void)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    bg_geo_override_t ov[] = {ovr("0.0.0.0", 0, "DE"), ovr("::", 0, "DE")};
    char cc[3] = "xx";
    CHECK_INT(bg_geo_lookup(NULL, ov, 2, (struct sockaddr *)&un, cc), 1);
    CHECK_STR(cc, "");
    memcpy(cc, "xx", 3);
    CHECK_INT(bg_geo_lookup(NULL, ov, 2, NULL, cc), 1);
    CHECK_STR(cc, "");
    struct sockaddr_storage ss;
    CHECK_INT(bg_geo_parse_addr("not-an-ip", &ss), -1);
    CHECK_INT(bg_geo_parse_addr("1.2.3.4:80", &ss), -1);
    CHECK_INT(bg_geo_parse_addr(NULL, &ss), -1);
    CHECK_INT(bg_geo_parse_addr("::1", &ss), 0);
    CHECK_INT(ss.ss_family, AF_INET6);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n)
        bg_test_fail(__FILE__, __LINE__, "cannot write %s", path);
    if (f)
        fclose(f);
}

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    *n = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len > 0 && (buf = malloc((size_t)len)) && fread(buf, 1, (size_t)len, f) == (size_t)len)
        *n = (size_t)len;
    fclose(f);
    return buf;
}

/* bg_geo_open must fail with a message naming the file, and *out NULL. */
static void expect_open_error(const char *path, const char *want_substr, int line)
{
    bg_geo_t *g = (bg_geo_t *)(uintptr_t)1;
    char err[256] = "";
    int rc = bg_geo_open(path, BG_GEO_SCHEMA_AUTO, true, &g, err, sizeof err);
    if (rc != -1 || g != NULL) {
        bg_test_fail(__FILE__, line, "open %s: rc %d, want -1 and NULL", path ? path : "(null)", rc);
        if (rc == 0)
            bg_geo_close(g);
        return;
    }
    if (!err[0] || strchr(err, '\n') || (want_substr && !strstr(err, want_substr)))
        bg_test_fail(__FILE__, line, "open %s: error \"%s\", want one line with \"%s\"", path ? path : "(null)",
                     err, want_substr ? want_substr : "");
}

static void test_open_errors(void)
{
    expect_open_error(tmp_path("missing.mmdb"), "No such file", __LINE__);
    expect_open_error(NULL, "no path", __LINE__);
    expect_open_error("", "no path", __LINE__);
    expect_open_error(tmpdir, "not a regular file", __LINE__);

    const char *empty = tmp_path("empty.mmdb");
    write_file(empty, "", 0);
    expect_open_error(empty, "empty", __LINE__);

    /* Random bytes (fixed seed, so a failure is reproducible). */
    const char *rnd = tmp_path("random.mmdb");
    uint8_t junk[8192];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (uint8_t)x;
    }
    write_file(rnd, junk, sizeof junk);
    expect_open_error(rnd, rnd, __LINE__);

    /* Text. */
    const char *txt = tmp_path("text.mmdb");
    write_file(txt, "this is not a database\n", 23);
    expect_open_error(txt, "not a valid MaxMind DB", __LINE__);

    /* A real database, truncated in the tree: the metadata is gone. */
    const char *good = build_db("good.mmdb", ((dbopts_t){0}), "127.0.0.2=DE", "10.0.0.0/8=FR", "::1=CH");
    size_t n;
    char *buf = read_file(good, &n);
    CHECK(buf != NULL && n > 200);
    if (!buf)
        return;
    const char *trunc = tmp_path("trunc.mmdb");
    write_file(trunc, buf, n / 3);
    expect_open_error(trunc, "not a valid MaxMind DB", __LINE__);

    /* Valid metadata, a search tree of 0xff bytes: records point far past the data section. */
    const char *badtree = tmp_path("badtree.mmdb");
    char *copy = malloc(n);
    memcpy(copy, buf, n);
    memset(copy, 0xff, n / 2);
    write_file(badtree, copy, n);
    expect_open_error(badtree, badtree, __LINE__);

    /* Valid metadata, tree intact, data section scrambled. */
    const char *baddata = tmp_path("baddata.mmdb");
    memcpy(copy, buf, n);
    const char *marker = NULL;
    for (size_t i = n - 14; i > 0; i--)
        if (memcmp(copy + i, "\xab\xcd\xef" "MaxMind.com", 14) == 0) {
            marker = copy + i;
            break;
        }
    CHECK(marker != NULL);
    if (marker) {
        /* The data section's last 30 bytes (the CH and part of the FR record) become an
         * extended type with a bogus size; the probe at open reads ::1's record. */
        for (char *q = (char *)marker - 30; q < marker; q++)
            *q = (char)0xdf;
        write_file(baddata, copy, n);
        expect_open_error(baddata, "bad data record", __LINE__);
    }
    /* Metadata that is not a map. */
    const char *badmeta = tmp_path("badmeta.mmdb");
    if (marker) {
        memcpy(copy, buf, n);
        size_t m = (size_t)(marker - copy) + 14;
        copy[m] = (char)0xe0; /* an empty map: no node_count, no record_size */
        write_file(badmeta, copy, m + 1);
        expect_open_error(badmeta, "not a valid MaxMind DB", __LINE__);
    }
    bg_geo_t *g;
    /* err may be NULL. */
    g = (bg_geo_t *)(uintptr_t)1;
    CHECK_INT(bg_geo_open(rnd, BG_GEO_SCHEMA_AUTO, true, &g, NULL, 0), -1);
    CHECK(g == NULL);
    free(copy);
    free(buf);
}

static void test_record_sizes_and_alias(void)
{
    static const int sizes[] = {24, 28, 32};
    for (size_t i = 0; i < BG_ARRAY_SIZE(sizes); i++) {
        char name[32];
        snprintf(name, sizeof name, "rs%d.mmdb", sizes[i]);
        const char *p = build_db(name, ((dbopts_t){.record_size = sizes[i]}), "127.0.0.2=DE", "::1=CH",
                                 "2001:db8::/32=SE", "10.0.0.0/8=FR");
        bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
        if (!g)
            continue;
        MMDB_s m;
        if (MMDB_open(p, MMDB_MODE_MMAP, &m) == MMDB_SUCCESS) {
            CHECK_INT(m.metadata.record_size, sizes[i]);
            MMDB_close(&m);
        } else {
            CHECK(!"libmaxminddb cannot open it");
        }
        CHECK_GEO(g, NULL, 0, "127.0.0.2", "DE");
        CHECK_GEO(g, NULL, 0, "::1", "CH");
        CHECK_GEO(g, NULL, 0, "2001:db8::1", "SE");
        CHECK_GEO(g, NULL, 0, "10.3.3.3", "FR");
        CHECK_GEO(g, NULL, 0, "11.3.3.3", "");
        bg_geo_close(g);
    }
    /* Without the ::ffff:0:0/96 alias in the file, geo still maps mapped addresses to IPv4. */
    const char *p = build_db("noalias.mmdb", ((dbopts_t){.no_alias = true}), "127.0.0.2=DE");
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    MMDB_s m;
    if (MMDB_open(p, MMDB_MODE_MMAP, &m) == MMDB_SUCCESS) {
        int gai = 0, mmerr = 0;
        MMDB_lookup_result_s r = MMDB_lookup_string(&m, "::ffff:127.0.0.2", &gai, &mmerr);
        CHECK(!r.found_entry); /* really not aliased in the file */
        r = MMDB_lookup_string(&m, "127.0.0.2", &gai, &mmerr);
        CHECK(r.found_entry);
        MMDB_close(&m);
    }
    if (g) {
        CHECK_GEO(g, NULL, 0, "::ffff:127.0.0.2", "DE");
        bg_geo_close(g);
    }
    /* With the alias, libmaxminddb itself finds it. */
    const char *pa = build_db("alias.mmdb", ((dbopts_t){0}), "127.0.0.2=DE");
    if (MMDB_open(pa, MMDB_MODE_MMAP, &m) == MMDB_SUCCESS) {
        int gai = 0, mmerr = 0;
        MMDB_lookup_result_s r = MMDB_lookup_string(&m, "::ffff:127.0.0.2", &gai, &mmerr);
        CHECK(r.found_entry);
        r = MMDB_lookup_string(&m, "::ffff:127.0.0.3", &gai, &mmerr);
        CHECK(!r.found_entry);
        MMDB_close(&m);
    } else {
        CHECK(!"libmaxminddb cannot open it");
    }
}

static void test_writer_errors(void)
{
    char err[256];
    mmdbw_t *w = mmdbw_create();
    CHECK_INT(mmdbw_add_arg(w, "1.2.3.4/33=DE", err, sizeof err), -1);
    CHECK_INT(mmdbw_add_arg(w, "1.2.3.400=DE", err, sizeof err), -1);
    CHECK_INT(mmdbw_add_arg(w, "1.2.3.4", err, sizeof err), -1);
    CHECK_INT(mmdbw_add_arg(w, "::ffff:0:0/80=DE", err, sizeof err), -1);
    CHECK_INT(mmdbw_add_arg(w, "1.2.3.4=DE:US:FR", err, sizeof err), -1);
    CHECK_INT(mmdbw_add_arg(w, "1.2.3.4/24=DE", err, sizeof err), 0);
    w->ip_version = 4;
    CHECK_INT(mmdbw_add_arg(w, "::1=DE", err, sizeof err), -1);
    CHECK(strstr(err, "IPv4 database") != NULL);
    w->schema = MMDBW_DBIP;
    CHECK_INT(mmdbw_add_arg(w, "1.2.3.4=DE:US", err, sizeof err), -1);
    CHECK_INT(mmdbw_write(w, "/nonexistent-dir/x.mmdb", err, sizeof err), -1);
    mmdbw_destroy(w);
}

static void test_age(void)
{
    const char *p = build_db("age.mmdb", ((dbopts_t){.epoch = 1780345978}), "127.0.0.2=DE");
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    if (!g)
        return;
    int64_t e = 1780345978;
    CHECK_INT(bg_geo_age_days(g, e), 0);
    CHECK_INT(bg_geo_age_days(g, e + 60 * 86400), 60);
    CHECK_INT(bg_geo_age_days(g, e + 61 * 86400 - 1), 60);
    CHECK_INT(bg_geo_age_days(g, e + 61 * 86400), 61);
    CHECK_INT(bg_geo_age_days(g, e - 1), -1);
    CHECK_INT(bg_geo_age_days(NULL, e), -1);
    CHECK_INT(bg_geo_build_epoch(NULL), 0);
    CHECK_STR(bg_geo_database_type(NULL), "");
    bg_geo_close(g);
}

static void test_cache(void)
{
    const char *p = build_db("cache.mmdb", ((dbopts_t){0}), "10.0.0.0/8=FR", "10.1.0.0/16=IT", "192.0.2.0/24=US",
                             "2001:db8::/32=SE", "::1=CH");
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    if (!g)
        return;
    CHECK(bg_geo_cache_create(0) == NULL);
    bg_geo_cache_t *c = bg_geo_cache_create(16); /* tiny: collisions are certain below */
    bg_geo_override_t ov[] = {ovr("10.1.2.0", 24, "NL")};
    struct sockaddr_storage ss;
    char a[3], b[3];
    uint64_t hits, misses;

    bg_geo_parse_addr("10.1.2.3", &ss);
    CHECK_INT(bg_geo_cache_lookup(c, g, ov, 1, (struct sockaddr *)&ss, a), 0);
    CHECK_STR(a, "NL");
    CHECK_INT(bg_geo_cache_lookup(c, g, ov, 1, (struct sockaddr *)&ss, a), 0);
    CHECK_STR(a, "NL");
    bg_geo_cache_stats(c, &hits, &misses);
    CHECK_INT(hits, 1);
    CHECK_INT(misses, 1);
    /* Other overrides (a reload): the cache must not answer from the old ones. */
    CHECK_INT(bg_geo_cache_lookup(c, g, ov, 0, (struct sockaddr *)&ss, a), 0);
    CHECK_STR(a, "IT");
    bg_geo_cache_stats(c, &hits, &misses);
    CHECK_INT(misses, 2);
    /* Unknown results are cached too, and stay unknown. */
    bg_geo_parse_addr("203.0.113.9", &ss);
    CHECK_INT(bg_geo_cache_lookup(c, g, NULL, 0, (struct sockaddr *)&ss, a), 1);
    CHECK_INT(bg_geo_cache_lookup(c, g, NULL, 0, (struct sockaddr *)&ss, a), 1);
    CHECK_STR(a, "");
    /* Mapped and plain IPv4 share an entry. */
    bg_geo_parse_addr("192.0.2.5", &ss);
    CHECK_INT(bg_geo_cache_lookup(c, g, NULL, 0, (struct sockaddr *)&ss, a), 0);
    bg_geo_cache_stats(c, &hits, &misses);
    uint64_t h0 = hits;
    bg_geo_parse_addr("::ffff:192.0.2.5", &ss);
    CHECK_INT(bg_geo_cache_lookup(c, g, NULL, 0, (struct sockaddr *)&ss, a), 0);
    CHECK_STR(a, "US");
    bg_geo_cache_stats(c, &hits, &misses);
    CHECK_INT(hits, h0 + 1);
    /* Clear: the next lookup is a miss. */
    bg_geo_cache_clear(c);
    bg_geo_cache_stats(c, &hits, &misses);
    uint64_t m0 = misses;
    CHECK_INT(bg_geo_cache_lookup(c, g, NULL, 0, (struct sockaddr *)&ss, a), 0);
    bg_geo_cache_stats(c, &hits, &misses);
    CHECK_INT(misses, m0 + 1);

    /* Many addresses through a tiny cache, twice: always the uncached answer. */
    static const char *const pool[] = {"10.0.0.1", "10.1.0.1", "10.1.2.3", "192.0.2.1", "192.0.3.1", "2001:db8::1",
                                       "2001:db9::1", "::1", "::2", "::ffff:10.1.0.9", "8.8.8.8", "127.0.0.1"};
    uint32_t x = 12345;
    int mismatches = 0;
    for (int round = 0; round < 2000; round++) {
        x = x * 1103515245u + 12345u;
        const char *ip = pool[(x >> 16) % BG_ARRAY_SIZE(pool)];
        bg_geo_parse_addr(ip, &ss);
        const bg_geo_override_t *o = (round & 1) ? ov : NULL; /* alternate: forces flushes */
        size_t no = (round & 1) ? 1 : 0;
        int r1 = bg_geo_cache_lookup(c, g, o, no, (struct sockaddr *)&ss, a);
        int r2 = bg_geo_lookup(g, o, no, (struct sockaddr *)&ss, b);
        if (r1 != r2 || strcmp(a, b) != 0)
            mismatches++;
    }
    CHECK_INT(mismatches, 0);
    /* The same without flushes (one override set) to exercise hits and evictions. */
    bg_geo_cache_stats(c, &hits, &misses);
    h0 = hits;
    for (int round = 0; round < 2000; round++) {
        x = x * 1103515245u + 12345u;
        const char *ip = pool[(x >> 16) % BG_ARRAY_SIZE(pool)];
        bg_geo_parse_addr(ip, &ss);
        int r1 = bg_geo_cache_lookup(c, g, ov, 1, (struct sockaddr *)&ss, a);
        int r2 = bg_geo_lookup(g, ov, 1, (struct sockaddr *)&ss, b);
        if (r1 != r2 || strcmp(a, b) != 0)
            mismatches++;
    }
    CHECK_INT(mismatches, 0);
    bg_geo_cache_stats(c, &hits, &misses);
    CHECK(hits - h0 > 1000);

    /* A NULL cache passes through; a NULL database with a cache works (overrides only). */
    bg_geo_parse_addr("10.1.2.3", &ss);
    CHECK_INT(bg_geo_cache_lookup(NULL, g, NULL, 0, (struct sockaddr *)&ss, a), 0);
    CHECK_STR(a, "IT");
    CHECK_INT(bg_geo_cache_lookup(c, NULL, ov, 1, (struct sockaddr *)&ss, a), 0);
    CHECK_STR(a, "NL");
    CHECK_INT(bg_geo_cache_lookup(c, NULL, NULL, 0, NULL, a), 1);
    CHECK_STR(a, "");
    bg_geo_cache_destroy(c);
    bg_geo_cache_destroy(NULL);
    bg_geo_close(g);
}

/* The writer's output read by another program: Debian's mmdblookup (mmdb-bin), if installed. */
static void test_mmdblookup(void)
{
    if (system("command -v mmdblookup >/dev/null 2>&1") != 0) {
        printf("  (skip test_mmdblookup: mmdblookup not installed)\n");
        return;
    }
    const char *p = build_db("cli.mmdb", ((dbopts_t){.epoch = 1780000000}), "127.0.0.2/32=DE", "127.0.0.3/32=US",
                             "127.0.0.4/32=JP", "::1/128=CH");
    static const struct { const char *ip, *want; } cases[] = {
        {"127.0.0.2", "\"DE\""}, {"127.0.0.3", "\"US\""}, {"127.0.0.4", "\"JP\""},
        {"::1", "\"CH\""}, {"::ffff:127.0.0.2", "\"DE\""}, {"127.0.0.5", "Could not find"},
    };
    for (size_t i = 0; i < BG_ARRAY_SIZE(cases); i++) {
        char cmd[512], out[1024] = "";
        snprintf(cmd, sizeof cmd, "mmdblookup -f '%s' -i '%s' country iso_code 2>&1", p, cases[i].ip);
        FILE *f = popen(cmd, "r");
        size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
        out[n] = 0;
        if (f)
            pclose(f);
        if (!strstr(out, cases[i].want))
            bg_test_fail(__FILE__, __LINE__, "mmdblookup %s: got \"%s\", want \"%s\"", cases[i].ip, out,
                         cases[i].want);
    }
    char cmd[512], out[2048] = "";
    snprintf(cmd, sizeof cmd, "mmdblookup -f '%s' -i 127.0.0.2 -v 2>&1", p);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f)
        pclose(f);
    CHECK(strstr(out, "Build epoch:   1780000000") != NULL);
    CHECK(strstr(out, "Type:          GeoLite2-Country") != NULL);
    CHECK(strstr(out, "IP version:    IPv6") != NULL);
    CHECK(strstr(out, "Languages:     en") != NULL);
    CHECK(strstr(out, "bordergate test database") != NULL);
}

/* The embedded database, when the tests run from a tree that has it. */
static void test_embedded(void)
{
    const char *p = "config/geoip/dbip-country-lite.mmdb";
    if (access(p, R_OK) != 0) {
        printf("  (skip test_embedded: %s not found; run from the repository root)\n", p);
        return;
    }
    bg_geo_t *g = open_ok(p, BG_GEO_SCHEMA_AUTO, true);
    if (!g)
        return;
    CHECK_INT(bg_geo_schema(g), BG_GEO_SCHEMA_DBIP);
    CHECK_INT(bg_geo_ip_version(g), 6);
    CHECK(bg_geo_build_epoch(g) > 1700000000);
    CHECK_GEO(g, NULL, 0, "8.8.8.8", "US");         /* Google DNS */
    CHECK_GEO(g, NULL, 0, "::ffff:8.8.8.8", "US");  /* not aliased in this file: geo maps it */
    CHECK_GEO(g, NULL, 0, "46.4.0.1", "DE");        /* Hetzner, Germany */
    CHECK_GEO(g, NULL, 0, "193.99.144.80", "DE");   /* heise.de */
    CHECK_GEO(g, NULL, 0, "2a01:4f8::1", "DE");     /* Hetzner IPv6 */
    CHECK_GEO(g, NULL, 0, "10.0.0.1", "");          /* private: unknown */
    CHECK_GEO(g, NULL, 0, "127.0.0.1", "");
    bg_geo_close(g);
}

static void cleanup(void)
{
    for (size_t i = 0; i < npaths; i++)
        unlink(paths[i]);
    rmdir(tmpdir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bg-geo-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_maxmind_v6);
    RUN(test_order_independent);
    RUN(test_dbip_v4);
    RUN(test_dbip_v6);
    RUN(test_schema_forced_and_unknown_type);
    RUN(test_registered_fallback);
    RUN(test_country_values);
    RUN(test_overrides);
    RUN(test_bad_sockaddr);
    RUN(test_open_errors);
    RUN(test_record_sizes_and_alias);
    RUN(test_writer_errors);
    RUN(test_age);
    RUN(test_cache);
    RUN(test_mmdblookup);
    RUN(test_embedded);
    cleanup();
    return bg_test_done();
}
