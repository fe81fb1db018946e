/*
 * json_core.h — the tokenizer's core as inline functions, private to json.c and the classifier:
 * json.c wraps bgj_next_token as bg_json_next; the classifier's JSON walk runs the same state
 * machine with its work at each token (classify.c scan_json) and shares the pieces here: strings,
 * numbers, literals and the whitespace step. Semantics are bg_json_next's (see json.h). Strings
 * are scanned 16 bytes a step with SSE2 (8 with SWAR without it, or with BG_NO_SIMD) for quote,
 * backslash, control and non-ASCII bytes. Not a public interface: names are bgj_*. Pure.
 */
#ifndef BG_JSON_CORE_H
#define BG_JSON_CORE_H

#include "json.h"

#include <string.h>
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
#include <emmintrin.h>
#endif

enum { BGJ_S_VALUE, BGJ_S_ARR_FIRST, BGJ_S_OBJ_FIRST, BGJ_S_KEY, BGJ_S_COLON, BGJ_S_AFTER, BGJ_S_DONE };
enum { BGJ_C_OBJ = 1, BGJ_C_ARR = 2 };

/* Bytes of a valid UTF-8 sequence starting at p[0] (>= 0x80), or 0. */
static inline size_t bgj_utf8_len(const unsigned char *p, size_t avail)
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

static inline int bgj_hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

#define BGJ_ONES 0x0101010101010101ULL
#define BGJ_HIGHS 0x8080808080808080ULL

/* Scan a string body from p[i] (just after the opening quote). Returns 0 and sets *end to the
 * closing quote's offset, or an error. */
static inline __attribute__((always_inline)) int bgj_scan_string(const unsigned char *p, size_t i, size_t n,
                                                                 size_t *end, bool *escaped)
{
    bool esc = false;
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
    /* Most keys and many values end within their first 16 bytes: that block is looked at before
     * the loops below are set up (their constants, the escape flag). */
    if (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
        m = _mm_or_si128(m, _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask) {
            size_t k = i + (unsigned)__builtin_ctz(mask);
            if (p[k] == '"') {
                *end = k;
                *escaped = false;
                return 0;
            }
        }
    }
#endif
    for (;;) {
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
        /* Fast path: 16 bytes a step; a signed compare with 0x20 flags controls and non-ASCII at
         * once, and the mask says where the first byte needing attention is. */
        {
            const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
            while (i + 16 <= n) {
                __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
                __m128i m =
                    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)), _mm_cmplt_epi8(x, sp));
                unsigned mask = (unsigned)_mm_movemask_epi8(m);
                if (mask) {
                    i += (unsigned)__builtin_ctz(mask);
                    if (p[i] == '"') { /* the common end: no bound to check, i < n here */
                        *end = i;
                        *escaped = esc;
                        return 0;
                    }
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
            uint64_t q = x ^ (BGJ_ONES * '"'), b = x ^ (BGJ_ONES * '\\');
            uint64_t zq = (q - BGJ_ONES) & ~q, zb = (b - BGJ_ONES) & ~b;
            uint64_t ctl = (x - BGJ_ONES * 0x20) & ~x; /* high bit where byte < 0x20 (or >= 0x80) */
            if (((zq | zb | ctl | x) & BGJ_HIGHS) != 0)
                break;
            i += 8;
        }
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
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
                    if (bgj_hexval(p[i + k]) < 0)
                        return BG_JSON_EINVAL;
                i += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                i += 2;
            } else {
                return BG_JSON_EINVAL;
            }
            continue;
        }
        if (c < 0x20)
            return BG_JSON_EINVAL;
        if (c >= 0x80) {
            size_t l = bgj_utf8_len(p + i, n - i);
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

/* The end of the run of ASCII digits from p[i]: its first 16 bytes in one SSE2 step, then eight
 * bytes a step (SWAR: a byte's high bit is set in m when it is no digit: its value ^ '0' is 10
 * or more), the tail a byte at a time. */
static inline size_t bgj_skip_digits(const unsigned char *p, size_t i, size_t n)
{
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
    /* Most runs end within 16 bytes: one load and a digit mask (byte - '0' is at most 9). */
    if (i + 16 <= n) {
        __m128i d = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i)), _mm_set1_epi8('0'));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d));
        if (m != 0xffffu)
            return i + (unsigned)__builtin_ctz(~m);
        i += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ /* the first byte is the low one */
    while (i + 8 <= n) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t y = x ^ (BGJ_ONES * '0');
        uint64_t m = (((y & ~BGJ_HIGHS) + BGJ_ONES * 0x76) | y) & BGJ_HIGHS;
        if (m)
            return i + ((unsigned)__builtin_ctzll(m) >> 3);
        i += 8;
    }
#endif
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    return i;
}

/* Bytes a number must not run into: letters, digits, '.'. */
static const unsigned char bgj_num_stop[256] = {
    ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1, ['0' ... '9'] = 1, ['.'] = 1,
};

/* A number's parts beyond its integer digits (bgj_scan_number_shape). */
enum { BGJ_NUM_NEG = 1, BGJ_NUM_FRAC = 2, BGJ_NUM_EXP = 4 };

/* Scan a number from p[i]: 0 and *end (its end) and *shape (BGJ_NUM_* bits: a '-', a fraction,
 * an exponent), or an error. */
static inline __attribute__((always_inline)) int bgj_scan_number_shape(const unsigned char *p, size_t i, size_t n,
                                                                       size_t *end, unsigned *shape)
{
    unsigned sh = 0;
    if (i < n && p[i] == '-') {
        i++;
        sh = BGJ_NUM_NEG;
    }
    if (i >= n)
        return BG_JSON_ETRUNC;
    if (p[i] == '0') {
        i++;
    } else if (p[i] >= '1' && p[i] <= '9') {
        i = bgj_skip_digits(p, i + 1, n);
    } else {
        return BG_JSON_EINVAL;
    }
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n)
            return BG_JSON_ETRUNC;
        if (!(p[i] >= '0' && p[i] <= '9'))
            return BG_JSON_EINVAL;
        i = bgj_skip_digits(p, i + 1, n);
        sh |= BGJ_NUM_FRAC;
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
        sh |= BGJ_NUM_EXP;
    }
    /* A number at the very end of a top-level document is complete; inside a container the
     * caller sees the truncation at the next token. A number must not run into letters. */
    if (i < n && bgj_num_stop[p[i]])
        return BG_JSON_EINVAL;
    *end = i;
    *shape = sh;
    return 0;
}

static inline __attribute__((always_inline)) int bgj_scan_number(const unsigned char *p, size_t i, size_t n,
                                                                 size_t *end)
{
    unsigned shape;
    return bgj_scan_number_shape(p, i, n, end, &shape);
}

static inline int bgj_literal(const unsigned char *p, size_t pos, size_t n, const char *word, size_t wl)
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

/* One token into *tok: 1, 0 at the end of a complete document, or a BG_JSON_E* error (the caller
 * keeps errors sticky). The position, state and depth live in the caller's locals (io), which
 * are written on every exit. Each state is a label
 * and a transition jumps straight to the next one (compact JSON: ',' then '"' is a key without
 * a trip round a dispatch loop). Every state skips whitespace first, and at the end of input
 * only BGJ_S_DONE is complete. */
#define BGJ_SAVE() (*io_pos = pos, *io_state = state, *io_depth = depth)
#define BGJ_FAIL(e) (BGJ_SAVE(), (e))
#define BGJ_DONE_VALUE() (state = depth ? BGJ_S_AFTER : BGJ_S_DONE)
#define BGJ_IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')
/* Skip whitespace from p[pos] (the caller's p, pos, n); at the end of input run on_end (a
 * return or a goto); else c = the next byte. Compact JSON has none: one compare says so. Shared
 * by bgj_next_token and the classifier's walk, which runs the same state machine. */
#define BGJ_NEXT_BYTE_OR(on_end)                                                                                       \
    do {                                                                                                               \
        if (pos >= n)                                                                                                  \
            on_end;                                                                                                    \
        c = p[pos];                                                                                                    \
        if (c <= ' ') {                                                                                                \
            if (c == ' ' && pos + 1 < n && p[pos + 1] > ' ') { /* ", " and ": " */                                  \
                c = p[++pos];                                                                                          \
            } else {                                                                                                   \
                while (pos < n && p[pos] <= ' ' && BGJ_IS_WS(p[pos]))                                                  \
                    pos++;                                                                                             \
                if (pos >= n)                                                                                          \
                    on_end;                                                                                            \
                c = p[pos];                                                                                            \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)
#define BGJ_NEXT_BYTE() BGJ_NEXT_BYTE_OR(return BGJ_FAIL(BG_JSON_ETRUNC))
#define BGJ_CLOSE(t)                                                                                                   \
    do {                                                                                                               \
        tok->type = (t);                                                                                               \
        tok->start = (uint32_t)pos;                                                                                    \
        tok->len = 1;                                                                                                  \
        tok->escaped = false;                                                                                          \
        pos++;                                                                                                         \
        depth--;                                                                                                       \
        BGJ_DONE_VALUE();                                                                                              \
        BGJ_SAVE();                                                                                                    \
        return 1;                                                                                                      \
    } while (0)

static inline bool bgj_cls_alnum(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* bgj_literal, with constant-size compares when at least wl + 1 bytes remain (the common case). */
static inline __attribute__((always_inline)) int bgj_literal_at(const unsigned char *p, size_t pos, size_t n,
                                                                const char *word, size_t wl)
{
    if (n - pos > wl)
        return memcmp(p + pos, word, wl) != 0 || bgj_cls_alnum(p[pos + wl]) ? BG_JSON_EINVAL : 0;
    return bgj_literal(p, pos, n, word, wl);
}

#define BGJ_LITERAL(word, wl, t)                                                                                       \
    do {                                                                                                               \
        int rc_ = bgj_literal_at(p, pos, n, word, wl);                                                                 \
        if (rc_ < 0)                                                                                                   \
            return BGJ_FAIL(rc_);                                                                                      \
        tok->type = (t);                                                                                               \
        tok->len = (wl);                                                                                               \
        pos += (wl);                                                                                                   \
        BGJ_DONE_VALUE();                                                                                              \
        BGJ_SAVE();                                                                                                    \
        return 1;                                                                                                      \
    } while (0)

static inline __attribute__((always_inline)) int bgj_next_token(bg_json_t *j, size_t *io_pos, int *io_state,
                                                                unsigned *io_depth, bg_json_token_t *tok)
{
    const unsigned char *p = j->p;
    size_t n = j->n, pos = *io_pos;
    int state = *io_state;
    unsigned depth = *io_depth;
    unsigned c;
    /* Most tokens come after a value (',' or a close next) or after a key (a value next): those
     * two states are tested before the dispatch. */
    if (state == BGJ_S_AFTER)
        goto after;
    if (state == BGJ_S_VALUE)
        goto value;
    switch (state) {
    case BGJ_S_AFTER: goto after;
    case BGJ_S_KEY: goto key;
    case BGJ_S_OBJ_FIRST: goto obj_first;
    case BGJ_S_ARR_FIRST: goto arr_first;
    case BGJ_S_COLON: goto colon;
    case BGJ_S_DONE: goto done;
    default: goto value;
    }

after:
    BGJ_NEXT_BYTE();
    if (c == ',') {
        pos++;
        if (j->stack[depth - 1] == BGJ_C_OBJ) {
            state = BGJ_S_KEY;
            goto key;
        }
        state = BGJ_S_VALUE;
        goto value;
    }
    if (c == '}' && j->stack[depth - 1] == BGJ_C_OBJ)
        BGJ_CLOSE(BG_JSON_OBJ_END);
    if (c == ']' && j->stack[depth - 1] == BGJ_C_ARR)
        BGJ_CLOSE(BG_JSON_ARR_END);
    return BGJ_FAIL(BG_JSON_EINVAL);

obj_first:
    BGJ_NEXT_BYTE();
    if (c == '}')
        BGJ_CLOSE(BG_JSON_OBJ_END);
    goto key_c;
key:
    BGJ_NEXT_BYTE();
key_c:
    if (c != '"')
        return BGJ_FAIL(BG_JSON_EINVAL);
    pos++;
    {
        size_t end;
        bool esc;
        int rc = bgj_scan_string(p, pos, n, &end, &esc);
        if (rc < 0)
            return BGJ_FAIL(rc);
        tok->type = BG_JSON_KEY;
        tok->start = (uint32_t)pos;
        tok->len = (uint32_t)(end - pos);
        tok->escaped = esc;
        pos = end + 1;
    }
    state = BGJ_S_COLON;
    /* Compact JSON: the colon follows at once; take it now rather than on the next call. */
    if (pos < n && p[pos] == ':') {
        pos++;
        state = BGJ_S_VALUE;
    }
    BGJ_SAVE();
    return 1;

colon:
    BGJ_NEXT_BYTE();
    if (c != ':')
        return BGJ_FAIL(BG_JSON_EINVAL);
    pos++;
    state = BGJ_S_VALUE;
    goto value;

done:
    while (pos < n && p[pos] <= ' ' && BGJ_IS_WS(p[pos]))
        pos++;
    if (pos >= n) {
        BGJ_SAVE();
        return 0;
    }
    return BGJ_FAIL(BG_JSON_EINVAL);

arr_first:
    BGJ_NEXT_BYTE();
    if (c == ']')
        BGJ_CLOSE(BG_JSON_ARR_END);
    goto value_c;
value:
    BGJ_NEXT_BYTE();
value_c:
    tok->escaped = false;
    tok->start = (uint32_t)pos;
    if (c == '"') /* the most common values, strings and numbers, before the dispatch */
        goto string;
    if (c - '0' < 10u || c == '-')
        goto number;
    switch (c) {
    case '"': {
    string:
        pos++;
        size_t end;
        bool esc;
        int rc = bgj_scan_string(p, pos, n, &end, &esc);
        if (rc < 0)
            return BGJ_FAIL(rc);
        tok->type = BG_JSON_STRING;
        tok->start = (uint32_t)pos;
        tok->len = (uint32_t)(end - pos);
        tok->escaped = esc;
        pos = end + 1;
        BGJ_DONE_VALUE();
        BGJ_SAVE();
        return 1;
    }
    case '{':
    case '[':
        if (depth >= j->max_depth)
            return BGJ_FAIL(BG_JSON_EDEPTH);
        j->stack[depth++] = c == '{' ? BGJ_C_OBJ : BGJ_C_ARR;
        tok->type = c == '{' ? BG_JSON_OBJ_START : BG_JSON_ARR_START;
        tok->len = 1;
        pos++;
        state = c == '{' ? BGJ_S_OBJ_FIRST : BGJ_S_ARR_FIRST;
        BGJ_SAVE();
        return 1;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9': {
    number:;
        size_t end;
        int rc = bgj_scan_number(p, pos, n, &end);
        if (rc < 0)
            return BGJ_FAIL(rc);
        tok->type = BG_JSON_NUMBER;
        tok->len = (uint32_t)(end - pos);
        pos = end;
        BGJ_DONE_VALUE();
        BGJ_SAVE();
        return 1;
    }
    case 't': BGJ_LITERAL("true", 4, BG_JSON_TRUE);
    case 'f': BGJ_LITERAL("false", 5, BG_JSON_FALSE);
    case 'n': BGJ_LITERAL("null", 4, BG_JSON_NULL);
    default: return BGJ_FAIL(BG_JSON_EINVAL);
    }
}

#undef BGJ_SAVE
#undef BGJ_FAIL
#undef BGJ_DONE_VALUE
#undef BGJ_NEXT_BYTE
#undef BGJ_CLOSE
#undef BGJ_LITERAL

#endif
