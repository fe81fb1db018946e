/*
 * h2up.c — see h2up.h. One nghttp2 client session per pooled vendor connection. A stream
 * lives from bg_h2up_open until nghttp2 closes it; its exchange may leave earlier
 * (bg_h2up_stream_release detaches it and resets the stream). Sending is never started from
 * inside nghttp2 (depth counter: a flush asked for meanwhile is picked up by the running send
 * loop or done after mem_recv returns), so the session is not re-entered. Exchanges hear of
 * their stream (head, body, end, error) from mem_recv, the timer tick or the connection's
 * loss, never from inside mem_send. Worker thread.
 */
#include "h2up.h"

#include "exchange.h"
#include "h2.h"
#include "log.h"

#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define H2UP_STREAM_WINDOW (256 * 1024)   /* per response stream, before the client drains */
#define H2UP_CONN_WINDOW (8 * 1024 * 1024) /* acknowledged at once: one slow client stalls its stream only */
#define H2UP_MAX_HEAD (64 * 1024)         /* response head in HTTP/1.1 form */
#define H2UP_MAX_FIELDS 200               /* request fields we translate */

struct bg_h2up_stream {
    bg_h2up_t *c;
    bg_exchange_t *ex;         /* NULL once the exchange left */
    int32_t id;
    bg_buf_t out;              /* request body not yet handed to nghttp2 */
    size_t out_off;
    bool out_eof;
    bool has_body;
    bool deferred;             /* the data source said DEFERRED */
    bool was_full;             /* pending went over the mark: tell the exchange when it drains */
    bg_buf_t head;             /* response head in HTTP/1.1 form */
    bg_buf_t tout;             /* request trailer lines, sent after the body (names lowercased) */
    bg_buf_t tin;              /* response trailer lines as received */
    bool tin_over;             /* ... beyond H2UP_MAX_HEAD: dropped by the exchange */
    bool head_done;
    bool head_bad;
    bool paused;
    bool heard;                /* any frame of this stream arrived from the vendor */
    bool reset_by_vendor;      /* the vendor sent RST_STREAM (else nghttp2 reset it for a malformed answer) */
    bool on_reused;            /* opened on a connection that had carried streams before */
    size_t unconsumed;         /* DATA bytes delivered while paused, not yet acknowledged */
    uint64_t timeout_ms, last;
    struct bg_h2up_stream *prev, *next;
};

struct bg_h2up {
    bg_upstream_t *up;
    nghttp2_session *ng;
    bg_h2up_stream_t *streams; /* every stream not yet closed by nghttp2 (attached or not) */
    size_t nstreams;
    uint64_t nopened;
    int depth;
    bool want_flush;
    bool lost;
    bool goaway;
    bg_buf_t wbuf;
};

static void stream_unlink(bg_h2up_stream_t *s)
{
    bg_h2up_t *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else if (c->streams == s)
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    c->nstreams--;
}

static void stream_free(bg_h2up_stream_t *s)
{
    bg_buf_dispose_secure(&s->out);
    bg_buf_dispose(&s->head);
    bg_buf_dispose_secure(&s->tout);
    bg_buf_dispose_secure(&s->tin);
    free(s);
}

/* Hand nghttp2's output to the connection. Not from inside nghttp2 (then later). */
static void flush(bg_h2up_t *c)
{
    if (c->depth > 0 || c->lost) {
        c->want_flush = !c->lost;
        return;
    }
    c->depth++;
    c->want_flush = false;
    for (;;) {
        const uint8_t *p = NULL;
        ssize_t n = nghttp2_session_mem_send(c->ng, &p);
        if (n <= 0)
            break;
        bg_buf_append(&c->wbuf, p, (size_t)n);
        if (c->wbuf.len >= 16384) {
            bg_stream_write(&c->up->stream, c->wbuf.data, c->wbuf.len);
            bg_buf_reset(&c->wbuf);
        }
    }
    if (c->wbuf.len) {
        bg_stream_write(&c->up->stream, c->wbuf.data, c->wbuf.len);
        bg_buf_reset(&c->wbuf);
    }
    c->depth--;
    /* Request bodies that drained below the mark: the exchanges may read more of them. */
    for (bg_h2up_stream_t *s = c->streams, *next; s && !c->lost; s = next) {
        next = s->next;
        if (s->was_full && s->ex && s->out.len - s->out_off < (1u << 20)) {
            s->was_full = false;
            bg_exchange_req_drained(s->ex);
        }
    }
}

static ssize_t read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                       nghttp2_data_source *src, void *user)
{
    (void)ng;
    (void)id;
    (void)user;
    bg_h2up_stream_t *s = src->ptr;
    size_t avail = s->out.len - s->out_off;
    size_t n = avail < length ? avail : length;
    if (n) {
        memcpy(buf, s->out.data + s->out_off, n);
        s->out_off += n;
        s->last = uv_now(&s->c->up->w->loop); /* the vendor opened its window: not silent */
        if (s->out_off == s->out.len || s->out_off > 65536) {
            OPENSSL_cleanse(s->out.data, s->out_off);
            bg_buf_consume(&s->out, s->out_off);
            s->out_off = 0;
        }
    }
    if (s->out_off == s->out.len && s->out_eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->tout.len && bg_h2_submit_trailer_lines(s->c->ng, s->id, s->tout.data, s->tout.len) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers' HEADERS ends the stream */
        return (ssize_t)n;
    }
    if (n == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static int on_header_cb(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    (void)flags;
    (void)user;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    bg_h2up_stream_t *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (s)
        s->heard = true;
    if (s && s->head_done && f->headers.cat == NGHTTP2_HCAT_HEADERS) {
        /* Trailers: kept in HTTP/1.1 form for the exchange, bounded like a head. */
        if (s->tin_over || (namelen && name[0] == ':'))
            return 0;
        if (s->tin.len + namelen + valuelen + 4 > H2UP_MAX_HEAD) {
            s->tin_over = true;
            return 0;
        }
        bg_buf_append(&s->tin, name, namelen);
        bg_buf_puts(&s->tin, ": ");
        bg_buf_append(&s->tin, value, valuelen);
        bg_buf_puts(&s->tin, "\r\n");
        return 0;
    }
    if (!s || s->head_done || s->head_bad)
        return 0;
    if (s->head.len + namelen + valuelen + 32 > H2UP_MAX_HEAD) {
        s->head_bad = true;
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        bg_buf_t line;
        bg_buf_init(&line);
        bg_buf_printf(&line, "HTTP/1.1 %.*s h2\r\n", (int)valuelen, (const char *)value);
        bg_buf_append(&line, s->head.data, s->head.len); /* :status comes first; be safe anyway */
        bg_buf_dispose(&s->head);
        s->head = line;
        return 0;
    }
    if (namelen && name[0] == ':')
        return 0;
    bg_buf_append(&s->head, name, namelen);
    bg_buf_puts(&s->head, ": ");
    bg_buf_append(&s->head, value, valuelen);
    bg_buf_puts(&s->head, "\r\n");
    return 0;
}

static int on_frame_recv_cb(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    bg_h2up_t *c = user;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true; /* streams above last_stream_id are closed as REFUSED_STREAM */
        return 0;
    }
    if (f->hd.type == NGHTTP2_RST_STREAM) {
        bg_h2up_stream_t *r = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
        if (r)
            r->reset_by_vendor = true; /* on_stream_close_cb follows */
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    bg_h2up_stream_t *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!s || !s->ex)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (end && !(s->has_body ? s->out_eof && s->out.len == s->out_off : true))
        /* The vendor answered before taking the whole request: stop sending it (RFC 9113 8.1). */
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    if (f->hd.type == NGHTTP2_HEADERS && !s->head_done) {
        if (s->head_bad) {
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
            bg_exchange_t *ex = s->ex;
            s->ex = NULL;
            bg_exchange_resp_error(ex, BG_UP_PROTOCOL, "response head too large", false);
            return 0;
        }
        if (s->head.len < 13 || memcmp(s->head.data, "HTTP/1.1 1", 10) == 0) {
            bg_buf_reset(&s->head); /* an interim (1xx) response is not relayed */
            return 0;
        }
        s->head_done = true;
        bg_buf_puts(&s->head, "\r\n");
        s->last = uv_now(&c->up->w->loop);
        bg_exchange_t *ex = s->ex;
        if (end)
            s->ex = NULL; /* no body: the exchange finishes with the head and lets go of the stream */
        bg_exchange_resp_head(ex, s->head.data, s->head.len, end);
        bg_buf_dispose(&s->head);
        return 0;
    }
    if (end && s->head_done) {
        bg_exchange_t *ex = s->ex;
        s->ex = NULL; /* the exchange finishes and lets go of the stream */
        if (s->tin.len || s->tin_over)
            bg_exchange_resp_trailers(ex, s->tin.data, s->tin.len, s->tin_over);
        bg_exchange_resp_end(ex);
    }
    return 0;
}

static int on_data_cb(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
    (void)flags;
    bg_h2up_t *c = user;
    nghttp2_session_consume_connection(ng, len);
    bg_h2up_stream_t *s = nghttp2_session_get_stream_user_data(ng, id);
    if (s)
        s->heard = true;
    if (!s || !s->ex || !s->head_done) {
        nghttp2_session_consume_stream(ng, id, len);
        return 0;
    }
    s->last = uv_now(&c->up->w->loop);
    bg_exchange_resp_body(s->ex, (const char *)data, len);
    /* The exchange may have paused us (client queue full) or left. */
    if (s->paused && s->ex)
        s->unconsumed += len;
    else
        nghttp2_session_consume_stream(ng, id, len);
    return 0;
}

static int on_stream_close_cb(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    bg_h2up_t *c = user;
    bg_h2up_stream_t *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    bg_exchange_t *ex = s->ex;
    bool by_vendor = s->reset_by_vendor;
    s->ex = NULL;
    stream_unlink(s);
    stream_free(s);
    if (ex) {
        char msg[96];
        bool refused = code == NGHTTP2_REFUSED_STREAM;
        bg_upstream_error_t kind = BG_UP_CLOSED;
        if (code == NGHTTP2_NO_ERROR) {
            snprintf(msg, sizeof msg, "stream closed before the response ended");
        } else if (by_vendor || refused) {
            snprintf(msg, sizeof msg, "stream reset by the vendor: %s", nghttp2_http2_strerror(code));
        } else {
            /* nghttp2 reset it on our side: the answer was malformed (RFC 9113 8.1.1: DATA
             * beyond or short of content-length, a bad field, a frame out of place). */
            kind = BG_UP_PROTOCOL;
            snprintf(msg, sizeof msg, "malformed HTTP/2 response: stream reset (%s)", nghttp2_http2_strerror(code));
        }
        bg_exchange_resp_error(ex, kind, msg, refused);
    }
    if (!c->lost)
        bg_upstream_h2_stream_done(c->up);
    return 0;
}

bg_h2up_t *bg_h2up_create(bg_upstream_t *up)
{
    bg_h2up_t *c = calloc(1, sizeof *c);
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    if (!c || nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        abort();
    c->up = up;
    bg_buf_init(&c->wbuf);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close_cb);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 100);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    if (nghttp2_session_client_new2(&c->ng, cbs, c, opt) != 0)
        abort();
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2UP_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2UP_MAX_HEAD},
    };
    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, H2UP_CONN_WINDOW);
    flush(c);
    return c;
}

void bg_h2up_destroy(bg_h2up_t *c)
{
    if (!c)
        return;
    c->lost = true;
    nghttp2_session_del(c->ng); /* makes no callbacks */
    while (c->streams) {
        bg_h2up_stream_t *s = c->streams;
        stream_unlink(s);
        stream_free(s);
    }
    bg_buf_dispose(&c->wbuf);
    free(c);
}

int bg_h2up_recv(bg_h2up_t *c, const char *p, size_t n)
{
    if (c->lost)
        return -1;
    c->depth++;
    ssize_t r = nghttp2_session_mem_recv(c->ng, (const uint8_t *)p, n);
    c->depth--;
    if (c->lost)
        return -1;
    if (r < 0) {
        bg_log_warn("vendor spoke bad HTTP/2", "error", nghttp2_strerror((int)r));
        bg_h2up_lost(c, BG_UP_PROTOCOL, "vendor HTTP/2 protocol error");
        return -1;
    }
    flush(c);
    return 0;
}

void bg_h2up_lost(bg_h2up_t *c, bg_upstream_error_t kind, const char *msg)
{
    if (c->lost)
        return;
    c->lost = true;
    /* Like a kept-alive HTTP/1.1 connection that the vendor closed as we reused it: a stream
     * on a reused connection that heard nothing back may be tried again (idempotent only; the
     * exchange decides). */
    for (bg_h2up_stream_t *s = c->streams; s; s = s->next) {
        bg_exchange_t *ex = s->ex;
        if (!ex)
            continue;
        s->ex = NULL;
        bool refused = kind == BG_UP_CLOSED && s->on_reused && !s->heard;
        bg_exchange_resp_error(ex, kind, msg, refused);
    }
}

void bg_h2up_goodbye(bg_h2up_t *c)
{
    if (c->lost || c->goaway || c->depth > 0)
        return;
    /* RFC 9113 6.8: say we are done before closing. The vendor opens no streams to us, so the
     * last stream id we processed is 0. Best effort: the frame goes out with the next write. */
    if (nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0) == 0)
        flush(c);
}

void bg_h2up_drain(bg_h2up_t *c)
{
    if (c->want_flush || nghttp2_session_want_write(c->ng))
        flush(c);
}

bool bg_h2up_available(const bg_h2up_t *c)
{
    if (c->lost || c->goaway)
        return false;
    uint32_t max = nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (nghttp2_session_get_next_stream_id(c->ng) > (1u << 30))
        return false; /* running out of stream ids: a new connection takes over */
    return c->nstreams < max;
}

size_t bg_h2up_nstreams(const bg_h2up_t *c) { return c->nstreams; }

bool bg_h2up_finished(const bg_h2up_t *c)
{
    if (c->lost)
        return true;
    if (c->goaway && c->nstreams == 0)
        return true;
    return !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng);
}

void bg_h2up_tick(bg_h2up_t *c, uint64_t now)
{
    for (bg_h2up_stream_t *s = c->streams, *next; s && !c->lost; s = next) {
        next = s->next;
        if (!s->ex || s->paused || !s->timeout_ms || now - s->last < s->timeout_ms)
            continue;
        if (s->has_body && !s->head_done) {
            /* Body bytes the vendor's window let through may still wait in the connection's queue
             * or socket: while the vendor takes them it is not silent (as for HTTP/1.1, upstream.c).
             * The connection is shared, so any of its streams' bytes count: bounded by the vendor
             * reading, never by our own queue. */
            int64_t took = bg_upstream_took_at(c->up, (int64_t)now, (int64_t)s->timeout_ms);
            if (took > (int64_t)s->last)
                s->last = (uint64_t)took;
            if (now - s->last < s->timeout_ms)
                continue;
        }
        bg_exchange_t *ex = s->ex;
        s->ex = NULL;
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        bg_exchange_resp_error(ex, BG_UP_TIMEOUT, "response timeout", false);
    }
    flush(c);
}

/* Connection-specific fields (RFC 9113 8.2.2) never travel in HTTP/2. */
static bool connection_specific(const char *name, size_t n)
{
    return bg_span_ieq(name, n, "connection") || bg_span_ieq(name, n, "keep-alive") ||
           bg_span_ieq(name, n, "proxy-connection") || bg_span_ieq(name, n, "transfer-encoding") ||
           bg_span_ieq(name, n, "upgrade") || bg_span_ieq(name, n, "host") || bg_span_ieq(name, n, "http2-settings");
}

static nghttp2_nv make_nv(const char *name, size_t nlen, const char *value, size_t vlen)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE};
}

bg_h2up_stream_t *bg_h2up_open(bg_h2up_t *c, bg_exchange_t *ex, const char *head, size_t head_len,
                               bool has_body, uint64_t timeout_ms)
{
    if (!bg_h2up_available(c))
        return NULL;
    /* The head is ours (exchange.c built it): "METHOD SP target SP HTTP/1.1 CRLF (name: value CRLF)* CRLF". */
    char *copy = malloc(head_len + 1);
    if (!copy)
        abort();
    memcpy(copy, head, head_len);
    copy[head_len] = 0;
    nghttp2_nv nv[H2UP_MAX_FIELDS + 4];
    size_t n = 4;
    const char *method = copy, *target = NULL, *authority = "";
    size_t mlen = 0, tlen = 0, alen = 0;
    bool too_many = false;
    char *line = copy, *end = copy + head_len;
    char *eol = memchr(line, '\r', (size_t)(end - line));
    char *sp1 = eol ? memchr(line, ' ', (size_t)(eol - line)) : NULL;
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2) {
        OPENSSL_cleanse(copy, head_len);
        free(copy);
        return NULL;
    }
    mlen = (size_t)(sp1 - line);
    target = sp1 + 1;
    tlen = (size_t)(sp2 - target);
    for (line = eol + 2; line < end && (eol = memchr(line, '\r', (size_t)(end - line))) && eol > line;
         line = eol + 2) {
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            continue;
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t vl = (size_t)(eol - v);
        for (size_t i = 0; i < nl; i++)
            if (line[i] >= 'A' && line[i] <= 'Z')
                line[i] = (char)(line[i] + 32);
        if (bg_span_ieq(line, nl, "host")) {
            authority = v, alen = vl;
            continue;
        }
        if (connection_specific(line, nl))
            continue;
        if (bg_span_ieq(line, nl, "te") && !bg_span_ieq(v, vl, "trailers"))
            continue; /* RFC 9113 8.2.2: TE may only say "trailers" */
        if (n == H2UP_MAX_FIELDS + 4) {
            too_many = true; /* never drop a field silently */
            break;
        }
        nv[n++] = make_nv(line, nl, v, vl);
    }
    if (too_many) {
        OPENSSL_cleanse(copy, head_len);
        free(copy);
        return NULL;
    }
    nv[0] = make_nv(":method", 7, method, mlen);
    nv[1] = make_nv(":scheme", 7, "https", 5);
    nv[2] = make_nv(":authority", 10, authority, alen);
    nv[3] = make_nv(":path", 5, target, tlen);

    bg_h2up_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->c = c;
    s->ex = ex;
    s->has_body = has_body;
    s->on_reused = c->nopened++ > 0;
    s->timeout_ms = timeout_ms;
    s->last = uv_now(&c->up->w->loop);
    bg_buf_init(&s->out);
    bg_buf_init(&s->head);
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_cb};
    int32_t id = nghttp2_submit_request(c->ng, NULL, nv, n, has_body ? &prd : NULL, s);
    OPENSSL_cleanse(copy, head_len); /* nghttp2 copied the fields */
    free(copy);
    if (id < 0) {
        stream_free(s);
        return NULL;
    }
    s->id = id;
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    c->nstreams++;
    flush(c);
    return s;
}

void bg_h2up_stream_write(bg_h2up_stream_t *s, const char *p, size_t n)
{
    if (!n || s->out_eof)
        return;
    bg_buf_append(&s->out, p, n);
    if (s->out.len - s->out_off >= (1u << 20))
        s->was_full = true;
    if (s->deferred && !s->c->lost) {
        s->deferred = false;
        nghttp2_session_resume_data(s->c->ng, s->id);
    }
    flush(s->c);
}

void bg_h2up_stream_end(bg_h2up_stream_t *s)
{
    s->out_eof = true;
    if (s->deferred && !s->c->lost) {
        s->deferred = false;
        nghttp2_session_resume_data(s->c->ng, s->id);
    }
    flush(s->c);
}

void bg_h2up_stream_trailers(bg_h2up_stream_t *s, const char *lines, size_t len)
{
    bg_buf_reset(&s->tout);
    bg_buf_append(&s->tout, lines, len);
    for (size_t i = 0; i < s->tout.len; i++) /* HTTP/2 field names are lowercase (RFC 9113 8.2.1) */
        if (s->tout.data[i] >= 'A' && s->tout.data[i] <= 'Z')
            s->tout.data[i] = (char)(s->tout.data[i] + 32);
        else if (s->tout.data[i] == ':')
            for (i++; i < s->tout.len && s->tout.data[i] != '\n'; i++) /* values keep their case */
                ;
    bg_h2up_stream_end(s);
}

size_t bg_h2up_stream_pending(const bg_h2up_stream_t *s) { return s->out.len - s->out_off; }

void bg_h2up_stream_pause(bg_h2up_stream_t *s) { s->paused = true; }

void bg_h2up_stream_resume(bg_h2up_stream_t *s)
{
    if (!s->paused)
        return;
    s->paused = false;
    s->last = uv_now(&s->c->up->w->loop);
    if (s->unconsumed && !s->c->lost) {
        nghttp2_session_consume_stream(s->c->ng, s->id, s->unconsumed);
        s->unconsumed = 0;
        flush(s->c);
    }
}

void bg_h2up_stream_release(bg_h2up_stream_t *s)
{
    bg_h2up_t *c = s->c;
    s->ex = NULL;
    if (c->lost)
        return; /* freed with the session */
    /* Still open (the exchange stopped early): cancel it; nghttp2 closes it and frees ours. */
    nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    flush(c);
}
