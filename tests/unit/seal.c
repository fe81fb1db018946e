/*
 * tests/unit/seal.c — seal.c against independent implementations: a second AES-SIV (S2V with
 * EVP_MAC "CMAC" + AES-CTR, never the EVP SIV cipher) checked on the RFC 5297 A.1 vector and then
 * against bg_seal_token with 512-bit keys; JWE opened by a separate AES-256-GCM call with the key
 * derived by a hand-written HKDF (EVP_MAC "HMAC"); the `openssl` CLI where it can (kdf, enc -aes-256-ctr).
 * Plus key files (modes, rotation), tamper, rewrite / reveal, and timing. Single-threaded; makes
 * and removes a temporary directory.
 */
#include "seal.h"
#include "test.h"
#include "util.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

/* base64url → bytes through OpenSSL's EVP_DecodeBlock (padding restored here), not seal.c's decoder. */
static long b64url_dec(const char *s, size_t n, uint8_t *out)
{
    char tmp[8192];
    if (n + 4 > sizeof tmp)
        return -1;
    for (size_t i = 0; i < n; i++)
        tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    size_t m = n;
    while (m % 4)
        tmp[m++] = '=';
    int r = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)m);
    if (r < 0)
        return -1;
    return r - (long)(m - n);
}

static void key_of(uint8_t key[64], uint8_t seed)
{
    for (int i = 0; i < 64; i++)
        key[i] = (uint8_t)(seed + i * 7);
}

/* ---- the second SIV implementation (RFC 5297 §2.4, §2.6) --------------------------------- */

static void cmac(const uint8_t *key, size_t keylen, const uint8_t *m, size_t n, uint8_t out[16])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, keylen == 16 ? "AES-128-CBC" : "AES-256-CBC", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t ol = 0;
    EVP_MAC_init(c, key, keylen, p);
    EVP_MAC_update(c, m, n);
    EVP_MAC_final(c, out, &ol, 16);
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
}

static void dbl(uint8_t b[16])
{
    uint8_t carry = b[0] >> 7;
    for (int i = 0; i < 15; i++)
        b[i] = (uint8_t)(b[i] << 1 | b[i + 1] >> 7);
    b[15] = (uint8_t)(b[15] << 1);
    if (carry)
        b[15] ^= 0x87;
}

/* keylen = 32 (AES-128-SIV) or 64 (AES-256-SIV); one AD component; out = V || C. */
static void ref_siv(const uint8_t *key, size_t keylen, const uint8_t *ad, size_t adn, const uint8_t *pt,
                    size_t n, uint8_t *out)
{
    size_t half = keylen / 2;
    const uint8_t *k1 = key, *k2 = key + half;
    uint8_t d[16], t[16], zero[16] = {0};
    cmac(k1, half, zero, 16, d);
    cmac(k1, half, ad, adn, t);
    dbl(d);
    for (int i = 0; i < 16; i++)
        d[i] ^= t[i];
    uint8_t *last = malloc(n < 16 ? 16 : n);
    if (n >= 16) { /* xorend */
        memcpy(last, pt, n);
        for (int i = 0; i < 16; i++)
            last[n - 16 + i] ^= d[i];
        cmac(k1, half, last, n, out);
    } else {
        dbl(d);
        memset(last, 0, 16);
        memcpy(last, pt, n);
        last[n] = 0x80;
        for (int i = 0; i < 16; i++)
            last[i] ^= d[i];
        cmac(k1, half, last, 16, out);
    }
    free(last);
    uint8_t q[16];
    memcpy(q, out, 16);
    q[8] &= 0x7f;
    q[12] &= 0x7f;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int l = 0;
    EVP_EncryptInit_ex(x, half == 16 ? EVP_aes_128_ctr() : EVP_aes_256_ctr(), NULL, k2, q);
    EVP_EncryptUpdate(x, out + 16, &l, pt, (int)n);
    EVP_EncryptFinal_ex(x, out + 16 + l, &l);
    EVP_CIPHER_CTX_free(x);
}

static void test_rfc5297_a1(void)
{
    uint8_t key[32], ad[64], pt[64], out[64];
    size_t kl = unhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", key);
    size_t al = unhex("101112131415161718191a1b1c1d1e1f2021222324252627", ad);
    size_t pl = unhex("112233445566778899aabbccddee", pt);
    char hex[200];
    ref_siv(key, kl, ad, al, pt, pl, out);
    tohex(out, 16 + pl, hex);
    CHECK_STR(hex, "85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c");

    /* and OpenSSL's SIV cipher (the one seal.c uses, at 128 bits here) agrees with the RFC */
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-128-SIV", NULL);
    CHECK(c != NULL);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int l = 0;
    uint8_t ct[64], tag[16];
    CHECK_INT(EVP_EncryptInit_ex2(x, c, key, NULL, NULL), 1);
    CHECK_INT(EVP_EncryptUpdate(x, NULL, &l, ad, (int)al), 1);
    CHECK_INT(EVP_EncryptUpdate(x, ct, &l, pt, (int)pl), 1);
    CHECK_INT(EVP_EncryptFinal_ex(x, ct + l, &l), 1);
    CHECK_INT(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag), 1);
    memcpy(out, tag, 16);
    memcpy(out + 16, ct, pl);
    tohex(out, 16 + pl, hex);
    CHECK_STR(hex, "85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c");
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_free(c);
}

static bg_keyring_t *ring_with(const char *kid1, uint8_t seed1, const char *kid2, uint8_t seed2, int active)
{
    bg_keyring_t *k = NULL;
    uint8_t key[64];
    CHECK_INT(bg_keyring_create(&k), 0);
    key_of(key, seed1);
    CHECK_INT(bg_keyring_add(k, kid1, key, active == 1), 0);
    if (kid2) {
        key_of(key, seed2);
        CHECK_INT(bg_keyring_add(k, kid2, key, active == 2), 0);
    }
    return k;
}

/* bg_seal_token == the reference SIV-512 with the kid as AD, across lengths around the block size. */
static void test_token_matches_reference(void)
{
    bg_keyring_t *k = ring_with("k1", 3, NULL, 0, 1);
    uint8_t key[64];
    key_of(key, 3);
    static const size_t lens[] = {1, 2, 15, 16, 17, 31, 32, 33, 100, 1000};
    for (size_t li = 0; li < BG_ARRAY_SIZE(lens); li++) {
        size_t n = lens[li];
        uint8_t pt[1000], ref[1016], got[1100];
        for (size_t i = 0; i < n; i++)
            pt[i] = (uint8_t)(i * 31 + n);
        ref_siv(key, 64, (const uint8_t *)"k1", 2, pt, n, ref);
        bg_buf_t t;
        bg_buf_init(&t);
        CHECK_INT(bg_seal_token(k, pt, n, &t), 0);
        CHECK(strncmp(t.data, "bgtok:v1:k1:", 12) == 0);
        long gl = b64url_dec(t.data + 12, t.len - 12, got);
        CHECK_INT(gl, (long)(n + 16));
        if (gl == (long)(n + 16) && memcmp(got, ref, n + 16) != 0)
            bg_test_fail(__FILE__, __LINE__, "token for %zu bytes differs from the reference SIV", n);
        /* unpadded base64url: no '=', '+', '/' */
        CHECK(strpbrk(t.data + 12, "=+/") == NULL);
        bg_buf_dispose(&t);
    }
    bg_keyring_destroy(k);
}

static void test_round_trip_determinism(void)
{
    bg_keyring_t *k = ring_with("k1", 1, "k2", 2, 1);
    bg_buf_t a, b, o;
    bg_buf_init(&a), bg_buf_init(&b), bg_buf_init(&o);
    CHECK_INT(bg_seal_token(k, "alice@example.com", 17, &a), 0);
    CHECK_INT(bg_seal_token(k, "alice@example.com", 17, &b), 0);
    CHECK_STR(a.data, b.data); /* deterministic: vendors can join */
    bg_buf_reset(&b);
    CHECK_INT(bg_seal_token(k, "alice@example.con", 17, &b), 0);
    CHECK(strcmp(a.data, b.data) != 0);
    CHECK_INT(bg_seal_open_token(k, a.data, a.len, &o), 0);
    CHECK_SPAN(o.data, o.len, "alice@example.com");
    /* binary with NULs */
    bg_buf_reset(&a), bg_buf_reset(&o);
    CHECK_INT(bg_seal_token(k, "a\0b\0", 4, &a), 0);
    CHECK_INT(bg_seal_open_token(k, a.data, a.len, &o), 0);
    CHECK_INT(o.len, 4);
    CHECK(memcmp(o.data, "a\0b\0", 4) == 0);
    /* empty values are not sealed */
    bg_buf_reset(&a);
    CHECK_INT(bg_seal_token(k, "", 0, &a), -1);
    CHECK_INT(a.len, 0);
    bg_buf_dispose(&a), bg_buf_dispose(&b), bg_buf_dispose_secure(&o);
    bg_keyring_destroy(k);
}

static void test_tamper(void)
{
    bg_keyring_t *k = ring_with("k1", 1, "k2", 2, 1);
    bg_buf_t t, o;
    bg_buf_init(&t), bg_buf_init(&o);
    CHECK_INT(bg_seal_token(k, "4111111111111111", 16, &t), 0);
    char *s = strdup(t.data);
    size_t n = t.len;
    /* flip each base64 digit in turn: never opens */
    int opened = 0;
    for (size_t i = 12; i < n; i++) {
        char saved = s[i];
        s[i] = s[i] == 'A' ? 'B' : 'A';
        bg_buf_reset(&o);
        if (bg_seal_open_token(k, s, n, &o) == 0)
            opened++;
        CHECK_INT(o.len, 0);
        s[i] = saved;
    }
    CHECK_INT(opened, 0);
    /* relabelled to the other kid: the kid is authenticated */
    s[10] = '2';
    CHECK_INT(bg_seal_open_token(k, s, n, &o), -1);
    s[10] = '9';
    CHECK_INT(bg_seal_open_token(k, s, n, &o), -1); /* unknown kid */
    s[10] = '1';
    CHECK_INT(bg_seal_open_token(k, s, n, &o), 0);
    bg_buf_reset(&o);
    CHECK_INT(bg_seal_open_token(k, s, n - 1, &o), -1); /* truncated */
    CHECK_INT(bg_seal_open_token(k, s, 20, &o), -1);
    CHECK_INT(bg_seal_open_token(k, "bgtok:v1:k1:", 12, &o), -1);
    CHECK_INT(bg_seal_open_token(k, "bgtok:v2:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 44, &o), -1);
    CHECK_INT(bg_seal_open_token(k, "bgtok:v1::AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 42, &o), -1);
    CHECK_INT(o.len, 0);
    free(s);
    bg_buf_dispose(&t), bg_buf_dispose(&o);
    bg_keyring_destroy(k);
}

/* ---- key files ----------------------------------------------------------------------------- */

static char tmpdir[64];

static void write_file(const char *name, const char *text, mode_t mode)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
}

static void rm_file(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    unlink(p);
}

/* 64 bytes (seed..) as base64, wrapped at 64 columns like `openssl rand -base64 64`. */
static void key_b64(uint8_t seed, char out[128])
{
    uint8_t key[64];
    key_of(key, seed);
    char flat[100];
    EVP_EncodeBlock((unsigned char *)flat, key, 64);
    snprintf(out, 128, "%.64s\n%s\n", flat, flat + 64);
}

static void test_keyring_files(void)
{
    char err[256], b64[128];
    bg_keyring_t *k = NULL;
    strcpy(tmpdir, "/tmp/bg-seal-test-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);

    key_b64(1, b64);
    write_file("k1.key", b64, 0600);
    key_b64(2, b64);
    write_file("k2.key", b64, 0400);
    write_file("README", "not a key", 0644);
    CHECK_INT(bg_keyring_load(tmpdir, "k2", &k, err, sizeof err), 0);
    CHECK_INT(bg_keyring_count(k), 2);
    CHECK_STR(bg_keyring_active(k), "k2");

    /* the loaded keys are the file's bytes: same tokens as a keyring built in memory */
    bg_keyring_t *m = ring_with("k2", 2, NULL, 0, 1);
    bg_buf_t a, b;
    bg_buf_init(&a), bg_buf_init(&b);
    bg_seal_token(k, "x@y.z", 5, &a);
    bg_seal_token(m, "x@y.z", 5, &b);
    CHECK_STR(a.data, b.data);
    bg_buf_dispose(&a), bg_buf_dispose(&b);
    bg_keyring_destroy(m);
    bg_keyring_destroy(k);

    /* unknown active kid */
    k = (bg_keyring_t *)1;
    CHECK_INT(bg_keyring_load(tmpdir, "k3", &k, err, sizeof err), -1);
    CHECK(k == NULL);
    CHECK(strstr(err, "k3") != NULL);

    /* group/world-readable key: refused, and the message holds no key material */
    key_b64(3, b64);
    write_file("k3.key", b64, 0644);
    CHECK_INT(bg_keyring_load(tmpdir, "k1", &k, err, sizeof err), -1);
    CHECK(strstr(err, "k3.key") && strstr(err, "0644"));
    CHECK(strstr(err, "AwoR") == NULL && strstr(err, b64) == NULL);
    write_file("k3.key", b64, 0640);
    CHECK_INT(bg_keyring_load(tmpdir, "k1", &k, err, sizeof err), -1);
    rm_file("k3.key");

    /* wrong length, bad base64, bad kid */
    write_file("k4.key", "AAAA\n", 0600);
    CHECK_INT(bg_keyring_load(tmpdir, "k1", &k, err, sizeof err), -1);
    CHECK(strstr(err, "64 bytes") != NULL);
    write_file("k4.key", "!!!!not base64!!!!\n", 0600);
    CHECK_INT(bg_keyring_load(tmpdir, "k1", &k, err, sizeof err), -1);
    rm_file("k4.key");
    key_b64(5, b64);
    write_file("a:b.key", b64, 0600);
    CHECK_INT(bg_keyring_load(tmpdir, "k1", &k, err, sizeof err), -1);
    rm_file("a:b.key");
    /* a symlink is not followed */
    char target[256], link[256];
    snprintf(target, sizeof target, "%s/k1.key", tmpdir);
    snprintf(link, sizeof link, "%s/k9.key", tmpdir);
    CHECK_INT(symlink(target, link), 0);
    CHECK_INT(bg_keyring_load(tmpdir, "k1", &k, err, sizeof err), -1);
    unlink(link);
    CHECK_INT(bg_keyring_load("/nonexistent-bg-dir", "k1", &k, err, sizeof err), -1);
    CHECK_INT(bg_keyring_load(tmpdir, "k1", &k, err, sizeof err), 0);
    bg_keyring_destroy(k);

    /* certs/gen-key.sh writes a key the loader accepts (run from the repository root) */
    if (access("certs/gen-key.sh", R_OK) == 0) {
        char cmd[512], sub[128], p[256];
        snprintf(sub, sizeof sub, "%s/gen", tmpdir);
        snprintf(cmd, sizeof cmd, "sh certs/gen-key.sh %s kgen 2>/dev/null", sub);
        CHECK_INT(system(cmd), 0);
        snprintf(p, sizeof p, "%s/kgen.key", sub);
        struct stat st;
        CHECK_INT(stat(p, &st), 0);
        CHECK_INT(st.st_mode & 0777, 0600);
        CHECK_INT(bg_keyring_load(sub, "kgen", &k, err, sizeof err), 0);
        bg_keyring_destroy(k);
        snprintf(cmd, sizeof cmd, "rm -rf %s", sub);
        CHECK_INT(system(cmd), 0);
    } else {
        fprintf(stderr, "  (certs/gen-key.sh not found from here: skipped its check)\n");
    }
}

/* Rotation: tokens under k1 still open once k2 is active; new tokens are k2's. */
static void test_rotation(void)
{
    bg_keyring_t *old = ring_with("k1", 1, NULL, 0, 1);
    bg_keyring_t *now = ring_with("k1", 1, "k2", 2, 2);
    bg_buf_t t1, t2, o;
    bg_buf_init(&t1), bg_buf_init(&t2), bg_buf_init(&o);
    CHECK_INT(bg_seal_token(old, "user-42", 7, &t1), 0);
    CHECK_INT(bg_seal_token(now, "user-42", 7, &t2), 0);
    CHECK(strncmp(t1.data, "bgtok:v1:k1:", 12) == 0);
    CHECK(strncmp(t2.data, "bgtok:v1:k2:", 12) == 0);
    CHECK_INT(bg_seal_open_token(now, t1.data, t1.len, &o), 0);
    CHECK_SPAN(o.data, o.len, "user-42");
    bg_buf_reset(&o);
    CHECK_INT(bg_seal_open_token(now, t2.data, t2.len, &o), 0);
    CHECK_SPAN(o.data, o.len, "user-42");
    bg_buf_reset(&o);
    CHECK_INT(bg_seal_open_token(old, t2.data, t2.len, &o), -1); /* k2 not loaded there */
    bg_buf_dispose(&t1), bg_buf_dispose(&t2), bg_buf_dispose(&o);
    bg_keyring_destroy(old);
    bg_keyring_destroy(now);
}

/* ---- JWE ----------------------------------------------------------------------------------- */

/* HKDF-SHA256 by hand (RFC 5869) with HMAC from EVP_MAC: salt none (32 zero bytes), L = 32. */
static void ref_hkdf(const uint8_t *ikm, size_t n, const char *info, uint8_t out[32])
{
    uint8_t zero[32] = {0}, prk[32];
    size_t l = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac);
    EVP_MAC_init(c, zero, 32, p);
    EVP_MAC_update(c, ikm, n);
    EVP_MAC_final(c, prk, &l, 32);
    EVP_MAC_CTX_free(c);
    c = EVP_MAC_CTX_new(mac);
    uint8_t one = 1;
    EVP_MAC_init(c, prk, 32, p);
    EVP_MAC_update(c, (const uint8_t *)info, strlen(info));
    EVP_MAC_update(c, &one, 1);
    EVP_MAC_final(c, out, &l, 32);
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
}

static int split5(const char *s, const char *part[5], size_t len[5])
{
    int np = 0;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == 0) {
            if (np == 5)
                return -1;
            part[np] = start;
            len[np++] = (size_t)(p - start);
            start = p + 1;
            if (!*p)
                break;
        }
    }
    return np;
}

static void test_jwe(void)
{
    bg_keyring_t *k = ring_with("k1", 1, "k7", 7, 2);
    const char *msg = "Dear support, my name is Alice and my card is 4111 1111 1111 1111.";
    bg_buf_t j, o;
    bg_buf_init(&j), bg_buf_init(&o);
    CHECK_INT(bg_seal_jwe(k, msg, strlen(msg), "text/plain", &j), 0);
    CHECK(strstr(j.data, "Alice") == NULL);
    CHECK_INT(bg_seal_open_jwe(k, j.data, j.len, &o), 0);
    CHECK_SPAN(o.data, o.len, msg);

    /* open it with a separate AES-256-GCM call from the compact parts */
    const char *part[5];
    size_t pl[5];
    CHECK_INT(split5(j.data, part, pl), 5);
    CHECK_INT(pl[1], 0);
    uint8_t hdr[512], iv[32], ct[512], tag[32], pt[512], cek[32], key[64];
    long hl = b64url_dec(part[0], pl[0], hdr);
    CHECK(hl > 0);
    hdr[hl > 0 ? hl : 0] = 0;
    CHECK_STR((char *)hdr, "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"k7\",\"cty\":\"text/plain\"}");
    CHECK_INT(b64url_dec(part[2], pl[2], iv), 12);
    CHECK_INT(b64url_dec(part[4], pl[4], tag), 16);
    long cl = b64url_dec(part[3], pl[3], ct);
    CHECK_INT(cl, (long)strlen(msg));
    key_of(key, 7);
    ref_hkdf(key, 64, "bordergate jwe A256GCM v1", cek);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int l = 0, l2 = 0;
    CHECK_INT(EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, cek, iv), 1);
    CHECK_INT(EVP_DecryptUpdate(x, NULL, &l, (const uint8_t *)part[0], (int)pl[0]), 1);
    CHECK_INT(EVP_DecryptUpdate(x, pt, &l, ct, (int)cl), 1);
    CHECK_INT(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, tag), 1);
    CHECK_INT(EVP_DecryptFinal_ex(x, pt + l, &l2), 1);
    EVP_CIPHER_CTX_free(x);
    CHECK_SPAN(pt, l, msg);

    /* the openssl CLI derives the same GCM key */
    char cmd[512], hexkey[129], hexcek[65], line[256] = "";
    tohex(key, 64, hexkey);
    tohex(cek, 32, hexcek);
    snprintf(cmd, sizeof cmd,
             "openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:%s "
             "-kdfopt 'info:bordergate jwe A256GCM v1' HKDF 2>/dev/null | tr -d ':\\n' | tr A-F a-f",
             hexkey);
    FILE *f = popen(cmd, "r");
    if (f && fgets(line, sizeof line, f) && line[0]) {
        CHECK_STR(line, hexcek);
    } else {
        fprintf(stderr, "  (openssl kdf unavailable: CLI check skipped)\n");
    }
    if (f)
        pclose(f);

    /* two seals of one body differ (random IV) */
    bg_buf_t j2;
    bg_buf_init(&j2);
    CHECK_INT(bg_seal_jwe(k, msg, strlen(msg), NULL, &j2), 0);
    CHECK(strcmp(j.data, j2.data) != 0);
    bg_buf_reset(&o);
    CHECK_INT(bg_seal_open_jwe(k, j2.data, j2.len, &o), 0);
    CHECK_SPAN(o.data, o.len, msg);

    /* tamper: ciphertext, tag, header, an encrypted key, too few parts */
    char *t = strdup(j.data);
    size_t tl = j.len;
    bg_buf_reset(&o);
    t[part[3] - j.data + 2] ^= 1;
    CHECK_INT(bg_seal_open_jwe(k, t, tl, &o), -1);
    CHECK_INT(o.len, 0);
    strcpy(t, j.data);
    t[tl - 3] = t[tl - 3] == 'A' ? 'B' : 'A';
    CHECK_INT(bg_seal_open_jwe(k, t, tl, &o), -1);
    strcpy(t, j.data);
    t[5] = t[5] == 'A' ? 'B' : 'A';
    CHECK_INT(bg_seal_open_jwe(k, t, tl, &o), -1);
    CHECK_INT(bg_seal_open_jwe(k, j.data, (size_t)(part[4] - j.data) - 1, &o), -1);
    CHECK_INT(o.len, 0);
    free(t);

    /* a header we do not accept, correctly encrypted: alg/enc other, zip, duplicate */
    static const char *bad[] = {
        "{\"alg\":\"A256KW\",\"enc\":\"A256GCM\",\"kid\":\"k7\"}",
        "{\"alg\":\"dir\",\"enc\":\"A128GCM\",\"kid\":\"k7\"}",
        "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"k7\",\"zip\":\"DEF\"}",
        "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"k7\",\"kid\":\"k1\"}",
        "{\"alg\":\"dir\",\"enc\":\"A256GCM\"}",
        "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"k7\",\"x\":{}}",
    };
    for (size_t i = 0; i < BG_ARRAY_SIZE(bad) + 1; i++) {
        const char *h = i < BG_ARRAY_SIZE(bad) ? bad[i] : "{ \"enc\" : \"A256GCM\" , \"alg\":\"dir\",\"kid\":\"k7\",\"p2c\":4096}";
        char eh[256], ivb[32], ctb[512], tagb[32], jwe[1024];
        unsigned char hb[256];
        int ehl = EVP_EncodeBlock(hb, (const unsigned char *)h, (int)strlen(h));
        int m = 0;
        for (int c = 0; c < ehl; c++)
            if (hb[c] != '=')
                eh[m++] = hb[c] == '+' ? '-' : hb[c] == '/' ? '_' : (char)hb[c];
        eh[m] = 0;
        uint8_t ctt[64], tg[16];
        x = EVP_CIPHER_CTX_new();
        EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, cek, iv);
        EVP_EncryptUpdate(x, NULL, &l, (const uint8_t *)eh, m);
        EVP_EncryptUpdate(x, ctt, &l, (const uint8_t *)"hi", 2);
        EVP_EncryptFinal_ex(x, ctt + l, &l2);
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, tg);
        EVP_CIPHER_CTX_free(x);
        bg_buf_t e;
        bg_buf_init(&e);
        /* reuse the unit's own base64url through a token-free path: encode by hand */
        unsigned char tmp[64];
        int tln;
#define URL(dst, src, n)                                                                       \
        tln = EVP_EncodeBlock(tmp, src, n);                                                    \
        for (int c = 0, w = 0; c <= tln; c++)                                                  \
            if (c == tln || tmp[c] != '=')                                                     \
                dst[w++] = c == tln ? 0 : tmp[c] == '+' ? '-' : tmp[c] == '/' ? '_' : (char)tmp[c];
        URL(ivb, iv, 12);
        URL(ctb, ctt, 2);
        URL(tagb, tg, 16);
#undef URL
        snprintf(jwe, sizeof jwe, "%s..%s.%s.%s", eh, ivb, ctb, tagb);
        int want = i < BG_ARRAY_SIZE(bad) ? -1 : 0; /* the last one is fine (spaces, order, extra name) */
        int got = bg_seal_open_jwe(k, jwe, strlen(jwe), &e);
        if (got != want)
            bg_test_fail(__FILE__, __LINE__, "header %s: got %d, want %d", h, got, want);
        if (want == 0)
            CHECK_SPAN(e.data, e.len, "hi");
        bg_buf_dispose(&e);
    }

    /* empty body */
    bg_buf_reset(&j), bg_buf_reset(&o);
    CHECK_INT(bg_seal_jwe(k, "", 0, NULL, &j), 0);
    CHECK_INT(bg_seal_open_jwe(k, j.data, j.len, &o), 0);
    CHECK_INT(o.len, 0);
    bg_buf_dispose(&j), bg_buf_dispose(&j2), bg_buf_dispose_secure(&o);
    bg_keyring_destroy(k);
}

/* The CTR half of a token through `openssl enc -aes-256-ctr`, with the IV the RFC derives from the tag. */
static void test_openssl_cli_ctr(void)
{
    bg_keyring_t *k = ring_with("k1", 9, NULL, 0, 1);
    const char *msg = "bob@example.org";
    bg_buf_t t;
    bg_buf_init(&t);
    CHECK_INT(bg_seal_token(k, msg, strlen(msg), &t), 0);
    uint8_t raw[64], key[64];
    long rl = b64url_dec(t.data + 12, t.len - 12, raw);
    CHECK_INT(rl, (long)strlen(msg) + 16);
    key_of(key, 9);
    uint8_t q[16];
    memcpy(q, raw, 16);
    q[8] &= 0x7f, q[12] &= 0x7f;
    char hk2[65], hq[33], hct[100], cmd[512], out[128] = "";
    tohex(key + 32, 32, hk2);
    tohex(q, 16, hq);
    tohex(raw + 16, (size_t)rl - 16, hct);
    snprintf(cmd, sizeof cmd, "printf '%s' | xxd -r -p | openssl enc -d -aes-256-ctr -K %s -iv %s 2>/dev/null",
             hct, hk2, hq);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    if (f)
        pclose(f);
    if (n == 0)
        fprintf(stderr, "  (openssl/xxd unavailable: CLI CTR check skipped)\n");
    else
        CHECK_SPAN(out, n, msg);
    bg_buf_dispose(&t);
    bg_keyring_destroy(k);
}

/* ---- rewrite and reveal ------------------------------------------------------------------- */

static void tok(bg_keyring_t *k, const char *s, bg_buf_t *b)
{
    bg_buf_reset(b);
    CHECK_INT(bg_seal_token(k, s, strlen(s), b), 0);
}

static void test_rewrite_json(void)
{
    bg_keyring_t *k = ring_with("k1", 1, NULL, 0, 1);
    const char *in = "{\"email\":\"alice\\u0040example.com\",\"age\":42,\"ok\":true,\"note\":\"say \\\"hi\\\"\"}";
    /* spans: the inside of the email string, the number 42, the inside of note */
    const char *e = strstr(in, "alice"), *a = strstr(in, "42"), *nt = strstr(in, "say");
    bg_seal_span_t sp[3] = {
        {(uint32_t)(e - in), (uint32_t)strlen("alice\\u0040example.com"), BG_SEAL_JSON_STRING},
        {(uint32_t)(a - in), 2, BG_SEAL_QUOTE},
        {(uint32_t)(nt - in), (uint32_t)strlen("say \\\"hi\\\""), BG_SEAL_JSON_STRING},
    };
    bg_buf_t out, t1, t2, t3, want, rev;
    bg_buf_init(&out), bg_buf_init(&t1), bg_buf_init(&t2), bg_buf_init(&t3), bg_buf_init(&want), bg_buf_init(&rev);
    CHECK_INT(bg_seal_rewrite(k, in, strlen(in), sp, 3, &out), 0);
    tok(k, "alice@example.com", &t1); /* unescaped before sealing */
    tok(k, "42", &t2);
    tok(k, "say \"hi\"", &t3);
    bg_buf_printf(&want, "{\"email\":\"%s\",\"age\":\"%s\",\"ok\":true,\"note\":\"%s\"}", t1.data, t2.data, t3.data);
    CHECK_STR(out.data, want.data);
    CHECK(strstr(out.data, "alice") == NULL && strstr(out.data, "42") == NULL);

    /* reveal, JSON: strings come back escaped, so the document stays valid */
    size_t opened = 0;
    CHECK_INT(bg_seal_reveal(k, out.data, out.len, true, &rev, &opened), 0);
    CHECK_INT(opened, 3);
    CHECK_STR(rev.data, "{\"email\":\"alice@example.com\",\"age\":\"42\",\"ok\":true,\"note\":\"say \\\"hi\\\"\"}");

    /* percent-encoded query: %40 and '+' decoded first, so the token joins with the JSON one */
    const char *q = "email=alice%40example.com&x=1";
    bg_seal_span_t qs = {6, (uint32_t)strlen("alice%40example.com"), BG_SEAL_PERCENT};
    bg_buf_reset(&out);
    CHECK_INT(bg_seal_rewrite(k, q, strlen(q), &qs, 1, &out), 0);
    bg_buf_reset(&want);
    bg_buf_printf(&want, "email=%s&x=1", t1.data);
    CHECK_STR(out.data, want.data);
    bg_buf_reset(&rev);
    CHECK_INT(bg_seal_reveal(k, out.data, out.len, false, &rev, &opened), 0);
    CHECK_INT(opened, 1);
    CHECK_STR(rev.data, "email=alice@example.com&x=1");
    /* a path segment: %XX decoded, '+' is a '+' (BG_SEAL_NOPLUS), so "a+b%40example.com" seals to
     * the token of "a+b@example.com" (the query's "a%2Bb%40example.com"), not of "a b@…" */
    const char *pq = "/u/a+b%40example.com?e=a%2Bb%40example.com";
    bg_seal_span_t ps[2] = {{3, 17, BG_SEAL_PERCENT | BG_SEAL_NOPLUS}, {23, 19, BG_SEAL_PERCENT}};
    bg_buf_reset(&out);
    CHECK_INT(bg_seal_rewrite(k, pq, strlen(pq), ps, 2, &out), 0);
    bg_buf_reset(&t2);
    tok(k, "a+b@example.com", &t2);
    bg_buf_reset(&want);
    bg_buf_printf(&want, "/u/%s?e=%s", t2.data, t2.data);
    CHECK_STR(out.data, want.data);

    /* bad spans: overlapping, unsorted, out of bounds, bad escape → -1, out as it was */
    bg_buf_reset(&out);
    bg_buf_puts(&out, "prefix:");
    bg_seal_span_t ov[2] = {{0, 5, 0}, {3, 2, 0}};
    CHECK_INT(bg_seal_rewrite(k, in, strlen(in), ov, 2, &out), -1);
    bg_seal_span_t oob = {(uint32_t)strlen(in) - 1, 5, 0};
    CHECK_INT(bg_seal_rewrite(k, in, strlen(in), &oob, 1, &out), -1);
    bg_seal_span_t bad = {0, 4, BG_SEAL_JSON_STRING};
    CHECK_INT(bg_seal_rewrite(k, "ab\\x", 4, &bad, 1, &out), -1);
    bg_seal_span_t lone = {0, 6, BG_SEAL_JSON_STRING};
    CHECK_INT(bg_seal_rewrite(k, "\\ud800", 6, &lone, 1, &out), -1);
    CHECK_STR(out.data, "prefix:");
    /* a surrogate pair is one code point */
    bg_seal_span_t pair = {0, 12, BG_SEAL_JSON_STRING};
    bg_buf_reset(&out);
    CHECK_INT(bg_seal_rewrite(k, "\\ud83d\\ude00", 12, &pair, 1, &out), 0);
    tok(k, "\xf0\x9f\x98\x80", &t1);
    CHECK_STR(out.data, t1.data);
    /* no spans: a copy; an empty span stays empty */
    bg_buf_reset(&out);
    CHECK_INT(bg_seal_rewrite(k, "abc", 3, NULL, 0, &out), 0);
    CHECK_STR(out.data, "abc");
    bg_seal_span_t empty = {1, 0, BG_SEAL_QUOTE};
    bg_buf_reset(&out);
    CHECK_INT(bg_seal_rewrite(k, "ab", 2, &empty, 1, &out), 0);
    CHECK_STR(out.data, "a\"\"b");

    bg_buf_dispose(&out), bg_buf_dispose(&t1), bg_buf_dispose(&t2), bg_buf_dispose(&t3);
    bg_buf_dispose(&want), bg_buf_dispose_secure(&rev);
    bg_keyring_destroy(k);
}

static void test_reveal(void)
{
    bg_keyring_t *k = ring_with("k1", 1, "k2", 2, 2);
    bg_keyring_t *other = ring_with("k1", 99, NULL, 0, 1);
    bg_buf_t t, u, forged, in, out;
    bg_buf_init(&t), bg_buf_init(&u), bg_buf_init(&forged), bg_buf_init(&in), bg_buf_init(&out);
    tok(k, "line1\nline2", &t);
    tok(k, "carol", &u);
    tok(other, "mallory", &forged); /* well-formed, same kid, other key: does not open */
    bg_buf_printf(&in, "a %s b %s c %s d bgtok:v1:k1:short bgtok:v1:", t.data, forged.data, u.data);
    size_t opened = 0;
    CHECK_INT(bg_seal_reveal(k, in.data, in.len, false, &out, &opened), 0);
    CHECK_INT(opened, 2);
    bg_buf_t want;
    bg_buf_init(&want);
    bg_buf_printf(&want, "a line1\nline2 b %s c carol d bgtok:v1:k1:short bgtok:v1:", forged.data);
    CHECK_STR(out.data, want.data);
    bg_buf_reset(&out);
    CHECK_INT(bg_seal_reveal(k, in.data, in.len, true, &out, &opened), 0);
    CHECK(strstr(out.data, "line1\\u000aline2") != NULL); /* bg_buf_json_escape writes \u000a */
    /* a token glued to following base64url characters is not a token */
    bg_buf_reset(&in), bg_buf_reset(&out);
    bg_buf_printf(&in, "%sXYZ", u.data);
    CHECK_INT(bg_seal_reveal(k, in.data, in.len, false, &out, &opened), 0);
    CHECK_INT(opened, 0);
    CHECK_STR(out.data, in.data);
    /* nothing to reveal, and the empty input */
    bg_buf_reset(&out);
    CHECK_INT(bg_seal_reveal(k, "", 0, true, &out, &opened), 0);
    CHECK_INT(opened, 0);
    CHECK_INT(out.len, 0);
    bg_buf_dispose(&t), bg_buf_dispose(&u), bg_buf_dispose(&forged), bg_buf_dispose(&in);
    bg_buf_dispose_secure(&out), bg_buf_dispose(&want);
    bg_keyring_destroy(k);
    bg_keyring_destroy(other);
}

/* ---- workers share one keyring ----------------------------------------------------------- */

typedef struct {
    const bg_keyring_t *k;
    const char *want; /* the token made on the main thread */
    int bad;
} mt_arg_t;

static void *mt_worker(void *p)
{
    mt_arg_t *a = p;
    bg_buf_t t, o;
    bg_buf_init(&t), bg_buf_init(&o);
    for (int i = 0; i < 3000; i++) {
        bg_buf_reset(&t), bg_buf_reset(&o);
        if (bg_seal_token(a->k, "dave@example.net", 16, &t) != 0 || strcmp(t.data, a->want) != 0 ||
            bg_seal_open_token(a->k, t.data, t.len, &o) != 0 || o.len != 16)
            a->bad++;
    }
    bg_buf_dispose(&t), bg_buf_dispose(&o);
    return NULL;
}

static void test_threads(void)
{
    bg_keyring_t *k = ring_with("k1", 1, "k2", 2, 2);
    bg_buf_t want;
    bg_buf_init(&want);
    CHECK_INT(bg_seal_token(k, "dave@example.net", 16, &want), 0);
    pthread_t th[4];
    mt_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (mt_arg_t){k, want.data, 0};
        CHECK_INT(pthread_create(&th[i], NULL, mt_worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(args[i].bad, 0);
    }
    bg_buf_dispose(&want);
    bg_keyring_destroy(k);
}

/* ---- timing (printed, not asserted) ------------------------------------------------------- */

static double secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_timing(void)
{
    bg_keyring_t *k = ring_with("k1", 1, NULL, 0, 1);
    bg_buf_t t, o;
    bg_buf_init(&t), bg_buf_init(&o);
    const int N = 20000;
    double t0 = secs();
    for (int i = 0; i < N; i++) {
        bg_buf_reset(&t);
        bg_seal_token(k, "alice.smith@example.com", 23, &t);
    }
    double t1 = secs();
    for (int i = 0; i < N; i++) {
        bg_buf_reset(&o);
        CHECK_INT(bg_seal_open_token(k, t.data, t.len, &o), 0);
    }
    double t2 = secs();
    static char body[16384];
    memset(body, 'x', sizeof body);
    const int M = 2000;
    bg_buf_t j;
    bg_buf_init(&j);
    double t3 = secs();
    for (int i = 0; i < M; i++) {
        bg_buf_reset(&j);
        bg_seal_jwe(k, body, sizeof body, NULL, &j);
    }
    double t4 = secs();
    fprintf(stderr, "  timing: seal_token(23 B) %.2f us, open_token %.2f us, seal_jwe(16 KiB) %.2f us (%.0f MB/s)\n",
            (t1 - t0) / N * 1e6, (t2 - t1) / N * 1e6, (t4 - t3) / M * 1e6, M * 16384.0 / (t4 - t3) / 1e6);
    bg_buf_dispose(&t), bg_buf_dispose(&o), bg_buf_dispose(&j);
    bg_keyring_destroy(k);
}

int main(void)
{
    RUN(test_rfc5297_a1);
    RUN(test_token_matches_reference);
    RUN(test_round_trip_determinism);
    RUN(test_tamper);
    RUN(test_keyring_files);
    RUN(test_rotation);
    RUN(test_jwe);
    RUN(test_openssl_cli_ctr);
    RUN(test_rewrite_json);
    RUN(test_reveal);
    RUN(test_threads);
    RUN(test_timing);
    if (tmpdir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return bg_test_done();
}
