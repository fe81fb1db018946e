/*
 * conn.c — an HTTP/1.1 client connection and the exchange it is carrying. Requests are
 * handled one at a time (pipelined ones wait in the input buffer and are answered in
 * order). For each: parse the head strictly, route to a vendor, read the body (holding at
 * most max_body_scan bytes before the decision), classify, decide per destination address,
 * then answer 451, or forward (sealing values under `encrypt`) to exactly the address that
 * was allowed and relay the response with back-pressure. One worker thread owns it.
 */
#include "exchange.h"
#include "log.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define BG_PIPELINE_MAX 65536          /* input held while a response is in progress */
#define BG_BACKPRESSURE (1u << 20)     /* bytes queued towards one peer before we pause the other */
#define BG_REVEAL_MAX (8u << 20)       /* response bytes buffered to open tokens */

enum { CS_HEAD, CS_BODY, CS_DECIDING, CS_FORWARD, CS_CLOSING };
enum { RF_NONE, RF_LENGTH, RF_CHUNKED, RF_CLOSE };

struct bg_conn {
    bg_stream_t stream;
    uv_timer_t timer;
    int open_handles;
    bg_worker_t *w;
    int li;
    bool tls;
    bg_buf_t in;
    int state;
    bool close_after;
    bool closing;
    bool timer_is_header;
    bool peer_eof;        /* the client half-closed: answer what is buffered, then close */
    char peer[64];
    char subject[256];
    bg_conn_t *prev, *next;

    bg_exchange_t *ex;
    /* request body */
    bool req_chunked;
    int64_t req_remaining;
    bg_h1_chunked_t req_dec;
    bg_buf_t pending; /* decoded body bytes beyond max_body_scan, before the decision */
    /* forwarding */
    bg_upstream_t *up;
    bool up_stream_body;   /* request body streamed upstream as chunked */
    bool retried;
    bool resp_started;     /* bytes of the response went to the client */
    bg_buf_t out_head;     /* the forwarded request head (kept for one retry) */
    bg_buf_t out_body;     /* the forwarded body when rewritten (encrypt) */
    /* response */
    bg_buf_t rin;
    bool resp_head_done;
    int resp_framing;
    int64_t resp_remaining;
    bg_h1_chunked_t resp_dec;
    bool resp_chunked_out;
    bool resp_keep_alive;
    bool resp_reveal;
    bg_buf_t rbody;
    bg_buf_t resp_head;   /* the vendor's response head, kept while a revealed body is buffered */
    uv_getaddrinfo_t *gai;
};

static void process(bg_conn_t *c);
static void finish_exchange(bg_conn_t *c);
static void decide(bg_conn_t *c);
static void start_forward(bg_conn_t *c);

/* ---- lifetime ------------------------------------------------------------------------ */

static void conn_free(bg_conn_t *c)
{
    bg_buf_dispose_secure(&c->in);
    bg_buf_dispose_secure(&c->pending);
    bg_buf_dispose_secure(&c->out_head);
    bg_buf_dispose_secure(&c->out_body);
    bg_buf_dispose_secure(&c->rin);
    bg_buf_dispose_secure(&c->rbody);
    bg_buf_dispose(&c->resp_head);
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
    if (c->gai)
        uv_cancel((uv_req_t *)c->gai); /* the callback sees the conn is closing */
    if (c->up) {
        bg_upstream_release(c->up, false);
        c->up = NULL;
    }
    if (c->ex) {
        if (c->ex->vendor && !c->ex->recorded) {
            if (!c->ex->status)
                c->ex->status = 499; /* the client went away before an answer */
            bg_exchange_record(c->ex);
        }
        bg_metrics_inflight(w->server->metrics, w->id, -1);
        bg_exchange_destroy(c->ex);
        c->ex = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    bg_stream_close(&c->stream);
}

static void linger_cb(uv_timer_t *t) { conn_close(t->data); }

/* Close after the queued answer: shut the write side down, then keep reading (and discarding)
 * for a moment so that unread request bytes do not turn into a reset that destroys the answer
 * before the client has read it (lingering close). */
static void begin_close(bg_conn_t *c)
{
    if (c->closing)
        return;
    c->state = CS_CLOSING;
    bg_stream_shutdown(&c->stream);
    if (c->stream.eof) {
        if (c->stream.write_pending == 0)
            conn_close(c);
        return; /* on_drain closes */
    }
    bg_stream_read_start(&c->stream);
    uv_timer_start(&c->timer, linger_cb, 2000, 0);
}

/* ---- timers --------------------------------------------------------------------------- */

static void timer_cb(uv_timer_t *t)
{
    bg_conn_t *c = t->data;
    if (c->state == CS_HEAD && c->in.len > 0) {
        static const char r408[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        bg_stream_write(&c->stream, r408, sizeof r408 - 1);
    }
    conn_close(c);
}

static void arm_idle(bg_conn_t *c)
{
    c->timer_is_header = false;
    uv_timer_start(&c->timer, timer_cb, c->w->rt->cfg->limits.idle_timeout_ms, 0);
}

static void arm_header(bg_conn_t *c)
{
    if (c->timer_is_header)
        return; /* the head's deadline runs from its first byte: slowloris gains nothing */
    c->timer_is_header = true;
    uv_timer_start(&c->timer, timer_cb, c->w->rt->cfg->limits.header_timeout_ms, 0);
}

/* ---- answering ----------------------------------------------------------------------- */

static void client_write(bg_conn_t *c, const char *p, size_t n)
{
    if (c->ex)
        c->ex->bytes_out += n;
    bg_stream_write(&c->stream, p, n);
}

/* A complete response generated by the gateway. Closes after it when asked or required. */
static void respond(bg_conn_t *c, int status, const char *ctype, const char *body, size_t blen,
                    const char *extra, bool close)
{
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, bg_h1_reason(status));
    if (ctype)
        bg_buf_printf(&b, "Content-Type: %s\r\n", ctype);
    bg_buf_printf(&b, "Content-Length: %zu\r\n", blen);
    if (c->ex && c->ex->vendor) /* only routed exchanges leave a record under this id */
        bg_buf_printf(&b, "X-Transfer-Id: %s\r\n", c->ex->id);
    if (extra)
        bg_buf_puts(&b, extra);
    if (close || c->close_after)
        bg_buf_puts(&b, "Connection: close\r\n");
    bg_buf_puts(&b, "\r\n");
    bg_buf_append(&b, body, blen);
    client_write(c, b.data, b.len);
    bg_buf_dispose(&b);
    if (c->ex)
        c->ex->status = status;
    bg_metrics_request(c->w->server->metrics, c->w->id, status);
    if (close)
        c->close_after = true;
}

static void respond_problem(bg_conn_t *c, int status, const char *type, const char *title,
                            const char *detail_key, const char *detail, bool close)
{
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_printf(&b, "{\"type\":\"https://bordergate.dev/problems/%s\",\"title\":\"%s\",\"status\":%d", type,
                  title, status);
    if (detail_key && detail) {
        bg_buf_printf(&b, ",\"%s\":\"", detail_key);
        bg_buf_json_escape(&b, detail, strlen(detail));
        bg_buf_puts(&b, "\"");
    }
    if (c->ex && c->ex->vendor)
        bg_buf_printf(&b, ",\"transfer_id\":\"%s\"", c->ex->id);
    bg_buf_puts(&b, "}");
    respond(c, status, "application/problem+json", b.data, b.len, "Cache-Control: no-store\r\n", close);
    bg_buf_dispose(&b);
}

/* The request could not be parsed or is refused before routing: answer and close. */
static void reject(bg_conn_t *c, int status, const char *why)
{
    bg_log_debug("request rejected", "peer", c->peer, "status", bg_h1_reason(status), "why", why);
    respond_problem(c, status, "bad-request", bg_h1_reason(status), "detail", why, true);
    finish_exchange(c);
}

/* ---- request body -------------------------------------------------------------------- */

/* Bytes of decoded request body arrived. Before the decision they are held (up to the scan
 * limit, the rest in `pending` with reading paused); after it they stream to the vendor. */
static bool body_bytes(bg_conn_t *c, const char *p, size_t n)
{
    bg_exchange_t *ex = c->ex;
    ex->body_total += n;
    ex->bytes_in += n;
    if (ex->body_total > ex->vendor->max_body) {
        if (c->state == CS_BODY) {
            respond_problem(c, 413, "body-too-large", "Request body too large", "vendor", ex->vendor->name, true);
            finish_exchange(c);
        } else {
            conn_close(c); /* already streaming upstream: abort both sides */
        }
        return false;
    }
    if (c->state == CS_BODY) {
        uint64_t limit = ex->rt->cfg->limits.max_body_scan;
        size_t fit = ex->body.len < limit ? (size_t)(limit - ex->body.len) : 0;
        if (fit > n)
            fit = n;
        bg_buf_append(&ex->body, p, fit);
        if (fit < n) {
            ex->body_over_scan = true;
            bg_buf_append(&c->pending, p + fit, n - fit);
        }
        return true;
    }
    /* Streaming to the vendor as chunked. */
    if (c->up && n) {
        char hdr[24];
        int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
        uv_buf_t bufs[3] = {uv_buf_init(hdr, (unsigned)hl), uv_buf_init((char *)p, (unsigned)n),
                            uv_buf_init("\r\n", 2)};
        bg_upstream_writev(c->up, bufs, 3);
        if (c->up->stream.write_pending > BG_BACKPRESSURE)
            bg_stream_read_stop(&c->stream);
    }
    return true;
}

/* Consume request body bytes from c->in. Returns false when the connection state changed
 * under us (answered, closed). */
static bool feed_body(bg_conn_t *c)
{
    bg_exchange_t *ex = c->ex;
    while (!ex->body_done && c->in.len > 0) {
        if (c->state == CS_BODY && ex->body_over_scan)
            return true; /* held until the decision */
        if (c->req_chunked) {
            size_t consumed = 0, outlen = 0;
            if (bg_h1_chunked_decode(&c->req_dec, c->in.data, c->in.len, &consumed, &outlen) < 0) {
                respond_problem(c, 400, "bad-request", "Bad Request", "detail", "malformed chunked body", true);
                finish_exchange(c);
                return false;
            }
            if (outlen && !body_bytes(c, c->in.data, outlen))
                return false;
            bg_buf_consume(&c->in, consumed);
            if (c->req_dec.done)
                ex->body_done = true;
            else if (consumed == 0)
                break;
        } else {
            size_t n = c->in.len < (uint64_t)c->req_remaining ? c->in.len : (size_t)c->req_remaining;
            if (!body_bytes(c, c->in.data, n))
                return false;
            bg_buf_consume(&c->in, n);
            c->req_remaining -= (int64_t)n;
            if (c->req_remaining == 0)
                ex->body_done = true;
        }
    }
    if (!ex->body_done && c->req_remaining == 0 && !c->req_chunked)
        ex->body_done = true;
    if (ex->body_done && c->state == CS_FORWARD && c->up_stream_body && c->up) {
        bg_upstream_write(c->up, "0\r\n\r\n", 5);
        c->up_stream_body = false;
    }
    return true;
}

/* ---- request head -------------------------------------------------------------------- */

static void start_request(bg_conn_t *c, size_t head_len)
{
    const bg_config_t *cfg = c->w->rt->cfg;
    char caller[320];
    if (c->subject[0])
        snprintf(caller, sizeof caller, "%s", c->subject);
    else
        snprintf(caller, sizeof caller, "%s", c->peer);
    bg_exchange_t *ex = bg_exchange_create(c->w, "http/1.1", caller);
    c->ex = ex;
    bg_metrics_inflight(c->w->server->metrics, c->w->id, 1);
    ex->head = malloc(head_len);
    if (!ex->head)
        abort();
    memcpy(ex->head, c->in.data, head_len);
    ex->head_len = head_len;
    ex->bytes_in = head_len;
    bg_h1_limits_t lim = {cfg->limits.max_header_size, cfg->limits.max_headers, cfg->limits.max_uri};
    bg_h1_parse_request(ex->head, head_len, &lim, &ex->req); /* same bytes: cannot fail now */
    bg_buf_consume(&c->in, head_len);
    bg_h1_request_t *req = &ex->req;
    c->timer_is_header = false;
    uv_timer_stop(&c->timer);
    c->req_chunked = req->chunked;
    c->req_remaining = req->chunked ? -1 : (req->content_length > 0 ? req->content_length : 0);
    bg_h1_chunked_init(&c->req_dec);
    if (!req->keep_alive)
        c->close_after = true;
    if (c->w->draining)
        c->close_after = true;

    if (bg_span_ieq(req->method, req->method_len, "CONNECT")) {
        respond_problem(c, 405, "method-not-allowed", "CONNECT is not supported", NULL, NULL, true);
        finish_exchange(c);
        return;
    }
    ex->target = req->absolute_form ? req->path : req->target;
    ex->target_len = req->absolute_form ? req->path_len : req->target_len;
    bool has_body = req->chunked || req->content_length > 0;
    if (bg_exchange_route(ex, req->host, req->host_len) < 0) {
        char host[256];
        snprintf(host, sizeof host, "%.*s", (int)(req->host_len < 255 ? req->host_len : 255), req->host);
        respond_problem(c, 403, "unknown-vendor", "Destination is not an approved vendor", "host", host, has_body);
        finish_exchange(c);
        return;
    }
    if (!req->chunked && req->content_length > 0 && (uint64_t)req->content_length > ex->vendor->max_body) {
        respond_problem(c, 413, "body-too-large", "Request body too large", "vendor", ex->vendor->name, true);
        finish_exchange(c);
        return;
    }
    if (req->expect_continue && has_body && c->in.len == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        bg_stream_write(&c->stream, cont, sizeof cont - 1);
    }
    c->state = CS_BODY;
    if (!has_body)
        ex->body_done = true;
}

static void process(bg_conn_t *c)
{
    while (!c->closing) {
        if (c->state == CS_HEAD) {
            if (c->in.len == 0) {
                if (c->close_after || c->peer_eof)
                    begin_close(c);
                return;
            }
            const bg_config_t *cfg = c->w->rt->cfg;
            bg_h1_limits_t lim = {cfg->limits.max_header_size, cfg->limits.max_headers, cfg->limits.max_uri};
            bg_h1_request_t req;
            int r = bg_h1_parse_request(c->in.data, c->in.len, &lim, &req);
            if (r == BG_H1_PARTIAL) {
                if (c->in.len > cfg->limits.max_header_size) {
                    reject(c, 431, "request header block too large");
                    return;
                }
                if (c->peer_eof) {
                    reject(c, 400, "incomplete request");
                    return;
                }
                arm_header(c);
                return;
            }
            if (r < 0) {
                reject(c, req.status ? req.status : 400, req.error ? req.error : "malformed request");
                return;
            }
            start_request(c, (size_t)r);
            continue;
        }
        if (c->state == CS_BODY) {
            if (!feed_body(c))
                return;
            if (c->ex->body_done || c->ex->body_over_scan) {
                decide(c);
                continue;
            }
            /* Waiting for more body: a slow body gets the idle timeout per read. */
            arm_idle(c);
            return;
        }
        if (c->state == CS_FORWARD && c->ex && !c->ex->body_done) {
            if (!feed_body(c))
                return;
        }
        if (c->in.len > BG_PIPELINE_MAX)
            bg_stream_read_stop(&c->stream);
        return;
    }
}

/* ---- decision ------------------------------------------------------------------------ */

static void act(bg_conn_t *c);

static void dns_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    bg_conn_t *c = req->data;
    free(req);
    if (c->closing || status == UV_ECANCELED) {
        uv_freeaddrinfo(res);
        return;
    }
    c->gai = NULL;
    bg_exchange_t *ex = c->ex;
    struct sockaddr_storage addrs[16];
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < 16; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        memset(&addrs[n], 0, sizeof addrs[n]);
        memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
        n++;
    }
    uv_freeaddrinfo(res);
    /* Cache (positive 30 s, negative 5 s), bounded. */
    bg_worker_t *w = c->w;
    bg_dns_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->host = strdup(ex->host);
    e->naddrs = n;
    e->addrs = n ? malloc(n * sizeof *e->addrs) : NULL;
    if (n)
        memcpy(e->addrs, addrs, n * sizeof *addrs);
    e->error = status < 0 ? status : 0;
    e->expires = uv_now(&w->loop) + (status < 0 || n == 0 ? 5000 : 30000);
    e->next = w->dns;
    w->dns = e;
    w->ndns++;
    if (status < 0 || n == 0)
        ex->error = "dns_failed";
    bg_exchange_decide(ex, addrs, n);
    act(c);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static void decide(bg_conn_t *c)
{
    bg_exchange_t *ex = c->ex;
    c->state = CS_DECIDING;
    if (!ex->body_done)
        bg_stream_read_stop(&c->stream); /* hold the rest of the body until we know */
    bg_exchange_classify(ex);
    if (!bg_records_healthy(c->w->server->records) && ex->rt->cfg->mode == BG_MODE_ENFORCE)
        ex->error = "records_unavailable";
    const bg_vendor_t *v = ex->vendor;
    if (v->upstream.naddresses) {
        struct sockaddr_storage addrs[16];
        size_t n = 0;
        for (size_t i = 0; i < v->upstream.naddresses && n < 16; i++)
            addrs[n++] = v->upstream.addresses[i].addr;
        bg_exchange_decide(ex, addrs, n);
        act(c);
        return;
    }
    bg_worker_t *w = c->w;
    uint64_t now = uv_now(&w->loop);
    for (bg_dns_entry_t **p = &w->dns; *p;) {
        bg_dns_entry_t *e = *p;
        if (e->expires <= now || w->ndns > 4096) {
            *p = e->next;
            free(e->host);
            free(e->addrs);
            free(e);
            w->ndns--;
            continue;
        }
        if (strcmp(e->host, ex->host) == 0) {
            if (e->error || e->naddrs == 0)
                ex->error = "dns_failed";
            bg_exchange_decide(ex, e->addrs, e->naddrs);
            act(c);
            return;
        }
        p = &e->next;
    }
    c->gai = malloc(sizeof *c->gai);
    if (!c->gai)
        abort();
    c->gai->data = c;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int r = uv_getaddrinfo(&w->loop, c->gai, dns_cb, ex->host, NULL, &hints);
    if (r < 0) {
        free(c->gai);
        c->gai = NULL;
        ex->error = "dns_failed";
        bg_exchange_decide(ex, NULL, 0);
        act(c);
    }
}

/* Replace the personal-data spans of one location with tokens. */
static int seal_spans(bg_exchange_t *ex, int where, int header, const char *src, size_t n, bg_buf_t *out)
{
    bg_seal_span_t spans[256];
    size_t ns = 0;
    for (size_t i = 0; i < ex->cls.nfindings && ns < 256; i++) {
        const bg_finding_t *f = &ex->cls.findings[i];
        if (f->where != where || (where == BG_WHERE_HEADER && f->header != header))
            continue;
        if (where == BG_WHERE_PATH || where == BG_WHERE_QUERY || where == BG_WHERE_HEADER ||
            f->json_string || ex->cls.body_kind != BG_BODY_JSON)
            spans[ns++] = (bg_seal_span_t){f->offset, f->length, 0};
        else
            spans[ns++] = (bg_seal_span_t){f->offset, f->length, 1};
    }
    /* Path and query spans share the target's coordinates. */
    if (where == BG_WHERE_QUERY) {
        for (size_t i = 0; i < ex->cls.nfindings && ns < 256; i++)
            if (ex->cls.findings[i].where == BG_WHERE_PATH)
                spans[ns++] = (bg_seal_span_t){ex->cls.findings[i].offset, ex->cls.findings[i].length, 0};
    }
    /* Sort by offset (insertion: small n) and drop overlaps. */
    for (size_t i = 1; i < ns; i++)
        for (size_t j = i; j > 0 && spans[j].offset < spans[j - 1].offset; j--) {
            bg_seal_span_t t = spans[j];
            spans[j] = spans[j - 1];
            spans[j - 1] = t;
        }
    size_t k = 0;
    for (size_t i = 0; i < ns; i++) {
        if (spans[i].offset + (uint64_t)spans[i].length > n)
            continue;
        if (k && spans[i].offset < spans[k - 1].offset + spans[k - 1].length)
            continue;
        spans[k++] = spans[i];
    }
    if (ns >= 256 || ex->cls.findings_truncated)
        return -1; /* not every value is known: refuse rather than leak one */
    return bg_seal_rewrite(ex->rt->keys, src, n, spans, k, out);
}

static bool is_hop(const bg_exchange_t *ex, const bg_header_t *h)
{
    const char *conn = NULL;
    size_t conn_len = 0;
    for (size_t i = 0; i < ex->req.nheaders; i++)
        if (bg_span_ieq(ex->req.headers[i].name, ex->req.headers[i].name_len, "connection")) {
            conn = ex->req.headers[i].value;
            conn_len = ex->req.headers[i].value_len;
        }
    return bg_h1_is_hop_by_hop(h->name, h->name_len, conn, conn_len);
}

/* Build the request head for the vendor into c->out_head, and the body into c->out_body
 * when it is rewritten. Returns 0, or -1 when sealing failed (the caller blocks). */
static int build_upstream_request(bg_conn_t *c, bool encrypt)
{
    bg_exchange_t *ex = c->ex;
    bg_buf_t *h = &c->out_head;
    bg_buf_reset(h);
    bg_buf_reset(&c->out_body);
    bg_buf_append(h, ex->req.method, ex->req.method_len);
    bg_buf_puts(h, " ");
    if (encrypt && ex->cls.nfindings) {
        if (seal_spans(ex, BG_WHERE_QUERY, -1, ex->target, ex->target_len, h) < 0)
            return -1;
    } else {
        bg_buf_append(h, ex->target, ex->target_len);
    }
    bg_buf_puts(h, " HTTP/1.1\r\nHost: ");
    bg_buf_append(h, ex->req.host, ex->req.host_len);
    bg_buf_puts(h, "\r\n");
    const char *xff = NULL;
    size_t xff_len = 0;
    const char *via = NULL;
    size_t via_len = 0;
    bool body_sealed_whole = false;
    if (encrypt && ex->body.len && ex->cls.nfindings) {
        bool by_field = (ex->cls.body_kind == BG_BODY_JSON || ex->cls.body_kind == BG_BODY_FORM) && !ex->cls.body_inflated;
        bool any_body = false;
        for (size_t i = 0; i < ex->cls.nfindings; i++)
            any_body |= ex->cls.findings[i].where == BG_WHERE_BODY;
        if (any_body && by_field) {
            if (seal_spans(ex, BG_WHERE_BODY, -1, ex->body.data, ex->body.len, &c->out_body) < 0)
                return -1;
        } else if (any_body) {
            if (bg_seal_jwe(ex->rt->keys, ex->body.data, ex->body.len, NULL, &c->out_body) < 0)
                return -1;
            body_sealed_whole = true;
        }
    }
    for (size_t i = 0; i < ex->req.nheaders; i++) {
        const bg_header_t *hd = &ex->req.headers[i];
        if (is_hop(ex, hd) || bg_span_ieq(hd->name, hd->name_len, "host") ||
            bg_span_ieq(hd->name, hd->name_len, "content-length") ||
            bg_span_ieq(hd->name, hd->name_len, "expect") ||
            bg_span_ieq(hd->name, hd->name_len, "x-forwarded-proto"))
            continue;
        if (bg_span_ieq(hd->name, hd->name_len, "x-forwarded-for")) {
            xff = hd->value, xff_len = hd->value_len;
            continue;
        }
        if (bg_span_ieq(hd->name, hd->name_len, "via")) {
            via = hd->value, via_len = hd->value_len;
            continue;
        }
        if (body_sealed_whole && (bg_span_ieq(hd->name, hd->name_len, "content-type") ||
                                  bg_span_ieq(hd->name, hd->name_len, "content-encoding")))
            continue;
        bg_buf_append(h, hd->name, hd->name_len);
        bg_buf_puts(h, ": ");
        if (encrypt && ex->cls.nfindings) {
            if (seal_spans(ex, BG_WHERE_HEADER, (int)i, hd->value, hd->value_len, h) < 0)
                return -1;
        } else {
            bg_buf_append(h, hd->value, hd->value_len);
        }
        bg_buf_puts(h, "\r\n");
    }
    if (body_sealed_whole)
        bg_buf_puts(h, "Content-Type: application/jose\r\n");
    /* The caller's own address is the first hop we know; keep what came before it. */
    char ip[64];
    snprintf(ip, sizeof ip, "%s", c->peer);
    char *colon = strrchr(ip, ':');
    if (colon)
        *colon = 0;
    if (ip[0] == '[') {
        memmove(ip, ip + 1, strlen(ip));
        char *rb = strchr(ip, ']');
        if (rb)
            *rb = 0;
    }
    bg_buf_puts(h, "X-Forwarded-For: ");
    if (xff) {
        bg_buf_append(h, xff, xff_len);
        bg_buf_puts(h, ", ");
    }
    bg_buf_printf(h, "%s\r\nX-Forwarded-Proto: %s\r\nVia: ", ip, c->tls ? "https" : "http");
    if (via) {
        bg_buf_append(h, via, via_len);
        bg_buf_puts(h, ", ");
    }
    bg_buf_printf(h, "1.%d bordergate\r\n", ex->req.minor_version);
    if (ex->body_done) {
        size_t blen = c->out_body.len ? c->out_body.len : ex->body.len;
        if (blen || ex->req.content_length >= 0 || ex->req.chunked)
            bg_buf_printf(h, "Content-Length: %zu\r\n", blen);
        c->up_stream_body = false;
    } else {
        bg_buf_puts(h, "Transfer-Encoding: chunked\r\n");
        c->up_stream_body = true;
    }
    bg_buf_puts(h, "\r\n");
    return 0;
}

static void act(bg_conn_t *c)
{
    bg_exchange_t *ex = c->ex;
    if (ex->dec.action == BG_DECISION_BLOCK) {
        bg_buf_t body;
        bg_buf_init(&body);
        bg_exchange_problem_451(ex, &body);
        char extra[400];
        char host[200];
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "localhost");
        snprintf(extra, sizeof extra, "Link: <urn:bordergate:%s>; rel=\"blocked-by\"\r\nCache-Control: no-store\r\n", host);
        respond(c, 451, "application/problem+json", body.data, body.len, extra, !ex->body_done);
        bg_buf_dispose(&body);
        finish_exchange(c);
        return;
    }
    bool encrypt = ex->dec.action == BG_DECISION_ENCRYPT;
    if (encrypt && (!ex->rt->keys || !ex->body_done)) {
        /* Cannot seal what we cannot see whole, or without keys: block instead. */
        snprintf(ex->dec.reason, sizeof ex->dec.reason, "%s", ex->rt->keys ? "encrypt_unscannable_body" : "encrypt_no_keys");
        ex->dec.decision = ex->dec.action = BG_DECISION_BLOCK;
        act(c);
        return;
    }
    if (build_upstream_request(c, encrypt) < 0) {
        snprintf(ex->dec.reason, sizeof ex->dec.reason, "seal_failed");
        ex->dec.decision = ex->dec.action = BG_DECISION_BLOCK;
        act(c);
        return;
    }
    start_forward(c);
}

/* ---- forwarding ---------------------------------------------------------------------- */

static void upstream_failed(bg_conn_t *c, bg_upstream_error_t kind, const char *msg)
{
    bg_exchange_t *ex = c->ex;
    static const char *const kinds[] = {"connect", "tls", "timeout", "closed", "protocol"};
    bg_log_warn("upstream failed", "vendor", ex->vendor->name, "address",
                ex->chosen >= 0 ? ex->dests[ex->chosen].ip : "", "kind", kinds[kind], "error", msg, "id", ex->id);
    bg_metrics_upstream_error(c->w->server->metrics, c->w->id, ex->vendor->name, kinds[kind]);
    if (c->up) {
        bg_upstream_release(c->up, false);
        c->up = NULL;
    }
    if (c->resp_started) {
        /* Part of the response is out: the only honest signal left is closing. */
        ex->status = ex->status ? ex->status : 502;
        conn_close(c);
        return;
    }
    int status = kind == BG_UP_TIMEOUT ? 504 : 502;
    respond_problem(c, status, kind == BG_UP_TIMEOUT ? "upstream-timeout" : "upstream-failed",
                    kind == BG_UP_TIMEOUT ? "Vendor did not answer in time" : "Vendor connection failed",
                    "vendor", ex->vendor->name, !ex->body_done);
    finish_exchange(c);
}

static void send_request(bg_conn_t *c)
{
    bg_exchange_t *ex = c->ex;
    const bg_buf_t *body = c->out_body.len ? &c->out_body : &ex->body;
    uv_buf_t bufs[5];
    size_t nb = 0;
    char hdr[24];
    bufs[nb++] = uv_buf_init(c->out_head.data, (unsigned)c->out_head.len);
    if (c->up_stream_body) {
        size_t n = ex->body.len + c->pending.len;
        if (n) {
            int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
            bufs[nb++] = uv_buf_init(hdr, (unsigned)hl);
            if (ex->body.len)
                bufs[nb++] = uv_buf_init(ex->body.data, (unsigned)ex->body.len);
            if (c->pending.len)
                bufs[nb++] = uv_buf_init(c->pending.data, (unsigned)c->pending.len);
            bufs[nb++] = uv_buf_init("\r\n", 2);
        }
    } else if (body->len) {
        bufs[nb++] = uv_buf_init(body->data, (unsigned)body->len);
    }
    bg_upstream_writev(c->up, bufs, nb);
    bg_upstream_set_timeout(c->up, ex->rt->cfg->limits.upstream_timeout_ms);
    c->state = CS_FORWARD;
    if (c->up_stream_body) {
        bg_buf_dispose_secure(&c->pending);
        /* The rest of the body streams through as it arrives. */
        bg_stream_read_start(&c->stream);
        ex->body_over_scan = false;
        if (c->in.len)
            process(c);
    }
}

static void start_forward(bg_conn_t *c)
{
    bg_exchange_t *ex = c->ex;
    const bg_vendor_t *v = ex->vendor;
    bg_dest_t *d = &ex->dests[ex->chosen];
    struct sockaddr_storage addr = d->addr;
    set_port(&addr, v->upstream.port);
    char key[200];
    /* Truncation only makes two long keys share a pool slot check; strcmp on the full key
     * would be better, but names this long do not occur (vendor names and hosts are short). */
    snprintf(key, sizeof key, "%.60s|%.47s|%u|%d|%.80s", v->name, d->ip, v->upstream.port, v->upstream.tls, ex->host);
    SSL_CTX *ctx = ex->rt->vendor_ctx[ex->vendor_index];
    const char *sni = v->upstream.sni ? v->upstream.sni : ex->host;
    int err = 0;
    bg_buf_reset(&c->rin);
    c->resp_head_done = false;
    c->resp_started = false;
    c->up = bg_upstream_acquire(c->w, key, (const struct sockaddr *)&addr, ctx, sni,
                                v->upstream.verify ? sni : NULL, ex->rt->cfg->limits.upstream_connect_timeout_ms,
                                c, &err);
    if (!c->up) {
        upstream_failed(c, BG_UP_CONNECT_FAILED, uv_strerror(err));
        return;
    }
    c->state = CS_FORWARD;
    if (c->up->ready)
        send_request(c);
}

void bg_upstream_ready_cb(bg_upstream_t *up, void *owner)
{
    (void)up;
    send_request(owner);
}

void bg_upstream_drain_cb(bg_upstream_t *up, void *owner)
{
    (void)up;
    bg_conn_t *c = owner;
    if (c->state == CS_FORWARD && c->ex && !c->ex->body_done)
        bg_stream_read_start(&c->stream);
}

/* ---- response ------------------------------------------------------------------------ */

static void response_done(bg_conn_t *c, bool upstream_reusable)
{
    bg_exchange_t *ex = c->ex;
    if (c->resp_chunked_out)
        client_write(c, "0\r\n\r\n", 5);
    if (c->up) {
        bg_upstream_release(c->up, upstream_reusable && c->resp_keep_alive && ex->body_done &&
                                       !c->up_stream_body);
        c->up = NULL;
    }
    if (!ex->body_done)
        c->close_after = true; /* the rest of the request body is still on the wire */
    finish_exchange(c);
}

static void write_body_piece(bg_conn_t *c, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (c->resp_reveal) {
        if (c->rbody.len + n > BG_REVEAL_MAX) {
            upstream_failed(c, BG_UP_PROTOCOL, "response too large to reveal");
            return;
        }
        bg_buf_append(&c->rbody, p, n);
        return;
    }
    if (c->resp_chunked_out) {
        char hdr[24];
        int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
        client_write(c, hdr, (size_t)hl);
        client_write(c, p, n);
        client_write(c, "\r\n", 2);
    } else {
        client_write(c, p, n);
    }
    if (c->stream.write_pending > BG_BACKPRESSURE && c->up)
        bg_upstream_pause(c->up);
}

static void send_revealed(bg_conn_t *c);

/* Relay response body bytes; returns true when the response is complete. */
static bool relay_body(bg_conn_t *c, char *p, size_t n, bool *extra)
{
    *extra = false;
    if (c->resp_framing == RF_NONE) {
        *extra = n > 0;
        return true;
    }
    if (c->resp_framing == RF_LENGTH) {
        size_t take = n < (uint64_t)c->resp_remaining ? n : (size_t)c->resp_remaining;
        write_body_piece(c, p, take);
        c->resp_remaining -= (int64_t)take;
        *extra = take < n;
        return c->resp_remaining == 0;
    }
    if (c->resp_framing == RF_CHUNKED) {
        while (n > 0) {
            size_t consumed = 0, outlen = 0;
            if (bg_h1_chunked_decode(&c->resp_dec, p, n, &consumed, &outlen) < 0) {
                upstream_failed(c, BG_UP_PROTOCOL, "malformed chunked response");
                return false;
            }
            write_body_piece(c, p, outlen);
            if (c->closing)
                return false;
            p += consumed;
            n -= consumed;
            if (c->resp_dec.done) {
                *extra = n > 0;
                return true;
            }
            if (consumed == 0)
                break;
        }
        return false;
    }
    write_body_piece(c, p, n); /* RF_CLOSE: until EOF */
    return false;
}

static void send_response_head(bg_conn_t *c, const bg_h1_response_t *resp)
{
    bg_exchange_t *ex = c->ex;
    bg_buf_t h;
    bg_buf_init(&h);
    bg_buf_printf(&h, "HTTP/1.1 %d ", resp->status);
    bg_buf_append(&h, resp->reason, resp->reason_len);
    bg_buf_puts(&h, "\r\n");
    const char *conn = NULL;
    size_t conn_len = 0;
    for (size_t i = 0; i < resp->nheaders; i++)
        if (bg_span_ieq(resp->headers[i].name, resp->headers[i].name_len, "connection"))
            conn = resp->headers[i].value, conn_len = resp->headers[i].value_len;
    bool head = bg_span_ieq(ex->req.method, ex->req.method_len, "HEAD");
    /* HEAD and 304 answers carry the representation's Content-Length, not a body's: keep it. */
    bool keep_length = head || resp->status == 304;
    bool bodiless = keep_length || resp->status == 204 || resp->status < 200;
    for (size_t i = 0; i < resp->nheaders; i++) {
        const bg_header_t *hd = &resp->headers[i];
        if (bg_h1_is_hop_by_hop(hd->name, hd->name_len, conn, conn_len) ||
            (!keep_length && bg_span_ieq(hd->name, hd->name_len, "content-length")) ||
            bg_span_ieq(hd->name, hd->name_len, "x-transfer-id"))
            continue;
        bg_buf_append(&h, hd->name, hd->name_len);
        bg_buf_puts(&h, ": ");
        bg_buf_append(&h, hd->value, hd->value_len);
        bg_buf_puts(&h, "\r\n");
    }
    bg_buf_printf(&h, "X-Transfer-Id: %s\r\n", ex->id);
    c->resp_chunked_out = false;
    if (bodiless) {
        /* no framing of our own */
    } else if (c->resp_framing == RF_LENGTH) {
        bg_buf_printf(&h, "Content-Length: %lld\r\n", (long long)resp->content_length);
    } else if (c->resp_framing == RF_CHUNKED || c->resp_framing == RF_CLOSE) {
        if (ex->req.minor_version >= 1)
            c->resp_chunked_out = true, bg_buf_puts(&h, "Transfer-Encoding: chunked\r\n");
        else
            c->close_after = true;
    } else {
        bg_buf_puts(&h, "Content-Length: 0\r\n");
    }
    if (c->close_after || c->w->draining)
        bg_buf_puts(&h, "Connection: close\r\n"), c->close_after = true;
    bg_buf_puts(&h, "\r\n");
    client_write(c, h.data, h.len);
    bg_buf_dispose(&h);
    ex->status = resp->status;
    bg_metrics_request(c->w->server->metrics, c->w->id, resp->status);
    c->resp_started = true;
}

void bg_upstream_data_cb(bg_upstream_t *up, void *owner, const char *p, size_t n)
{
    (void)up;
    bg_conn_t *c = owner;
    if (!c->resp_head_done) {
        bg_buf_append(&c->rin, p, n);
        for (;;) {
            bg_h1_response_t resp;
            bool head = bg_span_ieq(c->ex->req.method, c->ex->req.method_len, "HEAD");
            int r = bg_h1_parse_response(c->rin.data, c->rin.len, head, &resp);
            if (r == BG_H1_PARTIAL) {
                if (c->rin.len > 65536)
                    upstream_failed(c, BG_UP_PROTOCOL, "response head too large");
                return;
            }
            if (r < 0) {
                upstream_failed(c, BG_UP_PROTOCOL, resp.error ? resp.error : "malformed response");
                return;
            }
            if (resp.status >= 100 && resp.status < 200) {
                if (resp.status == 101) {
                    upstream_failed(c, BG_UP_PROTOCOL, "unexpected 101");
                    return;
                }
                bg_buf_consume(&c->rin, (size_t)r); /* interim responses are not relayed */
                continue;
            }
            c->resp_keep_alive = resp.keep_alive;
            if (resp.chunked) {
                c->resp_framing = RF_CHUNKED;
                bg_h1_chunked_init(&c->resp_dec);
            } else if (resp.close_delimited) {
                c->resp_framing = RF_CLOSE;
                c->resp_keep_alive = false;
            } else if (resp.content_length > 0 && !head) {
                c->resp_framing = RF_LENGTH;
                c->resp_remaining = resp.content_length;
            } else {
                c->resp_framing = RF_NONE;
            }
            c->resp_reveal = c->ex->vendor->reveal_responses && c->ex->rt->keys && c->resp_framing != RF_NONE;
            if (c->resp_reveal) {
                /* The head goes out with the revealed body's length once the body is complete. */
                bg_buf_reset(&c->resp_head);
                bg_buf_append(&c->resp_head, c->rin.data, (size_t)r);
                c->resp_head_done = true;
                bg_buf_consume(&c->rin, (size_t)r);
                break;
            }
            send_response_head(c, &resp);
            c->resp_head_done = true;
            bg_buf_consume(&c->rin, (size_t)r);
            break;
        }
        bg_buf_t rest = c->rin;
        bg_buf_init(&c->rin);
        bool extra = false;
        bool done = relay_body(c, rest.data ? rest.data : "", rest.len, &extra);
        bg_buf_dispose(&rest);
        if (c->closing || !c->ex || c->state != CS_FORWARD)
            return;
        if (done) {
            if (c->resp_reveal)
                send_revealed(c);
            else
                response_done(c, !extra);
        }
        return;
    }
    bool extra = false;
    if (relay_body(c, (char *)p, n, &extra)) {
        if (c->resp_reveal)
            send_revealed(c);
        else
            response_done(c, !extra);
    }
}

void bg_upstream_eof_cb(bg_upstream_t *up, void *owner)
{
    bg_conn_t *c = owner;
    c->up = NULL; /* the pool closes it */
    (void)up;
    if (c->resp_head_done && c->resp_framing == RF_CLOSE) {
        if (c->resp_reveal)
            send_revealed(c);
        else
            response_done(c, false);
        return;
    }
    if (!c->resp_head_done && c->rin.len == 0 && up->reused && !c->retried && c->ex->body_done) {
        /* A kept-alive connection the vendor had closed: try once more on a fresh one. */
        c->retried = true;
        start_forward(c);
        return;
    }
    upstream_failed(c, BG_UP_CLOSED, c->resp_head_done ? "closed mid-response" : "closed before responding");
}

void bg_upstream_error_cb(bg_upstream_t *up, void *owner, bg_upstream_error_t kind, const char *msg)
{
    bg_conn_t *c = owner;
    c->up = NULL;
    if (kind == BG_UP_CLOSED && !c->resp_head_done && c->rin.len == 0 && up->reused && !c->retried &&
        c->ex->body_done) {
        c->retried = true;
        start_forward(c);
        return;
    }
    upstream_failed(c, kind, msg);
}

static void send_revealed(bg_conn_t *c)
{
    bg_exchange_t *ex = c->ex;
    bg_buf_t out;
    bg_buf_init(&out);
    size_t opened = 0;
    bg_h1_response_t resp;
    bool head = bg_span_ieq(ex->req.method, ex->req.method_len, "HEAD");
    bg_h1_parse_response(c->resp_head.data, c->resp_head.len, head, &resp); /* parsed before */
    bool json = false;
    for (size_t i = 0; i < resp.nheaders; i++)
        if (bg_span_ieq(resp.headers[i].name, resp.headers[i].name_len, "content-type") &&
            resp.headers[i].value_len >= 4 && memmem(resp.headers[i].value, resp.headers[i].value_len, "json", 4))
            json = true;
    bg_seal_reveal(ex->rt->keys, c->rbody.data ? c->rbody.data : "", c->rbody.len, json, &out, &opened);
    c->resp_reveal = false;
    int framing = c->resp_framing;
    c->resp_framing = RF_LENGTH;
    resp.content_length = (int64_t)out.len;
    send_response_head(c, &resp);
    client_write(c, out.data ? out.data : "", out.len);
    bg_buf_dispose_secure(&out);
    bg_buf_dispose_secure(&c->rbody);
    if (c->up) {
        bg_upstream_release(c->up, framing != RF_CLOSE && c->resp_keep_alive && ex->body_done);
        c->up = NULL;
    }
    finish_exchange(c);
}

/* ---- end of an exchange ---------------------------------------------------------------- */

static void finish_exchange(bg_conn_t *c)
{
    if (c->closing)
        return;
    bg_exchange_t *ex = c->ex;
    if (ex) {
        if (ex->vendor)
            bg_exchange_record(ex);
        bg_metrics_inflight(c->w->server->metrics, c->w->id, -1);
        bg_exchange_destroy(ex);
        c->ex = NULL;
    }
    if (c->up) {
        bg_upstream_release(c->up, false);
        c->up = NULL;
    }
    bg_buf_dispose_secure(&c->pending);
    bg_buf_reset(&c->out_head);
    bg_buf_dispose_secure(&c->out_body);
    bg_buf_reset(&c->rin);
    c->resp_chunked_out = false;
    c->up_stream_body = false;
    c->retried = false;
    c->state = CS_HEAD;
    if (c->close_after || (c->peer_eof && c->in.len == 0)) {
        begin_close(c);
        return;
    }
    arm_idle(c);
    bg_stream_read_start(&c->stream);
    if (c->in.len)
        process(c);
}

/* ---- stream callbacks ------------------------------------------------------------------ */

static void on_open(bg_stream_t *s)
{
    bg_conn_t *c = s->data;
    if (c->tls)
        bg_stream_peer_subject(s, c->subject, sizeof c->subject);
}

static void on_data(bg_stream_t *s, const char *p, size_t n)
{
    bg_conn_t *c = s->data;
    if (c->state == CS_CLOSING)
        return; /* lingering: discard */
    bg_buf_append(&c->in, p, n);
    if (c->state == CS_HEAD)
        arm_header(c);
    else if (c->state == CS_BODY)
        arm_idle(c);
    process(c);
}

static void on_eof(bg_stream_t *s)
{
    bg_conn_t *c = s->data;
    c->peer_eof = true;
    if (c->state == CS_CLOSING) {
        if (c->stream.write_pending == 0)
            conn_close(c);
        return;
    }
    if (c->state == CS_HEAD) {
        process(c); /* answers a complete buffered request, rejects a partial one, or closes */
        return;
    }
    if (c->state == CS_BODY || (c->ex && !c->ex->body_done)) {
        conn_close(c); /* the body will never be complete */
        return;
    }
    /* Deciding or forwarding with the request complete: answer, then close. */
}

static void on_error(bg_stream_t *s, int err, const char *what)
{
    bg_conn_t *c = s->data;
    if (strncmp(what, "tls", 3) == 0)
        bg_log_debug("client tls failed", "peer", c->peer, "error", what);
    (void)err;
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
    if (c->up && c->state == CS_FORWARD)
        bg_upstream_resume(c->up);
}

static const bg_stream_callbacks_t conn_callbacks = {
    .on_open = on_open,
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drain = on_drain,
    .on_closed = stream_closed,
};

void bg_conn_accept(bg_worker_t *w, uv_stream_t *listener, int li)
{
    const bg_config_t *cfg = w->rt->cfg;
    bg_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->w = w;
    c->li = li;
    c->tls = li >= 0 && (size_t)li < cfg->nlisten && cfg->listen[li].tls;
    bg_buf_init(&c->in);
    bg_stream_init(&c->stream, &w->loop, &conn_callbacks, c);
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    bg_metrics_conn(w->server->metrics, w->id, 1);
    SSL_CTX *ctx = c->tls ? w->rt->listen_ctx[li] : NULL;
    uint32_t per_worker = (cfg->limits.max_connections + w->server->nworkers - 1) / w->server->nworkers;
    if (bg_stream_accept(&c->stream, listener, ctx) < 0 || w->nconns > per_worker || w->draining) {
        conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[48] = "";
    if (uv_tcp_getpeername(&c->stream.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
            snprintf(c->peer, sizeof c->peer, "%s:%u", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
        } else {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
            snprintf(c->peer, sizeof c->peer, "[%s]:%u", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        }
    }
    arm_idle(c);
}

void bg_conn_drain(bg_conn_t *c)
{
    c->close_after = true;
    if (c->state == CS_HEAD && c->in.len == 0)
        conn_close(c);
}

bg_conn_t *bg_conn_next(bg_conn_t *c) { return c->next; }

void bg_conn_force_close(bg_conn_t *c) { conn_close(c); }
