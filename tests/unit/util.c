/*
 * util.c (unit) — the byte buffer and the wipe: bg_wipe zeroes exactly the bytes asked for at
 * every alignment and length (the 16-byte stores, their tail, the byte tail), nothing either
 * side; bg_buf_dispose_secure empties and frees; appends after a reset start clean; the
 * word-at-a-time ASCII case folding (bg_ascii_lower8, bg_lit_ieq, bg_span_ieq2) agrees with a
 * byte-by-byte reference for every byte value at every position and length.
 * Single-threaded.
 */
#include "util.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static void test_wipe_exact_bytes_every_alignment_and_length(void)
{
    unsigned char area[512 + 64];
    for (size_t off = 0; off < 17; off++) {
        for (size_t n = 0; n <= 300; n++) {
            memset(area, 0xa5, sizeof area);
            bg_wipe(area + off, n);
            size_t bad = 0;
            for (size_t i = 0; i < sizeof area; i++) {
                bool inside = i >= off && i < off + n;
                if (area[i] != (inside ? 0 : 0xa5))
                    bad++;
            }
            if (bad)
                bg_test_fail(__FILE__, __LINE__, "offset %zu length %zu: %zu bytes wrong", off, n, bad);
        }
    }
}

static void test_wipe_large_unaligned(void)
{
    size_t n = 16384 + 7;
    unsigned char *p = malloc(n + 2);
    CHECK(p != NULL);
    memset(p, 0x3c, n + 2);
    bg_wipe(p + 1, n);
    CHECK_INT(p[0], 0x3c);
    CHECK_INT(p[n + 1], 0x3c);
    size_t nonzero = 0;
    for (size_t i = 1; i <= n; i++)
        nonzero += p[i] != 0;
    CHECK_INT(nonzero, 0);
    free(p);
}

static void test_buf_dispose_secure_and_reuse(void)
{
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_append(&b, "secret value", 12);
    CHECK_SPAN(b.data, b.len, "secret value");
    bg_buf_dispose_secure(&b);
    CHECK(b.data == NULL);
    CHECK_INT(b.len, 0);
    bg_buf_append(&b, "abc", 3);
    bg_buf_reset(&b);
    bg_buf_append(&b, "x", 1);
    CHECK_SPAN(b.data, b.len, "x");
    CHECK_INT(b.data[b.len], 0);
    bg_buf_dispose_secure(&b);
}

static int ref_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static bool ref_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ref_lower((unsigned char)a[i]) != ref_lower((unsigned char)b[i]))
            return false;
    return true;
}

static void test_ascii_lower8_every_byte(void)
{
    for (int c = 0; c < 256; c++) {
        for (int pos = 0; pos < 8; pos++) {
            unsigned char in[8], want[8];
            for (int k = 0; k < 8; k++) /* neighbours that would carry or borrow if the trick leaked */
                in[k] = (unsigned char)(k == pos ? c : (k & 1 ? 0xff : 'Z'));
            for (int k = 0; k < 8; k++)
                want[k] = (unsigned char)ref_lower(in[k]);
            uint64_t x, w;
            memcpy(&x, in, 8);
            memcpy(&w, want, 8);
            if (bg_ascii_lower8(x) != w)
                bg_test_fail(__FILE__, __LINE__, "byte 0x%02x at %d folded wrongly", c, pos);
        }
    }
}

static void test_lit_ieq_and_span_ieq2_match_reference(void)
{
    /* A lowercase literal against inputs that differ from it by one byte (every value, every
     * position) or only in case, for every length 0..40: the word compares and their
     * overlapping tails must agree with the byte loop. */
    const char base[] = "proxy-authorization-x-forwarded-for-0123";
    char lit[48], in[48];
    size_t bad = 0, equal = 0;
    for (size_t n = 0; n <= 40; n++) {
        memcpy(lit, base, n);
        for (size_t pos = 0; pos < (n ? n : 1); pos++) {
            for (int c = 0; c < 256; c++) {
                memcpy(in, lit, n);
                if (n)
                    in[pos] = (char)c;
                bool want = ref_ieq(in, lit, n);
                equal += want;
                if (bg_lit_ieq(in, lit, n) != want || bg_span_ieq2(in, n, lit, n) != want ||
                    bg_span_ieq2(lit, n, in, n) != want)
                    bad++;
            }
        }
        for (size_t k = 0; k < n; k++) /* all upper case */
            in[k] = (char)(lit[k] >= 'a' && lit[k] <= 'z' ? lit[k] - 32 : lit[k]);
        if (!bg_lit_ieq(in, lit, n) || !bg_span_ieq2(in, n, lit, n))
            bad++;
    }
    CHECK_INT(bad, 0);
    CHECK(equal > 1000); /* the loop did compare equal inputs, not only different ones */
    CHECK(!bg_span_ieq2("abc", 3, "abcd", 4));
    CHECK(BG_NAME_IS("Content-Length", 14, "content-length"));
    CHECK(!BG_NAME_IS("Content-Lengtz", 14, "content-length"));
    CHECK(!BG_NAME_IS("Content-Length", 13, "content-length"));
}

int main(void)
{
    RUN(test_wipe_exact_bytes_every_alignment_and_length);
    RUN(test_wipe_large_unaligned);
    RUN(test_buf_dispose_secure_and_reuse);
    RUN(test_ascii_lower8_every_byte);
    RUN(test_lit_ieq_and_span_ieq2_match_reference);
    return bg_test_done();
}
