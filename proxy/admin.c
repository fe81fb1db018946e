/*
 * admin.c — the admin listener (loopback by default) on the main thread's loop:
 * GET /metrics (Prometheus text), GET /healthz (alive), GET /readyz (config loaded, GeoIP
 * open, records writable), POST /reload. An optional bearer token guards every path.
 * One request per connection (Connection: close): scrapes are rare and small.
 */
#include "server.h"

#include "http1.h"
#include "log.h"
#include "stream.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    bg_stream_t stream;
    bg_server_t *server;
    bg_buf_t in;
    bool answered;
} admin_conn_t;

static void admin_closed(bg_stream_t *s)
{
    admin_conn_t *a = s->data;
    bg_buf_dispose(&a->in);
    free(a);
}

static void answer(admin_conn_t *a, int status, const char *ctype, const char *body, size_t n)
{
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
                      "Cache-Control: no-store\r\n\r\n", status, bg_h1_reason(status), ctype, n);
    bg_buf_append(&b, body, n);
    bg_stream_write(&a->stream, b.data, b.len);
    bg_buf_dispose(&b);
    a->answered = true;
    bg_stream_shutdown(&a->stream);
}

static void json_list(bg_buf_t *b, const char *name, char *const *items, size_t n)
{
    bg_buf_printf(b, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        bg_buf_puts(b, i ? ",\"" : "\"");
        bg_buf_json_escape(b, items[i], strlen(items[i]));
        bg_buf_puts(b, "\"");
    }
    bg_buf_puts(b, "]");
}

/* POST /reload refused: an RFC 9457 problem listing every problem exactly as `bordergate check`
 * prints it ("FILE:LINE:COL: message"). The messages carry positions, key names, file names and
 * the library's reasons, never the contents of a key file or the admin token. */
static void answer_reload_refused(admin_conn_t *a, const bg_diag_t *d)
{
    const bg_runtime_t *rt = a->server->rt; /* still the running one */
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_printf(&b, "{\"type\":\"https://bordergate.dev/problems/config-invalid\",\"title\":\"Config not "
                      "reloaded\",\"status\":422,\"detail\":\"the new config has %zu problem%s; the running config "
                      "(version %.12s) keeps serving\",\"reloaded\":false,\"config_version\":\"%s\"",
                  d->nerrors, d->nerrors == 1 ? "" : "s", rt->cfg->version, rt->cfg->version);
    json_list(&b, "errors", d->errors, d->nerrors);
    if (d->nwarnings)
        json_list(&b, "warnings", d->warnings, d->nwarnings);
    bg_buf_puts(&b, "}\n");
    answer(a, 422, "application/problem+json", b.data, b.len);
    bg_buf_dispose(&b);
}

static void handle(admin_conn_t *a, const bg_h1_request_t *req)
{
    bg_server_t *s = a->server;
    const bg_config_t *cfg = s->rt->cfg;
    if (cfg->admin.token) {
        bool ok = false;
        for (size_t i = 0; i < req->nheaders; i++) {
            const bg_header_t *h = &req->headers[i];
            if (bg_span_ieq(h->name, h->name_len, "authorization") && h->value_len == 7 + strlen(cfg->admin.token) &&
                bg_span_ieq(h->value, 7, "bearer ") &&
                CRYPTO_memcmp(h->value + 7, cfg->admin.token, strlen(cfg->admin.token)) == 0)
                ok = true;
        }
        if (!ok) {
            answer(a, 401, "text/plain", "unauthorized\n", 13);
            return;
        }
    }
    const char *path = req->target;
    size_t plen = req->target_len;
    const char *q = memchr(path, '?', plen);
    if (q)
        plen = (size_t)(q - path);
    bool get = bg_span_ieq(req->method, req->method_len, "GET") || bg_span_ieq(req->method, req->method_len, "HEAD");
    bool post = bg_span_ieq(req->method, req->method_len, "POST");
    if (bg_span_ieq(path, plen, "/healthz") && get) {
        answer(a, 200, "text/plain", "ok\n", 3);
    } else if (bg_span_ieq(path, plen, "/readyz") && get) {
        /* Records: failing (a disk error), stalled (work pending and no write or fsync finished
         * for records.stall_timeout: a disk that stopped answering, seen however light the traffic),
         * or backlogged (the writer's queue is 3/4 full, and stays so until it is back under 1/2:
         * exchanges are about to be, or are, refused with 503). */
        const char *rwhy = "ok";
        uint64_t stalled = 0; /* the age the verdict saw: read again, it may be 0 by now */
        bool records = bg_records_ready(s->records, &rwhy, &stalled);
        char detail[64] = "";
        if (strcmp(rwhy, "stalled") == 0)
            snprintf(detail, sizeof detail, " (no write or fsync finished for %llu ms)",
                     (unsigned long long)stalled);
        bool geo = s->rt->geo != NULL || !cfg->geoip.database;
        bool stopping = atomic_load(&s->stopping);
        char body[200];
        int n = snprintf(body, sizeof body, "config %s\ngeoip %s\nrecords %s%s\n%s", "ok",
                         geo ? "ok" : "unavailable", rwhy, detail, stopping ? "stopping\n" : "");
        answer(a, records && geo && !stopping ? 200 : 503, "text/plain", body, (size_t)n);
    } else if (bg_span_ieq(path, plen, "/metrics") && get) {
        bg_buf_t out;
        bg_buf_init(&out);
        bg_metrics_render(s->metrics, cfg, s->records, s->rt->geo ? bg_geo_build_epoch(s->rt->geo) : 0, &out);
        answer(a, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "", out.len);
        bg_buf_dispose(&out);
    } else if (bg_span_ieq(path, plen, "/reload") && post) {
        bg_diag_t d;
        bg_diag_init(&d);
        if (bg_server_reload(s, &d) == 0)
            answer(a, 200, "application/json", "{\"reloaded\":true}\n", 18);
        else
            answer_reload_refused(a, &d);
        bg_diag_dispose(&d);
    } else if (bg_span_ieq(path, plen, "/healthz") || bg_span_ieq(path, plen, "/readyz") ||
               bg_span_ieq(path, plen, "/metrics") || bg_span_ieq(path, plen, "/reload")) {
        answer(a, 405, "text/plain", "method not allowed\n", 19);
    } else {
        answer(a, 404, "text/plain", "not found\n", 10);
    }
}

static void on_data(bg_stream_t *st, const char *p, size_t n)
{
    admin_conn_t *a = st->data;
    if (a->answered)
        return;
    bg_buf_append(&a->in, p, n);
    bg_h1_limits_t lim = {16384, 64, 4096};
    bg_h1_request_t req;
    int r = bg_h1_parse_request(a->in.data, a->in.len, &lim, &req);
    if (r == BG_H1_PARTIAL) {
        if (a->in.len > 16384)
            answer(a, 431, "text/plain", "too large\n", 10);
        return;
    }
    if (r < 0) {
        answer(a, req.status ? req.status : 400, "text/plain", "bad request\n", 12);
        return;
    }
    handle(a, &req);
}

static void on_eof(bg_stream_t *st) { bg_stream_close(st); }
static void on_error(bg_stream_t *st, int err, const char *what) { (void)st, (void)err, (void)what; }
static void on_drain(bg_stream_t *st)
{
    admin_conn_t *a = st->data;
    if (a->answered)
        bg_stream_close(st);
}

static const bg_stream_callbacks_t admin_callbacks = {
    .on_data = on_data, .on_eof = on_eof, .on_error = on_error, .on_drain = on_drain, .on_closed = admin_closed,
};

static void admin_accept_cb(bg_listen_sock_t *l, int fd, const struct sockaddr_storage *peer)
{
    (void)peer;
    bg_server_t *s = l->data;
    admin_conn_t *a = calloc(1, sizeof *a);
    if (!a)
        abort();
    a->server = s;
    bg_buf_init(&a->in);
    bg_stream_init(&a->stream, s->loop, &admin_callbacks, a);
    if (bg_stream_accept(&a->stream, fd, NULL) < 0)
        bg_stream_close(&a->stream);
}

int bg_admin_start(bg_server_t *s, char *err, size_t errlen)
{
    const bg_config_t *cfg = s->rt->cfg;
    const char *step;
    int fd = bg_socket_bind(&cfg->admin.address, false, &step); /* one admin socket, dual-stack */
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", cfg->admin.address.text, strerror(-fd));
        return -1;
    }
    int r = bg_listen_sock_start(&s->admin, s->loop, fd, 128, admin_accept_cb, s);
    if (r < 0) {
        snprintf(err, errlen, "%s: %s", cfg->admin.address.text, uv_strerror(r));
        bg_listen_sock_close(&s->admin, NULL);
        return -1;
    }
    s->admin_open = true;
    return 0;
}

void bg_admin_stop(bg_server_t *s)
{
    if (!s->admin_open)
        return;
    s->admin_open = false;
    bg_listen_sock_close(&s->admin, NULL);
}
