/*
 * util.c — see util.h. Buffers abort on allocation failure: on the data plane an
 * out-of-memory gateway must stop rather than half-forward.
 */
#include "util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void bg_wipe(void *p, size_t n)
{
    /* glibc's explicit_bzero: its memset (wide stores) and a barrier the compiler may not remove.
     * OPENSSL_cleanse stores 8 bytes per turn: ~10,000 instructions per held 16 KiB body. */
    explicit_bzero(p, n);
}

void bg_buf_init(bg_buf_t *b) { b->data = NULL; b->len = b->cap = 0; }

void bg_buf_dispose(bg_buf_t *b)
{
    free(b->data);
    bg_buf_init(b);
}

void bg_buf_dispose_secure(bg_buf_t *b)
{
    if (b->data)
        bg_wipe(b->data, b->cap);
    bg_buf_dispose(b);
}

void bg_buf_reserve(bg_buf_t *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        abort();
    b->data = p;
    b->cap = cap;
}

void bg_buf_reserve_exact(bg_buf_t *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    char *p = realloc(b->data, b->len + n + 1);
    if (!p)
        abort();
    b->data = p;
    b->cap = b->len + n + 1;
}

char *bg_buf_space(bg_buf_t *b, size_t n)
{
    bg_buf_reserve(b, n);
    return b->data + b->len;
}

void bg_buf_commit(bg_buf_t *b, size_t k)
{
    b->len += k;
    b->data[b->len] = 0;
}

void bg_buf_append_grow(bg_buf_t *b, const void *p, size_t n)
{
    bg_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void bg_buf_printf(bg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        bg_buf_append(b, tmp, (size_t)n);
        return;
    }
    bg_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void bg_buf_json_escape(bg_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    bg_buf_reserve(b, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            bg_buf_append(b, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            bg_buf_append(b, e, 6);
        } else {
            bg_buf_append(b, &s[i], 1);
        }
    }
}

const uint8_t bg_json_special[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
    [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x0e] = 1, [0x0f] = 1,
    [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
    [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1,
    ['"'] = 1, ['\\'] = 1, [0x7f] = 1,
};
static bool json_plain(unsigned char c) { return !bg_json_special[c]; }

void bg_buf_append_json(bg_buf_t *b, const char *s, size_t n)
{
    /* Runs of plain bytes are copied whole; the rest goes through bg_buf_json_escape, so the
     * output is the same byte for byte. */
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && json_plain((unsigned char)s[j]))
            j++;
        if (j > i)
            bg_buf_append(b, s + i, j - i);
        if (j < n)
            bg_buf_json_escape(b, s + j, 1);
        i = j + 1;
    }
}

void bg_buf_append_u64(bg_buf_t *b, uint64_t v)
{
    char tmp[24];
    size_t n = sizeof tmp;
    do
        tmp[--n] = (char)('0' + v % 10);
    while ((v /= 10) && n);
    bg_buf_append(b, tmp + n, sizeof tmp - n);
}

void bg_buf_consume(bg_buf_t *b, size_t n)
{
    if (n >= b->len) {
        bg_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

size_t bg_utf8_put(char out[4], uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

void bg_sha256_hex(const void *p, size_t n, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = 0;
}

static inline int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

bool bg_span_ieq2(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    size_t i = 0;
    for (; i + 8 <= an; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y && bg_ascii_lower8(x) != bg_ascii_lower8(y))
            return false;
    }
    for (; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

bool bg_span_ieq(const char *p, size_t n, const char *s) { return bg_span_ieq2(p, n, s, strlen(s)); }

int64_t bg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *bg_format_rfc3339_ms(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    /* Years are 0..9999 here; the mask keeps the compiler's truncation analysis quiet. */
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u, (unsigned)(ms % 1000));
    return out;
}

int64_t bg_days_from_civil(int y, unsigned m, unsigned d)
{
    /* Howard Hinnant's days_from_civil. */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void bg_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    /* Howard Hinnant's civil_from_days, the inverse of bg_days_from_civil. */
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

size_t bg_str_copy(char *dst, size_t cap, const char *src, size_t max)
{
    if (cap == 0)
        return 0;
    size_t n = strnlen(src, max < cap - 1 ? max : cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
    return n;
}
