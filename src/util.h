/*
 * util.h — small shared utilities: a growable byte buffer, SHA-256 in hex, case-insensitive
 * comparisons over (pointer, length) spans, and wall-clock helpers. Pure except bg_now_ms().
 * Thread-safe: no globals.
 */
#ifndef BG_UTIL_H
#define BG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#define BG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A growable byte buffer. Allocation failure aborts (data-plane rule). */
typedef struct {
    char *data; /* public, read-only: len bytes, always NUL-terminated after a write */
    size_t len; /* public, read-only */
    size_t cap; /* private */
} bg_buf_t;

/** Zero n bytes at p in a way the compiler may not drop (explicit_bzero; faster than
 *  OPENSSL_cleanse): for buffers that held personal data, wiped on every request. */
void bg_wipe(void *p, size_t n);

/** Initialise an empty buffer (no allocation). */
void bg_buf_init(bg_buf_t *b);
/** Free the storage; the buffer is empty and reusable afterwards. */
void bg_buf_dispose(bg_buf_t *b);
/** Free the storage after wiping it (for buffers that held keys or personal data). */
void bg_buf_dispose_secure(bg_buf_t *b);
/** Make room for at least n more bytes. */
void bg_buf_reserve(bg_buf_t *b, size_t n);
/** Make room for exactly n more bytes (and the NUL) when the size is known in advance: no
 *  doubling, so a secure dispose wipes no more than was needed. */
void bg_buf_reserve_exact(bg_buf_t *b, size_t n);
/** Make room for n bytes and return where they go; bg_buf_commit(b, k) then adds the k <= n
 *  bytes written there (for encoders that write many small pieces). */
char *bg_buf_space(bg_buf_t *b, size_t n);
/** Add k bytes written at bg_buf_space's pointer (k no more than the n asked for). */
void bg_buf_commit(bg_buf_t *b, size_t k);
/** Append n bytes (the growing path of bg_buf_append). */
void bg_buf_append_grow(bg_buf_t *b, const void *p, size_t n);
/** Append n bytes. Inline: a request head is built from dozens of small pieces, most of them
 *  literals whose length and copy the compiler then knows. */
static inline void bg_buf_append(bg_buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        bg_buf_append_grow(b, p, n);
        return;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}
/** Append a NUL-terminated string. */
static inline void bg_buf_puts(bg_buf_t *b, const char *s) { bg_buf_append(b, s, strlen(s)); }
/** Append printf-formatted text. */
void bg_buf_printf(bg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Append s as the inside of a JSON string (escaped, no quotes). */
void bg_buf_json_escape(bg_buf_t *b, const char *s, size_t n);
/** 1 for the bytes a JSON string cannot hold as they are (controls, DEL, '"', '\\'), else 0. */
extern const uint8_t bg_json_special[256];
/** Append s as the inside of a JSON string: the same bytes as bg_buf_json_escape, with runs
 *  that need no escape copied whole (the data plane's record fields). */
void bg_buf_append_json(bg_buf_t *b, const char *s, size_t n);
/** Append v in decimal. */
void bg_buf_append_u64(bg_buf_t *b, uint64_t v);
/** Drop the first n bytes (n <= len). */
void bg_buf_consume(bg_buf_t *b, size_t n);
/** Empty the buffer, keeping its storage. */
static inline void bg_buf_reset(bg_buf_t *b) { b->len = 0; if (b->data) b->data[0] = 0; }

/** Encode code point cp (<= 0x10FFFF) as UTF-8 into out[0..4); returns the byte count (1-4). */
size_t bg_utf8_put(char out[4], uint32_t cp);

/** SHA-256 of p[0..n) as 64 lowercase hex digits and a NUL into out[65]. */
void bg_sha256_hex(const void *p, size_t n, char out[65]);

/** ASCII case-insensitive equality of a span and a NUL-terminated string. */
bool bg_span_ieq(const char *p, size_t n, const char *s);
/** ASCII case-insensitive equality of two spans. */
bool bg_span_ieq2(const char *a, size_t an, const char *b, size_t bn);
/* Value of one base64 digit (RFC 4648: the url alphabet's '-' '_' when url, else the standard
 * '+' '/'), or -1. */
static inline int bg_b64_digit(unsigned c, bool url)
{
    if (c - 'A' < 26u)
        return (int)(c - 'A');
    if (c - 'a' < 26u)
        return (int)(c - 'a') + 26;
    if (c - '0' < 10u)
        return (int)(c - '0') + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/** x with each byte 'A'..'Z' made lowercase and every other byte unchanged (eight at once: each
 *  byte's low seven bits plus a constant cannot carry into the next byte). */
static inline uint64_t bg_ascii_lower8(uint64_t x)
{
    const uint64_t h = UINT64_C(0x8080808080808080), low = x & ~h;
    uint64_t ge_a = low + UINT64_C(0x3f3f3f3f3f3f3f3f);   /* high bit: low7 >= 'A' */
    uint64_t gt_z = low + UINT64_C(0x2525252525252525);   /* high bit: low7 > 'Z' */
    return x | ((ge_a & ~gt_z & ~x & h) >> 2);            /* + 0x20 where 'A' <= byte <= 'Z' */
}
/** Whether s[0..n) folded to ASCII lowercase equals lit[0..n), which must be lowercase (header
 *  names, tokens). Eight bytes at a time; inline, so a literal's length and words are constants. */
static inline bool bg_lit_ieq(const char *s, const char *lit, size_t n)
{
    uint64_t a = 0, b = 0;
    if (n < 8) {
        memcpy(&a, s, n);
        memcpy(&b, lit, n);
        return bg_ascii_lower8(a) == b;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&a, s + i, 8);
        memcpy(&b, lit + i, 8);
        if (bg_ascii_lower8(a) != b)
            return false;
    }
    if (i < n) { /* the last eight bytes, overlapping what was compared */
        memcpy(&a, s + n - 8, 8);
        memcpy(&b, lit + n - 8, 8);
        return bg_ascii_lower8(a) == b;
    }
    return true;
}
/** n == strlen(lit) and bg_lit_ieq: a header name against a lowercase literal. */
#define BG_NAME_IS(p, n, lit) ((n) == sizeof(lit) - 1 && bg_lit_ieq((p), (lit), sizeof(lit) - 1))

/** Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t bg_now_ms(void);
/** Format a Unix time in ms as RFC 3339 UTC with milliseconds into out[32]
 *  ("2026-11-29T10:39:36.123Z"). Returns out. */
char *bg_format_rfc3339_ms(int64_t ms, char out[32]);
/** Days since 1970-01-01 of a proleptic Gregorian date (no validation). */
int64_t bg_days_from_civil(int y, unsigned m, unsigned d);
/** Copy at most max bytes of the string src (and never more than cap - 1) into dst with a NUL,
 *  like snprintf(dst, cap, "%.*s", max, src) without the formatting; returns the bytes copied. */
size_t bg_str_copy(char *dst, size_t cap, const char *src, size_t max);
/** The proleptic Gregorian date of a day count since 1970-01-01 (inverse of the above). */
void bg_civil_from_days(int64_t days, int *y, unsigned *m, unsigned *d);

#endif
