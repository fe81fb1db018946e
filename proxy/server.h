/*
 * server.h — the running gateway: the runtime snapshot (config + the resources opened from
 * it), the worker threads (one libuv loop each, own SO_REUSEPORT listeners, own upstream
 * pool and caches), the records writer and the metrics. The main thread owns the server,
 * runs the admin listener and handles signals; workers share nothing on the hot path but
 * the read-only runtime, which each worker holds its own reference to and swaps when the
 * main thread publishes a new one (reload).
 */
#ifndef BG_SERVER_H
#define BG_SERVER_H

#include "classify.h"
#include "config.h"
#include "geo.h"
#include "metrics.h"
#include "ratelimit.h"
#include "records.h"
#include "seal.h"
#include "stream.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

/* Everything a decision needs, loaded together and swapped together. Immutable once built. */
typedef struct bg_runtime {
    atomic_int refcount;
    bg_config_t *cfg;
    bg_geo_t *geo;               /* NULL only if the config names no database */
    bg_keyring_t *keys;          /* NULL when encryption is not configured */
    bg_classifier_t *classifier;
    SSL_CTX **listen_ctx;        /* per cfg->listen[i]; NULL for plain listeners */
    unsigned char (*listen_tls_id)[32]; /* per listener: SHA-256 of its address, certificate and
                                         * client CA contents; its TLS session-id context */
    SSL_CTX **vendor_ctx;        /* per cfg->vendors[i]; NULL for plain upstreams */
    uint64_t generation;
} bg_runtime_t;

/** Open everything a config names (GeoIP, keys, classifier, TLS contexts). 0, or -1 with every
 *  problem in diag (the config is not consumed on failure). */
int bg_runtime_create(bg_config_t *cfg, bg_runtime_t **out, bg_diag_t *diag);
/** Before rt is published in place of old (a reload): each TLS listener of rt whose address,
 *  certificate and client CA contents are those of a listener of old takes over old's session
 *  ticket keys, so that clients keep resuming their sessions across the reload. A listener whose
 *  certificate or client CA changed keeps its fresh keys (and has another session-id context):
 *  no session from before resumes there. */
void bg_runtime_keep_tls_sessions(bg_runtime_t *rt, const bg_runtime_t *old);
bg_runtime_t *bg_runtime_retain(bg_runtime_t *rt);
void bg_runtime_release(bg_runtime_t *rt);

typedef struct bg_server bg_server_t;
typedef struct bg_worker bg_worker_t;
typedef struct bg_conn bg_conn_t;
typedef struct bg_upstream bg_upstream_t;

/* A vendor host name's addresses (per worker, exchange.c). Fresh until `expires`; past it, still
 * served while the one lookup that refreshes them runs, so that an expiry costs no request a wait.
 * Exchanges that find no answer yet wait on the name's lookup instead of starting their own. */
typedef struct bg_dns_entry {
    char *host;
    struct sockaddr_storage *addrs;
    size_t naddrs;
    int error;               /* negative: a cached failure */
    bool answered;           /* a lookup finished: addrs or error hold its answer */
    bool waking;             /* dns_cb is handing the answer to the waiters */
    uint64_t expires;        /* uv_now */
    uint64_t stale_until;    /* uv_now: until then a failed refresh keeps addrs serving (exchange.c) */
    bool stale;              /* addrs are an answer whose refresh failed */
    uv_getaddrinfo_t *gai;   /* the lookup in flight for this name, or NULL */
    struct bg_exchange *waiters; /* exchanges waiting for the first answer (linked by dns_next) */
    struct bg_dns_entry *next;
} bg_dns_entry_t;

struct bg_worker {
    unsigned id;
    bg_server_t *server;
    uv_loop_t loop;
    pthread_t thread;
    uv_async_t async;                   /* wakes the loop for reload and stop */
    bg_runtime_t *rt;                   /* the worker's own reference to the current runtime */
    atomic_bool stop;
    struct bg_listener *listeners;      /* this worker's listening sockets */
    struct bg_publish *_Atomic pending_listen; /* with a published runtime: sockets for new listeners */
    bg_conn_t *conns;                   /* every open client connection (for drain) */
    size_t nconns;
    bg_upstream_t *idle;                /* idle upstream connections, most recent first */
    size_t nidle;
    bg_geo_cache_t *geo_cache;
    bg_dns_entry_t *dns;
    size_t ndns;
    uint64_t seq;                       /* record ids */
    unsigned next_address;              /* round robin over a vendor's equivalent addresses (exchange.c) */
    uint64_t held_bytes;                /* request body bytes its exchanges hold (exchange.c) */
    uint64_t records_full_logged;       /* loop time of the last "records queue full" line (exchange.c) */
    uv_timer_t sweep;                   /* idle pool and drain checks */
    uv_prepare_t turn_counter;          /* counts the loop's polls into turn (upstream.c) */
    uint64_t turn;                      /* polls started: changes only across an epoll_wait */
    bool draining;
    uint64_t drain_deadline;
    struct bg_upkey *upkeys;            /* per vendor address: open connections, waiters (upstream.c) */
    struct bg_circuit *circuits;        /* per vendor address: consecutive failures (upstream.c) */
    struct bg_tls_session *tls_sessions; /* BG_UPSTREAM_TLS_SESSIONS for resumption, or NULL (upstream.c) */
    uint64_t tls_serial;                /* stamps them: larger is newer */
    struct bg_exchange *done_head;      /* exchanges whose record is on disk (fsync: always), to resume */
    struct bg_exchange *spares;         /* destroyed exchanges kept with their buffers for reuse (exchange.c) */
    size_t nspares;
    pthread_mutex_t done_lock;
    bool async_closed;                  /* under done_lock: the loop no longer takes wake-ups */
};

struct bg_server {
    bg_runtime_t *rt;           /* main thread's reference to the current runtime */
    bg_records_t *records;
    bg_metrics_t *metrics;
    bg_worker_t *workers;
    unsigned nworkers;
    uv_loop_t *loop;            /* main loop: admin, signals */
    bg_listen_sock_t admin;
    bool admin_open;
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    atomic_bool stopping;
    char *config_path;
    atomic_uint_least64_t generation;
    atomic_uint *caller_conns;  /* open connections per hashed client address (all workers) */
    bg_ratelimit_t *caller_rate;/* request-rate limiter per hashed client address (all workers) */
    struct bg_listen_slot *lslots; /* per listen address ever configured: limits shared by the workers */
    atomic_size_t nlslots;      /* slots [0, nlslots) are filled; written by the main thread only */
    uint32_t caller_rps, caller_burst; /* main thread: what caller_rate was counted for */
};

#define BG_CALLER_BUCKETS 4096
#define BG_LISTEN_SLOTS 256

/* The shared state of one listen address, kept across reloads (connections accepted before a
 * reload still count against the listener after it). */
typedef struct bg_listen_slot {
    struct sockaddr_storage addr; /* written once, before nlslots covers the slot */
    atomic_uint conns;            /* open client connections (all workers) */
    bg_ratelimit_t rate;          /* request-rate limiter (all workers) */
    uint32_t rps, burst;          /* main thread: what `rate` was counted for */
} bg_listen_slot_t;

/** Main thread, before any worker sees cfg: give every listener of cfg a slot, and start afresh
 *  the rate limiters whose rate or burst cfg changes (their state is counted in the old rate's
 *  intervals). */
void bg_server_assign_slots(bg_server_t *s, const bg_config_t *cfg);
/** The slot of a listen address, or -1 (no slot: its limits are not enforced). Any thread. */
int bg_server_slot(bg_server_t *s, const struct sockaddr_storage *addr);
/** The caller bucket (index into caller_conns and caller_rate) of a client address text. */
int bg_server_caller_bucket(const char *client_ip);

/** Whether two listen addresses are the same socket address. */
bool bg_sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/** A non-blocking, close-on-exec TCP socket bound to a (SO_REUSEADDR; `shared`: also SO_REUSEPORT
 *  and, for IPv6, IPV6_V6ONLY, as each worker's copy of a listener needs): the fd, or a negative
 *  errno with *step the call that failed ("socket" or "bind"). */
int bg_socket_bind(const bg_sockaddr_t *a, bool shared, const char **step);
/** Bind (SO_REUSEPORT, non-blocking) a socket for listener l: the fd, or -1 with err. */
int bg_listener_bind(const bg_listen_t *l, char *err, size_t errlen);

/** Listen, start the workers and run until SIGTERM/SIGINT. Returns the exit code. */
int bg_server_run(const char *config_path);
/** Reload the config from its path (main thread): 0, or -1 when it was refused (the old one stays).
 *  Every problem is logged either way; when diag is not NULL (the caller's, initialised) they are
 *  also left in it, "FILE:LINE:COL: message" each, as `check` prints them. */
int bg_server_reload(bg_server_t *s, bg_diag_t *diag);

/* worker.c */
/** Prepare worker `id` (loop, async, timers, listeners on the given bound fds). 0 or a libuv error. */
int bg_worker_init(bg_worker_t *w, bg_server_t *s, unsigned id, bg_runtime_t *rt, const int *fds, const int *lidx,
                   size_t nfds);
/** Free what the worker owns after its thread ended. */
void bg_worker_dispose(bg_worker_t *w);
int bg_worker_start(bg_worker_t *w);
/** Main thread: hand a new runtime (consumes a ref) with, per cfg->listen[i] of it, a bound
 *  socket for a listener the worker does not have yet, or -1 (fds is copied; NULL: none new).
 *  Listeners the new config no longer names are closed by the worker. */
void bg_worker_publish(bg_worker_t *w, bg_runtime_t *rt, const int *fds, size_t nfds);
void bg_worker_stop(bg_worker_t *w);                      /* main thread: drain and stop */

/* conn.c: a client connection (socket fd, which it owns from now on; peer address) accepted on
 * listener `li` (cfg->listen index) with limits slot `slot` (-1: none). */
void bg_conn_accept(bg_worker_t *w, int fd, const struct sockaddr_storage *peer, int li, int slot);
void bg_conn_drain(bg_conn_t *c); /* finish the current exchange, then close */
void bg_conn_force_close(bg_conn_t *c);
bg_conn_t *bg_conn_next(bg_conn_t *c);

/* admin.c */
int bg_admin_start(bg_server_t *s, char *err, size_t errlen);
void bg_admin_stop(bg_server_t *s);

#endif
