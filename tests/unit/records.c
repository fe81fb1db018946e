/*
 * records.c (unit) — ids, the canonical encoding (every field parsed back), the verifier against
 * each kind of tampering, and the writer: concurrency (4 × 10,000), fsync modes, rotation,
 * restart with a torn tail, reopen, retention, and a full disk (RLIMIT_FSIZE in a child).
 * Files live in a fresh directory under /tmp. Single-threaded except the writer tests.
 */
#include "records.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

static char *path_in(const char *name)
{
    static char buf[8][256];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    bg_buf_t b;
    bg_buf_init(&b);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        bg_buf_append(&b, tmp, n);
    fclose(f);
    if (!b.data)
        bg_buf_append(&b, "", 0);
    if (len)
        *len = b.len;
    return b.data;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data, 1, len, f);
    fclose(f);
}

static size_t count_lines(const char *path)
{
    size_t n = 0, len;
    char *d = slurp(path, &len);
    if (!d)
        return 0;
    for (size_t i = 0; i < len; i++)
        n += d[i] == '\n';
    free(d);
    return n;
}

/* Run verify over files, capture its output. */
static int verify(char **files, size_t n, char *out, size_t outlen)
{
    FILE *f = fmemopen(out, outlen, "w");
    int rc = bg_records_verify(files, n, f);
    fclose(f);
    return rc;
}

static const char *const det_names[] = {"email", "phone", "ipv4"};
static const uint32_t det_counts[] = {2, 0, 1};

static bg_record_t sample(int64_t ts, const char *id)
{
    bg_record_t r = {0};
    r.ts_ms = ts;
    r.id = id;
    r.caller = "127.0.0.1:53412";
    r.vendor = "acme-analytics";
    r.host = "api.acme-analytics.example";
    r.method = "POST";
    r.path = "/v1/events/{id}";
    r.dest_ip = "203.0.113.10";
    r.dest_country = "US";
    r.dest_region = "third_country";
    r.cross_border = true;
    r.categories = 1u << BG_CAT_IDENTIFIER | 1u << BG_CAT_DEVICE;
    r.detector_names = det_names;
    r.detector_counts = det_counts;
    r.ndetectors = 3;
    r.mechanism = BG_MECH_SCC;
    r.scc_module = 2;
    r.scc_reference = "DPA-2024-017";
    r.decision = BG_DECISION_ALLOW;
    r.reason = "scc_valid";
    r.enforced = true;
    r.status = 200;
    r.bytes_in = 1234;
    r.bytes_out = 56789;
    r.duration_ms = 42;
    r.protocol = "h2";
    r.config_version = "c0ffee";
    return r;
}

static void test_id(void)
{
    char a[27], b[27], c[27];
    bg_record_id_make(0, 0, 0, a);
    CHECK_STR(a, "00000000000000000000000000");
    bg_record_id_make(1, 0, 0, a);
    CHECK_STR(a, "00000000010000000000000000");
    bg_record_id_make(1764412800123, 3, 77, a);
    CHECK_INT(strlen(a), 26);
    for (int i = 0; i < 26; i++)
        CHECK(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", a[i]) != NULL);
    bg_record_id_make(1764412800124, 0, 0, b);
    CHECK(strcmp(a, b) < 0); /* later time sorts later, whatever the worker and seq */
    bg_record_id_make(1764412800123, 3, 78, c);
    CHECK(strcmp(a, c) < 0);
    CHECK(strcmp(a, c) != 0);
    bg_record_id_make(1764412800123, 4, 0, c);
    CHECK(strcmp(a, c) < 0);
    bg_record_id_make(-1, 0xffff, UINT64_MAX, c); /* all bits set */
    CHECK_STR(c, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    /* Against base-32 digits of the 128-bit number worked out another way, each bit of the
     * word boundary (the 13th digit) included. */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t ts = (int64_t)(x >> 16);
        unsigned wk = (unsigned)(x & 0xffff);
        uint64_t seq = i < 64 ? 1ull << i : x * 0x9e3779b97f4a7c15ull;
        unsigned __int128 v = (unsigned __int128)(((uint64_t)ts & 0xffffffffffffull) << 16 | wk) << 64 | seq;
        char want[27];
        for (int k = 0; k < 26; k++)
            want[25 - k] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[(unsigned)(v >> (5 * k)) & 31];
        want[26] = 0;
        bg_record_id_make(ts, wk, seq, c);
        if (strcmp(c, want) != 0) {
            CHECK_STR(c, want);
            break;
        }
    }
}

static void test_encode_golden(void)
{
    bg_record_t r = sample(1764412800123, "01KB8Y3QXV0003000000000002");
    bg_buf_t b;
    bg_buf_init(&b);
    char hash[65];
    bg_record_encode(&r, BG_RECORD_GENESIS, &b, hash);
    const char *want_body =
        "{\"ts\":\"2025-11-29T10:40:00.123Z\",\"id\":\"01KB8Y3QXV0003000000000002\",\"caller\":\"127.0.0.1:53412\","
        "\"vendor\":\"acme-analytics\",\"host\":\"api.acme-analytics.example\",\"method\":\"POST\","
        "\"path\":\"/v1/events/{id}\",\"dest_ip\":\"203.0.113.10\",\"dest_country\":\"US\","
        "\"dest_region\":\"third_country\",\"cross_border\":true,\"categories\":[\"identifier\",\"device\"],"
        "\"detections\":{\"email\":2,\"ipv4\":1},\"mechanism\":\"scc\",\"scc_module\":2,"
        "\"scc_reference\":\"DPA-2024-017\",\"decision\":\"allow\",\"reason\":\"scc_valid\",\"enforced\":true,"
        "\"status\":200,\"bytes_in\":1234,\"bytes_out\":56789,\"duration_ms\":42,\"protocol\":\"h2\","
        "\"config_version\":\"c0ffee\",\"prev\":\"" BG_RECORD_GENESIS "\"";
    /* The canonical form is the line without the hash member. */
    bg_buf_t canon;
    bg_buf_init(&canon);
    bg_buf_puts(&canon, want_body);
    bg_buf_puts(&canon, "}");
    char want_hash[65];
    bg_sha256_hex(canon.data, canon.len, want_hash);
    CHECK_STR(hash, want_hash);
    bg_buf_t line;
    bg_buf_init(&line);
    bg_buf_printf(&line, "%s,\"hash\":\"%s\"}", want_body, want_hash);
    CHECK_STR(b.data, line.data);
    char prev[65], h2[65];
    const char *why = NULL;
    CHECK_INT(bg_record_check_line(b.data, b.len, prev, h2, &why), 0);
    CHECK_STR(prev, BG_RECORD_GENESIS);
    CHECK_STR(h2, hash);
    bg_buf_dispose(&b);
    bg_buf_dispose(&canon);
    bg_buf_dispose(&line);
}

static void field(const char *line, const char *key, const char *want)
{
    const char *v;
    size_t vn;
    char got[512];
    if (!bg_records_json_member(line, strlen(line), key, &v, &vn)) {
        bg_test_fail(__FILE__, __LINE__, "member %s missing", key);
        return;
    }
    if (*v == '"')
        bg_records_json_string(v, vn, got, sizeof got);
    else
        snprintf(got, sizeof got, "%.*s", (int)vn, v);
    if (strcmp(got, want) != 0)
        bg_test_fail(__FILE__, __LINE__, "%s: got \"%s\", want \"%s\"", key, got, want);
}

/* The vendor side's protocol is written after the client's when something was sent, and the
 * line still verifies. */
static void test_encode_upstream_protocol(void)
{
    bg_record_t r = sample(1764412800123, "ID2");
    r.upstream_protocol = "h2";
    bg_buf_t b;
    bg_buf_init(&b);
    char hash[65], prev[65], p2[65], h2[65];
    memset(prev, 'a', 64);
    prev[64] = 0;
    bg_record_encode(&r, prev, &b, hash);
    CHECK(bg_records_json_valid(b.data, b.len));
    field(b.data, "upstream_protocol", "h2");
    CHECK(strstr(b.data, "\"protocol\":\"h2\",\"upstream_protocol\":\"h2\",\"config_version\"") != NULL);
    const char *why = NULL;
    CHECK_INT(bg_record_check_line(b.data, b.len, p2, h2, &why), 0);
    CHECK(strcmp(h2, hash) == 0);
    bg_buf_dispose(&b);
}

static void test_encode_fields(void)
{
    bg_record_t r = sample(1764412800123, "ID1");
    r.path = "/a\"b\\c\n\x01/é";
    r.caller = "CN=svc-a,O=Example \"Corp\"";
    bg_buf_t b;
    bg_buf_init(&b);
    char hash[65];
    char prev[65];
    memset(prev, 'a', 64);
    prev[64] = 0;
    bg_record_encode(&r, prev, &b, hash);
    CHECK(bg_records_json_valid(b.data, b.len));
    field(b.data, "ts", "2025-11-29T10:40:00.123Z");
    field(b.data, "id", "ID1");
    field(b.data, "caller", "CN=svc-a,O=Example \"Corp\"");
    field(b.data, "vendor", "acme-analytics");
    field(b.data, "host", "api.acme-analytics.example");
    field(b.data, "method", "POST");
    field(b.data, "path", "/a\"b\\c\n\x01/é");
    field(b.data, "dest_ip", "203.0.113.10");
    field(b.data, "dest_country", "US");
    field(b.data, "dest_region", "third_country");
    field(b.data, "cross_border", "true");
    field(b.data, "categories", "[\"identifier\",\"device\"]");
    field(b.data, "detections", "{\"email\":2,\"ipv4\":1}");
    field(b.data, "mechanism", "scc");
    field(b.data, "scc_module", "2");
    field(b.data, "scc_reference", "DPA-2024-017");
    field(b.data, "decision", "allow");
    field(b.data, "reason", "scc_valid");
    field(b.data, "enforced", "true");
    field(b.data, "status", "200");
    field(b.data, "bytes_in", "1234");
    field(b.data, "bytes_out", "56789");
    field(b.data, "duration_ms", "42");
    field(b.data, "protocol", "h2");
    CHECK(!bg_records_json_member(b.data, b.len, "upstream_protocol", &(const char *){NULL}, &(size_t){0}));
    field(b.data, "config_version", "c0ffee");
    field(b.data, "prev", prev);
    field(b.data, "hash", hash);
    size_t pos = 0;
    char cat[32];
    CHECK(bg_records_json_array_next("[\"identifier\",\"device\"]", 23, &pos, cat, sizeof cat));
    CHECK_STR(cat, "identifier");
    CHECK(bg_records_json_array_next("[\"identifier\",\"device\"]", 23, &pos, cat, sizeof cat));
    CHECK_STR(cat, "device");
    CHECK(!bg_records_json_array_next("[\"identifier\",\"device\"]", 23, &pos, cat, sizeof cat));

    /* Not SCC: no scc members; NULL strings are ""; no categories, no detections; block. */
    bg_buf_reset(&b);
    bg_record_t z = {0};
    z.ts_ms = 0;
    z.mechanism = BG_MECH_NONE;
    z.scc_module = 3;
    z.scc_reference = "X";
    z.decision = BG_DECISION_BLOCK;
    z.status = 451;
    bg_record_encode(&z, BG_RECORD_GENESIS, &b, hash);
    CHECK(bg_records_json_valid(b.data, b.len));
    const char *v;
    size_t vn;
    CHECK(!bg_records_json_member(b.data, b.len, "scc_module", &v, &vn));
    CHECK(!bg_records_json_member(b.data, b.len, "scc_reference", &v, &vn));
    field(b.data, "ts", "1970-01-01T00:00:00.000Z");
    field(b.data, "id", "");
    field(b.data, "dest_ip", "");
    field(b.data, "categories", "[]");
    field(b.data, "detections", "{}");
    field(b.data, "mechanism", "none");
    field(b.data, "decision", "block");
    field(b.data, "cross_border", "false");
    field(b.data, "enforced", "false");
    field(b.data, "status", "451");
    bg_buf_dispose(&b);
}

/* The encoder formats times and escapes strings without printf: the same bytes as
 * bg_format_rfc3339_ms and bg_buf_json_escape, across leap years, centuries and every byte. */
static void test_encode_matches_reference(void)
{
    int64_t samples[] = {0, 1, 999, 1000, 86399999, 86400000, 951782400000 /* 2000-02-29 */,
                         951868800000 /* 2000-03-01 */, 4107542399999 /* 2100-02-28T23:59:59.999 */,
                         1764412800123, 253402300799999 /* 9999-12-31T23:59:59.999 */};
    bg_buf_t b;
    bg_buf_init(&b);
    char hash[65], want[32];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < BG_ARRAY_SIZE(samples) + 20000; i++) {
        int64_t ms;
        if (i < BG_ARRAY_SIZE(samples)) {
            ms = samples[i];
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ms = (int64_t)(x % 253402300800000ull);
        }
        bg_record_t r = sample(ms, "ID");
        bg_buf_reset(&b);
        bg_record_encode(&r, BG_RECORD_GENESIS, &b, hash);
        bg_format_rfc3339_ms(ms, want);
        if (b.len < 8 + strlen(want) || memcmp(b.data + 7, want, strlen(want)) != 0 || b.data[7 + strlen(want)] != '"') {
            bg_test_fail(__FILE__, __LINE__, "ts %lld: got %.30s, want %s", (long long)ms, b.data + 7, want);
            break;
        }
    }
    /* Every byte value, alone and inside plain runs. */
    char s[3 * 256];
    for (int c = 0; c < 256; c++)
        s[3 * c] = 'a', s[3 * c + 1] = (char)c, s[3 * c + 2] = 'z';
    for (size_t len = 0; len <= sizeof s; len += (len < 10 ? 1 : 37)) {
        bg_buf_t got, ref;
        bg_buf_init(&got);
        bg_buf_init(&ref);
        bg_buf_append_json(&got, s, len);
        bg_buf_json_escape(&ref, s, len);
        CHECK_INT((int)got.len, (int)ref.len);
        CHECK(got.len == ref.len && (got.len == 0 || memcmp(got.data, ref.data, got.len) == 0));
        bg_buf_dispose(&got);
        bg_buf_dispose(&ref);
    }
    /* The same through the record: every byte value in a path, a reason and a detector name. */
    char str[3 * 255 + 1];
    for (int c = 1; c < 256; c++)
        str[3 * (c - 1)] = 'a', str[3 * (c - 1) + 1] = (char)c, str[3 * (c - 1) + 2] = 'z';
    str[sizeof str - 1] = 0;
    bg_record_t r = sample(1764412800123, "ID");
    r.path = str;
    r.reason = str;
    const char *dn[1] = {str};
    uint32_t dc[1] = {4294967295u};
    r.detector_names = dn;
    r.detector_counts = dc;
    r.ndetectors = 1;
    r.scc_module = -7;
    r.status = -1;
    bg_buf_reset(&b);
    bg_record_encode(&r, BG_RECORD_GENESIS, &b, hash);
    bg_buf_t esc;
    bg_buf_init(&esc);
    bg_buf_puts(&esc, ",\"path\":\"");
    bg_buf_json_escape(&esc, str, strlen(str));
    bg_buf_puts(&esc, "\",\"dest_ip\"");
    CHECK(strstr(b.data, esc.data) != NULL);
    bg_buf_reset(&esc);
    bg_buf_puts(&esc, "\"detections\":{\"");
    bg_buf_json_escape(&esc, str, strlen(str));
    bg_buf_puts(&esc, "\":4294967295},");
    CHECK(strstr(b.data, esc.data) != NULL);
    bg_buf_reset(&esc);
    bg_buf_puts(&esc, ",\"reason\":\"");
    bg_buf_json_escape(&esc, str, strlen(str));
    bg_buf_puts(&esc, "\",\"enforced\"");
    CHECK(strstr(b.data, esc.data) != NULL);
    CHECK(strstr(b.data, ",\"scc_module\":-7,") != NULL);
    CHECK(strstr(b.data, ",\"status\":-1,") != NULL);
    bg_buf_dispose(&esc);
    bg_buf_t u;
    bg_buf_init(&u);
    bg_buf_append_u64(&u, 0);
    bg_buf_append(&u, " ", 1);
    bg_buf_append_u64(&u, UINT64_MAX);
    CHECK_STR(u.data, "0 18446744073709551615");
    bg_buf_dispose(&u);
    bg_buf_dispose(&b);
}

/* Plain runs are scanned eight bytes at a time: one byte of each kind at every position of a
 * 1..40-byte string (so at every place in a word and in the byte tail) escapes as the reference. */
static void test_encode_escapes_every_position(void)
{
    static const unsigned char kinds[] = {0x01, 0x1f, '"', '\\', 0x7f, 0x20, 0x21, 0x5b, 0x7e, 0x80, 0xa2, 0xff};
    char str[41], hash[65];
    bg_buf_t b, esc;
    bg_buf_init(&b);
    bg_buf_init(&esc);
    size_t bad = 0;
    for (size_t k = 0; k < sizeof kinds; k++)
        for (size_t len = 1; len <= 40; len++)
            for (size_t at = 0; at < len; at++) {
                memset(str, 'q', len);
                str[at] = (char)kinds[k];
                str[len] = 0;
                bg_record_t r = sample(1764412800123, "ID");
                r.path = str;
                bg_buf_reset(&b);
                bg_record_encode(&r, BG_RECORD_GENESIS, &b, hash);
                bg_buf_reset(&esc);
                bg_buf_puts(&esc, ",\"path\":\"");
                bg_buf_json_escape(&esc, str, len);
                bg_buf_puts(&esc, "\",\"dest_ip\"");
                if (!strstr(b.data, esc.data) && bad++ < 3)
                    bg_test_fail(__FILE__, __LINE__, "byte 0x%02x at %zu of %zu: want %s in %s", kinds[k], at, len,
                                 esc.data, b.data);
            }
    CHECK_INT(bad, 0);
    bg_buf_dispose(&b);
    bg_buf_dispose(&esc);
}

/* The queued copy (on the stack when it fits, else through a buffer) is the body, byte for byte. */
static void test_encode_body_dup(void)
{
    static char longpath[6000];
    memset(longpath, 'p', sizeof longpath - 1);
    for (int big = 0; big < 2; big++) {
        bg_record_t r = sample(1764412800123, "01KB8Y3QXV0003000000000002");
        if (big)
            r.path = longpath; /* worst case over the 4 KiB stack space */
        bg_buf_t b;
        bg_buf_init(&b);
        bg_records_encode_body(&r, &b);
        size_t n = 0;
        char *d = bg_records_encode_body_dup(&r, &n);
        CHECK_INT(n, b.len);
        CHECK(d && memcmp(d, b.data, b.len) == 0 && d[n] == 0);
        free(d);
        bg_buf_dispose(&b);
    }
}

static void test_encode_cost(void)
{
    bg_record_t r = sample(1764412800123, "01KB8Y3QXV0003000000000002");
    bg_buf_t b;
    bg_buf_init(&b);
    char prev[65], hash[65];
    memcpy(prev, BG_RECORD_GENESIS, 65);
    struct timespec a, z;
    int n = 100000;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (int i = 0; i < n; i++) {
        bg_buf_reset(&b);
        bg_record_encode(&r, prev, &b, hash);
        memcpy(prev, hash, 65);
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &z);
    double ns = ((z.tv_sec - a.tv_sec) * 1e9 + (z.tv_nsec - a.tv_nsec)) / n;
    fprintf(stderr, "  bench: bg_record_encode + SHA-256 chain: %.0f ns CPU/record (%zu-byte line)\n", ns, b.len);
    CHECK(b.len > 500);
    bg_buf_dispose(&b);
}

static void test_json_reader(void)
{
    CHECK(bg_records_json_valid("{}", 2));
    const char *ok = " {\"a\":[1,-2.5e3,true,false,null,\"\\u00e9\"]} ";
    CHECK(bg_records_json_valid(ok, strlen(ok)));
    CHECK(!bg_records_json_valid("{\"a\":1,}", 8));
    CHECK(!bg_records_json_valid("{\"a\":01}", 8));
    CHECK(!bg_records_json_valid("{\"a\":\"\x01\"}", 9));
    CHECK(!bg_records_json_valid("{\"a\":\"\xff\"}", 9));
    CHECK(!bg_records_json_valid("{\"a\":1} x", 9));
    CHECK(!bg_records_json_valid("", 0));
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    CHECK(!bg_records_json_valid(deep, 200)); /* nesting capped at 64 */
    char out[16];
    CHECK_INT(bg_records_json_string("\"a\\u00e9\\ud83d\\ude00\"", 22, out, sizeof out), 7);
    CHECK_STR(out, "a\xc3\xa9\xf0\x9f\x98\x80");
    CHECK_INT(bg_records_json_string("\"abcdefghijklmnopqrstuvwxyz\"", 28, out, sizeof out), 15);
    CHECK_STR(out, "abcdefghijklmno");
    CHECK_INT(bg_records_json_string("12", 2, out, sizeof out), -1);
}

/* A chain of n lines into lines[] (each without newline); returns the last hash. */
static void make_chain(int n, char **lines, const char *prev0, char head[65])
{
    char prev[65];
    memcpy(prev, prev0, 65);
    for (int i = 0; i < n; i++) {
        char id[27];
        bg_record_id_make(1764412800000 + i, 0, (uint64_t)i, id);
        bg_record_t r = sample(1764412800000 + i, id);
        r.status = 200 + i;
        bg_buf_t b;
        bg_buf_init(&b);
        char h[65];
        bg_record_encode(&r, prev, &b, h);
        lines[i] = b.data;
        memcpy(prev, h, 65);
    }
    memcpy(head, prev, 65);
}

static void write_lines(const char *path, char **lines, const int *order, int n, const char *tail)
{
    bg_buf_t b;
    bg_buf_init(&b);
    for (int i = 0; i < n; i++) {
        bg_buf_puts(&b, lines[order[i]]);
        bg_buf_puts(&b, "\n");
    }
    if (tail)
        bg_buf_puts(&b, tail);
    spit(path, b.data ? b.data : "", b.len);
    bg_buf_dispose(&b);
}

static void test_verify_tampering(void)
{
    char *lines[8], head[65], out[4096];
    make_chain(8, lines, BG_RECORD_GENESIS, head);
    char *f = path_in("v.jsonl"), *g = path_in("w.jsonl");
    char *files[2] = {f, g};
    const int all[] = {0, 1, 2, 3, 4, 5, 6, 7};

    write_lines(f, lines, all, 8, NULL);
    CHECK_INT(verify(files, 1, out, sizeof out), 0);
    CHECK(strstr(out, "OK: 8 records in 1 file") != NULL);
    CHECK(strstr(out, head) != NULL);

    /* A modified field (status of the third record). */
    char *saved = lines[2];
    lines[2] = strdup(saved);
    char *st = strstr(lines[2], "\"status\":202");
    CHECK(st != NULL);
    if (st)
        st[11] = '9';
    write_lines(f, lines, all, 8, NULL);
    CHECK_INT(verify(files, 1, out, sizeof out), 1);
    CHECK(strstr(out, ":3: hash mismatch") != NULL);
    CHECK(strstr(out, "2 records verified") != NULL);
    free(lines[2]);
    lines[2] = saved;

    /* A deleted line in the middle. */
    const int del[] = {0, 1, 2, 4, 5, 6, 7};
    write_lines(f, lines, del, 7, NULL);
    CHECK_INT(verify(files, 1, out, sizeof out), 1);
    CHECK(strstr(out, "v.jsonl:4: broken chain") != NULL);

    /* Swapped lines. */
    const int swp[] = {0, 1, 3, 2, 4, 5, 6, 7};
    write_lines(f, lines, swp, 8, NULL);
    CHECK_INT(verify(files, 1, out, sizeof out), 1);
    CHECK(strstr(out, "v.jsonl:3: broken chain") != NULL);

    /* A bad line (not JSON). */
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_printf(&b, "%s\n%s\nthis is not json\n%s\n", lines[0], lines[1], lines[2]);
    spit(f, b.data, b.len);
    CHECK_INT(verify(files, 1, out, sizeof out), 1);
    CHECK(strstr(out, "v.jsonl:3: not a JSON object") != NULL);
    /* Valid JSON but not a record. */
    bg_buf_reset(&b);
    bg_buf_printf(&b, "%s\n{\"a\":1}\n", lines[0]);
    spit(f, b.data, b.len);
    CHECK_INT(verify(files, 1, out, sizeof out), 1);
    CHECK(strstr(out, "v.jsonl:2: not a record") != NULL);

    /* A torn final write is reported distinctly. */
    bg_buf_reset(&b);
    bg_buf_printf(&b, "%s\n%s\n%.100s", lines[0], lines[1], lines[2]);
    spit(f, b.data, b.len);
    CHECK_INT(verify(files, 1, out, sizeof out), 1);
    CHECK(strstr(out, "v.jsonl:3: truncated: the final line is incomplete") != NULL);
    CHECK(strstr(out, "2 records verified") != NULL);

    /* Across files: good split, then a broken link (a record missing at the boundary). */
    write_lines(f, lines, all, 4, NULL);
    write_lines(g, lines, all + 4, 4, NULL);
    CHECK_INT(verify(files, 2, out, sizeof out), 0);
    CHECK(strstr(out, "OK: 8 records in 2 files") != NULL);
    write_lines(g, lines, all + 5, 3, NULL);
    CHECK_INT(verify(files, 2, out, sizeof out), 1);
    CHECK(strstr(out, "w.jsonl:1: broken link across files") != NULL);
    /* Files given in the wrong order. */
    write_lines(g, lines, all + 4, 4, NULL);
    char *rev[2] = {g, f};
    CHECK_INT(verify(rev, 2, out, sizeof out), 1);
    CHECK(strstr(out, "v.jsonl:1: broken link across files") != NULL);
    /* A missing file is an error, not a pass. */
    char *nofile[1] = {path_in("nope.jsonl")};
    CHECK_INT(verify(nofile, 1, out, sizeof out), 1);
    CHECK(strstr(out, "cannot open") != NULL);

    bg_buf_dispose(&b);
    for (int i = 0; i < 8; i++)
        free(lines[i]);
}

/* ---- the writer ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t ok, failed;
    int last_error;
} waiter_t;

static waiter_t waiter = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void reset_waiter(void)
{
    pthread_mutex_lock(&waiter.mu);
    waiter.ok = waiter.failed = 0;
    waiter.last_error = 0;
    pthread_mutex_unlock(&waiter.mu);
}

/* A writer for c with the completion counters reset, or NULL (a failed check, the error printed). */
static bg_records_t *open_writer(const bg_config_t *c)
{
    bg_records_t *w = NULL;
    char err[256] = "";
    reset_waiter();
    CHECK_INT(bg_records_open(c, &w, err, sizeof err), 0);
    if (!w)
        fprintf(stderr, "  open: %s\n", err);
    return w;
}

static void done_cb(void *arg, int status)
{
    (void)arg;
    pthread_mutex_lock(&waiter.mu);
    if (status == 0)
        waiter.ok++;
    else
        waiter.failed++, waiter.last_error = status;
    pthread_cond_broadcast(&waiter.cv);
    pthread_mutex_unlock(&waiter.mu);
}

static bool wait_done(uint64_t n, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000 + 1;
    pthread_mutex_lock(&waiter.mu);
    while (waiter.ok + waiter.failed < n)
        if (pthread_cond_timedwait(&waiter.cv, &waiter.mu, &ts) == ETIMEDOUT)
            break;
    bool ok = waiter.ok + waiter.failed >= n;
    pthread_mutex_unlock(&waiter.mu);
    return ok;
}

static bg_config_t cfg_for(const char *path, uint64_t rotate, int retention, bg_fsync_t mode)
{
    bg_config_t c;
    memset(&c, 0, sizeof c);
    c.records.path = (char *)path;
    c.records.rotate_size = rotate;
    c.records.retention_days = retention;
    c.records.fsync = mode;
    return c;
}

static int submit_n(bg_records_t *w, unsigned worker, uint64_t from, int n)
{
    for (int i = 0; i < n; i++) {
        char id[27];
        int64_t now = bg_now_ms();
        bg_record_id_make(now, worker, from + (uint64_t)i, id);
        bg_record_t r = sample(now, id);
        int rc = bg_records_submit(w, &r, done_cb, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

typedef struct {
    bg_records_t *w;
    unsigned worker;
    int rc;
} thr_t;

static void *thr_main(void *arg)
{
    thr_t *t = arg;
    t->rc = submit_n(t->w, t->worker, 0, 10000);
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Reservations share the queue's slots with queued records: a full set refuses (never waits),
 * readiness has hysteresis, every reserved submit finds room, and a blocking submit over a tiny
 * queue still gets every record through. */
static void test_reservations(void)
{
    char *p = path_in("resv/transfers.jsonl");
    bg_config_t c = cfg_for(p, 0, 0, BG_FSYNC_BATCH);
    c.records.queue_size = 16;
    bg_records_t *w = open_writer(&c);
    if (!w)
        return;
    const char *why = "";
    CHECK_INT(bg_records_capacity(w), 16);
    CHECK(bg_records_ready(w, &why, NULL));
    for (int i = 0; i < 16; i++)
        CHECK_INT(bg_records_reserve(w), 0);
    CHECK_INT(bg_records_reserve(w), -EAGAIN);
    CHECK_INT(bg_records_refused(w), 1);
    CHECK_INT(bg_records_slots_used(w), 16);
    CHECK(!bg_records_ready(w, &why, NULL));
    CHECK_STR(why, "backlogged");
    for (int i = 0; i < 4; i++)
        bg_records_unreserve(w);
    CHECK(!bg_records_ready(w, &why, NULL)); /* 12 of 16: still above half */
    for (int i = 0; i < 4; i++)
        bg_records_unreserve(w);
    CHECK(bg_records_ready(w, &why, NULL)); /* 8 of 16 */
    CHECK_STR(why, "ok");
    for (int i = 0; i < 8; i++) {
        char id[27];
        int64_t now = bg_now_ms();
        bg_record_id_make(now, 0, (uint64_t)i, id);
        bg_record_t r = sample(now, id);
        CHECK_INT(bg_records_submit_reserved(w, &r, done_cb, NULL), 0);
    }
    CHECK(wait_done(8, 10000));
    CHECK_INT(submit_n(w, 1, 0, 200), 0); /* blocking submits through a 16-slot queue */
    CHECK(wait_done(208, 10000));
    CHECK_INT(waiter.ok, 208);
    CHECK_INT(bg_records_slots_used(w), 0);
    bg_records_close(w);
    CHECK_INT(count_lines(p), 208);
}

static void test_writer_concurrency(void)
{
    char *p = path_in("conc/transfers.jsonl"); /* the directory is created */
    bg_config_t c = cfg_for(p, 0, 0, BG_FSYNC_BATCH);
    bg_records_t *w = open_writer(&c);
    if (!w)
        return;
    thr_t t[4];
    pthread_t th[4];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < 4; i++) {
        t[i] = (thr_t){w, i, -1};
        pthread_create(&th[i], NULL, thr_main, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(t[i].rc, 0);
    }
    CHECK(wait_done(40000, 10000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "  bench: writer 4 threads x 10000 records, fsync batch: %.3f s wall, %.0f records/s\n", secs,
            40000 / secs);
    CHECK_INT(waiter.ok, 40000);
    CHECK_INT(waiter.failed, 0);
    CHECK_INT(bg_records_written(w), 40000);
    CHECK_INT(bg_records_queue_depth(w), 0);
    CHECK(bg_records_healthy(w));
    bg_records_close(w);
    CHECK_INT(count_lines(p), 40000);
    char out[1024];
    char *files[1] = {p};
    CHECK_INT(verify(files, 1, out, sizeof out), 0);
    CHECK(strstr(out, "OK: 40000 records") != NULL);
    /* Every id present once. */
    size_t len;
    char *d = slurp(p, &len);
    char **ids = malloc(40000 * sizeof *ids);
    size_t nids = 0;
    /* Line by line (each made a string): strstr over the whole 27 MB would be quadratic under ASan. */
    for (char *s = d; s && *s && nids < 40000;) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = 0;
        char *id = strstr(s, "\"id\":\"");
        if (id)
            ids[nids++] = strndup(id + 6, 26);
        s = nl ? nl + 1 : NULL;
    }
    CHECK_INT(nids, 40000);
    qsort(ids, nids, sizeof *ids, cmp_str);
    size_t dups = 0;
    for (size_t i = 1; i < nids; i++)
        dups += strcmp(ids[i - 1], ids[i]) == 0;
    CHECK_INT(dups, 0);
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    free(d);
}

static void test_fsync_modes(void)
{
    char out[1024];
    /* always: one fsync (at least) before each done when records come one at a time. */
    char *p = path_in("always.jsonl");
    bg_config_t c = cfg_for(p, 0, 0, BG_FSYNC_ALWAYS);
    bg_records_t *w = NULL;
    char err[256];
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (!w)
        return;
    reset_waiter();
    for (int i = 0; i < 20; i++) {
        CHECK_INT(submit_n(w, 0, (uint64_t)i, 1), 0);
        CHECK(wait_done((uint64_t)i + 1, 2000));
        CHECK_INT(bg_records_syncs(w), i + 1);
        CHECK_INT(count_lines(p), i + 1); /* on disk when done ran */
    }
    bg_records_close(w);

    /* batch: many records, few fsyncs, and at least one within ~100 ms. */
    p = path_in("batch.jsonl");
    c = cfg_for(p, 0, 0, BG_FSYNC_BATCH);
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (!w)
        return;
    reset_waiter();
    CHECK_INT(submit_n(w, 0, 0, 5000), 0);
    CHECK(wait_done(5000, 5000));
    struct timespec ts = {0, 250 * 1000000};
    nanosleep(&ts, NULL);
    uint64_t s = bg_records_syncs(w);
    CHECK(s >= 1);
    CHECK(s < 50);
    bg_records_close(w);

    /* never: no fsync while running. */
    p = path_in("never.jsonl");
    c = cfg_for(p, 0, 0, BG_FSYNC_NEVER);
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (!w)
        return;
    reset_waiter();
    CHECK_INT(submit_n(w, 0, 0, 1000), 0);
    CHECK(wait_done(1000, 5000));
    nanosleep(&ts, NULL);
    CHECK_INT(bg_records_syncs(w), 0);
    CHECK_INT(bg_records_written(w), 1000);
    bg_records_close(w);
    char *files[1] = {p};
    CHECK_INT(verify(files, 1, out, sizeof out), 0);
}

/* Rotated siblings of base in dir, sorted (timestamps sort by time), then the current file. */
static size_t list_chain(const char *dir, const char *base, char **files, size_t max)
{
    DIR *d = opendir(dir);
    size_t n = 0, bl = strlen(base);
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max - 1)
        if (strncmp(e->d_name, base, bl) == 0 && e->d_name[bl] == '.') {
            char *s = malloc(512);
            snprintf(s, 512, "%s/%s", dir, e->d_name);
            files[n++] = s;
        }
    if (d)
        closedir(d);
    qsort(files, n, sizeof *files, cmp_str);
    char *s = malloc(512);
    snprintf(s, 512, "%s/%s", dir, base);
    files[n++] = s;
    return n;
}

static void test_rotation(void)
{
    char *dir = path_in("rot");
    char p[300];
    snprintf(p, sizeof p, "%s/t.jsonl", dir);
    bg_config_t c = cfg_for(p, 4096, 30, BG_FSYNC_BATCH);
    bg_records_t *w = NULL;
    char err[256];
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (!w)
        return;
    reset_waiter();
    for (int i = 0; i < 100; i++) /* one by one so that rotations land at many points */
        CHECK_INT(submit_n(w, 1, (uint64_t)i, 1), 0);
    CHECK(wait_done(100, 5000));
    bg_records_close(w);
    char *files[64];
    size_t n = list_chain(dir, "t.jsonl", files, 64);
    CHECK(n >= 10);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        CHECK_INT(stat(files[i], &st), 0);
        CHECK(st.st_size <= 4096);
        total += count_lines(files[i]);
    }
    CHECK_INT(total, 100);
    char out[2048];
    CHECK_INT(verify(files, n, out, sizeof out), 0);
    CHECK(strstr(out, "OK: 100 records") != NULL);
    /* The chain links files: each new file's first prev is the last hash of the one before. */
    CHECK_INT(verify(files + n - 2, 2, out, sizeof out), 0);
    if (n >= 3) {
        char *skip[2] = {files[0], files[2]};
        CHECK_INT(verify(skip, 2, out, sizeof out), 1);
        CHECK(strstr(out, ":1: broken link across files") != NULL);
    }
    /* Restart: the chain continues from the current file. */
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (w) {
        reset_waiter();
        CHECK_INT(submit_n(w, 1, 1000, 5), 0);
        CHECK(wait_done(5, 5000));
        bg_records_close(w);
    }
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    n = list_chain(dir, "t.jsonl", files, 64);
    CHECK_INT(verify(files, n, out, sizeof out), 0);
    CHECK(strstr(out, "OK: 105 records") != NULL);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
}

static void test_restart_torn_and_reopen(void)
{
    char *p = path_in("restart.jsonl");
    bg_config_t c = cfg_for(p, 0, 0, BG_FSYNC_ALWAYS);
    bg_records_t *w = NULL;
    char err[256], out[2048];
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (!w)
        return;
    reset_waiter();
    CHECK_INT(submit_n(w, 0, 0, 10), 0);
    CHECK(wait_done(10, 5000));
    bg_records_close(w);
    /* A crash mid-write leaves a torn line: the next open cuts it and continues the chain. */
    FILE *f = fopen(p, "ab");
    fputs("{\"ts\":\"2026-11-29T10:40:00.123Z\",\"id\":\"01", f);
    fclose(f);
    char *files[2] = {p, NULL};
    CHECK_INT(verify(files, 1, out, sizeof out), 1);
    CHECK(strstr(out, "truncated") != NULL);
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (!w)
        return;
    reset_waiter();
    CHECK_INT(submit_n(w, 0, 10, 10), 0);
    CHECK(wait_done(10, 5000));
    CHECK_INT(verify(files, 1, out, sizeof out), 0);
    CHECK(strstr(out, "OK: 20 records") != NULL);

    /* logrotate: rename, then reopen; the chain goes on in the new file. */
    char *moved = path_in("restart.jsonl.1");
    CHECK_INT(rename(p, moved), 0);
    bg_records_reopen(w);
    reset_waiter();
    CHECK_INT(submit_n(w, 0, 20, 7), 0);
    CHECK(wait_done(7, 5000));
    bg_records_close(w);
    CHECK_INT(count_lines(p), 7);
    CHECK_INT(count_lines(moved), 20);
    char *both[2] = {moved, p};
    CHECK_INT(verify(both, 2, out, sizeof out), 0);
    CHECK(strstr(out, "OK: 27 records in 2 files") != NULL);

    /* Restart after a rotation with an empty current file: continue from the newest sibling. */
    CHECK_INT(rename(p, path_in("restart.jsonl.2")), 0);
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (!w)
        return;
    reset_waiter();
    CHECK_INT(submit_n(w, 0, 30, 3), 0);
    CHECK(wait_done(3, 5000));
    bg_records_close(w);
    char *three[3] = {moved, path_in("restart.jsonl.2"), p};
    CHECK_INT(verify(three, 3, out, sizeof out), 0);
    CHECK(strstr(out, "OK: 30 records in 3 files") != NULL);

    /* A current file whose last line is not a record: open refuses (no silent new chain). */
    char *bad = path_in("bad.jsonl");
    spit(bad, "hello\n", 6);
    c = cfg_for(bad, 0, 0, BG_FSYNC_BATCH);
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), -1);
    CHECK(strstr(err, "cannot recover the chain head") != NULL);
    /* An unwritable place. */
    c = cfg_for("/proc/bordergate-test/x.jsonl", 0, 0, BG_FSYNC_BATCH);
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), -1);
    CHECK(err[0] != 0);
}

static void test_retention(void)
{
    char *dir = path_in("ret");
    mkdir(dir, 0755);
    char old[300], recent[300], other[300], p[300];
    snprintf(p, sizeof p, "%s/r.jsonl", dir);
    snprintf(old, sizeof old, "%s/r.jsonl.20000101T000000.000Z", dir);
    time_t now = time(NULL) - 86400; /* yesterday: kept with 30 days */
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
    snprintf(recent, sizeof recent, "%s/r.jsonl.%s.000Z", dir, ts);
    snprintf(other, sizeof other, "%s/unrelated.20000101T000000.000Z", dir);
    spit(old, "", 0);
    spit(recent, "", 0);
    spit(other, "", 0);
    bg_config_t c = cfg_for(p, 0, 30, BG_FSYNC_BATCH);
    bg_records_t *w = NULL;
    char err[256];
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    bg_records_close(w);
    CHECK(access(old, F_OK) != 0);
    CHECK_INT(access(recent, F_OK), 0);
    CHECK_INT(access(other, F_OK), 0);
}

/* A full disk: the file-size limit makes write(2) fail with EFBIG (SIGXFSZ ignored). Run in a
 * child so the limit does not touch this process. */
static void full_disk_child(const char *p)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    struct rlimit small = {64 * 1024, rl.rlim_max};
    bg_config_t c = cfg_for(p, 0, 0, BG_FSYNC_BATCH);
    bg_records_t *w = NULL;
    char err[256], out[2048];
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (!w)
        return;
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &small), 0);
    reset_waiter();
    int rc = 0;
    uint64_t sent = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = submit_n(w, 0, (uint64_t)i, 1);
        if (rc == 0)
            sent++;
        if (i % 50 == 0)
            usleep(1000); /* let the writer reach the limit */
    }
    CHECK_INT(rc, -EIO);
    CHECK(!bg_records_healthy(w));
    CHECK(wait_done(sent, 5000));
    CHECK(waiter.failed > 0);
    CHECK_INT(waiter.last_error, -EFBIG);
    CHECK_INT(waiter.ok, bg_records_written(w));
    /* What is on disk is a valid chain of exactly the acknowledged records. */
    char *files[1] = {(char *)p};
    CHECK_INT(verify(files, 1, out, sizeof out), 0);
    CHECK_INT(count_lines(p), waiter.ok);
    CHECK_INT(submit_n(w, 0, 999999, 1), -EIO);
    /* Space comes back; a reopen (SIGUSR1) recovers and the chain continues. */
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &rl), 0);
    bg_records_reopen(w);
    for (int i = 0; i < 200 && !bg_records_healthy(w); i++)
        usleep(10000);
    CHECK(bg_records_healthy(w));
    uint64_t before = waiter.ok + waiter.failed;
    CHECK_INT(submit_n(w, 0, 500000, 10), 0);
    CHECK(wait_done(before + 10, 5000));
    bg_records_close(w);
    CHECK_INT(verify(files, 1, out, sizeof out), 0);
    CHECK_INT(count_lines(p), waiter.ok);
}

static void test_full_disk(void)
{
    char *p = path_in("full.jsonl");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        bg_test_failed_now = 0;
        full_disk_child(p);
        fflush(NULL);
        _exit(bg_test_failed_now ? 1 : 0);
    }
    int st = 0;
    CHECK(pid > 0);
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), 0);
}

/* A really full file system: a 256 KiB tmpfs in a private mount namespace (root only; the
 * mount disappears with the child). write(2) fails with ENOSPC; deleting a filler file and a
 * reopen bring the writer back. Exit 77: cannot mount here (skipped). */
static void tmpfs_child(void)
{
    char dir[] = "/tmp/bg-records-tmpfs-XXXXXX";
    if (!mkdtemp(dir))
        _exit(77);
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=256k") != 0) {
        rmdir(dir);
        _exit(77);
    }
    char p[128], filler[128], out[2048];
    snprintf(p, sizeof p, "%s/t.jsonl", dir);
    snprintf(filler, sizeof filler, "%s/filler", dir);
    static char junk[64 * 1024];
    spit(filler, junk, sizeof junk);
    bg_config_t c = cfg_for(p, 0, 0, BG_FSYNC_ALWAYS);
    bg_records_t *w = NULL;
    char err[256];
    CHECK_INT(bg_records_open(&c, &w, err, sizeof err), 0);
    if (!w)
        return;
    reset_waiter();
    int rc = 0;
    uint64_t sent = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = submit_n(w, 0, (uint64_t)i, 1);
        sent += rc == 0;
        if (i % 50 == 0)
            usleep(1000);
    }
    CHECK_INT(rc, -EIO);
    CHECK(!bg_records_healthy(w));
    CHECK(wait_done(sent, 5000));
    CHECK_INT(waiter.last_error, -ENOSPC);
    char *files[1] = {p};
    CHECK_INT(verify(files, 1, out, sizeof out), 0);
    CHECK_INT(count_lines(p), waiter.ok);
    CHECK_INT(unlink(filler), 0);
    bg_records_reopen(w);
    for (int i = 0; i < 200 && !bg_records_healthy(w); i++)
        usleep(10000);
    CHECK(bg_records_healthy(w));
    uint64_t before = waiter.ok + waiter.failed;
    CHECK_INT(submit_n(w, 0, 500000, 10), 0);
    CHECK(wait_done(before + 10, 5000));
    bg_records_close(w);
    CHECK_INT(verify(files, 1, out, sizeof out), 0);
    CHECK_INT(count_lines(p), waiter.ok);
    umount(dir);
    rmdir(dir);
}

static void test_full_tmpfs(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        bg_test_failed_now = 0;
        tmpfs_child();
        fflush(NULL);
        _exit(bg_test_failed_now ? 1 : 0);
    }
    int st = 0;
    CHECK(pid > 0);
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        fprintf(stderr, "  (cannot mount a tmpfs here: ENOSPC test skipped; the RLIMIT_FSIZE test still ran)\n");
        return;
    }
    CHECK_INT(WEXITSTATUS(st), 0);
}

/* A writer blocked in write(2) (here: on a FIFO nobody reads, once its 64 KiB buffer is full)
 * under traffic far too light to fill the queue: not ready ("stalled") once stall_timeout passed
 * with work pending and no step finished; ready again once it makes progress. Idle time with
 * nothing pending is no stall. */
static void test_stall_detection(void)
{
    char *p = path_in("stall.fifo");
    CHECK_INT(mkfifo(p, 0600), 0);
    bg_config_t c = cfg_for(p, 0, 0, BG_FSYNC_NEVER); /* fdatasync on a FIFO fails: no sync */
    c.records.stall_timeout_ms = 300;
    bg_records_t *w = open_writer(&c);
    if (!w)
        return;
    const char *why = "";
    struct timespec nap = {0, 400 * 1000000L};
    nanosleep(&nap, NULL);
    CHECK(bg_records_ready(w, &why, NULL)); /* idle past the timeout, nothing pending */
    CHECK_STR(why, "ok");
    int n = 200; /* ~140 KB of lines: more than the FIFO holds */
    CHECK_INT(submit_n(w, 0, 0, n), 0);
    bool stalled = false;
    uint64_t age = 0;
    for (int i = 0; i < 300 && !stalled; i++) {
        struct timespec t = {0, 10 * 1000000L};
        nanosleep(&t, NULL);
        stalled = !bg_records_ready(w, &why, &age);
    }
    CHECK(stalled);
    CHECK_STR(why, "stalled");
    CHECK(age >= 300); /* the age the verdict saw, for the message that reports it */
    CHECK(bg_records_stall_ms(w) >= 300);
    CHECK(bg_records_slots_used(w) < bg_records_capacity(w) / 2); /* nowhere near backlogged */
    /* The disk answers again: drain the FIFO until every record was written. */
    int fd = open(p, O_RDONLY | O_NONBLOCK);
    CHECK(fd >= 0);
    char buf[65536];
    for (int i = 0; i < 500; i++) {
        while (fd >= 0 && read(fd, buf, sizeof buf) > 0) {
        }
        pthread_mutex_lock(&waiter.mu);
        uint64_t got = waiter.ok + waiter.failed;
        pthread_mutex_unlock(&waiter.mu);
        if (got >= (uint64_t)n)
            break;
        struct timespec t = {0, 10 * 1000000L};
        nanosleep(&t, NULL);
    }
    CHECK(wait_done((uint64_t)n, 1000));
    CHECK_INT(waiter.failed, 0);
    age = 1;
    CHECK(bg_records_ready(w, &why, &age));
    CHECK_STR(why, "ok");
    CHECK_INT(age, 0);
    CHECK_INT(bg_records_stall_ms(w), 0);
    bg_records_close(w); /* its final fdatasync fails on a FIFO (logged): nothing is left to write */
    if (fd >= 0)
        close(fd);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bg-records-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 2;
    RUN(test_id);
    RUN(test_encode_golden);
    RUN(test_encode_fields);
    RUN(test_encode_upstream_protocol);
    RUN(test_encode_matches_reference);
    RUN(test_encode_escapes_every_position);
    RUN(test_encode_body_dup);
    RUN(test_encode_cost);
    RUN(test_json_reader);
    RUN(test_verify_tampering);
    RUN(test_writer_concurrency);
    RUN(test_reservations);
    RUN(test_stall_detection);
    RUN(test_fsync_modes);
    RUN(test_rotation);
    RUN(test_restart_torn_and_reopen);
    RUN(test_retention);
    RUN(test_full_disk);
    RUN(test_full_tmpfs);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return bg_test_done();
}
