/*
 * json.c — see json.h. A pull tokenizer with an explicit state and a bounded container stack:
 * each call consumes whitespace and exactly one token. The tokenizer itself is json_core.h
 * (inline, so that the classifier's walk can inline it too); this file wraps it with the sticky
 * error state, and decodes string escapes. Pure, any thread.
 */
#include "json.h"
#include "json_core.h"
#include "util.h"

#include <string.h>

void bg_json_init(bg_json_t *j, const char *p, size_t n, unsigned max_depth)
{
    j->p = (const unsigned char *)p;
    j->n = n;
    j->pos = 0;
    j->depth = 0;
    j->max_depth = max_depth == 0 || max_depth > BG_JSON_MAX_DEPTH ? BG_JSON_MAX_DEPTH : max_depth;
    j->state = BGJ_S_VALUE;
    j->error = 0;
}

static inline int fail(bg_json_t *j, int e)
{
    j->error = e;
    return e;
}

int bg_json_next(bg_json_t *j, bg_json_token_t *tok)
{
    if (j->error)
        return j->error;
    size_t pos = j->pos;
    int state = j->state;
    unsigned depth = j->depth;
    int rc = bgj_next_token(j, &pos, &state, &depth, tok);
    j->pos = pos;
    j->state = state;
    j->depth = depth;
    return rc < 0 ? fail(j, rc) : rc;
}

static int hex4(const unsigned char *p, size_t avail, uint32_t *out)
{
    if (avail < 4)
        return -1;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = bgj_hexval(p[k]);
        if (h < 0)
            return -1;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

size_t bg_json_unescape(const char *s, size_t n, char *out, uint32_t *map)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t at = i;
        if (p[i] != '\\' || i + 1 >= n) {
            if (map)
                map[o] = (uint32_t)at;
            out[o++] = (char)p[i++];
            continue;
        }
        unsigned e = p[i + 1];
        char ch = 0;
        switch (e) {
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': break;
        default: ch = (char)e; break;
        }
        if (e != 'u') {
            if (map)
                map[o] = (uint32_t)at;
            out[o++] = ch;
            i += 2;
            continue;
        }
        uint32_t cp;
        if (hex4(p + i + 2, n - i - 2, &cp) != 0) {
            /* Not validated input: copy the backslash through. */
            if (map)
                map[o] = (uint32_t)at;
            out[o++] = (char)p[i++];
            continue;
        }
        i += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo;
            if (i + 6 <= n && p[i] == '\\' && p[i + 1] == 'u' && hex4(p + i + 2, n - i - 2, &lo) == 0 &&
                lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            } else {
                cp = 0xfffd;
            }
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            cp = 0xfffd;
        }
        char tmp[4];
        size_t l = bg_utf8_put(tmp, cp);
        for (size_t k = 0; k < l; k++) {
            if (map)
                map[o] = (uint32_t)at;
            out[o++] = tmp[k];
        }
    }
    if (map)
        map[o] = (uint32_t)n;
    return o;
}
