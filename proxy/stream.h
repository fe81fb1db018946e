/*
 * stream.h — a byte stream over a TCP socket, optionally TLS (OpenSSL over memory BIOs), with
 * one set of callbacks for both: the HTTP codecs never see which one it is (the redis
 * connection-vtable idea). Used for client connections and upstream connections; also the
 * listening sockets (bg_listen_sock_t) that hand accepted sockets to their owner.
 * The socket is polled with a libuv uv_poll_t and read and written here with recv/send (not
 * libuv's streams, which use read/write and their own queue: the socket layer without the VFS
 * one, and no second queue of requests). Runs on one worker loop; not thread-safe. A write goes
 * to the socket from the caller's buffer when it can; what the socket does not take is copied
 * into one queue per stream (or, from bg_stream_write_give, the caller's buffer becomes the queue)
 * and counted so owners can apply back-pressure (write_pending). An owner may take over the buffer
 * of a batched read instead of copying its bytes out (bg_stream_read_take). A stream is freed by
 * its owner in on_closed.
 */
#ifndef BG_STREAM_H
#define BG_STREAM_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct bg_stream bg_stream_t;

typedef struct {
    void (*on_open)(bg_stream_t *s);                          /* connected (+ TLS handshake done) */
    void (*on_data)(bg_stream_t *s, const char *p, size_t n); /* plaintext arrived */
    void (*on_eof)(bg_stream_t *s);                           /* peer finished sending */
    void (*on_error)(bg_stream_t *s, int err, const char *what); /* I/O or TLS failure; close follows */
    void (*on_drain)(bg_stream_t *s);                         /* every queued write is flushed */
    void (*on_closed)(bg_stream_t *s);                        /* handle closed: owner may free */
} bg_stream_callbacks_t;

struct bg_stream {
    union {
        uv_poll_t poll;    /* private: the socket's poll, once there is a socket */
        uv_timer_t timer;  /* private: only to defer on_closed when no socket was ever made */
    } h;
    uv_loop_t *loop;       /* private */
    int fd;                /* private: -1 until accept or connect made one */
    int events;            /* private: UV_READABLE | UV_WRITABLE the poll runs with */
    int connect_error;     /* private: a connect that failed at once, reported from the poll */
    SSL *ssl;              /* read-only: NULL for plain TCP */
    BIO *rbio, *wbio;      /* private */
    const bg_stream_callbacks_t *cb;
    void *data;            /* public: the owner */
    size_t write_pending;  /* read-only: bytes queued, not yet taken by the socket */
    uint64_t flushed_at;   /* read-only: loop time the socket last took queued bytes (0: never) */
    bool open;             /* read-only: on_open has been called */
    bool reading;          /* private */
    bool closing;          /* read-only */
    bool eof;              /* read-only */
    bool tls_server;       /* private */
    bool connecting;       /* private: connect() issued, not yet writable */
    bool shut_wanted;      /* private: shut the write side once the queue is empty */
    bool feeding;          /* private: tls_feed is handing plaintext from rdbuf to on_data */
    bool rd_more;          /* private: the last read filled the buffer: the socket may hold more */
    bool rq_queued;        /* private: on its loop's io_uring read list (rq_prev, rq_next) */
    bool rd_taken;         /* private: a batched read took bytes (or EOF) not yet handed over */
    bool stash_eof;        /* private: the peer's EOF, read while paused */
    bool sq_queued;        /* private: its queue goes out in the check's next io_uring_enter */
    bg_stream_t *rq_prev, *rq_next;
    bg_stream_t *sq_next;  /* private: the check's send list */
    char *stash;           /* private: plain bytes a batched read took while the owner paused */
    size_t stash_len;
    char *rdbuf;           /* private: 16 KiB TLS plaintext buffer */
    char *tls_out;         /* private: TLS records not yet handed to the socket */
    size_t tls_out_len, tls_out_cap;
    char *wq;              /* private: the write queue, wq[wq_off .. wq_off + write_pending) */
    size_t wq_off, wq_cap;
    size_t wq_dirty;       /* private: wq[0 .. wq_dirty) may hold bytes written since it was last wiped */
    bool wq_wipe;          /* private: the queue held bytes of a bg_stream_write_give: wiped when it drains */
};

/** A listening socket on a loop: every connection it accepts goes to on_accept with its socket
 *  (non-blocking, close-on-exec, TCP_NODELAY; the callee owns it) and peer address. When the process is out
 *  of descriptors it stops accepting for a moment (the connections wait in the backlog). */
typedef struct bg_listen_sock bg_listen_sock_t;
typedef void (*bg_accept_cb)(bg_listen_sock_t *l, int fd, const struct sockaddr_storage *peer);
struct bg_listen_sock {
    uv_poll_t poll;        /* private */
    uv_timer_t pause;      /* private: resumes accepting after EMFILE/ENFILE */
    int fd;                /* private */
    int handles;           /* private: handles not yet closed */
    bool starved;          /* private: the last accept ran out of descriptors (logged once) */
    bg_accept_cb on_accept;
    void (*on_closed)(bg_listen_sock_t *l);
    void *data;            /* public: the owner */
};

/** Listen on fd (a bound socket) with `backlog` and start accepting. The listener owns fd from
 *  now on, even on error (then close it with bg_listen_sock_close). 0 or a negative errno. */
int bg_listen_sock_start(bg_listen_sock_t *l, uv_loop_t *loop, int fd, int backlog, bg_accept_cb on_accept,
                         void *data);
/** Stop, close the socket; on_closed (may be NULL) follows once, then the memory may go. */
void bg_listen_sock_close(bg_listen_sock_t *l, void (*on_closed)(bg_listen_sock_t *l));

/** Initialise on loop (no socket yet); 0. The stream must be closed with bg_stream_close even
 *  if a later call fails. */
int bg_stream_init(bg_stream_t *s, uv_loop_t *loop, const bg_stream_callbacks_t *cb, void *data);
/** Bytes the socket holds that the peer has not acknowledged (sent or not: SIOCOUTQ), beyond
 *  write_pending; 0 without a socket. A system call: for timeouts, not per write. */
size_t bg_stream_outq(const bg_stream_t *s);
/** Take an accepted socket fd (the stream owns it from now on, even on error); with ctx non-NULL,
 *  start a server-side TLS handshake. Reading starts; on_open follows when ready. 0 or negative
 *  error. */
int bg_stream_accept(bg_stream_t *s, int fd, SSL_CTX *ctx);
/** Connect to addr; with ctx, do a client TLS handshake with SNI `sni` (and host name
 *  verification of `verify_host` when non-NULL). on_open or on_error follows. 0 or negative error
 *  (then no callback is called). */
int bg_stream_connect(bg_stream_t *s, const struct sockaddr *addr, SSL_CTX *ctx, const char *sni,
                      const char *verify_host);
/** Offer sess (a session of an earlier connection to the same peer under the same SSL_CTX) for
 *  resumption in the handshake of a stream bg_stream_connect just started with a ctx; the stream
 *  takes its own reference. The peer may decline: then the handshake is a full one (with the
 *  certificate verified as always). No effect on a plain stream or once the handshake began. */
void bg_stream_tls_offer_session(bg_stream_t *s, SSL_SESSION *sess);
/** Whether the stream runs TLS. */
static inline bool bg_stream_tls(const bg_stream_t *s) { return s->ssl != NULL; }
/** Whether the TLS handshake resumed an earlier session (false on a plain stream). */
bool bg_stream_tls_resumed(const bg_stream_t *s);
/** The stream a TLS object belongs to (SSL_CTX callbacks get the SSL). */
bg_stream_t *bg_stream_of_ssl(const SSL *ssl);
/** Write n bytes: to the socket at once when nothing is queued before them, the rest copied to the
 *  queue (inside the io_uring check, writes are queued for its next io_uring_enter). The
 *  caller's buffer is not referred to after the call. 0, or negative when closing. */
int bg_stream_write(bg_stream_t *s, const char *p, size_t n);
/** Write (*buf)[off .. off + n), bytes that may carry personal data, from a malloc'd buffer of
 *  *cap bytes the caller offers instead of a copy. On plain TCP with nothing queued before them,
 *  the bytes the socket does not take at once (inside the io_uring check: all of them) stay where
 *  they are and the buffer becomes the queue: 1, and *buf, *cap then hold the queue's former
 *  storage (NULL, 0 when none; wiped where it held bytes), which the caller owns instead. Else as
 *  bg_stream_write (sent, or copied to the queue; TLS: sealed into records): 0, and the caller
 *  keeps its buffer. Negative when closing (the caller keeps its buffer). Whatever queue held
 *  such bytes is wiped up to its last written byte when it drains, grows or the stream closes. */
int bg_stream_write_give(bg_stream_t *s, char **buf, size_t *cap, size_t off, size_t n);
/** bg_stream_write of several buffers, in one system call when nothing is queued (plain TCP). */
int bg_stream_writev(bg_stream_t *s, const uv_buf_t *bufs, size_t nbufs);
/** Pause / resume on_data delivery (back-pressure). */
void bg_stream_read_stop(bg_stream_t *s);
void bg_stream_read_start(bg_stream_t *s);
/** Send TLS close_notify (if TLS) and shut down the write side after queued writes. */
void bg_stream_shutdown(bg_stream_t *s);
/** Close now (queued writes may be lost); on_closed follows exactly once. Idempotent. */
void bg_stream_close(bg_stream_t *s);
/** Whether the peer sent anything not yet delivered to on_data (bytes inside TLS or in the
 *  socket's receive queue), or the stream is at EOF, failed or closing. A connection that is about
 *  to wait for (or carry) a new exchange must have nothing unread. The queue is peeked (one
 *  recv(MSG_PEEK), ~1.4 us here) when the last read filled the buffer or when peek is set; else a
 *  shorter read found it empty and bytes that came since raise a readable event. */
bool bg_stream_unread(const bg_stream_t *s, bool peek);
/** The negotiated ALPN protocol ("h2", "http/1.1") or "" (plain or none). */
const char *bg_stream_alpn(const bg_stream_t *s);
/** The peer certificate's subject ("CN=...,O=...") into out, or "" when none. */
void bg_stream_peer_subject(const bg_stream_t *s, char *out, size_t outlen);
/** Read the sockets of the streams on loop (the calling thread's, which must run it) through one
 *  io_uring: a readable stream is listed, and after the poll phase (a uv_check) every listed
 *  stream's recv goes to the kernel in one io_uring_enter (MSG_DONTWAIT: each completes inline).
 *  What the read callbacks write goes out in the check's next io_uring_enter (with the next reads,
 *  if any); what the socket does not take stays queued as always (on_drain follows when it is
 *  out). Writes outside the check, connects, accepts and TLS handshakes are unchanged. 0, or a
 *  negative errno when the
 *  kernel refuses a ring (ENOSYS, EPERM, io_uring_disabled): then streams read with recv() as
 *  before. Call before the loop runs; bg_stream_uring_stop before it ends. */
int bg_stream_uring_start(uv_loop_t *loop);
/** Close the loop's ring handles (they are unreferenced: they never keep the loop alive); the ring
 *  goes when libuv lets go of them. No effect without a ring. */
void bg_stream_uring_stop(uv_loop_t *loop);
/** Counters of the calling thread's ring: io_uring_enter calls, reads submitted, and completions
 *  that were not ready when io_uring_enter returned (must stay 0: every read is MSG_DONTWAIT). */
void bg_stream_uring_stats(uint64_t *enters, uint64_t *reads, uint64_t *late);
/** Inside on_data for bytes of a batched read (the io_uring check's), p .. p + n being the last
 *  bytes that read brought (nothing after them that the owner still needs): take the buffer they
 *  are in instead of copying them out. *buf, *cap: storage the caller gives up in exchange (NULL,
 *  0 for none; it must hold nothing secret: the next reads land in it if it is large enough, else
 *  it is freed). True: *buf, *cap are the read's buffer (malloc'd; p lies inside it, with at least
 *  BG_URING_ROOM bytes before p and one free byte after p + n), which the caller owns; the bytes
 *  before p are what the read brought before them (the caller wipes those and p .. p + n), and
 *  what earlier reads left after p + n is wiped. False (a recv() read, TLS, bytes held while
 *  paused, not the end of the read): nothing changed. Once per read. */
bool bg_stream_read_take(bg_stream_t *s, const char *p, size_t n, char **buf, size_t *cap);
/** uv_check_start for a check that sends what read callbacks produced: when it is started from
 *  inside the batched reads (themselves a check), libuv would run it only after the next poll;
 *  it runs at the end of the batch instead. */
int bg_stream_check_start(uv_check_t *h, uv_check_cb cb);
/** Frees the process-wide TLS output BIO method. Call once, after every stream is closed (the
 *  end of bg_server_run), so that a leak check sees every heap block freed. */
void bg_stream_global_cleanup(void);

#endif
