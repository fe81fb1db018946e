/*
 * runtime.c — builds the runtime snapshot from a loaded config: opens the GeoIP database,
 * loads the keys, compiles the classifier and creates the TLS contexts for listeners and
 * vendors. Runs on the main thread (start and reload); the result is immutable and shared
 * by the workers through reference counts.
 */
#include "server.h"
#include "upstream.h"

#include "log.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Towards vendors, by upstream.protocol: auto offers both (h2 preferred), else only the one. */
static const unsigned char alpn_h1[] = "\x08http/1.1";
static const unsigned char alpn_h2[] = "\x02h2";
/* Towards clients, in our preference order: HTTP/2 first, then HTTP/1.1. */
static const unsigned char alpn_ours[] = "\x02h2\x08http/1.1";

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* h2 when the client offers it (conn.c hands the connection to h2.c), else HTTP/1.1; a
     * client that offers nothing we speak gets no ALPN answer. */
    if (SSL_select_next_proto((unsigned char **)out, outlen, alpn_ours, sizeof alpn_ours - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static const char *ssl_err(void)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

/* Why a private key did not load, in words for the operator: OpenSSL 3 reports a file without a
 * key as the decoder's "unsupported" and a passphrase-protected one as an interrupted prompt. */
static const char *key_err(void)
{
    const char *why = NULL;
    unsigned long e, first = 0;
    while ((e = ERR_get_error())) {
        if (!first)
            first = e;
        int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);
        if (lib == ERR_LIB_PEM && (reason == PEM_R_BAD_PASSWORD_READ || reason == PEM_R_PROBLEMS_GETTING_PASSWORD))
            why = "the key is encrypted with a passphrase (bordergate reads only unencrypted keys)";
        else if (!why && lib == ERR_LIB_X509 && reason == X509_R_KEY_VALUES_MISMATCH)
            why = "the key does not belong to the certificate";
        else if (!why && lib == ERR_LIB_SSL && reason == SSL_R_NO_PRIVATE_KEY_ASSIGNED) /* nothing loaded */
            why = "no private key in the file";
    }
    if (!why && first && ERR_GET_LIB(first) == ERR_LIB_OSSL_DECODER)
        why = "no PEM private key in the file";
    if (!why && first)
        why = ERR_reason_error_string(first);
    ERR_clear_error();
    return why ? why : "unknown error";
}

/* A path as messages show it, like the config's: printable ASCII, at most ~150 bytes, so that a
 * file name cannot forge a second "FILE:LINE:COL" line. */
typedef struct {
    char s[160];
} shown_t;

static shown_t shown(const char *path)
{
    shown_t o;
    size_t n = 0;
    for (const char *p = path ? path : ""; *p; p++) {
        if (n + 4 >= sizeof o.s) {
            memcpy(o.s + n, "...", 3);
            n += 3;
            break;
        }
        o.s[n++] = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f ? *p : '?';
    }
    o.s[n] = 0;
    return o;
}

/* Keys are never read with a passphrase: OpenSSL's default would prompt on the terminal and
 * block the main loop (a reload) until someone typed. An encrypted key fails to load instead. */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf, (void)size, (void)rwflag, (void)userdata;
    return -1;
}

/* Feed a file's bytes to md: 0, or -1 when it cannot be read. */
static int digest_file(EVP_MD_CTX *md, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char buf[16384];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (EVP_DigestUpdate(md, buf, n) != 1)
            rc = -1;
    if (ferror(f))
        rc = -1;
    fclose(f);
    return rc;
}

/* What a client's TLS session with listener l stands on: the listener's address, the contents
 * of its certificate (chain) file and of its client CA file. 0, or -1 when a file cannot be read. */
static int tls_identity(const bg_listen_t *l, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = -1;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto done;
    const char *addr = l->address.text ? l->address.text : "";
    if (EVP_DigestUpdate(md, "bordergate listener\0", 20) != 1 || EVP_DigestUpdate(md, addr, strlen(addr) + 1) != 1)
        goto done;
    if (digest_file(md, l->certificate) < 0 || EVP_DigestUpdate(md, "\0client_ca\0", 11) != 1)
        goto done;
    if (l->client_ca ? digest_file(md, l->client_ca) < 0 : EVP_DigestUpdate(md, "-", 1) != 1)
        goto done;
    rc = EVP_DigestFinal_ex(md, out, NULL) == 1 ? 0 : -1;
done:
    EVP_MD_CTX_free(md);
    return rc;
}

static SSL_CTX *listener_ctx(const bg_listen_t *l, bg_diag_t *diag, const char *file, unsigned char tls_id[32])
{
    /* The identity is taken before and after the files are loaded: a file rewritten meanwhile
     * gets an identity of its own (random), so that what was loaded can never pass for what an
     * earlier runtime loaded (bg_runtime_keep_tls_sessions). */
    unsigned char before[32];
    bool id_ok = tls_identity(l, before) == 0;

    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    size_t nbefore = diag->nerrors;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase_cb);
    /* Each file is tried and reported at the line that names it, even after one failed, so that
     * one run of `check` lists every problem. */
    ERR_clear_error();
    bool cert_ok = SSL_CTX_use_certificate_chain_file(ctx, l->certificate) == 1;
    if (!cert_ok)
        bg_diag_error(diag, file, l->certificate_pos, "listener %s: tls certificate: cannot load '%s': %s",
                      l->address.text, shown(l->certificate).s, ssl_err());
    /* With the certificate loaded this also checks that the key is the certificate's. */
    if (SSL_CTX_use_PrivateKey_file(ctx, l->key, SSL_FILETYPE_PEM) != 1 ||
        (cert_ok && SSL_CTX_check_private_key(ctx) != 1))
        bg_diag_error(diag, file, l->key_pos, "listener %s: tls key: cannot load '%s': %s", l->address.text,
                      shown(l->key).s, key_err());
    if (l->client_ca) {
        STACK_OF(X509_NAME) *names = NULL;
        if (SSL_CTX_load_verify_locations(ctx, l->client_ca, NULL) != 1 ||
            !(names = SSL_load_client_CA_file(l->client_ca)))
            bg_diag_error(diag, file, l->client_ca_pos, "listener %s: tls client_ca: cannot load '%s': %s",
                          l->address.text, shown(l->client_ca).s, ssl_err());
        else
            SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (diag->nerrors != nbefore)
        goto fail;
    id_ok = id_ok && tls_identity(l, tls_id) == 0 && memcmp(before, tls_id, 32) == 0;
    if (!id_ok && RAND_bytes(tls_id, 32) != 1) {
        bg_diag_error(diag, file, l->pos, "listener %s: no random bytes for the TLS session context: %s",
                      l->address.text, ssl_err());
        goto fail;
    }
    /* A session-id context names the listener for resumption. OpenSSL resumes nothing on a
     * context that verifies client certificates and has none: every mTLS client paid a full
     * handshake, its certificate checked again, on each new connection. A resumed session keeps
     * the client's verified certificate (the record's caller), so the context is the listener's
     * TLS identity: the contents of its certificate and client CA files. A session made before
     * either changed never resumes (OpenSSL compares the context a ticket carries), even where a
     * ticket key outlived the change; in particular it cannot skip the verification of a client
     * certificate against a new client CA. */
    if (SSL_CTX_set_session_id_context(ctx, tls_id, 32) != 1) {
        bg_diag_error(diag, file, l->pos, "listener %s: cannot set the TLS session context: %s", l->address.text,
                      ssl_err());
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static SSL_CTX *vendor_ctx(const bg_vendor_t *v, bg_diag_t *diag, const char *file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    size_t before = diag->nerrors;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase_cb);
    ERR_clear_error();
    if (v->upstream.ca) {
        if (SSL_CTX_load_verify_locations(ctx, v->upstream.ca, NULL) != 1)
            bg_diag_error(diag, file, v->upstream.ca_pos, "vendor '%s': upstream.ca: cannot load '%s': %s", v->name,
                          shown(v->upstream.ca).s, ssl_err());
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        bg_diag_error(diag, file, v->pos, "vendor '%s': cannot load the system CA store: %s", v->name, ssl_err());
    }
    if (v->upstream.client_certificate) {
        bool cert_ok = SSL_CTX_use_certificate_chain_file(ctx, v->upstream.client_certificate) == 1;
        if (!cert_ok)
            bg_diag_error(diag, file, v->upstream.client_certificate_pos,
                          "vendor '%s': upstream.client_certificate: cannot load '%s': %s", v->name,
                          shown(v->upstream.client_certificate).s, ssl_err());
        if (SSL_CTX_use_PrivateKey_file(ctx, v->upstream.client_key, SSL_FILETYPE_PEM) != 1 ||
            (cert_ok && SSL_CTX_check_private_key(ctx) != 1))
            bg_diag_error(diag, file, v->upstream.client_key_pos, "vendor '%s': upstream.client_key: cannot load '%s': %s",
                          v->name, shown(v->upstream.client_key).s, key_err());
    }
    if (diag->nerrors != before)
        goto fail;
    SSL_CTX_set_verify(ctx, v->upstream.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    /* Sessions for resumption go to the worker's table (upstream.c), not OpenSSL's locked cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, bg_upstream_tls_session_cb);
    if (v->upstream.protocol == BG_PROTO_HTTP1)
        SSL_CTX_set_alpn_protos(ctx, alpn_h1, sizeof alpn_h1 - 1);
    else if (v->upstream.protocol == BG_PROTO_HTTP2)
        SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof alpn_h2 - 1);
    else
        SSL_CTX_set_alpn_protos(ctx, alpn_ours, sizeof alpn_ours - 1);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int bg_runtime_create(bg_config_t *cfg, bg_runtime_t **out, bg_diag_t *diag)
{
    *out = NULL;
    bg_runtime_t *rt = calloc(1, sizeof *rt);
    if (!rt)
        abort();
    atomic_init(&rt->refcount, 1);
    rt->cfg = cfg;
    char err[512] = "";
    bg_pos_t nopos = {0, 0};
    /* The messages already name the file ("geoip database 'x.mmdb': ..."); the position is the
     * line of the config that names it (none for the built-in default path). */
    if (cfg->geoip.database &&
        bg_geo_open(cfg->geoip.database, cfg->geoip.schema, cfg->geoip.registered_country_fallback, &rt->geo, err,
                    sizeof err) < 0)
        bg_diag_error(diag, cfg->path, cfg->geoip.database_pos, "%s", err);
    if (cfg->encryption.keys_dir &&
        bg_keyring_load(cfg->encryption.keys_dir, cfg->encryption.active_key, &rt->keys, err, sizeof err) < 0) {
        for (char *q = err; *q; q++) /* file names from the directory listing: one printable line */
            if ((unsigned char)*q < 0x20 || (unsigned char)*q == 0x7f)
                *q = '?';
        bg_diag_error(diag, cfg->path, cfg->encryption.keys_pos, "encryption.keys: %s", err);
    }
    rt->classifier = bg_classifier_create(cfg, err, sizeof err);
    if (!rt->classifier)
        bg_diag_error(diag, cfg->path, nopos, "classification: %s", err);
    rt->listen_ctx = calloc(cfg->nlisten + 1, sizeof *rt->listen_ctx);
    rt->listen_tls_id = calloc(cfg->nlisten + 1, sizeof *rt->listen_tls_id);
    rt->vendor_ctx = calloc(cfg->nvendors + 1, sizeof *rt->vendor_ctx);
    if (!rt->listen_ctx || !rt->listen_tls_id || !rt->vendor_ctx)
        abort();
    for (size_t i = 0; i < cfg->nlisten; i++)
        if (cfg->listen[i].tls)
            rt->listen_ctx[i] = listener_ctx(&cfg->listen[i], diag, cfg->path, rt->listen_tls_id[i]);
    for (size_t i = 0; i < cfg->nvendors; i++) {
        if (!cfg->vendors[i].upstream.tls)
            continue;
        rt->vendor_ctx[i] = vendor_ctx(&cfg->vendors[i], diag, cfg->path);
        if (!cfg->vendors[i].upstream.verify)
            bg_log_warn("upstream certificate verification is off", "vendor", cfg->vendors[i].name);
    }
    if (diag->nerrors) {
        for (size_t i = 0; i < cfg->nlisten; i++)
            SSL_CTX_free(rt->listen_ctx[i]);
        for (size_t i = 0; i < cfg->nvendors; i++)
            SSL_CTX_free(rt->vendor_ctx[i]);
        rt->cfg = NULL; /* the config is not consumed on failure */
        bg_runtime_release(rt);
        return -1;
    }
    *out = rt;
    return 0;
}

void bg_runtime_keep_tls_sessions(bg_runtime_t *rt, const bg_runtime_t *old)
{
    const bg_config_t *nc = rt->cfg, *oc = old->cfg;
    for (size_t i = 0; i < nc->nlisten; i++) {
        if (!rt->listen_ctx[i])
            continue;
        for (size_t j = 0; j < oc->nlisten; j++) {
            if (!old->listen_ctx[j] || !bg_sockaddr_equal(&nc->listen[i].address.addr, &oc->listen[j].address.addr))
                continue;
            /* Only when the certificate and the client CA are what the old context loaded:
             * otherwise every client starts afresh with a full, verified handshake. */
            if (CRYPTO_memcmp(rt->listen_tls_id[i], old->listen_tls_id[j], 32) != 0)
                break;
            unsigned char keys[80]; /* name, HMAC and AES keys of the tickets (RFC 5077 layout) */
            if (SSL_CTX_get_tlsext_ticket_keys(old->listen_ctx[j], keys, sizeof keys) == 1 &&
                SSL_CTX_set_tlsext_ticket_keys(rt->listen_ctx[i], keys, sizeof keys) == 1)
                bg_log_debug("TLS session tickets kept across the reload", "listener", nc->listen[i].address.text);
            OPENSSL_cleanse(keys, sizeof keys);
            ERR_clear_error();
            break;
        }
    }
}

bg_runtime_t *bg_runtime_retain(bg_runtime_t *rt)
{
    atomic_fetch_add_explicit(&rt->refcount, 1, memory_order_relaxed);
    return rt;
}

void bg_runtime_release(bg_runtime_t *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refcount, 1, memory_order_acq_rel) != 1)
        return;
    size_t nl = rt->cfg ? rt->cfg->nlisten : 0, nv = rt->cfg ? rt->cfg->nvendors : 0;
    for (size_t i = 0; rt->listen_ctx && i < nl; i++)
        SSL_CTX_free(rt->listen_ctx[i]);
    for (size_t i = 0; rt->vendor_ctx && i < nv; i++)
        SSL_CTX_free(rt->vendor_ctx[i]);
    free(rt->listen_ctx);
    free(rt->listen_tls_id);
    free(rt->vendor_ctx);
    if (rt->classifier)
        bg_classifier_destroy(rt->classifier);
    if (rt->keys)
        bg_keyring_destroy(rt->keys);
    if (rt->geo)
        bg_geo_close(rt->geo);
    bg_config_release(rt->cfg);
    free(rt);
}
