/*
 * conn.c — the HTTP/1.1 codec on a client connection: reads bytes, parses request heads
 * strictly (http1.h), decodes request body framing and hands everything to the exchange
 * (exchange.h), and writes the exchange's answer with HTTP/1.1 framing. Requests are
 * handled one at a time; pipelined ones wait in the input buffer and are answered in order.
 * Timers: the header deadline runs from a head's first byte (slowloris gains nothing), the
 * idle timeout between requests and between body reads. One worker thread owns it.
 */
#include "deadline.h"
#include "exchange.h"
#include "h2.h"
#include "log.h"
#include "stream.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define BG_PIPELINE_MAX 65536 /* input held while a response is in progress */

enum { CS_HEAD, CS_EXCHANGE, CS_CLOSING };

struct bg_conn {
    bg_stream_t stream;
    bg_deadline_t timer; /* header, idle, body and linger timeouts (one at a time) */
    int open_handles;
    bg_worker_t *w;
    int li;
    bool tls;
    bg_buf_t in;
    int state;
    bool close_after;     /* close once the current answer is out */
    bool closing;
    bool timer_is_header;
    bool peer_eof;        /* the client half-closed: answer what is buffered, then close */
    bool in_process;      /* re-entrancy guard for process() */
    bool kick;            /* process() was asked to run again while running */
    char peer[64];
    char client_ip[48];
    char subject[256];
    bg_conn_t *prev, *next;

    bg_exchange_t *ex;
    bool req_chunked;
    int64_t req_remaining;
    bg_h1_chunked_t req_dec;
    bg_buf_t req_trailers;  /* the chunked request's trailer section (req_dec keeps it here) */
    bool req_body_done;
    bool req_paused;
    uint64_t body_deadline; /* uv_now by which the body part held before the decision must be in */
    bool resp_chunked_out;
    bool resp_has_body;
    bool answer_begun;    /* the current answer's head was given (dn_head) and its end not yet:
                           * bytes of it may be out, so a failure now closes, never answers */
    bg_buf_t head_out;    /* a response head held to go out with the first body bytes (one write) */
    bool head_held;       /* head_out is a whole answer (no body after it): it leaves only at dn_end */
    int caller_bucket;    /* index into server->caller_conns, -1 when not counted */
    int lslot;            /* the listener's limits slot, -1 none */
    bool lslot_counted;   /* counted in the slot's open connections */
    bg_h2_t *h2;          /* non-NULL: this connection speaks HTTP/2 (ALPN h2 or the h2c preface) */
};

static void process(bg_conn_t *c);
static const bg_downstream_t h1_downstream;

/* ---- lifetime ---------------------------------------------------------------------------- */

static void conn_free(bg_conn_t *c)
{
    bg_buf_dispose_secure(&c->in);
    bg_buf_dispose(&c->head_out);
    bg_buf_dispose_secure(&c->req_trailers);
    free(c);
}

static void handle_closed(uv_handle_t *h)
{
    bg_conn_t *c = h->data;
    if (--c->open_handles == 0)
        conn_free(c);
}

static void stream_closed(bg_stream_t *s)
{
    bg_conn_t *c = s->data;
    if (--c->open_handles == 0)
        conn_free(c);
}

/* The answer's head held whole in head_out (no body after it) never leaves: its bytes come off
 * the exchange's count. Returns whether there was one. */
static bool head_take_back(bg_conn_t *c)
{
    if (!c->head_held || !c->ex)
        return false;
    c->ex->bytes_out -= c->head_out.len;
    bg_buf_reset(&c->head_out);
    c->head_held = false;
    c->answer_begun = false;
    return true;
}

static void conn_close(bg_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->state = CS_CLOSING;
    bg_worker_t *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    bg_metrics_conn(w->server->metrics, w->id, -1);
    if (c->caller_bucket >= 0)
        atomic_fetch_sub_explicit(&w->server->caller_conns[c->caller_bucket], 1, memory_order_relaxed);
    if (c->lslot_counted)
        atomic_fetch_sub_explicit(&w->server->lslots[c->lslot].conns, 1, memory_order_relaxed);
    if (c->ex) {
        head_take_back(c); /* the client leaves before it: nothing of the answer went out */
        bg_exchange_t *ex = c->ex;
        c->ex = NULL;
        bg_exchange_cancel(ex);
    }
    if (c->h2) {
        bg_h2_destroy(c->h2);
        c->h2 = NULL;
    }
    bg_deadline_close(&c->timer, handle_closed); /* disarms it too */
    bg_stream_close(&c->stream);
}

static void linger_cb(uv_timer_t *t) { conn_close(t->data); }

/* Close after the queued answer: shut the write side down, then keep reading (and
 * discarding) for a moment so unread request bytes do not turn into a reset that destroys
 * the answer before the client has read it (lingering close). */
static void begin_close(bg_conn_t *c)
{
    if (c->closing || c->state == CS_CLOSING)
        return;
    c->state = CS_CLOSING;
    bg_stream_shutdown(&c->stream);
    if (c->stream.eof) {
        if (c->stream.write_pending == 0)
            conn_close(c);
        return; /* on_drain closes */
    }
    bg_stream_read_start(&c->stream);
    bg_deadline_start(&c->timer, linger_cb, 2000);
}

/* ---- timers ------------------------------------------------------------------------------ */

static void timer_cb(uv_timer_t *t)
{
    bg_conn_t *c = t->data;
    if (c->h2 && bg_h2_busy(c->h2)) {
        /* Streams are waiting on vendors (each bounded by the upstream timeouts) or on their
         * bodies (bounded here): not idle. Look again in a second. */
        bg_h2_expire(c->h2, c->w->rt->cfg->limits.body_timeout_ms);
        bg_deadline_start(&c->timer, timer_cb, 1000);
        return;
    }
    /* The client owes body bytes and nothing was answered: its silence gets a 408, whether the
     * gateway holds the body for the decision (the body deadline) or streams it on to a vendor
     * that waits for the rest (idle_timeout between reads; not while the gateway paused it). */
    bool waiting_body = c->state == CS_EXCHANGE && c->ex && !c->answer_begun &&
                        (c->ex->state == BG_EX_BODY ||
                         (c->ex->state == BG_EX_FORWARD && !c->req_body_done && !c->req_paused));
    if ((c->state == CS_HEAD && c->in.len > 0) || waiting_body) {
        /* The request is incomplete and nothing was answered yet: say so before closing. A routed
         * exchange is recorded as 408: the answer names its record, which counts the answer's bytes. */
        bg_exchange_t *ex = waiting_body ? c->ex : NULL;
        bool tid = ex && ex->vendor;
        char r408[160];
        int n = snprintf(r408, sizeof r408, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n%s%s%sConnection: close\r\n\r\n",
                         tid ? "X-Transfer-Id: " : "", tid ? ex->id : "", tid ? "\r\n" : "");
        bg_stream_write(&c->stream, r408, (size_t)n);
        bg_metrics_request(c->w->server->metrics, c->w->id, 408);
        if (ex) {
            c->ex = NULL;
            ex->status = 408;
            ex->bytes_out += (uint64_t)n;
            bg_exchange_cancel(ex); /* recorded as 408 */
        }
        /* The client may still be sending: a lingering close lets it read the 408 first. */
        c->in.len = 0;
        begin_close(c);
        return;
    }
    if (c->h2) {
        /* RFC 9113 9.1: say GOAWAY first, so a request sent just now is known not processed. */
        bg_h2_goodbye(c->h2);
        begin_close(c);
        return;
    }
    conn_close(c);
}

static void arm_idle(bg_conn_t *c)
{
    c->timer_is_header = false;
    bg_deadline_start(&c->timer, timer_cb, c->w->rt->cfg->limits.idle_timeout_ms);
}

static void arm_header(bg_conn_t *c)
{
    if (c->timer_is_header)
        return;
    c->timer_is_header = true;
    bg_deadline_start(&c->timer, timer_cb, c->w->rt->cfg->limits.header_timeout_ms);
}

/* ---- the exchange's answer (bg_downstream_t) --------------------------------------------- */

static void dn_head(bg_exchange_t *ex, int status, const bg_header_t *h, size_t n, int64_t body_len, bool bodiless)
{
    bg_conn_t *c = ex->down_ctx;
    c->answer_begun = true;
    if (!c->req_body_done || c->w->draining)
        c->close_after = true; /* the rest of the request is still on the wire, or we stop */
    bg_buf_t *b = &c->head_out;
    bg_buf_reset(b);
    if (status >= 100 && status <= 999) {
        char line[13] = "HTTP/1.1 000 ";
        line[9] = (char)('0' + status / 100), line[10] = (char)('0' + status / 10 % 10), line[11] = (char)('0' + status % 10);
        bg_buf_append(b, line, sizeof line);
    } else {
        bg_buf_printf(b, "HTTP/1.1 %d ", status);
    }
    bg_buf_puts(b, bg_h1_reason(status));
    bg_buf_append(b, "\r\n", 2);
    /* The field lines in one reservation, written with a cursor. */
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += h[i].name_len + h[i].value_len + 4;
    char *base = bg_buf_space(b, need), *p = base;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, h[i].name, h[i].name_len);
        p += h[i].name_len;
        *p++ = ':', *p++ = ' ';
        if (h[i].value_len)
            memcpy(p, h[i].value, h[i].value_len);
        p += h[i].value_len;
        *p++ = '\r', *p++ = '\n';
    }
    bg_buf_commit(b, (size_t)(p - base));
    c->resp_chunked_out = false;
    c->resp_has_body = !bodiless;
    if (!bodiless) {
        if (body_len >= 0) {
            bg_buf_append(b, "Content-Length: ", 16);
            bg_buf_append_u64(b, (uint64_t)body_len);
            bg_buf_append(b, "\r\n", 2);
        } else if (ex->req.minor_version >= 1) {
            c->resp_chunked_out = true, bg_buf_puts(b, "Transfer-Encoding: chunked\r\n");
        }
        else
            c->close_after = true; /* HTTP/1.0: the close delimits the body */
    }
    if (c->close_after)
        bg_buf_puts(b, "Connection: close\r\n");
    bg_buf_append(b, "\r\n", 2);
    ex->bytes_out += b->len;
    /* Held until the first body bytes or the end: head and body leave in one write. A head with
     * no body after it is the whole answer and leaves only at dn_end (exchange.h). */
    c->head_held = bodiless || body_len == 0;
}

static void flush_head(bg_conn_t *c)
{
    if (c->head_out.len) {
        bg_stream_write(&c->stream, c->head_out.data, c->head_out.len);
        bg_buf_reset(&c->head_out);
    }
    c->head_held = false;
}

static void dn_flush(bg_exchange_t *ex) { flush_head(ex->down_ctx); }

static void dn_body(bg_exchange_t *ex, const char *p, size_t n)
{
    bg_conn_t *c = ex->down_ctx;
    if (!c->resp_has_body || n == 0)
        return;
    uv_buf_t bufs[4];
    size_t nb = 0;
    char hdr[24];
    if (c->head_out.len)
        bufs[nb++] = uv_buf_init(c->head_out.data, (unsigned)c->head_out.len);
    if (c->resp_chunked_out) {
        int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
        bufs[nb++] = uv_buf_init(hdr, (unsigned)hl);
        bufs[nb++] = uv_buf_init((char *)p, (unsigned)n);
        bufs[nb++] = uv_buf_init("\r\n", 2);
    } else {
        bufs[nb++] = uv_buf_init((char *)p, (unsigned)n);
    }
    bg_stream_writev(&c->stream, bufs, nb);
    bg_buf_reset(&c->head_out);
    c->head_held = false;
    /* A client that stops reading its answer gets idle_timeout to start again. */
    if (c->stream.write_pending > (1u << 20) && !bg_deadline_armed(&c->timer))
        arm_idle(c);
}

static void dn_end(bg_exchange_t *ex)
{
    bg_conn_t *c = ex->down_ctx;
    if (c->resp_chunked_out)
        bg_buf_append(&c->head_out, "0\r\n\r\n", 5);
    flush_head(c);
    c->resp_chunked_out = false;
    c->answer_begun = false; /* complete: what comes next is another request's */
    if (!c->req_body_done)
        c->close_after = true;
    c->ex = NULL;
    bg_exchange_destroy(ex);
    c->state = CS_HEAD;
    if (c->close_after || (c->peer_eof && c->in.len == 0)) {
        begin_close(c);
        return;
    }
    c->req_paused = false;
    arm_idle(c);
    bg_stream_read_start(&c->stream);
    if (c->in.len)
        process(c);
}

/* The response's trailers go in the last chunk when the answer is chunked; otherwise (a length
 * was declared, or HTTP/1.0) there is nowhere to put them and they are dropped (RFC 9110 6.5.1). */
static bool dn_trailers_fit(bg_exchange_t *ex)
{
    return ((bg_conn_t *)ex->down_ctx)->resp_chunked_out;
}

static void dn_trailers(bg_exchange_t *ex, const bg_header_t *f, size_t n)
{
    bg_conn_t *c = ex->down_ctx;
    if (!dn_trailers_fit(ex))
        return;
    bg_buf_t *b = &c->head_out;
    bg_buf_append(b, "0\r\n", 3);
    for (size_t i = 0; i < n; i++) {
        bg_buf_append(b, f[i].name, f[i].name_len);
        bg_buf_append(b, ": ", 2);
        bg_buf_append(b, f[i].value, f[i].value_len);
        bg_buf_append(b, "\r\n", 2);
    }
    bg_buf_append(b, "\r\n", 2);
    c->resp_chunked_out = false; /* the last chunk is written: dn_end adds none */
}

static bool dn_retract(bg_exchange_t *ex) { return head_take_back(ex->down_ctx); }

static void dn_abort(bg_exchange_t *ex)
{
    bg_conn_t *c = ex->down_ctx;
    bg_buf_reset(&c->head_out); /* a broken answer: nothing more goes out */
    c->head_held = false;
    c->ex = NULL;
    bg_exchange_cancel(ex);
    conn_close(c);
}

static size_t dn_pending(bg_exchange_t *ex)
{
    bg_conn_t *c = ex->down_ctx;
    return c->stream.write_pending + c->head_out.len;
}

static void dn_pause(bg_exchange_t *ex)
{
    bg_conn_t *c = ex->down_ctx;
    c->req_paused = true;
    bg_stream_read_stop(&c->stream);
}

static void dn_resume(bg_exchange_t *ex)
{
    bg_conn_t *c = ex->down_ctx;
    c->req_paused = false;
    bg_stream_read_start(&c->stream);
    /* Even with nothing buffered: step() restarts the client's clock for the rest of the body
     * (a deadline armed before the pause is stale; none at all left a stalled client to the
     * vendor's response timeout, which blamed the vendor). */
    process(c);
}

static bool dn_adopt_body(bg_exchange_t *ex, const char *p, size_t n, char **buf, size_t *cap)
{
    bg_conn_t *c = ex->down_ctx;
    return bg_stream_read_take(&c->stream, p, n, buf, cap);
}

static const bg_downstream_t h1_downstream = {
    .head = dn_head,
    .body = dn_body,
    .end = dn_end,
    .abort = dn_abort,
    .flush = dn_flush,
    .trailers = dn_trailers,
    .trailers_fit = dn_trailers_fit,
    .retract = dn_retract,
    .pending = dn_pending,
    .pause_request = dn_pause,
    .resume_request = dn_resume,
    .adopt_body = dn_adopt_body,
};

/* ---- requests ---------------------------------------------------------------------------- */

/* The request could not be parsed: answer and close (no exchange, no record). Once an answer
 * began (its head, maybe body bytes, may be out) a status line now would be read as part of its
 * body: the connection is broken off instead, and the client sees a truncated answer. */
static void reject(bg_conn_t *c, int status, const char *why)
{
    if (c->answer_begun) {
        bg_log_debug("request failed after its answer began: closing", "peer", c->peer, "why", why);
        conn_close(c);
        return;
    }
    bg_log_debug("request rejected", "peer", c->peer, "status", bg_h1_reason(status), "why", why);
    bg_buf_t body;
    bg_buf_init(&body);
    bg_buf_printf(&body, "{\"type\":\"https://bordergate.dev/problems/bad-request\",\"title\":\"%s\",\"status\":%d,\"detail\":\"",
                  bg_h1_reason(status), status);
    bg_buf_json_escape(&body, why, strlen(why));
    bg_buf_puts(&body, "\"}");
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                  status, bg_h1_reason(status), body.len);
    bg_buf_append(&b, body.data, body.len);
    bg_stream_write(&c->stream, b.data, b.len);
    bg_buf_dispose(&b);
    bg_buf_dispose(&body);
    bg_metrics_request(c->w->server->metrics, c->w->id, status);
    c->in.len = 0;
    begin_close(c);
}

/* A chunked request's trailer section is kept for the exchange within limits.max_header_size
 * (the exchange counts it with the head); past it, it is read to its end but not kept, and the
 * exchange is told it was too large, as HTTP/2 tells it of a trailer block over the header
 * list limit. The buffer grows only when a section comes. */
static void req_trailers_capture(bg_conn_t *c)
{
    bg_buf_reset(&c->req_trailers);
    bg_exchange_trailers_capture(&c->req_dec, &c->req_trailers, c->w->rt->cfg->limits.max_header_size);
}

static void feed_body(bg_conn_t *c, size_t skip);

/* A pointer into the parsed head at `from` moved to the same byte of its copy at `to`. */
static const char *rebase(const char *p, const char *from, size_t len, const char *to)
{
    uintptr_t u = (uintptr_t)p, f = (uintptr_t)from;
    return p && u >= f && u - f <= len ? to + (u - f) : p;
}

/* The request parsed from c->in, re-pointed into the exchange's copy of the head (instead of
 * parsing the copy again); only the headers in use are copied. */
static void request_move(bg_h1_request_t *dst, const bg_h1_request_t *src, const char *from, size_t len, const char *to)
{
    memcpy(dst, src, offsetof(bg_h1_request_t, headers));
    memcpy(&dst->nheaders, &src->nheaders, sizeof *dst - offsetof(bg_h1_request_t, nheaders));
    dst->method = rebase(src->method, from, len, to);
    dst->target = rebase(src->target, from, len, to);
    dst->host = rebase(src->host, from, len, to);
    dst->path = rebase(src->path, from, len, to);
    for (size_t i = 0; i < src->nheaders; i++) {
        bg_header_t *h = &dst->headers[i];
        *h = src->headers[i];
        h->name = rebase(h->name, from, len, to);
        h->value = rebase(h->value, from, len, to);
    }
}

/* Parse a request head at p under the config's limits (bg_h1_parse_request's result). */
static int parse_head(const bg_conn_t *c, const char *p, size_t n, bg_h1_request_t *req)
{
    const bg_config_t *cfg = c->w->rt->cfg;
    bg_h1_limits_t lim = {cfg->limits.max_header_size, cfg->limits.max_headers, cfg->limits.max_uri};
    return bg_h1_parse_request(p, n, &lim, req);
}

/* Start the exchange for a head parsed from `src` (c->in, or the read buffer itself); `more`
 * bytes follow the head in src. Neither feeds the body nor consumes the head: the caller does,
 * from wherever the bytes are. */
static void start_request(bg_conn_t *c, const bg_h1_request_t *parsed, const char *src, size_t head_len, size_t more)
{
    const bg_config_t *cfg = c->w->rt->cfg;
    bg_exchange_t *ex = bg_exchange_create(c->w, "http/1.1", c->subject[0] ? c->subject : c->peer, &h1_downstream, c);
    c->ex = ex;
    c->state = CS_EXCHANGE;
    c->answer_begun = false;
    bg_str_copy(ex->client_ip, sizeof ex->client_ip, c->client_ip, SIZE_MAX);
    ex->client_tls = c->tls;
    ex->listener = c->li;
    ex->lslot = c->lslot;
    bg_exchange_set_head(ex, src, head_len);
    ex->bytes_in = head_len;
    request_move(&ex->req, parsed, src, head_len, ex->head);
    const bg_h1_request_t *req = &ex->req;
    c->timer_is_header = false;
    bg_deadline_stop(&c->timer);
    c->req_chunked = req->chunked;
    c->req_remaining = req->chunked ? -1 : (req->content_length > 0 ? req->content_length : 0);
    c->req_body_done = !req->chunked && c->req_remaining == 0;
    c->req_paused = false;
    c->body_deadline = uv_now(&c->w->loop) + cfg->limits.body_timeout_ms;
    bg_h1_chunked_init(&c->req_dec);
    if (req->chunked)
        req_trailers_capture(c);
    if (!req->keep_alive || c->w->draining)
        c->close_after = true;
    bool expect = req->expect_continue && !c->req_body_done;
    bg_exchange_start(ex);
    /* Still waiting for the body (routed, within limits) and none of it came yet: ask for it.
     * Not once a final answer began (a 413 whose last byte waits for its record, fsync: always):
     * the interim line would land inside that answer's body. */
    if (c->ex == ex && expect && more == 0 && !c->answer_begun) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        bg_stream_write(&c->stream, cont, sizeof cont - 1);
        /* An interim response the client got: in its record's bytes and in the 1xx count. */
        ex->bytes_out += sizeof cont - 1;
        bg_metrics_request(c->w->server->metrics, c->w->id, 100);
    }
}

/* Hand up to n bytes of a Content-Length body at p to the exchange; returns how many it took
 * (fewer when the body ends inside p, the exchange pauses the request or goes away). */
static size_t feed_span(bg_conn_t *c, const char *p, size_t n)
{
    bg_exchange_t *ex = c->ex;
    if (!ex || c->req_body_done || c->req_paused || c->req_chunked || n == 0)
        return 0;
    size_t take = n < (uint64_t)c->req_remaining ? n : (size_t)c->req_remaining;
    c->req_remaining -= (int64_t)take;
    if (c->req_remaining == 0)
        c->req_body_done = true;
    /* The exchange may end inside the call; c stays valid (freed only in its close callback). */
    bg_exchange_body(ex, p, take);
    if (c->req_body_done && c->ex == ex)
        bg_exchange_body_end(ex);
    return take;
}

/* Feed buffered request body bytes to the exchange while it takes them. The first `skip` bytes of
 * c->in are already used (a request head): dropped with the first body bytes taken. */
static void feed_body(bg_conn_t *c, size_t skip)
{
    if (skip && c->req_chunked) {
        bg_buf_consume(&c->in, skip);
        skip = 0;
    }
    while (c->ex && !c->req_body_done && !c->req_paused && c->in.len > skip) {
        bg_exchange_t *ex = c->ex;
        if (c->req_chunked) {
            size_t consumed = 0, outlen = 0;
            bool was_over = c->req_dec.trailers_over;
            if (bg_h1_chunked_decode(&c->req_dec, c->in.data, c->in.len, &consumed, &outlen) < 0) {
                if (c->req_dec.trailers_over && !was_over) {
                    /* Too large to read to its end: the exchange answers 431 if it still can. */
                    bg_exchange_trailers(ex, NULL, 0, true);
                    if (c->ex != ex)
                        return;
                }
                c->ex = NULL;
                if (!c->answer_begun)
                    ex->status = 400; /* the answer reject() gives: recorded as such, like a 408 */
                bg_exchange_cancel(ex);
                reject(c, 400, "malformed chunked body");
                return;
            }
            /* The decoded bytes sit at the front of the input: hand them over, then drop the input. */
            bool done = c->req_dec.done;
            if (outlen)
                bg_exchange_body(ex, c->in.data, outlen);
            bg_buf_consume(&c->in, consumed);
            if (c->ex == ex && c->req_dec.trailers_over && !was_over)
                bg_exchange_trailers(ex, NULL, 0, true); /* 431, or dropped after the decision */
            if (c->req_dec.trailers_full) {
                bg_exchange_trailers_room(&c->req_dec, &c->req_trailers);
                continue;
            }
            if (done) {
                c->req_body_done = true;
                if (c->ex == ex && c->req_dec.trailers_len && !c->req_dec.trailers_over)
                    bg_exchange_trailers(ex, c->req_dec.trailers, c->req_dec.trailers_len, false);
                if (c->ex == ex)
                    bg_exchange_body_end(ex);
            } else if (consumed == 0) {
                return;
            }
        } else {
            size_t n = feed_span(c, c->in.data + skip, c->in.len - skip);
            bg_buf_consume(&c->in, skip + n);
            skip = 0;
        }
    }
    if (skip)
        bg_buf_consume(&c->in, skip);
}

static void step(bg_conn_t *c)
{
    while (!c->closing && c->state != CS_CLOSING) {
        if (c->state == CS_HEAD) {
            if (c->in.len == 0) {
                if (c->close_after || c->peer_eof)
                    begin_close(c);
                return;
            }
            const bg_config_t *cfg = c->w->rt->cfg;
            bg_h1_request_t req;
            int r = parse_head(c, c->in.data, c->in.len, &req);
            if (r == BG_H1_PARTIAL) {
                if (c->in.len > cfg->limits.max_header_size)
                    reject(c, 431, "request header block too large");
                else if (c->peer_eof)
                    reject(c, 400, "incomplete request");
                else
                    arm_header(c);
                return;
            }
            if (r < 0) {
                reject(c, req.status ? req.status : 400, req.error ? req.error : "malformed request");
                return;
            }
            size_t head_len = (size_t)r;
            bool body_here = c->in.len > head_len;
            start_request(c, &req, c->in.data, head_len, c->in.len - head_len);
            /* The head stays at the front of c->in until the body that follows it in the same
             * read has been handed over: the body is not moved down first. */
            if (c->ex && !c->req_body_done && !c->req_paused && body_here)
                feed_body(c, head_len);
            else
                bg_buf_consume(&c->in, head_len);
            continue;
        }
        /* CS_EXCHANGE */
        if (!c->ex)
            return;
        if (!c->req_body_done) {
            if (c->req_paused || c->in.len == 0) {
                if (!c->req_paused) {
                    /* A slow body gets the idle timeout per read, and while the gateway still holds
                     * it for the decision, a deadline in all (slow POST gains nothing). */
                    arm_idle(c);
                    if (c->ex->state == BG_EX_BODY) {
                        uint64_t now = uv_now(&c->w->loop);
                        uint64_t left = c->body_deadline > now ? c->body_deadline - now : 1;
                        if (left < c->w->rt->cfg->limits.idle_timeout_ms)
                            bg_deadline_start(&c->timer, timer_cb, left);
                    }
                }
                return;
            }
            feed_body(c, 0);
            continue;
        }
        /* Pipelined input waits for the answer; stop reading when too much piles up. */
        if (c->in.len > BG_PIPELINE_MAX)
            bg_stream_read_stop(&c->stream);
        return;
    }
}

/* Nothing is buffered: take requests and Content-Length bodies straight from the read buffer
 * (the body's one copy is the exchange's held copy, or none when it streams on to the vendor).
 * Returns the bytes used; the caller buffers the rest (a partial or malformed head, a chunked
 * body, bytes past a pause or pipelined behind an answer in progress) and runs process(),
 * which handles them exactly as before. */
static size_t take_direct(bg_conn_t *c, const char *p, size_t n)
{
    size_t used = 0;
    c->in_process = true; /* an answer completing inside asks for process() again (kick) */
    while (used < n && !c->closing && c->state != CS_CLOSING) {
        if (c->state == CS_HEAD) {
            bg_h1_request_t req;
            int r = parse_head(c, p + used, n - used, &req);
            if (r <= 0)
                break;
            start_request(c, &req, p + used, (size_t)r, n - used - (size_t)r);
            used += (size_t)r;
            continue;
        }
        size_t k = c->state == CS_EXCHANGE ? feed_span(c, p + used, n - used) : 0;
        if (k == 0)
            break;
        used += k;
    }
    c->in_process = false;
    return used;
}

static void process(bg_conn_t *c)
{
    if (c->in_process) {
        c->kick = true;
        return;
    }
    c->in_process = true;
    do {
        c->kick = false;
        step(c);
    } while (c->kick && !c->closing);
    c->in_process = false;
}

/* ---- HTTP/2 hand-over ------------------------------------------------------------------- */

static void h2_check_done(bg_conn_t *c)
{
    /* Lingering even when all is written: the socket may still hold our last frames (a GOAWAY
     * with its error code), and closing it with client bytes unread makes the kernel reset the
     * connection and drop them. begin_close closes at once when the client is gone already. */
    if (c->h2 && bg_h2_done(c->h2))
        begin_close(c);
}

static void h2_feed(bg_conn_t *c, const char *p, size_t n)
{
    arm_idle(c); /* an HTTP/2 connection that stays silent for idle_timeout is closed */
    if (bg_h2_feed(c->h2, p, n) < 0) {
        begin_close(c);
        return;
    }
    if (bg_h2_busy(c->h2)) {
        /* A client that keeps the connection alive with other frames still gets its stalled
         * bodies timed out, and the timer looks again every second. */
        bg_h2_expire(c->h2, c->w->rt->cfg->limits.body_timeout_ms);
        bg_deadline_start(&c->timer, timer_cb, 1000);
    }
    h2_check_done(c);
}

static bool h2_start(bg_conn_t *c)
{
    c->h2 = bg_h2_create(c->w, &c->stream, c->subject[0] ? c->subject : c->peer, c->client_ip, c->tls, c->li, c->lslot);
    if (!c->h2) {
        conn_close(c);
        return false;
    }
    if (c->w->draining)
        bg_h2_shutdown(c->h2);
    return true;
}

/* ---- stream callbacks -------------------------------------------------------------------- */

static void on_open(bg_stream_t *s)
{
    bg_conn_t *c = s->data;
    if (c->tls)
        bg_stream_peer_subject(s, c->subject, sizeof c->subject);
    if (c->tls && strcmp(bg_stream_alpn(s), "h2") == 0)
        h2_start(c);
}

static void on_data(bg_stream_t *s, const char *p, size_t n)
{
    bg_conn_t *c = s->data;
    if (c->state == CS_CLOSING)
        return; /* lingering: discard */
    if (c->h2) {
        h2_feed(c, p, n);
        return;
    }
    bool preface = !c->tls && c->state == CS_HEAD && c->ex == NULL && c->in.len < BG_H2_PREFACE_LEN;
    if (preface && c->in.len == 0 && memcmp(p, BG_H2_PREFACE, n < BG_H2_PREFACE_LEN ? n : BG_H2_PREFACE_LEN) != 0)
        preface = false; /* the first bytes already rule HTTP/2 out: nothing to hold for it */
    if (preface) {
        /* h2c by prior knowledge: the preface cannot be an HTTP/1.1 request line ("PRI" is no
         * method we route), so the first bytes decide. */
        size_t have = c->in.len + n < BG_H2_PREFACE_LEN ? c->in.len + n : BG_H2_PREFACE_LEN;
        bg_buf_append(&c->in, p, n);
        if (memcmp(c->in.data, BG_H2_PREFACE, have) == 0) {
            if (have < BG_H2_PREFACE_LEN) {
                arm_header(c);
                return; /* not sure yet */
            }
            if (!h2_start(c))
                return;
            bg_buf_t in = c->in;
            bg_buf_init(&c->in);
            h2_feed(c, in.data, in.len);
            bg_buf_dispose(&in);
            return;
        }
        process(c); /* arms the header deadline if the head is still partial (below) */
        return;
    }
    if (c->in.len == 0 && !c->in_process) {
        size_t used = take_direct(c, p, n);
        p += used, n -= used;
    }
    if (n && !c->closing && c->state != CS_CLOSING)
        bg_buf_append(&c->in, p, n);
    /* No header deadline here: a head that came whole starts its exchange at once (which stops
     * the idle clock), and step() arms the deadline for one that is still partial. */
    process(c);
}

static void on_eof(bg_stream_t *s)
{
    bg_conn_t *c = s->data;
    c->peer_eof = true;
    if (c->h2) {
        conn_close(c); /* an HTTP/2 client that stops sending has left: cancel its streams */
        return;
    }
    if (c->state == CS_CLOSING) {
        if (c->stream.write_pending == 0)
            conn_close(c);
        return;
    }
    if (c->state == CS_HEAD) {
        process(c); /* answers a complete buffered request, rejects a partial one, or closes */
        return;
    }
    if (!c->req_body_done) {
        conn_close(c); /* the body will never be complete */
        return;
    }
    if (c->head_held && c->ex && !c->ex->recorded) {
        /* The whole answer is a head that waits for the vendor's stream to end, and nothing of
         * it went out. A client that closed never reads it, and its FIN looks the same as a
         * half-close: the exchange is cancelled (499, nothing sent), so that the record says
         * what the client saw. (Once recorded, under fsync: always, the head leaves as soon as
         * the record is durable: that answer was complete at the gateway.) */
        conn_close(c);
        return;
    }
    /* else: the answer is on its way; dn_end closes after it */
}

static void on_error(bg_stream_t *s, int err, const char *what)
{
    bg_conn_t *c = s->data;
    (void)err;
    if (strncmp(what, "tls", 3) == 0)
        bg_log_debug("client tls failed", "peer", c->peer, "error", what);
    conn_close(c);
}

static void on_drain(bg_stream_t *s)
{
    bg_conn_t *c = s->data;
    if (c->state == CS_CLOSING) {
        if (c->stream.eof)
            conn_close(c);
        return;
    }
    if (c->h2) {
        bg_h2_drained(c->h2);
        h2_check_done(c);
        return;
    }
    if (c->ex) {
        if (c->state == CS_EXCHANGE && c->req_body_done)
            bg_deadline_stop(&c->timer); /* reading again: the idle clock stops */
        bg_exchange_drained(c->ex);
    }
}

static const bg_stream_callbacks_t conn_callbacks = {
    .on_open = on_open,
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drain = on_drain,
    .on_closed = stream_closed,
};

void bg_conn_accept(bg_worker_t *w, int fd, const struct sockaddr_storage *peer, int li, int slot)
{
    const bg_config_t *cfg = w->rt->cfg;
    bg_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->w = w;
    c->li = li;
    c->tls = li >= 0 && (size_t)li < cfg->nlisten && cfg->listen[li].tls;
    bg_stream_init(&c->stream, &w->loop, &conn_callbacks, c);
    bg_deadline_init(&w->loop, &c->timer, c);
    c->open_handles = 2;
    c->caller_bucket = -1;
    c->lslot = slot;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    bg_metrics_conn(w->server->metrics, w->id, 1);
    SSL_CTX *ctx = c->tls ? w->rt->listen_ctx[li] : NULL;
    uint32_t per_worker = (cfg->limits.max_connections + w->server->nworkers - 1) / w->server->nworkers;
    if (bg_stream_accept(&c->stream, fd, ctx) < 0 || w->nconns > per_worker || w->draining) {
        conn_close(c);
        return;
    }
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        inet_ntop(AF_INET, &in->sin_addr, c->client_ip, sizeof c->client_ip);
        snprintf(c->peer, sizeof c->peer, "%s:%u", c->client_ip, ntohs(in->sin_port));
    } else if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
        inet_ntop(AF_INET6, &in6->sin6_addr, c->client_ip, sizeof c->client_ip);
        snprintf(c->peer, sizeof c->peer, "[%s]:%u", c->client_ip, ntohs(in6->sin6_port));
    }
    uint32_t lmax = li >= 0 && (size_t)li < cfg->nlisten ? cfg->listen[li].max_connections : 0;
    if (lmax && slot >= 0) {
        /* Counted across the workers in the listener's slot, so the bound is exact. */
        c->lslot_counted = true;
        if (atomic_fetch_add_explicit(&w->server->lslots[slot].conns, 1, memory_order_relaxed) >= lmax) {
            bg_log_debug("listener connection limit", "peer", c->peer);
            bg_metrics_limited(w->server->metrics, w->id, "listener", "connections");
            conn_close(c);
            return;
        }
    }
    if (cfg->limits.max_connections_per_caller) {
        /* One counter per hashed address, shared by the workers (SO_REUSEPORT spreads a caller's
         * connections over them); a collision can only make the limit stricter. */
        c->caller_bucket = bg_server_caller_bucket(c->client_ip);
        unsigned n = atomic_fetch_add_explicit(&w->server->caller_conns[c->caller_bucket], 1, memory_order_relaxed);
        if (n >= cfg->limits.max_connections_per_caller) {
            bg_log_debug("per-caller connection limit", "peer", c->peer);
            bg_metrics_limited(w->server->metrics, w->id, "caller", "connections");
            conn_close(c);
            return;
        }
    }
    arm_idle(c);
}

void bg_conn_drain(bg_conn_t *c)
{
    if (c->h2) {
        bg_h2_shutdown(c->h2);
        h2_check_done(c);
        return;
    }
    c->close_after = true;
    if (c->state == CS_HEAD && c->in.len == 0)
        conn_close(c);
}

bg_conn_t *bg_conn_next(bg_conn_t *c) { return c->next; }

void bg_conn_force_close(bg_conn_t *c) { conn_close(c); }
