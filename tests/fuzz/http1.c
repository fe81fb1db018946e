/*
 * tests/fuzz/http1.c — libFuzzer target for proxy/http1.c. The first byte picks a mode:
 * request head, response head (GET or HEAD), or chunked body. Beyond "no crash, no
 * over-read" it checks invariants: a parsed head's every strict prefix is partial and
 * parses the same on re-parse; chunked decoding gives the same bytes and the same verdict
 * whether fed at once or byte by byte; spans stay inside the input. Single-threaded.
 */
#include "http1.h"

#include <stdlib.h>
#include <string.h>

static void must(int cond)
{
    if (!cond)
        abort();
}

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return n == 0 || (p >= buf && p + n <= buf + len);
}

static void fuzz_request(const char *buf, size_t len, int variant)
{
    static bg_h1_request_t req, req2;
    bg_h1_limits_t lim = {.max_header_bytes = variant ? 256 : 16384, .max_headers = variant ? 8 : 100,
                          .max_uri = variant ? 64 : 8192};
    int rc = bg_h1_parse_request(buf, len, &lim, &req);
    if (rc == BG_H1_ERROR) {
        must(req.status >= 400 && req.status <= 505 && req.error != NULL);
        return;
    }
    if (rc == BG_H1_PARTIAL)
        return;
    must(rc > 0 && (size_t)rc <= len);
    must(req.nheaders <= lim.max_headers);
    must(inside(req.method, req.method_len, buf, len) && req.method_len > 0);
    must(inside(req.target, req.target_len, buf, len) && req.target_len > 0 && req.target_len <= lim.max_uri);
    must(req.host != NULL && req.path != NULL);
    must(req.minor_version == 0 || req.minor_version == 1);
    must(!(req.chunked && req.content_length >= 0));
    for (size_t i = 0; i < req.nheaders; i++) {
        must(inside(req.headers[i].name, req.headers[i].name_len, buf, len) && req.headers[i].name_len > 0);
        must(inside(req.headers[i].value, req.headers[i].value_len, buf, len));
        for (size_t j = 0; j < req.headers[i].value_len; j++)
            must(req.headers[i].value[j] != '\r' && req.headers[i].value[j] != '\n' && req.headers[i].value[j]);
    }
    /* every strict prefix of an accepted head is partial (on a right-sized copy: ASan sees over-reads) */
    for (size_t cut = (size_t)rc; cut-- > 0;) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        int r2 = bg_h1_parse_request(copy, cut, &lim, &req2);
        free(copy);
        must(r2 == BG_H1_PARTIAL);
        if ((size_t)rc - cut > 64 && cut > 64)
            cut -= cut / 8; /* sample long heads, keep the run fast */
    }
    must(bg_h1_parse_request(buf, (size_t)rc, &lim, &req2) == rc);
    must(req2.content_length == req.content_length && req2.chunked == req.chunked);
}

static void fuzz_response(const char *buf, size_t len, bool head)
{
    static bg_h1_response_t resp, resp2;
    int rc = bg_h1_parse_response(buf, len, head, &resp);
    if (rc == BG_H1_ERROR) {
        must(resp.error != NULL);
        return;
    }
    if (rc == BG_H1_PARTIAL)
        return;
    must(rc > 0 && (size_t)rc <= len);
    must(resp.status >= 100 && resp.status <= 599);
    must((int)resp.chunked + (int)resp.close_delimited + (int)(resp.content_length >= 0) == 1);
    must(!resp.close_delimited || !resp.keep_alive);
    char *copy = malloc((size_t)rc);
    memcpy(copy, buf, (size_t)rc);
    must(bg_h1_parse_response(copy, (size_t)rc - 1, head, &resp2) == BG_H1_PARTIAL);
    must(bg_h1_parse_response(copy, (size_t)rc, head, &resp2) == rc);
    free(copy);
}

static void fuzz_chunked(const char *data, size_t len)
{
    char *a = malloc(len ? len : 1), *b = malloc(len ? len : 1);
    memcpy(a, data, len);
    bg_h1_chunked_t d1, d2;
    bg_h1_chunked_init(&d1);
    bg_h1_chunked_init(&d2);
    size_t used1 = 0, out1 = 0;
    int rc1 = bg_h1_chunked_decode(&d1, a, len, &used1, &out1);
    must(used1 <= len && out1 <= used1);

    /* byte at a time, collecting the data */
    size_t used2 = 0, out2 = 0;
    int rc2 = 0;
    for (size_t i = 0; i < len && !d2.done; i++) {
        char c = data[i];
        size_t u = 0, o = 0;
        rc2 = bg_h1_chunked_decode(&d2, &c, 1, &u, &o);
        must(u <= 1 && o <= u);
        if (o)
            b[out2++] = c;
        used2 += u;
        if (rc2)
            break;
    }
    must(rc1 == rc2);
    must(d1.done == d2.done);
    if (rc1 == 0) {
        must(used1 == used2);
        must(out1 == out2 && memcmp(a, b, out1) == 0);
    }
    free(a);
    free(b);
}

/* With the caller's bound on the trailer section (trailers_max, derived from the input's length
 * so both sides of it are met) and a trailer buffer grown whenever the decoder says it is full:
 * the same outcome whole and byte at a time, and never more kept than the bound. */
static void fuzz_chunked_bounded(const char *data, size_t len)
{
    uint32_t max = (uint32_t)(len * 7 % 300) + 1;
    int rc[2];
    bool done[2], over[2];
    size_t used[2];
    char *kept[2];
    uint32_t klen[2];
    for (int pass = 0; pass < 2; pass++) {
        char *in = malloc(len ? len : 1);
        memcpy(in, data, len);
        bg_h1_chunked_t d;
        bg_h1_chunked_init(&d);
        d.trailers_max = max;
        d.trailers = malloc(1);
        d.trailers_cap = 0;
        size_t pos = 0;
        int r = 0;
        while (pos < len && !d.done) {
            size_t take = pass ? 1 : len - pos, u = 0, o = 0;
            r = bg_h1_chunked_decode(&d, in + pos, take, &u, &o);
            must(u <= take && o <= u);
            pos += u;
            if (r)
                break;
            if (d.trailers_full) {
                must(d.trailers_len == d.trailers_cap && d.trailers_cap < max && u < take);
                d.trailers_cap = d.trailers_cap ? d.trailers_cap * 2 : 4;
                d.trailers = realloc(d.trailers, d.trailers_cap);
                d.trailers_full = false;
            } else {
                must(u == take || d.done);
            }
            must(d.trailers_len <= max);
        }
        rc[pass] = r, done[pass] = d.done, over[pass] = d.trailers_over, used[pass] = pos;
        kept[pass] = d.trailers, klen[pass] = d.trailers_len;
        free(in);
    }
    must(rc[0] == rc[1] && done[0] == done[1] && over[0] == over[1]);
    if (rc[0] == 0)
        must(used[0] == used[1] && klen[0] == klen[1] && memcmp(kept[0], kept[1], klen[0]) == 0);
    free(kept[0]);
    free(kept[1]);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 5;
    /* a right-sized heap copy so ASan catches any read past the end */
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    memcpy(buf, data + 1, len);
    switch (mode) {
    case 0:
    case 1:
        fuzz_request(buf, len, mode);
        break;
    case 2:
    case 3:
        fuzz_response(buf, len, mode == 3);
        break;
    case 4:
        fuzz_chunked(buf, len);
        fuzz_chunked_bounded(buf, len);
        break;
    }
    free(buf);
    return 0;
}
