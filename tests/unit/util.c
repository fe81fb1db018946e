/*
 * util.c (unit) — the byte buffer and the wipe: bg_wipe zeroes exactly the bytes asked for at
 * every alignment and length (the 16-byte stores, their tail, the byte tail), nothing either
 * side; bg_buf_dispose_secure empties and frees; appends after a reset start clean.
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

int main(void)
{
    RUN(test_wipe_exact_bytes_every_alignment_and_length);
    RUN(test_wipe_large_unaligned);
    RUN(test_buf_dispose_secure_and_reuse);
    return bg_test_done();
}
