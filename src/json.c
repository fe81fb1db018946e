/*
 * json.c — see json.h. A pull tokenizer with an explicit state and a bounded container stack:
 * each call consumes whitespace and exactly one token. Strings are scanned eight bytes at a
 * time (SWAR) for the bytes that need attention (quote, backslash, control, non-ASCII) because
 * string bytes are most of a JSON body and the classifier's throughput depends on them.
 */
#include "json.h"
#include "util.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { S_VALUE, S_ARR_FIRST, S_OBJ_FIRST, S_KEY, S_COLON, S_AFTER, S_DONE };
enum { C_OBJ = 1, C_ARR = 2 };

void bg_json_init(bg_json_t *j, const char *p, size_t n, unsigned max_depth)
{
    j->p = (const unsigned char *)p;
    j->n = n;
    j->pos = 0;
    j->depth = 0;
    j->max_depth = max_depth == 0 || max_depth > BG_JSON_MAX_DEPTH ? BG_JSON_MAX_DEPTH : max_depth;
    j->state = S_VALUE;
    j->error = 0;
}

static inline int fail(bg_json_t *j, int e)
{
    j->error = e;
    return e;
}

/* Bytes of a valid UTF-8 sequence starting at p[0] (>= 0x80), or 0. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    if (c >= 0xc2 && c <= 0xdf)
        return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && p[1] < 0xa0)
            return 0; /* overlong */
        if (c == 0xed && p[1] >= 0xa0)
            return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90)
            return 0;
        if (c == 0xf4 && p[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

static inline int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Scan a string body from p[i] (just after the opening quote). Returns 0 and sets *end to the
 * closing quote's offset, or an error. */
static inline __attribute__((always_inline)) int scan_string(const unsigned char *p, size_t i, size_t n, size_t *end, bool *escaped)
{
    bool esc = false;
    for (;;) {
#if defined(__SSE2__)
        /* Fast path: 16 bytes a step; a signed compare with 0x20 flags controls and non-ASCII at
         * once, and the mask says where the first byte needing attention is. */
        {
            const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
            while (i + 16 <= n) {
                __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
                __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)),
                                         _mm_cmplt_epi8(x, sp));
                unsigned mask = (unsigned)_mm_movemask_epi8(m);
                if (mask) {
                    i += (unsigned)__builtin_ctz(mask);
                    goto special;
                }
                i += 16;
            }
        }
#endif
        /* Portable path (and the SSE2 tail): 8 plain ASCII bytes at a time. */
        while (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
            uint64_t zq = (q - ONES) & ~q, zb = (b - ONES) & ~b;
            uint64_t ctl = (x - ONES * 0x20) & ~x; /* high bit where byte < 0x20 (or >= 0x80) */
            if (((zq | zb | ctl | x) & HIGHS) != 0)
                break;
            i += 8;
        }
#if defined(__SSE2__)
    special:
#endif
        if (i >= n)
            return BG_JSON_ETRUNC;
        unsigned c = p[i];
        if (c == '"') {
            *end = i;
            *escaped = esc;
            return 0;
        }
        if (c == '\\') {
            esc = true;
            if (i + 1 >= n)
                return BG_JSON_ETRUNC;
            unsigned e = p[i + 1];
            if (e == 'u') {
                if (i + 6 > n)
                    return BG_JSON_ETRUNC;
                for (int k = 2; k < 6; k++)
                    if (hexval(p[i + k]) < 0)
                        return BG_JSON_EINVAL;
                i += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
                       e == 't') {
                i += 2;
            } else {
                return BG_JSON_EINVAL;
            }
            continue;
        }
        if (c < 0x20)
            return BG_JSON_EINVAL;
        if (c >= 0x80) {
            size_t l = utf8_len(p + i, n - i);
            if (l == 0) {
                /* A sequence cut by the end of input is truncation, not garbage. */
                if (n - i < 4 && c >= 0xc2 && c <= 0xf4) {
                    size_t k = i + 1;
                    while (k < n && (p[k] & 0xc0) == 0x80)
                        k++;
                    if (k == n)
                        return BG_JSON_ETRUNC;
                }
                return BG_JSON_EINVAL;
            }
            i += l;
            continue;
        }
        i++;
    }
}

static inline __attribute__((always_inline)) int scan_number(const unsigned char *p, size_t i, size_t n, size_t *end)
{
    if (i < n && p[i] == '-')
        i++;
    if (i >= n)
        return BG_JSON_ETRUNC;
    if (p[i] == '0') {
        i++;
    } else if (p[i] >= '1' && p[i] <= '9') {
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    } else {
        return BG_JSON_EINVAL;
    }
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n)
            return BG_JSON_ETRUNC;
        if (!(p[i] >= '0' && p[i] <= '9'))
            return BG_JSON_EINVAL;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n)
            return BG_JSON_ETRUNC;
        if (!(p[i] >= '0' && p[i] <= '9'))
            return BG_JSON_EINVAL;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    /* A number at the very end of a top-level document is complete; inside a container the
     * caller sees the truncation at the next token. A number must not run into letters. */
    if (i < n && ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || p[i] == '.' ||
                  (p[i] >= '0' && p[i] <= '9')))
        return BG_JSON_EINVAL;
    *end = i;
    return 0;
}

static int literal(const unsigned char *p, size_t pos, size_t n, const char *word, size_t wl)
{
    size_t avail = n - pos;
    size_t k = avail < wl ? avail : wl;
    if (memcmp(p + pos, word, k) != 0)
        return BG_JSON_EINVAL;
    if (avail < wl)
        return BG_JSON_ETRUNC;
    if (pos + wl < n) {
        unsigned c = p[pos + wl];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            return BG_JSON_EINVAL;
    }
    return 0;
}

/* One token. The position and state live in the caller's locals (io): inlined into the two
 * drivers below they stay in registers across tokens (the stores to *tok would otherwise force
 * them back to memory). The drivers write them back to *j on every exit. Each state is a label
 * and a transition jumps straight to the next one (compact JSON: ',' then '"' is a key without
 * a trip round a dispatch loop). Every state skips whitespace first, and at the end of input
 * only S_DONE is complete. */
#define SAVE() (*io_pos = pos, *io_state = state, *io_depth = depth)
#define FAIL(e) (SAVE(), (e))
#define DONE_VALUE() (state = depth ? S_AFTER : S_DONE)
#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')
/* Skip whitespace; at the end of input fail as truncated; else c = the next byte. */
#define NEXT_BYTE()                                                                                                    \
    do {                                                                                                               \
        while (pos < n && p[pos] <= ' ' && IS_WS(p[pos]))                                                              \
            pos++;                                                                                                     \
        if (pos >= n)                                                                                                  \
            return FAIL(BG_JSON_ETRUNC);                                                                               \
        c = p[pos];                                                                                                    \
    } while (0)
#define CLOSE(t)                                                                                                       \
    do {                                                                                                               \
        tok->type = (t);                                                                                               \
        tok->start = (uint32_t)pos;                                                                                    \
        tok->len = 1;                                                                                                  \
        tok->escaped = false;                                                                                          \
        pos++;                                                                                                         \
        depth--;                                                                                                       \
        DONE_VALUE();                                                                                                  \
        SAVE();                                                                                                        \
        return 1;                                                                                                      \
    } while (0)

/* A literal at p[pos] when at least wl + 1 bytes remain (the common case): constant-size compares. */
#define LITERAL(word, wl, t)                                                                                           \
    do {                                                                                                               \
        int rc_;                                                                                                       \
        if (n - pos > (wl))                                                                                            \
            rc_ = memcmp(p + pos, word, wl) != 0 || (cls_alnum(p[pos + (wl)])) ? BG_JSON_EINVAL : 0;                   \
        else                                                                                                           \
            rc_ = literal(p, pos, n, word, wl);                                                                        \
        if (rc_ < 0)                                                                                                   \
            return FAIL(rc_);                                                                                          \
        tok->type = (t);                                                                                               \
        tok->len = (wl);                                                                                               \
        pos += (wl);                                                                                                   \
        DONE_VALUE();                                                                                                  \
        SAVE();                                                                                                        \
        return 1;                                                                                                      \
    } while (0)

static inline bool cls_alnum(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static inline __attribute__((always_inline)) int next_token(bg_json_t *j, size_t *io_pos, int *io_state,
                                                            unsigned *io_depth, bg_json_token_t *tok)
{
    const unsigned char *p = j->p;
    size_t n = j->n, pos = *io_pos;
    int state = *io_state;
    unsigned depth = *io_depth;
    unsigned c;
    switch (state) {
    case S_AFTER: goto after;
    case S_KEY: goto key;
    case S_OBJ_FIRST: goto obj_first;
    case S_ARR_FIRST: goto arr_first;
    case S_COLON: goto colon;
    case S_DONE: goto done;
    default: goto value;
    }

after:
    NEXT_BYTE();
    if (c == ',') {
        pos++;
        if (j->stack[depth - 1] == C_OBJ) {
            state = S_KEY;
            goto key;
        }
        state = S_VALUE;
        goto value;
    }
    if (c == '}' && j->stack[depth - 1] == C_OBJ)
        CLOSE(BG_JSON_OBJ_END);
    if (c == ']' && j->stack[depth - 1] == C_ARR)
        CLOSE(BG_JSON_ARR_END);
    return FAIL(BG_JSON_EINVAL);

obj_first:
    NEXT_BYTE();
    if (c == '}')
        CLOSE(BG_JSON_OBJ_END);
    goto key_c;
key:
    NEXT_BYTE();
key_c:
    if (c != '"')
        return FAIL(BG_JSON_EINVAL);
    pos++;
    {
        size_t end;
        bool esc;
        int rc = scan_string(p, pos, n, &end, &esc);
        if (rc < 0)
            return FAIL(rc);
        tok->type = BG_JSON_KEY;
        tok->start = (uint32_t)pos;
        tok->len = (uint32_t)(end - pos);
        tok->escaped = esc;
        pos = end + 1;
    }
    state = S_COLON;
    /* Compact JSON: the colon follows at once; take it now rather than on the next call. */
    if (pos < n && p[pos] == ':') {
        pos++;
        state = S_VALUE;
    }
    SAVE();
    return 1;

colon:
    NEXT_BYTE();
    if (c != ':')
        return FAIL(BG_JSON_EINVAL);
    pos++;
    state = S_VALUE;
    goto value;

done:
    while (pos < n && p[pos] <= ' ' && IS_WS(p[pos]))
        pos++;
    if (pos >= n) {
        SAVE();
        return 0;
    }
    return FAIL(BG_JSON_EINVAL);

arr_first:
    NEXT_BYTE();
    if (c == ']')
        CLOSE(BG_JSON_ARR_END);
    goto value_c;
value:
    NEXT_BYTE();
value_c:
    tok->escaped = false;
    tok->start = (uint32_t)pos;
    switch (c) {
    case '"': {
        pos++;
        size_t end;
        bool esc;
        int rc = scan_string(p, pos, n, &end, &esc);
        if (rc < 0)
            return FAIL(rc);
        tok->type = BG_JSON_STRING;
        tok->start = (uint32_t)pos;
        tok->len = (uint32_t)(end - pos);
        tok->escaped = esc;
        pos = end + 1;
        DONE_VALUE();
        SAVE();
        return 1;
    }
    case '{':
    case '[':
        if (depth >= j->max_depth)
            return FAIL(BG_JSON_EDEPTH);
        j->stack[depth++] = c == '{' ? C_OBJ : C_ARR;
        tok->type = c == '{' ? BG_JSON_OBJ_START : BG_JSON_ARR_START;
        tok->len = 1;
        pos++;
        state = c == '{' ? S_OBJ_FIRST : S_ARR_FIRST;
        SAVE();
        return 1;
    case '-':
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9': {
        size_t end;
        int rc = scan_number(p, pos, n, &end);
        if (rc < 0)
            return FAIL(rc);
        tok->type = BG_JSON_NUMBER;
        tok->len = (uint32_t)(end - pos);
        pos = end;
        DONE_VALUE();
        SAVE();
        return 1;
    }
    case 't':
        LITERAL("true", 4, BG_JSON_TRUE);
    case 'f':
        LITERAL("false", 5, BG_JSON_FALSE);
    case 'n':
        LITERAL("null", 4, BG_JSON_NULL);
    default:
        return FAIL(BG_JSON_EINVAL);
    }
}

#undef SAVE
#undef FAIL
#undef DONE_VALUE
#undef IS_WS
#undef NEXT_BYTE
#undef CLOSE
#undef LITERAL

int bg_json_next(bg_json_t *j, bg_json_token_t *tok)
{
    if (j->error)
        return j->error;
    size_t pos = j->pos;
    int state = j->state;
    unsigned depth = j->depth;
    int rc = next_token(j, &pos, &state, &depth, tok);
    j->pos = pos;
    j->state = state;
    j->depth = depth;
    return rc < 0 ? fail(j, rc) : rc;
}

int bg_json_next_many(bg_json_t *j, bg_json_token_t *toks, size_t max, size_t *count)
{
    *count = 0;
    if (j->error)
        return j->error;
    size_t pos = j->pos, k = 0;
    int state = j->state, rc = 1;
    unsigned depth = j->depth;
    while (k < max && (rc = next_token(j, &pos, &state, &depth, &toks[k])) > 0)
        k++;
    j->pos = pos;
    j->state = state;
    j->depth = depth;
    *count = k;
    return rc < 0 ? fail(j, rc) : rc;
}


static int hex4(const unsigned char *p, size_t avail, uint32_t *out)
{
    if (avail < 4)
        return -1;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
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
