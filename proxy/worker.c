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

static void listener_cb(uv_stream_t *server, int status)
{
    bg_worker_t *w = server->loop->data;
    if (status < 0)
        return;
    int li = *(int *)server->data;
    bg_conn_accept(w, server, li);
}

static void close_and_forget(uv_handle_t *h)
{
    (void)h;
}

static void sweep_cb(uv_timer_t *t)
{
    bg_worker_t *w = t->data;
    bg_upstream_sweep(w, w->draining ? 0 : w->rt->cfg->limits.idle_timeout_ms);
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
        uv_close((uv_handle_t *)&w->async, close_and_forget);
    }
}

static void begin_drain(bg_worker_t *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->drain_deadline = uv_now(&w->loop) + w->rt->cfg->limits.drain_timeout_ms;
    for (size_t i = 0; i < w->nlisteners; i++)
        uv_close((uv_handle_t *)&w->listeners[i], close_and_forget);
    for (bg_conn_t *c = w->conns, *next; c; c = next) {
        next = bg_conn_next(c);
        bg_conn_drain(c);
    }
    uv_timer_start(&w->sweep, sweep_cb, 50, 50);
}

static void async_cb(uv_async_t *a)
{
    bg_worker_t *w = a->data;
    bg_runtime_t *rt = atomic_exchange(&w->pending_rt, NULL);
    if (rt) {
        bg_runtime_t *old = w->rt;
        w->rt = rt;
        bg_runtime_release(old); /* exchanges in flight keep their own reference */
    }
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
    uv_run(&w->loop, UV_RUN_DEFAULT);
    bg_upstream_sweep(w, 0);
    uv_run(&w->loop, UV_RUN_DEFAULT); /* let close callbacks finish */
    return NULL;
}

int bg_worker_start(bg_worker_t *w)
{
    int r = pthread_create(&w->thread, NULL, thread_main, w);
    return r ? -r : 0;
}

void bg_worker_publish(bg_worker_t *w, bg_runtime_t *rt)
{
    bg_runtime_t *old = atomic_exchange(&w->pending_rt, rt);
    if (old)
        bg_runtime_release(old); /* published twice before the worker looked: drop the older */
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
    atomic_init(&w->pending_rt, NULL);
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
    w->geo_cache = bg_geo_cache_create(4096);
    w->listeners = calloc(nfds ? nfds : 1, sizeof *w->listeners);
    w->listener_index = calloc(nfds ? nfds : 1, sizeof *w->listener_index);
    if (!w->listeners || !w->listener_index)
        abort();
    w->nlisteners = nfds;
    for (size_t i = 0; i < nfds; i++) {
        w->listener_index[i] = lidx[i];
        uv_tcp_init(&w->loop, &w->listeners[i]);
        w->listeners[i].data = &w->listener_index[i];
        if ((r = uv_tcp_open(&w->listeners[i], fds[i])) < 0)
            return r;
        if ((r = uv_listen((uv_stream_t *)&w->listeners[i], 1024, listener_cb)) < 0)
            return r;
    }
    return 0;
}

void bg_worker_dispose(bg_worker_t *w)
{
    uv_loop_close(&w->loop);
    pthread_mutex_destroy(&w->done_lock);
    bg_runtime_t *p = atomic_exchange(&w->pending_rt, NULL);
    if (p)
        bg_runtime_release(p);
    bg_runtime_release(w->rt);
    bg_geo_cache_destroy(w->geo_cache);
    bg_upstream_circuit_dispose(w);
    while (w->dns) {
        bg_dns_entry_t *e = w->dns;
        w->dns = e->next;
        free(e->host);
        free(e->addrs);
        free(e);
    }
    free(w->listeners);
    free(w->listener_index);
}
