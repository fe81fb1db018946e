/*
 * fuzz/classify.c — libFuzzer target for the classifier. The first input byte picks the body
 * kind and flags; the rest is split into a header block, a target and a body at 0xff bytes.
 * Checks invariants on every run: findings inside their buffers, no overlaps in one location,
 * counts consistent with findings. Single-threaded per process.
 */
#include "classify.h"
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The fuzz build links every proxy/ file except main.c, whose CLI helper the commands call. Weak,
 * so a build that links the real one keeps it. */
__attribute__((weak)) int bg_cli_usage_error(const char *cmd, const char *fmt, ...);
__attribute__((weak)) int bg_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    (void)cmd;
    (void)fmt;
    return 2;
}

static bg_classifier_t *clf;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!clf) {
        char err[128];
        clf = bg_classifier_create(NULL, err, sizeof err);
        if (!clf)
            abort();
    }
    if (size < 1)
        return 0;
    static const char *const cts[] = {"application/json", "application/x-www-form-urlencoded",
                                      "multipart/form-data; boundary=XyZ", "text/plain", "", "application/octet-stream",
                                      "application/json", "text/html"};
    uint8_t mode = data[0];
    data++, size--;
    /* Split: headers 0xff target 0xff body */
    const uint8_t *p1 = memchr(data, 0xff, size);
    size_t hlen = p1 ? (size_t)(p1 - data) : 0;
    const uint8_t *rest = p1 ? p1 + 1 : data;
    size_t rlen = p1 ? size - hlen - 1 : size;
    const uint8_t *p2 = memchr(rest, 0xff, rlen);
    size_t tlen = p2 ? (size_t)(p2 - rest) : 0;
    const uint8_t *body = p2 ? p2 + 1 : rest;
    size_t blen = p2 ? rlen - tlen - 1 : rlen;

    /* Copies so that reads past the end are caught by ASan. */
    char *hb = malloc(hlen + 1), *tb = malloc(tlen + 1), *bb = malloc(blen + 1);
    memcpy(hb, data, hlen);
    memcpy(tb, rest, tlen);
    memcpy(bb, body, blen);
    bg_header_t h[34];
    size_t nh = 0;
    const char *ct = cts[mode & 7];
    if (*ct)
        h[nh++] = (bg_header_t){"Content-Type", 12, ct, strlen(ct)};
    if (mode & 8)
        h[nh++] = (bg_header_t){"Content-Encoding", 16, (mode & 16) ? "gzip" : "deflate", (mode & 16) ? 4 : 7};
    for (size_t i = 0; i < hlen && nh < 34;) {
        const char *nl = memchr(hb + i, '\n', hlen - i);
        size_t e = nl ? (size_t)(nl - hb) : hlen;
        const char *colon = memchr(hb + i, ':', e - i);
        if (colon) {
            h[nh].name = hb + i;
            h[nh].name_len = (size_t)(colon - hb) - i;
            h[nh].value = colon + 1;
            h[nh].value_len = e - (size_t)(colon - hb) - 1;
            nh++;
        }
        i = e + 1;
    }
    bg_classify_input_t in = {h, nh, tb, tlen, bb, blen, (mode & 32) != 0, (mode & 64) != 0, 1u << 20,
                              (mode & 128) != 0};
    bg_classification_t r;
    bg_classification_init(&r, clf);
    if (bg_classify(clf, &in, &r) != 0)
        abort();
    size_t total = 0;
    for (unsigned d = 0; d < bg_classifier_ndetectors(clf); d++)
        total += r.counts[d];
    if (!r.findings_truncated && total != r.nfindings)
        abort();
    const char *bodybuf = r.body_inflated ? r.inflated.data : bb;
    size_t bodylen = r.body_inflated ? r.inflated.len : blen;
    for (size_t i = 0; i < r.nfindings; i++) {
        const bg_finding_t *f = &r.findings[i];
        size_t lim = f->where == BG_WHERE_HEADER ? h[f->header].value_len
                     : f->where == BG_WHERE_BODY ? bodylen
                                                 : tlen;
        if (f->length == 0 || (size_t)f->offset + f->length > lim)
            abort();
        if (f->where == BG_WHERE_BODY && bodybuf == NULL)
            abort();
        for (size_t k = 0; k < i; k++) {
            const bg_finding_t *g = &r.findings[k];
            if (g->where == f->where && g->header == f->header && f->offset < g->offset + g->length &&
                g->offset < f->offset + f->length)
                abort();
        }
    }
    bg_classification_dispose(&r);

    /* The tokenizer on its own, over the raw input. */
    bg_json_t j;
    bg_json_token_t t;
    bg_json_init(&j, (const char *)data, size, 0);
    int rc;
    while ((rc = bg_json_next(&j, &t)) > 0) {
        if ((size_t)t.start + t.len > size)
            abort();
        if (t.type == BG_JSON_STRING || t.type == BG_JSON_KEY) {
            char *out = malloc(t.len + 1);
            uint32_t *map = malloc((t.len + 1) * sizeof *map);
            size_t o = bg_json_unescape((const char *)data + t.start, t.len, out, map);
            if (o > t.len || map[o] != t.len)
                abort();
            free(out);
            free(map);
        }
    }
    free(hb);
    free(tb);
    free(bb);
    return 0;
}
