/*
 * tests/fuzz/seal_open.c — libFuzzer target over the parsers that see vendor-controlled bytes:
 * bg_seal_open_token, bg_seal_open_jwe and bg_seal_reveal (vendor responses), plus a
 * seal/open round-trip property and bg_seal_rewrite with spans taken from the input.
 * The first byte picks the entry point; the rest is the input. Two fixed keys, k1 and k2
 * (active), so seeds made with them (tests/fuzz/seal_open/) reach the authenticated paths.
 */
#include "seal.h"

#include <stdlib.h>
#include <string.h>

static bg_keyring_t *ring;

static void setup(void)
{
    uint8_t key[BG_SEAL_KEY_LEN];
    if (bg_keyring_create(&ring) != 0)
        abort();
    for (int i = 0; i < BG_SEAL_KEY_LEN; i++)
        key[i] = (uint8_t)i;
    if (bg_keyring_add(ring, "k1", key, false) != 0)
        abort();
    for (int i = 0; i < BG_SEAL_KEY_LEN; i++)
        key[i] = (uint8_t)(64 + i);
    if (bg_keyring_add(ring, "k2", key, true) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ring)
        setup();
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    bg_buf_t out, back;
    bg_buf_init(&out);
    bg_buf_init(&back);
    size_t opened = 0;
    switch (data[0] % 6) {
    case 0:
        if (bg_seal_open_token(ring, in, n, &out) != 0 && out.len != 0)
            abort(); /* failure must leave out unchanged */
        break;
    case 1:
        if (bg_seal_open_jwe(ring, in, n, &out) != 0 && out.len != 0)
            abort();
        break;
    case 2:
    case 3:
        if (bg_seal_reveal(ring, in, n, data[0] % 6 == 2, &out, &opened) != 0)
            abort();
        if (opened == 0 && (out.len != n || memcmp(out.data ? out.data : "", in, n) != 0))
            abort(); /* nothing opened: a verbatim copy */
        break;
    case 4: /* round trips: token and JWE */
        if (n > 0) {
            if (bg_seal_token(ring, in, n, &out) != 0 || bg_seal_open_token(ring, out.data, out.len, &back) != 0)
                abort();
            if (back.len != n || memcmp(back.data, in, n) != 0)
                abort();
        }
        bg_buf_reset(&out);
        bg_buf_reset(&back);
        if (bg_seal_jwe(ring, in, n, "text/plain", &out) != 0 || bg_seal_open_jwe(ring, out.data, out.len, &back) != 0)
            abort();
        if (back.len != n || (n && memcmp(back.data, in, n) != 0))
            abort();
        break;
    case 5: { /* rewrite with up to 8 spans from the first bytes, flags included */
        bg_seal_span_t spans[8];
        size_t ns = 0, at = 0;
        size_t hdr = n < 8 ? n : 8;
        for (size_t i = 0; i + 1 < hdr && ns < 8; i += 2) {
            size_t off = at + (data[1 + i] & 15), len = data[2 + i] >> 2;
            spans[ns].offset = (uint32_t)(hdr + off);
            spans[ns].length = (uint32_t)len;
            spans[ns].quote = (uint8_t)(data[2 + i] & 3) | ((data[1 + i] >> 4) & 4);
            at = off + len;
            ns++;
        }
        (void)bg_seal_rewrite(ring, in, n, spans, ns, &out);
        break;
    }
    }
    bg_buf_dispose_secure(&out);
    bg_buf_dispose_secure(&back);
    return 0;
}
