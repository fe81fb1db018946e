/*
 * seal.c — see seal.h. Tokens: AES-256-SIV (RFC 5297) through OpenSSL 3's "AES-256-SIV" cipher,
 * one associated-data component (the kid, so a token cannot be relabelled to another key), output
 * tag (16) || ciphertext in unpadded base64url. JWE: RFC 7516 compact, alg "dir", A256GCM, the CEK
 * derived per kid with HKDF-SHA256 (info "bordergate jwe A256GCM v1") at load time.
 * Invariants: a keyring never changes after load (shared read-only by workers); every secret or
 * plaintext temporary is OPENSSL_cleanse'd before it is freed; on error outputs are left as found.
 * Thread: any; each call makes its own EVP contexts.
 */
#include "seal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAG_LEN 16
#define GCM_IV_LEN 12
#define CEK_LEN 32
#define TOKEN_PREFIX "bgtok:v1:"
#define TOKEN_PREFIX_LEN 9
#define JWE_HEADER_MAX 1024 /* encoded protected header */
#define KEYFILE_MAX 512     /* a key file is ~90 bytes of base64 */

typedef struct {
    char kid[BG_SEAL_KID_MAX + 1];
    size_t kidlen;
    uint8_t key[BG_SEAL_KEY_LEN]; /* SIV: K1 (CMAC) || K2 (CTR) */
    uint8_t cek[CEK_LEN];         /* JWE A256GCM key, HKDF of key */
    EVP_CIPHER_CTX *enc, *dec;    /* SIV contexts keyed once; calls copy them (3x cheaper than a
                                     fresh init, which redoes the CMAC and CTR key schedules) and
                                     only ever read these, so workers may share them */
} key_t_;

struct bg_keyring {
    EVP_CIPHER *siv; /* fetched once: fetching is slow and the object is thread-safe */
    EVP_CIPHER *gcm;
    int active;      /* index, -1: none */
    size_t n;
    key_t_ keys[BG_SEAL_MAX_KEYS];
};

/* ---- base64 ---------------------------------------------------------------------------- */

static const char b64url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_len(size_t n) { return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0); }

/* Append the unpadded base64url of p[0..n). */
static void b64url_append(bg_buf_t *out, const uint8_t *p, size_t n)
{
    bg_buf_reserve(out, b64url_len(n));
    char *o = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64url_chars[v >> 18];
        *o++ = b64url_chars[(v >> 12) & 63];
        *o++ = b64url_chars[(v >> 6) & 63];
        *o++ = b64url_chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = b64url_chars[v >> 18];
        *o++ = b64url_chars[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = b64url_chars[v >> 18];
        *o++ = b64url_chars[(v >> 12) & 63];
        *o++ = b64url_chars[(v >> 6) & 63];
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
}

static bool is_b64url(unsigned char c) { return bg_b64_digit(c, true) >= 0; }

/* Strict unpadded base64url of s[0..n) into out[cap]: no padding, no stray characters, zero
 * trailing bits (one encoding per byte string). Returns the length or -1. */
static long b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 == 1)
        return -1;
    size_t len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (len > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = bg_b64_digit((unsigned char)s[i], true);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return (long)o;
}

/* Standard base64 with optional '=' padding, whitespace anywhere ignored (key files written by
 * `openssl rand -base64 64` wrap at 64 columns). Returns the length or -1. */
static long b64std_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t o = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = bg_b64_digit(c, false);
        if (v < 0 || pad)
            return -1;
        digits++;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (digits % 4 == 1 || pad > 2 || (pad && (digits + (size_t)pad) % 4 != 0) || acc != 0)
        return -1;
    return (long)o;
}

/* ---- keyring --------------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool kid_valid(const char *s, size_t n)
{
    if (n == 0 || n > BG_SEAL_KID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_b64url((unsigned char)s[i]))
            return false;
    return true;
}

static const key_t_ *find_key(const bg_keyring_t *k, const char *kid, size_t n)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->keys[i].kidlen == n && memcmp(k->keys[i].kid, kid, n) == 0)
            return &k->keys[i];
    return NULL;
}

static int derive_cek(const uint8_t key[BG_SEAL_KEY_LEN], uint8_t cek[CEK_LEN])
{
    static const char info[] = "bordergate jwe A256GCM v1";
    int rc = -1;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    if (!kctx)
        goto fail;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, BG_SEAL_KEY_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, sizeof info - 1),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(kctx, cek, CEK_LEN, params) != 1)
        goto fail;
    rc = 0;
fail:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return rc;
}

int bg_keyring_create(bg_keyring_t **out)
{
    *out = NULL;
    bg_keyring_t *k = calloc(1, sizeof *k);
    if (!k)
        return -1;
    k->active = -1;
    k->siv = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
    k->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (!k->siv || !k->gcm) {
        bg_keyring_destroy(k);
        return -1;
    }
    *out = k;
    return 0;
}

void bg_keyring_destroy(bg_keyring_t *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++) {
        EVP_CIPHER_CTX_free(k->keys[i].enc); /* the providers wipe their key schedules */
        EVP_CIPHER_CTX_free(k->keys[i].dec);
    }
    EVP_CIPHER_free(k->siv);
    EVP_CIPHER_free(k->gcm);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

int bg_keyring_add(bg_keyring_t *k, const char *kid, const uint8_t key[BG_SEAL_KEY_LEN], bool active)
{
    size_t n = kid ? strlen(kid) : 0;
    if (!kid_valid(kid, n) || find_key(k, kid, n) || k->n >= BG_SEAL_MAX_KEYS)
        return -1;
    key_t_ *e = &k->keys[k->n];
    memcpy(e->kid, kid, n);
    e->kid[n] = 0;
    e->kidlen = n;
    memcpy(e->key, key, BG_SEAL_KEY_LEN);
    e->enc = EVP_CIPHER_CTX_new();
    e->dec = EVP_CIPHER_CTX_new();
    if (derive_cek(e->key, e->cek) != 0 || !e->enc || !e->dec ||
        EVP_EncryptInit_ex2(e->enc, k->siv, e->key, NULL, NULL) != 1 ||
        EVP_DecryptInit_ex2(e->dec, k->siv, e->key, NULL, NULL) != 1) {
        EVP_CIPHER_CTX_free(e->enc);
        EVP_CIPHER_CTX_free(e->dec);
        OPENSSL_cleanse(e, sizeof *e);
        return -1;
    }
    if (active)
        k->active = (int)k->n;
    k->n++;
    return 0;
}

const char *bg_keyring_active(const bg_keyring_t *k)
{
    return k && k->active >= 0 ? k->keys[k->active].kid : NULL;
}

size_t bg_keyring_count(const bg_keyring_t *k) { return k ? k->n : 0; }

/* Read and decode one key file; the descriptor is checked, not the path (no TOCTOU). */
static int load_key_file(int dirfd, const char *dir, const char *name, uint8_t key[BG_SEAL_KEY_LEN],
                         char *err, size_t errlen)
{
    int rc = -1;
    char text[KEYFILE_MAX + 1];
    size_t len = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        set_err(err, errlen, "key file %s/%s: %s", dir, name, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errlen, "key file %s/%s: not a regular file", dir, name);
        goto fail;
    }
    if (st.st_mode & 077) {
        set_err(err, errlen, "key file %s/%s: mode %04o, must be 0600 or stricter", dir, name,
                (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, text + len, sizeof text - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(err, errlen, "key file %s/%s: %s", dir, name, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == sizeof text) {
            set_err(err, errlen, "key file %s/%s: too large for a key", dir, name);
            goto fail;
        }
    }
    uint8_t raw[BG_SEAL_KEY_LEN + 3];
    long n = b64std_decode(text, len, raw, sizeof raw);
    if (n != BG_SEAL_KEY_LEN) {
        OPENSSL_cleanse(raw, sizeof raw);
        set_err(err, errlen, "key file %s/%s: must hold base64 of exactly %d bytes", dir, name,
                BG_SEAL_KEY_LEN);
        goto fail;
    }
    memcpy(key, raw, BG_SEAL_KEY_LEN);
    OPENSSL_cleanse(raw, sizeof raw);
    rc = 0;
fail:
    OPENSSL_cleanse(text, sizeof text);
    if (fd >= 0)
        close(fd);
    return rc;
}

int bg_keyring_load(const char *dir, const char *active_kid, bg_keyring_t **out, char *err, size_t errlen)
{
    bg_keyring_t *k = NULL;
    DIR *d = NULL;
    uint8_t key[BG_SEAL_KEY_LEN];
    *out = NULL;
    if (!dir || !active_kid) {
        set_err(err, errlen, "encryption: keys directory and active key are required");
        goto fail;
    }
    if (bg_keyring_create(&k) != 0) {
        set_err(err, errlen, "encryption: OpenSSL lacks AES-256-SIV or AES-256-GCM");
        goto fail;
    }
    d = opendir(dir);
    if (!d) {
        set_err(err, errlen, "encryption keys %s: %s", dir, strerror(errno));
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        if (name[0] == '.' || nl < 5 || strcmp(name + nl - 4, ".key") != 0)
            continue;
        char kid[BG_SEAL_KID_MAX + 1];
        if (!kid_valid(name, nl - 4)) {
            set_err(err, errlen, "key file %s/%s: the key id must be 1-%d of [A-Za-z0-9_-]", dir, name,
                    BG_SEAL_KID_MAX);
            goto fail;
        }
        memcpy(kid, name, nl - 4);
        kid[nl - 4] = 0;
        if (load_key_file(dirfd(d), dir, name, key, err, errlen) != 0)
            goto fail;
        if (bg_keyring_add(k, kid, key, strcmp(kid, active_kid) == 0) != 0) {
            set_err(err, errlen, "encryption keys %s: more than %d keys, or key %s unusable", dir,
                    BG_SEAL_MAX_KEYS, kid);
            goto fail;
        }
    }
    if (k->active < 0) {
        set_err(err, errlen, "encryption: active key %s has no file %s/%s.key", active_kid, dir, active_kid);
        goto fail;
    }
    closedir(d);
    OPENSSL_cleanse(key, sizeof key);
    *out = k;
    return 0;
fail:
    if (d)
        closedir(d);
    OPENSSL_cleanse(key, sizeof key);
    bg_keyring_destroy(k);
    return -1;
}

/* ---- AES-256-SIV ----------------------------------------------------------------------- */

/* out[0..16) = tag, out[16..16+n) = ciphertext. */
static int siv_seal(const bg_keyring_t *k, const key_t_ *e, const uint8_t *plain, size_t n, uint8_t *out)
{
    int rc = -1, l = 0;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (!x || EVP_CIPHER_CTX_copy(x, e->enc) != 1)
        goto fail;
    if (EVP_EncryptUpdate(x, NULL, &l, (const uint8_t *)e->kid, (int)e->kidlen) != 1)
        goto fail;
    if (EVP_EncryptUpdate(x, out + TAG_LEN, &l, plain, (int)n) != 1 || (size_t)l != n)
        goto fail;
    if (EVP_EncryptFinal_ex(x, out + TAG_LEN + l, &l) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, out) != 1)
        goto fail;
    rc = 0;
fail:
    EVP_CIPHER_CTX_free(x);
    return rc;
}

/* in = tag || ciphertext (n > 16); plaintext of n - 16 bytes into out. */
static int siv_open(const bg_keyring_t *k, const key_t_ *e, const uint8_t *in, size_t n, uint8_t *out)
{
    int rc = -1, l = 0;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (!x || EVP_CIPHER_CTX_copy(x, e->dec) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)in) != 1)
        goto fail;
    if (EVP_DecryptUpdate(x, NULL, &l, (const uint8_t *)e->kid, (int)e->kidlen) != 1)
        goto fail;
    if (EVP_DecryptUpdate(x, out, &l, in + TAG_LEN, (int)(n - TAG_LEN)) != 1)
        goto fail;
    if (EVP_DecryptFinal_ex(x, out + l, &l) != 1)
        goto fail;
    rc = 0;
fail:
    EVP_CIPHER_CTX_free(x);
    if (rc != 0)
        OPENSSL_cleanse(out, n - TAG_LEN);
    return rc;
}

int bg_seal_token(const bg_keyring_t *k, const void *plain, size_t n, bg_buf_t *out)
{
    /* OpenSSL's SIV cannot finish an empty message; an empty value carries nothing to hide. */
    if (!k || k->active < 0 || n == 0 || n > BG_SEAL_MAX_PLAIN)
        return -1;
    const key_t_ *e = &k->keys[k->active];
    uint8_t small[512];
    uint8_t *ct = n + TAG_LEN <= sizeof small ? small : malloc(n + TAG_LEN);
    if (!ct)
        return -1;
    int rc = siv_seal(k, e, plain, n, ct);
    if (rc == 0) {
        bg_buf_append(out, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
        bg_buf_append(out, e->kid, e->kidlen);
        bg_buf_append(out, ":", 1);
        b64url_append(out, ct, n + TAG_LEN);
    }
    if (ct != small)
        free(ct);
    return rc;
}

/* Parse "bgtok:v1:<kid>:<b64url>" exactly (the whole of tok[0..n)). */
static int token_parse(const char *tok, size_t n, const char **kid, size_t *kidlen, const char **b64,
                       size_t *b64len)
{
    if (n < TOKEN_PREFIX_LEN || memcmp(tok, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
        return -1;
    const char *p = tok + TOKEN_PREFIX_LEN, *end = tok + n;
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (!colon || !kid_valid(p, (size_t)(colon - p)))
        return -1;
    *kid = p;
    *kidlen = (size_t)(colon - p);
    *b64 = colon + 1;
    *b64len = (size_t)(end - colon - 1);
    /* at least a tag and one byte: 17 bytes = 23 digits */
    return *b64len >= b64url_len(TAG_LEN + 1) ? 0 : -1;
}

int bg_seal_open_token(const bg_keyring_t *k, const char *tok, size_t n, bg_buf_t *out)
{
    const char *kid, *b64;
    size_t kidlen, b64len;
    if (!k || token_parse(tok, n, &kid, &kidlen, &b64, &b64len) != 0)
        return -1;
    if (b64len > b64url_len(BG_SEAL_MAX_PLAIN + TAG_LEN))
        return -1;
    const key_t_ *e = find_key(k, kid, kidlen);
    if (!e)
        return -1;
    size_t cap = b64len / 4 * 3 + 2;
    uint8_t *raw = malloc(cap);
    if (!raw)
        return -1;
    int rc = -1;
    long rl = b64url_decode(b64, b64len, raw, cap);
    if (rl <= TAG_LEN)
        goto done;
    size_t pl = (size_t)rl - TAG_LEN;
    bg_buf_reserve(out, pl);
    /* straight into out's spare room; committed only once authenticated */
    if (siv_open(k, e, raw, (size_t)rl, (uint8_t *)out->data + out->len) != 0) {
        out->data[out->len] = 0;
        goto done;
    }
    out->len += pl;
    out->data[out->len] = 0;
    rc = 0;
done:
    free(raw); /* ciphertext only: nothing to wipe */
    return rc;
}

/* ---- JWE ------------------------------------------------------------------------------- */

int bg_seal_jwe(const bg_keyring_t *k, const void *plain, size_t n, const char *cty, bg_buf_t *out)
{
    if (!k || k->active < 0 || n > BG_SEAL_MAX_PLAIN || (cty && strlen(cty) > 128))
        return -1;
    const key_t_ *e = &k->keys[k->active];
    size_t start = out->len;
    int rc = -1, l = 0;
    uint8_t iv[GCM_IV_LEN], tag[TAG_LEN];
    uint8_t *ct = malloc(n ? n : 1);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    bg_buf_t h;
    bg_buf_init(&h);
    if (!ct || !x)
        goto fail;
    bg_buf_printf(&h, "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"%s\"", e->kid);
    if (cty) {
        bg_buf_puts(&h, ",\"cty\":\"");
        bg_buf_json_escape(&h, cty, strlen(cty));
        bg_buf_puts(&h, "\"");
    }
    bg_buf_puts(&h, "}");
    b64url_append(out, (const uint8_t *)h.data, h.len);
    size_t hlen = out->len - start;
    if (RAND_bytes(iv, sizeof iv) != 1)
        goto fail;
    if (EVP_EncryptInit_ex2(x, k->gcm, e->cek, iv, NULL) != 1)
        goto fail;
    if (EVP_EncryptUpdate(x, NULL, &l, (const uint8_t *)out->data + start, (int)hlen) != 1)
        goto fail;
    if (n && EVP_EncryptUpdate(x, ct, &l, plain, (int)n) != 1)
        goto fail;
    if (EVP_EncryptFinal_ex(x, ct, &l) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) != 1)
        goto fail;
    bg_buf_append(out, "..", 2);
    b64url_append(out, iv, sizeof iv);
    bg_buf_append(out, ".", 1);
    b64url_append(out, ct, n);
    bg_buf_append(out, ".", 1);
    b64url_append(out, tag, sizeof tag);
    rc = 0;
fail:
    if (rc != 0 && out->data) {
        out->len = start;
        out->data[start] = 0;
    }
    EVP_CIPHER_CTX_free(x);
    free(ct);
    bg_buf_dispose(&h);
    return rc;
}

/* A JSON string starting at s[*i] == '"' (escapes decoded, ASCII \u only) into out[cap]. */
static int hdr_string(const char *s, size_t n, size_t *i, char *out, size_t cap, size_t *olen)
{
    size_t o = 0, j = *i + 1;
    while (j < n && s[j] != '"') {
        unsigned char c = (unsigned char)s[j++];
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (j >= n)
                return -1;
            char e = s[j++];
            switch (e) {
            case '"': case '\\': case '/': c = (unsigned char)e; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                unsigned v = 0;
                for (int d = 0; d < 4; d++, j++) {
                    if (j >= n)
                        return -1;
                    int h = s[j] >= '0' && s[j] <= '9' ? s[j] - '0'
                          : s[j] >= 'a' && s[j] <= 'f' ? s[j] - 'a' + 10
                          : s[j] >= 'A' && s[j] <= 'F' ? s[j] - 'A' + 10 : -1;
                    if (h < 0)
                        return -1;
                    v = v << 4 | (unsigned)h;
                }
                if (v == 0 || v >= 0x80) /* our headers are ASCII */
                    return -1;
                c = (unsigned char)v;
                break;
            }
            default:
                return -1;
            }
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (j >= n)
        return -1;
    out[o] = 0;
    *olen = o;
    *i = j + 1;
    return 0;
}

static void hdr_ws(const char *s, size_t n, size_t *i)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r'))
        (*i)++;
}

/* The protected header: a flat JSON object; alg "dir", enc "A256GCM", kid required; zip and crit
 * refused (we implement neither); duplicate names refused (RFC 7515 §4). */
static int hdr_parse(const char *s, size_t n, char kid[BG_SEAL_KID_MAX + 1], size_t *kidlen)
{
    char names[16][24];
    int nnames = 0;
    bool alg = false, enc = false, has_kid = false;
    size_t i = 0;
    hdr_ws(s, n, &i);
    if (i >= n || s[i++] != '{')
        return -1;
    hdr_ws(s, n, &i);
    if (i < n && s[i] == '}')
        return -1;
    for (;;) {
        char name[24], val[64];
        size_t nl, vl;
        hdr_ws(s, n, &i);
        if (i >= n || s[i] != '"' || hdr_string(s, n, &i, name, sizeof name, &nl) != 0)
            return -1;
        for (int d = 0; d < nnames; d++)
            if (strcmp(names[d], name) == 0)
                return -1;
        if (nnames == 16)
            return -1;
        memcpy(names[nnames++], name, nl + 1);
        hdr_ws(s, n, &i);
        if (i >= n || s[i++] != ':')
            return -1;
        hdr_ws(s, n, &i);
        if (i >= n)
            return -1;
        bool is_str = s[i] == '"';
        if (is_str) {
            if (hdr_string(s, n, &i, val, sizeof val, &vl) != 0)
                return -1;
        } else {
            /* a number or literal: skip; objects and arrays are not ours */
            size_t j = i;
            while (j < n && ((s[j] >= '0' && s[j] <= '9') || (s[j] >= 'a' && s[j] <= 'z') || s[j] == '-' ||
                             s[j] == '+' || s[j] == '.' || s[j] == 'E'))
                j++;
            if (j == i)
                return -1;
            i = j;
            vl = 0;
            val[0] = 0;
        }
        if (strcmp(name, "alg") == 0) {
            if (!is_str || strcmp(val, "dir") != 0)
                return -1;
            alg = true;
        } else if (strcmp(name, "enc") == 0) {
            if (!is_str || strcmp(val, "A256GCM") != 0)
                return -1;
            enc = true;
        } else if (strcmp(name, "kid") == 0) {
            if (!is_str || !kid_valid(val, vl))
                return -1;
            memcpy(kid, val, vl + 1);
            *kidlen = vl;
            has_kid = true;
        } else if (strcmp(name, "zip") == 0 || strcmp(name, "crit") == 0) {
            return -1;
        }
        hdr_ws(s, n, &i);
        if (i >= n)
            return -1;
        if (s[i] == ',') {
            i++;
            continue;
        }
        if (s[i++] != '}')
            return -1;
        break;
    }
    hdr_ws(s, n, &i);
    return i == n && alg && enc && has_kid ? 0 : -1;
}

int bg_seal_open_jwe(const bg_keyring_t *k, const char *jwe, size_t n, bg_buf_t *out)
{
    if (!k || n > b64url_len(BG_SEAL_MAX_PLAIN) + 2 * JWE_HEADER_MAX)
        return -1;
    const char *part[5];
    size_t plen[5];
    size_t np = 0, startp = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || jwe[i] == '.') {
            if (np == 5)
                return -1;
            part[np] = jwe + startp;
            plen[np++] = i - startp;
            startp = i + 1;
        }
    }
    if (np != 5 || plen[0] == 0 || plen[0] > JWE_HEADER_MAX || plen[1] != 0)
        return -1;
    char hdr[JWE_HEADER_MAX], kid[BG_SEAL_KID_MAX + 1];
    size_t kidlen = 0;
    long hl = b64url_decode(part[0], plen[0], (uint8_t *)hdr, sizeof hdr);
    if (hl <= 0 || hdr_parse(hdr, (size_t)hl, kid, &kidlen) != 0)
        return -1;
    const key_t_ *e = find_key(k, kid, kidlen);
    if (!e)
        return -1;
    uint8_t iv[GCM_IV_LEN + 1], tag[TAG_LEN + 1];
    if (b64url_decode(part[2], plen[2], iv, sizeof iv) != GCM_IV_LEN ||
        b64url_decode(part[4], plen[4], tag, sizeof tag) != TAG_LEN)
        return -1;
    size_t cap = plen[3] / 4 * 3 + 2;
    uint8_t *ct = malloc(cap);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int rc = -1, l = 0;
    size_t start = out->len;
    if (!ct || !x)
        goto fail;
    long cl = b64url_decode(part[3], plen[3], ct, cap);
    if (cl < 0)
        goto fail;
    bg_buf_reserve(out, (size_t)cl);
    uint8_t *pt = (uint8_t *)out->data + start;
    if (EVP_DecryptInit_ex2(x, k->gcm, e->cek, iv, NULL) != 1)
        goto fail;
    if (EVP_DecryptUpdate(x, NULL, &l, (const uint8_t *)part[0], (int)plen[0]) != 1)
        goto fail;
    if (cl && EVP_DecryptUpdate(x, pt, &l, ct, (int)cl) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) != 1)
        goto fail;
    if (EVP_DecryptFinal_ex(x, pt + cl, &l) != 1) {
        OPENSSL_cleanse(pt, (size_t)cl); /* unauthenticated plaintext */
        goto fail;
    }
    out->len = start + (size_t)cl;
    rc = 0;
fail:
    if (out->data)
        out->data[out->len] = 0;
    EVP_CIPHER_CTX_free(x);
    free(ct);
    return rc;
}

/* ---- rewrite and reveal ---------------------------------------------------------------- */

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void put_utf8(bg_buf_t *b, uint32_t cp)
{
    char u[4];
    bg_buf_append(b, u, bg_utf8_put(u, cp));
}

static int hex4(const char *s, size_t n, size_t i, uint32_t *v)
{
    if (i + 4 > n)
        return -1;
    *v = 0;
    for (int d = 0; d < 4; d++) {
        int h = hexval((unsigned char)s[i + d]);
        if (h < 0)
            return -1;
        *v = *v << 4 | (uint32_t)h;
    }
    return 0;
}

/* The inside of a JSON string, unescaped into out. -1 on a bad escape or a lone surrogate. */
static int json_unescape(const char *s, size_t n, bg_buf_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            bg_buf_append(out, &s[i], 1);
            continue;
        }
        if (++i >= n)
            return -1;
        char c;
        switch (s[i]) {
        case '"': case '\\': case '/': c = s[i]; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            uint32_t v, lo;
            if (hex4(s, n, i + 1, &v) != 0)
                return -1;
            i += 4;
            if (v >= 0xdc00 && v <= 0xdfff)
                return -1;
            if (v >= 0xd800 && v <= 0xdbff) {
                if (i + 2 >= n || s[i + 1] != '\\' || s[i + 2] != 'u' || hex4(s, n, i + 3, &lo) != 0 ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                i += 6;
                v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(out, v);
            continue;
        }
        default:
            return -1;
        }
        bg_buf_append(out, &c, 1);
    }
    return 0;
}

/* %XX decoded, '+' as space when plus; a '%' not followed by two hex digits stays as it is. */
static void percent_decode(const char *s, size_t n, bool plus, bg_buf_t *out)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int h, l;
        if (c == '+' && plus) {
            c = ' ';
        } else if (c == '%' && i + 2 < n && (h = hexval((unsigned char)s[i + 1])) >= 0 &&
                   (l = hexval((unsigned char)s[i + 2])) >= 0) {
            c = (char)(h << 4 | l);
            i += 2;
        }
        bg_buf_append(out, &c, 1);
    }
}

int bg_seal_rewrite(const bg_keyring_t *k, const char *in, size_t n, const bg_seal_span_t *spans,
                    size_t nspans, bg_buf_t *out)
{
    size_t start = out->len, at = 0;
    int rc = -1;
    bg_buf_t a, b;
    bg_buf_init(&a);
    bg_buf_init(&b);
    if (!k || k->active < 0)
        goto fail;
    for (size_t i = 0; i < nspans; i++) {
        uint64_t off = spans[i].offset, len = spans[i].length;
        if (off < at || off + len > n)
            goto fail;
        at = (size_t)(off + len);
    }
    at = 0;
    for (size_t i = 0; i < nspans; i++) {
        const bg_seal_span_t *sp = &spans[i];
        const char *v = in + sp->offset;
        size_t vl = sp->length;
        bg_buf_append(out, in + at, sp->offset - at);
        at = sp->offset + sp->length;
        if (sp->quote & BG_SEAL_JSON_STRING) {
            bg_buf_reset(&a);
            if (json_unescape(v, vl, &a) != 0)
                goto fail;
            v = a.data ? a.data : "", vl = a.len;
        }
        if (sp->quote & BG_SEAL_PERCENT) {
            bg_buf_reset(&b);
            percent_decode(v, vl, !(sp->quote & BG_SEAL_NOPLUS), &b);
            v = b.data ? b.data : "", vl = b.len;
        }
        if (sp->quote & BG_SEAL_QUOTE)
            bg_buf_append(out, "\"", 1);
        if (vl && bg_seal_token(k, v, vl, out) != 0)
            goto fail;
        if (sp->quote & BG_SEAL_QUOTE)
            bg_buf_append(out, "\"", 1);
    }
    bg_buf_append(out, in + at, n - at);
    rc = 0;
fail:
    if (rc != 0 && out->data) {
        /* what was copied of `in` may be personal data outside the spans: wipe it too */
        OPENSSL_cleanse(out->data + start, out->len - start);
        out->len = start;
        out->data[start] = 0;
    }
    bg_buf_dispose_secure(&a);
    bg_buf_dispose_secure(&b);
    return rc;
}

int bg_seal_reveal(const bg_keyring_t *k, const char *in, size_t n, bool json, bg_buf_t *out, size_t *opened)
{
    size_t count = 0, at = 0, i = 0;
    bg_buf_t pt;
    bg_buf_init(&pt);
    if (opened)
        *opened = 0;
    if (n > (size_t)BG_SEAL_MAX_PLAIN * 2)
        return -1;
    while (k && i + TOKEN_PREFIX_LEN < n) {
        const char *p = memmem(in + i, n - i, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
        if (!p)
            break;
        size_t s = (size_t)(p - in), j = s + TOKEN_PREFIX_LEN;
        while (j < n && j - s - TOKEN_PREFIX_LEN <= BG_SEAL_KID_MAX && is_b64url((unsigned char)in[j]))
            j++;
        if (j < n && in[j] == ':' && j > s + TOKEN_PREFIX_LEN) {
            j++;
            while (j < n && is_b64url((unsigned char)in[j]))
                j++;
            bg_buf_reset(&pt);
            if (bg_seal_open_token(k, in + s, j - s, &pt) == 0) {
                bg_buf_append(out, in + at, s - at);
                if (json)
                    bg_buf_json_escape(out, pt.data, pt.len);
                else
                    bg_buf_append(out, pt.data, pt.len);
                count++;
                at = i = j;
                continue;
            }
        }
        i = s + 1;
    }
    bg_buf_append(out, in + at, n - at);
    bg_buf_dispose_secure(&pt);
    if (opened)
        *opened = count;
    return 0;
}
