/*
 * worker.c — one worker thread: a libuv loop with its own SO_REUSEPORT listening sockets
 * (opened by the main thread so bind errors surface before start), its client
 * connections, upstream pool, GeoIP and DNS caches. The main thread talks to it only
 * through an atomic pointer (a new runtime) and a flag (stop), both followed by uv_async_send.
 */
#include "server.h"

#include "exchange.h"
#include "log.h"
#include "upstream.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A listening socket of this worker; `index` follows the worker's current runtime. */
typedef struct bg_listener {
    bg_listen_sock_t sock;
    bg_worker_t *w;
    int index;                     /* cfg->listen index */
    int slot;                      /* the server's limits slot for this address, -1 none */
    struct sockaddr_storage addr;  /* what it is bound to (identity across reloads) */
    bool seen;                     /* scratch: matched while applying a reload */
    struct bg_listener *next;
} bg_listener_t;

/* A runtime published by the main thread together with sockets for its new listeners. */
typedef struct bg_publish {
    bg_runtime_t *rt;
    size_t nfds;
    int fds[];
} bg_publish_t;

static void listener_cb(bg_listen_sock_t *ls, int fd, const struct sockaddr_storage *peer)
{
    bg_listener_t *l = ls->data;
    bg_conn_accept(l->w, fd, peer, l->index, l->slot);
}

static void listener_closed(bg_listen_sock_t *ls) { free(ls->data); }

static int listener_open(bg_worker_t *w, int fd, int index, const struct sockaddr_storage *addr)
{
    bg_listener_t *l = calloc(1, sizeof *l);
    if (!l)
        abort();
    l->w = w;
    l->index = index;
    l->addr = *addr;
    l->slot = bg_server_slot(w->server, addr);
    int r = bg_listen_sock_start(&l->sock, &w->loop, fd, 1024, listener_cb, l);
    if (r < 0) {
        bg_listen_sock_close(&l->sock, listener_closed);
        return r;
    }
    l->next = w->listeners;
    w->listeners = l;
    return 0;
}

/* Swap in a published runtime: keep listeners whose address is still configured (their index
 * follows the new config), open the new ones, close the ones that are gone. */
static void apply_publish(bg_worker_t *w, bg_publish_t *p)
{
    const bg_config_t *cfg = p->rt->cfg;
    for (bg_listener_t *l = w->listeners; l; l = l->next)
        l->seen = false;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        bg_listener_t *l = w->listeners;
        while (l && (l->seen || !bg_sockaddr_equal(&l->addr, &cfg->listen[i].address.addr)))
            l = l->next;
        if (l) {
            l->seen = true;
            l->index = (int)i;
            continue;
        }
        if (w->draining || i >= p->nfds || p->fds[i] < 0)
            continue;
        int fd = p->fds[i];
        p->fds[i] = -1;
        if (listener_open(w, fd, (int)i, &cfg->listen[i].address.addr) < 0)
            bg_log_error("cannot listen after reload", "address", cfg->listen[i].address.text);
        else
            w->listeners->seen = true, bg_log_info("listening", "address", cfg->listen[i].address.text);
    }
    for (bg_listener_t **pl = &w->listeners; *pl;) {
        bg_listener_t *l = *pl;
        if (l->seen) {
            pl = &l->next;
            continue;
        }
        *pl = l->next;
        bg_listen_sock_close(&l->sock, listener_closed);
    }
    for (size_t i = 0; i < p->nfds; i++)
        if (p->fds[i] >= 0)
            close(p->fds[i]);
    bg_runtime_t *old = w->rt;
    w->rt = p->rt;
    bg_runtime_release(old); /* exchanges in flight keep their own reference */
    free(p);
}

static void publish_free(bg_publish_t *p)
{
    for (size_t i = 0; i < p->nfds; i++)
        if (p->fds[i] >= 0)
            close(p->fds[i]);
    bg_runtime_release(p->rt);
    free(p);
}

static void close_and_forget(uv_handle_t *h)
{
    (void)h;
}

/* Runs just before each poll: a connection released while turn had one value has been through
 * a poll (and had its readable event, if any, handled) once turn has moved on by two. */
static void turn_cb(uv_prepare_t *h)
{
    bg_worker_t *w = h->data;
    w->turn++;
}

static void sweep_cb(uv_timer_t *t)
{
    bg_worker_t *w = t->data;
    bg_upstream_sweep(w, w->draining ? 0 : w->rt->cfg->limits.idle_timeout_ms);
    bg_upstream_queue_expire(w, w->rt->cfg->limits.upstream_connect_timeout_ms);
    if (!w->draining)
        return;
    if (w->nconns == 0 || uv_now(&w->loop) >= w->drain_deadline) {
        if (w->nconns)
            bg_log_warn("drain timeout: closing connections", "open", "yes");
        /* Force-close what is left; their callbacks run before the loop ends. */
        while (w->conns) {
            bg_conn_t *c = w->conns;
            bg_conn_force_close(c);
        }
        bg_upstream_sweep(w, 0);
        uv_timer_stop(&w->sweep);
        uv_close((uv_handle_t *)&w->sweep, close_and_forget);
        uv_close((uv_handle_t *)&w->turn_counter, close_and_forget);
        /* From now on the records writer must not wake this loop (see record_done_cb). */
        pthread_mutex_lock(&w->done_lock);
        w->async_closed = true;
        pthread_mutex_unlock(&w->done_lock);
        uv_close((uv_handle_t *)&w->async, close_and_forget);
    }
}

static void begin_drain(bg_worker_t *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->drain_deadline = uv_now(&w->loop) + w->rt->cfg->limits.drain_timeout_ms;
    while (w->listeners) {
        bg_listener_t *l = w->listeners;
        w->listeners = l->next;
        bg_listen_sock_close(&l->sock, listener_closed);
    }
    for (bg_conn_t *c = w->conns, *next; c; c = next) {
        next = bg_conn_next(c);
        bg_conn_drain(c);
    }
    uv_timer_start(&w->sweep, sweep_cb, 50, 50);
}

static void async_cb(uv_async_t *a)
{
    bg_worker_t *w = a->data;
    bg_publish_t *p = atomic_exchange(&w->pending_listen, NULL);
    if (p)
        apply_publish(w, p);
    /* Exchanges whose record reached the disk (fsync: always). */
    pthread_mutex_lock(&w->done_lock);
    bg_exchange_t *done = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->done_lock);
    while (done) {
        bg_exchange_t *next = done->done_next;
        bg_exchange_record_done(done);
        done = next;
    }
    if (atomic_load(&w->stop))
        begin_drain(w);
}

static void *thread_main(void *arg)
{
    bg_worker_t *w = arg;
    char name[16]; /* what top -H, ps -L and perf show: the kernel keeps 15 bytes */
    snprintf(name, sizeof name, "bg-worker-%u", w->id);
    pthread_setname_np(pthread_self(), name);
    /* The ring is made here: it belongs to the thread that submits to it (SINGLE_ISSUER). */
    int r = w->rt->cfg->io_uring ? bg_stream_uring_start(&w->loop) : UV_ENOTSUP;
    if (r < 0 && w->rt->cfg->io_uring && w->id == 0)
        bg_log_warn("io_uring unavailable: sockets are read with recv()", "error", uv_strerror(r));
    uv_run(&w->loop, UV_RUN_DEFAULT);
    bg_upstream_sweep(w, 0);
    uv_run(&w->loop, UV_RUN_DEFAULT); /* let close callbacks finish */
    bg_stream_uring_stop(&w->loop);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

int bg_worker_start(bg_worker_t *w)
{
    int r = pthread_create(&w->thread, NULL, thread_main, w);
    return r ? -r : 0;
}

void bg_worker_publish(bg_worker_t *w, bg_runtime_t *rt, const int *fds, size_t nfds)
{
    bg_publish_t *p = malloc(sizeof *p + nfds * sizeof(int));
    if (!p)
        abort();
    p->rt = rt;
    p->nfds = nfds;
    for (size_t i = 0; i < nfds; i++)
        p->fds[i] = fds[i];
    bg_publish_t *old = atomic_exchange(&w->pending_listen, p);
    if (old)
        publish_free(old); /* published twice before the worker looked: the newer one wins */
    uv_async_send(&w->async);
}

void bg_worker_stop(bg_worker_t *w)
{
    atomic_store(&w->stop, true);
    uv_async_send(&w->async);
}

int bg_worker_init(bg_worker_t *w, bg_server_t *s, unsigned id, bg_runtime_t *rt, const int *fds, const int *lidx,
                   size_t nfds)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->server = s;
    w->rt = bg_runtime_retain(rt);
    atomic_init(&w->pending_listen, NULL);
    atomic_init(&w->stop, false);
    pthread_mutex_init(&w->done_lock, NULL);
    int r = uv_loop_init(&w->loop);
    if (r < 0)
        return r;
    w->loop.data = w;
    uv_async_init(&w->loop, &w->async, async_cb);
    w->async.data = w;
    uv_timer_init(&w->loop, &w->sweep);
    w->sweep.data = w;
    uv_timer_start(&w->sweep, sweep_cb, 1000, 1000);
    uv_prepare_init(&w->loop, &w->turn_counter);
    w->turn_counter.data = w;
    uv_prepare_start(&w->turn_counter, turn_cb);
    uv_unref((uv_handle_t *)&w->turn_counter); /* it alone does not keep the loop running */
    w->geo_cache = bg_geo_cache_create(4096);
    for (size_t i = 0; i < nfds; i++)
        if ((r = listener_open(w, fds[i], lidx[i], &rt->cfg->listen[lidx[i]].address.addr)) < 0)
            return r;
    return 0;
}

void bg_worker_dispose(bg_worker_t *w)
{
    /* Exchanges whose record the writer finished after the loop stopped (their client is gone). */
    while (w->done_head) {
        bg_exchange_t *ex = w->done_head;
        w->done_head = ex->done_next;
        bg_exchange_destroy(ex);
    }
    bg_exchange_spares_free(w);
    uv_loop_close(&w->loop);
    pthread_mutex_destroy(&w->done_lock);
    bg_publish_t *p = atomic_exchange(&w->pending_listen, NULL);
    if (p)
        publish_free(p);
    bg_runtime_release(w->rt);
    bg_geo_cache_destroy(w->geo_cache);
    bg_upstream_circuit_dispose(w);
    bg_upstream_slots_dispose(w);
    bg_upstream_tls_sessions_dispose(w);
    while (w->dns) {
        bg_dns_entry_t *e = w->dns;
        w->dns = e->next;
        if (e->gai)
            e->gai->data = NULL; /* the resolver callback frees the request */
        free(e->host);
        free(e->addrs);
        free(e);
    }
}
