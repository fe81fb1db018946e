/*
 * tests/unit/http1.c — unit tests for proxy/http1.c, the strict HTTP/1.1 codec.
 * Every parse runs on a copy of the input that ends exactly at an unreadable page
 * (mmap two or more pages, mprotect the last), so any over-read crashes the test. Every
 * prefix of every valid head must be BG_H1_PARTIAL; each rejection is asserted with its
 * status. Single-threaded.
 */
#include "http1.h"
#include "test.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- guarded buffers ---------------------------------------------------------------- */

static char *guard_base;
static size_t guard_size, page;

/* Copy s[0..n) so that it ends right before a PROT_NONE page; returns the copy. */
static char *guarded(const char *s, size_t n)
{
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    size_t need = (n + page - 1) / page * page + page;
    if (need > guard_size) {
        if (guard_base)
            munmap(guard_base, guard_size);
        guard_base = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (guard_base == MAP_FAILED)
            abort();
        guard_size = need;
        if (mprotect(guard_base + need - page, page, PROT_NONE) != 0)
            abort();
    }
    char *dst = guard_base + guard_size - page - n;
    memcpy(dst, s, n);
    return dst;
}

static bg_h1_request_t req;
static bg_h1_response_t resp;
static const bg_h1_limits_t limits = {.max_header_bytes = 16384, .max_headers = 100, .max_uri = 8192};

static int preq_n(const char *s, size_t n, const bg_h1_limits_t *l)
{
    return bg_h1_parse_request(guarded(s, n), n, l, &req);
}
static int preq(const char *s) { return preq_n(s, strlen(s), &limits); }

static int presp_n(const char *s, size_t n, bool head)
{
    return bg_h1_parse_response(guarded(s, n), n, head, &resp);
}
static int presp(const char *s, bool head) { return presp_n(s, strlen(s), head); }

/* The request is rejected with `status`. */
#define REJECT(s, st)                                                                     \
    do {                                                                                  \
        int _rc = preq(s);                                                                \
        CHECK_INT(_rc, BG_H1_ERROR);                                                      \
        CHECK_INT(req.status, st);                                                        \
        CHECK(req.error != NULL);                                                         \
    } while (0)

/* Same, with the length given (inputs with NUL bytes). */
#define REJECT_N(s, st)                                                                   \
    do {                                                                                  \
        int _rc = preq_n(s, sizeof(s) - 1, &limits);                                      \
        CHECK_INT(_rc, BG_H1_ERROR);                                                      \
        CHECK_INT(req.status, st);                                                        \
    } while (0)

/* The whole request head is accepted, and every strict prefix of it is partial. */
static void accept_all_prefixes(const char *s)
{
    size_t n = strlen(s);
    int rc = preq_n(s, n, &limits);
    if (rc != (int)n)
        bg_test_fail(__FILE__, __LINE__, "request %.40s...: got %d (status %d, %s), want %zu", s, rc,
                     req.status, req.error ? req.error : "", n);
    for (size_t i = 0; i < n; i++) {
        rc = preq_n(s, i, &limits);
        if (rc != BG_H1_PARTIAL) {
            bg_test_fail(__FILE__, __LINE__, "prefix %zu of %.40s...: got %d (%s), want partial", i, s, rc,
                         req.error ? req.error : "");
            return;
        }
    }
}

#define ACCEPT(s) CHECK_INT(preq(s), (int)strlen(s))

/* ---- request line -------------------------------------------------------------------- */

static void test_simple_get(void)
{
    const char *s = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n";
    CHECK_INT(preq(s), (int)strlen(s));
    CHECK_SPAN(req.method, req.method_len, "GET");
    CHECK_SPAN(req.target, req.target_len, "/index.html?q=1");
    CHECK_SPAN(req.path, req.path_len, "/index.html?q=1");
    CHECK_SPAN(req.host, req.host_len, "example.com");
    CHECK_INT(req.minor_version, 1);
    CHECK_INT(req.nheaders, 3);
    CHECK_SPAN(req.headers[0].name, req.headers[0].name_len, "Host");
    CHECK_SPAN(req.headers[0].value, req.headers[0].value_len, "example.com");
    CHECK_SPAN(req.headers[2].name, req.headers[2].name_len, "Accept");
    CHECK_SPAN(req.headers[2].value, req.headers[2].value_len, "*/*");
    CHECK(!req.absolute_form);
    CHECK(!req.chunked);
    CHECK_INT(req.content_length, -1);
    CHECK(req.keep_alive);
    CHECK(!req.expect_continue);
    CHECK(!req.upgrade);
}

static void test_partial_prefixes(void)
{
    accept_all_prefixes("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    accept_all_prefixes("\r\n\r\nPOST /p%20q?x=%41 HTTP/1.1\r\nHost: h:8080\r\nContent-Length: 12\r\n"
                        "X-Empty:\r\nX-Ows: \t v \t\r\n\r\n");
    accept_all_prefixes("GET http://[::1]:8080/a?b HTTP/1.1\r\nHost: ignored\r\n\r\n");
    accept_all_prefixes("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    accept_all_prefixes("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n");
    accept_all_prefixes("PUT /x HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    accept_all_prefixes("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
                        "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nX: D\xc3\xbc\xff\r\n\r\n");
}

static void test_pipelined_and_leading_crlf(void)
{
    const char *s = "\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    int rc = preq(s);
    CHECK_INT(rc, (int)strlen("\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n"));
    CHECK_SPAN(req.path, req.path_len, "/a");
    CHECK_INT(preq(s + rc), (int)strlen(s + rc));
    CHECK_SPAN(req.path, req.path_len, "/b");
    /* body bytes after the head are not consumed */
    const char *b = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    CHECK_INT(preq(b), (int)strlen(b) - 3);
    CHECK_INT(req.content_length, 3);
    REJECT("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

static void test_methods(void)
{
    ACCEPT("MKCOLA / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK_SPAN(req.method, req.method_len, "MKCOLA");
    ACCEPT("QUERY /c HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n");
    ACCEPT("x~!#$%&'*+-.^_`| / HTTP/1.1\r\nHost: a\r\n\r\n");
    REJECT(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT_N("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

static void test_request_line_syntax(void)
{
    REJECT("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);   /* two SP */
    REJECT("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET   /   HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET  HTTP/1.0\r\n\r\n", 400);                  /* empty target */
    REJECT("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400);     /* trailing SP */
    REJECT("GET /\r\n", 400);                              /* HTTP/0.9 */
    REJECT("GET / HTTP/1.1\rLine: 1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\nHost: a\n\n", 400);            /* bare LF endings */
    REJECT("GET / HTTP/1.1\nHost: a\r\n\r\n", 400);
    REJECT("SOURCE /m ICE/1.0\r\nHost: a\r\n\r\n", 400);
    REJECT("GET / http/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400);
    REJECT("GET / HTTP/11\r\nHost: a\r\n\r\n", 400);
    REJECT("GET / HTTP/1.\r\nHost: a\r\n\r\n", 400);
    /* syntactically fine, but not a version we speak */
    REJECT("GET / HTTP/5.6\r\nHost: a\r\n\r\n", 505);
    REJECT("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    REJECT("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505);
    REJECT("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505);
    /* errors are decided early, before the head is complete */
    REJECT("GET / XTTP", 400);
    REJECT("GET /a\"b", 400);
}

static void test_target_chars(void)
{
    REJECT("GET /with_\"quotes\" HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /back\\slash HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /\xa0 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /\xce\xb4 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /a<b> HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /a{b} HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET /%4 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    ACCEPT("GET /test.cgi?foo=bar?baz HTTP/1.1\r\nHost: a\r\n\r\n");
    ACCEPT("GET /a%2Fb%c3%bc;p=1,2!$&'()*+=:@-._~?x=[1] HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK_SPAN(req.path, req.path_len, "/a%2Fb%c3%bc;p=1,2!$&'()*+=:@-._~?x=[1]");
}

static void test_target_partial_percent(void)
{
    /* a '%' or '%4' at the end of the input may still become valid */
    CHECK_INT(preq("GET /%"), BG_H1_PARTIAL);
    CHECK_INT(preq("GET /%4"), BG_H1_PARTIAL);
    CHECK_INT(preq("GET /%4g"), BG_H1_ERROR);
    CHECK_INT(preq("GET /%g"), BG_H1_ERROR);
}

static void test_target_forms(void)
{
    ACCEPT("GET http://hypnotoad.org?hail=all HTTP/1.1\r\nHost: hypnotoad.org\r\n\r\n");
    CHECK(req.absolute_form);
    CHECK_SPAN(req.host, req.host_len, "hypnotoad.org");
    CHECK_SPAN(req.path, req.path_len, "?hail=all");

    ACCEPT("GET http://vendor.example:8443 HTTP/1.1\r\nHost: other\r\n\r\n");
    CHECK_SPAN(req.host, req.host_len, "vendor.example:8443"); /* the target's authority wins */
    CHECK_SPAN(req.path, req.path_len, "/");

    ACCEPT("POST HTTPS://api.vendor.example/v1/x?y=1 HTTP/1.1\r\nHost: api.vendor.example\r\n\r\n");
    CHECK(req.absolute_form);
    CHECK_SPAN(req.host, req.host_len, "api.vendor.example");
    CHECK_SPAN(req.path, req.path_len, "/v1/x?y=1");

    ACCEPT("GET http://[2001:db8::1]:80/ HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_SPAN(req.host, req.host_len, "[2001:db8::1]:80");

    REJECT("GET http://a%12:b!&*$@hypnotoad.org:1234/toto HTTP/1.1\r\nHost: hypnotoad.org:1234\r\n\r\n", 400);
    REJECT("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http:/h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http://h:x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http://h:/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http://h:65536/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http://[zz]/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REJECT("GET http://h/ HTTP/1.1\r\n\r\n", 400); /* Host still required for 1.1 */
    ACCEPT("GET http://h/ HTTP/1.0\r\n\r\n");
    CHECK_SPAN(req.host, req.host_len, "h");

    /* asterisk-form only with OPTIONS */
    ACCEPT("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK_SPAN(req.path, req.path_len, "*");
    REJECT("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    /* OPTIONS to an absolute-form with an empty path asks about the server: "*" (RFC 9112 3.2.4) */
    ACCEPT("OPTIONS http://h:80 HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_SPAN(req.path, req.path_len, "*");
    ACCEPT("OPTIONS http://h/ HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_SPAN(req.path, req.path_len, "/");
    ACCEPT("OPTIONS http://h?q HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_SPAN(req.path, req.path_len, "?q");

    /* authority-form only with CONNECT, and CONNECT only with it */
    ACCEPT("CONNECT vendor.example:443 HTTP/1.1\r\nHost: vendor.example:443\r\n\r\n");
    CHECK_SPAN(req.host, req.host_len, "vendor.example:443");
    CHECK_INT(req.path_len, 0);
    REJECT("CONNECT vendor.example HTTP/1.1\r\nHost: vendor.example\r\n\r\n", 400);
    REJECT("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("CONNECT http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    REJECT("GET vendor.example:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

static void test_uri_limit(void)
{
    bg_h1_limits_t l = {.max_header_bytes = 16384, .max_headers = 100, .max_uri = 16};
    const char *ok = "GET /0123456789abcde HTTP/1.1\r\nHost: a\r\n\r\n"; /* 16 bytes */
    CHECK_INT(preq_n(ok, strlen(ok), &l), (int)strlen(ok));
    const char *big = "GET /0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n"; /* 17 bytes */
    CHECK_INT(preq_n(big, strlen(big), &l), BG_H1_ERROR);
    CHECK_INT(req.status, 414);
    /* decided on partial input as soon as the target is over the limit */
    CHECK_INT(preq_n(big, 4 + 16, &l), BG_H1_PARTIAL);
    CHECK_INT(preq_n(big, 4 + 17, &l), BG_H1_ERROR);
    CHECK_INT(req.status, 414);
    /* default limits: 8 KiB */
    static char huge[10000];
    memcpy(huge, "GET /", 5);
    memset(huge + 5, 'a', sizeof huge - 5);
    CHECK_INT(preq_n(huge, sizeof huge, NULL), BG_H1_ERROR);
    CHECK_INT(req.status, 414);
}

/* ---- header fields ------------------------------------------------------------------- */

static void test_field_syntax(void)
{
    ACCEPT("GET / HTTP/1.1\r\nHost: a\r\n|~: 1\r\nfoo: a \t \r\nbar:\r\nbaz:\t\tx  y\t\r\n\r\n");
    CHECK_INT(req.nheaders, 5);
    CHECK_SPAN(req.headers[1].name, req.headers[1].name_len, "|~");
    CHECK_SPAN(req.headers[2].value, req.headers[2].value_len, "a");
    CHECK_INT(req.headers[3].value_len, 0);
    CHECK_SPAN(req.headers[3].name, req.headers[3].name_len, "bar");
    CHECK_SPAN(req.headers[4].value, req.headers[4].value_len, "x  y");
    ACCEPT("GET / HTTP/1.1\r\nHost: a\r\nTest: D\xc3\xbcsseldorf\r\nH2: \xffV\r\n\r\n");
    CHECK_SPAN(req.headers[2].value, req.headers[2].value_len, "\xffV");

    REJECT("GET / HTTP/1.1\r\nHost: a\r\nfoo: b\r\n  \tc\r\n\r\n", 400);        /* obs-fold */
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nfoo: b\r\n\tc\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400);                        /* SP first */
    REJECT("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);                        /* SP colon */
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 1\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nFo@: x\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nno-colon\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nTransfer\r-Encoding: chunked\r\n\r\n", 400);
    REJECT_N("GET / HTTP/1.1\r\nHost: a\r\na\0b: c\r\n\r\n", 400);
    REJECT_N("GET / HTTP/1.1\r\nHost: a\r\nab: c\0d\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nab: c\x1b\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nab: hello\x0cworld\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nab: c\x0b\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nab: c\x7f\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep\ralive\r\n\r\n", 400);  /* bare CR */
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nx:\rTransfer-Encoding: chunked\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nx:x\nTransfer-Encoding: chunked\r\n\r\n", 400); /* bare LF */
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nDummy: x\nContent-Length: 23\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil HTTP/1.1\r\n\r\n", 400);      /* CR + not LF */
    REJECT("GET / HTTP/1.1\r\nHost: a\r\n\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nX:\n chunked\r\n\r\n", 400);
}

/* Every byte value at every position of a value (the scan reads 8 bytes at a time): only
 * HTAB, SP, VCHAR and obs-text are accepted. */
static void test_field_value_bytes(void)
{
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t pl = strlen(pre);
    char b[128];
    int wrong = 0;
    for (int pos = 0; pos < 19; pos++) {
        for (int c = 0; c < 256; c++) {
            memcpy(b, pre, pl);
            memset(b + pl, 'v', 19);
            b[pl + pos] = (char)c;
            memcpy(b + pl + 19, "w\r\n\r\n", 5);
            size_t n = pl + 24;
            int rc = preq_n(b, n, &limits);
            bool valid = c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f);
            if (valid != (rc == (int)n)) {
                if (wrong++ < 5)
                    bg_test_fail(__FILE__, __LINE__, "byte 0x%02x at %d: rc %d", c, pos, rc);
            } else if (!valid && req.status != 400) {
                bg_test_fail(__FILE__, __LINE__, "byte 0x%02x at %d: status %d", c, pos, req.status);
            }
        }
    }
    CHECK_INT(wrong, 0);
}

/* Every byte value in a field name and in an origin-form target. */
static void test_name_and_target_bytes(void)
{
    static const char tchars[] = "!#$%&'*+-.^_`|~";
    static const char uri[] = "-._~!$&'()*+,;=:@/?[]";
    char b[128];
    for (int c = 0; c < 256; c++) {
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        static const char h1[] = "GET / HTTP/1.1\r\nHost: a\r\nA", h2[] = "B: v\r\n\r\n";
        size_t n = 0;
        memcpy(b, h1, sizeof h1 - 1), n += sizeof h1 - 1;
        b[n++] = (char)c;
        memcpy(b + n, h2, sizeof h2 - 1), n += sizeof h2 - 1;
        bool ok = alnum || (c && strchr(tchars, c)) || c == ':'; /* "A:B: v" is field A */
        int rc = preq_n(b, n, &limits);
        if (ok != (rc == (int)n))
            bg_test_fail(__FILE__, __LINE__, "name byte 0x%02x: rc %d", c, rc);

        static const char t1[] = "GET /a", t2[] = "b HTTP/1.1\r\nHost: a\r\n\r\n";
        n = 0;
        memcpy(b, t1, sizeof t1 - 1), n += sizeof t1 - 1;
        b[n++] = (char)c;
        memcpy(b + n, t2, sizeof t2 - 1), n += sizeof t2 - 1;
        ok = alnum || (c && strchr(uri, c));
        rc = preq_n(b, n, &limits);
        if (ok != (rc == (int)n))
            bg_test_fail(__FILE__, __LINE__, "target byte 0x%02x: rc %d (%s)", c, rc, req.error ? req.error : "");
    }
}

static void test_header_limits(void)
{
    bg_h1_limits_t l = {.max_header_bytes = 64, .max_headers = 3, .max_uri = 32};
    const char *three = "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n";
    CHECK_INT(preq_n(three, strlen(three), &l), (int)strlen(three));
    const char *four = "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n";
    CHECK_INT(preq_n(four, strlen(four), &l), BG_H1_ERROR);
    CHECK_INT(req.status, 431);

    /* bytes: a head of exactly the limit passes, one more byte is 431 */
    char h[128];
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t pl = strlen(pre);
    memcpy(h, pre, pl);
    memset(h + pl, 'v', 64 - pl - 4);
    memcpy(h + 64 - 4, "\r\n\r\n", 4);
    CHECK_INT(preq_n(h, 64, &l), 64);
    memmove(h + pl + 1, h + pl, 64 - pl);
    CHECK_INT(preq_n(h, 65, &l), BG_H1_ERROR);
    CHECK_INT(req.status, 431);
    /* decided on partial input too */
    CHECK_INT(preq_n(h, 64, &l), BG_H1_PARTIAL);
    memset(h + 64, 'v', 40);
    CHECK_INT(preq_n(h, 65, &l), BG_H1_ERROR);
    CHECK_INT(req.status, 431);

    /* the hard array size caps a larger configured count */
    static char many[8192];
    size_t n = (size_t)sprintf(many, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < BG_H1_MAX_HEADERS; i++)
        n += (size_t)sprintf(many + n, "X%d: y\r\n", i);
    n += (size_t)sprintf(many + n, "\r\n");
    bg_h1_limits_t big = {.max_header_bytes = 65536, .max_headers = 100000, .max_uri = 100};
    CHECK_INT(preq_n(many, n, &big), BG_H1_ERROR);
    CHECK_INT(req.status, 431);
}

/* ---- Host ---------------------------------------------------------------------------- */

static void test_host(void)
{
    REJECT("GET / HTTP/1.1\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", 400);
    REJECT("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400);
    REJECT("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400);
    ACCEPT("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    CHECK_SPAN(req.host, req.host_len, "[::1]:8080");
    ACCEPT("GET / HTTP/1.1\r\nHost:  Vendor.Example:443 \r\n\r\n");
    CHECK_SPAN(req.host, req.host_len, "Vendor.Example:443");
    ACCEPT("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n");
    ACCEPT("GET / HTTP/1.1\r\nHost:\r\n\r\n"); /* empty Host: routable by nobody, but valid */
    CHECK_INT(req.host_len, 0);
    ACCEPT("GET / HTTP/1.0\r\n\r\n");
    CHECK_INT(req.host_len, 0);
    CHECK(req.host != NULL);
}

/* The classifier reads a body as its content fields describe it: two Content-Type fields, or
 * two Content-Encoding field lines, describe it two ways (first vs last, one coding vs a list). */
static void test_content_fields(void)
{
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Type: image/png\r\nContent-Type: application/json\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\ncontent-type: a/b\r\nCONTENT-TYPE: a/b\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: identity\r\nContent-Encoding: gzip\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\nX: y\r\ncontent-encoding: gzip\r\n\r\n", 400);
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n\r\n");
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: identity, gzip\r\n\r\n"); /* one list: the classifier sees it whole */
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nContent-Type-X: a\r\nContent-Type: b/c\r\n\r\n");
    /* nor may Connection strip them before the vendor (it would read the body another way) */
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nConnection: close, Content-Type\r\nContent-Type: a/b\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nConnection: content-encoding\r\n\r\n", 400);
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length, host, x-a\r\n\r\n");
    CHECK(presp("HTTP/1.1 200 OK\r\nConnection: content-type\r\nContent-Length: 0\r\n\r\n", false) > 0);

    bg_header_t h[3] = {{"Content-Type", 12, "a/b", 3}, {"x", 1, "", 0}, {"content-type", 12, "a/b", 3}};
    CHECK(bg_h1_content_fields_ambiguous(h, 3) != NULL);
    CHECK(bg_h1_content_fields_ambiguous(h, 2) == NULL);
    h[2] = (bg_header_t){"Content-Encoding", 16, "gzip", 4};
    CHECK(bg_h1_content_fields_ambiguous(h, 3) == NULL);
    h[0] = (bg_header_t){"CONTENT-ENCODING", 16, "br", 2};
    CHECK(bg_h1_content_fields_ambiguous(h, 3) != NULL);
    CHECK(bg_h1_content_fields_ambiguous(h, 0) == NULL);
}

/* ---- framing ------------------------------------------------------------------------- */

static void test_content_length(void)
{
    ACCEPT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\n");
    CHECK_INT(req.content_length, 3);
    ACCEPT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length:  42 \r\n\r\n");
    CHECK_INT(req.content_length, 42);
    ACCEPT("GET /f HTTP/1.0\r\nconTENT-Length: 5\r\n\r\n");
    CHECK_INT(req.content_length, 5);
    ACCEPT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\nContent-Length: 07\r\n\r\n");
    CHECK_INT(req.content_length, 7);
    ACCEPT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n");
    CHECK_INT(req.content_length, INT64_MAX);
    ACCEPT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    CHECK_INT(req.content_length, 0);

    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000000\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 1,\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 4 2\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400);
    REJECT("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length : 4\r\n\r\n", 400);
}

static void test_transfer_encoding(void)
{
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK(req.chunked);
    CHECK_INT(req.content_length, -1);
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nTrAnSFer-EnCODinG: cHuNkeD \r\n\r\n");
    CHECK(req.chunked);
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n");
    CHECK(req.chunked);
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n");
    CHECK(req.chunked);
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 11\r\n\r\n");
    CHECK(!req.chunked);
    CHECK_INT(req.content_length, 11);
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: chunked\r\nContent-Length: 11\r\n\r\n");
    CHECK(!req.chunked);

    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 11\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: identity\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: pigeons\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, deflate\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \xff" "chunked\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x chunked\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400);
    REJECT("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nTransfer-Encoding:\r\n\r\n", 400);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: cow, chunked\r\nContent-Length: 11\r\n\r\n", 400);
    /* framing is clear but the coding is one we do not implement */
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: deflate, chunked\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
}

static void test_expect_connection_upgrade(void)
{
    ACCEPT("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    CHECK(req.expect_continue);
    ACCEPT("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    CHECK(!req.expect_continue);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417);
    REJECT("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\n\r\n", 417);

    ACCEPT("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(req.keep_alive);
    ACCEPT("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n");
    CHECK(!req.keep_alive);
    ACCEPT("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n");
    CHECK(!req.keep_alive);
    ACCEPT("GET / HTTP/1.0\r\n\r\n");
    CHECK(!req.keep_alive);
    ACCEPT("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    CHECK(req.keep_alive);
    ACCEPT("GET / HTTP/1.0\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n");
    CHECK(req.keep_alive);
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nConnection: \"close\"\r\n\r\n", 400);

    ACCEPT("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    CHECK(req.upgrade);
    CHECK(req.keep_alive);
}

/* ---- responses ------------------------------------------------------------------------ */

static void response_prefixes(const char *s, bool head)
{
    size_t n = strlen(s);
    CHECK_INT(presp_n(s, n, head), (int)n);
    for (size_t i = 0; i < n; i++)
        if (presp_n(s, i, head) != BG_H1_PARTIAL) {
            bg_test_fail(__FILE__, __LINE__, "response prefix %zu of %.30s: not partial (%s)", i, s,
                         resp.error ? resp.error : "");
            return;
        }
}

static void test_response(void)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    CHECK_INT(presp(s, false), (int)strlen(s) - 5);
    CHECK_INT(resp.status, 200);
    CHECK_INT(resp.minor_version, 1);
    CHECK_SPAN(resp.reason, resp.reason_len, "OK");
    CHECK_INT(resp.content_length, 5);
    CHECK(!resp.chunked && !resp.close_delimited && resp.keep_alive);
    CHECK_INT(resp.nheaders, 2);

    response_prefixes("HTTP/1.1 451 Unavailable For Legal Reasons\r\nLink: <x>\r\nContent-Length: 0\r\n\r\n", false);
    response_prefixes("HTTP/1.1 204 \r\n\r\n", false);
    response_prefixes("HTTP/1.0 200 \xc3\xa9t\xc3\xa9\r\nX: y\r\n\r\n", false);

    CHECK_INT(presp("HTTP/1.1 204 \r\n\r\n", false), 17);
    CHECK_INT(resp.reason_len, 0);
    CHECK_INT(resp.content_length, 0);
    CHECK_INT(presp("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", false), 35);
    CHECK_INT(resp.reason_len, 0);

    CHECK(presp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false) > 0);
    CHECK(resp.chunked && !resp.close_delimited && resp.content_length == -1);

    CHECK(presp("HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\n", false) > 0);
    CHECK(resp.close_delimited && !resp.keep_alive);

    CHECK(presp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true) > 0); /* HEAD */
    CHECK_INT(resp.content_length, 0);
    CHECK(!resp.close_delimited && resp.keep_alive);
    CHECK(presp("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false) > 0);
    CHECK(!resp.chunked && !resp.close_delimited);
    CHECK(presp("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", false) == 25);
    CHECK_INT(resp.status, 100);
    CHECK(!resp.close_delimited);

    CHECK(presp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false) > 0);
    CHECK(!resp.keep_alive);
    CHECK(presp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", false) > 0);
    CHECK(resp.keep_alive);
    CHECK(presp("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false) > 0);
    CHECK(!resp.keep_alive);
}

static void test_response_errors(void)
{
    static const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 X\r\n\r\n",
        "HTTP/1.1 600 X\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\nX: y\r\n\r\n",
        "HTTP/1.1 200 O\rK\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = presp(bad[i], false);
        if (rc != BG_H1_ERROR || !resp.error)
            bg_test_fail(__FILE__, __LINE__, "response %zu (%.30s): got %d, want error", i, bad[i], rc);
    }
    /* head size bound */
    static char big[70000];
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', sizeof big - 20);
    CHECK_INT(presp_n(big, sizeof big, false), BG_H1_ERROR);
    CHECK_INT(presp_n(big, 60000, false), BG_H1_PARTIAL);
}

/* A 1xx or 204 must not carry a body length (RFC 9110 8.6, RFC 9112 6.1): one that does frames
 * its answer two ways (the bytes after it are a body to one reader, the next response to another). */
static void test_response_bodiless_framing(void)
{
    static const char *bad[] = {
        "HTTP/1.1 100 Continue\r\nContent-Length: 47\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 47\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = presp(bad[i], false);
        if (rc != BG_H1_ERROR || !resp.error)
            bg_test_fail(__FILE__, __LINE__, "response %zu (%.40s): got %d, want error", i, bad[i], rc);
    }
    /* "Content-Length: 0" says the same as no body; 304 may carry the selected representation's
     * length; a HEAD response's length is the GET's. */
    CHECK(presp("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false) > 0);
    CHECK_INT(resp.content_length, 0);
    CHECK(presp("HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n", false) > 0);
    CHECK(presp("HTTP/1.1 304 Not Modified\r\nContent-Length: 47\r\n\r\n", false) > 0);
    CHECK_INT(resp.content_length, 0);
    CHECK(presp("HTTP/1.1 200 OK\r\nContent-Length: 47\r\n\r\n", true) > 0);
    CHECK_INT(resp.content_length, 0);
}

/* The rules of the request line and Host, for fields that arrive another way (HTTP/2). */
static void test_target_and_authority_valid(void)
{
    static const char *good_t[] = {"/", "/a/b?c=d&e", "/%41%2f", "/a:b@c!$&'()*+,;=-._~", "/[::1]", "/?"};
    for (size_t i = 0; i < sizeof good_t / sizeof good_t[0]; i++)
        if (!bg_h1_target_valid("GET", 3, good_t[i], strlen(good_t[i])))
            bg_test_fail(__FILE__, __LINE__, "target %s: want valid", good_t[i]);
    static const char *bad_t[] = {"",      "a",      "*",       "http://h/", "/a#b",  "/a b", "/a\tb", "/%4",
                                  "/%zz",  "/a\"b", "/a<b>",   "/a\\b",   "/a^b",  "/a{b", "/\x80", "?q",
                                  "/a|b",  "/a`b",   "//h/\r", "/\x7f"};
    for (size_t i = 0; i < sizeof bad_t / sizeof bad_t[0]; i++)
        if (bg_h1_target_valid("GET", 3, bad_t[i], strlen(bad_t[i])))
            bg_test_fail(__FILE__, __LINE__, "target %s: want invalid", bad_t[i]);
    CHECK(bg_h1_target_valid("OPTIONS", 7, "*", 1));
    CHECK(!bg_h1_target_valid("OPTIONS", 7, "**", 2));
    CHECK(!bg_h1_target_valid("GET", 3, "*", 1));

    static const char *good_a[] = {"h", "a.example", "a.example:443", "[::1]", "[::1]:8080", "10.0.0.1:1", "a_b-c.d"};
    for (size_t i = 0; i < sizeof good_a / sizeof good_a[0]; i++)
        if (!bg_h1_authority_valid(good_a[i], strlen(good_a[i])))
            bg_test_fail(__FILE__, __LINE__, "authority %s: want valid", good_a[i]);
    static const char *bad_a[] = {"",        "u@h",   "h/x",     "h x",     "h:",     "h:65536", "h:1:2",
                                  ":80",     "[::1",  "[zz]",    "h\r\nx", "h\tx",   "h#x",     "h?x",
                                  "h:123456", "h%4",
                                  /* RFC 3986 reg-name, but no DNS host: never routed (a wildcard would match) */
                                  "a%41b",   "a,b.x", "a;b.x", "a'b.x", "a!b.x", "a$b.x", "a&b.x", "a(b).x",
                                  "a*b.x",   "a+b.x", "a=b.x", "a~b.x", "a,b.x:80"};
    for (size_t i = 0; i < sizeof bad_a / sizeof bad_a[0]; i++)
        if (bg_h1_authority_valid(bad_a[i], strlen(bad_a[i])))
            bg_test_fail(__FILE__, __LINE__, "authority %s: want invalid", bad_a[i]);
}

/* ---- chunked ---------------------------------------------------------------------------- */

/* Decode s in pieces of `step` bytes (0: all at once) as a data plane would: keeping the
 * unconsumed tail. Returns 0 and the data in out, or BG_H1_ERROR; *used is input used. */
static int dechunk(const char *s, size_t n, size_t step, char *out, size_t *out_n, size_t *used, bool *done)
{
    bg_h1_chunked_t d;
    bg_h1_chunked_init(&d);
    size_t pos = 0, o = 0;
    *done = false;
    while (pos < n && !d.done) {
        size_t take = step ? step : n - pos;
        if (take > n - pos)
            take = n - pos;
        char *g = guarded(s + pos, take);
        size_t consumed = 0, dl = 0;
        int rc = bg_h1_chunked_decode(&d, g, take, &consumed, &dl);
        if (consumed > take || dl > consumed)
            return -100;
        memcpy(out + o, g, dl);
        o += dl;
        pos += consumed;
        if (rc != 0) {
            *used = pos;
            *out_n = o;
            return rc;
        }
        if (consumed < take && !d.done)
            return -101; /* must use all input unless done */
    }
    *used = pos;
    *out_n = o;
    *done = d.done;
    return 0;
}

/* The body decodes to `want` and ends after `body_len` bytes, whatever the split. */
static void chunk_ok(const char *s, size_t body_len, const char *want)
{
    size_t n = strlen(s);
    static const size_t steps[] = {0, 1, 2, 3, 5, 7, 13};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        char out[4096];
        size_t on = 0, used = 0;
        bool done = false;
        int rc = dechunk(s, n, steps[k], out, &on, &used, &done);
        if (rc != 0 || !done || used != body_len || on != strlen(want) || memcmp(out, want, on) != 0) {
            bg_test_fail(__FILE__, __LINE__, "chunked %.30s step %zu: rc %d done %d used %zu/%zu out \"%.*s\"", s,
                         steps[k], rc, done, used, body_len, (int)on, out);
            return;
        }
    }
}

static void chunk_bad(const char *s)
{
    size_t n = strlen(s);
    static const size_t steps[] = {0, 1, 4};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        char out[4096];
        size_t on = 0, used = 0;
        bool done = false;
        int rc = dechunk(s, n, steps[k], out, &on, &used, &done);
        if (rc != BG_H1_ERROR) {
            bg_test_fail(__FILE__, __LINE__, "chunked %.40s step %zu: rc %d done %d, want error", s, steps[k], rc,
                         done);
            return;
        }
    }
}

static void test_chunked_valid(void)
{
    const char *a = "a\r\n0123456789\r\n0\r\n\r\n";
    chunk_ok(a, strlen(a), "0123456789");
    const char *b = "5\r\nhello\r\n6\r\n world\r\n000\r\n\r\nGET / HTTP/1.1\r\n";
    chunk_ok(b, strlen(b) - 16, "hello world");
    const char *tr = "5\r\nhello\r\n6\r\n world\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n";
    chunk_ok(tr, strlen(tr), "hello world");
    const char *ext = "5;ilovew3;somuchlove=aretheseparametersfor;another=withvalue\r\nhello\r\n6;blahblah;blah\r\n"
                      " world\r\n0\r\n\r\n";
    chunk_ok(ext, strlen(ext), "hello world");
    const char *q = "5;ilovew3=\"I \\\"love\\\"; \\\\extensions\\\\\";somuchlove=\"x\";blah;foo=bar\r\nhello\r\n"
                    "0\r\n\r\n";
    chunk_ok(q, strlen(q), "hello");
    const char *ws = "6 ; comment\r\nhello \r\n5\r\nworld\r\n0\r\na: b\r\nc: d\r\n\r\n";
    chunk_ok(ws, strlen(ws), "hello world");
    const char *ws2 = "1;a = b ;c\t=\t\"d\" ; e\r\nX\r\n0\r\n\r\n";
    chunk_ok(ws2, strlen(ws2), "X");
    const char *up = "A\r\n0123456789\r\nF\r\n0123456789abcde\r\n0\r\n\r\n";
    chunk_ok(up, strlen(up), "01234567890123456789abcde");
    chunk_ok("0\r\n\r\n", 5, "");
    const char *t = "0\r\nX-Empty:\r\nX: \xff\t\r\n\r\n";
    chunk_ok(t, strlen(t), "");
}

static void test_chunked_invalid(void)
{
    chunk_bad("z\r\nabcdefg");
    chunk_bad("\r\n");
    chunk_bad(";x\r\n");
    chunk_bad("6\nhello \r\n0\r\n\r\n");                 /* bare LF after size */
    chunk_bad("6\r\nhello \n5\r\nworld\r\n0\r\n\r\n");     /* bare LF after data */
    chunk_bad("6\rX\nhello \r\n0\r\n\r\n");                /* CR X */
    chunk_bad("5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n");
    chunk_bad("5\r\nABCDE0\r\n\r\n");                      /* data not followed by CRLF */
    chunk_bad("a \r\n0123456789\r\n0\r\n\r\n");            /* BWS not before ';' */
    chunk_bad("2 erfrferferf\r\naa\r\n0 rrrr\r\n\r\n");
    chunk_bad("fffffffffffffffff\r\nabcdefg");              /* 17 hex digits */
    chunk_bad("ffffffffffffffff\r\nabcdefg");               /* > INT64_MAX */
    chunk_bad("8000000000000000\r\n");
    chunk_bad("-1\r\n");
    chunk_bad("0x5\r\nhello\r\n0\r\n\r\n");
    chunk_bad("5;\r\nhello\r\n0\r\n\r\n");                 /* empty ext name */
    chunk_bad("5;a=\r\nhello\r\n0\r\n\r\n");               /* empty ext value */
    chunk_bad("5;a=\"x\r\nhello\r\n0\r\n\r\n");            /* unterminated quote */
    chunk_bad("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n");
    chunk_bad("5;a b\r\nhello\r\n0\r\n\r\n");
    chunk_bad("5;a@b\r\nhello\r\n0\r\n\r\n");
    chunk_bad("5;a \r\nhello\r\n0\r\n\r\n");
    chunk_bad("1;a=\"\x01\"\r\nX\r\n0\r\n\r\n");
    chunk_bad("0\r\nX : y\r\n\r\n");                        /* trailer: SP before colon */
    chunk_bad("0\r\nX: y\r\n z\r\n\r\n");                   /* trailer: obs-fold */
    chunk_bad("0\r\n X: y\r\n\r\n");
    chunk_bad("0\r\nX: y\nZ: w\r\n\r\n");                   /* trailer: bare LF */
    chunk_bad("0\r\nX: a\rb\r\n\r\n");
    chunk_bad("0\r\nX: \x0c\r\n\r\n");
    chunk_bad("0\r\nnocolon\r\n\r\n");
    chunk_bad("0\r\n\n");
    chunk_bad("0\r\n\rX");
    chunk_bad("1\nA\n0\n\n");

    /* bounds: a size line and a trailer section cannot grow without limit */
    static char line[6000];
    memcpy(line, "1;", 2);
    memset(line + 2, 'a', sizeof line - 3);
    line[sizeof line - 1] = 0;
    chunk_bad(line);
    static char tr[10000];
    memcpy(tr, "0\r\nX: ", 6);
    memset(tr + 6, 'v', sizeof tr - 7);
    tr[sizeof tr - 1] = 0;
    chunk_bad(tr);
}

static void test_chunked_state(void)
{
    /* leading zeros do not count towards the overflow limit */
    const char *z = "00000000000000000001\r\nA\r\n0\r\n\r\n";
    chunk_ok(z, strlen(z), "A");
    /* largest legal size is accepted as a size (the data plane bounds bodies itself) */
    bg_h1_chunked_t d;
    bg_h1_chunked_init(&d);
    char s[] = "7fffffffffffffff\r\nabc";
    size_t used, out;
    CHECK_INT(bg_h1_chunked_decode(&d, s, strlen(s), &used, &out), 0);
    CHECK_INT(used, strlen(s));
    CHECK_INT(out, 3);
    CHECK(memcmp(s, "abc", 3) == 0);
    CHECK(!d.done);
    /* after done, nothing more is consumed */
    bg_h1_chunked_init(&d);
    char e[] = "0\r\n\r\nextra";
    CHECK_INT(bg_h1_chunked_decode(&d, e, strlen(e), &used, &out), 0);
    CHECK(d.done);
    CHECK_INT(used, 5);
    CHECK_INT(out, 0);
    CHECK_INT(bg_h1_chunked_decode(&d, e + 5, 5, &used, &out), 0);
    CHECK_INT(used, 0);
    /* empty input is fine */
    bg_h1_chunked_init(&d);
    CHECK_INT(bg_h1_chunked_decode(&d, e, 0, &used, &out), 0);
    CHECK_INT(used, 0);
}

/* The trailer section is kept (field lines, without the final CRLF) whatever the split, and
 * bounded by the caller's buffer; without a buffer nothing is written anywhere. */
static void test_chunked_trailers_kept(void)
{
    const char *s = "5\r\nhello\r\n0\r\nGrpc-Status: 0\r\nX-Empty:\r\nX-Sum:  abc \t\r\n\r\nNEXT";
    const char *want = "Grpc-Status: 0\r\nX-Empty:\r\nX-Sum:  abc \t\r\n";
    size_t n = strlen(s);
    for (size_t step = 1; step <= n; step++) {
        bg_h1_chunked_t d;
        bg_h1_chunked_init(&d);
        char tb[BG_H1_TRAILER_MAX];
        d.trailers = tb;
        d.trailers_cap = sizeof tb;
        size_t pos = 0;
        while (pos < n && !d.done) {
            size_t take = step < n - pos ? step : n - pos;
            char *g = guarded(s + pos, take);
            size_t used = 0, out = 0;
            CHECK_INT(bg_h1_chunked_decode(&d, g, take, &used, &out), 0);
            pos += used;
        }
        CHECK(d.done);
        CHECK_INT(pos, n - 4);
        CHECK_INT(d.trailers_len, strlen(want));
        CHECK(memcmp(tb, want, strlen(want)) == 0);
    }
    /* no trailers: nothing kept */
    bg_h1_chunked_t d;
    bg_h1_chunked_init(&d);
    char tb[8];
    d.trailers = tb;
    d.trailers_cap = sizeof tb;
    char e[] = "0\r\n\r\n";
    size_t used, out;
    CHECK_INT(bg_h1_chunked_decode(&d, e, 5, &used, &out), 0);
    CHECK(d.done);
    CHECK_INT(d.trailers_len, 0);
    /* a small buffer keeps a prefix, never more */
    bg_h1_chunked_init(&d);
    d.trailers = tb;
    d.trailers_cap = sizeof tb;
    char f[] = "0\r\nLong-Name: value\r\n\r\n";
    CHECK_INT(bg_h1_chunked_decode(&d, f, strlen(f), &used, &out), 0);
    CHECK(d.done);
    CHECK_INT(d.trailers_len, 8);
    CHECK(memcmp(tb, "Long-Nam", 8) == 0);
    /* over BG_H1_TRAILER_MAX: an error, as before */
    static char big[BG_H1_TRAILER_MAX + 64];
    memcpy(big, "0\r\nX: ", 6);
    memset(big + 6, 'a', sizeof big - 6 - 4);
    memcpy(big + sizeof big - 4, "\r\n\r\n", 4);
    bg_h1_chunked_init(&d);
    CHECK_INT(bg_h1_chunked_decode(&d, big, sizeof big, &used, &out), BG_H1_ERROR);
}

/* Decode s (n bytes) in pieces of `step` with the caller's bound `max`, keeping the trailers
 * in a buffer that starts at `cap0` bytes and doubles whenever the decoder says it is full
 * (as exchange.c and conn.c do). Returns the last return code; *kept: the buffer (malloc'd). */
static int chunk_bounded(const char *s, size_t n, size_t step, uint32_t max, uint32_t cap0, bg_h1_chunked_t *d,
                         char **kept, size_t *used_all)
{
    bg_h1_chunked_init(d);
    d->trailers_max = max;
    d->trailers_cap = cap0;
    d->trailers = malloc(cap0 ? cap0 : 1);
    size_t pos = 0;
    int rc = 0;
    while (pos < n && !d->done) {
        size_t take = step < n - pos ? step : n - pos;
        char *g = guarded(s + pos, take);
        size_t used = 0, out = 0;
        rc = bg_h1_chunked_decode(d, g, take, &used, &out);
        pos += used;
        if (rc < 0)
            break;
        if (d->trailers_full) {
            CHECK(d->trailers_len == d->trailers_cap && d->trailers_cap < max);
            d->trailers_cap = d->trailers_cap ? d->trailers_cap * 2 : 16;
            d->trailers = realloc(d->trailers, d->trailers_cap);
            d->trailers_full = false;
        } else if (used == 0) {
            CHECK(used > 0); /* neither done, full nor an error: it must have made progress */
            break;
        }
    }
    *kept = d->trailers;
    *used_all = pos;
    return rc;
}

/* With the caller's bound (trailers_max, the header size limit): a section within it is kept
 * whole in a buffer grown on demand, whatever the split, also past the old 8 KiB bound; one
 * over it is read to its end but not kept (trailers_over); a section past twice
 * BG_H1_TRAILER_KEEP_MAX is an error, still flagged as too large; malformed stays malformed. */
static void test_chunked_trailers_bounded(void)
{
    static char s[40000];
    size_t n = 0;
    n += (size_t)sprintf(s + n, "5\r\nhello\r\n0\r\n");
    size_t t0 = n;
    for (int i = 0; i < 800; i++) /* 800 fields of 16 bytes: 12,800 bytes of field lines */
        n += (size_t)sprintf(s + n, "X-T%03d: abcdef\r\n", i);
    size_t tlen = n - t0;
    n += (size_t)sprintf(s + n, "\r\nNEXT");
    size_t steps[] = {1, 2, 7, 100, 4096, sizeof s};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        bg_h1_chunked_t d;
        char *kept;
        size_t used;
        CHECK_INT(chunk_bounded(s, n, steps[k], 16384, 0, &d, &kept, &used), 0);
        CHECK(d.done && !d.trailers_over);
        CHECK_INT(used, n - 4);
        CHECK_INT(d.trailers_len, tlen);
        CHECK(memcmp(kept, s + t0, tlen) == 0);
        free(kept);
        /* exactly at the bound: kept; one byte less: over */
        CHECK_INT(chunk_bounded(s, n, steps[k], (uint32_t)tlen, 64, &d, &kept, &used), 0);
        CHECK(d.done && !d.trailers_over);
        CHECK_INT(d.trailers_len, tlen);
        free(kept);
        CHECK_INT(chunk_bounded(s, n, steps[k], (uint32_t)tlen - 1, 64, &d, &kept, &used), 0);
        CHECK(d.done && d.trailers_over);
        CHECK_INT(used, n - 4);
        CHECK(d.trailers_len <= tlen - 1);
        free(kept);
    }
    /* without a buffer: only counted */
    bg_h1_chunked_t d;
    bg_h1_chunked_init(&d);
    d.trailers_max = 4096;
    size_t used, out;
    CHECK_INT(bg_h1_chunked_decode(&d, s, n, &used, &out), 0);
    CHECK(d.done && d.trailers_over && d.trailers_len == 0 && !d.trailers_full);
    /* the caller's bound is clamped to BG_H1_TRAILER_KEEP_MAX, and the whole section to twice it */
    size_t bn = 2 * BG_H1_TRAILER_KEEP_MAX + 64;
    char *big = malloc(bn);
    memcpy(big, "0\r\nX: ", 6);
    memset(big + 6, 'a', bn - 6 - 4);
    memcpy(big + bn - 4, "\r\n\r\n", 4);
    bg_h1_chunked_init(&d);
    d.trailers_max = 16u << 20;
    CHECK_INT(bg_h1_chunked_decode(&d, big, BG_H1_TRAILER_KEEP_MAX + 100, &used, &out), 0);
    CHECK(d.trailers_over && !d.done);
    bg_h1_chunked_init(&d);
    d.trailers_max = 16u << 20;
    CHECK_INT(bg_h1_chunked_decode(&d, big, bn, &used, &out), BG_H1_ERROR);
    CHECK(d.trailers_over);
    free(big);
    /* malformed past the bound is still malformed (a bare LF), and not "too large" before it */
    char bad[] = "0\r\nX-A: 1\r\nX-B: 2\n\r\n";
    bg_h1_chunked_init(&d);
    d.trailers_max = 4;
    CHECK_INT(bg_h1_chunked_decode(&d, bad, strlen(bad), &used, &out), BG_H1_ERROR);
    bg_h1_chunked_init(&d);
    d.trailers_max = 4096;
    CHECK_INT(bg_h1_chunked_decode(&d, bad, strlen(bad), &used, &out), BG_H1_ERROR);
    CHECK(!d.trailers_over);
}

static void test_split_fields(void)
{
    bg_header_t f[4];
    const char *s = "Grpc-Status: 0\r\nX-Empty:\r\nno colon\r\nX-Sum: \t abc \t\r\n";
    CHECK_INT(bg_h1_split_fields(s, strlen(s), f, 4), 3);
    CHECK(f[0].name_len == 11 && memcmp(f[0].name, "Grpc-Status", 11) == 0);
    CHECK(f[0].value_len == 1 && f[0].value[0] == '0');
    CHECK(f[1].name_len == 7 && f[1].value_len == 0);
    CHECK(f[2].name_len == 5 && f[2].value_len == 3 && memcmp(f[2].value, "abc", 3) == 0);
    CHECK_INT(bg_h1_split_fields(s, strlen(s), f, 2), -1);
    CHECK_INT(bg_h1_split_fields("", 0, f, 4), 0);
    /* no final CRLF, bare LF */
    CHECK_INT(bg_h1_split_fields("a: 1\nb: 2", 9, f, 4), 2);
    CHECK(f[1].value_len == 1 && f[1].value[0] == '2');
}

static void test_trailer_allowed(void)
{
    static const char *no[] = {"Content-Length", "transfer-encoding", "Host", "Authorization", "Cookie",
                               "Set-Cookie", "Content-Type", "Content-Encoding", "Cache-Control", "TE",
                               "Trailer", "Connection", "Keep-Alive", "Upgrade", "Proxy-Authorization",
                               "Proxy-Anything", "Expect", "Range", "If-Match", "Max-Forwards", "Via",
                               "X-Forwarded-For", "X-Transfer-Id", ":status", ":path", "", "Location", "Date"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (bg_h1_trailer_allowed(no[i], strlen(no[i])))
            bg_test_fail(__FILE__, __LINE__, "%s allowed in trailers", no[i]);
    static const char *yes[] = {"Grpc-Status", "grpc-message", "X-Checksum", "Server-Timing", "Content-MD5x",
                                "Hostx", "X-Cookie"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!bg_h1_trailer_allowed(yes[i], strlen(yes[i])))
            bg_test_fail(__FILE__, __LINE__, "%s refused in trailers", yes[i]);
}

/* ---- helpers ---------------------------------------------------------------------------- */

static void test_hop_by_hop(void)
{
    static const char *hop[] = {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
                                "transfer-encoding", "UPGRADE", "Proxy-Authorization", "Proxy-Authenticate"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        CHECK(bg_h1_is_hop_by_hop(hop[i], strlen(hop[i]), NULL, 0));
    CHECK(!bg_h1_is_hop_by_hop("Host", 4, NULL, 0));
    CHECK(!bg_h1_is_hop_by_hop("Content-Length", 14, NULL, 0));
    CHECK(!bg_h1_is_hop_by_hop("Authorization", 13, NULL, 0));
    CHECK(!bg_h1_is_hop_by_hop("TEx", 3, NULL, 0));
    const char *conn = "close, X-Secret ,, Foo";
    CHECK(bg_h1_is_hop_by_hop("x-secret", 8, conn, strlen(conn)));
    CHECK(bg_h1_is_hop_by_hop("foo", 3, conn, strlen(conn)));
    CHECK(!bg_h1_is_hop_by_hop("X-Secre", 7, conn, strlen(conn)));
    CHECK(!bg_h1_is_hop_by_hop("Accept", 6, conn, strlen(conn)));
}

static void test_reason(void)
{
    CHECK_STR(bg_h1_reason(200), "OK");
    CHECK_STR(bg_h1_reason(100), "Continue");
    CHECK_STR(bg_h1_reason(400), "Bad Request");
    CHECK_STR(bg_h1_reason(403), "Forbidden");
    CHECK_STR(bg_h1_reason(404), "Not Found");
    CHECK_STR(bg_h1_reason(405), "Method Not Allowed");
    CHECK_STR(bg_h1_reason(408), "Request Timeout");
    CHECK_STR(bg_h1_reason(411), "Length Required");
    CHECK_STR(bg_h1_reason(413), "Content Too Large");
    CHECK_STR(bg_h1_reason(414), "URI Too Long");
    CHECK_STR(bg_h1_reason(417), "Expectation Failed");
    CHECK_STR(bg_h1_reason(431), "Request Header Fields Too Large");
    CHECK_STR(bg_h1_reason(451), "Unavailable For Legal Reasons");
    CHECK_STR(bg_h1_reason(500), "Internal Server Error");
    CHECK_STR(bg_h1_reason(501), "Not Implemented");
    CHECK_STR(bg_h1_reason(502), "Bad Gateway");
    CHECK_STR(bg_h1_reason(503), "Service Unavailable");
    CHECK_STR(bg_h1_reason(504), "Gateway Timeout");
    CHECK_STR(bg_h1_reason(505), "HTTP Version Not Supported");
    CHECK_STR(bg_h1_reason(499), "Client Error");
    CHECK(bg_h1_reason(999) != NULL);
}

int main(void)
{
    RUN(test_simple_get);
    RUN(test_partial_prefixes);
    RUN(test_pipelined_and_leading_crlf);
    RUN(test_methods);
    RUN(test_request_line_syntax);
    RUN(test_target_chars);
    RUN(test_target_partial_percent);
    RUN(test_target_forms);
    RUN(test_uri_limit);
    RUN(test_field_syntax);
    RUN(test_field_value_bytes);
    RUN(test_name_and_target_bytes);
    RUN(test_header_limits);
    RUN(test_host);
    RUN(test_content_fields);
    RUN(test_content_length);
    RUN(test_transfer_encoding);
    RUN(test_expect_connection_upgrade);
    RUN(test_response);
    RUN(test_response_errors);
    RUN(test_response_bodiless_framing);
    RUN(test_target_and_authority_valid);
    RUN(test_chunked_valid);
    RUN(test_chunked_invalid);
    RUN(test_chunked_state);
    RUN(test_chunked_trailers_kept);
    RUN(test_chunked_trailers_bounded);
    RUN(test_split_fields);
    RUN(test_trailer_allowed);
    RUN(test_hop_by_hop);
    RUN(test_reason);
    return bg_test_done();
}
