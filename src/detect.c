/*
 * detect.c — validators behind the classifier's detectors: Luhn and issuer tables for payment
 * cards, IBAN country lengths and mod-97, US SSN area/group/serial rules, e-mail, IPv4 and
 * IPv6 grammar. Each takes a candidate span as written (separators allowed where the format
 * allows them) and answers yes or no. Pure, no allocation, thread-safe (read-only tables).
 */
#include "classify.h"

#include <string.h>

static inline bool is_digit(unsigned c) { return c - '0' < 10u; }
static inline bool is_upper(unsigned c) { return c - 'A' < 26u; }
static inline bool is_alpha(unsigned c) { return (c | 0x20) - 'a' < 26u; }
static inline bool is_alnum(unsigned c) { return is_digit(c) || is_alpha(c); }
static inline bool is_hex(unsigned c) { return is_digit(c) || (c | 0x20) - 'a' < 6u; }

bool bg_detect_luhn(const char *s, size_t n)
{
    unsigned sum = 0, k = 0, nd = 0;
    for (size_t i = n; i-- > 0;) {
        unsigned c = (unsigned char)s[i];
        if (!is_digit(c))
            continue;
        unsigned d = c - '0';
        if (k++ & 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        nd++;
    }
    return nd > 1 && sum % 10 == 0;
}

/* Digits of s without separators into out (at most cap); returns the count or cap + 1. */
static size_t digits_of(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_digit((unsigned char)s[i])) {
            if (k >= cap)
                return cap + 1;
            out[k++] = s[i];
        }
    }
    return k;
}

static unsigned prefix_num(const char *d, size_t len)
{
    unsigned v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (unsigned)(d[i] - '0');
    return v;
}

/* Issuer identification: does (prefix, length) belong to a card scheme? */
static bool iin_ok(const char *d, size_t len)
{
    unsigned p1 = prefix_num(d, 1), p2 = prefix_num(d, 2), p3 = prefix_num(d, 3), p4 = prefix_num(d, 4);
    unsigned p6 = len >= 6 ? prefix_num(d, 6) : 0;
    if (p1 == 4) /* Visa */
        return len == 13 || len == 16 || len == 19;
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) /* Mastercard */
        return len == 16;
    if (p2 == 34 || p2 == 37) /* American Express */
        return len == 15;
    if ((p3 >= 300 && p3 <= 305) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39) /* Diners */
        return len >= 14 && len <= 19;
    if (p4 == 2131 || p4 == 1800) /* JCB (15 digits) */
        return len == 15;
    if (p2 == 35) /* JCB (3528-3589 assigned; issuers' test ranges use all of 35) */
        return len >= 16 && len <= 19;
    if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || (p6 >= 622126 && p6 <= 622925)) /* Discover */
        return len >= 16 && len <= 19;
    if (p2 == 62 || p2 == 81) /* UnionPay */
        return len >= 16 && len <= 19;
    if (p4 >= 2200 && p4 <= 2204) /* Mir */
        return len >= 16 && len <= 19;
    if (p4 == 5018 || p4 == 5020 || p4 == 5038 || p4 == 5893 || p4 == 6304 || p4 == 6759 ||
        (p4 >= 6761 && p4 <= 6763) || p2 == 50 || (p2 >= 56 && p2 <= 69)) /* Maestro and others */
        return len >= 12 && len <= 19;
    if (p2 == 60) /* RuPay */
        return len == 16;
    if (p1 == 1) /* UATP */
        return len == 15;
    return false;
}

bool bg_detect_card_valid(const char *s, size_t n)
{
    char d[20];
    size_t len = digits_of(s, n, d, 19);
    if (len < 12 || len > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (!is_digit(c) && c != ' ' && c != '-')
            return false;
    }
    /* All one digit ("0000 0000 ...") is a placeholder, not a card. */
    size_t same = 1;
    for (size_t i = 1; i < len; i++)
        same += d[i] == d[0];
    if (same == len)
        return false;
    return iin_ok(d, len) && bg_detect_luhn(d, len);
}

/* Registered IBAN lengths (SWIFT registry plus the partial/experimental members in common use). */
int bg_detect_iban_length(const char *cc)
{
    /* One switch on the two letters (a compare tree) rather than a walk of the table. */
    switch ((unsigned)(unsigned char)cc[0] << 8 | (unsigned char)cc[1]) {
#define BG_IBAN_CC(a, b, l) case (unsigned)(a) << 8 | (unsigned)(b): return l;
    BG_IBAN_CC('A', 'D', 24)
    BG_IBAN_CC('A', 'E', 23)
    BG_IBAN_CC('A', 'L', 28)
    BG_IBAN_CC('A', 'O', 25)
    BG_IBAN_CC('A', 'T', 20)
    BG_IBAN_CC('A', 'Z', 28)
    BG_IBAN_CC('B', 'A', 20)
    BG_IBAN_CC('B', 'E', 16)
    BG_IBAN_CC('B', 'F', 28)
    BG_IBAN_CC('B', 'G', 22)
    BG_IBAN_CC('B', 'H', 22)
    BG_IBAN_CC('B', 'I', 27)
    BG_IBAN_CC('B', 'J', 28)
    BG_IBAN_CC('B', 'R', 29)
    BG_IBAN_CC('B', 'Y', 28)
    BG_IBAN_CC('C', 'H', 21)
    BG_IBAN_CC('C', 'I', 28)
    BG_IBAN_CC('C', 'M', 27)
    BG_IBAN_CC('C', 'R', 22)
    BG_IBAN_CC('C', 'V', 25)
    BG_IBAN_CC('C', 'Y', 28)
    BG_IBAN_CC('C', 'Z', 24)
    BG_IBAN_CC('D', 'E', 22)
    BG_IBAN_CC('D', 'J', 27)
    BG_IBAN_CC('D', 'K', 18)
    BG_IBAN_CC('D', 'O', 28)
    BG_IBAN_CC('D', 'Z', 26)
    BG_IBAN_CC('E', 'E', 20)
    BG_IBAN_CC('E', 'G', 29)
    BG_IBAN_CC('E', 'S', 24)
    BG_IBAN_CC('F', 'I', 18)
    BG_IBAN_CC('F', 'K', 18)
    BG_IBAN_CC('F', 'O', 18)
    BG_IBAN_CC('F', 'R', 27)
    BG_IBAN_CC('G', 'A', 27)
    BG_IBAN_CC('G', 'B', 22)
    BG_IBAN_CC('G', 'E', 22)
    BG_IBAN_CC('G', 'I', 23)
    BG_IBAN_CC('G', 'L', 18)
    BG_IBAN_CC('G', 'Q', 27)
    BG_IBAN_CC('G', 'R', 27)
    BG_IBAN_CC('G', 'T', 28)
    BG_IBAN_CC('G', 'W', 25)
    BG_IBAN_CC('H', 'N', 28)
    BG_IBAN_CC('H', 'R', 21)
    BG_IBAN_CC('H', 'U', 28)
    BG_IBAN_CC('I', 'E', 22)
    BG_IBAN_CC('I', 'L', 23)
    BG_IBAN_CC('I', 'Q', 23)
    BG_IBAN_CC('I', 'R', 26)
    BG_IBAN_CC('I', 'S', 26)
    BG_IBAN_CC('I', 'T', 27)
    BG_IBAN_CC('J', 'O', 30)
    BG_IBAN_CC('K', 'M', 27)
    BG_IBAN_CC('K', 'W', 30)
    BG_IBAN_CC('K', 'Z', 20)
    BG_IBAN_CC('L', 'B', 28)
    BG_IBAN_CC('L', 'C', 32)
    BG_IBAN_CC('L', 'I', 21)
    BG_IBAN_CC('L', 'T', 20)
    BG_IBAN_CC('L', 'U', 20)
    BG_IBAN_CC('L', 'V', 21)
    BG_IBAN_CC('L', 'Y', 25)
    BG_IBAN_CC('M', 'A', 28)
    BG_IBAN_CC('M', 'C', 27)
    BG_IBAN_CC('M', 'D', 24)
    BG_IBAN_CC('M', 'E', 22)
    BG_IBAN_CC('M', 'G', 27)
    BG_IBAN_CC('M', 'K', 19)
    BG_IBAN_CC('M', 'L', 28)
    BG_IBAN_CC('M', 'N', 20)
    BG_IBAN_CC('M', 'R', 27)
    BG_IBAN_CC('M', 'T', 31)
    BG_IBAN_CC('M', 'U', 30)
    BG_IBAN_CC('M', 'Z', 25)
    BG_IBAN_CC('N', 'E', 28)
    BG_IBAN_CC('N', 'I', 28)
    BG_IBAN_CC('N', 'L', 18)
    BG_IBAN_CC('N', 'O', 15)
    BG_IBAN_CC('O', 'M', 23)
    BG_IBAN_CC('P', 'K', 24)
    BG_IBAN_CC('P', 'L', 28)
    BG_IBAN_CC('P', 'S', 29)
    BG_IBAN_CC('P', 'T', 25)
    BG_IBAN_CC('Q', 'A', 29)
    BG_IBAN_CC('R', 'O', 24)
    BG_IBAN_CC('R', 'S', 22)
    BG_IBAN_CC('R', 'U', 33)
    BG_IBAN_CC('S', 'A', 24)
    BG_IBAN_CC('S', 'C', 31)
    BG_IBAN_CC('S', 'D', 18)
    BG_IBAN_CC('S', 'E', 24)
    BG_IBAN_CC('S', 'I', 19)
    BG_IBAN_CC('S', 'K', 24)
    BG_IBAN_CC('S', 'M', 27)
    BG_IBAN_CC('S', 'N', 28)
    BG_IBAN_CC('S', 'O', 23)
    BG_IBAN_CC('S', 'T', 25)
    BG_IBAN_CC('S', 'V', 28)
    BG_IBAN_CC('T', 'D', 27)
    BG_IBAN_CC('T', 'G', 28)
    BG_IBAN_CC('T', 'L', 23)
    BG_IBAN_CC('T', 'N', 24)
    BG_IBAN_CC('T', 'R', 26)
    BG_IBAN_CC('U', 'A', 29)
    BG_IBAN_CC('V', 'A', 22)
    BG_IBAN_CC('V', 'G', 24)
    BG_IBAN_CC('X', 'K', 20)
    BG_IBAN_CC('Y', 'E', 30)
#undef BG_IBAN_CC
    default: return 0;
    }
}

bool bg_detect_iban_valid(const char *s, size_t n)
{
    char b[40];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (c == ' ')
            continue;
        if (!is_digit(c) && !is_upper(c))
            return false;
        if (k >= sizeof b)
            return false;
        b[k++] = (char)c;
    }
    if (k < 15 || !is_upper((unsigned char)b[0]) || !is_upper((unsigned char)b[1]) ||
        !is_digit((unsigned char)b[2]) || !is_digit((unsigned char)b[3]))
        return false;
    int want = bg_detect_iban_length(b);
    if (want == 0 || (size_t)want != k)
        return false;
    /* mod 97 over BBAN + country + check digits, letters as 10..35. */
    unsigned rem = 0;
    for (size_t i = 0; i < k; i++) {
        unsigned c = (unsigned char)b[(i + 4) % k];
        if (is_digit(c))
            rem = (rem * 10 + (c - '0')) % 97;
        else
            rem = (rem * 100 + (c - 'A' + 10)) % 97;
    }
    return rem == 1;
}

bool bg_detect_ssn_valid(const char *s, size_t n)
{
    char d[10];
    size_t len = digits_of(s, n, d, 9);
    if (len != 9)
        return false;
    if (n != 9) {
        /* Separated: AAA?GG?SSSS with one consistent separator. */
        if (n != 11)
            return false;
        char sep = s[3];
        if ((sep != '-' && sep != ' ' && sep != '.') || s[6] != sep)
            return false;
    }
    unsigned area = prefix_num(d, 3), group = prefix_num(d + 3, 2), serial = prefix_num(d + 5, 4);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
        return false;
    /* Not one digit repeated (111-11-1111) nor the 123-45-6789 placeholder. */
    if (memcmp(d, "123456789", 9) == 0)
        return false;
    size_t same = 1;
    for (size_t i = 1; i < 9; i++)
        same += d[i] == d[0];
    return same != 9;
}

/* File extensions that look like TLDs after an '@' in asset names ("logo@2x.png"), as the
 * zero-padded little-endian word of their lowercase letters: a switch is a compare tree. */
#define BG_W(a, b, c, d, e) \
    ((uint64_t)(a) | (uint64_t)(b) << 8 | (uint64_t)(c) << 16 | (uint64_t)(d) << 24 | (uint64_t)(e) << 32)
static bool not_tld(uint64_t w)
{
    switch (w) {
    case BG_W('p', 'n', 'g', 0, 0): /* png */
    case BG_W('j', 'p', 'g', 0, 0): /* jpg */
    case BG_W('j', 'p', 'e', 'g', 0): /* jpeg */
    case BG_W('g', 'i', 'f', 0, 0): /* gif */
    case BG_W('s', 'v', 'g', 0, 0): /* svg */
    case BG_W('w', 'e', 'b', 'p', 0): /* webp */
    case BG_W('i', 'c', 'o', 0, 0): /* ico */
    case BG_W('b', 'm', 'p', 0, 0): /* bmp */
    case BG_W('c', 's', 's', 0, 0): /* css */
    case BG_W('j', 's', 0, 0, 0): /* js */
    case BG_W('m', 'j', 's', 0, 0): /* mjs */
    case BG_W('t', 's', 0, 0, 0): /* ts */
    case BG_W('j', 's', 'o', 'n', 0): /* json */
    case BG_W('m', 'a', 'p', 0, 0): /* map */
    case BG_W('h', 't', 'm', 'l', 0): /* html */
    case BG_W('h', 't', 'm', 0, 0): /* htm */
    case BG_W('p', 'd', 'f', 0, 0): /* pdf */
    case BG_W('t', 'x', 't', 0, 0): /* txt */
    case BG_W('x', 'm', 'l', 0, 0): /* xml */
    case BG_W('z', 'i', 'p', 0, 0): /* zip */
    case BG_W('g', 'z', 0, 0, 0): /* gz */
    case BG_W('t', 'g', 'z', 0, 0): /* tgz */
    case BG_W('w', 'o', 'f', 'f', 0): /* woff */
    case BG_W('w', 'o', 'f', 'f', '2'): /* woff2 */
    case BG_W('t', 't', 'f', 0, 0): /* ttf */
    case BG_W('m', 'p', '4', 0, 0): /* mp4 */
    case BG_W('m', 'p', '3', 0, 0): /* mp3 */
    case BG_W('w', 'a', 'v', 0, 0): /* wav */
    case BG_W('a', 'v', 'i', 'f', 0): /* avif */
        return true;
    default:
        return false;
    }
}
#undef BG_W

/* Byte classes for the e-mail grammar: a local-part byte, a domain-label byte, a letter. */
enum { EM_LOCAL = 1, EM_DOMAIN = 2, EM_ALPHA = 4 };
static const uint8_t em_cls[256] = {
    ['0' ... '9'] = EM_LOCAL | EM_DOMAIN,
    ['A' ... 'Z'] = EM_LOCAL | EM_DOMAIN | EM_ALPHA,
    ['a' ... 'z'] = EM_LOCAL | EM_DOMAIN | EM_ALPHA,
    ['-'] = EM_LOCAL | EM_DOMAIN,
    ['.'] = EM_LOCAL, ['_'] = EM_LOCAL, ['%'] = EM_LOCAL, ['+'] = EM_LOCAL, ['\''] = EM_LOCAL,
};

bool bg_detect_email_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    /* The local part runs to the first byte that is no local-part byte: it must be the one '@'
     * ('@' is neither a local-part nor a domain byte, so a second one fails the domain loop). No
     * leading or trailing dot, no two in a row. */
    size_t ll = 0;
    unsigned prev = '.';
    for (; ll < n && ll <= 64 && (em_cls[u[ll]] & EM_LOCAL); ll++) {
        if (u[ll] == '.' && prev == '.')
            return false;
        prev = u[ll];
    }
    if (ll == 0 || ll > 64 || ll == n || u[ll] != '@' || prev == '.')
        return false;
    return bg_detect_email_domain_valid(s + ll + 1, n - ll - 1);
}

bool bg_detect_email_domain_valid(const char *s, size_t dl)
{
    if (dl < 4 || dl > 253)
        return false;
    const unsigned char *d = (const unsigned char *)s;
    /* Labels of letters, digits and '-' (not at either end), 1 to 63 bytes, split by dots. */
    size_t labels = 0, lstart = 0, i = 0;
    for (;;) {
        /* A label's bytes in a tight loop; it must stop at a dot or the end. */
        while (i < dl && (em_cls[d[i]] & EM_DOMAIN))
            i++;
        if (i == dl)
            break;
        if (d[i] != '.')
            return false;
        size_t len = i - lstart;
        if (len == 0 || len > 63 || d[lstart] == '-' || d[i - 1] == '-')
            return false;
        labels++;
        lstart = ++i;
    }
    size_t len = dl - lstart;
    if (len == 0 || len > 63 || d[lstart] == '-' || d[dl - 1] == '-')
        return false;
    labels++;
    /* TLD: letters (2+), or punycode xn--... */
    const unsigned char *t = d + lstart;
    if (len >= 4 && memcmp(t, "xn--", 4) == 0)
        return labels >= 2;
    if (len < 2)
        return false;
    /* Letters only; for a TLD of at most 5 letters (file extensions are no longer: only those
     * lengths are compared) the word not_tld's cases are written as is built on the way: the TLD
     * lowercased, one byte a letter from the low end, zero-padded. */
    bool short_tld = len <= 5;
    uint64_t lw = 0;
    for (size_t k = 0; k < len; k++) {
        unsigned c = t[k];
        if (!(em_cls[c] & EM_ALPHA))
            return false;
        if (short_tld)
            lw |= (uint64_t)(c | 0x20) << (8 * k);
    }
    if (short_tld && not_tld(lw))
        return false;
    return labels >= 2;
}

bool bg_detect_ipv4_valid(const char *s, size_t n)
{
    /* Four parts of 1 to 3 digits split by dots, each <= 255, no leading zero, nothing after. */
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || u[i] != '.')
                return false;
            i++;
        }
        if (i >= n || !is_digit(u[i]))
            return false;
        unsigned v = u[i++] - '0';
        if (i < n && is_digit(u[i])) {
            if (v == 0)
                return false;
            v = v * 10 + (u[i++] - '0');
            if (i < n && is_digit(u[i])) {
                v = v * 10 + (u[i++] - '0');
                if (v > 255 || (i < n && is_digit(u[i])))
                    return false;
            }
        }
    }
    return i == n;
}

bool bg_detect_ipv6_valid(const char *s, size_t n)
{
    /* Zone id: "%name" at the end. */
    const char *pct = memchr(s, '%', n);
    if (pct) {
        size_t zl = n - (size_t)(pct - s) - 1;
        if (zl == 0)
            return false;
        for (size_t k = 1; k <= zl; k++)
            if (!is_alnum((unsigned char)pct[k]) && pct[k] != '_' && pct[k] != '.' && pct[k] != '-')
                return false;
        n = (size_t)(pct - s);
    }
    int groups = 0;
    bool dbl = false;
    size_t i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        dbl = true;
        i = 2;
        if (i == n)
            return false; /* "::" alone: unspecified, not an address of anyone */
    } else if (n >= 1 && s[0] == ':') {
        return false;
    }
    while (i < n) {
        size_t st = i;
        while (i < n && is_hex((unsigned char)s[i]) && i - st < 5)
            i++;
        size_t gl = i - st;
        if (i < n && s[i] == '.') {
            /* Embedded IPv4 takes the last 32 bits. */
            if (!bg_detect_ipv4_valid(s + st, n - st))
                return false;
            groups += 2;
            i = n;
            break;
        }
        if (gl == 0 || gl > 4)
            return false;
        groups++;
        if (i == n)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < n && s[i] == ':') {
            if (dbl)
                return false;
            dbl = true;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return false;
        }
    }
    return dbl ? groups <= 7 && groups >= 1 : groups == 8;
}
