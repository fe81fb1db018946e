/*
 * records_json.c — a small strict JSON validator and member reader over one record line, for
 * `records verify` and `records report`. Pure: no allocation, no globals; every scan is bounded
 * by the span length and nesting is capped (fuzzed through tests/fuzz/records_verify.c).
 * Thread-safe.
 */
#include "records.h"

#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *p;
    size_t n, i;
} scan_t;

static void skip_ws(scan_t *s)
{
    while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' || s->p[s->i] == '\n' || s->p[s->i] == '\r'))
        s->i++;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of a valid UTF-8 sequence at p[0..n), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool scan_string(scan_t *s)
{
    if (s->i >= s->n || s->p[s->i] != '"')
        return false;
    s->i++;
    while (s->i < s->n) {
        unsigned char c = (unsigned char)s->p[s->i];
        if (c == '"') {
            s->i++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (s->i + 1 >= s->n)
                return false;
            char e = s->p[s->i + 1];
            if (e == 'u') {
                if (s->i + 6 > s->n)
                    return false;
                for (int k = 2; k < 6; k++)
                    if (hexval((unsigned char)s->p[s->i + k]) < 0)
                        return false;
                s->i += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                s->i += 2;
            } else {
                return false;
            }
            continue;
        }
        size_t l = utf8_len((const unsigned char *)s->p + s->i, s->n - s->i);
        if (!l)
            return false;
        s->i += l;
    }
    return false;
}

static bool scan_number(scan_t *s)
{
    size_t st = s->i;
    if (s->i < s->n && s->p[s->i] == '-')
        s->i++;
    if (s->i >= s->n)
        return false;
    if (s->p[s->i] == '0') {
        s->i++;
    } else if (s->p[s->i] >= '1' && s->p[s->i] <= '9') {
        while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9')
            s->i++;
    } else {
        return false;
    }
    if (s->i < s->n && s->p[s->i] == '.') {
        s->i++;
        size_t d = s->i;
        while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9')
            s->i++;
        if (s->i == d)
            return false;
    }
    if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
        s->i++;
        if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-'))
            s->i++;
        size_t d = s->i;
        while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9')
            s->i++;
        if (s->i == d)
            return false;
    }
    return s->i > st;
}

static bool scan_lit(scan_t *s, const char *lit)
{
    size_t l = strlen(lit);
    if (s->n - s->i < l || memcmp(s->p + s->i, lit, l) != 0)
        return false;
    s->i += l;
    return true;
}

static bool scan_value(scan_t *s, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return false;
    skip_ws(s);
    if (s->i >= s->n)
        return false;
    char c = s->p[s->i];
    if (c == '"')
        return scan_string(s);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->i++;
        skip_ws(s);
        if (s->i < s->n && s->p[s->i] == close) {
            s->i++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                skip_ws(s);
                if (!scan_string(s))
                    return false;
                skip_ws(s);
                if (s->i >= s->n || s->p[s->i] != ':')
                    return false;
                s->i++;
            }
            if (!scan_value(s, depth + 1))
                return false;
            skip_ws(s);
            if (s->i >= s->n)
                return false;
            if (s->p[s->i] == ',') {
                s->i++;
                continue;
            }
            if (s->p[s->i] == close) {
                s->i++;
                return true;
            }
            return false;
        }
    }
    if (c == 't')
        return scan_lit(s, "true");
    if (c == 'f')
        return scan_lit(s, "false");
    if (c == 'n')
        return scan_lit(s, "null");
    return scan_number(s);
}

bool bg_records_json_valid(const char *p, size_t n)
{
    scan_t s = {p, n, 0};
    if (!scan_value(&s, 0))
        return false;
    skip_ws(&s);
    return s.i == n;
}

bool bg_records_json_member(const char *p, size_t n, const char *key, const char **v, size_t *vn)
{
    scan_t s = {p, n, 0};
    skip_ws(&s);
    if (s.i >= n || p[s.i] != '{')
        return false;
    s.i++;
    size_t klen = strlen(key);
    for (;;) {
        skip_ws(&s);
        size_t ks = s.i;
        if (!scan_string(&s))
            return false;
        /* Keys we look up never need unescaping; an escaped key simply does not match. */
        bool match = s.i - ks == klen + 2 && memcmp(p + ks + 1, key, klen) == 0;
        skip_ws(&s);
        if (s.i >= n || p[s.i] != ':')
            return false;
        s.i++;
        skip_ws(&s);
        size_t vs = s.i;
        if (!scan_value(&s, 1))
            return false;
        if (match) {
            *v = p + vs;
            *vn = s.i - vs;
            return true;
        }
        skip_ws(&s);
        if (s.i >= n || p[s.i] != ',')
            return false;
        s.i++;
    }
}

/* Decode the string starting at v[*i] (a quote); advances *i past the closing quote. */
static int decode_string(const char *v, size_t vn, size_t *i, char *out, size_t outlen)
{
    scan_t s = {v, vn, *i};
    if (!scan_string(&s))
        return -1;
    size_t end = s.i - 1, o = 0;
    for (size_t k = *i + 1; k < end;) {
        char tmp[4];
        size_t tl;
        if (v[k] == '\\') {
            char e = v[k + 1];
            if (e == 'u') {
                unsigned cp = 0;
                for (int d = 2; d < 6; d++)
                    cp = cp * 16 + (unsigned)hexval((unsigned char)v[k + d]);
                k += 6;
                if (cp >= 0xd800 && cp <= 0xdbff && k + 6 <= end && v[k] == '\\' && v[k + 1] == 'u') {
                    unsigned lo = 0;
                    for (int d = 2; d < 6; d++)
                        lo = lo * 16 + (unsigned)hexval((unsigned char)v[k + d]);
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        k += 6;
                    }
                }
                if (cp >= 0xd800 && cp <= 0xdfff)
                    cp = 0xfffd; /* a lone surrogate */
                tl = bg_utf8_put(tmp, cp);
            } else {
                static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
                tmp[0] = to[strchr(from, e) - from];
                tl = 1;
                k += 2;
            }
        } else {
            tmp[0] = v[k];
            tl = 1;
            k++;
        }
        if (outlen && o + tl < outlen) {
            memcpy(out + o, tmp, tl);
            o += tl;
        }
    }
    if (outlen)
        out[o < outlen ? o : outlen - 1] = 0;
    *i = s.i;
    return (int)o;
}

int bg_records_json_string(const char *v, size_t vn, char *out, size_t outlen)
{
    size_t i = 0;
    return decode_string(v, vn, &i, out, outlen);
}

bool bg_records_json_array_next(const char *v, size_t vn, size_t *pos, char *out, size_t outlen)
{
    scan_t s = {v, vn, *pos};
    if (s.i == 0) {
        skip_ws(&s);
        if (s.i >= vn || v[s.i] != '[')
            return false;
        s.i++;
    }
    skip_ws(&s);
    if (s.i < vn && v[s.i] == ',') {
        s.i++;
        skip_ws(&s);
    }
    if (s.i >= vn || v[s.i] != '"')
        return false;
    size_t i = s.i;
    if (decode_string(v, vn, &i, out, outlen) < 0)
        return false;
    *pos = i;
    return true;
}
