/*
 * stream.c — see stream.h. TLS runs over memory: ciphertext read from the socket is written to
 * a memory BIO (rbio), SSL_read yields plaintext; OpenSSL's records go to a BIO of our own (wbio)
 * that appends them to the stream's tls_out buffer, and everything there is handed to the socket
 * in one write after every operation (no second copy out of a memory BIO, one syscall for all the
 * records of a flush). One worker thread owns a stream; the BIO method is made once per process.
 */
#include "stream.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BG_STREAM_RDBUF 16384
#define BG_STREAM_OUT_KEEP (128 * 1024) /* a larger tls_out is freed once flushed */

typedef struct {
    uv_write_t req;
    bg_stream_t *s;
    size_t n;
    char data[];
} write_req_t;

static void close_cb(uv_handle_t *h)
{
    bg_stream_t *s = h->data;
    if (s->ssl)
        SSL_free(s->ssl); /* frees the BIOs too */
    s->ssl = NULL;
    free(s->rdbuf);
    s->rdbuf = NULL;
    free(s->tls_out);
    s->tls_out = NULL;
    s->tls_out_len = s->tls_out_cap = 0;
    if (s->cb->on_closed)
        s->cb->on_closed(s);
}

void bg_stream_close(bg_stream_t *s)
{
    if (s->closing)
        return;
    s->closing = true;
    uv_close((uv_handle_t *)&s->tcp, close_cb);
}

static void fail(bg_stream_t *s, int err, const char *what)
{
    if (s->closing)
        return;
    if (s->cb->on_error)
        s->cb->on_error(s, err, what);
    bg_stream_close(s);
}

static void write_cb(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    bg_stream_t *s = w->s;
    s->write_pending -= w->n;
    free(w);
    if (status < 0) {
        fail(s, status, "write");
        return;
    }
    if (s->write_pending == 0 && !s->closing && s->cb->on_drain)
        s->cb->on_drain(s);
}

/* Queue raw bytes on the socket: try a direct write first, queue what remains. */
static int raw_write(bg_stream_t *s, const char *p, size_t n)
{
    if (s->closing)
        return UV_ECANCELED;
    if (n == 0)
        return 0;
    if (s->write_pending == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            if (n == 0)
                return 0;
        } else if (r != UV_EAGAIN && r != UV_ENOSYS) {
            return r;
        }
    }
    write_req_t *w = malloc(sizeof *w + n);
    if (!w)
        abort();
    memcpy(w->data, p, n);
    w->s = s;
    w->n = n;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    int r = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, write_cb);
    if (r < 0) {
        free(w);
        return r;
    }
    s->write_pending += n;
    return 0;
}

/* ---- the write BIO: records appended to s->tls_out ----------------------------------------- */

static int out_bio_write_ex(BIO *b, const char *p, size_t n, size_t *written)
{
    bg_stream_t *s = BIO_get_data(b);
    *written = 0;
    if (!s)
        return 0;
    if (n > s->tls_out_cap - s->tls_out_len) {
        size_t cap = s->tls_out_cap ? s->tls_out_cap : 16384 + 512;
        while (cap - s->tls_out_len < n)
            cap *= 2;
        char *q = realloc(s->tls_out, cap);
        if (!q)
            abort();
        s->tls_out = q;
        s->tls_out_cap = cap;
    }
    memcpy(s->tls_out + s->tls_out_len, p, n);
    s->tls_out_len += n;
    *written = n;
    return 1;
}

static long out_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num, (void)ptr;
    bg_stream_t *s = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* flush_tls writes after every SSL call */
    case BIO_CTRL_WPENDING:
        return s ? (long)s->tls_out_len : 0;
    case BIO_CTRL_PENDING:
        return 0;
    default:
        return 0;
    }
}

static int out_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *out_method;

static void out_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bordergate tls out");
    if (m && BIO_meth_set_write_ex(m, out_bio_write_ex) && BIO_meth_set_ctrl(m, out_bio_ctrl) &&
        BIO_meth_set_create(m, out_bio_create)) {
        out_method = m;
        return;
    }
    BIO_meth_free(m);
}

void bg_stream_global_cleanup(void)
{
    BIO_meth_free(out_method);
    out_method = NULL;
}

static BIO *out_bio_new(bg_stream_t *s)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, out_method_make);
    BIO *b = out_method ? BIO_new(out_method) : NULL;
    if (b)
        BIO_set_data(b, s);
    return b;
}

/* Everything OpenSSL produced goes to the socket in one write. */
static int flush_tls(bg_stream_t *s)
{
    if (!s->tls_out_len)
        return 0;
    size_t n = s->tls_out_len;
    s->tls_out_len = 0;
    int r = raw_write(s, s->tls_out, n);
    if (s->tls_out_cap > BG_STREAM_OUT_KEEP) {
        free(s->tls_out);
        s->tls_out = NULL;
        s->tls_out_cap = 0;
    }
    return r;
}

static void tls_error(bg_stream_t *s, const char *what)
{
    char msg[200];
    unsigned long e = ERR_peek_last_error();
    long vr = SSL_get_verify_result(s->ssl);
    if (vr != X509_V_OK)
        snprintf(msg, sizeof msg, "%s: certificate verify failed: %s", what, X509_verify_cert_error_string(vr));
    else if (e)
        snprintf(msg, sizeof msg, "%s: %s", what, ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
    else
        snprintf(msg, sizeof msg, "%s", what);
    ERR_clear_error();
    flush_tls(s); /* let the alert reach the peer */
    fail(s, UV_EPROTO, msg);
}

static void tls_feed(bg_stream_t *s, const char *p, size_t n)
{
    if (n && BIO_write(s->rbio, p, (int)n) != (int)n) {
        fail(s, UV_ENOMEM, "tls bio");
        return;
    }
    if (!s->open) {
        int r = SSL_do_handshake(s->ssl);
        if (r != 1) {
            int e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                flush_tls(s);
                return;
            }
            tls_error(s, "tls handshake");
            return;
        }
        s->open = true;
        flush_tls(s);
        if (s->cb->on_open)
            s->cb->on_open(s);
        if (s->closing)
            return;
    }
    for (;;) {
        if (!s->reading || s->closing)
            break; /* paused: the plaintext stays inside OpenSSL until read_start */
        int r = SSL_read(s->ssl, s->rdbuf, BG_STREAM_RDBUF);
        if (r > 0) {
            s->cb->on_data(s, s->rdbuf, (size_t)r);
            continue;
        }
        int e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            s->eof = true;
            if (s->cb->on_eof)
                s->cb->on_eof(s);
            break;
        }
        tls_error(s, "tls read");
        return;
    }
    if (!s->closing)
        flush_tls(s);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    bg_stream_t *s = h->data;
    (void)suggested;
    /* Raw bytes land in one buffer per thread: every owner consumes or copies them inside
     * on_data, and read callbacks never nest. TLS plaintext uses the stream's own rdbuf,
     * because a read_start from another stream's callback may decrypt into it. */
    static _Thread_local char rawbuf[65536];
    (void)s;
    *buf = uv_buf_init(rawbuf, sizeof rawbuf);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    bg_stream_t *s = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            uv_read_stop(st);
            s->reading = false;
            s->eof = true;
            if (s->ssl && !s->open) {
                fail(s, UV_EOF, "tls handshake: connection closed");
                return;
            }
            if (s->cb->on_eof)
                s->cb->on_eof(s);
            return;
        }
        fail(s, (int)nread, "read");
        return;
    }
    if (s->ssl)
        tls_feed(s, buf->base, (size_t)nread);
    else
        s->cb->on_data(s, buf->base, (size_t)nread);
}

int bg_stream_init(bg_stream_t *s, uv_loop_t *loop, const bg_stream_callbacks_t *cb, void *data)
{
    memset(s, 0, sizeof *s);
    s->cb = cb;
    s->data = data;
    int r = uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    return r;
}

static int setup_tls(bg_stream_t *s, SSL_CTX *ctx, bool server)
{
    s->ssl = SSL_new(ctx);
    if (!s->ssl)
        return UV_ENOMEM;
    s->rdbuf = malloc(BG_STREAM_RDBUF);
    if (!s->rdbuf)
        abort();
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = out_bio_new(s);
    if (!s->rbio || !s->wbio) {
        BIO_free(s->rbio);
        BIO_free(s->wbio);
        s->rbio = s->wbio = NULL;
        return UV_ENOMEM;
    }
    BIO_set_mem_eof_return(s->rbio, -1);
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    s->tls_server = server;
    if (server)
        SSL_set_accept_state(s->ssl);
    else
        SSL_set_connect_state(s->ssl);
    return 0;
}

int bg_stream_accept(bg_stream_t *s, uv_stream_t *server, SSL_CTX *ctx)
{
    int r = uv_accept(server, (uv_stream_t *)&s->tcp);
    if (r < 0)
        return r;
    uv_tcp_nodelay(&s->tcp, 1);
    if (ctx && (r = setup_tls(s, ctx, true)) < 0)
        return r;
    if (!ctx)
        s->open = true;
    s->reading = true;
    r = uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
    if (r < 0)
        return r;
    if (!ctx && s->cb->on_open)
        s->cb->on_open(s);
    return 0;
}

static void connect_cb(uv_connect_t *req, int status)
{
    bg_stream_t *s = req->data;
    if (s->closing)
        return;
    if (status < 0) {
        fail(s, status, "connect");
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    s->reading = true;
    int r = uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
    if (r < 0) {
        fail(s, r, "read_start");
        return;
    }
    if (s->ssl) {
        SSL_do_handshake(s->ssl);
        flush_tls(s);
        return;
    }
    s->open = true;
    if (s->cb->on_open)
        s->cb->on_open(s);
}

int bg_stream_connect(bg_stream_t *s, const struct sockaddr *addr, SSL_CTX *ctx, const char *sni,
                      const char *verify_host)
{
    int r;
    if (ctx) {
        if ((r = setup_tls(s, ctx, false)) < 0)
            return r;
        if (sni && *sni)
            SSL_set_tlsext_host_name(s->ssl, sni);
        if (verify_host) {
            SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(s->ssl, verify_host) != 1)
                return UV_EINVAL;
            SSL_set_verify(s->ssl, SSL_VERIFY_PEER, NULL);
        }
    }
    s->connect.data = s;
    return uv_tcp_connect(&s->connect, &s->tcp, addr, connect_cb);
}

int bg_stream_write(bg_stream_t *s, const char *p, size_t n)
{
    if (s->closing)
        return UV_ECANCELED;
    if (!s->ssl)
        return raw_write(s, p, n);
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int r = SSL_write(s->ssl, p, chunk);
        if (r <= 0)
            return UV_EPROTO;
        p += r;
        n -= (size_t)r;
    }
    return flush_tls(s);
}

int bg_stream_writev(bg_stream_t *s, const uv_buf_t *bufs, size_t nbufs)
{
    if (s->closing)
        return UV_ECANCELED;
    if (!s->ssl && s->write_pending == 0) {
        /* One syscall for head + body in the common case. */
        size_t total = 0;
        for (size_t i = 0; i < nbufs; i++)
            total += bufs[i].len;
        int r = uv_try_write((uv_stream_t *)&s->tcp, bufs, (unsigned)nbufs);
        if (r < 0 && r != UV_EAGAIN)
            return r;
        size_t done = r > 0 ? (size_t)r : 0;
        if (done == total)
            return 0;
        for (size_t i = 0; i < nbufs; i++) {
            if (done >= bufs[i].len) {
                done -= bufs[i].len;
                continue;
            }
            r = raw_write(s, bufs[i].base + done, bufs[i].len - done);
            if (r < 0)
                return r;
            done = 0;
        }
        return 0;
    }
    for (size_t i = 0; i < nbufs; i++) {
        int r = bg_stream_write(s, bufs[i].base, bufs[i].len);
        if (r < 0)
            return r;
    }
    return 0;
}

void bg_stream_read_stop(bg_stream_t *s)
{
    if (!s->reading || s->closing)
        return;
    s->reading = false;
    uv_read_stop((uv_stream_t *)&s->tcp);
}

void bg_stream_read_start(bg_stream_t *s)
{
    if (s->reading || s->closing || s->eof)
        return;
    s->reading = true;
    uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
    if (s->ssl && s->open && SSL_pending(s->ssl) > 0)
        tls_feed(s, NULL, 0); /* plaintext that arrived while paused */
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

void bg_stream_shutdown(bg_stream_t *s)
{
    if (s->closing)
        return;
    if (s->ssl && s->open) {
        SSL_shutdown(s->ssl);
        flush_tls(s);
    }
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req)
        abort();
    if (uv_shutdown(req, (uv_stream_t *)&s->tcp, shutdown_cb) < 0)
        free(req);
}

const char *bg_stream_alpn(const bg_stream_t *s)
{
    static _Thread_local char proto[32];
    if (!s->ssl)
        return "";
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(s->ssl, &p, &n);
    if (!p || n >= sizeof proto)
        return "";
    memcpy(proto, p, n);
    proto[n] = 0;
    return proto;
}

void bg_stream_peer_subject(const bg_stream_t *s, char *out, size_t outlen)
{
    out[0] = 0;
    if (!s->ssl)
        return;
    X509 *cert = SSL_get1_peer_certificate(s->ssl);
    if (!cert)
        return;
    BIO *b = BIO_new(BIO_s_mem());
    if (b) {
        X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
        int n = BIO_read(b, out, (int)outlen - 1);
        out[n > 0 ? n : 0] = 0;
        BIO_free(b);
    }
    X509_free(cert);
}
