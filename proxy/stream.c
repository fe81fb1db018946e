/*
 * stream.c — see stream.h. The socket is non-blocking and polled level-triggered: readable while
 * the owner reads, writable while bytes wait in the queue (or a connect is in progress). Reads
 * go into one 64 KiB buffer per thread; writes go straight to the socket when nothing is queued,
 * and what the socket does not take is copied to the stream's queue (TLS records move into an
 * empty queue without a copy, and so does a buffer handed over by bg_stream_write_give, wiped
 * once sent): no write refers to its caller's buffer after it returns. TLS runs
 * over memory: ciphertext read from the socket is written to a memory BIO (rbio), SSL_read yields
 * plaintext; OpenSSL's records go to a BIO of our own (wbio) that appends them to the stream's
 * tls_out buffer, and everything there is handed to the socket in one write after every
 * operation. One worker thread owns a stream; the BIO method is made once per process. On a
 * worker loop with an io_uring (bg_stream_uring_start), reads and the writes their callbacks make
 * are batched: see "batched reads and writes" below; each read lands in a buffer of its own, which
 * its owner may take over (bg_stream_read_take).
 */
#include "stream.h"

#include "log.h"
#include "util.h"

/* Bytes a batched read brought are defined: memcheck is told so where its headers are (bench/leakcheck.sh
 * runs the gateway under valgrind, which sees io_uring_enter but not what the kernel writes through
 * the ring); a no-op elsewhere, and a few instructions outside valgrind. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define BG_MEM_DEFINED(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#endif
#endif
#ifndef BG_MEM_DEFINED
#define BG_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define BG_STREAM_RDBUF 16384
#define BG_STREAM_OUT_KEEP (128 * 1024) /* a larger tls_out or write queue is freed once flushed */
#define BG_STREAM_READS 32                /* reads per readable event while each fills the buffer */
#define BG_STREAM_IOV 16                  /* buffers bg_stream_writev sends in one call */

#define BG_URING_ENTRIES 256
#define BG_URING_BUFS 64           /* reads per io_uring_enter; more listed streams wait a round */
#define BG_URING_BUFSZ 65536
#define BG_URING_ROOM 512          /* free bytes in front of each read (bg_stream_read_take) */
#define BG_URING_SLOT (BG_URING_ROOM + BG_URING_BUFSZ)
#define BG_URING_ROUNDS BG_STREAM_READS /* rounds per check (a full buffer lists its stream again) */

typedef struct {
    uv_check_t *h;
    uv_check_cb cb;
} deferred_check_t;

typedef struct bg_uring {
    uv_loop_t *loop;
    struct io_uring ring;
    uv_check_t check;
    uv_idle_t idle;              /* active while streams stay listed: the next poll must not block */
    int handles;                 /* not yet closed */
    bool running;                /* inside check_cb */
    bg_stream_t *head, *tail;    /* listed streams, in the order they became readable */
    bg_stream_t *batch[BG_URING_BUFS];
    int res[BG_URING_BUFS];
    bg_stream_t *sq_head, **sq_tail; /* streams whose writes wait for the next io_uring_enter */
    bg_stream_t *sends[BG_URING_ENTRIES - BG_URING_BUFS];
    int sres[BG_URING_ENTRIES - BG_URING_BUFS];
    uint64_t send_ops;
    char *bufs[BG_URING_BUFS];   /* BG_URING_SLOT bytes each; a read lands after BG_URING_ROOM */
    int hw[BG_URING_BUFS];       /* the most bytes a read brought into each since it was clean */
    size_t cap[BG_URING_BUFS];   /* each one's size: BG_URING_SLOT or more (bg_stream_read_take) */
    bg_stream_t *cur;            /* the stream whose read result is being handed over, or NULL */
    int cur_slot;                /* its index in bufs */
    const char *cur_end;         /* the end of the bytes that read brought */
    deferred_check_t *deferred;  /* checks started inside check_cb, run at its end */
    size_t ndeferred, deferred_cap;
    uint64_t enters, reads, late;
} bg_uring_t;

static _Thread_local bg_uring_t *tl_uring;

static bg_uring_t *uring_of(const bg_stream_t *s)
{
    bg_uring_t *u = tl_uring;
    return u && u->loop == s->loop ? u : NULL;
}

static void uring_idle_cb(uv_idle_t *h);

static void rq_push(bg_uring_t *u, bg_stream_t *s)
{
    if (s->rq_queued)
        return;
    s->rq_queued = true;
    s->rq_next = NULL;
    s->rq_prev = u->tail;
    if (u->tail)
        u->tail->rq_next = s;
    else
        u->head = s;
    u->tail = s;
}

static void rq_remove(bg_uring_t *u, bg_stream_t *s)
{
    if (!s->rq_queued)
        return;
    s->rq_queued = false;
    if (s->rq_prev)
        s->rq_prev->rq_next = s->rq_next;
    else
        u->head = s->rq_next;
    if (s->rq_next)
        s->rq_next->rq_prev = s->rq_prev;
    else
        u->tail = s->rq_prev;
    s->rq_prev = s->rq_next = NULL;
}

static void queue_bytes(bg_stream_t *s, const char *p, size_t n);
static void sq_remove(bg_uring_t *u, bg_stream_t *s);
static bool sq_defer(bg_stream_t *s);
static ssize_t send_iov(int fd, struct iovec *iov, size_t n);

static void close_cb(uv_handle_t *h)
{
    bg_stream_t *s = h->data;
    if (s->fd >= 0)
        close(s->fd); /* after libuv has let go of it (the poll is stopped and out of epoll) */
    s->fd = -1;
    if (s->ssl) {
        /* A connection that finished its handshake ended as far as its session is concerned,
         * close_notify or not (as nginx does): without this, SSL_free marks the session not
         * resumable, and it is the one a vendor connection keeps for the next (upstream.c). */
        if (s->open)
            SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(s->ssl); /* frees the BIOs too */
    }
    s->ssl = NULL;
    free(s->rdbuf);
    s->rdbuf = NULL;
    free(s->stash);
    s->stash = NULL;
    s->stash_len = 0;
    free(s->tls_out);
    s->tls_out = NULL;
    s->tls_out_len = s->tls_out_cap = 0;
    if (s->wq_wipe)
        bg_wipe(s->wq, s->wq_dirty);
    free(s->wq);
    s->wq = NULL;
    s->wq_off = s->wq_cap = s->wq_dirty = 0;
    s->wq_wipe = false;
    s->write_pending = 0;
    if (s->cb->on_closed)
        s->cb->on_closed(s);
}

void bg_stream_close(bg_stream_t *s)
{
    if (s->closing)
        return;
    s->closing = true;
    bg_uring_t *u = uring_of(s);
    if (u) {
        rq_remove(u, s); /* freed after the close phase: off the lists before the next check */
        if (s->sq_queued) {
            /* Bytes written inside the check wait for its next io_uring_enter; without it they
             * would have been sent when written, before this close: send them now. */
            sq_remove(u, s);
            if (s->fd >= 0) {
                struct iovec v = {s->wq + s->wq_off, s->write_pending};
                (void)send_iov(s->fd, &v, 1);
            }
        }
    }
    if (s->fd >= 0) {
        uv_close((uv_handle_t *)&s->h.poll, close_cb);
        return;
    }
    /* No socket, so no poll handle: an idle timer handle carries the deferred on_closed. */
    uv_timer_init(s->loop, &s->h.timer);
    s->h.timer.data = s;
    uv_close((uv_handle_t *)&s->h.timer, close_cb);
}

static void fail(bg_stream_t *s, int err, const char *what)
{
    if (s->closing)
        return;
    if (s->cb->on_error)
        s->cb->on_error(s, err, what);
    bg_stream_close(s);
}

static void poll_cb(uv_poll_t *h, int status, int events);

/* Poll for what the stream waits on now: readable while the owner reads (and the peer has not
 * finished), writable while bytes are queued or a connect is in progress. */
static void update_poll(bg_stream_t *s)
{
    if (s->closing || s->fd < 0)
        return;
    int want = (s->connecting || s->write_pending ? UV_WRITABLE : 0) |
               (s->reading && !s->eof && !s->connecting ? UV_READABLE : 0);
    if (want == s->events)
        return;
    s->events = want;
    if (want)
        uv_poll_start(&s->h.poll, want, poll_cb);
    else
        uv_poll_stop(&s->h.poll);
}

/* Room for n more bytes after `used` in *buf (capacity *cap, `first` when empty), doubling. */
static void reserve(char **buf, size_t *cap, size_t used, size_t n, size_t first)
{
    if (n <= *cap - used)
        return;
    size_t c = *cap ? *cap : first;
    while (c - used < n)
        c *= 2;
    char *q = realloc(*buf, c);
    if (!q)
        abort();
    *buf = q;
    *cap = c;
}

/* A queue that must be wiped grows into new storage rather than by realloc, which could leave
 * its bytes behind in freed memory: the first `end` bytes move, the old storage is wiped. */
static void queue_grow_wiped(bg_stream_t *s, size_t end, size_t n)
{
    size_t c = s->wq_cap ? s->wq_cap : 16384;
    while (c - end < n)
        c *= 2;
    char *q = malloc(c);
    if (!q)
        abort();
    memcpy(q, s->wq, end);
    bg_wipe(s->wq, s->wq_dirty);
    free(s->wq);
    s->wq = q;
    s->wq_cap = c;
}

/* Keep n bytes for later (the socket took what came before them). */
static void queue_bytes(bg_stream_t *s, const char *p, size_t n)
{
    size_t end = s->wq_off + s->write_pending;
    if (n > s->wq_cap - end && s->wq_off) { /* slide what is left to the front first */
        memmove(s->wq, s->wq + s->wq_off, s->write_pending);
        s->wq_off = 0;
        end = s->write_pending;
    }
    if (s->wq_wipe && n > s->wq_cap - end)
        queue_grow_wiped(s, end, n);
    reserve(&s->wq, &s->wq_cap, end, n, 16384);
    memcpy(s->wq + end, p, n);
    s->write_pending += n;
    if (end + n > s->wq_dirty)
        s->wq_dirty = end + n;
}

/* Storage *buf (*cap bytes) with bytes to send at [off, off + n) becomes the queue, which is empty:
 * the two trade places rather than the bytes being copied, and *buf, *cap get the queue's former
 * storage (TLS records from tls_out; a caller's buffer from bg_stream_write_give). */
static void queue_trade(bg_stream_t *s, char **buf, size_t *cap, size_t off, size_t n)
{
    char *q = s->wq;
    size_t qcap = s->wq_cap;
    s->wq = *buf;
    s->wq_cap = *cap;
    s->wq_off = off;
    s->write_pending = n;
    s->wq_dirty = off + n;
    *buf = q;
    *cap = qcap;
}

static void shut_write_side(bg_stream_t *s)
{
    s->shut_wanted = false;
    shutdown(s->fd, SHUT_WR); /* a peer already gone makes this fail; the read side will tell */
}

/* Hand the socket what it takes of iov[0..n): the bytes taken (0 when it is full), or a negative
 * errno. One buffer goes by send(), cheaper than sendmsg(); never SIGPIPE. */
static ssize_t send_iov(int fd, struct iovec *iov, size_t n)
{
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = n};
    for (;;) {
        ssize_t r = n == 1 ? send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL) : sendmsg(fd, &m, MSG_NOSIGNAL);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    }
}

/* The socket is writable: hand it the queue. */
static void flush_queue(bg_stream_t *s)
{
    while (s->write_pending) {
        struct iovec v = {s->wq + s->wq_off, s->write_pending};
        ssize_t r = send_iov(s->fd, &v, 1);
        if (r < 0) {
            fail(s, (int)r, "write");
            return;
        }
        if (r == 0)
            return;
        s->wq_off += (size_t)r;
        s->write_pending -= (size_t)r;
        s->flushed_at = uv_now(s->loop); /* the peer is reading: a slow reader is not a silent one */
    }
    s->wq_off = 0;
    if (s->wq_wipe) { /* bytes of a bg_stream_write_give went through it */
        bg_wipe(s->wq, s->wq_dirty);
        s->wq_dirty = 0;
        s->wq_wipe = false;
    }
    if (s->wq_cap > BG_STREAM_OUT_KEEP) {
        free(s->wq);
        s->wq = NULL;
        s->wq_cap = s->wq_dirty = 0;
    }
    if (s->shut_wanted)
        shut_write_side(s);
    update_poll(s);
    if (!s->closing && s->cb->on_drain)
        s->cb->on_drain(s);
}

/* Raw bytes to the socket: straight away when nothing is queued (and the socket is connected),
 * what it does not take goes to the queue; inside the io_uring check, to the queue for its next
 * io_uring_enter (sq_defer). tls_out: p is s->tls_out, which an empty queue takes over instead of
 * a copy. 0 or a negative errno. */
static int raw_write(bg_stream_t *s, const char *p, size_t n, bool tls_out)
{
    if (s->closing)
        return UV_ECANCELED;
    if (n == 0)
        return 0;
    bool deferred = sq_defer(s);
    size_t off = 0;
    if (!deferred && s->write_pending == 0 && s->fd >= 0 && !s->connecting) {
        struct iovec v = {(void *)p, n};
        ssize_t r = send_iov(s->fd, &v, 1);
        if (r < 0)
            return (int)r;
        off = (size_t)r;
        if (off == n)
            return 0;
    }
    if (tls_out && s->write_pending == 0)
        queue_trade(s, &s->tls_out, &s->tls_out_cap, off, n - off); /* the next tls_out: the old queue */
    else
        queue_bytes(s, p + off, n - off);
    if (!deferred)
        update_poll(s);
    return 0;
}

/* ---- the write BIO: records appended to s->tls_out ----------------------------------------- */

static int out_bio_write_ex(BIO *b, const char *p, size_t n, size_t *written)
{
    bg_stream_t *s = BIO_get_data(b);
    *written = 0;
    if (!s)
        return 0;
    reserve(&s->tls_out, &s->tls_out_cap, s->tls_out_len, n, 16384 + 512);
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
    int r = raw_write(s, s->tls_out, n, true);
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
    s->feeding = true;
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
        s->feeding = false;
        tls_error(s, "tls read");
        return;
    }
    s->feeding = false;
    if (!s->closing)
        flush_tls(s);
}

static void on_peer_eof(bg_stream_t *s)
{
    s->reading = false;
    s->eof = true;
    if (s->ssl && !s->open) {
        fail(s, UV_EOF, "tls handshake: connection closed");
        return;
    }
    if (s->cb->on_eof)
        s->cb->on_eof(s);
    update_poll(s); /* after on_eof: an owner that closes spares the poll a stop */
}

/* What one read brought (n == 0: the peer finished sending), handed to the owner: as plaintext,
 * or through TLS. The recv() path and the batched (io_uring) one both end here. */
static inline void deliver(bg_stream_t *s, const char *p, size_t n)
{
    if (n == 0)
        on_peer_eof(s);
    else if (s->ssl)
        tls_feed(s, p, n);
    else
        s->cb->on_data(s, p, n);
}

/* The socket is readable: read while the owner reads and each read fills the buffer. Raw bytes
 * land in one buffer per thread: every owner consumes or copies them inside on_data, and read
 * callbacks never nest. TLS plaintext uses the stream's own rdbuf, because a read_start from
 * another stream's callback may decrypt into it. */
static void read_socket(bg_stream_t *s)
{
    static _Thread_local char rawbuf[65536];
    for (int i = 0; i < BG_STREAM_READS && s->reading && !s->closing; i++) {
        ssize_t r = recv(s->fd, rawbuf, sizeof rawbuf, 0);
        if (r < 0) {
            if (errno == EINTR) {
                i--;
                continue;
            }
            s->rd_more = false;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fail(s, -errno, "read");
            return;
        }
        s->rd_more = (size_t)r == sizeof rawbuf; /* for bg_stream_unread, while on_data runs and after */
        deliver(s, rawbuf, (size_t)r);
        if ((size_t)r < sizeof rawbuf)
            return; /* EOF, or the socket is drained: the next read would say EAGAIN */
    }
}

static int socket_error(bg_stream_t *s)
{
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        return -errno;
    return -e;
}

static void connected(bg_stream_t *s)
{
    s->connecting = false;
    int err = s->connect_error ? s->connect_error : socket_error(s);
    if (err < 0) {
        fail(s, err, "connect");
        return;
    }
    s->reading = true;
    update_poll(s);
    if (s->write_pending)
        flush_queue(s); /* bytes written while connecting (then a shutdown asked for meanwhile) */
    else if (s->shut_wanted)
        shut_write_side(s);
    if (s->closing)
        return;
    if (s->ssl) {
        SSL_do_handshake(s->ssl);
        flush_tls(s);
        return;
    }
    s->open = true;
    if (s->cb->on_open)
        s->cb->on_open(s);
}

/* ---- batched reads and writes through io_uring --------------------------------------------------
 * One ring per worker loop (thread-local: the thread that runs the loop owns it). poll_cb lists a
 * readable stream instead of reading it; check_cb, after the poll phase, takes up to
 * BG_URING_BUFS listed streams, prepares one RECV each into its own buffer, submits them in one
 * io_uring_enter, reaps every completion, and only then hands each result to what read_socket
 * would have done with it, in the order the streams became readable. MSG_DONTWAIT makes the
 * kernel complete each recv inline (REQ_F_NOWAIT: -EAGAIN instead of arming a poll of its own),
 * so nothing is in flight once io_uring_enter returned: buffers and streams need no lifetime
 * beyond the check. A stream closed by an earlier result's callback has its result dropped (its
 * memory lives until the close phase, after the check); one its owner paused meanwhile keeps
 * what was read (stash, or the TLS read BIO) until bg_stream_read_start.
 * Writes made inside the check to a stream with nothing queued go to its queue (plain bytes copied,
 * TLS records without a copy) and out as one SEND each (MSG_DONTWAIT | MSG_NOSIGNAL) in the
 * check's next io_uring_enter, together with the next round's reads. What the socket did not take
 * stays queued for the poll, as a short send always did, and a queue emptied this way calls
 * on_drain. Closing such a stream sends its queue first: without the batch those bytes had
 * left when they were written. */

/* The send list is singly linked: removal walks it, which only a close inside the check does. */
static void sq_remove(bg_uring_t *u, bg_stream_t *s)
{
    if (!s->sq_queued)
        return;
    s->sq_queued = false;
    for (bg_stream_t **p = &u->sq_head; *p; p = &(*p)->sq_next)
        if (*p == s) {
            *p = s->sq_next;
            if (!*p)
                u->sq_tail = p;
            break;
        }
    s->sq_next = NULL;
}

/* Inside the check, a write to a connected stream whose queue is listed for the check's next
 * io_uring_enter already (the bytes join it, in order) or is empty waits for that enter, as one
 * SEND (MSG_DONTWAIT): the stream is listed (once) and true; the caller queues the bytes. Else
 * false (send now, as always). Large plain writes wait too: sending a 16 KiB POST body at once
 * from the caller's buffer, without the copy, cost more CPU per request, not less (9x the context
 * switches: each send woke the vendor on its own; bench/ab.sh post, 8 of 8 rounds slower). */
static bool sq_defer(bg_stream_t *s)
{
    bg_uring_t *u = uring_of(s);
    if (!u || !u->running || s->fd < 0 || s->connecting)
        return false;
    if (!s->sq_queued) {
        if (s->write_pending)
            return false;
        s->sq_queued = true;
        s->sq_next = NULL;
        *u->sq_tail = s;
        u->sq_tail = &s->sq_next;
    }
    return true;
}

/* List s for the check of this turn (from poll_cb) or, from elsewhere (a read_start with
 * stashed input), of the next one, which the idle handle makes come without waiting. */
static void rq_list(bg_uring_t *u, bg_stream_t *s)
{
    rq_push(u, s);
    if (!u->running)
        uv_idle_start(&u->idle, uring_idle_cb);
}

/* What the owner paused before it could have it: kept for bg_stream_read_start. */
static void stash_result(bg_stream_t *s, const char *p, int res)
{
    if (res == 0) {
        s->stash_eof = true;
        return;
    }
    if (s->ssl) { /* the read BIO holds it; read_start feeds it (tls_holds_input) */
        if (BIO_write(s->rbio, p, res) != res)
            fail(s, UV_ENOMEM, "tls bio");
        return;
    }
    char *q = realloc(s->stash, s->stash_len + (size_t)res);
    if (!q)
        abort();
    memcpy(q + s->stash_len, p, (size_t)res);
    s->stash = q;
    s->stash_len += (size_t)res;
}

/* One result of a batched read (bytes, 0 for EOF, a negative errno), as read_socket would
 * handle it. Lists the stream again when the read filled the buffer. */
static void take_result(bg_uring_t *u, bg_stream_t *s, const char *p, int res)
{
    s->rd_taken = false;
    if (s->closing)
        return; /* closed by an earlier result's callback: the bytes go with it */
    if (res == -EAGAIN || res == -EWOULDBLOCK || res == -EINTR) {
        s->rd_more = false;
        return; /* still readable: the poll reports it again */
    }
    if (res < 0) {
        s->rd_more = false;
        fail(s, res, "read");
        return;
    }
    s->rd_more = res == BG_URING_BUFSZ;
    if (!s->reading || s->eof) {
        stash_result(s, p, res);
        return;
    }
    u->cur = s, u->cur_end = p + res; /* for bg_stream_read_take (cur_slot: the caller's) */
    deliver(s, p, (size_t)res);
    u->cur = NULL;
    if (s->rd_more && s->reading && !s->closing && !s->eof)
        rq_push(u, s);
}

/* A listed stream with stashed input: hand it over (the socket is not read this round). */
static void take_stash(bg_stream_t *s)
{
    if (s->stash_len) {
        char *p = s->stash;
        size_t n = s->stash_len;
        s->stash = NULL;
        s->stash_len = 0;
        s->cb->on_data(s, p, n); /* the owner consumes or copies inside on_data, as always */
        free(p);
    }
    if (s->stash_eof && !s->closing && s->reading) {
        s->stash_eof = false;
        on_peer_eof(s);
    }
}

/* Submit what is prepared and wait for nothing: every completion is there when
 * io_uring_enter returns (MSG_DONTWAIT). Counts any that were not, then waits for them so that
 * no buffer is reused while the kernel still holds it. */
static void submit_and_reap(bg_uring_t *u, unsigned n)
{
    int r;
    do
        r = io_uring_submit(&u->ring);
    while (r == -EINTR || r == -EAGAIN || r == -EBUSY);
    if (r != (int)n) {
        bg_log_error("io_uring submit failed", "error", r < 0 ? strerror(-r) : "short submit");
        abort(); /* SQEs left in the ring would point at buffers about to be reused */
    }
    u->enters++;
    u->reads += n; /* reads and sends; send_ops counts the sends */
    unsigned got = 0;
    while (got < n) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            if (cqe->user_data >= BG_URING_BUFS)
                u->sres[cqe->user_data - BG_URING_BUFS] = cqe->res;
            else
                u->res[cqe->user_data] = cqe->res;
            seen++;
        }
        io_uring_cq_advance(&u->ring, seen);
        got += seen;
        if (got < n) {
            u->late += n - got; /* a completion after enter returned: should never happen */
            if ((r = io_uring_wait_cqe_nr(&u->ring, &cqe, n - got)) < 0 && r != -EINTR) {
                bg_log_error("io_uring wait failed", "error", strerror(-r));
                abort();
            }
        }
    }
}

/* A batched send's result: what the socket took leaves the queue; the rest waits for the poll
 * (flush_queue), as a send that did not take everything always did. */
static void take_send(bg_stream_t *s, int res)
{
    if (s->closing)
        return;
    if (res == -EAGAIN || res == -EWOULDBLOCK || res == -EINTR)
        res = 0;
    if (res < 0) {
        fail(s, res, "write");
        return;
    }
    s->wq_off += (size_t)res;
    s->write_pending -= (size_t)res;
    if (res > 0)
        s->flushed_at = uv_now(s->loop); /* as flush_queue: the socket took queued bytes */
    if (s->write_pending) {
        update_poll(s);
        return;
    }
    flush_queue(s); /* nothing left: its tail (shutdown wanted, poll, on_drain) */
}

static void uring_check_cb(uv_check_t *h)
{
    bg_uring_t *u = h->data;
    u->running = true;
    int round = 0;
    for (;;) {
        if (!(u->head && round < BG_URING_ROUNDS) && !u->sq_head) {
            if (!u->ndeferred)
                break;
            /* Checks the callbacks started: this turn, not after the next poll. Their writes go
             * out in one more round. */
            for (size_t i = 0; i < u->ndeferred; i++) {
                deferred_check_t d = u->deferred[i];
                if (uv_is_active((uv_handle_t *)d.h) && !uv_is_closing((uv_handle_t *)d.h))
                    d.cb(d.h);
            }
            u->ndeferred = 0;
            continue;
        }
        round++;
        unsigned ns = 0;
        while (u->sq_head && ns < BG_URING_ENTRIES - BG_URING_BUFS) {
            bg_stream_t *s = u->sq_head;
            u->sq_head = s->sq_next;
            if (!u->sq_head)
                u->sq_tail = &u->sq_head;
            s->sq_queued = false;
            s->sq_next = NULL;
            if (s->closing || !s->write_pending)
                continue;
            struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
            io_uring_prep_send(sqe, s->fd, s->wq + s->wq_off, s->write_pending, MSG_DONTWAIT | MSG_NOSIGNAL);
            io_uring_sqe_set_data64(sqe, BG_URING_BUFS + ns);
            u->sends[ns++] = s;
        }
        unsigned n = 0;
        while (u->head && n < BG_URING_BUFS && round <= BG_URING_ROUNDS) {
            bg_stream_t *s = u->head;
            rq_remove(u, s);
            if (s->closing || !s->reading || s->eof)
                continue; /* paused or done meanwhile: the poll lists it again when it reads */
            u->batch[n] = s;
            if (s->stash_len || s->stash_eof) {
                u->res[n++] = INT_MIN; /* marks a stash: no read */
                continue;
            }
            struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
            io_uring_prep_recv(sqe, s->fd, u->bufs[n] + BG_URING_ROOM, BG_URING_BUFSZ, MSG_DONTWAIT);
            io_uring_sqe_set_data64(sqe, n);
            u->res[n] = INT_MIN + 1; /* overwritten by its completion */
            n++;
        }
        unsigned nops = io_uring_sq_ready(&u->ring);
        if (nops)
            submit_and_reap(u, nops);
        u->send_ops += ns;
        for (unsigned i = 0; i < n; i++) /* for bg_stream_unread while the results are handed over */
            u->batch[i]->rd_taken = u->res[i] != INT_MIN && u->res[i] != -EAGAIN;
        /* Results only now: their callbacks may close, pause or resume the others. The sends
         * first: they went before the reads. */
        for (unsigned i = 0; i < ns; i++)
            take_send(u->sends[i], u->sres[i]);
        for (unsigned i = 0; i < n; i++) {
            if (u->res[i] == INT_MIN) {
                if (!u->batch[i]->closing)
                    take_stash(u->batch[i]);
                continue;
            }
            u->cur_slot = (int)i;
            if (u->res[i] > u->hw[i])
                u->hw[i] = u->res[i];
            if (u->res[i] > 0) /* the kernel wrote them through the ring, which valgrind does not follow */
                BG_MEM_DEFINED(u->bufs[i] + BG_URING_ROOM, (size_t)u->res[i]);
            take_result(u, u->batch[i], u->bufs[i] + BG_URING_ROOM, u->res[i]);
        }
    }
    u->running = false;
    if (u->head)
        uv_idle_start(&u->idle, uring_idle_cb);
    else
        uv_idle_stop(&u->idle);
}

static void uring_idle_cb(uv_idle_t *h)
{
    (void)h; /* its being active is the point: the poll that follows does not block */
}

int bg_stream_uring_start(uv_loop_t *loop)
{
    if (tl_uring)
        return UV_EBUSY;
    bg_uring_t *u = calloc(1, sizeof *u);
    if (!u)
        abort();
    struct io_uring_params p = {.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                                         IORING_SETUP_SINGLE_ISSUER};
    int r = io_uring_queue_init_params(BG_URING_ENTRIES, &u->ring, &p);
    if (r == -EINVAL) { /* a kernel before 6.0 without some flag: plain */
        memset(&p, 0, sizeof p);
        r = io_uring_queue_init_params(BG_URING_ENTRIES, &u->ring, &p);
    }
    if (r < 0) {
        free(u);
        return r;
    }
    for (int i = 0; i < BG_URING_BUFS; i++) {
        if (!(u->bufs[i] = malloc(BG_URING_SLOT)))
            abort();
        u->cap[i] = BG_URING_SLOT;
    }
    u->sq_tail = &u->sq_head;
    u->loop = loop;
    uv_check_init(loop, &u->check);
    u->check.data = u;
    uv_check_start(&u->check, uring_check_cb);
    uv_unref((uv_handle_t *)&u->check);
    uv_idle_init(loop, &u->idle);
    u->idle.data = u;
    uv_unref((uv_handle_t *)&u->idle);
    u->handles = 2;
    tl_uring = u;
    return 0;
}

static void uring_closed_cb(uv_handle_t *h)
{
    bg_uring_t *u = h->data;
    if (--u->handles > 0)
        return;
    io_uring_queue_exit(&u->ring);
    for (int i = 0; i < BG_URING_BUFS; i++)
        free(u->bufs[i]);
    free(u->deferred);
    free(u);
}

void bg_stream_uring_stop(uv_loop_t *loop)
{
    bg_uring_t *u = tl_uring;
    if (!u || u->loop != loop)
        return;
    tl_uring = NULL;
    char enters[24], reads[24], late[24];
    snprintf(enters, sizeof enters, "%llu", (unsigned long long)u->enters);
    snprintf(reads, sizeof reads, "%llu", (unsigned long long)u->reads);
    snprintf(late, sizeof late, "%llu", (unsigned long long)u->late);
    char sends[24];
    snprintf(sends, sizeof sends, "%llu", (unsigned long long)u->send_ops);
    bg_log_info("io_uring reads", "enters", enters, "reads", reads, "late", late, "sends", sends);
    while (u->head) /* streams still listed read with recv() from now on */
        rq_remove(u, u->head);
    uv_close((uv_handle_t *)&u->check, uring_closed_cb);
    uv_close((uv_handle_t *)&u->idle, uring_closed_cb);
}

void bg_stream_uring_stats(uint64_t *enters, uint64_t *reads, uint64_t *late)
{
    bg_uring_t *u = tl_uring;
    *enters = u ? u->enters : 0;
    *reads = u ? u->reads : 0;
    *late = u ? u->late : 0;
}

bool bg_stream_read_take(bg_stream_t *s, const char *p, size_t n, char **buf, size_t *cap)
{
    bg_uring_t *u = uring_of(s);
    if (!u || u->cur != s)
        return false;
    char *b = u->bufs[u->cur_slot];
    if (p < b + BG_URING_ROOM || p + n != u->cur_end || p + n >= b + BG_URING_SLOT)
        return false;
    /* Earlier, longer reads left bytes after these: wiped, as the taker wipes only up to p + n. */
    const char *stale = b + BG_URING_ROOM + u->hw[u->cur_slot];
    if (stale > p + n)
        bg_wipe((char *)p + n, (size_t)(stale - (p + n)));
    /* The read's slot takes the caller's storage when it is large enough (it holds nothing), or
     * new storage; the next round's reads land there. */
    char *r = *buf;
    size_t rcap = *cap;
    if (!r || rcap < BG_URING_SLOT) {
        free(r);
        if (!(r = malloc(BG_URING_SLOT)))
            abort();
        rcap = BG_URING_SLOT;
    }
    *buf = b;
    *cap = u->cap[u->cur_slot];
    u->bufs[u->cur_slot] = r;
    u->cap[u->cur_slot] = rcap;
    u->hw[u->cur_slot] = 0;
    u->cur = NULL; /* taken once */
    return true;
}

int bg_stream_check_start(uv_check_t *h, uv_check_cb cb)
{
    int r = uv_check_start(h, cb);
    bg_uring_t *u = tl_uring;
    if (r == 0 && u && u->running && h->loop == u->loop) {
        if (u->ndeferred == u->deferred_cap) {
            size_t c = u->deferred_cap ? 2 * u->deferred_cap : 16;
            deferred_check_t *d = realloc(u->deferred, c * sizeof *d);
            if (!d)
                abort();
            u->deferred = d;
            u->deferred_cap = c;
        }
        u->deferred[u->ndeferred++] = (deferred_check_t){h, cb};
    }
    return r;
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    bg_stream_t *s = h->data;
    if (s->closing)
        return;
    if (status < 0) {
        /* An error on the socket (libuv has stopped the poll): a connect learns it from SO_ERROR;
         * otherwise data that came before it is still read first, and the read or the write
         * that meets the error reports it. */
        s->events = 0;
        events = UV_READABLE | (s->write_pending || s->connecting ? UV_WRITABLE : 0);
    }
    if (s->connecting) {
        connected(s);
        return;
    }
    if ((events & UV_READABLE) && s->reading && !s->eof) {
        /* Batched unless the socket reported an error or the queue waits for it too (then the
         * read comes first, as it always did) or a TLS handshake runs (it stays as it was). */
        bg_uring_t *u = uring_of(s);
        if (u && status == 0 && s->open && !((events & UV_WRITABLE) && s->write_pending))
            rq_push(u, s);
        else
            read_socket(s);
    }
    if (!s->closing && (events & UV_WRITABLE) && s->write_pending)
        flush_queue(s);
    update_poll(s);
}

/* A socket for the stream, polled on its loop. On failure the fd is closed. */
static int take_socket(bg_stream_t *s, int fd)
{
    int r = uv_poll_init(s->loop, &s->h.poll, fd);
    if (r < 0) {
        close(fd);
        return r;
    }
    s->fd = fd;
    s->h.poll.data = s;
    return 0;
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int bg_stream_init(bg_stream_t *s, uv_loop_t *loop, const bg_stream_callbacks_t *cb, void *data)
{
    memset(s, 0, sizeof *s);
    s->cb = cb;
    s->data = data;
    s->loop = loop;
    s->fd = -1;
    return 0;
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
    SSL_set_app_data(s->ssl, s); /* for the SSL_CTX's callbacks (bg_stream_of_ssl) */
    s->tls_server = server;
    if (server)
        SSL_set_accept_state(s->ssl);
    else
        SSL_set_connect_state(s->ssl);
    return 0;
}

int bg_stream_accept(bg_stream_t *s, int fd, SSL_CTX *ctx)
{
    int r = take_socket(s, fd); /* TCP_NODELAY comes with it from the listening socket */
    if (r < 0)
        return r;
    if (ctx && (r = setup_tls(s, ctx, true)) < 0)
        return r;
    if (!ctx)
        s->open = true;
    s->reading = true;
    update_poll(s);
    if (!ctx && s->cb->on_open)
        s->cb->on_open(s);
    return 0;
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
    socklen_t len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if ((r = take_socket(s, fd)) < 0)
        return r;
    set_nodelay(fd);
    while ((r = connect(fd, addr, len)) < 0 && errno == EINTR)
        ;
    /* Whatever connect says, the answer comes from the poll (on_open and on_error never run
     * inside this call): in progress, done, or refused at once (kept for the poll to report). */
    if (r < 0 && errno != EINPROGRESS)
        s->connect_error = -errno;
    s->connecting = true;
    update_poll(s);
    return 0;
}

void bg_stream_tls_offer_session(bg_stream_t *s, SSL_SESSION *sess)
{
    /* The handshake starts once the TCP connect is done (connected), never inside bg_stream_connect. */
    if (s->ssl && sess && !s->tls_server && SSL_in_before(s->ssl))
        SSL_set_session(s->ssl, sess);
}

bool bg_stream_tls_resumed(const bg_stream_t *s) { return s->ssl && s->open && SSL_session_reused(s->ssl); }

bg_stream_t *bg_stream_of_ssl(const SSL *ssl) { return SSL_get_app_data(ssl); }

/* Plaintext to OpenSSL; its records wait in tls_out for flush_tls. 0 or UV_EPROTO. */
static int tls_write(bg_stream_t *s, const char *p, size_t n)
{
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int r = SSL_write(s->ssl, p, chunk);
        if (r <= 0)
            return UV_EPROTO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int bg_stream_write(bg_stream_t *s, const char *p, size_t n)
{
    if (s->closing)
        return UV_ECANCELED;
    if (!s->ssl)
        return raw_write(s, p, n, false);
    int r = tls_write(s, p, n);
    return r < 0 ? r : flush_tls(s);
}

int bg_stream_write_give(bg_stream_t *s, char **buf, size_t *cap, size_t off, size_t n)
{
    if (s->closing)
        return UV_ECANCELED;
    if (n == 0)
        return 0;
    if (s->ssl) { /* the records are a copy anyway */
        int r = bg_stream_write(s, *buf + off, n);
        return r < 0 ? r : 0;
    }
    bool deferred = sq_defer(s);
    if (s->write_pending || s->fd < 0 || s->connecting) {
        /* Bytes before them, or no socket yet: copied behind those, and the queue is wiped. */
        s->wq_wipe = true;
        queue_bytes(s, *buf + off, n);
        if (!deferred)
            update_poll(s);
        return 0;
    }
    size_t sent = 0;
    if (!deferred) {
        struct iovec v = {*buf + off, n};
        ssize_t r = send_iov(s->fd, &v, 1);
        if (r < 0)
            return (int)r;
        if ((size_t)r == n)
            return 0;
        sent = (size_t)r;
    }
    /* The buffer becomes the (empty) queue, and the queue's storage goes to the caller, wiped
     * where it held bytes. */
    if (s->wq && s->wq_dirty)
        bg_wipe(s->wq, s->wq_dirty);
    queue_trade(s, buf, cap, off + sent, n - sent);
    s->wq_wipe = true;
    if (!deferred)
        update_poll(s);
    return 1;
}

size_t bg_stream_outq(const bg_stream_t *s)
{
    int n = 0;
    if (s->fd < 0 || ioctl(s->fd, SIOCOUTQ, &n) != 0 || n < 0)
        return 0;
    return (size_t)n;
}

int bg_stream_writev(bg_stream_t *s, const uv_buf_t *bufs, size_t nbufs)
{
    if (s->closing)
        return UV_ECANCELED;
    if (s->ssl) {
        /* Every buffer's records first, then one write of them all (taken over by an empty queue). */
        for (size_t i = 0; i < nbufs; i++) {
            int r = tls_write(s, bufs[i].base, bufs[i].len);
            if (r < 0)
                return r;
        }
        return flush_tls(s);
    }
    size_t total = 0;
    for (size_t i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    if (sq_defer(s)) {
        for (size_t i = 0; i < nbufs; i++)
            queue_bytes(s, bufs[i].base, bufs[i].len);
        return 0;
    }
    if (s->write_pending == 0 && s->fd >= 0 && !s->connecting && nbufs <= BG_STREAM_IOV) {
        /* One syscall for head + body, from the caller's buffers. */
        struct iovec iov[BG_STREAM_IOV];
        for (size_t i = 0; i < nbufs; i++) {
            iov[i].iov_base = bufs[i].base;
            iov[i].iov_len = bufs[i].len;
        }
        ssize_t r = send_iov(s->fd, iov, nbufs);
        if (r < 0)
            return (int)r;
        size_t done = (size_t)r;
        if (done == total)
            return 0;
        for (size_t i = 0; i < nbufs; i++) {
            if (done >= bufs[i].len) {
                done -= bufs[i].len;
                continue;
            }
            queue_bytes(s, bufs[i].base + done, bufs[i].len - done);
            done = 0;
        }
        update_poll(s);
        return 0;
    }
    for (size_t i = 0; i < nbufs; i++) {
        int r = raw_write(s, bufs[i].base, bufs[i].len, false);
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
    update_poll(s);
}

/* Input the socket has delivered but on_data has not had: plaintext of a record OpenSSL opened, or
 * records still in the read BIO. No readable event will come for it. */
static bool tls_holds_input(const bg_stream_t *s)
{
    return s->ssl && (SSL_pending(s->ssl) > 0 || BIO_ctrl_pending(s->rbio) > 0);
}

void bg_stream_read_start(bg_stream_t *s)
{
    if (s->reading || s->closing || s->eof)
        return;
    s->reading = true;
    update_poll(s);
    /* What arrived while paused: plaintext of a record OpenSSL has opened (SSL_pending), and
     * whole records still in the read BIO (tls_feed stops at the pause, and one socket read
     * holds several). The socket has delivered those bytes already, so no readable event
     * comes for them: a peer that has sent its last record would wait here forever.
     * Not from inside on_data of this stream (paused and resumed within one callback): the
     * owner is still using the plaintext in rdbuf, which a nested SSL_read would overwrite,
     * and later bytes would reach it before the rest of these. The running tls_feed loop goes
     * on by itself, since reading is true again. */
    if (s->open && !s->feeding && tls_holds_input(s))
        tls_feed(s, NULL, 0);
    /* What a batched read took while paused: handed over by the next check, never from here
     * (a plain stream's read_start never called on_data, and owners rely on it). */
    bg_uring_t *u;
    if ((s->stash_len || s->stash_eof) && !s->closing && s->reading && (u = uring_of(s)))
        rq_list(u, s);
}

void bg_stream_shutdown(bg_stream_t *s)
{
    if (s->closing)
        return;
    if (s->ssl && s->open) {
        SSL_shutdown(s->ssl);
        flush_tls(s);
    }
    if (s->fd < 0 || s->closing)
        return;
    if (s->write_pending || s->connecting)
        s->shut_wanted = true; /* after the queue (flush_queue) */
    else
        shut_write_side(s);
}

/* ---- listening sockets ---------------------------------------------------------------------- */

#define BG_ACCEPT_BATCH 64        /* connections taken per readable event */
#define BG_ACCEPT_PAUSE_MS 100    /* out of descriptors: try again after this */

static void listen_poll_cb(uv_poll_t *h, int status, int events);

static void listen_resume_cb(uv_timer_t *t)
{
    bg_listen_sock_t *l = t->data;
    uv_poll_start(&l->poll, UV_READABLE, listen_poll_cb);
}

static void listen_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    bg_listen_sock_t *l = h->data;
    if (status < 0) { /* libuv stopped the poll; look again shortly */
        uv_timer_start(&l->pause, listen_resume_cb, BG_ACCEPT_PAUSE_MS, 0);
        return;
    }
    for (int i = 0; i < BG_ACCEPT_BATCH && !uv_is_closing((uv_handle_t *)&l->poll); i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The pending connections stay in the backlog until descriptors are free. Said
                 * once per shortage, not at every retry. */
                if (!l->starved)
                    bg_log_warn("accept paused: out of descriptors or memory", "error", strerror(errno));
                l->starved = true;
                uv_poll_stop(&l->poll);
                uv_timer_start(&l->pause, listen_resume_cb, BG_ACCEPT_PAUSE_MS, 0);
            }
            return; /* EAGAIN: taken them all */
        }
        l->starved = false;
        l->on_accept(l, fd, &peer);
    }
}

int bg_listen_sock_start(bg_listen_sock_t *l, uv_loop_t *loop, int fd, int backlog, bg_accept_cb on_accept,
                         void *data)
{
    memset(l, 0, sizeof *l);
    l->fd = fd;
    l->on_accept = on_accept;
    l->data = data;
    uv_timer_init(loop, &l->pause);
    l->pause.data = l;
    l->handles = 1;
    set_nodelay(fd); /* accepted sockets inherit it: no setsockopt per connection */
    if (listen(fd, backlog) < 0)
        return -errno;
    int r = uv_poll_init(loop, &l->poll, fd);
    if (r == 0) {
        l->handles = 2;
        l->poll.data = l;
        r = uv_poll_start(&l->poll, UV_READABLE, listen_poll_cb);
    }
    return r;
}

static void listen_closed_cb(uv_handle_t *h)
{
    bg_listen_sock_t *l = h->data;
    if (--l->handles > 0)
        return;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->on_closed)
        l->on_closed(l);
}

void bg_listen_sock_close(bg_listen_sock_t *l, void (*on_closed)(bg_listen_sock_t *l))
{
    l->on_closed = on_closed;
    bool polled = l->handles == 2;
    uv_close((uv_handle_t *)&l->pause, listen_closed_cb);
    if (polled)
        uv_close((uv_handle_t *)&l->poll, listen_closed_cb);
}

bool bg_stream_unread(const bg_stream_t *s, bool peek)
{
    if (s->eof || s->closing || s->fd < 0)
        return true;
    /* Inside an on_data callback the read loop may still hold more: TLS plaintext OpenSSL has
     * decrypted, records not yet decrypted, and the socket's receive queue (peeked, not taken):
     * always when the read filled the buffer, else only when asked (peek), since a shorter read
     * found the queue empty then and only bytes that came after it can be there. */
    if (tls_holds_input(s))
        return true;
    /* Listed for a batched read (the poll said readable), taken by one and not yet handed over,
     * or taken while paused. */
    if (s->rq_queued || s->rd_taken || s->stash_len || s->stash_eof)
        return true;
    if (!s->rd_more && !peek)
        return false;
    char c;
    ssize_t r;
    do
        r = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    return !(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)); /* bytes, EOF or an error */
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
