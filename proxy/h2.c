/*
 * h2.c — HTTP/2 towards clients (RFC 9113) on an nghttp2 server session: one exchange per
 * stream, the request head rebuilt into the exchange's bg_h1_request_t, request DATA fed to
 * it under flow control (a stream's window is reopened only for bytes its exchange took while
 * not paused; the connection's as bytes arrive, so that a stream held back never stalls the
 * others), and bg_downstream_t implemented per stream (HEADERS + a deferred data provider).
 * Invariants: nghttp2 is never re-entered for sending from inside its own callbacks (depth);
 * a stream's exchange is destroyed only after down->end or cancelled when the stream dies;
 * output stops while the client's write queue holds more than 1 MiB, and what exchanges hand
 * over is sent once per loop turn (a uv_check). Floods: resets (the client's, and ours for
 * malformed frames) and control frames are counted per connection in a 10 s window (GOAWAY
 * beyond a bound);
 * CONTINUATION, SETTINGS and ACK queues are bounded by nghttp2 options. One worker thread.
 */
#include "h2.h"

#include "exchange.h"
#include "log.h"

#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define H2_MAX_STREAMS 100
#define H2_STREAM_WINDOW (256 * 1024)    /* request bytes a stream may have in flight unconsumed */
#define H2_CONN_WINDOW (1024 * 1024)     /* ... and the whole connection */
#define H2_WRITE_HIGH (1u << 20)         /* stop producing while this much waits for the socket */
#define H2_WRITE_CHUNK (64 * 1024)       /* coalesce frames into one write up to this size */
#define H2_FLOOD_WINDOW_MS 10000
#define H2_MAX_RESETS 200                /* client RST_STREAMs per window (CVE-2023-44487) */
#define H2_MAX_CONTROL 10000             /* SETTINGS + PING + PRIORITY + empty frames per window */
#define H2_HARD_MAX_HEADER_LIST (64 * 1024)
#define H2_DISCARD_MAX (16u << 20)       /* request bytes dropped after an early answer before RST */
#define H2_INLINE_FIELDS 16

typedef struct {
    uint32_t name_off, name_len, value_off, value_len;
} h2_field_t;

typedef struct h2_stream h2_stream_t;

struct h2_stream {
    bg_h2_t *s;
    int32_t id;
    h2_stream_t *prev, *next;
    bg_exchange_t *ex;

    /* Request head being collected. */
    bg_buf_t hb;            /* names and values back to back; later the response head (dn_head) */
    h2_field_t *fields;     /* inl, or the heap beyond H2_INLINE_FIELDS */
    size_t nfields, cap;
    size_t nregular;        /* regular fields other than cookie */
    size_t list_size;       /* RFC 9113 6.5.2 size: name + value + 32 per field */
    int reject_status;      /* answer this without an exchange (431, 400) */
    const char *reject_why;
    bool pending_start;     /* head complete: start after this read unless reset first */
    bool end_stream;        /* the client finished its request */
    uint64_t started;       /* uv_now when the exchange started (body deadline) */
    uint64_t last_in;       /* uv_now of the last request DATA (idle_timeout while it streams on) */
    bg_buf_t tr_in;         /* request trailers ("name: value\r\n"), handed over at END_STREAM */
    bool tr_over;           /* ... beyond the header list bound */

    /* Request body flow control. */
    bool paused;
    bool reset_sent;        /* RST_STREAM NO_ERROR after discarding too much */
    size_t unconsumed;      /* delivered while paused: the stream's window reopens on resume */
    uint64_t discarded;     /* body bytes dropped after the answer */

    /* Response. */
    bool resp_submitted;
    bool bodiless;
    bg_buf_t out;
    size_t out_off;
    bool out_moved;         /* out was compacted: stale bytes may sit beyond out.len */
    bool out_eof;
    bool has_provider;      /* the response was submitted with a data provider (trailers can follow) */
    nghttp2_nv *held;       /* a response head without a body, composed and counted by dn_head, and */
    size_t nheld;           /* submitted by dn_end (its fields point into hb) */
    bg_buf_t tr_out;        /* response trailers ("name: value\r\n", names lowercased), after the DATA */
    bool ex_ended;          /* down->end was called: destroy (not cancel) the exchange */
    bool closed;            /* nghttp2 closed the stream; kept only until the exchange lets go */
    h2_field_t inl[H2_INLINE_FIELDS]; /* the usual request head needs no allocation */
};

struct bg_h2 {
    bg_worker_t *w;
    bg_stream_t *stream;
    nghttp2_session *session;
    char caller[288];
    char client_ip[48];
    bool tls;
    int li, lslot;          /* the listener (cfg->listen index, limits slot) */
    int depth;              /* inside nghttp2 (recv or send) */
    bool want_flush;
    bool dead;              /* fatal session error or flood: stop talking */
    bool shutting_down;
    bool goaway_final;
    bool fin_sent;
    h2_stream_t *streams;
    size_t nstreams;
    int32_t *pending;       /* stream ids whose head completed during this read */
    size_t npending, pending_cap;
    uint64_t window_start;  /* flood accounting */
    uint32_t resets, control;
    uint32_t max_header_list;
    uint32_t max_headers;
    uint32_t tid_sent;      /* x-transfer-id fields sent (no_index) */
    bg_buf_t wbuf;
    uv_check_t check;       /* the exchanges' output is sent once per loop turn */
    bool check_active;
};

static const bg_downstream_t h2_downstream;
static void flush(bg_h2_t *s);
static void schedule(bg_h2_t *s);
static ssize_t read_cb(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length, uint32_t *data_flags,
                       nghttp2_data_source *source, void *user);

/* ---- streams ------------------------------------------------------------------------------ */

static h2_stream_t *stream_new(bg_h2_t *s, int32_t id)
{
    h2_stream_t *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->s = s;
    st->id = id;
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->nstreams++;
    st->fields = st->inl;
    st->cap = H2_INLINE_FIELDS;
    return st;
}

static void stream_free(h2_stream_t *st)
{
    bg_h2_t *s = st->s;
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    s->nstreams--;
    /* hb only grows between its cleanses; out's bytes beyond its length were cleansed when it
     * was emptied (send_data_cb), unless a compaction left copies there. */
    if (st->hb.data)
        OPENSSL_cleanse(st->hb.data, st->hb.len);
    bg_buf_dispose(&st->hb);
    if (st->out.data)
        OPENSSL_cleanse(st->out.data, st->out_moved ? st->out.cap : st->out.len);
    bg_buf_dispose(&st->out);
    bg_buf_dispose_secure(&st->tr_in);
    bg_buf_dispose_secure(&st->tr_out);
    free(st->held);
    if (st->fields != st->inl)
        free(st->fields);
    free(st);
}

/* What a head's fields count in an exchange's bytes_out (name, value and 4 per field). */
static size_t nv_bytes(const nghttp2_nv *nv, size_t k)
{
    size_t n = 0;
    for (size_t i = 0; i < k; i++)
        n += nv[i].namelen + nv[i].valuelen + 4;
    return n;
}

/* The head dn_head held (no body after it) never leaves: its bytes come off the exchange's count
 * and the stream is as before dn_head. Returns whether there was one. */
static bool held_take_back(h2_stream_t *st)
{
    if (!st->held)
        return false;
    if (st->ex)
        st->ex->bytes_out -= nv_bytes(st->held, st->nheld);
    free(st->held);
    st->held = NULL;
    st->nheld = 0;
    st->resp_submitted = st->out_eof = st->bodiless = st->has_provider = false;
    bg_buf_dispose_secure(&st->tr_out);
    return true;
}

/* Let go of the stream's exchange: destroyed after its end, cancelled (recorded as 499) before. */
static void stream_release_exchange(h2_stream_t *st)
{
    bg_exchange_t *ex = st->ex;
    if (!ex)
        return;
    if (!st->ex_ended)
        held_take_back(st); /* the client left before it: nothing of the answer went out */
    st->ex = NULL;
    if (st->ex_ended)
        bg_exchange_destroy(ex);
    else
        bg_exchange_cancel(ex);
}

static size_t stream_buffered(const h2_stream_t *st) { return st->out.len - st->out_off; }

/* ---- flood accounting --------------------------------------------------------------------- */

static bool flood_count(bg_h2_t *s, bool reset)
{
    uint64_t now = uv_now(&s->w->loop);
    if (now - s->window_start > H2_FLOOD_WINDOW_MS) {
        s->window_start = now;
        s->resets = s->control = 0;
    }
    if (reset)
        s->resets++;
    else
        s->control++;
    if (s->resets <= H2_MAX_RESETS && s->control <= H2_MAX_CONTROL)
        return false;
    if (!s->dead) {
        bg_log_warn("http2 flood: closing connection", "caller", s->caller, "kind", reset ? "rst_stream" : "control");
        nghttp2_session_terminate_session(s->session, NGHTTP2_ENHANCE_YOUR_CALM);
        s->dead = true;
    }
    return true;
}

/* ---- request head ------------------------------------------------------------------------- */

static bool field_is(const h2_stream_t *st, const h2_field_t *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && memcmp(st->hb.data + f->name_off, name, n) == 0;
}

/* Answer a request the gateway refuses before any exchange (too large, malformed): a small
 * problem+json body on this stream only. */
static void stream_answer(h2_stream_t *st, int status, const char *why)
{
    bg_h2_t *s = st->s;
    bg_buf_reset(&st->out);
    st->out_off = 0;
    bg_buf_printf(&st->out, "{\"type\":\"https://bordergate.dev/problems/bad-request\",\"title\":\"%s\",\"status\":%d,\"detail\":\"",
                  bg_h1_reason(status), status);
    bg_buf_json_escape(&st->out, why, strlen(why));
    bg_buf_puts(&st->out, "\"}");
    st->out_eof = true;
    st->ex_ended = true;
    char sbuf[8], lbuf[24];
    snprintf(sbuf, sizeof sbuf, "%d", status);
    snprintf(lbuf, sizeof lbuf, "%zu", st->out.len);
    nghttp2_nv nva[] = {
        {(uint8_t *)":status", (uint8_t *)sbuf, 7, strlen(sbuf), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/problem+json", 12, 24, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-length", (uint8_t *)lbuf, 14, strlen(lbuf), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"cache-control", (uint8_t *)"no-store", 13, 8, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = read_cb};
    st->resp_submitted = true;
    nghttp2_submit_response(s->session, st->id, nva, BG_ARRAY_SIZE(nva), &prd);
    bg_metrics_request(s->w->server->metrics, s->w->id, status);
    bg_log_debug("http2 request rejected", "caller", s->caller, "status", bg_h1_reason(status), "why", why);
}

/* The head is complete and the stream was not reset: build the exchange's request and start it.
 * Called with depth > 0 (nothing is sent, so the stream outlives the call). */
/* The request's trailing HEADERS go to the exchange just before the end of its body. */
static void stream_trailers(h2_stream_t *st)
{
    if (st->ex && !st->ex_ended && (st->tr_in.len || st->tr_over))
        bg_exchange_trailers(st->ex, st->tr_in.data, st->tr_in.len, st->tr_over);
    bg_buf_dispose_secure(&st->tr_in);
}

static void stream_start(h2_stream_t *st)
{
    bg_h2_t *s = st->s;
    st->pending_start = false;
    if (st->reject_status) {
        stream_answer(st, st->reject_status, st->reject_why);
        return;
    }
    /* Join cookie crumbs into one field (RFC 9113 8.2.3) at the end of the block. */
    size_t ncookies = 0, cookie_total = 0;
    uint32_t cookie_off = 0;
    for (size_t i = 0; i < st->nfields; i++)
        if (field_is(st, &st->fields[i], "cookie"))
            cookie_total += st->fields[i].value_len + 2;
    bg_buf_reserve(&st->hb, cookie_total + 1); /* the appends below read from hb itself */
    for (size_t i = 0; i < st->nfields; i++) {
        const h2_field_t *f = &st->fields[i];
        if (!field_is(st, f, "cookie"))
            continue;
        if (ncookies++ == 0) {
            cookie_off = (uint32_t)st->hb.len;
        } else {
            bg_buf_append(&st->hb, "; ", 2);
        }
        bg_buf_append(&st->hb, st->hb.data + f->value_off, f->value_len);
    }
    uint32_t cookie_len = ncookies ? (uint32_t)st->hb.len - cookie_off : 0;

    bg_exchange_t *ex = bg_exchange_create(s->w, "h2", s->caller, &h2_downstream, st);
    st->started = uv_now(&s->w->loop);
    st->last_in = st->started;
    st->ex = ex;
    memcpy(ex->client_ip, s->client_ip, sizeof ex->client_ip); /* same size, NUL-terminated */
    ex->client_tls = s->tls;
    ex->listener = s->li;
    ex->lslot = s->lslot;
    ex->head_len = st->hb.len;
    ex->head = malloc(ex->head_len ? ex->head_len : 1);
    if (!ex->head)
        abort();
    if (st->hb.len)
        memcpy(ex->head, st->hb.data, st->hb.len);
    ex->bytes_in = st->list_size;
    const char *base = ex->head;
    bg_h1_request_t *req = &ex->req;
    req->minor_version = 1;
    req->keep_alive = true;
    req->content_length = -1;
    const char *authority = NULL, *host = NULL;
    size_t authority_len = 0, host_len = 0;
    unsigned nhost = 0;
    for (size_t i = 0; i < st->nfields; i++) {
        const h2_field_t *f = &st->fields[i];
        const char *name = base + f->name_off, *value = base + f->value_off;
        if (f->name_len && name[0] == ':') {
            if (field_is(st, f, ":method"))
                req->method = value, req->method_len = f->value_len;
            else if (field_is(st, f, ":path"))
                req->target = value, req->target_len = f->value_len;
            else if (field_is(st, f, ":authority"))
                authority = value, authority_len = f->value_len;
            continue;
        }
        if (field_is(st, f, "cookie"))
            continue;
        if (field_is(st, f, "host"))
            host = value, host_len = f->value_len, nhost++;
        if (field_is(st, f, "content-length")) {
            int64_t v = 0;
            for (size_t k = 0; k < f->value_len && v < ((int64_t)1 << 50); k++)
                v = v * 10 + (value[k] - '0'); /* nghttp2 checked the digits */
            req->content_length = v;
        }
        req->headers[req->nheaders++] = (bg_header_t){name, f->name_len, value, f->value_len};
    }
    if (ncookies)
        req->headers[req->nheaders++] = (bg_header_t){"cookie", 6, base + cookie_off, cookie_len};
    req->host = authority ? authority : host;
    req->host_len = authority ? authority_len : host_len;
    if (!req->method)
        req->method = "", req->method_len = 0;
    if (!req->target)
        req->target = "", req->target_len = 0;
    req->path = req->target;
    req->path_len = req->target_len;
    /* Until END_STREAM the request may still carry trailers (even behind content-length: 0,
     * RFC 9113 8.1): with more to come it is not bodiless, or the exchange would decide at start
     * and drop them as late. Trailers that came with the end (in the head's read) count as more.
     * A declared length stays checked by nghttp2, which resets the stream (PROTOCOL_ERROR) when
     * the DATA received do not add up to it (8.1.1), and a zero length cannot start streaming:
     * such a request is forwarded only once its end proved it well-formed. */
    bool more = !st->end_stream || st->tr_in.len || st->tr_over;
    req->chunked = more && req->content_length <= 0;
    ex->target = req->target;
    ex->target_len = req->target_len;
    /* The collected head now lives in ex->head; hb's memory is kept for the response head. */
    OPENSSL_cleanse(st->hb.data, st->hb.len);
    st->hb.len = 0;
    if (st->fields != st->inl)
        free(st->fields);
    st->fields = NULL;
    st->nfields = st->cap = 0;
    /* The vendor's HTTP/1.1 request line and Host are made of :method, :path and :authority:
     * what the request parser refuses there is refused here too (nghttp2 lets a fragment, a
     * userinfo or a second, different host through), so the vendor never reads a target or a
     * host other than the one routed and classified (RFC 9113 8.3.1: host and :authority agree). */
    const char *bad = NULL;
    if (!req->host)
        bad = "no :authority or host";
    else if (nhost > 1)
        bad = "more than one host field";
    else if ((authority && !bg_h1_authority_valid(authority, authority_len)) ||
             (host && !bg_h1_authority_valid(host, host_len)))
        bad = "invalid :authority or host";
    else if (authority && host && !bg_span_ieq2(authority, authority_len, host, host_len))
        bad = ":authority and host disagree";
    else if (!bg_span_ieq(req->method, req->method_len, "CONNECT") &&
             !bg_h1_target_valid(req->method, req->method_len, req->target, req->target_len))
        bad = "invalid :path";
    else
        bad = bg_h1_content_fields_ambiguous(req->headers, req->nheaders);
    if (bad) {
        st->ex = NULL;
        bg_exchange_cancel(ex);
        stream_answer(st, 400, bad);
        return;
    }
    bg_exchange_start(ex);
    if (st->ex == ex && st->end_stream && !st->ex_ended)
        stream_trailers(st);
    if (st->ex == ex && st->end_stream && !st->ex_ended)
        bg_exchange_body_end(ex);
}

static void queue_start(bg_h2_t *s, int32_t id)
{
    if (s->npending == s->pending_cap) {
        s->pending_cap = s->pending_cap ? s->pending_cap * 2 : 16;
        s->pending = realloc(s->pending, s->pending_cap * sizeof *s->pending);
        if (!s->pending)
            abort();
    }
    s->pending[s->npending++] = id;
}

/* ---- nghttp2 callbacks -------------------------------------------------------------------- */

static int on_begin_headers_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    bg_h2_t *s = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: their stream exists; on_header_cb keeps them */
    h2_stream_t *st = stream_new(s, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, st);
    return 0;
}

static int on_header_cb(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    bg_h2_t *s = user;
    (void)flags;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
        /* Request trailers (nghttp2 checked: END_STREAM, no pseudo-fields): kept, bounded like a
         * header list, for stream_trailers. */
        h2_stream_t *tst = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!tst || tst->tr_over)
            return 0;
        if (tst->tr_in.len + namelen + valuelen + 32 > s->max_header_list) {
            tst->tr_over = true;
            return 0;
        }
        bg_buf_append(&tst->tr_in, name, namelen);
        bg_buf_append(&tst->tr_in, ": ", 2);
        bg_buf_append(&tst->tr_in, value, valuelen);
        bg_buf_append(&tst->tr_in, "\r\n", 2);
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!st || st->reject_status)
        return 0; /* decoded (HPACK state must advance) but not kept */
    st->list_size += namelen + valuelen + 32;
    if (st->list_size > s->max_header_list) {
        st->reject_status = 431, st->reject_why = "request header list too large";
        return 0;
    }
    bool pseudo = namelen && name[0] == ':';
    bool cookie = namelen == 6 && memcmp(name, "cookie", 6) == 0;
    if (!pseudo && !cookie && ++st->nregular + 1 > s->max_headers) { /* + the joined cookie */
        st->reject_status = 431, st->reject_why = "too many request header fields";
        return 0;
    }
    if (st->nfields == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : H2_INLINE_FIELDS;
        h2_field_t *nf = malloc(cap * sizeof *nf);
        if (!nf)
            abort();
        memcpy(nf, st->fields, st->nfields * sizeof *nf);
        if (st->fields != st->inl)
            free(st->fields);
        st->fields = nf;
        st->cap = cap;
    }
    h2_field_t *f = &st->fields[st->nfields++];
    char *p = bg_buf_space(&st->hb, namelen + valuelen);
    memcpy(p, name, namelen);
    memcpy(p + namelen, value, valuelen);
    f->name_off = (uint32_t)st->hb.len;
    f->name_len = (uint32_t)namelen;
    f->value_off = (uint32_t)(st->hb.len + namelen);
    f->value_len = (uint32_t)valuelen;
    bg_buf_commit(&st->hb, namelen + valuelen);
    return 0;
}

static void stream_body_end(h2_stream_t *st)
{
    st->end_stream = true;
    if (st->pending_start)
        return; /* stream_start sees end_stream */
    if (st->ex && !st->ex_ended)
        stream_trailers(st);
    if (st->ex && !st->ex_ended)
        bg_exchange_body_end(st->ex);
}

static int on_frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    bg_h2_t *s = user;
    h2_stream_t *st = frame->hd.stream_id ? nghttp2_session_get_stream_user_data(session, frame->hd.stream_id) : NULL;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (!st)
            return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
                st->end_stream = true;
            if (s->dead || s->goaway_final) {
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_REFUSED_STREAM);
                return 0;
            }
            st->pending_start = true;
            queue_start(s, st->id);
        } else if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            stream_body_end(st);
        }
        return 0;
    case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            flood_count(s, false); /* empty DATA frames cost work and carry nothing */
        if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            stream_body_end(st);
        return 0;
    case NGHTTP2_RST_STREAM:
        flood_count(s, true);
        return 0;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PRIORITY:
        flood_count(s, false);
        return 0;
    case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && s->shutting_down && !s->goaway_final) {
            /* The client has seen the shutdown notice: streams it opened before are known. */
            s->goaway_final = true;
            nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session),
                                  NGHTTP2_NO_ERROR, NULL, 0);
        } else {
            flood_count(s, false);
        }
        return 0;
    default:
        return 0;
    }
}

static int on_invalid_frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame, int lib_error, void *user)
{
    (void)session, (void)frame, (void)lib_error;
    flood_count(user, true); /* nghttp2 resets the stream: a reset the client caused */
    return 0;
}

/* Bodies held for classification are bounded per stream (max_body_scan) and, together, per
 * connection (limits.max_body_scan_per_connection): while the streams waiting for their bodies
 * hold more than that, the largest holder is decided on what it has (its body counts as
 * unscannable, which the policy treats per oversize_body: fail closed). Cutting instead of
 * withholding window updates cannot deadlock streams that all wait for more of their bodies. */
static void enforce_held_budget(bg_h2_t *s)
{
    const bg_config_t *cfg = s->w->rt->cfg;
    uint64_t budget = cfg->limits.max_body_scan_per_connection; /* one stream may always hold a full scan */
    if (budget < cfg->limits.max_body_scan)
        budget = cfg->limits.max_body_scan;
    for (int guard = 0; guard <= H2_MAX_STREAMS; guard++) { /* each turn moves one exchange out of BODY */
        uint64_t held = 0;
        size_t most = 0;
        h2_stream_t *big = NULL;
        for (h2_stream_t *st = s->streams; st; st = st->next) {
            size_t n = st->ex && !st->ex_ended ? bg_exchange_held(st->ex) : 0;
            held += n;
            if (n > most)
                most = n, big = st;
        }
        if (held <= budget || !big)
            return;
        bg_log_debug("h2 held bodies over the connection budget: deciding the largest on its prefix", "peer",
                     s->caller);
        bg_exchange_scan_cut(big->ex); /* may end (and free) the stream: not touched again */
    }
}

static int on_data_chunk_recv_cb(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                                 void *user)
{
    (void)flags, (void)user;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(session, id);
    if (st && st->pending_start)
        stream_start(st); /* data follows: the client means it */
    if (!st || !st->ex || st->ex_ended) {
        /* Answered already: discard (reopening the windows) so the client can finish its
         * upload and read the answer; beyond a bound, ask it to stop (RFC 9113 8.1). Some
         * clients treat that reset as an error, hence the grace. */
        nghttp2_session_consume(session, id, len);
        if (st && (st->discarded += len) > H2_DISCARD_MAX && !st->reset_sent && st->out_eof) {
            st->reset_sent = true;
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
        }
        return 0;
    }
    bool was_paused = st->paused;
    bg_exchange_t *ex = st->ex;
    st->last_in = uv_now(&st->s->w->loop);
    bg_exchange_body(ex, (const char *)data, len);
    if (st->ex != ex || st->ex_ended)
        nghttp2_session_consume(session, id, len); /* the exchange answered: the rest is discarded */
    else if (was_paused || st->paused) {
        /* The exchange holds this stream back (its decision, a vendor that reads slowly, a
         * connection slot): the stream's window stays closed until resume. Not the connection's:
         * held there, a few such streams (a body that ended while held keeps its share until its
         * answer is complete) closed it for every other stream, whose clients could not send,
         * and then got a 408, or their vendors a 504, for the gateway's own window. The bytes
         * are the exchange's already, bounded per stream by its window. */
        nghttp2_session_consume_connection(session, len);
        st->unconsumed += len;
    } else
        nghttp2_session_consume(session, id, len);
    enforce_held_budget(st->s);
    return 0;
}

static int on_stream_close_cb(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
    (void)user, (void)error_code;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(session, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(session, id, NULL);
    st->closed = true;
    st->pending_start = false;
    /* Closed before dn_end, even with a head composed (a held head leaves only at dn_end): the
     * client reset the stream or went away before its answer was complete. The exchange is
     * cancelled (499), also while it waits for the vendor's end behind a content-length: 0 head;
     * one waiting for its record is freed once the writer hands it back. */
    stream_release_exchange(st);
    stream_free(st);
    return 0;
}

int bg_h2_submit_trailer_lines(nghttp2_session *ng, int32_t id, const char *lines, size_t len)
{
    bg_header_t f[BG_H1_MAX_HEADERS];
    nghttp2_nv nv[BG_H1_MAX_HEADERS];
    int n = bg_h1_split_fields(lines, len, f, BG_H1_MAX_HEADERS);
    if (n <= 0)
        return -1;
    for (int i = 0; i < n; i++)
        nv[i] = (nghttp2_nv){(uint8_t *)f[i].name, (uint8_t *)f[i].value, f[i].name_len, f[i].value_len,
                             NGHTTP2_NV_FLAG_NONE};
    return nghttp2_submit_trailer(ng, id, nv, (size_t)n) == 0 ? 0 : -1;
}

/* The data provider of every response: what the exchange gave us, then EOF once it ended.
 * Nothing is copied here (NO_COPY): send_data_cb writes the frame from st->out. */
static ssize_t read_cb(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length, uint32_t *data_flags,
                       nghttp2_data_source *source, void *user)
{
    (void)session, (void)id, (void)buf, (void)user;
    h2_stream_t *st = source->ptr;
    size_t have = stream_buffered(st);
    if (have == 0 && !st->out_eof)
        return NGHTTP2_ERR_DEFERRED;
    size_t n = have < length ? have : length;
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == have && st->out_eof) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->tr_out.len && bg_h2_submit_trailer_lines(st->s->session, st->id, st->tr_out.data, st->tr_out.len) == 0)
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers' HEADERS ends it */
    }
    return (ssize_t)n;
}

/* Whether the client's socket has taken enough for now (nghttp2 keeps the frame for later). */
static bool send_blocked(const bg_h2_t *s)
{
    return s->stream->closing || s->stream->write_pending > H2_WRITE_HIGH;
}

/* Frames nghttp2 serialized are gathered in wbuf; every H2_WRITE_CHUNK they go to the stream
 * (one SSL_write), the rest at the end of flush. */
static void send_gathered(bg_h2_t *s)
{
    if (s->wbuf.len >= H2_WRITE_CHUNK) {
        bg_stream_write(s->stream, s->wbuf.data, s->wbuf.len);
        bg_buf_reset(&s->wbuf);
    }
}

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user)
{
    bg_h2_t *s = user;
    (void)session, (void)flags;
    if (send_blocked(s))
        return NGHTTP2_ERR_WOULDBLOCK;
    bg_buf_append(&s->wbuf, data, length);
    send_gathered(s);
    return (ssize_t)length;
}

/* A DATA frame of a response: its header, then `length` bytes straight from the stream's buffer
 * (never padded: no padding callback is set). */
static int send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                        nghttp2_data_source *source, void *user)
{
    bg_h2_t *s = user;
    h2_stream_t *st = source->ptr;
    (void)session, (void)frame;
    if (send_blocked(s))
        return NGHTTP2_ERR_WOULDBLOCK;
    char *p = bg_buf_space(&s->wbuf, 9 + length);
    memcpy(p, framehd, 9);
    if (length)
        memcpy(p + 9, st->out.data + st->out_off, length);
    bg_buf_commit(&s->wbuf, 9 + length);
    st->out_off += length;
    if (length == 0) {
        /* an empty DATA that only ends the stream */
    } else if (st->out_off == st->out.len) {
        OPENSSL_cleanse(st->out.data, st->out.len);
        bg_buf_reset(&st->out);
        st->out_off = 0;
    } else if (st->out_off > (64u << 10) && st->out_off * 2 > st->out.len) {
        OPENSSL_cleanse(st->out.data, st->out_off);
        bg_buf_consume(&st->out, st->out_off);
        st->out_off = 0;
        st->out_moved = true;
    }
    send_gathered(s);
    if (st->ex && !st->ex_ended && stream_buffered(st) < (H2_WRITE_HIGH / 2))
        bg_exchange_drained(st->ex); /* the vendor may send more */
    return 0;
}

/* ---- sending ------------------------------------------------------------------------------ */

static bool session_done(const bg_h2_t *s)
{
    if (s->dead)
        return !nghttp2_session_want_write(s->session) || s->stream->closing;
    if (!nghttp2_session_want_read(s->session) && !nghttp2_session_want_write(s->session))
        return true;
    /* Shutting down: only once the final GOAWAY went out (after the PING's ACK, so the client saw
     * the notice): streams it opened before that are ours to answer, even on a connection that
     * had none when the notice left. A client that never answers is cut at the drain timeout. */
    return s->shutting_down && s->goaway_final && s->nstreams == 0 && !nghttp2_session_want_write(s->session);
}

static void flush(bg_h2_t *s)
{
    if (s->depth > 0) {
        s->want_flush = true;
        return;
    }
    s->depth++;
    s->want_flush = false;
    if (!send_blocked(s)) {
        int rv = nghttp2_session_send(s->session); /* frames arrive in send_cb / send_data_cb */
        if (rv < 0) {
            bg_log_debug("http2 send failed", "caller", s->caller, "error", nghttp2_strerror(rv));
            s->dead = true;
        }
    }
    if (s->wbuf.len) {
        bg_stream_write(s->stream, s->wbuf.data, s->wbuf.len);
        bg_buf_reset(&s->wbuf);
    }
    s->depth--;
    /* A shutdown that just finished: the FIN makes the client close, and the connection with it. */
    if (s->shutting_down && !s->dead && !s->fin_sent && session_done(s) && !s->stream->closing) {
        s->fin_sent = true;
        bg_stream_shutdown(s->stream);
    }
}

static void check_cb(uv_check_t *h)
{
    bg_h2_t *s = h->data;
    uv_check_stop(h);
    s->check_active = false;
    flush(s);
}

/* Exchanges answer from upstream callbacks: what they hand over in one loop turn leaves in one
 * write, after the I/O phase. Also keeps sending (and so stream closes) off their stacks. */
static void schedule(bg_h2_t *s)
{
    if (s->check_active || s->depth > 0) {
        s->want_flush = true;
        return;
    }
    s->check_active = true;
    bg_stream_check_start(&s->check, check_cb); /* inside io_uring's batched reads: at their end */
}

/* After a read: start the streams whose head arrived and that were not reset meanwhile. */
static void start_pending(bg_h2_t *s)
{
    /* No sending while starting: an exchange that answers at once must not see its stream
     * closed and freed under it (flush runs after). */
    s->depth++;
    for (size_t i = 0; i < s->npending && !s->dead; i++) {
        h2_stream_t *st = nghttp2_session_get_stream_user_data(s->session, s->pending[i]);
        if (st && st->pending_start)
            stream_start(st);
    }
    s->depth--;
    s->npending = 0;
    if (s->pending_cap > 64) {
        free(s->pending);
        s->pending = NULL;
        s->pending_cap = 0;
    }
}

/* ---- the exchange's answer (bg_downstream_t) ---------------------------------------------- */

/* Whether a (mixed-case) name is connection-specific (RFC 9113 8.2.2): dispatched on length so a
 * response head costs one comparison per field, not seven. */
static bool connection_specific(const char *n, size_t len)
{
    switch (len) {
    case 2:
        return bg_span_ieq(n, len, "te");
    case 7:
        return bg_span_ieq(n, len, "upgrade") || bg_span_ieq(n, len, "trailer");
    case 10:
        return bg_span_ieq(n, len, "connection") || bg_span_ieq(n, len, "keep-alive");
    case 16:
        return bg_span_ieq(n, len, "proxy-connection");
    case 17:
        return bg_span_ieq(n, len, "transfer-encoding");
    default:
        return false;
    }
}

/* Decimal digits of v at p (room for 20); returns the length. */
static size_t put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* Fields whose values differ on every response (or must not be kept by a shared HPACK state):
 * sent as literals never indexed, so they do not churn the encoder's dynamic table (each new
 * entry there evicts reusable ones and lengthens every later search of that name's bucket).
 * One x-transfer-id in 256 is indexed, so that its name stays in the table and the others
 * refer to it instead of spelling it out. */
static bool no_index(bg_h2_t *s, const char *lname, size_t len)
{
    if (len == 13 && memcmp(lname, "x-transfer-id", 13) == 0)
        return (s->tid_sent++ & 255) != 0;
    return len == 10 && memcmp(lname, "set-cookie", 10) == 0;
}

/* The response head goes out as given, names lowercased and connection-specific fields dropped.
 * Names and values are copied once into the stream's own buffer (hb, free once the request head
 * moved to the exchange), which lives until the stream is freed — after nghttp2 serialized the
 * HEADERS or dropped it with the stream — so nghttp2 takes them without another copy.
 * A head with no body after it is the whole answer (HEADERS with END_STREAM): like the
 * HTTP/1.1 codec's, it is counted now and held until dn_end, which the exchange calls once the
 * answer is complete (a vendor's, at its stream's end), under fsync: always once the record that
 * counts it is on disk.
 * Nothing sends it earlier (the codec offers no flush: any other head is submitted here). */
static void dn_head(bg_exchange_t *ex, int status, const bg_header_t *h, size_t n, int64_t body_len, bool bodiless)
{
    h2_stream_t *st = ex->down_ctx;
    bg_h2_t *s = st->s;
    if (st->closed || st->resp_submitted)
        return;
    if (n > BG_H1_MAX_HEADERS + 1)
        n = BG_H1_MAX_HEADERS + 1;
    nghttp2_nv nva[BG_H1_MAX_HEADERS + 3];
    size_t need = 4 + 21;
    for (size_t i = 0; i < n; i++)
        need += h[i].name_len + h[i].value_len;
    bg_buf_reset(&st->hb);
    char *base = bg_buf_space(&st->hb, need), *p = base;
    const uint8_t nocopy = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    size_t k = 0;
    size_t sl = put_u64(p, (uint64_t)(status > 0 && status < 1000 ? status : 500));
    nva[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)p, 7, sl, nocopy};
    p += sl;
    for (size_t i = 0; i < n; i++) {
        size_t nl = h[i].name_len, vl = h[i].value_len;
        if (nl == 0 || connection_specific(h[i].name, nl))
            continue;
        char *name = p;
        for (size_t j = 0; j < nl; j++) {
            char c = h[i].name[j];
            name[j] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        p += nl;
        memcpy(p, h[i].value, vl);
        uint8_t flags = nocopy | (no_index(s, name, nl) ? NGHTTP2_NV_FLAG_NO_INDEX : 0);
        nva[k++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)p, nl, vl, flags};
        p += vl;
    }
    if (!bodiless && body_len >= 0) {
        size_t ll = put_u64(p, (uint64_t)body_len);
        nva[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)p, 14, ll, nocopy};
        p += ll;
    }
    bg_buf_commit(&st->hb, (size_t)(p - base));
    ex->bytes_out += nv_bytes(nva, k);
    st->bodiless = bodiless;
    st->resp_submitted = true;
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = read_cb};
    bool no_body = bodiless || body_len == 0;
    st->has_provider = !no_body;
    if (no_body) {
        st->out_eof = true;
        st->held = malloc(k * sizeof *nva);
        if (!st->held)
            abort();
        memcpy(st->held, nva, k * sizeof *nva);
        st->nheld = k;
        return;
    }
    int rv = nghttp2_submit_response(s->session, st->id, nva, k, &prd);
    if (rv < 0)
        bg_log_debug("http2 response not submitted", "caller", s->caller, "error", nghttp2_strerror(rv));
    schedule(s);
}

static void dn_body(bg_exchange_t *ex, const char *p, size_t n)
{
    h2_stream_t *st = ex->down_ctx;
    if (st->closed || st->bodiless || st->out_eof || n == 0)
        return;
    bg_buf_append(&st->out, p, n);
    nghttp2_session_resume_data(st->s->session, st->id);
    schedule(st->s);
}

/* The head dn_head held (no body follows): out now, as HEADERS with END_STREAM, or, with
 * trailers to follow it (dn_trailers), with the data provider, whose end sends them (read_cb). */
static void submit_held(h2_stream_t *st)
{
    if (!st->held)
        return;
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = read_cb};
    st->has_provider = st->tr_out.len > 0;
    int rv = nghttp2_submit_response(st->s->session, st->id, st->held, st->nheld, st->has_provider ? &prd : NULL);
    if (rv < 0)
        bg_log_debug("http2 response not submitted", "caller", st->s->caller, "error", nghttp2_strerror(rv));
    free(st->held);
    st->held = NULL;
    schedule(st->s);
}

static void dn_end(bg_exchange_t *ex)
{
    h2_stream_t *st = ex->down_ctx;
    bg_h2_t *s = st->s;
    st->ex_ended = true;
    if (st->closed) {
        stream_release_exchange(st);
        stream_free(st);
        schedule(s);
        return;
    }
    if (!st->resp_submitted) {
        /* Nothing was answered (cannot happen with the exchange's paths): reset. */
        nghttp2_submit_rst_stream(s->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    }
    submit_held(st);
    st->out_eof = true;
    if (st->unconsumed) {
        /* Held back while paused and now dropped with the exchange: reopen the stream's window
         * (the connection's was reopened as they came). */
        nghttp2_session_consume_stream(s->session, st->id, st->unconsumed);
        st->unconsumed = 0;
    }
    nghttp2_session_resume_data(s->session, st->id);
    schedule(s);
}

/* Response trailers: sent after the DATA when the response has a data provider, or behind a
 * held head that is not bodiless (content-length: 0: HTTP/2 carries trailers whatever the
 * length); a HEAD, 204 or 304 answer ends its stream with its head, so they are dropped. */
static bool dn_trailers_fit(bg_exchange_t *ex)
{
    h2_stream_t *st = ex->down_ctx;
    return !st->closed && ((st->has_provider && !st->out_eof) || (st->held && !st->bodiless));
}

static void dn_trailers(bg_exchange_t *ex, const bg_header_t *f, size_t n)
{
    h2_stream_t *st = ex->down_ctx;
    if (!dn_trailers_fit(ex))
        return;
    bg_buf_reset(&st->tr_out);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < f[i].name_len; j++) {
            char c = f[i].name[j];
            c = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            bg_buf_append(&st->tr_out, &c, 1);
        }
        bg_buf_append(&st->tr_out, ": ", 2);
        bg_buf_append(&st->tr_out, f[i].value, f[i].value_len);
        bg_buf_append(&st->tr_out, "\r\n", 2);
    }
}

static bool dn_retract(bg_exchange_t *ex)
{
    h2_stream_t *st = ex->down_ctx;
    return !st->closed && held_take_back(st);
}

static void dn_abort(bg_exchange_t *ex)
{
    h2_stream_t *st = ex->down_ctx;
    bg_h2_t *s = st->s;
    st->ex = NULL;
    bg_exchange_cancel(ex);
    if (st->closed) {
        stream_free(st);
    } else {
        nghttp2_submit_rst_stream(s->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    }
    schedule(s);
}

static size_t dn_pending(bg_exchange_t *ex)
{
    h2_stream_t *st = ex->down_ctx;
    return stream_buffered(st) + st->s->stream->write_pending;
}

static void dn_pause(bg_exchange_t *ex) { ((h2_stream_t *)ex->down_ctx)->paused = true; }

static void dn_resume(bg_exchange_t *ex)
{
    h2_stream_t *st = ex->down_ctx;
    st->paused = false;
    if (st->unconsumed && !st->closed) {
        nghttp2_session_consume_stream(st->s->session, st->id, st->unconsumed);
        st->unconsumed = 0;
        schedule(st->s); /* WINDOW_UPDATE */
    }
}

static const bg_downstream_t h2_downstream = {
    .head = dn_head,
    .body = dn_body,
    .end = dn_end,
    .abort = dn_abort,
    .trailers = dn_trailers,
    .trailers_fit = dn_trailers_fit,
    .retract = dn_retract,
    .pending = dn_pending,
    .pause_request = dn_pause,
    .resume_request = dn_resume,
};

/* ---- the session -------------------------------------------------------------------------- */

static void free_cb(uv_handle_t *h) { free(h->data); }

bg_h2_t *bg_h2_create(bg_worker_t *w, bg_stream_t *stream, const char *caller, const char *client_ip, bool tls,
                      int li, int lslot)
{
    bg_h2_t *s = calloc(1, sizeof *s);
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    if (!s)
        abort();
    s->w = w;
    s->stream = stream;
    s->tls = tls;
    s->li = li;
    s->lslot = lslot;
    snprintf(s->caller, sizeof s->caller, "%s", caller);
    snprintf(s->client_ip, sizeof s->client_ip, "%s", client_ip);
    s->window_start = uv_now(&w->loop);
    const bg_config_t *cfg = w->rt->cfg;
    s->max_header_list = cfg->limits.max_header_size ? cfg->limits.max_header_size : 16384;
    if (s->max_header_list > H2_HARD_MAX_HEADER_LIST)
        s->max_header_list = H2_HARD_MAX_HEADER_LIST;
    s->max_headers = cfg->limits.max_headers && cfg->limits.max_headers < BG_H1_MAX_HEADERS ? cfg->limits.max_headers
                                                                                          : BG_H1_MAX_HEADERS;
    bg_buf_init(&s->wbuf);
    uv_check_init(&w->loop, &s->check);
    s->check.data = s;

    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close_cb);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame_recv_cb);

    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 100);            /* SETTINGS/PING acks a client does not read */
    nghttp2_option_set_max_settings(opt, 32);                 /* entries per SETTINGS frame */
    nghttp2_option_set_max_continuations(opt, 8);             /* CONTINUATION flood (CVE-2024-28182) */
    nghttp2_option_set_stream_reset_rate_limit(opt, H2_MAX_RESETS, H2_MAX_RESETS / 10); /* backstop */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096); /* our encoder's memory */
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    if (nghttp2_session_server_new2(&s->session, cbs, s, opt) != 0)
        goto fail;
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    cbs = NULL;
    opt = NULL;

    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, s->max_header_list},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096},
        /* RFC 9218 instead of the RFC 7540 dependency tree: its scheduler is cheaper per frame. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_submit_settings(s->session, NGHTTP2_FLAG_NONE, iv, BG_ARRAY_SIZE(iv)) != 0)
        goto fail;
    /* The connection window grows from the protocol's 64 KiB to our bound. */
    if (nghttp2_session_set_local_window_size(s->session, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
        goto fail;
    flush(s);
    return s;
fail:
    if (cbs)
        nghttp2_session_callbacks_del(cbs);
    if (opt)
        nghttp2_option_del(opt);
    if (s->session)
        nghttp2_session_del(s->session);
    bg_buf_dispose(&s->wbuf);
    uv_close((uv_handle_t *)&s->check, free_cb);
    return NULL;
}

int bg_h2_feed(bg_h2_t *s, const char *p, size_t n)
{
    if (s->dead) {
        flush(s);
        return -1;
    }
    s->depth++;
    ssize_t r = nghttp2_session_mem_recv(s->session, (const uint8_t *)p, n);
    s->depth--;
    if (r < 0) {
        bool flood = r == NGHTTP2_ERR_FLOODED || r == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ||
                     r == NGHTTP2_ERR_TOO_MANY_SETTINGS;
        if (flood)
            bg_log_warn("http2 flood: closing connection", "caller", s->caller, "kind", nghttp2_strerror((int)r));
        else
            bg_log_debug("http2 protocol error", "caller", s->caller, "error", nghttp2_strerror((int)r));
        /* A fatal error queues nothing by itself: say why before the close. */
        nghttp2_session_terminate_session(s->session, flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
        s->dead = true;
    }
    start_pending(s);
    flush(s);
    return s->dead ? -1 : 0;
}

void bg_h2_drained(bg_h2_t *s)
{
    flush(s);
    for (h2_stream_t *st = s->streams; st; st = st->next)
        if (st->ex && !st->ex_ended && stream_buffered(st) < H2_WRITE_HIGH / 2)
            bg_exchange_drained(st->ex);
}

void bg_h2_shutdown(bg_h2_t *s)
{
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    /* A notice first (GOAWAY with the maximum id), then a PING: its ACK proves the client saw
     * the notice, and the final GOAWAY names the last stream we took (on_frame_recv_cb). */
    nghttp2_submit_shutdown_notice(s->session);
    uint8_t data[8] = {'b', 'g', 'd', 'r', 'a', 'i', 'n', 0};
    nghttp2_submit_ping(s->session, NGHTTP2_FLAG_NONE, data);
    flush(s);
}

void bg_h2_goodbye(bg_h2_t *s)
{
    if (s->dead || s->goaway_final)
        return;
    s->shutting_down = true;
    s->goaway_final = true; /* streams opened after this are refused */
    nghttp2_submit_goaway(s->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->session),
                          NGHTTP2_NO_ERROR, NULL, 0);
    flush(s);
}

bool bg_h2_done(const bg_h2_t *s) { return session_done(s); }

void bg_h2_destroy(bg_h2_t *s)
{
    if (!s)
        return;
    while (s->streams) {
        h2_stream_t *st = s->streams;
        if (!st->closed)
            nghttp2_session_set_stream_user_data(s->session, st->id, NULL);
        stream_release_exchange(st);
        stream_free(st);
    }
    nghttp2_session_del(s->session);
    s->session = NULL;
    bg_buf_dispose(&s->wbuf);
    free(s->pending);
    s->pending = NULL;
    uv_close((uv_handle_t *)&s->check, free_cb); /* s is freed once libuv lets go of the handle */
}

bool bg_h2_busy(const bg_h2_t *s) { return s->nstreams > 0; }

void bg_h2_expire(bg_h2_t *s, uint64_t body_timeout_ms)
{
    uint64_t now = uv_now(&s->w->loop), idle_ms = s->w->rt->cfg->limits.idle_timeout_ms;
    for (h2_stream_t *st = s->streams, *next; st; st = next) {
        next = st->next;
        if (!st->ex || st->ex_ended || st->end_stream || st->closed)
            continue;
        if (now - st->started >= body_timeout_ms)
            bg_exchange_timeout(st->ex); /* 408 on this stream only */
        /* Streaming on to the vendor, which waits for the rest: a client silent for idle_timeout
         * (not held back by us) gets a 408, or a reset once its answer began. */
        if (st->ex && !st->ex_ended && !st->paused && now - st->last_in >= idle_ms)
            bg_exchange_client_idle(st->ex);
    }
    schedule(s);
}
