/*
 * tests/unit/config.c — the config loader: every field of good configs (defaults too), every
 * error kind with its exact FILE:LINE:COL and message, warnings, the parse helpers, routing,
 * destination kinds, coverage and the snapshot refcount. Files the configs name are created in
 * a temp directory ("@" in a test config is replaced by its path); nothing outside it is read
 * except the repository's own config/regions.yaml and config/bordergate.yaml.
 */
#include "config.h"
#include "test.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[256];
static char root[PATH_MAX]; /* the directory the tests run from (the repository) */
static int64_t NOW;          /* 2026-11-29 00:00 UTC */

static const char test_regions[] =
    "regions:\n"
    "  EEA: { countries: [AT, BE, BG, HR, CY, CZ, DK, EE, FI, FR, DE, GR, HU, IE, IT, LV, LT, LU, MT, NL, PL,\n"
    "                     PT, RO, SK, SI, ES, SE, IS, LI, NO, GF, GP, MQ, RE, YT, MF, AX] }\n"
    "  APAC: [JP, IN, SG]\n"
    "adequacy:\n"
    "  - { country: CA, scope: commercial, date: 2001-12-20 }\n"
    "  - { country: CH, date: 2000-07-26 }\n"
    "  - { country: JP, date: 2019-01-23 }\n"
    "  - { country: US, scope: dpf, date: 2023-07-10 }\n"
    "  - { country: GB, date: 2021-06-28, expires: 2031-12-27 }\n";

static void put(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

/* A usable key file: base64 of 64 bytes, mode 0600 (what certs/gen-key.sh writes). */
static void put_key(const char *rel)
{
    char p[512];
    put(rel, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==\n");
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    chmod(p, 0600);
}

static void mk(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    mkdir(p, 0700);
}

static void setup(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/bg-config-test-XXXXXX");
    if (!mkdtemp(tmp) || !getcwd(root, sizeof root))
        exit(2);
    CHECK(bg_parse_date("2026-11-29", &NOW) == 0);
    put("regions.yaml", test_regions);
    put("geo.mmdb", "not a real database; check only needs the file");
    put("gw.crt", "x");
    put("gw.key", "x");
    mk("keys");
    put_key("keys/k1.key");
    /* The relative paths of the shared example and of config/bordergate.yaml. */
    mk("certs");
    mk("config");
    mk("config/keys");
    mk("config/geoip");
    put("certs/gateway.crt", "x");
    put("certs/gateway.key", "x");
    put_key("config/keys/k1.key");
    put("config/geoip/dbip-country-lite.mmdb", "x");
    put("config/regions.yaml", test_regions);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
}

/* Replace every '@' with the temp directory. The caller frees. */
static char *subst(const char *text)
{
    bg_buf_t b;
    bg_buf_init(&b);
    for (const char *p = text; *p; p++) {
        if (*p == '@')
            bg_buf_puts(&b, tmp);
        else
            bg_buf_append(&b, p, 1);
    }
    if (!b.data)
        bg_buf_puts(&b, "");
    return b.data;
}

static int load(const char *text, bg_config_t **out, bg_diag_t *d)
{
    char *s = subst(text);
    bg_diag_init(d);
    int rc = bg_config_load_buffer("t.yaml", s, strlen(s), NOW, out, d);
    free(s);
    return rc;
}

static void dump(const bg_diag_t *d)
{
    for (size_t i = 0; i < d->nerrors; i++)
        fprintf(stderr, "    error: %s\n", d->errors[i]);
    for (size_t i = 0; i < d->nwarnings; i++)
        fprintf(stderr, "    warn:  %s\n", d->warnings[i]);
}

static bool has(char **list, size_t n, const char *msg)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], msg) == 0)
            return true;
    return false;
}

/* The config fails with exactly `nerr` errors, one of which is `msg`. */
#define EXPECT_ERR(text, nerr, msg)                                                   \
    do {                                                                              \
        bg_config_t *_c = (bg_config_t *)1;                                           \
        bg_diag_t _d;                                                                 \
        int _rc = load(text, &_c, &_d);                                               \
        CHECK_INT(_rc, -1);                                                           \
        CHECK(_c == NULL);                                                            \
        CHECK_INT(_d.nerrors, nerr);                                                  \
        if (!has(_d.errors, _d.nerrors, msg)) {                                       \
            bg_test_fail(__FILE__, __LINE__, "missing error \"%s\"", msg);            \
            dump(&_d);                                                                \
        }                                                                             \
        bg_diag_dispose(&_d);                                                         \
    } while (0)

/* The config loads; returns it (caller releases). */
static bg_config_t *expect_ok(const char *text, const char *file, int line)
{
    bg_config_t *c = NULL;
    bg_diag_t d;
    if (load(text, &c, &d) != 0 || !c) {
        bg_test_fail(file, line, "config did not load");
        dump(&d);
    }
    bg_diag_dispose(&d);
    return c;
}
#define EXPECT_OK(text) expect_ok(text, __FILE__, __LINE__)

#define BASE                                                                          \
    "jurisdiction: EEA\n"                                                             \
    "regions: @/regions.yaml\n"                                                       \
    "geoip: {database: @/geo.mmdb}\n"                                                 \
    "listen: [{address: 127.0.0.1:8080}]\n"
#define VENDOR_A                                                                      \
    "vendors:\n"                                                                      \
    "  - name: a\n"                                                                   \
    "    hosts: [a.example]\n"                                                        \
    "    regions: [EEA]\n"

/* ------------------------------------------------------------------ parse helpers */

static void test_parse_size(void)
{
    uint64_t v = 0;
    CHECK_INT(bg_parse_size("1MiB", &v), 0);
    CHECK_INT(v, 1048576);
    CHECK_INT(bg_parse_size("512KiB", &v), 0);
    CHECK_INT(v, 524288);
    CHECK_INT(bg_parse_size("10MB", &v), 0);
    CHECK_INT(v, 10000000);
    CHECK_INT(bg_parse_size("123", &v), 0);
    CHECK_INT(v, 123);
    CHECK_INT(bg_parse_size("2 GiB", &v), 0);
    CHECK_INT(v, 2147483648LL);
    CHECK_INT(bg_parse_size("100MiB", &v), 0);
    CHECK_INT(v, 104857600);
    CHECK_INT(bg_parse_size("", &v), -1);
    CHECK_INT(bg_parse_size("MiB", &v), -1);
    CHECK_INT(bg_parse_size("1.5MiB", &v), -1);
    CHECK_INT(bg_parse_size("-1", &v), -1);
    CHECK_INT(bg_parse_size("1XB", &v), -1);
    CHECK_INT(bg_parse_size("99999999999999999999", &v), -1);
    CHECK_INT(bg_parse_size("20000000TiB", &v), -1);
    CHECK_INT(bg_parse_size(NULL, &v), -1);
}

static void test_parse_duration(void)
{
    uint64_t v = 0;
    CHECK_INT(bg_parse_duration_ms("10s", &v), 0);
    CHECK_INT(v, 10000);
    CHECK_INT(bg_parse_duration_ms("250ms", &v), 0);
    CHECK_INT(v, 250);
    CHECK_INT(bg_parse_duration_ms("5m", &v), 0);
    CHECK_INT(v, 300000);
    CHECK_INT(bg_parse_duration_ms("1h", &v), 0);
    CHECK_INT(v, 3600000);
    CHECK_INT(bg_parse_duration_ms("1h30m", &v), 0);
    CHECK_INT(v, 5400000);
    CHECK_INT(bg_parse_duration_ms("10", &v), -1);
    CHECK_INT(bg_parse_duration_ms("s", &v), -1);
    CHECK_INT(bg_parse_duration_ms("-1s", &v), -1);
    CHECK_INT(bg_parse_duration_ms("1x", &v), -1);
    CHECK_INT(bg_parse_duration_ms("", &v), -1);
    CHECK_INT(bg_parse_duration_ms("99999999999999999999h", &v), -1);
}

static void test_parse_date(void)
{
    int64_t t = 0;
    CHECK_INT(bg_parse_date("2027-03-01", &t), 0);
    CHECK_INT(t, 1803859200);
    CHECK_INT(bg_parse_date("2024-02-29", &t), 0); /* leap year */
    CHECK_INT(t, 1709164800);
    CHECK_INT(bg_parse_date("2025-02-29", &t), -1);
    CHECK_INT(bg_parse_date("2026-02-30", &t), -1);
    CHECK_INT(bg_parse_date("2100-02-29", &t), -1); /* not a leap year */
    CHECK_INT(bg_parse_date("2000-02-29", &t), 0);  /* but 2000 was */
    CHECK_INT(bg_parse_date("2026-13-01", &t), -1);
    CHECK_INT(bg_parse_date("2026-04-31", &t), -1);
    CHECK_INT(bg_parse_date("2026-00-10", &t), -1);
    CHECK_INT(bg_parse_date("2026-1-01", &t), -1);
    CHECK_INT(bg_parse_date("2026-01-01x", &t), -1);
    CHECK_INT(bg_parse_date("26-01-01", &t), -1);
    CHECK_INT(bg_parse_date(NULL, &t), -1);
}

static void sin4(struct sockaddr_in *s, const char *ip)
{
    memset(s, 0, sizeof *s);
    s->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &s->sin_addr);
}

static void sin6(struct sockaddr_in6 *s, const char *ip)
{
    memset(s, 0, sizeof *s);
    s->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &s->sin6_addr);
}

static void test_parse_cidr(void)
{
    bg_cidr_t c;
    struct sockaddr_in a;
    struct sockaddr_in6 b;
    CHECK_INT(bg_parse_cidr("10.0.0.0/8", &c), 0);
    CHECK_INT(c.family, AF_INET);
    CHECK_INT(c.prefix, 8);
    sin4(&a, "10.200.3.4");
    CHECK(bg_cidr_contains(&c, (struct sockaddr *)&a));
    sin4(&a, "11.0.0.1");
    CHECK(!bg_cidr_contains(&c, (struct sockaddr *)&a));
    sin6(&b, "::ffff:10.1.2.3"); /* IPv4-mapped counts as IPv4 */
    CHECK(bg_cidr_contains(&c, (struct sockaddr *)&b));
    CHECK_INT(bg_parse_cidr("127.0.0.2", &c), 0);
    CHECK_INT(c.prefix, 32);
    sin4(&a, "127.0.0.2");
    CHECK(bg_cidr_contains(&c, (struct sockaddr *)&a));
    sin4(&a, "127.0.0.3");
    CHECK(!bg_cidr_contains(&c, (struct sockaddr *)&a));
    CHECK_INT(bg_parse_cidr("2001:db8::/32", &c), 0);
    CHECK_INT(c.family, AF_INET6);
    CHECK_INT(c.prefix, 32);
    sin6(&b, "2001:db8:ffff::1");
    CHECK(bg_cidr_contains(&c, (struct sockaddr *)&b));
    sin6(&b, "2001:db9::1");
    CHECK(!bg_cidr_contains(&c, (struct sockaddr *)&b));
    sin4(&a, "32.1.13.184");
    CHECK(!bg_cidr_contains(&c, (struct sockaddr *)&a));
    CHECK_INT(bg_parse_cidr("10.0.0.0/12", &c), 0);
    sin4(&a, "10.15.255.255");
    CHECK(bg_cidr_contains(&c, (struct sockaddr *)&a));
    sin4(&a, "10.16.0.0");
    CHECK(!bg_cidr_contains(&c, (struct sockaddr *)&a));
    CHECK_INT(bg_parse_cidr("::1", &c), 0);
    CHECK_INT(c.prefix, 128);
    CHECK_INT(bg_parse_cidr("0.0.0.0/0", &c), 0);
    CHECK(bg_cidr_contains(&c, (struct sockaddr *)&a));
    CHECK_INT(bg_parse_cidr("10.0.0.1/8", &c), -1); /* host bits set */
    CHECK_INT(bg_parse_cidr("1.2.3.4/33", &c), -1);
    CHECK_INT(bg_parse_cidr("1.2.3.4/", &c), -1);
    CHECK_INT(bg_parse_cidr("1.2.3.4/8x", &c), -1);
    CHECK_INT(bg_parse_cidr("::/129", &c), -1);
    CHECK_INT(bg_parse_cidr("example.com/8", &c), -1);
    CHECK_INT(bg_parse_cidr("", &c), -1);
}

static void test_parse_sockaddr(void)
{
    bg_sockaddr_t s;
    CHECK_INT(bg_parse_sockaddr("127.0.0.1:8080", &s), 0);
    CHECK_STR(s.text, "127.0.0.1:8080");
    CHECK_INT(((struct sockaddr_in *)&s.addr)->sin_family, AF_INET);
    CHECK_INT(ntohs(((struct sockaddr_in *)&s.addr)->sin_port), 8080);
    CHECK_INT(s.addrlen, sizeof(struct sockaddr_in));
    free(s.text);
    CHECK_INT(bg_parse_sockaddr("[::1]:8443", &s), 0);
    CHECK_INT(((struct sockaddr_in6 *)&s.addr)->sin6_family, AF_INET6);
    CHECK_INT(ntohs(((struct sockaddr_in6 *)&s.addr)->sin6_port), 8443);
    CHECK_INT(s.addrlen, sizeof(struct sockaddr_in6));
    free(s.text);
    CHECK_INT(bg_parse_sockaddr("127.0.0.1", &s), -1);
    CHECK(s.text == NULL);
    CHECK_INT(bg_parse_sockaddr("::1:80", &s), -1);
    CHECK_INT(bg_parse_sockaddr("[::1]", &s), -1);
    CHECK_INT(bg_parse_sockaddr("[127.0.0.1]:80", &s), -1);
    CHECK_INT(bg_parse_sockaddr("1.2.3.4:70000", &s), -1);
    CHECK_INT(bg_parse_sockaddr("1.2.3.4:", &s), -1);
    CHECK_INT(bg_parse_sockaddr("localhost:80", &s), -1);
    CHECK_INT(bg_parse_sockaddr("1.2.3.4:80x", &s), -1);
}

static void test_country_valid(void)
{
    CHECK(bg_country_valid("GR"));
    CHECK(bg_country_valid("GB"));
    CHECK(bg_country_valid("US"));
    CHECK(bg_country_valid("AX"));
    CHECK(bg_country_valid("ZW"));
    CHECK(bg_country_valid("AD"));
    CHECK(!bg_country_valid("EL"));
    CHECK(!bg_country_valid("UK"));
    CHECK(!bg_country_valid("EU"));
    CHECK(!bg_country_valid("ZZ"));
    CHECK(!bg_country_valid("XK")); /* user-assigned, not assigned by ISO */
    CHECK(!bg_country_valid("gr"));
    CHECK(!bg_country_valid("GRC"));
    CHECK(!bg_country_valid("G"));
    CHECK(!bg_country_valid(""));
    CHECK(!bg_country_valid(NULL));
    /* Every letter pair: exactly the 249 assigned codes, the first and last of each letter's run
     * included (the lookup is a bit per pair). */
    int n = 0;
    char cc[3] = {0};
    for (cc[0] = 'A'; cc[0] <= 'Z'; cc[0]++)
        for (cc[1] = 'A'; cc[1] <= 'Z'; cc[1]++)
            n += bg_country_valid(cc);
    CHECK_INT(n, 249);
    CHECK(bg_country_valid("BA") && bg_country_valid("BZ") && bg_country_valid("OM") && bg_country_valid("QA"));
    CHECK(!bg_country_valid("AA") && !bg_country_valid("OA") && !bg_country_valid("ZZ") && !bg_country_valid("AZ\n"));
}

static void test_diag(void)
{
    bg_diag_t d;
    bg_diag_init(&d);
    bg_pos_t p = {3, 7};
    bg_diag_error(&d, "f.yaml", p, "bad %s %d", "thing", 42);
    bg_diag_error(&d, NULL, p, "no position");
    bg_diag_warn(&d, "f.yaml", p, "careful");
    CHECK_INT(d.nerrors, 2);
    CHECK_STR(d.errors[0], "f.yaml:3:7: bad thing 42");
    CHECK_STR(d.errors[1], "no position");
    CHECK_INT(d.nwarnings, 1);
    CHECK_STR(d.warnings[0], "f.yaml:3:7: warning: careful");
    for (int i = 0; i < 1200; i++)
        bg_diag_error(&d, "f.yaml", p, "e%d", i);
    CHECK_INT(d.nerrors, 1001); /* capped, with one "too many" line */
    CHECK_STR(d.errors[1000], "too many problems; only the first 1000 are listed");
    bg_diag_dispose(&d);
    CHECK_INT(d.nerrors, 0);
}

/* ------------------------------------------------------------------ good configs */

static void test_minimal_defaults(void)
{
    bg_config_t *c = EXPECT_OK(BASE VENDOR_A);
    if (!c)
        return;
    CHECK_STR(c->path, "t.yaml");
    CHECK_STR(c->jurisdiction, "EEA");
    CHECK_INT(c->mode, BG_MODE_ENFORCE);
    CHECK_INT(c->nlisten, 1);
    CHECK_STR(c->listen[0].address.text, "127.0.0.1:8080");
    CHECK(!c->listen[0].tls);
    CHECK(c->listen[0].certificate == NULL);
    CHECK_INT(c->listen[0].pos.line, 4);
    CHECK(c->admin.enabled);
    CHECK_STR(c->admin.address.text, "127.0.0.1:9901");
    CHECK_INT(ntohs(((struct sockaddr_in *)&c->admin.address.addr)->sin_port), 9901);
    CHECK(c->admin.token == NULL);
    CHECK_INT(c->workers, sysconf(_SC_NPROCESSORS_ONLN));
    CHECK(c->user == NULL);
    CHECK(c->pid_file == NULL);
    CHECK_INT(c->limits.max_body_scan, 1 << 20);
    CHECK_INT(c->limits.max_body, 64 << 20);
    CHECK_INT(c->limits.oversize_body, BG_OVERSIZE_BLOCK);
    CHECK_INT(c->limits.header_timeout_ms, 10000);
    CHECK_INT(c->limits.idle_timeout_ms, 60000);
    CHECK_INT(c->limits.upstream_connect_timeout_ms, 5000);
    CHECK_INT(c->limits.upstream_timeout_ms, 30000);
    CHECK_INT(c->limits.drain_timeout_ms, 30000);
    CHECK_INT(c->limits.max_connections, 10000);
    CHECK_INT(c->limits.max_header_size, 16384);
    CHECK_INT(c->limits.max_headers, 100);
    CHECK_INT(c->limits.max_uri, 8192);
    CHECK_INT(c->limits.max_inflate, 16 << 20);
    CHECK(strstr(c->geoip.database, "/geo.mmdb") != NULL);
    CHECK_INT(c->geoip.schema, BG_GEO_SCHEMA_AUTO);
    CHECK(c->geoip.registered_country_fallback);
    CHECK_INT(c->geoip.noverrides, 0);
    CHECK(strstr(c->regions_path, "/regions.yaml") != NULL);
    CHECK_INT(c->nregions, 2);
    CHECK_STR(c->regions[0].name, "EEA");
    CHECK_INT(c->regions[0].ncountries, 37);
    CHECK_STR(c->regions[c->jurisdiction_region].name, "EEA");
    CHECK_INT(c->nadequacy, 5);
    CHECK(c->classification.all);
    CHECK_INT(c->classification.ndetectors, 0);
    CHECK_INT(c->classification.ncustom, 0);
    CHECK(c->encryption.keys_dir == NULL);
    CHECK(c->encryption.active_key == NULL);
    CHECK_STR(c->records.path, "records/transfers.jsonl");
    CHECK_INT(c->records.rotate_size, 100 << 20);
    CHECK_INT(c->records.retention_days, 400);
    CHECK_INT(c->records.fsync, BG_FSYNC_BATCH);
    CHECK_INT(c->nvendors, 1);
    const bg_vendor_t *v = &c->vendors[0];
    CHECK_STR(v->name, "a");
    CHECK(v->entity_name == NULL);
    CHECK_STR(v->entity_country, "");
    CHECK(!v->public_body);
    CHECK_INT(v->role, BG_ROLE_PROCESSOR);
    CHECK_INT(v->nhosts, 1);
    CHECK_STR(v->hosts[0], "a.example");
    CHECK_INT(v->upstream.port, 443);
    CHECK(v->upstream.tls);
    CHECK(v->upstream.verify);
    CHECK(v->upstream.ca == NULL && v->upstream.client_certificate == NULL && v->upstream.client_key == NULL);
    CHECK(v->upstream.sni == NULL);
    CHECK(v->upstream.addresses == NULL || v->upstream.naddresses == 0);
    CHECK_INT(v->upstream.protocol, BG_PROTO_AUTO);
    CHECK_INT(v->nregions, 1);
    CHECK(v->regions[0].is_region);
    CHECK_STR(v->regions[0].name, "EEA");
    CHECK_INT(v->categories, 0);
    CHECK(!v->has_scc && !v->has_dpf && !v->bcr);
    CHECK_INT(v->on_violation, BG_VIOLATION_BLOCK);
    CHECK(!v->reveal_responses);
    CHECK(!v->ai);
    CHECK_INT(v->max_body, 64 << 20);
    CHECK_INT(v->pos.line, 6);
    CHECK_INT(strlen(c->version), 64);
    bg_config_release(c);
}

/* The shared example, copied into tests/data/config/example.yaml: every field. */
static void test_example_config(void)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/tests/data/config/example.yaml", root);
    CHECK_INT(chdir(tmp), 0); /* its relative paths (certs/, config/) resolve in the temp dir */
    bg_diag_t d;
    bg_config_t *c = NULL;
    bg_diag_init(&d);
    int rc = bg_config_load(path, NOW, &c, &d);
    CHECK_INT(chdir(root), 0);
    CHECK_INT(rc, 0);
    if (rc != 0)
        dump(&d);
    /* llm-provider's DPF certification (2026-10-01) has expired by NOW: a warning only. */
    CHECK_INT(d.nwarnings, 1);
    if (d.nwarnings == 1)
        CHECK(strstr(d.warnings[0], "example.yaml:92:38: warning: vendor 'llm-provider': dpf certification expired "
                                    "on 2026-10-01") != NULL);
    bg_diag_dispose(&d);
    if (!c)
        return;
    CHECK_STR(c->jurisdiction, "EEA");
    CHECK_INT(c->mode, BG_MODE_ENFORCE);
    CHECK_INT(c->nlisten, 2);
    CHECK_STR(c->listen[0].address.text, "127.0.0.1:8080");
    CHECK(!c->listen[0].tls);
    CHECK_STR(c->listen[1].address.text, "127.0.0.1:8443");
    CHECK(c->listen[1].tls);
    CHECK_STR(c->listen[1].certificate, "certs/gateway.crt");
    CHECK_STR(c->listen[1].key, "certs/gateway.key");
    CHECK(c->listen[1].client_ca == NULL);
    CHECK_INT(c->listen[1].pos.line, 10);
    CHECK_STR(c->admin.address.text, "127.0.0.1:9901");
    CHECK(c->admin.enabled);
    CHECK_INT(c->limits.max_body_scan, 1048576);
    CHECK_INT(c->limits.oversize_body, BG_OVERSIZE_BLOCK);
    CHECK_INT(c->limits.header_timeout_ms, 10000);
    CHECK_INT(c->limits.idle_timeout_ms, 60000);
    CHECK_INT(c->limits.upstream_connect_timeout_ms, 5000);
    CHECK_INT(c->limits.upstream_timeout_ms, 30000);
    CHECK_INT(c->limits.max_connections, 10000);
    CHECK_STR(c->geoip.database, "config/geoip/dbip-country-lite.mmdb");
    CHECK_INT(c->geoip.noverrides, 1);
    CHECK_INT(c->geoip.overrides[0].net.family, AF_INET);
    CHECK_INT(c->geoip.overrides[0].net.prefix, 8);
    CHECK_INT(c->geoip.overrides[0].net.addr[0], 10);
    CHECK_STR(c->geoip.overrides[0].country, "DE");
    CHECK_STR(c->regions_path, "config/regions.yaml");
    CHECK(c->classification.all);
    CHECK_INT(c->classification.ncustom, 1);
    const bg_custom_detector_t *cd = &c->classification.custom[0];
    CHECK_STR(cd->name, "customer_number");
    CHECK_INT(cd->category, BG_CAT_IDENTIFIER);
    CHECK_INT(cd->nkeys, 2);
    CHECK_STR(cd->keys[0], "customer_no");
    CHECK_STR(cd->keys[1], "cust_id");
    CHECK_STR(cd->prefix, "CUST-");
    CHECK_INT(cd->digits, 8);
    CHECK_STR(c->encryption.keys_dir, "config/keys");
    CHECK_STR(c->encryption.active_key, "k1");
    CHECK_STR(c->records.path, "records/transfers.jsonl");
    CHECK_INT(c->records.rotate_size, 100 << 20);
    CHECK_INT(c->records.retention_days, 400);
    CHECK_INT(c->records.fsync, BG_FSYNC_BATCH);
    CHECK_INT(c->nvendors, 3);
    const bg_vendor_t *v = &c->vendors[0];
    CHECK_STR(v->name, "acme-analytics");
    CHECK_STR(v->entity_name, "Acme Analytics Inc.");
    CHECK_STR(v->entity_country, "US");
    CHECK_INT(v->role, BG_ROLE_PROCESSOR);
    CHECK_INT(v->nhosts, 1);
    CHECK_STR(v->hosts[0], "api.acme-analytics.example");
    CHECK_INT(v->upstream.port, 443);
    CHECK(v->upstream.tls && v->upstream.verify);
    CHECK_INT(v->nregions, 1);
    CHECK(!v->regions[0].is_region);
    CHECK_STR(v->regions[0].country, "US");
    CHECK_INT(v->categories, (1u << BG_CAT_IDENTIFIER) | (1u << BG_CAT_DEVICE) | (1u << BG_CAT_USAGE));
    CHECK(v->has_scc);
    CHECK_INT(v->scc.module, 2);
    CHECK_STR(v->scc.reference, "DPA-2024-017");
    CHECK_INT(v->scc.signed_at, 1709251200);
    CHECK_INT(v->scc.expires, 1803859200);
    CHECK(!v->has_dpf);
    CHECK_INT(v->on_violation, BG_VIOLATION_BLOCK);
    CHECK_INT(v->pos.line, 58);
    v = &c->vendors[1];
    CHECK_STR(v->name, "helpdesk-eu");
    CHECK_STR(v->entity_country, "DE");
    CHECK(v->regions[0].is_region);
    CHECK_STR(v->regions[0].name, "EEA");
    CHECK_INT(v->categories, (1u << BG_CAT_IDENTIFIER) | (1u << BG_CAT_CONTENT));
    CHECK(!v->has_scc && !v->has_dpf);
    v = &c->vendors[2];
    CHECK_STR(v->name, "llm-provider");
    CHECK_INT(v->categories, 1u << BG_CAT_AI_INTERACTION);
    CHECK(v->ai); /* default: categories include ai_interaction */
    CHECK(v->has_dpf);
    CHECK(v->dpf.certified);
    int64_t t;
    bg_parse_date("2026-10-01", &t);
    CHECK_INT(v->dpf.expires, t);
    CHECK_INT(v->on_violation, BG_VIOLATION_ENCRYPT);
    bg_config_release(c);
}

/* The repository's own config/bordergate.yaml and config/regions.yaml. */
static void test_default_config(void)
{
    char path[PATH_MAX + 64], regions[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config/bordergate.yaml", root);
    snprintf(regions, sizeof regions, "%s/config/regions.yaml", root);
    FILE *in = fopen(regions, "rb");
    CHECK(in != NULL);
    if (!in)
        return;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    buf[n] = 0;
    put("config/regions.yaml", buf); /* the real regions file */
    CHECK_INT(chdir(tmp), 0);
    bg_diag_t d;
    bg_config_t *c = NULL;
    bg_diag_init(&d);
    int rc = bg_config_load(path, NOW, &c, &d);
    CHECK_INT(chdir(root), 0);
    put("config/regions.yaml", test_regions);
    CHECK_INT(rc, 0);
    if (rc != 0)
        dump(&d);
    CHECK_INT(d.nwarnings, 1); /* analytics-us: basis: none */
    bg_diag_dispose(&d);
    if (!c)
        return;
    CHECK_INT(c->nlisten, 2);
    CHECK_INT(c->nvendors, 6);
    CHECK_INT(c->nregions, 2);
    int eea = c->jurisdiction_region;
    CHECK_STR(c->regions[eea].name, "EEA");
    CHECK_INT(c->regions[eea].ncountries, 27 + 3 + 7);
    CHECK_INT(c->nadequacy, 16);
    CHECK_INT(c->geoip.noverrides, 4);
    CHECK_STR(c->geoip.overrides[2].country, "US");
    CHECK_INT(c->geoip.overrides[2].net.prefix, 32);
    CHECK_INT(c->geoip.overrides[2].net.addr[3], 2);
    const bg_vendor_t *v = bg_config_route(c, "echo.eu.localhost", 17);
    CHECK(v != NULL);
    if (v) {
        CHECK_STR(v->name, "echo-eu");
        CHECK_INT(v->upstream.port, 9000);
        CHECK(!v->upstream.tls);
        CHECK_INT(v->upstream.naddresses, 1);
        CHECK_STR(v->upstream.addresses[0].text, "127.0.0.1");
        CHECK_INT(ntohs(((struct sockaddr_in *)&v->upstream.addresses[0].addr)->sin_port), 9000);
    }
    v = bg_config_route(c, "ai.jp.localhost", 15);
    CHECK(v && v->on_violation == BG_VIOLATION_ENCRYPT && v->ai);
    v = bg_config_route(c, "analytics.us.localhost", 22);
    CHECK(v && !v->has_scc && !v->has_dpf && !v->bcr && v->on_violation == BG_VIOLATION_BLOCK);
    bg_adequacy_scope_t scope = (bg_adequacy_scope_t)-1;
    /* The real regions file: Greece is GR, outermost regions are in, adequacy with scope and dates. */
    const char *domestic[] = {"GR", "FR", "GF", "GP", "MQ", "RE", "YT", "MF", "AX", "IS", "LI", "NO", "DE"};
    for (size_t i = 0; i < BG_ARRAY_SIZE(domestic); i++)
        CHECK_INT(bg_config_dest_kind(c, domestic[i], &scope), BG_DEST_DOMESTIC);
    const char *adequate[] = {"AD", "AR", "BR", "CA", "CH", "FO", "GB", "GG", "IL", "IM", "JP", "JE", "KR", "NZ",
                              "UY", "US"};
    for (size_t i = 0; i < BG_ARRAY_SIZE(adequate); i++)
        CHECK_INT(bg_config_dest_kind(c, adequate[i], &scope), BG_DEST_ADEQUATE);
    CHECK_INT(bg_config_dest_kind(c, "CA", &scope), BG_DEST_ADEQUATE);
    CHECK_INT(scope, BG_SCOPE_COMMERCIAL);
    CHECK_INT(bg_config_dest_kind(c, "US", &scope), BG_DEST_ADEQUATE);
    CHECK_INT(scope, BG_SCOPE_DPF);
    CHECK_INT(bg_config_dest_kind(c, "CH", &scope), BG_DEST_ADEQUATE);
    CHECK_INT(scope, BG_SCOPE_FULL);
    for (size_t i = 0; i < c->nadequacy; i++)
        if (strcmp(c->adequacy[i].country, "GB") == 0) {
            int64_t t;
            bg_parse_date("2031-12-27", &t);
            CHECK_INT(c->adequacy[i].expires, t);
        }
    CHECK_INT(bg_config_dest_kind(c, "IN", &scope), BG_DEST_THIRD);
    CHECK_INT(bg_config_dest_kind(c, "CN", &scope), BG_DEST_THIRD);
    CHECK_INT(bg_config_dest_kind(c, "", &scope), BG_DEST_UNKNOWN);
    bg_config_release(c);
}

static void test_empty_detector_list_refused(void)
{
    const char *yaml = "jurisdiction: EEA\n"
                       "listen: [{address: \"127.0.0.1:8080\"}]\n"
                       "geoip: {database: config/geoip/dbip-country-lite.mmdb}\n"
                       "classification: {detectors: []}\n"
                       "vendors: []\n";
    bg_config_t *cfg = NULL;
    bg_diag_t d;
    bg_diag_init(&d);
    CHECK_INT(bg_config_load_buffer("e.yaml", yaml, strlen(yaml), 0, &cfg, &d), -1);
    CHECK(d.nerrors >= 1 && strstr(d.errors[0], "e.yaml:4:29: classification.detectors: an empty list") != NULL);
    bg_config_release(cfg);
    bg_diag_dispose(&d);
}

/* Detector names are checked at load, each at its line (the classifier used to refuse only the
 * first bad one, with no position). */
static void test_err_detector_names(void)
{
    EXPECT_ERR(BASE "classification:\n  detectors: [email, emial, phone, ssn]\n", 2,
               "t.yaml:6:22: classification.detectors: unknown detector 'emial' (did you mean 'email'?)");
    EXPECT_ERR(BASE "classification:\n  detectors: [email, emial, phone, ssn]\n", 2,
               "t.yaml:6:36: classification.detectors: unknown detector 'ssn'");
    EXPECT_ERR(BASE "classification:\n  custom:\n"
                    "    - {name: email, category: identifier, keys: [x]}\n"
                    "    - {name: cust, category: identifier, keys: [x]}\n"
                    "    - {name: cust, category: usage, keys: [y]}\n",
               2, "t.yaml:7:14: custom detector name 'email' is a built-in detector");
    EXPECT_ERR(BASE "classification:\n  custom:\n"
                    "    - {name: email, category: identifier, keys: [x]}\n"
                    "    - {name: cust, category: identifier, keys: [x]}\n"
                    "    - {name: cust, category: usage, keys: [y]}\n",
               2, "t.yaml:9:14: duplicate custom detector 'cust' (first at line 8)");
    /* A custom detector may be listed among the enabled ones. */
    bg_config_t *c = EXPECT_OK(BASE "classification:\n  detectors: [email, member_no]\n  custom:\n"
                                    "    - {name: member_no, category: identifier, keys: [member]}\n");
    bg_config_release(c);
}

static void test_upstream_http2_needs_tls(void)
{
    const char *yaml = "jurisdiction: EEA\n"
                       "listen: [{address: \"127.0.0.1:8080\"}]\n"
                       "geoip: {database: config/geoip/dbip-country-lite.mmdb}\n"
                       "vendors:\n"
                       "  - name: v\n"
                       "    hosts: [v.example]\n"
                       "    upstream: {tls: false, protocol: http2}\n"
                       "    regions: [EEA]\n";
    bg_config_t *cfg = NULL;
    bg_diag_t d;
    bg_diag_init(&d);
    CHECK_INT(bg_config_load_buffer("h2.yaml", yaml, strlen(yaml), 0, &cfg, &d), -1);
    CHECK(cfg == NULL);
    CHECK(d.nerrors >= 1 &&
          strstr(d.errors[0], "h2.yaml:7:38: vendor 'v': upstream.protocol: http2 needs upstream tls: true") != NULL);
    bg_diag_dispose(&d);

    /* Over TLS, http2 pins the vendor to HTTP/2. */
    const char *ok = "jurisdiction: EEA\n"
                     "listen: [{address: \"127.0.0.1:8080\"}]\n"
                     "geoip: {database: config/geoip/dbip-country-lite.mmdb}\n"
                     "vendors:\n"
                     "  - name: v\n"
                     "    hosts: [v.example]\n"
                     "    upstream: {tls: true, protocol: http2}\n"
                     "    regions: [EEA]\n";
    bg_diag_init(&d);
    CHECK_INT(bg_config_load_buffer("h2.yaml", ok, strlen(ok), 0, &cfg, &d), 0);
    CHECK(cfg != NULL && cfg->vendors[0].upstream.protocol == BG_PROTO_HTTP2);
    bg_config_release(cfg);
    bg_diag_dispose(&d);
}

static void test_limits_per_listener_and_caller(void)
{
    bg_config_t *c = EXPECT_OK("jurisdiction: EEA\n"
                               "regions: @/regions.yaml\n"
                               "geoip: {database: @/geo.mmdb}\n"
                               "listen:\n"
                               "  - {address: 127.0.0.1:8080, max_connections: 100, requests_per_second: 50}\n"
                               "  - {address: 127.0.0.1:8081, requests_per_second: 5, request_burst: 20}\n"
                               "  - {address: 127.0.0.1:8082}\n"
                               "limits: {requests_per_second_per_caller: 7}\n" VENDOR_A);
    if (!c)
        return;
    CHECK_INT(c->listen[0].max_connections, 100);
    CHECK_INT(c->listen[0].requests_per_second, 50);
    CHECK_INT(c->listen[0].request_burst, 50); /* one second's worth by default */
    CHECK_INT(c->listen[1].request_burst, 20);
    CHECK_INT(c->listen[2].max_connections, 0);
    CHECK_INT(c->listen[2].requests_per_second, 0);
    CHECK_INT(c->limits.requests_per_second_per_caller, 7);
    CHECK_INT(c->limits.request_burst_per_caller, 7);
    bg_config_release(c);
    EXPECT_ERR(BASE "limits: {request_burst_per_caller: 0}\n" VENDOR_A, 1,
               "t.yaml:5:36: limits.request_burst_per_caller: expected a number from 1 to 100000000, got '0'");
}

static void test_full_fields(void)
{
    bg_config_t *c = EXPECT_OK(
        "jurisdiction: EEA\n"
        "mode: report-only\n"
        "regions: @/regions.yaml\n"
        "geoip:\n"
        "  database: @/geo.mmdb\n"
        "  schema: dbip\n"
        "  registered_country_fallback: false\n"
        "  overrides: [{network: \"2001:db8::/32\", country: JP}]\n"
        "listen:\n"
        "  - address: \"[::1]:8443\"\n"
        "    tls: {certificate: @/gw.crt, key: @/gw.key, client_ca: @/gw.crt}\n"
        "admin: {address: 127.0.0.1:9999, token: s3cret-token}\n"
        "workers: 3\n"
        "user: nobody\n"
        "pid_file: /run/bg.pid\n"
        "limits: {max_body: 10MB, max_header_size: 32KiB, max_headers: 50, max_uri: 4KiB, max_inflate: 1MiB,\n"
        "         drain_timeout: 1m30s, oversize_body: personal, max_connections: 7}\n"
        "classification: {detectors: [email, phone]}\n"
        "encryption: {keys: @/keys, active_key: k1}\n"
        "records: {path: r.jsonl, rotate_size: 1MiB, retention_days: 7, fsync: never}\n"
        "vendors:\n"
        "  - name: full\n"
        "    entity: {name: Gov, country: CA, public_body: true}\n"
        "    role: controller\n"
        "    hosts: [API.Full.Example, \"*.cdn.full.example\"]\n"
        "    upstream:\n"
        "      port: 8443\n"
        "      verify: false\n"
        "      ca: @/gw.crt\n"
        "      client_certificate: @/gw.crt\n"
        "      client_key: @/gw.key\n"
        "      sni: sni.full.example\n"
        "      addresses: [203.0.113.10, \"2001:db8::7\"]\n"
        "      protocol: http1\n"
        "    regions: [CA, APAC, adequate]\n"
        "    categories: [identifier, ai_interaction]\n"
        "    scc: {module: 4, reference: R-1, signed: 2024-02-29, expires: 2030-01-01}\n"
        "    dpf: {certified: false}\n"
        "    bcr: true\n"
        "    on_violation: encrypt\n"
        "    reveal_responses: true\n"
        "    ai: false\n"
        "    max_body: 512KiB\n");
    if (!c)
        return;
    CHECK_INT(c->mode, BG_MODE_REPORT_ONLY);
    CHECK_INT(c->geoip.schema, BG_GEO_SCHEMA_DBIP);
    CHECK(!c->geoip.registered_country_fallback);
    CHECK_INT(c->geoip.overrides[0].net.family, AF_INET6);
    CHECK_STR(c->geoip.overrides[0].country, "JP");
    CHECK(c->listen[0].tls);
    CHECK(strstr(c->listen[0].client_ca, "/gw.crt") != NULL);
    /* Where each file is named, for the runtime's messages about files that do not load. */
    CHECK_INT(c->listen[0].certificate_pos.line, 11);
    CHECK_INT(c->listen[0].certificate_pos.col, 24);
    CHECK_INT(c->listen[0].key_pos.line, 11);
    CHECK_INT(c->listen[0].client_ca_pos.line, 11);
    CHECK(c->listen[0].key_pos.col > 24 && c->listen[0].client_ca_pos.col > c->listen[0].key_pos.col);
    CHECK_INT(c->geoip.database_pos.line, 5);
    CHECK_INT(c->geoip.database_pos.col, 13);
    CHECK_INT(c->encryption.keys_pos.line, 19);
    CHECK_INT(c->encryption.keys_pos.col, 20);
    CHECK_INT(c->vendors[0].upstream.ca_pos.line, 29);
    CHECK_INT(c->vendors[0].upstream.ca_pos.col, 11);
    CHECK_INT(c->vendors[0].upstream.client_certificate_pos.line, 30);
    CHECK_INT(c->vendors[0].upstream.client_certificate_pos.col, 27);
    CHECK_INT(c->vendors[0].upstream.client_key_pos.line, 31);
    CHECK_INT(c->vendors[0].upstream.client_key_pos.col, 19);
    CHECK_INT(((struct sockaddr *)&c->listen[0].address.addr)->sa_family, AF_INET6);
    CHECK_STR(c->admin.token, "s3cret-token");
    CHECK_STR(c->admin.address.text, "127.0.0.1:9999");
    CHECK_INT(c->workers, 3);
    CHECK_STR(c->user, "nobody");
    CHECK_STR(c->pid_file, "/run/bg.pid");
    CHECK_INT(c->limits.max_body, 10000000);
    CHECK_INT(c->limits.max_header_size, 32768);
    CHECK_INT(c->limits.max_headers, 50);
    CHECK_INT(c->limits.max_uri, 4096);
    CHECK_INT(c->limits.max_inflate, 1048576);
    CHECK_INT(c->limits.drain_timeout_ms, 90000);
    CHECK_INT(c->limits.oversize_body, BG_OVERSIZE_PERSONAL);
    CHECK_INT(c->limits.max_connections, 7);
    CHECK(!c->classification.all);
    CHECK_INT(c->classification.ndetectors, 2);
    CHECK_STR(c->classification.detectors[1], "phone");
    CHECK_STR(c->records.path, "r.jsonl");
    CHECK_INT(c->records.rotate_size, 1048576);
    CHECK_INT(c->records.retention_days, 7);
    CHECK_INT(c->records.fsync, BG_FSYNC_NEVER);
    const bg_vendor_t *v = &c->vendors[0];
    CHECK_STR(v->entity_country, "CA");
    CHECK(v->public_body);
    CHECK_INT(v->role, BG_ROLE_CONTROLLER);
    CHECK_STR(v->hosts[0], "api.full.example"); /* lowercased */
    CHECK_STR(v->hosts[1], "*.cdn.full.example");
    CHECK_INT(v->upstream.port, 8443);
    CHECK(v->upstream.tls);
    CHECK(!v->upstream.verify);
    CHECK(v->upstream.ca && v->upstream.client_certificate && v->upstream.client_key);
    CHECK_STR(v->upstream.sni, "sni.full.example");
    CHECK_INT(v->upstream.naddresses, 2);
    CHECK_STR(v->upstream.addresses[1].text, "2001:db8::7");
    CHECK_INT(ntohs(((struct sockaddr_in6 *)&v->upstream.addresses[1].addr)->sin6_port), 8443);
    CHECK_INT(v->upstream.protocol, BG_PROTO_HTTP1);
    CHECK_INT(v->nregions, 3);
    CHECK(!v->regions[0].is_region);
    CHECK_STR(v->regions[1].name, "APAC");
    CHECK_STR(v->regions[2].name, "adequate");
    CHECK(v->has_scc);
    CHECK_INT(v->scc.module, 4);
    CHECK(v->has_dpf && !v->dpf.certified);
    CHECK_INT(v->dpf.expires, 0);
    CHECK(v->bcr);
    CHECK_INT(v->on_violation, BG_VIOLATION_ENCRYPT);
    CHECK(v->reveal_responses);
    CHECK(!v->ai); /* explicit beats the category default */
    CHECK_INT(v->max_body, 524288);
    bg_config_release(c);
}

static void test_admin_off_and_port_default(void)
{
    bg_config_t *c = EXPECT_OK(BASE "admin: off\n" VENDOR_A "    upstream: {tls: false}\n");
    if (!c)
        return;
    CHECK(!c->admin.enabled);
    CHECK(!c->vendors[0].upstream.tls);
    CHECK_INT(c->vendors[0].upstream.port, 80);
    bg_config_release(c);
}

/* ------------------------------------------------------------------ errors */

static void test_err_yaml(void)
{
    EXPECT_ERR("", 1, "t.yaml:1:1: empty configuration: expected a mapping with jurisdiction, listen and vendors");
    EXPECT_ERR("# only a comment\n", 1,
               "t.yaml:1:1: empty configuration: expected a mapping with jurisdiction, listen and vendors");
    EXPECT_ERR(BASE "vendors: [\n", 1,
               "t.yaml:6:1: YAML syntax error: did not find expected node content (while parsing a flow node at 6:1)");
    EXPECT_ERR("a: b\n c: d\n", 1,
               "t.yaml:2:3: YAML syntax error: mapping values are not allowed in this context");
    EXPECT_ERR("- 1\n- 2\n", 1, "t.yaml:1:1: top level: expected a mapping, got a list");
    EXPECT_ERR(BASE "---\nx: 1\n", 1, "t.yaml:5:1: only one YAML document is allowed (found a second '---')");
    EXPECT_ERR(BASE "mode: enforce\nmode: report-only\n", 1,
               "t.yaml:6:1: duplicate key 'mode' in the top level (first at line 5)");
}

/* Bytes that are not UTF-8 are reported where they are, not at 1:1 (libyaml's reader gives an
 * offset, not a mark). */
static void test_err_encoding_position(void)
{
    EXPECT_ERR(BASE "user: \"ok\"\npid_file: \"x\xff\xfe\"\n", 1,
               "t.yaml:6:13: YAML syntax error: invalid leading UTF-8 octet (byte 0xff)");
    /* Columns count characters: a two-byte letter before is one column; a sequence cut short is
     * reported at its first byte (here a lone lead byte before the closing quote). */
    EXPECT_ERR(BASE "user: \"\xc3\xa9\xc3\"\n", 1,
               "t.yaml:5:9: YAML syntax error: invalid UTF-8 sequence starting with byte 0xc3");
    EXPECT_ERR(BASE "user: \"\xe2\x82\"\n", 1,
               "t.yaml:5:8: YAML syntax error: invalid UTF-8 sequence starting with byte 0xe2");
    EXPECT_ERR(BASE "user: x\xe2", 1, "t.yaml:5:8: YAML syntax error: incomplete UTF-8 octet sequence");
    /* Control characters too, on a later line after CRLF line ends. */
    EXPECT_ERR("jurisdiction: EEA\r\nuser: \"a\x01\"\r\n", 1,
               "t.yaml:2:9: YAML syntax error: control characters are not allowed (byte 0x01)");
}

/* A tag asks a YAML reader to treat a value in some special way; bordergate reads every value as
 * written, so a tag other than !!str (which says just that) would be silently ignored: refused. */
static void test_err_yaml_tags(void)
{
    /* The classic trap: an environment-variable tag from another tool, read as the literal name. */
    EXPECT_ERR(BASE "admin: {token: !env ADMIN_TOKEN}\n", 1,
               "t.yaml:5:16: YAML tag '!env' is not supported: bordergate reads every value as written and "
               "would ignore it (only !!str may be used, on a value)");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: !!null [EEA]}\n", 1,
               "t.yaml:6:44: YAML tag '!!null' is not supported on a list or mapping: bordergate reads every "
               "value as written and would ignore it (only !!str may be used, on a value)");
    EXPECT_ERR(BASE VENDOR_A "    scc: {module: !!int 2, signed: 2024-01-01, expires: 2030-01-01}\n", 1,
               "t.yaml:9:19: YAML tag '!!int' is not supported: bordergate reads every value as written and "
               "would ignore it (only !!str may be used, on a value)");
    EXPECT_ERR(BASE VENDOR_A "    entity: !<tag:example.com,2026:entity> {country: DE}\n", 1,
               "t.yaml:9:13: YAML tag '!<tag:example.com,2026:entity>' is not supported on a list or mapping: "
               "bordergate reads every value as written and would ignore it (only !!str may be used, on a value)");
    /* Every tag is reported, not only the first. */
    EXPECT_ERR(BASE "user: !a x\npid_file: !!binary eA==\n", 2,
               "t.yaml:6:11: YAML tag '!!binary' is not supported: bordergate reads every value as written and "
               "would ignore it (only !!str may be used, on a value)");
    /* !!str on a collection is a contradiction, not a string. */
    EXPECT_ERR(BASE VENDOR_A "    categories: !!str [usage]\n", 1,
               "t.yaml:9:17: YAML tag '!!str' is not supported on a list or mapping: bordergate reads every "
               "value as written and would ignore it (only !!str may be used, on a value)");
    /* !!str says what bordergate does anyway: a string, so "null" is the text, not an empty value. */
    bg_config_t *c = EXPECT_OK(BASE "user: !!str null\npid_file: !!str \"x.pid\"\n"
                                    "vendors:\n  - {name: a, hosts: [a.example], regions: [!!str NO], entity: {country: !!str NO}}\n");
    if (c) {
        CHECK_STR(c->user, "null");
        CHECK_STR(c->pid_file, "x.pid");
        CHECK_STR(c->vendors[0].entity_country, "NO");
    }
    bg_config_release(c);
}

static void test_err_bounds(void)
{
    /* Deep nesting is refused at 64 levels, with no recursion in the parser. */
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_puts(&b, "x: ");
    for (int i = 0; i < 100000; i++)
        bg_buf_puts(&b, "[");
    bg_config_t *c = NULL;
    bg_diag_t d;
    bg_diag_init(&d);
    CHECK_INT(bg_config_load_buffer("t.yaml", b.data, b.len, NOW, &c, &d), -1);
    CHECK_INT(d.nerrors, 1);
    if (d.nerrors)
        CHECK_STR(d.errors[0], "t.yaml:1:67: nesting deeper than 64 levels");
    bg_diag_dispose(&d);
    bg_buf_dispose(&b);

    /* Billion laughs: every node an alias brings in counts against 10,000. */
    EXPECT_ERR("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
               1, "t.yaml:4:36: aliases expand to more than 10000 nodes (alias bomb?)");
    EXPECT_ERR("a: *nope\n", 1, "t.yaml:1:4: alias '*nope' refers to no earlier complete anchor");
    /* A self-referencing anchor is not complete when its alias appears: no cycles. */
    EXPECT_ERR("a: &x [*x]\n", 1, "t.yaml:1:8: alias '*x' refers to no earlier complete anchor");
    /* Aliases within budget are fine and resolve to the anchored value. */
    bg_config_t *ok = EXPECT_OK("jurisdiction: EEA\n"
                                "regions: @/regions.yaml\n"
                                "geoip: {database: @/geo.mmdb}\n"
                                "listen: [{address: &addr 127.0.0.1:8080}]\n"
                                "admin: {address: 127.0.0.1:9902}\n"
                                "vendors:\n"
                                "  - {name: a, hosts: [a.example], regions: &r [EEA, JP]}\n"
                                "  - {name: b, hosts: [b.example], regions: *r}\n");
    if (ok) {
        CHECK_INT(ok->vendors[1].nregions, 2);
        CHECK_STR(ok->vendors[1].regions[1].country, "JP");
    }
    bg_config_release(ok);

    /* Binary garbage and NUL bytes: rejected with a position, never a crash. */
    static const char garbage[] = "\x00\xff\xfe\x01jurisdiction\x00: [\x80\x81";
    bg_diag_init(&d);
    CHECK_INT(bg_config_load_buffer("g.yaml", garbage, sizeof garbage - 1, NOW, &c, &d), -1);
    CHECK_INT(d.nerrors, 1);
    if (d.nerrors)
        CHECK(strncmp(d.errors[0], "g.yaml:", 7) == 0);
    bg_diag_dispose(&d);

    /* A huge scalar is quoted in a message truncated to 80 bytes. */
    bg_buf_init(&b);
    bg_buf_puts(&b, "jurisdiction: ");
    for (int i = 0; i < 1 << 20; i++)
        bg_buf_append(&b, "A", 1);
    bg_buf_puts(&b, "\n");
    bg_diag_init(&d);
    CHECK_INT(bg_config_load_buffer("h.yaml", b.data, b.len, NOW, &c, &d), -1);
    bool found = false;
    for (size_t i = 0; i < d.nerrors; i++)
        if (strncmp(d.errors[i], "h.yaml:1:15: jurisdiction: unknown region 'AAAA", 47) == 0) {
            found = true;
            CHECK(strlen(d.errors[i]) < 200);
        }
    CHECK(found);
    bg_diag_dispose(&d);
    bg_buf_dispose(&b);
}

static void test_err_keys_and_types(void)
{
    EXPECT_ERR(BASE VENDOR_A "vendorz: []\n", 1,
               "t.yaml:9:1: unknown key 'vendorz' in the top level (did you mean 'vendors'?)");
    EXPECT_ERR(BASE VENDOR_A "    hots: [x.example]\n", 1,
               "t.yaml:9:5: unknown key 'hots' in vendor (did you mean 'hosts'?)");
    EXPECT_ERR(BASE VENDOR_A "zzzzzz: 1\n", 1, "t.yaml:9:1: unknown key 'zzzzzz' in the top level");
    EXPECT_ERR(BASE "limits: {max_body_scn: 1MiB}\n", 1,
               "t.yaml:5:10: unknown key 'max_body_scn' in limits (did you mean 'max_body_scan'?)");
    EXPECT_ERR(BASE "limits: [1]\n", 1, "t.yaml:5:9: limits: expected a mapping, got a list");
    EXPECT_ERR(BASE "vendors: {a: 1}\n", 1, "t.yaml:5:10: vendors: expected a list, got a mapping");
    EXPECT_ERR(BASE VENDOR_A "    bcr: maybe\n", 1, "t.yaml:9:10: bcr: expected a bool (true or false), got 'maybe'");
    EXPECT_ERR(BASE "workers: 0\n", 1, "t.yaml:5:10: workers: expected a number from 1 to 1024, got '0'");
    /* A leading zero is octal to YAML 1.1 readers (0443 is 291 to PyYAML): ambiguous, refused. */
    EXPECT_ERR(BASE VENDOR_A "    upstream: {port: 0443}\n", 1,
               "t.yaml:9:22: upstream.port: '0443' has a leading zero, which YAML 1.1 tools read as octal; "
               "write the number without it");
    EXPECT_ERR(BASE "records: {retention_days: 0400}\n", 1,
               "t.yaml:5:27: records.retention_days: '0400' has a leading zero, which YAML 1.1 tools read as "
               "octal; write the number without it");
    /* A merge key would smuggle one vendor's settings into another: not YAML bordergate reads. */
    EXPECT_ERR(BASE "vendors:\n  - &a {name: a, hosts: [a.example], regions: [EEA]}\n"
                    "  - {<<: *a, name: b, hosts: [b.example]}\n",
               2, "t.yaml:7:6: YAML merge keys ('<<') are not supported in vendor: write the keys out (an alias "
                  "may stand for a whole value)");
    EXPECT_ERR(BASE "vendors:\n  - &a {name: a, hosts: [a.example], regions: [EEA]}\n"
                    "  - {<<: *a, name: b, hosts: [b.example]}\n",
               2, "t.yaml:7:5: vendor: missing required key 'regions'");
    EXPECT_ERR(BASE "workers: many\n", 1,
               "t.yaml:5:10: workers: expected 'auto' or a number from 1 to 1024, got 'many'");
    EXPECT_ERR(BASE "limits: {max_body: 1.5MB}\n", 1,
               "t.yaml:5:20: limits.max_body: expected a size such as 1MiB, 512KiB, 10MB or 1048576, got '1.5MB'");
    EXPECT_ERR(BASE "limits: {idle_timeout: 10}\n", 1,
               "t.yaml:5:24: limits.idle_timeout: expected a duration such as 250ms, 10s, 5m or 1h (more than 0, "
               "at most 30d), got '10'");
    EXPECT_ERR(BASE "mode: enforcing\n", 1,
               "t.yaml:5:7: mode: expected one of enforce, report-only, got 'enforcing' (did you mean 'enforce'?)");
    EXPECT_ERR(BASE "user:\n", 1, "t.yaml:5:6: user: expected a value, got an empty value");
    EXPECT_ERR(BASE VENDOR_A "    categories: [identifier, emails]\n", 1,
               "t.yaml:9:30: vendor 'a': unknown category 'emails'");
    EXPECT_ERR(BASE VENDOR_A "    categories: [identifer]\n", 1,
               "t.yaml:9:18: vendor 'a': unknown category 'identifer' (did you mean 'identifier'?)");
    EXPECT_ERR("jurisdiction: EEA\nregions: @/regions.yaml\ngeoip: {database: @/geo.mmdb}\n", 1,
               "t.yaml:1:1: top level: missing required key 'listen'");
}

static void test_err_countries_and_regions(void)
{
    EXPECT_ERR(BASE VENDOR_A "    entity: {country: EL}\n", 1,
               "t.yaml:9:23: entity.country: 'EL' is not an ISO 3166-1 alpha-2 country code (did you mean GR (ISO "
               "code for Greece)?)");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [UK]}\n", 1,
               "t.yaml:6:45: vendor region: 'UK' is not an ISO 3166-1 alpha-2 country code (did you mean GB (ISO "
               "code for the United Kingdom)?)");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [ZZ]}\n", 1,
               "t.yaml:6:45: vendor region: 'ZZ' is not an ISO 3166-1 alpha-2 country code");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [EAA]}\n", 1,
               "t.yaml:6:45: vendor 'a': unknown region 'EAA' (did you mean 'EEA'?)");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [jp]}\n", 1,
               "t.yaml:6:45: vendor 'a': unknown region 'jp' (did you mean JP?)");
}

static void test_err_jurisdiction(void)
{
    char want[512];
    snprintf(want, sizeof want,
             "t.yaml:1:15: jurisdiction: 'DE' is a country, not a region; name a region of %s/regions.yaml (such "
             "as EEA)",
             tmp);
    EXPECT_ERR("jurisdiction: DE\nregions: @/regions.yaml\ngeoip: {database: @/geo.mmdb}\n"
               "listen: [{address: 127.0.0.1:8080}]\n",
               1, want);
    EXPECT_ERR("jurisdiction: EAA\nregions: @/regions.yaml\ngeoip: {database: @/geo.mmdb}\n"
               "listen: [{address: 127.0.0.1:8080}]\n",
               1, "t.yaml:1:15: jurisdiction: unknown region 'EAA' (did you mean 'EEA'?)");
}

static void test_err_vendors(void)
{
    EXPECT_ERR(BASE VENDOR_A "  - name: a\n    hosts: [b.example]\n    regions: [EEA]\n", 1,
               "t.yaml:9:11: duplicate vendor name 'a' (first at line 6)");
    EXPECT_ERR(BASE "vendors:\n  - name: a\n    hosts: [a.example, A.Example]\n    regions: [EEA]\n", 1,
               "t.yaml:7:24: vendor 'a': duplicate host 'a.example' (first at line 7)");
    EXPECT_ERR(BASE VENDOR_A "  - name: b\n    hosts: [x.example, a.example]\n    regions: [EEA]\n", 1,
               "t.yaml:10:24: host 'a.example' is on two vendors: 'a' (line 7) and 'b'");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example:443], regions: [EEA]}\n", 1,
               "t.yaml:6:23: vendor 'a': host 'a.example:443' must not include a port (set upstream.port)");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [\"*.com\"], regions: [EEA]}\n", 1,
               "t.yaml:6:23: vendor 'a': '*.com' is not a valid host name (letters, digits, '-' and dots; a wildcard "
               "only as '*.' in front of two or more labels)");
    EXPECT_ERR(BASE "vendors:\n  - {name: \"a b\", hosts: [a.example], regions: [EEA]}\n", 1,
               "t.yaml:6:12: vendor name 'a b' may only contain letters, digits, '.', '_' and '-' (at most 64)");
    EXPECT_ERR(BASE VENDOR_A "    scc: {module: 5, signed: 2024-01-01, expires: 2027-01-01}\n", 1,
               "t.yaml:9:19: vendor 'a': scc module must be 1, 2, 3 or 4 (Decision 2021/914), got '5'");
    EXPECT_ERR(BASE VENDOR_A "    scc: {module: 0, signed: 2024-01-01, expires: 2027-01-01}\n", 1,
               "t.yaml:9:19: vendor 'a': scc module must be 1, 2, 3 or 4 (Decision 2021/914), got '0'");
    /* A broken basis is one problem: no second "no transfer basis" message for it. */
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [US], scc: {module: 9}}\n", 3,
               "t.yaml:6:64: vendor 'a': scc module must be 1, 2, 3 or 4 (Decision 2021/914), got '9'");
    EXPECT_ERR(BASE VENDOR_A "    scc: {module: 2, signed: 2024-03-01, expires: 2023-03-01}\n", 1,
               "t.yaml:9:51: vendor 'a': scc expires 2023-03-01 is not after signed 2024-03-01");
    EXPECT_ERR(BASE VENDOR_A "    scc: {module: 2, signed: 2024-02-30, expires: 2027-03-01}\n", 1,
               "t.yaml:9:30: scc.signed: expected a date YYYY-MM-DD (a real calendar day), got '2024-02-30'");
    EXPECT_ERR(BASE VENDOR_A "    scc: {module: 2, expires: 2027-03-01}\n", 1,
               "t.yaml:9:10: scc: missing required key 'signed'");
    EXPECT_ERR(BASE VENDOR_A "    on_violation: encrypt\n", 1,
               "t.yaml:9:19: vendor 'a': on_violation: encrypt needs an 'encryption' section (keys and active_key)");
    EXPECT_ERR(BASE VENDOR_A "    upstream: {client_certificate: @/gw.crt}\n", 1,
               "t.yaml:9:36: vendor 'a': upstream client_certificate and client_key go together");
    EXPECT_ERR(BASE VENDOR_A "    upstream: {addresses: [\"203.0.113.1:443\"]}\n", 1,
               "t.yaml:9:28: upstream address: '203.0.113.1:443' is not an IP address (no port here: set "
               "upstream.port)");
}

static void test_err_basis(void)
{
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [EEA, IN]}\n", 1,
               "t.yaml:6:50: vendor 'a' is approved for IN but has no transfer basis for it: a third country; add "
               "scc or bcr");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [US]}\n", 1,
               "t.yaml:6:45: vendor 'a' is approved for US but has no transfer basis for it: its adequacy decision "
               "covers only DPF-certified organisations; add dpf.certified: true, scc or bcr");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [US], dpf: {certified: false}}\n", 1,
               "t.yaml:6:45: vendor 'a' is approved for US but has no transfer basis for it: its adequacy decision "
               "covers only DPF-certified organisations; add dpf.certified: true, scc or bcr");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [APAC]}\n", 1,
               "t.yaml:6:45: vendor 'a' is approved for region 'APAC', which includes IN, but has no transfer basis "
               "for IN: a third country; add scc or bcr");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [CA], entity: {public_body: true}}\n", 1,
               "t.yaml:6:45: vendor 'a' is approved for CA but has no transfer basis for it: its adequacy decision "
               "covers only commercial organisations and the vendor is a public body; add scc or bcr");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [adequate]}\n", 1,
               "t.yaml:6:45: vendor 'a' is approved for region 'adequate', which includes US, but has no transfer "
               "basis for US: its adequacy decision covers only DPF-certified organisations; add dpf.certified: "
               "true, scc or bcr");
    /* With a basis, or adequacy in full, or a commercial body in Canada: fine. */
    bg_config_t *c = EXPECT_OK(BASE "vendors:\n"
                                    "  - {name: a, hosts: [a.example], regions: [US], dpf: {certified: true, expires: 2027-10-01}}\n"
                                    "  - {name: b, hosts: [b.example], regions: [IN, APAC], bcr: true}\n"
                                    "  - {name: c, hosts: [c.example], regions: [CA, JP, CH, GB]}\n"
                                    "  - {name: d, hosts: [d.example], regions: [adequate, APAC],\n"
                                    "     scc: {module: 3, signed: 2024-01-01, expires: 2029-01-01}}\n");
    bg_config_release(c);
    /* basis: none turns the error into a warning, and contradicts any basis. */
    bg_diag_t d;
    c = NULL;
    CHECK_INT(load(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [US], basis: none}\n", &c, &d), 0);
    CHECK_INT(d.nwarnings, 1);
    if (d.nwarnings)
        CHECK(strstr(d.warnings[0], "t.yaml:6:45: warning: vendor 'a' is approved for US but has no") == d.warnings[0]);
    bg_diag_dispose(&d);
    bg_config_release(c);
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [US], bcr: true, basis: none}\n", 1,
               "t.yaml:6:68: vendor 'a': basis: none contradicts its scc, dpf or bcr");
}

/* A basis that contradicts itself or the vendor is refused at load: at run time it would be no
 * basis at all, and every transfer it was written for would be blocked with no warning. */
static void test_err_basis_contradictions(void)
{
    /* DPF certified without an expiry: the policy never counts it (certifications lapse yearly). */
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [US], dpf: {certified: true}}\n", 1,
               "t.yaml:6:55: vendor 'a': dpf certified: true needs 'expires' (the date the certification must "
               "be renewed by); without it the certification is no transfer basis");
    /* Uncertified needs no date. */
    bg_config_t *c = EXPECT_OK(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [EEA], dpf: {certified: false}}\n");
    bg_config_release(c);
    /* An SCC module the vendor's role cannot sign: the policy refuses it on every request. */
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [IN], role: processor,\n"
                    "     scc: {module: 1, signed: 2024-01-01, expires: 2030-01-01}}\n",
               1,
               "t.yaml:7:20: vendor 'a': scc module 1 (controller to controller) does not fit role processor "
               "(a processor signs module 2 or 3)");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [IN],\n"
                    "     scc: {module: 4, signed: 2024-01-01, expires: 2030-01-01}}\n",
               1,
               "t.yaml:7:20: vendor 'a': scc module 4 (processor to controller) does not fit role processor "
               "(a processor signs module 2 or 3)");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [IN], role: controller,\n"
                    "     scc: {module: 3, signed: 2024-01-01, expires: 2030-01-01}}\n",
               1,
               "t.yaml:7:20: vendor 'a': scc module 3 (processor to processor) does not fit role controller "
               "(a controller signs module 1 or 4)");
    /* A role that did not parse is reported once, not again as a mismatch. */
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [IN], role: importer,\n"
                    "     scc: {module: 1, signed: 2024-01-01, expires: 2030-01-01}}\n",
               1, "t.yaml:6:56: role: expected one of processor, controller, got 'importer'");
    c = EXPECT_OK(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [IN], role: controller,\n"
                       "     scc: {module: 4, signed: 2024-01-01, expires: 2030-01-01}}\n");
    if (c)
        CHECK_INT(c->vendors[0].scc.module, 4);
    bg_config_release(c);
    /* An SCC signed in the future loads (it may be deployed ahead) with a warning: no basis until then. */
    bg_diag_t d;
    c = NULL;
    CHECK_INT(load(BASE "vendors:\n  - {name: a, hosts: [a.example], regions: [IN],\n"
                        "     scc: {module: 2, signed: 2027-01-15, expires: 2030-01-01}}\n",
                   &c, &d),
              0);
    CHECK_INT(d.nwarnings, 1);
    CHECK(has(d.warnings, d.nwarnings,
              "t.yaml:7:31: warning: vendor 'a': scc signed 2027-01-15 is in the future; it is no transfer "
              "basis before then (in 47 days)"));
    if (d.nwarnings != 1)
        dump(&d);
    bg_diag_dispose(&d);
    bg_config_release(c);
}

/* Host patterns: a wildcard over a public suffix is refused like '*.com'; a host that another
 * vendor's wildcard also matches loads (the most specific pattern wins, as bg_config_route does)
 * but is named in a warning, so the overlap is never silent. */
static void test_host_patterns(void)
{
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [\"*.co.uk\"], regions: [EEA]}\n", 1,
               "t.yaml:6:23: vendor 'a': '*.co.uk' would match every host under the public suffix 'co.uk'; name "
               "the vendor's own domain (such as '*.vendor.co.uk')");
    EXPECT_ERR(BASE "vendors:\n  - {name: a, hosts: [\"*.COM.au\", \"*.gov.uk\", \"*.ne.jp\"], regions: [EEA]}\n", 3,
               "t.yaml:6:35: vendor 'a': '*.gov.uk' would match every host under the public suffix 'gov.uk'; name "
               "the vendor's own domain (such as '*.vendor.gov.uk')");
    /* Under a vendor's own name in such a domain: fine. */
    bg_config_t *c = EXPECT_OK(BASE "vendors:\n  - {name: a, hosts: [\"*.acme.co.uk\", \"*.co.example\"], regions: [EEA]}\n");
    bg_config_release(c);

    bg_diag_t d;
    c = NULL;
    CHECK_INT(load(BASE "vendors:\n"
                        "  - {name: wide, hosts: [\"*.example.com\"], regions: [EEA]}\n"
                        "  - {name: exact, hosts: [api.example.com, other.test], regions: [EEA]}\n"
                        "  - {name: deeper, hosts: [\"*.eu.example.com\"], regions: [EEA]}\n"
                        "  - {name: self, hosts: [\"*.self.test\", x.self.test], regions: [EEA]}\n",
                   &c, &d),
              0);
    CHECK_INT(d.nerrors, 0);
    CHECK(has(d.warnings, d.nwarnings,
              "t.yaml:7:27: warning: host 'api.example.com' of vendor 'exact' is also matched by '*.example.com' of "
              "vendor 'wide' (line 6); requests for it go to 'exact' (an exact host wins over a wildcard)"));
    CHECK(has(d.warnings, d.nwarnings,
              "t.yaml:8:28: warning: hosts under '*.eu.example.com' of vendor 'deeper' are also matched by "
              "'*.example.com' of vendor 'wide' (line 6); they go to 'deeper' (the longest wildcard wins)"));
    /* One vendor's own overlap is redundant, not ambiguous: no warning. */
    CHECK_INT(d.nwarnings, 2);
    if (d.nwarnings != 2)
        dump(&d);
    if (c) {
        CHECK_STR(bg_config_route(c, "api.example.com", 15)->name, "exact");
        CHECK_STR(bg_config_route(c, "x.eu.example.com", 16)->name, "deeper");
    }
    bg_diag_dispose(&d);
    bg_config_release(c);
}

/* A message with the temp directory in it: every %s becomes tmp. */
static const char *with_tmp(const char *fmt)
{
    static char out[1024];
    char *s = subst(fmt);
    bg_buf_t b;
    bg_buf_init(&b);
    for (const char *p = s; *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            bg_buf_puts(&b, tmp);
            p++;
        } else {
            bg_buf_append(&b, p, 1);
        }
    }
    snprintf(out, sizeof out, "%s", b.data ? b.data : "");
    bg_buf_dispose(&b);
    free(s);
    return out;
}

#define HEAD3 "jurisdiction: EEA\nregions: @/regions.yaml\ngeoip: {database: @/geo.mmdb}\n"

static void test_err_files(void)
{
    EXPECT_ERR(HEAD3 "listen:\n  - address: 127.0.0.1:8443\n    tls: {certificate: @/missing.crt, key: @/gw.key}\n", 1,
               with_tmp("t.yaml:6:24: tls certificate: cannot read '%s/missing.crt': No such file or directory"));
    EXPECT_ERR(HEAD3 "listen:\n  - address: 127.0.0.1:8443\n    tls:\n      certificate: @/gw.crt\n"
                     "      key: @/gw.key\n      client_ca: @/ca.crt\n",
               1, with_tmp("t.yaml:9:18: tls client_ca: cannot read '%s/ca.crt': No such file or directory"));
    EXPECT_ERR(HEAD3 "listen:\n  - address: 127.0.0.1:8443\n    tls: {certificate: @/gw.crt}\n", 1,
               "t.yaml:6:10: listener tls: missing required key 'key'");
    EXPECT_ERR(BASE "encryption:\n  keys: @/nokeys\n  active_key: k1\n", 1,
               with_tmp("t.yaml:6:9: encryption.keys: cannot read '%s/nokeys': No such file or directory"));
    EXPECT_ERR(BASE "encryption:\n  keys: @/gw.crt\n  active_key: k1\n", 1,
               with_tmp("t.yaml:6:9: encryption.keys: '%s/gw.crt' is not a directory"));
    EXPECT_ERR(BASE "encryption:\n  keys: @/keys\n  active_key: k2\n", 1,
               with_tmp("t.yaml:7:15: encryption.active_key: cannot read '%s/keys/k2.key': No such file or directory"));
    EXPECT_ERR(BASE "encryption:\n  keys: @/keys\n  active_key: ../k1\n", 1,
               "t.yaml:7:15: encryption.active_key: '../k1' is not a key id (letters, digits, '_', '-', '.')");
    EXPECT_ERR(BASE VENDOR_A "    upstream: {ca: @/nope.crt}\n", 1,
               with_tmp("t.yaml:9:20: upstream.ca: cannot read '%s/nope.crt': No such file or directory"));
    EXPECT_ERR(BASE VENDOR_A "    upstream:\n      client_certificate: @/gw.crt\n      client_key: @/nope.key\n", 1,
               with_tmp("t.yaml:11:19: upstream.client_key: cannot read '%s/nope.key': No such file or directory"));
    /* A key the gateway could not use is refused at load, where the config names the keys
     * (it used to pass the loader and fail later with no line and column). */
    mk("shortkeys");
    put("shortkeys/k1.key", "c2hvcnQ=\n");
    chmod(with_tmp("@/shortkeys/k1.key"), 0600);
    EXPECT_ERR(BASE "encryption:\n  keys: @/shortkeys\n  active_key: k1\n", 1,
               with_tmp("t.yaml:6:9: encryption.keys: key file %s/shortkeys/k1.key: must hold base64 of exactly 64 "
                        "bytes"));
    mk("openkeys");
    put_key("openkeys/k1.key");
    chmod(with_tmp("@/openkeys/k1.key"), 0644);
    EXPECT_ERR(BASE "encryption:\n  keys: @/openkeys\n  active_key: k1\n", 1,
               with_tmp("t.yaml:6:9: encryption.keys: key file %s/openkeys/k1.key: mode 0644, must be 0600 or "
                        "stricter"));
    mk("dotkeys");
    put_key("dotkeys/k.1.key");
    EXPECT_ERR(BASE "encryption:\n  keys: @/dotkeys\n  active_key: k.1\n", 1,
               with_tmp("t.yaml:6:9: encryption.keys: key file %s/dotkeys/k.1.key: the key id must be 1-32 of "
                        "[A-Za-z0-9_-]"));
    /* Files that exist: loads. */
    bg_config_t *c = EXPECT_OK(BASE "encryption:\n  keys: @/keys\n  active_key: k1\n" VENDOR_A
                                    "    on_violation: encrypt\n");
    if (c) {
        CHECK_STR(c->encryption.active_key, "k1");
        CHECK_INT(c->vendors[0].on_violation, BG_VIOLATION_ENCRYPT);
    }
    bg_config_release(c);
}

static void test_err_listen(void)
{
    EXPECT_ERR("jurisdiction: EEA\nregions: @/regions.yaml\ngeoip: {database: @/geo.mmdb}\n"
               "listen:\n  - address: 127.0.0.1:8080\n  - address: 127.0.0.1:8080\n",
               1, "t.yaml:6:14: listen address 127.0.0.1:8080 is already used by the listener at line 5");
    EXPECT_ERR("jurisdiction: EEA\nregions: @/regions.yaml\ngeoip: {database: @/geo.mmdb}\n"
               "listen:\n  - address: 0.0.0.0:8080\n  - address: 127.0.0.1:8080\n",
               1, "t.yaml:6:14: listen address 127.0.0.1:8080 is already used by the listener at line 5");
    EXPECT_ERR("jurisdiction: EEA\nregions: @/regions.yaml\ngeoip: {database: @/geo.mmdb}\n"
               "listen:\n  - address: 127.0.0.1\n",
               1,
               "t.yaml:5:14: bad listen address '127.0.0.1': expected IP:PORT such as 127.0.0.1:8080 or [::1]:8080");
    /* A bad address does not hide the listener's other problems. */
    EXPECT_ERR(HEAD3 "listen:\n  - address: 1.2.3.4\n    tls: {certificate: @/none.crt, key: @/gw.key}\n", 2,
               with_tmp("t.yaml:6:24: tls certificate: cannot read '%s/none.crt': No such file or directory"));
    EXPECT_ERR("jurisdiction: EEA\nregions: @/regions.yaml\ngeoip: {database: @/geo.mmdb}\n"
               "listen:\n  - address: localhost:8080\n",
               1,
               "t.yaml:5:14: bad listen address 'localhost:8080': expected IP:PORT such as 127.0.0.1:8080 or "
               "[::1]:8080");
    EXPECT_ERR(BASE "admin: {address: 127.0.0.1:8080}\n", 1,
               "t.yaml:5:18: admin address 127.0.0.1:8080 is already used by the listener at line 4");
    EXPECT_ERR("jurisdiction: EEA\nregions: @/regions.yaml\ngeoip: {database: @/geo.mmdb}\nlisten: []\n", 1,
               "t.yaml:4:9: listen: at least one listener is needed");
}

/* Everything wrong at once: every problem is reported, not only the first. */
static void test_err_collects_all(void)
{
    bg_config_t *c = NULL;
    bg_diag_t d;
    CHECK_INT(load("jurisdiction: EEA\n"
                   "regions: @/regions.yaml\n"
                   "geoip: {database: @/nope.mmdb}\n"
                   "listen: [{address: 1.2.3.4}]\n"
                   "mode: strict\n"
                   "vendors:\n"
                   "  - {name: a, hosts: [a.example], regions: [EL]}\n"
                   "  - {name: a, hosts: [a.example], regions: [EEA], scc: {module: 9, signed: 2024-01-01, expires: "
                   "2025-01-01}}\n",
                   &c, &d),
              -1);
    CHECK_INT(d.nerrors, 7);
    char want[512];
    snprintf(want, sizeof want, "t.yaml:3:19: geoip.database: cannot read '%s/nope.mmdb': No such file or directory",
             tmp);
    CHECK(has(d.errors, d.nerrors, want));
    CHECK(has(d.errors, d.nerrors,
              "t.yaml:4:20: bad listen address '1.2.3.4': expected IP:PORT such as 127.0.0.1:8080 or [::1]:8080"));
    CHECK(has(d.errors, d.nerrors,
              "t.yaml:5:7: mode: expected one of enforce, report-only, got 'strict'"));
    CHECK(has(d.errors, d.nerrors,
              "t.yaml:7:45: vendor region: 'EL' is not an ISO 3166-1 alpha-2 country code (did you mean GR (ISO "
              "code for Greece)?)"));
    CHECK(has(d.errors, d.nerrors, "t.yaml:8:12: duplicate vendor name 'a' (first at line 7)"));
    CHECK(has(d.errors, d.nerrors, "t.yaml:8:23: host 'a.example' is on two vendors: 'a' (line 7) and 'a'"));
    CHECK(has(d.errors, d.nerrors,
              "t.yaml:8:65: vendor 'a': scc module must be 1, 2, 3 or 4 (Decision 2021/914), got '9'"));
    /* Reported in file order, whatever order the sections were checked in. */
    int prev_line = 0, prev_col = 0;
    for (size_t i = 0; i < d.nerrors; i++) {
        int line = 0, col = 0;
        CHECK_INT(sscanf(d.errors[i], "t.yaml:%d:%d:", &line, &col), 2);
        CHECK(line > prev_line || (line == prev_line && col >= prev_col));
        prev_line = line;
        prev_col = col;
    }
    if (d.nerrors != 7)
        dump(&d);
    bg_diag_dispose(&d);
}

static void test_err_regions_file(void)
{
    put("bad-regions.yaml", "regions:\n  EEA: [DE, EL]\n  DE: [FR]\nadequacy:\n  - {country: JP, scope: partial}\n");
    char want[512];
    bg_config_t *c = NULL;
    bg_diag_t d;
    CHECK_INT(load("jurisdiction: EEA\nregions: @/bad-regions.yaml\ngeoip: {database: @/geo.mmdb}\n"
                   "listen: [{address: 127.0.0.1:8080}]\n",
                   &c, &d),
              -1);
    CHECK_INT(d.nerrors, 3);
    snprintf(want, sizeof want,
             "%s/bad-regions.yaml:2:13: region country: 'EL' is not an ISO 3166-1 alpha-2 country code (did you "
             "mean GR (ISO code for Greece)?)",
             tmp);
    CHECK(has(d.errors, d.nerrors, want));
    snprintf(want, sizeof want, "%s/bad-regions.yaml:3:3: region name 'DE' is a country code; use another name", tmp);
    CHECK(has(d.errors, d.nerrors, want));
    snprintf(want, sizeof want,
             "%s/bad-regions.yaml:5:26: adequacy scope: expected one of full, commercial, dpf, got 'partial'", tmp);
    CHECK(has(d.errors, d.nerrors, want));
    if (d.nerrors != 3)
        dump(&d);
    bg_diag_dispose(&d);
    /* A region with no country: the jurisdiction would make every destination a third country,
     * a vendor's region would cover nothing. */
    put("empty-region.yaml", "regions:\n  EEA: []\n  APAC: {countries: [JP]}\n");
    snprintf(want, sizeof want, "%s/empty-region.yaml:2:8: region 'EEA' lists no country", tmp);
    EXPECT_ERR("jurisdiction: EEA\nregions: @/empty-region.yaml\ngeoip: {database: @/geo.mmdb}\n"
               "listen: [{address: 127.0.0.1:8080}]\n",
               1, want);
    snprintf(want, sizeof want, "t.yaml:2:10: regions: cannot read '%s/none.yaml': No such file or directory", tmp);
    EXPECT_ERR("jurisdiction: EEA\nregions: @/none.yaml\ngeoip: {database: @/geo.mmdb}\n"
               "listen: [{address: 127.0.0.1:8080}]\n",
               1, want);
}

/* Adequacy dates are enforced per request (policy.c); the loader refuses a sunset before the
 * decision and warns when a load already falls outside the decision's time, or near its end. */
static void test_adequacy_dates(void)
{
    put("adq-regions.yaml", "regions:\n  EEA: [DE, FR]\n"
                            "adequacy:\n"
                            "  - {country: GB, date: 2021-06-28, expires: 2021-01-01}\n");
    char want[512];
    snprintf(want, sizeof want, "%s/adq-regions.yaml:4:46: adequacy entry for GB: expires 2021-01-01 is not after "
             "date 2021-06-28", tmp);
    EXPECT_ERR("jurisdiction: EEA\nregions: @/adq-regions.yaml\ngeoip: {database: @/geo.mmdb}\n"
               "listen: [{address: 127.0.0.1:8080}]\n",
               1, want);
    put("adq-regions.yaml", "regions:\n  EEA: [DE, FR]\n"
                            "adequacy:\n"
                            "  - {country: GB, date: 2021-06-28, expires: 2025-06-27}\n"
                            "  - {country: JE, date: 2008-05-08, expires: 2026-12-10}\n"
                            "  - {country: BR, date: 2027-01-15}\n"
                            "  - {country: CH, date: 2000-07-26, expires: 2031-01-01}\n"
                            "  - {country: JP}\n");
    bg_config_t *c = NULL;
    bg_diag_t d;
    CHECK_INT(load("jurisdiction: EEA\nregions: @/adq-regions.yaml\ngeoip: {database: @/geo.mmdb}\n"
                   "listen: [{address: 127.0.0.1:8080}]\n",
                   &c, &d),
              0);
    CHECK_INT(d.nwarnings, 3);
    snprintf(want, sizeof want, "%s/adq-regions.yaml:4:46: warning: adequacy decision for GB expired on 2025-06-27; "
             "transfers there need scc or bcr", tmp);
    CHECK(has(d.warnings, d.nwarnings, want));
    snprintf(want, sizeof want, "%s/adq-regions.yaml:5:46: warning: adequacy decision for JE expires on 2026-12-10 "
             "(in 11 days)", tmp);
    CHECK(has(d.warnings, d.nwarnings, want));
    snprintf(want, sizeof want, "%s/adq-regions.yaml:6:25: warning: adequacy decision for BR applies from "
             "2027-01-15; until then transfers there need scc or bcr", tmp);
    CHECK(has(d.warnings, d.nwarnings, want));
    if (d.nwarnings != 3)
        dump(&d);
    if (c) {
        CHECK_INT(c->nadequacy, 5);
        int64_t e;
        CHECK(bg_parse_date("2025-06-27", &e) == 0);
        CHECK_INT(c->adequacy[0].expires, e);
    }
    bg_diag_dispose(&d);
    bg_config_release(c);
}

/* ------------------------------------------------------------------ warnings */

static void test_warnings(void)
{
    bg_config_t *c = NULL;
    bg_diag_t d;
    CHECK_INT(load(BASE "vendors:\n"
                        "  - name: a\n"
                        "    hosts: [a.example]\n"
                        "    regions: [US]\n"
                        "    scc: {module: 2, signed: 2024-01-01, expires: 2026-12-10}\n"
                        "    dpf: {certified: true, expires: 2026-11-01}\n"
                        "    upstream: {verify: false}\n"
                        "  - {name: b, hosts: [b.example], regions: [EEA], role: controller, scc: {module: 1, "
                        "signed: 2020-01-01, expires: 2027-01-01}}\n",
                   &c, &d),
              0);
    CHECK(c != NULL);
    CHECK_INT(d.nerrors, 0);
    CHECK_INT(d.nwarnings, 3);
    CHECK(has(d.warnings, d.nwarnings, "t.yaml:9:51: warning: vendor 'a': scc expires on 2026-12-10 (in 11 days)"));
    CHECK(has(d.warnings, d.nwarnings,
              "t.yaml:10:37: warning: vendor 'a': dpf certification expired on 2026-11-01; it is no transfer basis"));
    CHECK(has(d.warnings, d.nwarnings,
              "t.yaml:11:24: warning: vendor 'a': upstream verify: false; the vendor's certificate is not checked"));
    if (d.nwarnings != 3)
        dump(&d);
    bg_diag_dispose(&d);
    bg_config_release(c);
}

/* reveal_responses on a vendor that never gets tokens (on_violation: block) is a contradiction:
 * the data plane would still open any token found in its answers. Said, not refused. */
static void test_reveal_without_encrypt_warns(void)
{
    bg_config_t *c = NULL;
    bg_diag_t d;
    CHECK_INT(load(BASE "encryption: {keys: @/keys, active_key: k1}\n" VENDOR_A "    reveal_responses: true\n"
                   "  - {name: b, hosts: [b.example], regions: [EEA], on_violation: encrypt, reveal_responses: true}\n",
                   &c, &d),
              0);
    CHECK_INT(d.nwarnings, 1);
    CHECK(has(d.warnings, d.nwarnings,
              "t.yaml:10:23: warning: vendor 'a': reveal_responses: true with on_violation: block: no tokens are "
              "sealed for this vendor, yet any token in its answers would be opened"));
    if (d.nwarnings != 1)
        dump(&d);
    bg_diag_dispose(&d);
    bg_config_release(c);
}

/* ------------------------------------------------------------------ lookups */

static void test_route(void)
{
    bg_config_t *c = EXPECT_OK(BASE "vendors:\n"
                                    "  - {name: exact, hosts: [api.example.com, Mixed.Example.COM], regions: [EEA]}\n"
                                    "  - {name: wild, hosts: [\"*.example.com\"], regions: [EEA]}\n"
                                    "  - {name: deeper, hosts: [\"*.eu.example.com\"], regions: [EEA]}\n");
    if (!c)
        return;
#define ROUTE(h) bg_config_route(c, h, strlen(h))
#define ROUTE_NAME(h) (ROUTE(h) ? ROUTE(h)->name : "(none)")
    CHECK_STR(ROUTE_NAME("api.example.com"), "exact");
    CHECK_STR(ROUTE_NAME("API.EXAMPLE.com"), "exact");
    CHECK_STR(ROUTE_NAME("mixed.example.com"), "exact");
    CHECK_STR(ROUTE_NAME("api.example.com."), "exact");
    CHECK_STR(ROUTE_NAME("x.example.com"), "wild");
    CHECK_STR(ROUTE_NAME("a.b.c.example.com"), "wild"); /* one or more labels */
    CHECK_STR(ROUTE_NAME("X.Example.Com"), "wild");
    CHECK_STR(ROUTE_NAME("x.eu.example.com"), "deeper"); /* longest suffix wins */
    CHECK_STR(ROUTE_NAME("eu.example.com"), "wild");
    CHECK(ROUTE("example.com") == NULL); /* not the bare suffix */
    CHECK(ROUTE(".example.com") == NULL);
    CHECK(ROUTE("x..example.com") == NULL);
    CHECK(ROUTE("badexample.com") == NULL);
    CHECK(ROUTE("api.example.com.evil") == NULL);
    CHECK(ROUTE("other.test") == NULL);
    CHECK(ROUTE("") == NULL);
    CHECK(bg_config_route(c, "api.example.comXYZ", 15) == ROUTE("api.example.com")); /* length, not NUL */
    CHECK(bg_config_route(NULL, "a", 1) == NULL);
#undef ROUTE
#undef ROUTE_NAME
    bg_config_release(c);
}

static void test_dest_kind_and_cover(void)
{
    bg_config_t *c = EXPECT_OK(BASE "vendors:\n"
                                    "  - {name: a, hosts: [a.example], regions: [EEA, CH]}\n"
                                    "  - {name: b, hosts: [b.example], regions: [adequate], bcr: true}\n"
                                    "  - {name: c, hosts: [c.example], regions: [APAC], bcr: true}\n");
    if (!c)
        return;
    bg_adequacy_scope_t s = (bg_adequacy_scope_t)-1;
    CHECK_INT(bg_config_dest_kind(c, "GR", &s), BG_DEST_DOMESTIC);
    CHECK_INT(bg_config_dest_kind(c, "FR", &s), BG_DEST_DOMESTIC);
    CHECK_INT(bg_config_dest_kind(c, "GF", &s), BG_DEST_DOMESTIC);
    CHECK_INT(bg_config_dest_kind(c, "CH", &s), BG_DEST_ADEQUATE);
    CHECK_INT(s, BG_SCOPE_FULL);
    CHECK_INT(bg_config_dest_kind(c, "CA", &s), BG_DEST_ADEQUATE);
    CHECK_INT(s, BG_SCOPE_COMMERCIAL);
    CHECK_INT(bg_config_dest_kind(c, "US", &s), BG_DEST_ADEQUATE);
    CHECK_INT(s, BG_SCOPE_DPF);
    CHECK_INT(bg_config_dest_kind(c, "IN", &s), BG_DEST_THIRD);
    CHECK_INT(bg_config_dest_kind(c, "", &s), BG_DEST_UNKNOWN);
    CHECK_INT(bg_config_dest_kind(c, NULL, &s), BG_DEST_UNKNOWN);
    CHECK_INT(bg_config_dest_kind(c, "ZZ", &s), BG_DEST_UNKNOWN);
    CHECK_INT(bg_config_dest_kind(c, "EL", &s), BG_DEST_UNKNOWN);
    CHECK_INT(bg_config_dest_kind(c, "US", NULL), BG_DEST_ADEQUATE);
    CHECK_STR(bg_config_dest_region_label(c, BG_DEST_DOMESTIC), "EEA");
    CHECK_STR(bg_config_dest_region_label(c, BG_DEST_ADEQUATE), "adequate");
    CHECK_STR(bg_config_dest_region_label(c, BG_DEST_THIRD), "third_country");
    CHECK_STR(bg_config_dest_region_label(c, BG_DEST_UNKNOWN), "unknown");
    const bg_vendor_t *a = &c->vendors[0], *b = &c->vendors[1], *cc = &c->vendors[2];
    CHECK(bg_config_vendor_covers(c, a, "DE"));
    CHECK(bg_config_vendor_covers(c, a, "GR"));
    CHECK(bg_config_vendor_covers(c, a, "CH"));
    CHECK(!bg_config_vendor_covers(c, a, "US"));
    CHECK(!bg_config_vendor_covers(c, a, ""));
    CHECK(!bg_config_vendor_covers(c, a, NULL));
    CHECK(bg_config_vendor_covers(c, b, "US"));
    CHECK(bg_config_vendor_covers(c, b, "JP"));
    CHECK(!bg_config_vendor_covers(c, b, "DE"));
    CHECK(!bg_config_vendor_covers(c, b, "IN"));
    CHECK(bg_config_vendor_covers(c, cc, "IN"));
    CHECK(bg_config_vendor_covers(c, cc, "SG"));
    CHECK(!bg_config_vendor_covers(c, cc, "CN"));
    bg_config_release(c);
}

/* ------------------------------------------------------------------ snapshot */

static void test_snapshot(void)
{
    bg_config_t *c1 = EXPECT_OK(BASE VENDOR_A), *c2 = EXPECT_OK(BASE VENDOR_A);
    bg_config_t *c3 = EXPECT_OK(BASE VENDOR_A "    bcr: false\n");
    if (!c1 || !c2 || !c3)
        return;
    CHECK_INT(atomic_load(&c1->refcount), 1);
    CHECK(bg_config_retain(c1) == c1);
    CHECK_INT(atomic_load(&c1->refcount), 2);
    bg_config_release(c1);
    CHECK_INT(atomic_load(&c1->refcount), 1);
    CHECK_STR(c1->version, c2->version); /* same inputs, same version */
    CHECK(strcmp(c1->version, c3->version) != 0);
    for (int i = 0; i < 64; i++)
        CHECK(strchr("0123456789abcdef", c1->version[i]) != NULL);
    /* The regions file is part of the version. */
    put("regions.yaml", "# changed\n");
    FILE *f = fopen("/dev/null", "r");
    if (f)
        fclose(f);
    char path[512];
    snprintf(path, sizeof path, "%s/regions.yaml", tmp);
    f = fopen(path, "a");
    fputs(test_regions, f);
    fclose(f);
    bg_config_t *c4 = EXPECT_OK(BASE VENDOR_A);
    put("regions.yaml", test_regions);
    if (c4)
        CHECK(strcmp(c1->version, c4->version) != 0);
    bg_config_release(c4);
    bg_config_release(c1);
    bg_config_release(c2);
    bg_config_release(c3);
    bg_config_release(NULL);
}

int main(void)
{
    setup();
    RUN(test_parse_size);
    RUN(test_limits_per_listener_and_caller);
    RUN(test_parse_duration);
    RUN(test_parse_date);
    RUN(test_parse_cidr);
    RUN(test_parse_sockaddr);
    RUN(test_country_valid);
    RUN(test_diag);
    RUN(test_minimal_defaults);
    RUN(test_example_config);
    RUN(test_default_config);
    RUN(test_full_fields);
    RUN(test_upstream_http2_needs_tls);
    RUN(test_empty_detector_list_refused);
    RUN(test_err_detector_names);
    RUN(test_admin_off_and_port_default);
    RUN(test_err_yaml);
    RUN(test_err_yaml_tags);
    RUN(test_err_encoding_position);
    RUN(test_err_bounds);
    RUN(test_err_keys_and_types);
    RUN(test_err_countries_and_regions);
    RUN(test_err_jurisdiction);
    RUN(test_err_vendors);
    RUN(test_err_basis);
    RUN(test_err_basis_contradictions);
    RUN(test_err_files);
    RUN(test_err_listen);
    RUN(test_err_collects_all);
    RUN(test_err_regions_file);
    RUN(test_adequacy_dates);
    RUN(test_warnings);
    RUN(test_reveal_without_encrypt_warns);
    RUN(test_route);
    RUN(test_host_patterns);
    RUN(test_dest_kind_and_cover);
    RUN(test_snapshot);
    teardown();
    return bg_test_done();
}
