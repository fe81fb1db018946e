/*
 * upstream.c — see upstream.h. A connection is either owned by one exchange or idle in the
 * worker's pool; idle connections that the vendor closes are dropped on their EOF. Timers
 * cover connect + TLS handshake (connect timeout) and every wait for response bytes
 * (response timeout, re-armed on each read). A connection whose handshake chose ALPN h2 is
 * never owned by one exchange: it sits on its address's HTTP/2 list, carries a stream per
 * exchange (h2up.c), and its timer ticks the streams' response timeouts.
 */
#include "upstream.h"

#include "h2up.h"
#include "log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- TLS sessions for resumption (upstream.h) ------------------------------------------- */

typedef struct bg_tls_session {
    char key[200];      /* the pool key of the connection that got it */
    SSL_CTX *ctx;       /* a reference */
    SSL_SESSION *sess;  /* NULL: a free slot */
    uint64_t serial;
} bg_tls_session_t;

static void tls_session_clear(bg_tls_session_t *e)
{
    if (!e->sess)
        return;
    SSL_SESSION_free(e->sess);
    SSL_CTX_free(e->ctx);
    e->sess = NULL;
    e->ctx = NULL;
}

static bool tls_session_is(const bg_tls_session_t *e, const char *key, const SSL_CTX *ctx)
{
    return e->sess && e->ctx == ctx && strcmp(e->key, key) == 0;
}

int bg_upstream_tls_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    bg_stream_t *s = bg_stream_of_ssl(ssl);
    bg_upstream_t *up = s ? s->data : NULL;
    if (!up || !SSL_SESSION_is_resumable(sess))
        return 0;
    bg_worker_t *w = up->w;
    if (!w->tls_sessions && !(w->tls_sessions = calloc(BG_UPSTREAM_TLS_SESSIONS, sizeof *w->tls_sessions)))
        abort();
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    /* A free slot, else the oldest of this address once it holds its share, else the oldest. */
    bg_tls_session_t *slot = NULL, *oldest = NULL, *oldest_key = NULL;
    unsigned nkey = 0;
    for (size_t i = 0; i < BG_UPSTREAM_TLS_SESSIONS; i++) {
        bg_tls_session_t *e = &w->tls_sessions[i];
        if (!e->sess) {
            slot = slot ? slot : e;
            continue;
        }
        if (tls_session_is(e, up->key, ctx) && (nkey++, !oldest_key || e->serial < oldest_key->serial))
            oldest_key = e;
        if (!oldest || e->serial < oldest->serial)
            oldest = e;
    }
    if (nkey >= BG_UPSTREAM_TLS_SESSIONS_PER_KEY)
        slot = oldest_key;
    else if (!slot)
        slot = oldest;
    tls_session_clear(slot);
    snprintf(slot->key, sizeof slot->key, "%s", up->key);
    SSL_CTX_up_ref(ctx);
    slot->ctx = ctx;
    slot->sess = sess;
    slot->serial = ++w->tls_serial;
    return 1;
}

/* The newest live session of key under ctx as a new reference (the caller frees it), or NULL.
 * A TLS 1.3 one leaves the table: offered once. */
static SSL_SESSION *tls_session_take(bg_worker_t *w, const char *key, SSL_CTX *ctx)
{
    if (!w->tls_sessions)
        return NULL;
    bg_tls_session_t *best = NULL;
    time_t now = time(NULL);
    for (size_t i = 0; i < BG_UPSTREAM_TLS_SESSIONS; i++) {
        bg_tls_session_t *e = &w->tls_sessions[i];
        if (!tls_session_is(e, key, ctx))
            continue;
        if ((time_t)(SSL_SESSION_get_time(e->sess) + SSL_SESSION_get_timeout(e->sess)) <= now) {
            tls_session_clear(e); /* expired: the vendor would refuse it */
            continue;
        }
        if (!best || e->serial > best->serial)
            best = e;
    }
    if (!best)
        return NULL;
    SSL_SESSION *sess = best->sess;
    SSL_SESSION_up_ref(sess);
    if (SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION)
        tls_session_clear(best);
    return sess;
}

/* A handshake with the address failed: none of its sessions is offered again. */
static void tls_sessions_forget(bg_worker_t *w, const char *key)
{
    for (size_t i = 0; w->tls_sessions && i < BG_UPSTREAM_TLS_SESSIONS; i++)
        if (w->tls_sessions[i].sess && strcmp(w->tls_sessions[i].key, key) == 0)
            tls_session_clear(&w->tls_sessions[i]);
}

void bg_upstream_tls_sessions_dispose(bg_worker_t *w)
{
    for (size_t i = 0; w->tls_sessions && i < BG_UPSTREAM_TLS_SESSIONS; i++)
        tls_session_clear(&w->tls_sessions[i]);
    free(w->tls_sessions);
    w->tls_sessions = NULL;
}

/* ---- per-address accounting ------------------------------------------------------------ */

typedef struct bg_waiter {
    void *owner;
    uint64_t since;
    struct bg_waiter *next;
} bg_waiter_t;

struct bg_upkey {
    char key[200];
    uint32_t conns;          /* open (connecting, busy or idle) */
    bg_upstream_t *h2;       /* HTTP/2 connections (multiplexed; counted in conns) */
    uint32_t connecting;     /* connections not yet open (TCP + TLS) */
    bool h2_seen;            /* the last handshake of this address chose h2 */
    bool proto_known;        /* a handshake of this address finished (or failed): no longer a cold start */
    uint32_t pins;           /* callers still using k across callbacks that may close its last connection */
    bg_waiter_t *head, *tail;
    struct bg_upkey *next;
};

static struct bg_upkey *upkey_get(bg_worker_t *w, const char *key, bool create)
{
    for (struct bg_upkey *k = w->upkeys; k; k = k->next)
        if (strcmp(k->key, key) == 0)
            return k;
    if (!create)
        return NULL;
    struct bg_upkey *k = calloc(1, sizeof *k);
    if (!k)
        abort();
    snprintf(k->key, sizeof k->key, "%s", key);
    k->next = w->upkeys;
    w->upkeys = k;
    return k;
}

static void upkey_maybe_free(bg_worker_t *w, struct bg_upkey *k)
{
    if (k->conns || k->head || k->pins)
        return;
    for (struct bg_upkey **p = &w->upkeys; *p; p = &(*p)->next)
        if (*p == k) {
            *p = k->next;
            free(k);
            return;
        }
}

/* A connection of k closed or went idle: the first waiter may try again. */
static void upkey_wake(bg_worker_t *w, struct bg_upkey *k)
{
    bg_waiter_t *wt = k->head;
    if (!wt) {
        upkey_maybe_free(w, k);
        return;
    }
    k->head = wt->next;
    if (!k->head)
        k->tail = NULL;
    void *owner = wt->owner;
    free(wt);
    bg_upstream_slot_cb(owner);
}

void bg_upstream_unqueue(bg_worker_t *w, const char *key, void *owner)
{
    struct bg_upkey *k = upkey_get(w, key, false);
    if (!k)
        return;
    bg_waiter_t *prev = NULL;
    for (bg_waiter_t *wt = k->head; wt; prev = wt, wt = wt->next) {
        if (wt->owner != owner)
            continue;
        if (prev)
            prev->next = wt->next;
        else
            k->head = wt->next;
        if (k->tail == wt)
            k->tail = prev;
        free(wt);
        break;
    }
    upkey_maybe_free(w, k);
}

void bg_upstream_queue_expire(bg_worker_t *w, uint64_t max_wait_ms)
{
    uint64_t now = uv_now(&w->loop);
    for (struct bg_upkey *k = w->upkeys, *next; k; k = next) {
        next = k->next;
        while (k->head && now - k->head->since >= max_wait_ms) {
            bg_waiter_t *wt = k->head;
            k->head = wt->next;
            if (!k->head)
                k->tail = NULL;
            void *owner = wt->owner;
            free(wt);
            bg_upstream_queue_timeout_cb(owner);
        }
    }
}

void bg_upstream_slots_dispose(bg_worker_t *w)
{
    while (w->upkeys) {
        struct bg_upkey *k = w->upkeys;
        w->upkeys = k->next;
        while (k->head) {
            bg_waiter_t *wt = k->head;
            k->head = wt->next;
            free(wt);
        }
        free(k);
    }
}

/* ---- connections ---------------------------------------------------------------------- */

static void pool_remove(bg_worker_t *w, bg_upstream_t *up)
{
    for (bg_upstream_t **p = &w->idle; *p; p = &(*p)->next)
        if (*p == up) {
            *p = up->next;
            up->next = NULL;
            w->nidle--;
            return;
        }
}

static void up_free(bg_upstream_t *up)
{
    bg_h2up_destroy(up->h2);
    free(up);
}

static void handle_closed(uv_handle_t *h)
{
    bg_upstream_t *up = h->data;
    if (--up->open_handles == 0)
        up_free(up);
}

static void stream_closed(bg_stream_t *s)
{
    bg_upstream_t *up = s->data;
    if (--up->open_handles == 0)
        up_free(up);
}

/* Every owner waiting for k now tries again, once each (one re-queued at the bound goes to the
 * tail and is not woken twice here). */
static void wake_all(bg_worker_t *w, struct bg_upkey *k)
{
    size_t n = 0;
    for (bg_waiter_t *wt = k->head; wt; wt = wt->next)
        n++;
    k->pins++; /* a waiter whose connect fails at once closes a connection of k: keep k */
    while (n-- && k->head)
        upkey_wake(w, k);
    k->pins--;
    upkey_maybe_free(w, k);
}

static void up_close(bg_upstream_t *up)
{
    if (up->dead)
        return;
    up->dead = true;
    bool cold_failed = false;
    if (up->connecting && up->slot) {
        up->slot->connecting--;
        /* The first connection to an address failed before its handshake told the protocol:
         * stop holding a cold start back for it (below, everyone waiting tries on their own). */
        cold_failed = !up->slot->proto_known;
        up->slot->proto_known = true;
    }
    up->connecting = false;
    if (up->h2) {
        if (bg_h2up_nstreams(up->h2) == 0)
            bg_h2up_goodbye(up->h2); /* an idle connection we close on purpose: GOAWAY first */
        /* Streams still open fail (no-op when the caller already said why). */
        bg_h2up_lost(up->h2, BG_UP_CLOSED, "connection closed");
        for (bg_upstream_t **p = up->slot ? &up->slot->h2 : NULL; p && *p; p = &(*p)->h2next)
            if (*p == up) {
                *p = up->h2next;
                break;
            }
    } else if (!up->owner && up->ready) {
        pool_remove(up->w, up);
    }
    up->owner = NULL;
    bg_deadline_close(&up->timer, handle_closed);
    bg_stream_close(&up->stream);
    if (up->slot) {
        struct bg_upkey *k = up->slot;
        up->slot = NULL;
        k->conns--;
        if (cold_failed)
            wake_all(up->w, k);
        else
            upkey_wake(up->w, k);
    }
}

static void timer_cb(uv_timer_t *t);

static void h2_tick_cb(uv_timer_t *t)
{
    bg_upstream_t *up = t->data;
    if (up->dead || !up->h2)
        return;
    bg_h2up_tick(up->h2, uv_now(&up->w->loop));
    if (!up->dead)
        bg_deadline_start(&up->timer, h2_tick_cb, 100); /* every 100 ms while it has streams */
}

/* Waiters for the address take streams of an HTTP/2 connection while it has room. */
static void h2_wake(bg_upstream_t *up)
{
    while (!up->dead && up->slot && up->slot->head && bg_h2up_available(up->h2))
        upkey_wake(up->w, up->slot);
}

void bg_upstream_h2_stream_done(bg_upstream_t *up)
{
    if (up->dead)
        return;
    if (bg_h2up_nstreams(up->h2) == 0) {
        up->idle_since = uv_now(&up->w->loop);
        bg_deadline_stop(&up->timer); /* no stream to time out until the next one */
    }
    if (bg_h2up_finished(up->h2) || (up->w->draining && bg_h2up_nstreams(up->h2) == 0)) {
        up_close(up);
        return;
    }
    h2_wake(up);
}

static void on_open(bg_stream_t *s)
{
    bg_upstream_t *up = s->data;
    up->ready = true;
    bg_deadline_stop(&up->timer);
    if (up->connecting && up->slot)
        up->slot->connecting--;
    up->connecting = false;
    bool was_h2 = up->slot && up->slot->h2_seen;
    bool was_known = up->slot && up->slot->proto_known;
    bool h2 = strcmp(bg_stream_alpn(s), "h2") == 0;
    if (up->slot) {
        up->slot->h2_seen = h2;
        up->slot->proto_known = true;
    }
    if (h2 && up->slot) {
        /* Multiplexed from now on: no single owner; the exchange that connected opens the
         * first stream in its ready callback, then the waiters take theirs. */
        up->h2 = bg_h2up_create(up);
        up->h2next = up->slot->h2;
        up->slot->h2 = up;
        up->idle_since = uv_now(&up->w->loop);
        bg_deadline_start(&up->timer, h2_tick_cb, 100);
        void *owner = up->owner;
        up->owner = NULL;
        if (owner)
            bg_upstream_ready_cb(up, owner);
        h2_wake(up);
        return;
    }
    /* Not HTTP/2 (the vendor changed, or this first handshake shows HTTP/1.1): waiters that held
     * back for a shared connection try again, each opening its own or queueing for the bound. */
    struct bg_upkey *k = up->slot;
    bg_worker_t *w = up->w;
    void *owner = up->owner;
    if (k)
        k->pins++; /* the owner's request may fail and close up, the last connection of k */
    if (owner)
        bg_upstream_ready_cb(up, owner);
    if (k) {
        if (was_h2 || !was_known)
            wake_all(w, k);
        k->pins--;
        upkey_maybe_free(w, k);
    }
}

static void on_data(bg_stream_t *s, const char *p, size_t n)
{
    bg_upstream_t *up = s->data;
    if (up->h2) {
        if (bg_h2up_recv(up->h2, p, n) < 0 || bg_h2up_finished(up->h2))
            up_close(up);
        return;
    }
    if (!up->owner) {
        /* Bytes from an idle connection: the vendor is confused; never reuse it. */
        up_close(up);
        return;
    }
    if (up->timeout_ms)
        bg_deadline_start(&up->timer, timer_cb, up->timeout_ms); /* the vendor is not silent */
    bg_upstream_data_cb(up, up->owner, p, n);
}

static void on_eof(bg_stream_t *s)
{
    bg_upstream_t *up = s->data;
    if (up->h2)
        bg_h2up_lost(up->h2, BG_UP_CLOSED, "closed by the vendor");
    void *owner = up->owner;
    if (owner) {
        up->owner = NULL;
        bg_upstream_eof_cb(up, owner);
    }
    up_close(up);
}

static void on_error(bg_stream_t *s, int err, const char *what)
{
    bg_upstream_t *up = s->data;
    void *owner = up->owner;
    if (up->h2) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s: %s", what, uv_strerror(err));
        bg_h2up_lost(up->h2, BG_UP_CLOSED, msg);
    }
    if (!owner) {
        up_close(up); /* idle connection: just goes away */
        return;
    }
    up->owner = NULL;
    bg_upstream_error_t kind = BG_UP_CLOSED;
    if (strncmp(what, "tls", 3) == 0) {
        kind = BG_UP_TLS_FAILED;
        tls_sessions_forget(up->w, up->key);
    }
    else if (strcmp(what, "connect") == 0)
        kind = BG_UP_CONNECT_FAILED;
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, err == UV_EPROTO ? "protocol" : uv_strerror(err));
    if (kind == BG_UP_TLS_FAILED)
        snprintf(msg, sizeof msg, "%s", what);
    bg_upstream_error_cb(up, owner, kind, msg);
    up_close(up);
}

static void on_drain(bg_stream_t *s)
{
    bg_upstream_t *up = s->data;
    if (up->h2 && !up->dead)
        bg_h2up_drain(up->h2);
    else if (up->owner)
        bg_upstream_drain_cb(up, up->owner);
}

static const bg_stream_callbacks_t up_callbacks = {
    .on_open = on_open,
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drain = on_drain,
    .on_closed = stream_closed,
};

int64_t bg_upstream_took_at(bg_upstream_t *up, int64_t now, int64_t timeout)
{
    int64_t gap = timeout / 8 ? timeout / 8 : 1;
    if (up->outq_seen == SIZE_MAX || now - up->outq_looked >= gap) {
        size_t outq = bg_stream_outq(&up->stream);
        if (up->outq_seen == SIZE_MAX) {
            if (outq && up->outq_at < now - timeout + gap)
                up->outq_at = now - timeout + gap; /* first look: one more look to show it moves */
        } else if (outq != up->outq_seen) {
            up->outq_at = now;
        }
        up->outq_seen = outq;
        up->outq_looked = now;
    }
    int64_t at = up->stream.flushed_at ? (int64_t)up->stream.flushed_at : INT64_MIN / 2;
    return up->outq_at > at ? up->outq_at : at;
}

/* Whether the vendor took request bytes within its response timeout: it is reading the request,
 * not silent. The timer looks at the socket's send buffer when it runs out and then every 1/8 of
 * the timeout while the buffer holds bytes, so a vendor that stops reading times out one timeout
 * (plus at most 1/8) after the last bytes it took. Returns the ms to wait on, or 0: due now. */
static uint64_t request_progress(bg_upstream_t *up)
{
    int64_t now = (int64_t)uv_now(&up->w->loop), t = (int64_t)up->timeout_ms, gap = t / 8 ? t / 8 : 1;
    int64_t took = bg_upstream_took_at(up, now, t);
    if (now - took >= t)
        return 0;
    int64_t rest = t - (now - took);
    return (uint64_t)(up->outq_seen && rest > gap ? gap : rest);
}

static void timer_cb(uv_timer_t *t)
{
    bg_upstream_t *up = t->data;
    if (up->ready && up->timeout_ms && up->owner) {
        /* The response timeout is the vendor's silence: neither answering nor taking the request.
         * A vendor that reads a large body slowly but steadily is not cut off while the body is
         * still going out (as HTTP/2 streams count from the last DATA the vendor's window let
         * through, h2up.c). */
        uint64_t rest = request_progress(up);
        if (rest) {
            bg_deadline_start(&up->timer, timer_cb, rest);
            return;
        }
    }
    void *owner = up->owner;
    up->owner = NULL;
    if (owner)
        bg_upstream_error_cb(up, owner, BG_UP_TIMEOUT, up->ready ? "response timeout" : "connect timeout");
    up_close(up);
}

bg_upstream_t *bg_upstream_acquire(bg_worker_t *w, const char *key, const struct sockaddr *addr,
                                   SSL_CTX *ctx, const char *sni, const char *verify_host,
                                   uint64_t connect_timeout_ms, uint32_t max_conns, bg_upstream_proto_t proto,
                                   void *owner, int *err)
{
    struct bg_upkey *k0 = upkey_get(w, key, false);
    for (bg_upstream_t *c = k0 ? k0->h2 : NULL; c; c = c->h2next)
        if (!c->dead && !c->stream.eof && bg_h2up_available(c->h2)) {
            if (!bg_deadline_armed(&c->timer)) /* stopped while it had no streams */
                bg_deadline_start(&c->timer, h2_tick_cb, 100);
            return c; /* a stream on a shared HTTP/2 connection */
        }
    /* Bytes the vendor sent beyond its last answer would be taken for the answer to this request.
     * Those the stream knows of (in TLS, or behind a read that filled the buffer) or an EOF: leave
     * the connection. Bytes that reached the socket later raise a readable event whose read closes
     * it (on_data) -- once a poll has reported them and its events were handled, i.e. when the
     * worker's turn has moved on by two since the release. A connection released more recently is
     * peeked (a system call, ~1.4 us here): an older one of the same address is taken first. */
    bg_upstream_t **take = NULL;
    bg_upstream_t **p = &w->idle;
    /* The list is in release order, most recent first: the connections released in the last two
     * turns lead it, and are passed over by their turn alone. */
    while (*p && w->turn - (*p)->released_turn < 2)
        p = &(*p)->next;
    for (; *p; p = &(*p)->next)
        if (strcmp((*p)->key, key) == 0 && !bg_stream_unread(&(*p)->stream, false)) {
            take = p;
            break;
        }
    for (p = &w->idle; !take && *p && w->turn - (*p)->released_turn < 2; p = &(*p)->next)
        if (strcmp((*p)->key, key) == 0) {
            if (!bg_stream_unread(&(*p)->stream, true))
                take = p;
            break; /* one peek at most: else a new connection */
        }
    if (take) {
        bg_upstream_t *up = *take;
        *take = up->next;
        up->next = NULL;
        w->nidle--;
        up->owner = owner;
        up->reused = true;
        bg_stream_read_start(&up->stream);
        return up;
    }
    struct bg_upkey *k = upkey_get(w, key, true);
    /* Hold back behind a connection still connecting when it will be shared: the vendor is
     * pinned to HTTP/2, the address's last handshake chose h2, or (protocol auto over TLS) no
     * handshake has finished yet. A cold burst then opens one connection, not max_conns, and
     * waits one handshake; if that shows HTTP/1.1, on_open sends every waiter on its way. */
    bool shared = proto == BG_PROTO_HTTP2 || k->h2_seen || (proto == BG_PROTO_AUTO && ctx && !k->proto_known);
    if ((max_conns && k->conns >= max_conns) || (shared && k->connecting)) {
        /* At the bound (or behind that connection): wait for a connection of this address. */
        bg_waiter_t *wt = calloc(1, sizeof *wt);
        if (!wt)
            abort();
        wt->owner = owner;
        wt->since = uv_now(&w->loop);
        if (k->tail)
            k->tail->next = wt;
        else
            k->head = wt;
        k->tail = wt;
        *err = BG_UP_QUEUED;
        return NULL;
    }
    bg_upstream_t *up = calloc(1, sizeof *up);
    if (!up)
        abort();
    up->w = w;
    snprintf(up->key, sizeof up->key, "%s", key);
    up->owner = owner;
    up->slot = k;
    k->conns++;
    k->connecting++;
    up->connecting = true;
    int r = bg_stream_init(&up->stream, &w->loop, &up_callbacks, up);
    bg_deadline_init(&w->loop, &up->timer, up);
    up->open_handles = 2;
    if (r == 0)
        r = bg_stream_connect(&up->stream, addr, ctx, sni, verify_host);
    SSL_SESSION *sess = r == 0 && ctx ? tls_session_take(w, key, ctx) : NULL;
    if (sess) {
        bg_stream_tls_offer_session(&up->stream, sess);
        SSL_SESSION_free(sess);
    }
    if (r < 0) {
        *err = r;
        up->owner = NULL;
        up_close(up);
        return NULL;
    }
    up->timeout_ms = 0;
    up->outq_seen = SIZE_MAX;
    up->outq_at = INT64_MIN / 2;
    bg_deadline_start(&up->timer, timer_cb, connect_timeout_ms ? connect_timeout_ms : 5000);
    return up;
}

void bg_upstream_set_timeout(bg_upstream_t *up, uint64_t ms)
{
    up->timeout_ms = ms;
    up->outq_seen = SIZE_MAX; /* counted afresh from here (request_progress) */
    up->outq_at = INT64_MIN / 2;
    bg_deadline_start(&up->timer, timer_cb, ms);
}

int bg_upstream_write(bg_upstream_t *up, const char *p, size_t n) { return bg_stream_write(&up->stream, p, n); }

int bg_upstream_writev(bg_upstream_t *up, const uv_buf_t *bufs, size_t n)
{
    return bg_stream_writev(&up->stream, bufs, n);
}

/* While the client is slow to read, the vendor is not the one being silent: the response
 * timeout waits with the reading. */
void bg_upstream_pause(bg_upstream_t *up)
{
    bg_stream_read_stop(&up->stream);
    if (up->timeout_ms)
        bg_deadline_stop(&up->timer);
}

void bg_upstream_resume(bg_upstream_t *up)
{
    bg_stream_read_start(&up->stream);
    if (up->timeout_ms && !up->dead)
        bg_deadline_start(&up->timer, timer_cb, up->timeout_ms);
}

void bg_upstream_release(bg_upstream_t *up, bool reusable)
{
    up->owner = NULL;
    /* Released from inside on_data, maybe with the vendor's bytes beyond its answer in TLS buffers
     * or behind a read that filled the buffer: such a connection is out of step; close it. Bytes
     * that came after a read that drained the socket (a vendor's write carrying the answer's end
     * and more can arrive in two pieces) are looked for when the connection is taken again before
     * a poll could report them (bg_upstream_acquire): test_vendor_chaos met them in 3 of 1,129
     * such answers when nothing looked. */
    if (!reusable || up->dead || !up->ready || up->stream.write_pending || up->w->draining ||
        bg_stream_unread(&up->stream, false)) { /* EOF counts as unread */
        up_close(up);
        return;
    }
    up->released_turn = up->w->turn;
    bg_deadline_stop(&up->timer);
    up->timeout_ms = 0;
    up->idle_since = uv_now(&up->w->loop);
    /* Keep reading while idle so a vendor's close is noticed at once. */
    bg_stream_read_start(&up->stream);
    up->next = up->w->idle;
    up->w->idle = up;
    up->w->nidle++;
    if (up->slot && up->slot->head) {
        upkey_wake(up->w, up->slot); /* a waiter takes this idle connection */
        return;
    }
    if (up->w->nidle > BG_UPSTREAM_MAX_IDLE) {
        /* Drop the oldest (the tail). */
        bg_upstream_t *last = up->w->idle;
        while (last->next)
            last = last->next;
        up_close(last);
    }
}

void bg_upstream_sweep(bg_worker_t *w, uint64_t max_idle_ms)
{
    uint64_t now = uv_now(&w->loop);
    /* HTTP/2 connections without streams count as idle. */
    for (struct bg_upkey *k = w->upkeys, *knext; k; k = knext) {
        knext = k->next;
        k->conns++; /* keep k while its connections close */
        for (bg_upstream_t *c = k->h2, *next; c; c = next) {
            next = c->h2next;
            if (bg_h2up_nstreams(c->h2) == 0 && (max_idle_ms == 0 || now - c->idle_since >= max_idle_ms))
                up_close(c);
        }
        k->conns--;
        upkey_maybe_free(w, k);
    }
    bg_upstream_t *up = w->idle;
    while (up) {
        bg_upstream_t *next = up->next;
        if (max_idle_ms == 0 || now - up->idle_since >= max_idle_ms)
            up_close(up);
        up = next;
    }
}

/* ---- circuit breaking ------------------------------------------------------------------ */

#define BG_CIRCUIT_SLOTS 256

struct bg_circuit {
    char key[128];
    uint32_t failures;
    uint64_t open_until; /* uv_now; 0: closed */
    uint64_t last_used;
};

static struct bg_circuit *circuit_find(bg_worker_t *w, const char *key, bool create)
{
    if (!w->circuits) {
        if (!create)
            return NULL;
        w->circuits = calloc(BG_CIRCUIT_SLOTS, sizeof *w->circuits);
        if (!w->circuits)
            abort();
    }
    struct bg_circuit *victim = &w->circuits[0];
    for (size_t i = 0; i < BG_CIRCUIT_SLOTS; i++) {
        struct bg_circuit *c = &w->circuits[i];
        if (c->key[0] && strncmp(c->key, key, sizeof c->key - 1) == 0)
            return c;
        if (!c->key[0] || c->last_used < victim->last_used)
            victim = c; /* an empty slot, else the least recently used */
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof *victim);
    snprintf(victim->key, sizeof victim->key, "%s", key);
    return victim;
}

bool bg_upstream_circuit_allow(bg_worker_t *w, const char *key)
{
    struct bg_circuit *c = circuit_find(w, key, false);
    if (!c || c->failures < BG_CIRCUIT_THRESHOLD)
        return true;
    uint64_t now = uv_now(&w->loop);
    c->last_used = now;
    if (now < c->open_until)
        return false;
    /* Half open: one trial now; the rest keep failing fast for another period unless it succeeds. */
    c->open_until = now + BG_CIRCUIT_OPEN_MS;
    return true;
}

void bg_upstream_circuit_report(bg_worker_t *w, const char *key, bool ok)
{
    struct bg_circuit *c = circuit_find(w, key, !ok);
    if (!c)
        return;
    uint64_t now = uv_now(&w->loop);
    c->last_used = now;
    if (ok) {
        if (c->failures >= BG_CIRCUIT_THRESHOLD)
            bg_log_info("vendor address recovered: circuit closed", "address", c->key);
        c->failures = 0;
        c->open_until = 0;
        return;
    }
    if (++c->failures == BG_CIRCUIT_THRESHOLD)
        bg_log_warn("vendor address failing: circuit open", "address", c->key);
    if (c->failures >= BG_CIRCUIT_THRESHOLD)
        c->open_until = now + BG_CIRCUIT_OPEN_MS;
}

void bg_upstream_circuit_dispose(bg_worker_t *w)
{
    free(w->circuits);
    w->circuits = NULL;
}
