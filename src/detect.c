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
static const struct {
    char cc[3];
    uint8_t len;
} iban_len[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AO", 25}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BF", 28},
    {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BJ", 28}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CI", 28}, {"CM", 27},
    {"CR", 22}, {"CV", 25}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"DZ", 26},
    {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GA", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GQ", 27}, {"GR", 27}, {"GT", 28}, {"GW", 25}, {"HN", 28}, {"HR", 21},
    {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IR", 26}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KM", 27},
    {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"LY", 25},
    {"MA", 28}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MG", 27}, {"MK", 19}, {"ML", 28}, {"MN", 20}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"MZ", 25}, {"NE", 28}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
    {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SN", 28}, {"SO", 23}, {"ST", 25}, {"SV", 28},
    {"TD", 27}, {"TG", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
    {"YE", 30},
};

int bg_detect_iban_length(const char *cc)
{
    for (size_t i = 0; i < sizeof iban_len / sizeof iban_len[0]; i++)
        if (iban_len[i].cc[0] == cc[0] && iban_len[i].cc[1] == cc[1])
            return iban_len[i].len;
    return 0;
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

/* File extensions that look like TLDs after an '@' in asset names ("logo@2x.png"). */
static const char not_tld[][6] = {"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "css", "js",
                                  "mjs", "ts", "json", "map", "html", "htm", "pdf", "txt", "xml", "zip",
                                  "gz", "tgz", "woff", "woff2", "ttf", "mp4", "mp3", "wav", "avif"};

bool bg_detect_email_valid(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at || at == s || memchr(at + 1, '@', n - (size_t)(at - s) - 1))
        return false;
    size_t ll = (size_t)(at - s), dl = n - ll - 1;
    if (ll > 64 || dl < 4 || dl > 253)
        return false;
    for (size_t i = 0; i < ll; i++) {
        unsigned c = (unsigned char)s[i];
        if (!(is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\''))
            return false;
        if (c == '.' && (i == 0 || i + 1 == ll || s[i - 1] == '.'))
            return false;
    }
    const char *d = at + 1;
    size_t labels = 0, lstart = 0;
    for (size_t i = 0; i <= dl; i++) {
        if (i == dl || d[i] == '.') {
            size_t len = i - lstart;
            if (len == 0 || len > 63 || d[lstart] == '-' || d[i - 1] == '-')
                return false;
            labels++;
            if (i == dl) {
                /* TLD: letters (2+), or punycode xn--... */
                const char *t = d + lstart;
                if (len >= 4 && memcmp(t, "xn--", 4) == 0)
                    return labels >= 2;
                if (len < 2)
                    return false;
                for (size_t k = 0; k < len; k++)
                    if (!is_alpha((unsigned char)t[k]))
                        return false;
                /* File extensions are at most 5 letters: only those lengths are compared. */
                if (len <= 5) {
                    /* The TLD lowercased and zero-padded to six bytes, as the table's entries
                     * are: one 8-byte compare per entry (the two bytes past six stay zero). */
                    char lt[8] = {0};
                    for (size_t k = 0; k < len; k++)
                        lt[k] = (char)(t[k] | 0x20); /* letters only here */
                    uint64_t lw, ww = 0;
                    memcpy(&lw, lt, 8);
                    for (size_t k = 0; k < sizeof not_tld / sizeof not_tld[0]; k++) {
                        memcpy(&ww, not_tld[k], sizeof not_tld[k]);
                        if (ww == lw)
                            return false;
                    }
                }
                return labels >= 2;
            }
            lstart = i + 1;
            continue;
        }
        unsigned c = (unsigned char)d[i];
        if (!is_alnum(c) && c != '-')
            return false;
    }
    return false;
}

bool bg_detect_ipv4_valid(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
        size_t st = i;
        unsigned v = 0;
        while (i < n && is_digit((unsigned char)s[i]) && i - st < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == st || v > 255 || (i - st > 1 && s[st] == '0'))
            return false;
        if (i < n && is_digit((unsigned char)s[i]))
            return false;
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
