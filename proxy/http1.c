/*
 * http1.c — the strict HTTP/1.1 codec behind http1.h (RFC 9112, RFC 9110).
 * Pure functions over the caller's buffer: no allocation, no globals but constant tables,
 * no I/O. Heads are parsed in one pass over the bytes with table-driven scans; the parsed
 * fields point into the caller's buffer. Every prefix of a valid head is BG_H1_PARTIAL;
 * anything the RFCs call invalid or ambiguous is an error with the status to answer, never
 * a guess (bare CR/LF, obs-fold, whitespace before the colon, TE+CL, ...).
 * Runs on any thread (worker threads of the data plane); reentrant.
 */
#include "http1.h"

#include "util.h"

#include <string.h>

/* Character classes (one table, one load per byte). */
enum {
    C_TCHAR = 1, /* token: field names, methods, codings (RFC 9110 5.6.2) */
    C_FVAL = 2,  /* field-value byte: HTAB, SP, VCHAR, obs-text (RFC 9110 5.5) */
    C_URI = 4,   /* request-target byte besides '%' (RFC 3986 pchar, '/', '?', '[', ']') */
    C_HEX = 8,   /* HEXDIG */
    C_REG = 16,  /* reg-name byte besides '%': unreserved / sub-delims (RFC 3986 3.2.2); hosts use dns_char */
    C_QD = 32,   /* qdtext (RFC 9110 5.6.4) */
};

static const uint8_t cls[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  34, 0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    34, 55, 2,  35, 55, 35, 55, 55, 54, 54, 55, 55, 54, 55, 55, 38,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 38, 54, 34, 54, 34, 38,
    38, 63, 63, 63, 63, 63, 63, 55, 55, 55, 55, 55, 55, 55, 55, 55,
    55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 38, 2,  38, 35, 55,
    35, 63, 63, 63, 63, 63, 63, 55, 55, 55, 55, 55, 55, 55, 55, 55,
    55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 34, 35, 34, 55, 0,
    34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

/* Eight bytes at a time: whether any is a CTL (< 0x20, which includes HTAB) or DEL. Exact
 * as a yes/no (bit tricks from "Bit Twiddling Hacks", hasless/haszero); bytes >= 0x80 pass. */
static inline bool word_has_ctl(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    uint64_t lt20 = (x - ones * 0x20) & ~x & highs;
    uint64_t d = x ^ (ones * 0x7f);
    uint64_t del = (d - ones) & ~d & highs;
    return (lt20 | del) != 0;
}

#define DEFAULT_MAX_HEADER_BYTES (16u * 1024u) /* config.h defaults */
#define DEFAULT_MAX_HEADERS 100u
#define DEFAULT_MAX_URI (8u * 1024u)
#define RESPONSE_MAX_HEAD (64u * 1024u) /* a vendor's head beyond this is refused */
#define CHUNK_LINE_MAX 4096u            /* chunk-size line with extensions */
#define CHUNK_TRAILER_MAX 8192u         /* whole trailer section */

/* Outcome of a field-section scan that did not complete. */
typedef struct {
    int status; /* 0: need more input; else the status to answer */
    const char *error;
} h1_fail_t;

static inline const char *set_fail(h1_fail_t *f, int status, const char *error)
{
    f->status = status;
    f->error = error;
    return NULL;
}

/*
 * Field lines up to and including the empty line. Returns the byte after it, or NULL with
 * f->status 0 (more input needed: only when `end` was reached) or the status of the error.
 */
static const char *parse_fields(const char *p, const char *end, bg_header_t *h, size_t *nh, size_t max,
                                h1_fail_t *f)
{
    for (;;) {
        if (p == end)
            return set_fail(f, 0, NULL);
        if (*p == '\r') {
            if (++p == end)
                return set_fail(f, 0, NULL);
            if (*p != '\n')
                return set_fail(f, 400, "bare CR in header section");
            return p + 1;
        }
        const char *name = p;
        while (p < end && IS(*p, C_TCHAR))
            ++p;
        if (p == end)
            return set_fail(f, 0, NULL);
        if (*p != ':') {
            if (p == name && (*p == ' ' || *p == '\t'))
                return set_fail(f, 400, "obs-fold or whitespace before a field line");
            if (*p == ' ' || *p == '\t')
                return set_fail(f, 400, "whitespace between field name and colon");
            if (*p == '\n')
                return set_fail(f, 400, "bare LF in header section");
            if (*p == '\r')
                return set_fail(f, 400, "bare CR in field name");
            return set_fail(f, 400, "invalid character in field name");
        }
        if (p == name)
            return set_fail(f, 400, "empty field name");
        if (*nh >= max)
            return set_fail(f, 431, "too many header fields");
        size_t name_len = (size_t)(p - name);
        ++p;
        while (p < end && (*p == ' ' || *p == '\t'))
            ++p;
        const char *value = p;
        /* The hot loop: most bytes of a head are field values. */
        while (end - p >= 8 && !word_has_ctl(p))
            p += 8;
        while (p < end && IS(*p, C_FVAL))
            ++p;
        if (p == end)
            return set_fail(f, 0, NULL);
        if (*p != '\r') {
            if (*p == '\n')
                return set_fail(f, 400, "bare LF in header section");
            if (*p == '\0')
                return set_fail(f, 400, "NUL in field value");
            return set_fail(f, 400, "control character in field value");
        }
        const char *vend = p;
        while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
            --vend;
        if (++p == end)
            return set_fail(f, 0, NULL);
        if (*p != '\n')
            return set_fail(f, 400, "bare CR in field value");
        ++p;
        h[*nh].name = name;
        h[*nh].name_len = name_len;
        h[*nh].value = value;
        h[*nh].value_len = (size_t)(vend - value);
        ++*nh;
    }
}

/* Next element of a comma-separated list in [*p, end): OWS trimmed; empty elements are
 * returned as length 0. *p becomes NULL after the last one; returns false after that. */
bool bg_h1_list_next(const char **p, const char *end, const char **elem, size_t *elem_len)
{
    const char *s = *p;
    if (!s)
        return false;
    const char *c = memchr(s, ',', (size_t)(end - s));
    const char *e = c ? c : end;
    *p = c ? c + 1 : NULL;
    while (s < e && (*s == ' ' || *s == '\t'))
        ++s;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        --e;
    *elem = s;
    *elem_len = (size_t)(e - s);
    return true;
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!IS(s[i], C_TCHAR))
            return false;
    return true;
}

/* Content-Length = 1*DIGIT, possibly a list of identical values (RFC 9110 8.6). *cl holds
 * the value of earlier fields or -1. Returns false on bad syntax, overflow or disagreement. */
static bool parse_content_length(const char *v, size_t n, int64_t *cl)
{
    const char *p = v, *end = v + n, *e;
    size_t elen;
    while (bg_h1_list_next(&p, end, &e, &elen)) {
        if (elen == 0)
            return false;
        int64_t x = 0;
        for (size_t i = 0; i < elen; i++) {
            unsigned d = (unsigned char)e[i] - '0';
            if (d > 9)
                return false;
            if (x > (INT64_MAX - (int64_t)d) / 10)
                return false;
            x = x * 10 + (int64_t)d;
        }
        if (*cl >= 0 && *cl != x)
            return false;
        *cl = x;
    }
    return true;
}

/* Transfer-Encoding codings seen so far across all TE fields of a message. */
typedef struct {
    bool present;
    bool invalid;
    bool last_chunked;
    unsigned chunked;  /* how many times chunked was listed */
    unsigned codings;  /* non-empty elements */
} te_state_t;

static void parse_te(te_state_t *t, const char *v, size_t n)
{
    const char *p = v, *end = v + n, *e;
    size_t elen;
    t->present = true;
    while (bg_h1_list_next(&p, end, &e, &elen)) {
        if (elen == 0)
            continue; /* empty list elements are ignored (RFC 9110 5.6.1) */
        t->codings++;
        if (BG_NAME_IS(e, elen, "chunked")) {
            t->chunked++;
            t->last_chunked = true;
            continue;
        }
        t->last_chunked = false;
        /* transfer-coding = token *( OWS ";" OWS transfer-parameter ): the name must be a token */
        size_t i = 0;
        while (i < elen && IS(e[i], C_TCHAR))
            i++;
        if (i == 0 || (i < elen && e[i] != ';' && e[i] != ' ' && e[i] != '\t'))
            t->invalid = true;
    }
}

/* Connection options: close / keep-alive. Returns false when an option is not a token, or, in a
 * request, names Content-Type or Content-Encoding: the body is classified as they describe it,
 * and dropping them at this hop would hand the vendor a body it reads another way. */
static bool parse_connection(const char *v, size_t n, bool request, bool *close, bool *keep_alive)
{
    const char *p = v, *end = v + n, *e;
    size_t elen;
    while (bg_h1_list_next(&p, end, &e, &elen)) {
        if (elen == 0)
            continue;
        if (!is_token(e, elen))
            return false;
        if (request && (BG_NAME_IS(e, elen, "content-type") || BG_NAME_IS(e, elen, "content-encoding")))
            return false;
        if (BG_NAME_IS(e, elen, "close"))
            *close = true;
        else if (BG_NAME_IS(e, elen, "keep-alive"))
            *keep_alive = true;
    }
    return true;
}

/* Two hex digits after a '%' at s[0]; s[1], s[2] must be readable. */
static inline bool pct_ok(const char *s) { return IS(s[1], C_HEX) && IS(s[2], C_HEX); }

/* A byte of a host name the gateway routes: letters, digits, '-', '.', and '_' (which config.c
 * allows in vendor hosts). Narrower than RFC 3986's reg-name on purpose: its sub-delims
 * (",;'!$&()*+=") and percent-encoding name no DNS host, and such a Host must not match a
 * wildcard vendor ("a,b.example.com" against "*.example.com"). */
static inline bool dns_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

/*
 * authority = host [ ":" port ] without userinfo (RFC 9110 4.2, RFC 3986 3.2). host is an
 * IP-literal ("[" IPv6 "]") or a non-empty DNS name/IPv4 (dns_char); port is 1-5 digits <= 65535.
 */
static bool authority_ok(const char *s, size_t n, bool need_port)
{
    size_t i = 0;
    if (n == 0)
        return false;
    if (s[0] == '[') {
        bool colon = false;
        for (i = 1; i < n && s[i] != ']'; i++) {
            if (s[i] == ':')
                colon = true;
            else if (!IS(s[i], C_HEX) && s[i] != '.')
                return false;
        }
        if (i == n || !colon)
            return false;
        i++;
    } else {
        while (i < n && s[i] != ':') {
            if (!dns_char(s[i]))
                return false;
            i++;
        }
        if (i == 0)
            return false;
    }
    if (i == n)
        return !need_port;
    if (s[i] != ':')
        return false;
    i++;
    if (i == n || n - i > 5)
        return false;
    unsigned port = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return false;
        port = port * 10 + d;
    }
    return port <= 65535;
}

bool bg_h1_authority_valid(const char *s, size_t n) { return authority_ok(s, n, false); }

bool bg_h1_target_valid(const char *method, size_t method_len, const char *t, size_t n)
{
    if (n == 1 && t[0] == '*')
        return method_len == 7 && memcmp(method, "OPTIONS", 7) == 0;
    if (n == 0 || t[0] != '/')
        return false;
    for (size_t i = 0; i < n;) {
        if (IS(t[i], C_URI)) {
            i++;
        } else if (t[i] == '%' && n - i >= 3 && pct_ok(t + i)) {
            i += 3;
        } else {
            return false;
        }
    }
    return true;
}

const char *bg_h1_content_fields_ambiguous(const bg_header_t *h, size_t n)
{
    unsigned ct = 0, ce = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == 12 && bg_lit_ieq(h[i].name, "content-type", 12))
            ct++;
        else if (h[i].name_len == 16 && bg_lit_ieq(h[i].name, "content-encoding", 16))
            ce++;
    }
    if (ct > 1)
        return "more than one Content-Type field";
    if (ce > 1)
        return "more than one Content-Encoding field";
    return NULL;
}

static int req_fail(bg_h1_request_t *req, int status, const char *error)
{
    req->status = status;
    req->error = error;
    return BG_H1_ERROR;
}

/* "HTTP/" DIGIT "." DIGIT at p (partial-aware). Returns 1 and sets major/minor, 0 if more
 * input is needed, -1 on bad syntax. */
static int parse_version(const char **pp, const char *end, int *major, int *minor)
{
    static const char proto[] = "HTTP/";
    const char *p = *pp;
    for (int i = 0; i < 5; i++, p++) {
        if (p == end)
            return 0;
        if (*p != proto[i])
            return -1;
    }
    if (p == end)
        return 0;
    if ((unsigned)(*p - '0') > 9)
        return -1;
    *major = *p++ - '0';
    if (p == end)
        return 0;
    if (*p++ != '.')
        return -1;
    if (p == end)
        return 0;
    if ((unsigned)(*p - '0') > 9)
        return -1;
    *minor = *p++ - '0';
    *pp = p;
    return 1;
}

/* Classify and check the request-target; sets host/path for absolute-form. 0 or a status. */
static int check_target(bg_h1_request_t *req)
{
    const char *t = req->target;
    size_t n = req->target_len;
    bool connect = req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0;

    if (connect) {
        /* authority-form, and only here (RFC 9112 3.2.3); the data plane answers 405 */
        if (!authority_ok(t, n, true)) {
            req->error = "CONNECT needs an authority-form target";
            return 400;
        }
        req->host = t;
        req->host_len = n;
        req->path = t + n;
        req->path_len = 0;
        return 0;
    }
    if (t[0] == '/') {
        req->path = t;
        req->path_len = n;
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (!(req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0)) {
            req->error = "asterisk-form is only for OPTIONS";
            return 400;
        }
        req->path = t;
        req->path_len = 1;
        return 0;
    }
    /* absolute-form: http or https only, with an authority */
    size_t s;
    if (n > 7 && bg_lit_ieq(t, "http://", 7))
        s = 7;
    else if (n > 8 && bg_lit_ieq(t, "https://", 8))
        s = 8;
    else {
        req->error = "unsupported request-target form or scheme";
        return 400;
    }
    size_t a = s;
    while (a < n && t[a] != '/' && t[a] != '?')
        a++;
    if (memchr(t + s, '@', a - s)) {
        req->error = "userinfo in request-target";
        return 400;
    }
    if (!authority_ok(t + s, a - s, false)) {
        req->error = "invalid authority in request-target";
        return 400;
    }
    req->absolute_form = true;
    req->host = t + s;
    req->host_len = a - s;
    if (a == n) {
        /* An empty path: "/", but an OPTIONS about the server as a whole, "*" (RFC 9112 3.2.4:
         * the last proxy sends the asterisk-form). */
        bool options = req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0;
        req->path = options ? "*" : "/";
        req->path_len = 1;
    } else {
        req->path = t + a; /* starts with '/' or, for "http://h?q", with '?' */
        req->path_len = n - a;
    }
    return 0;
}

int bg_h1_parse_request(const char *buf, size_t len, const bg_h1_limits_t *limits, bg_h1_request_t *req)
{
    size_t max_bytes = limits && limits->max_header_bytes ? limits->max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
    size_t max_headers = limits && limits->max_headers ? limits->max_headers : DEFAULT_MAX_HEADERS;
    size_t max_uri = limits && limits->max_uri ? limits->max_uri : DEFAULT_MAX_URI;
    if (max_headers > BG_H1_MAX_HEADERS)
        max_headers = BG_H1_MAX_HEADERS;

    req->method = buf;
    req->method_len = 0;
    req->target = buf;
    req->target_len = 0;
    req->minor_version = 1; /* errors before the version is known are answered in HTTP/1.1 */
    req->nheaders = 0;
    req->host = NULL;
    req->host_len = 0;
    req->path = NULL;
    req->path_len = 0;
    req->absolute_form = false;
    req->chunked = false;
    req->content_length = -1;
    req->keep_alive = false;
    req->expect_continue = false;
    req->upgrade = false;
    req->status = 0;
    req->error = NULL;

    /* Never look past the head limit: running out of bytes there means 431, not partial. */
    bool clamped = len > max_bytes;
    const char *p = buf, *end = buf + (clamped ? max_bytes : len);

    /* At least one empty line before the request-line is ignored (RFC 9112 2.2). */
    while (p < end && *p == '\r') {
        if (p + 1 == end)
            goto more;
        if (p[1] != '\n')
            return req_fail(req, 400, "bare CR before request-line");
        p += 2;
    }

    /* method SP */
    req->method = p;
    while (p < end && IS(*p, C_TCHAR))
        ++p;
    if (p == end)
        goto more;
    if (*p != ' ' || p == req->method)
        return req_fail(req, 400, "invalid method");
    req->method_len = (size_t)(p - req->method);
    ++p;

    /* request-target SP; decided 414 as soon as it is longer than max_uri */
    req->target = p;
    {
        const char *lim = (size_t)(end - p) > max_uri ? p + max_uri + 1 : end;
        for (;;) {
            while (p < lim && IS(*p, C_URI))
                ++p;
            if (p < lim && *p == '%') {
                if (end - p < 3) {
                    if ((end - p >= 2 && !IS(p[1], C_HEX)))
                        return req_fail(req, 400, "bad percent-encoding in request-target");
                    p = end;
                    break;
                }
                if (!pct_ok(p))
                    return req_fail(req, 400, "bad percent-encoding in request-target");
                p += 3;
                continue;
            }
            break;
        }
        if ((size_t)(p - req->target) > max_uri)
            return req_fail(req, 414, "request-target too long");
        if (p == end)
            goto more;
    }
    if (*p != ' ') {
        if (*p == '\r' || *p == '\n')
            return req_fail(req, 400, "request-line without HTTP version");
        if (*p == '#')
            return req_fail(req, 400, "fragment in request-target");
        return req_fail(req, 400, "invalid character in request-target");
    }
    if (p == req->target)
        return req_fail(req, 400, "empty request-target");
    req->target_len = (size_t)(p - req->target);
    ++p;

    /* HTTP-version CRLF */
    int major = 0, minor = 0;
    switch (parse_version(&p, end, &major, &minor)) {
    case 0:
        goto more;
    case -1:
        return req_fail(req, 400, "invalid HTTP version");
    }
    if (p == end)
        goto more;
    if (*p != '\r')
        return req_fail(req, 400, "invalid request-line ending");
    if (++p == end)
        goto more;
    if (*p != '\n')
        return req_fail(req, 400, "bare CR in request-line");
    ++p;
    if (major != 1 || minor > 1)
        return req_fail(req, 505, "HTTP version not supported");
    req->minor_version = minor;

    /* field lines */
    h1_fail_t f;
    p = parse_fields(p, end, req->headers, &req->nheaders, max_headers, &f);
    if (!p) {
        if (f.status)
            return req_fail(req, f.status, f.error);
        goto more;
    }

    int st = check_target(req);
    if (st)
        return req_fail(req, st, req->error);

    /* Semantics of the fields that frame and route the message. */
    const bg_header_t *host = NULL;
    unsigned nhost = 0;
    bool conn_close = false, conn_ka = false, cl_seen = false;
    te_state_t te = {0};
    for (size_t i = 0; i < req->nheaders; i++) {
        const bg_header_t *h = &req->headers[i];
        switch (h->name_len) {
        case 4:
            if (bg_lit_ieq(h->name, "host", 4)) {
                host = h;
                nhost++;
            }
            break;
        case 6:
            if (bg_lit_ieq(h->name, "expect", 6)) {
                const char *lp = h->value, *lend = h->value + h->value_len, *e;
                size_t elen;
                while (bg_h1_list_next(&lp, lend, &e, &elen)) {
                    if (elen == 0)
                        continue;
                    if (!BG_NAME_IS(e, elen, "100-continue"))
                        return req_fail(req, 417, "unsupported expectation");
                    /* an HTTP/1.0 100-continue expectation is ignored (RFC 9110 10.1.1) */
                    req->expect_continue = minor == 1;
                }
            }
            break;
        case 7:
            if (bg_lit_ieq(h->name, "upgrade", 7))
                req->upgrade = true;
            break;
        case 10:
            if (bg_lit_ieq(h->name, "connection", 10) &&
                !parse_connection(h->value, h->value_len, true, &conn_close, &conn_ka))
                return req_fail(req, 400, "invalid Connection option");
            break;
        case 14:
            if (bg_lit_ieq(h->name, "content-length", 14)) {
                cl_seen = true;
                if (!parse_content_length(h->value, h->value_len, &req->content_length))
                    return req_fail(req, 400, "invalid Content-Length");
            }
            break;
        case 17:
            if (bg_lit_ieq(h->name, "transfer-encoding", 17))
                parse_te(&te, h->value, h->value_len);
            break;
        }
    }

    if (nhost > 1)
        return req_fail(req, 400, "more than one Host header");
    /* The body is classified as its content fields describe it: they must say one thing. */
    const char *amb = bg_h1_content_fields_ambiguous(req->headers, req->nheaders);
    if (amb)
        return req_fail(req, 400, amb);
    if (nhost == 0 && minor == 1)
        return req_fail(req, 400, "missing Host header");
    if (host && host->value_len && !authority_ok(host->value, host->value_len, false))
        return req_fail(req, 400, "invalid Host header");
    if (!req->host && host) {
        req->host = host->value;
        req->host_len = host->value_len;
    }
    if (!req->host)
        req->host = "";

    if (te.present) {
        if (minor == 0)
            return req_fail(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (cl_seen)
            return req_fail(req, 400, "both Transfer-Encoding and Content-Length");
        if (te.invalid || !te.last_chunked || te.chunked != 1)
            return req_fail(req, 400, "chunked is not the final transfer coding");
        if (te.codings != 1)
            return req_fail(req, 501, "unsupported transfer coding");
        req->chunked = true;
    }

    req->keep_alive = !conn_close && (minor == 1 || conn_ka);
    return (int)(p - buf);

more:
    if (clamped)
        return req_fail(req, 431, "request header section too large");
    return BG_H1_PARTIAL;
}

static int resp_fail(bg_h1_response_t *resp, const char *error)
{
    resp->error = error;
    return BG_H1_ERROR;
}

int bg_h1_parse_response(const char *buf, size_t len, bool head_request, bg_h1_response_t *resp)
{
    resp->minor_version = 1;
    resp->nheaders = 0;
    resp->reason = NULL;
    resp->reason_len = 0;
    resp->chunked = false;
    resp->content_length = -1;
    resp->keep_alive = false;
    resp->close_delimited = false;
    resp->error = NULL;
    resp->status = 0;

    bool clamped = len > RESPONSE_MAX_HEAD;
    const char *p = buf, *end = buf + (clamped ? RESPONSE_MAX_HEAD : len);

    int major = 0, minor = 0;
    switch (parse_version(&p, end, &major, &minor)) {
    case 0:
        goto more;
    case -1:
        return resp_fail(resp, "invalid status-line");
    }
    if (major != 1 || minor > 1)
        return resp_fail(resp, "unsupported HTTP version in response");
    resp->minor_version = minor;

    /* SP 3DIGIT */
    int status = 0;
    for (int i = 0; i < 4; i++, p++) {
        if (p == end)
            goto more;
        if (i == 0) {
            if (*p != ' ')
                return resp_fail(resp, "invalid status-line");
            continue;
        }
        unsigned d = (unsigned char)*p - '0';
        if (d > 9)
            return resp_fail(resp, "invalid status code");
        status = status * 10 + (int)d;
    }
    if (status < 100 || status > 599)
        return resp_fail(resp, "status code out of range");
    resp->status = status;

    /* [SP reason-phrase] CRLF; the SP before an empty reason is tolerated missing */
    if (p == end)
        goto more;
    if (*p == ' ') {
        ++p;
        resp->reason = p;
        while (p < end && IS(*p, C_FVAL))
            ++p;
        if (p == end)
            goto more;
        resp->reason_len = (size_t)(p - resp->reason);
    } else {
        resp->reason = p;
    }
    if (*p != '\r')
        return resp_fail(resp, "invalid character in status-line");
    if (++p == end)
        goto more;
    if (*p != '\n')
        return resp_fail(resp, "bare CR in status-line");
    ++p;

    h1_fail_t f;
    p = parse_fields(p, end, resp->headers, &resp->nheaders, BG_H1_MAX_HEADERS, &f);
    if (!p) {
        if (f.status)
            return resp_fail(resp, f.error);
        goto more;
    }

    bool conn_close = false, conn_ka = false, cl_seen = false;
    te_state_t te = {0};
    for (size_t i = 0; i < resp->nheaders; i++) {
        const bg_header_t *h = &resp->headers[i];
        switch (h->name_len) {
        case 10:
            if (bg_lit_ieq(h->name, "connection", 10) &&
                !parse_connection(h->value, h->value_len, false, &conn_close, &conn_ka))
                return resp_fail(resp, "invalid Connection option in response");
            break;
        case 14:
            if (bg_lit_ieq(h->name, "content-length", 14)) {
                cl_seen = true;
                if (!parse_content_length(h->value, h->value_len, &resp->content_length))
                    return resp_fail(resp, "invalid Content-Length in response");
            }
            break;
        case 17:
            if (bg_lit_ieq(h->name, "transfer-encoding", 17))
                parse_te(&te, h->value, h->value_len);
            break;
        }
    }

    /* A server MUST NOT send Content-Length or Transfer-Encoding in a 1xx or 204 (RFC 9110 8.6,
     * RFC 9112 6.1): one that does frames its answer two ways (a recipient that reads the length
     * takes the next response for this one's body), so it is refused rather than guessed at.
     * "Content-Length: 0" says the same as no body and is let through. */
    if ((status < 200 || status == 204) && (te.present || resp->content_length > 0))
        return resp_fail(resp, "message body framing in a 1xx or 204 response");
    if (te.present) {
        if (minor == 0)
            return resp_fail(resp, "Transfer-Encoding in an HTTP/1.0 response");
        if (cl_seen)
            return resp_fail(resp, "both Transfer-Encoding and Content-Length in response");
        /* we relay bodies re-framed, so only chunked alone can be decoded */
        if (te.invalid || te.codings != 1 || te.chunked != 1)
            return resp_fail(resp, "unsupported transfer coding in response");
    }

    resp->keep_alive = !conn_close && (minor == 1 || conn_ka);
    if (head_request || status < 200 || status == 204 || status == 304) {
        /* no body whatever the fields say (RFC 9112 6.3 p1) */
        resp->content_length = 0;
    } else if (te.present) {
        resp->chunked = true;
        resp->content_length = -1;
    } else if (resp->content_length < 0) {
        resp->close_delimited = true;
        resp->keep_alive = false;
    }
    return (int)(p - buf);

more:
    if (clamped)
        return resp_fail(resp, "response header section too large");
    return BG_H1_PARTIAL;
}

/* Chunked decoder states (private to bg_h1_chunked_t.state). */
enum {
    CH_SIZE0 = 0,    /* first hex digit of chunk-size */
    CH_SIZE,         /* more hex digits, ';', BWS or CR */
    CH_BWS_SEMI,     /* BWS that must be followed by ';' */
    CH_EXT_NAME0,    /* after ';': BWS then the first tchar of a name */
    CH_EXT_NAME,     /* name tchars, '=', ';', BWS or CR */
    CH_EXT_NAME_WS,  /* BWS after a name: '=' or ';' must follow */
    CH_EXT_VAL0,     /* after '=': BWS then token or quoted-string */
    CH_EXT_VAL_TOK,  /* token value */
    CH_EXT_VAL_Q,    /* inside a quoted-string */
    CH_EXT_VAL_QESC, /* after a backslash in a quoted-string */
    CH_EXT_AFTER,    /* after a value: BWS, ';' or CR */
    CH_SIZE_LF,      /* LF ending the size line */
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER0,     /* start of a trailer line or the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,
    CH_DONE,
};

void bg_h1_chunked_init(bg_h1_chunked_t *d) { memset(d, 0, sizeof *d); }

int bg_h1_chunked_decode(bg_h1_chunked_t *d, char *buf, size_t len, size_t *consumed, size_t *out_len)
{
    size_t r = 0, w = 0;
    int rc = 0;

    while (r < len && d->state != CH_DONE) {
        if (d->state == CH_DATA) {
            size_t n = len - r;
            if (n > d->remaining)
                n = (size_t)d->remaining;
            if (w != r)
                memmove(buf + w, buf + r, n);
            w += n;
            r += n;
            d->remaining -= n;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            continue;
        }
        unsigned char c = (unsigned char)buf[r++];
        if (d->state < CH_DATA) {
            if (++d->line_len > CHUNK_LINE_MAX)
                goto fail;
        } else if (d->state >= CH_TRAILER0) {
            /* Keep the field lines (not the final CRLF) for a caller that relays them. */
            bool field = d->state <= CH_TRAILER_LF && !(d->state == CH_TRAILER0 && c == '\r');
            if (!d->trailers_max) {
                if (++d->trailer_bytes > CHUNK_TRAILER_MAX)
                    goto fail;
                if (d->trailers && field && d->trailers_len < d->trailers_cap)
                    d->trailers[d->trailers_len++] = (char)c;
            } else {
                /* The caller's bound: line_len (unused past the size lines) counts the field
                 * line bytes within it; beyond, the section is read on without keeping any. */
                uint32_t max = d->trailers_max < BG_H1_TRAILER_KEEP_MAX ? d->trailers_max : BG_H1_TRAILER_KEEP_MAX;
                if (field && !d->trailers_over && d->line_len >= max)
                    d->trailers_over = true;
                if (field && !d->trailers_over) {
                    if (d->trailers && d->trailers_len == d->trailers_cap) {
                        d->trailers_full = true; /* the caller gives more room and calls again */
                        r--;
                        goto out;
                    }
                    if (d->trailers)
                        d->trailers[d->trailers_len++] = (char)c;
                    d->line_len++;
                }
                if (++d->trailer_bytes > 2u * BG_H1_TRAILER_KEEP_MAX) {
                    d->trailers_over = true;
                    goto fail;
                }
            }
        }
        switch (d->state) {
        case CH_SIZE0:
        case CH_SIZE:
            if (IS(c, C_HEX)) {
                unsigned v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
                if (d->remaining > (UINT64_C(0x7fffffffffffffff) - v) >> 4)
                    goto fail; /* beyond INT64_MAX: refuse rather than wrap */
                d->remaining = (d->remaining << 4) | v;
                d->state = CH_SIZE;
            } else if (d->state == CH_SIZE0) {
                goto fail;
            } else if (c == ';') {
                d->state = CH_EXT_NAME0;
            } else if (c == ' ' || c == '\t') {
                d->state = CH_BWS_SEMI;
            } else if (c == '\r') {
                d->state = CH_SIZE_LF;
            } else {
                goto fail;
            }
            break;
        case CH_BWS_SEMI:
            if (c == ';')
                d->state = CH_EXT_NAME0;
            else if (c != ' ' && c != '\t')
                goto fail;
            break;
        case CH_EXT_NAME0:
            if (IS(c, C_TCHAR))
                d->state = CH_EXT_NAME;
            else if (c != ' ' && c != '\t')
                goto fail;
            break;
        case CH_EXT_NAME:
            if (IS(c, C_TCHAR))
                break;
            if (c == '=')
                d->state = CH_EXT_VAL0;
            else if (c == ';')
                d->state = CH_EXT_NAME0;
            else if (c == ' ' || c == '\t')
                d->state = CH_EXT_NAME_WS;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else
                goto fail;
            break;
        case CH_EXT_NAME_WS:
            if (c == '=')
                d->state = CH_EXT_VAL0;
            else if (c == ';')
                d->state = CH_EXT_NAME0;
            else if (c != ' ' && c != '\t')
                goto fail;
            break;
        case CH_EXT_VAL0:
            if (IS(c, C_TCHAR))
                d->state = CH_EXT_VAL_TOK;
            else if (c == '"')
                d->state = CH_EXT_VAL_Q;
            else if (c != ' ' && c != '\t')
                goto fail;
            break;
        case CH_EXT_VAL_Q:
            if (c == '"')
                d->state = CH_EXT_AFTER;
            else if (c == '\\')
                d->state = CH_EXT_VAL_QESC;
            else if (!IS(c, C_QD))
                goto fail;
            break;
        case CH_EXT_VAL_QESC:
            if (!IS(c, C_FVAL)) /* HTAB / SP / VCHAR / obs-text */
                goto fail;
            d->state = CH_EXT_VAL_Q;
            break;
        case CH_EXT_VAL_TOK:
            if (IS(c, C_TCHAR))
                break;
            /* fall through */
        case CH_EXT_AFTER:
            if (c == ';')
                d->state = CH_EXT_NAME0;
            else if (c == ' ' || c == '\t')
                d->state = CH_BWS_SEMI;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else
                goto fail;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                goto fail;
            d->line_len = 0;
            d->state = d->remaining ? CH_DATA : CH_TRAILER0;
            break;
        case CH_DATA_CR:
            if (c != '\r')
                goto fail;
            d->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                goto fail;
            d->state = CH_SIZE0;
            break;
        case CH_TRAILER0:
            if (c == '\r')
                d->state = CH_END_LF;
            else if (IS(c, C_TCHAR))
                d->state = CH_TRAILER_NAME;
            else
                goto fail; /* obs-fold, whitespace, bare LF, bad name */
            break;
        case CH_TRAILER_NAME:
            if (c == ':')
                d->state = CH_TRAILER_VALUE;
            else if (!IS(c, C_TCHAR))
                goto fail;
            break;
        case CH_TRAILER_VALUE:
            if (c == '\r')
                d->state = CH_TRAILER_LF;
            else if (!IS(c, C_FVAL))
                goto fail;
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                goto fail;
            d->state = CH_TRAILER0;
            break;
        case CH_END_LF:
            if (c != '\n')
                goto fail;
            d->state = CH_DONE;
            d->done = true;
            break;
        default:
            goto fail;
        }
    }
    goto out;

fail:
    rc = BG_H1_ERROR;
out:
    *consumed = r;
    *out_len = w;
    return rc;
}

int bg_h1_split_fields(const char *buf, size_t len, bg_header_t *out, size_t max)
{
    size_t n = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        const char *le = eol ? eol : end;
        if (le > p && le[-1] == '\r')
            le--;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && colon > p) {
            if (n == max)
                return -1;
            const char *v = colon + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            out[n++] = (bg_header_t){p, (size_t)(colon - p), v, (size_t)(ve - v)};
        }
        p = next;
    }
    return (int)n;
}

/* Fields a trailer section must not carry (RFC 9110 6.5.1: "a sender MUST NOT generate a
 * trailer field unless [it] knows the corresponding header field name's definition permits
 * the field to be sent in trailers"; recipients process trailers after the content, so
 * anything needed to frame, route, authenticate or interpret the content is refused). */
static const char *const trailer_forbidden[] = {
    "content-length", "transfer-encoding",                 /* framing (RFC 9112 6, 9110 8.6) */
    "host",                                                /* routing (RFC 9110 7.2) */
    "authorization", "www-authenticate", "authentication-info", /* authentication (RFC 9110 11) */
    "cookie", "set-cookie",                                /* state (RFC 6265): a late cookie is never applied */
    "content-type", "content-encoding", "content-range",   /* needed to process the content (RFC 9110 8) */
    "content-language", "content-location", "digest", "content-digest", "repr-digest",
    "cache-control", "expires", "age", "pragma", "vary",   /* caching (RFC 9111): decided at the head */
    "expect", "max-forwards", "range", "if-match", "if-none-match", /* request controls (RFC 9110 10.1, 13) */
    "if-modified-since", "if-unmodified-since", "if-range",
    "date", "location", "retry-after", "set-cookie2",      /* response controls (RFC 9110 10.2) */
    "via", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", /* the gateway's own */
    "x-transfer-id",
};

bool bg_h1_trailer_allowed(const char *name, size_t len)
{
    if (len == 0 || name[0] == ':')
        return false; /* pseudo-fields never travel in trailers (RFC 9113 8.1) */
    /* Hop-by-hop fields (Connection, TE, Trailer, Upgrade, Proxy-*) end at the hop (RFC 9110 7.6.1). */
    if (bg_h1_is_hop_by_hop(name, len, NULL, 0))
        return false;
    if (len > 6 && bg_lit_ieq(name, "proxy-", 6))
        return false;
    for (size_t i = 0; i < sizeof trailer_forbidden / sizeof trailer_forbidden[0]; i++)
        if (strlen(trailer_forbidden[i]) == len && bg_lit_ieq(name, trailer_forbidden[i], len))
            return false;
    return true;
}

bool bg_h1_is_hop_by_hop(const char *name, size_t len, const char *connection, size_t connection_len)
{
    switch (len) {
    case 2:
        if (bg_lit_ieq(name, "te", len))
            return true;
        break;
    case 7:
        if (bg_lit_ieq(name, "trailer", len) || bg_lit_ieq(name, "upgrade", len))
            return true;
        break;
    case 10:
        if (bg_lit_ieq(name, "connection", len) || bg_lit_ieq(name, "keep-alive", len))
            return true;
        break;
    case 16:
        if (bg_lit_ieq(name, "proxy-connection", len))
            return true;
        break;
    case 17:
        if (bg_lit_ieq(name, "transfer-encoding", len))
            return true;
        break;
    case 18:
        if (bg_lit_ieq(name, "proxy-authenticate", len))
            return true;
        break;
    case 19:
        if (bg_lit_ieq(name, "proxy-authorization", len))
            return true;
        break;
    }
    if (connection) {
        const char *p = connection, *end = connection + connection_len, *e;
        size_t elen;
        while (bg_h1_list_next(&p, end, &e, &elen))
            if (elen && bg_span_ieq2(e, elen, name, len))
                return true;
    }
    return false;
}

const char *bg_h1_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: break;
    }
    if (status >= 100 && status < 200)
        return "Informational";
    if (status >= 200 && status < 300)
        return "Success";
    if (status >= 300 && status < 400)
        return "Redirection";
    if (status >= 400 && status < 500)
        return "Client Error";
    return "Server Error";
}
