/*
 * upstream.h — connections to vendors, pooled per worker and per (vendor, address, TLS
 * settings): keep-alive reuse with a bound on idle connections, connect and response
 * timeouts, TLS origination with SNI and certificate verification. The exchange that holds
 * a connection gets its events through the bg_upstream_*_cb functions it implements
 * (conn.c). One worker thread; nothing shared.
 */
#ifndef BG_UPSTREAM_H
#define BG_UPSTREAM_H

#include "deadline.h"
#include "server.h"
#include "stream.h"

/* Idle HTTP/1.1 vendor connections kept per worker, all keys together. HTTP/2 clients multiplex:
 * 32 connections x 16 streams need hundreds of vendor connections at once, and a smaller pool
 * closed most of them after each burst only to reconnect for the next (one TCP connect and close
 * per three h2 requests). Idle ones are still swept after limits.idle_timeout. */
#define BG_UPSTREAM_MAX_IDLE 512

typedef enum {
    BG_UP_CONNECT_FAILED,  /* refused, unreachable: 502 */
    BG_UP_TLS_FAILED,      /* handshake or certificate: 502 */
    BG_UP_TIMEOUT,         /* connect or response timeout: 504 */
    BG_UP_CLOSED,          /* closed or reset by the vendor */
    BG_UP_PROTOCOL,        /* the vendor spoke ambiguous HTTP: 502 */
} bg_upstream_error_t;

#define BG_UP_QUEUED 1 /* *err from bg_upstream_acquire: the address is at its limit, the owner waits */

struct bg_upkey; /* private: per-address accounting and wait queue */

struct bg_upstream {
    bg_stream_t stream;      /* private */
    bg_deadline_t timer;     /* private: connect, response timeout; HTTP/2 stream ticks */
    int open_handles;        /* private */
    bg_worker_t *w;
    char key[200];           /* pool key */
    void *owner;             /* the exchange using it, NULL when idle */
    bool reused;             /* read-only: taken from the idle pool */
    bool ready;              /* read-only: connected (and TLS done) */
    bool dead;               /* private */
    uint64_t idle_since;     /* private */
    uint64_t released_turn;  /* private: the worker's turn when it went idle */
    uint64_t timeout_ms;     /* private: current timer period */
    size_t outq_seen;        /* private: the socket's unacknowledged bytes at the timer's last look (SIZE_MAX: none) */
    int64_t outq_at;         /* private: loop time they were last seen to go down */
    int64_t outq_looked;     /* private: loop time of that last look */
    struct bg_upstream *next;/* private: idle list */
    struct bg_upkey *slot;   /* private: the address's accounting */
    struct bg_h2up *h2;      /* read-only: the HTTP/2 session when ALPN chose h2 (h2up.h), else NULL */
    struct bg_upstream *h2next; /* private: the address's HTTP/2 connections */
    bool connecting;         /* private: counted in its address's connecting */
};

/* Implemented by the owner (conn.c). */
void bg_upstream_ready_cb(bg_upstream_t *up, void *owner);
void bg_upstream_data_cb(bg_upstream_t *up, void *owner, const char *p, size_t n);
void bg_upstream_eof_cb(bg_upstream_t *up, void *owner);
void bg_upstream_error_cb(bg_upstream_t *up, void *owner, bg_upstream_error_t kind, const char *msg);
void bg_upstream_drain_cb(bg_upstream_t *up, void *owner);

/** An HTTP/2 connection of key with room for another stream (ready, h2 set, no owner: the
 *  caller opens a stream with bg_h2up_open), else an idle pooled connection for key
 *  (returned with ready = true, no callback), or a new one
 *  connecting to addr (with TLS when ctx; bg_upstream_ready_cb follows, with h2 set when the
 *  handshake chose HTTP/2: the connection then has no owner and serves many). At most max_conns
 *  connections per key are open on this worker: beyond, NULL with *err = BG_UP_QUEUED and the
 *  owner waits in a FIFO until bg_upstream_slot_cb (acquire again) or, after max_wait_ms,
 *  bg_upstream_queue_timeout_cb. NULL with a negative *err when the connect could not start.
 *  proto BG_PROTO_HTTP2 (the vendor is pinned to HTTP/2), an earlier connection of key that
 *  chose h2, or BG_PROTO_AUTO over TLS before any handshake of key finished: while a connection
 *  of key is still connecting, the owner waits for it (one shared HTTP/2 connection rather than
 *  one connection each) instead of opening another. */
bg_upstream_t *bg_upstream_acquire(bg_worker_t *w, const char *key, const struct sockaddr *addr,
                                   SSL_CTX *ctx, const char *sni, const char *verify_host,
                                   uint64_t connect_timeout_ms, uint32_t max_conns, bg_upstream_proto_t proto,
                                   void *owner, int *err);
/* Implemented by the owner (exchange.c). */
void bg_upstream_slot_cb(void *owner);
void bg_upstream_queue_timeout_cb(void *owner);
/** The owner no longer waits for key (it went away). */
void bg_upstream_unqueue(bg_worker_t *w, const char *key, void *owner);
/** Owners queued longer than max_wait_ms get bg_upstream_queue_timeout_cb (sweep timer). */
void bg_upstream_queue_expire(bg_worker_t *w, uint64_t max_wait_ms);
/** Free the worker's per-address accounting (after every connection closed). */
void bg_upstream_slots_dispose(bg_worker_t *w);
/** Arm (or re-arm) the response timeout: fires bg_upstream_error_cb(TIMEOUT) after ms of silence. */
void bg_upstream_set_timeout(bg_upstream_t *up, uint64_t ms);
/** The loop time (ms) the vendor last took bytes written to up: when our queue last drained into
 *  the socket, or when the socket's send buffer (SIOCOUTQ, looked at now unless that was less than
 *  timeout/8 ago) was last seen to change; very negative when never. The first look at a buffer
 *  holding bytes (since bg_upstream_set_timeout, or ever) cannot see a change: it counts as taken
 *  timeout*7/8 ago, so the next look decides. For response timeouts (of `timeout` ms) that must not
 *  count a vendor that reads a large request slowly as silent. */
int64_t bg_upstream_took_at(bg_upstream_t *up, int64_t now, int64_t timeout);
/** Send bytes to the vendor. */
int bg_upstream_write(bg_upstream_t *up, const char *p, size_t n);
int bg_upstream_writev(bg_upstream_t *up, const uv_buf_t *bufs, size_t n);
void bg_upstream_pause(bg_upstream_t *up);
void bg_upstream_resume(bg_upstream_t *up);
/** The owner is done: keep-alive into the pool when reusable, else close. No callback after this. */
void bg_upstream_release(bg_upstream_t *up, bool reusable);
/* Circuit breaking per vendor address (per worker): after BG_CIRCUIT_THRESHOLD consecutive
 * connect, TLS or timeout failures the address is failed fast for BG_CIRCUIT_OPEN_MS; then one
 * trial request per period is let through, and its success closes the circuit again. */
#define BG_CIRCUIT_THRESHOLD 5
#define BG_CIRCUIT_OPEN_MS 10000
/** Whether a request may go to the address `key` now (false: fail fast). */
bool bg_upstream_circuit_allow(bg_worker_t *w, const char *key);
/** Report the outcome of a request to `key`: ok (a response head arrived) or a failure. */
void bg_upstream_circuit_report(bg_worker_t *w, const char *key, bool ok);
/** Free the worker's circuit table. */
void bg_upstream_circuit_dispose(bg_worker_t *w);

/* TLS sessions of vendor connections, kept per worker for resumption (a new connection to an
 * address offers the newest session of an earlier one, as nginx's proxy_ssl_session_reuse and
 * HAProxy do): the vendor skips signing with its certificate key and the gateway skips verifying
 * the chain; over TLS 1.2 the handshake also saves a round trip. Keyed by the pool key and the
 * SSL_CTX (a reference is held, so a context that a reload freed cannot come back at the same
 * address): a reload that changes a vendor's CA, verify or client certificate starts over with
 * full handshakes. A TLS 1.3 session is offered once (RFC 8446 C.4), a TLS 1.2 one until replaced;
 * a failed handshake forgets the address's sessions. */
#define BG_UPSTREAM_TLS_SESSIONS 64        /* per worker, all addresses */
#define BG_UPSTREAM_TLS_SESSIONS_PER_KEY 4 /* TLS 1.3 servers issue two tickets per connection */
/** SSL_CTX new-session callback of every vendor context (runtime.c sets it; worker thread):
 *  keeps sess for the connection's address. Returns 1 when it keeps the reference, else 0. */
int bg_upstream_tls_session_cb(SSL *ssl, SSL_SESSION *sess);
/** Free the worker's TLS sessions. */
void bg_upstream_tls_sessions_dispose(bg_worker_t *w);

/** Close idle connections older than max_idle_ms (all when 0). */
void bg_upstream_sweep(bg_worker_t *w, uint64_t max_idle_ms);

#endif
