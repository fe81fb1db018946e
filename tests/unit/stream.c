/*
 * stream.c (unit) — proxy/stream.c on a real libuv loop and loopback sockets: a stream closed before
 * it had a socket still reports on_closed once, later; a refused connect reports its errno through
 * on_error (never from inside bg_stream_connect); 4 MiB written at once through a listener's
 * accepted stream arrive whole and in order while the reader pauses and resumes (the write queue
 * grows, slides and drains; on_drain follows), and a shutdown after the queue reaches the reader as
 * end of stream. Single-threaded.
 */
#include "stream.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int opened, closed, errors, eofs, drains;
    int err;
    char what[64];
    size_t got;           /* bytes received */
    size_t bad;           /* bytes out of pattern */
    bool paused_once;
} rec_t;

static unsigned char pattern(size_t i) { return (unsigned char)(i * 131 + (i >> 12)); }

static void on_open(bg_stream_t *s) { ((rec_t *)s->data)->opened++; }
static void on_eof(bg_stream_t *s) { ((rec_t *)s->data)->eofs++; }
static void on_drain(bg_stream_t *s) { ((rec_t *)s->data)->drains++; }
static void on_closed(bg_stream_t *s) { ((rec_t *)s->data)->closed++; }
static void on_error(bg_stream_t *s, int err, const char *what)
{
    rec_t *r = s->data;
    r->errors++;
    r->err = err;
    snprintf(r->what, sizeof r->what, "%s", what);
}
static void on_data(bg_stream_t *s, const char *p, size_t n)
{
    rec_t *r = s->data;
    for (size_t i = 0; i < n; i++)
        r->bad += (unsigned char)p[i] != pattern(r->got + i);
    r->got += n;
}

static const bg_stream_callbacks_t cbs = {
    .on_open = on_open, .on_data = on_data, .on_eof = on_eof, .on_error = on_error,
    .on_drain = on_drain, .on_closed = on_closed,
};

static void test_close_without_socket_reports_closed_once_later(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    bg_stream_t s;
    bg_stream_init(&s, &loop, &cbs, &r);
    bg_stream_close(&s);
    bg_stream_close(&s); /* idempotent */
    CHECK_INT(r.closed, 0); /* never from inside the call */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.closed, 1);
    CHECK_INT(r.errors, 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_refused_connect_reports_through_on_error(void)
{
    /* A port nothing listens on: bound, never listening, so it stays free while we connect. */
    int hold = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK(bind(hold, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(hold, (struct sockaddr *)&a, &al) == 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    bg_stream_t s;
    bg_stream_init(&s, &loop, &cbs, &r);
    CHECK_INT(bg_stream_connect(&s, (struct sockaddr *)&a, NULL, NULL, NULL), 0);
    CHECK_INT(r.errors, 0); /* not from inside bg_stream_connect */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.errors, 1);
    CHECK_INT(r.err, UV_ECONNREFUSED);
    CHECK_STR(r.what, "connect");
    CHECK_INT(r.opened, 0);
    CHECK_INT(r.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    close(hold);
}

/* ---- a transfer through a listener -------------------------------------------------------- */

#define BIG (4u << 20)

typedef struct {
    uv_loop_t *loop;
    bg_listen_sock_t ls;
    bg_stream_t server, client;
    rec_t rs, rc;
    bool accepted;
    uv_timer_t resume;
    char *big;
} xfer_t;

static xfer_t *X;

static void resume_cb(uv_timer_t *t)
{
    (void)t;
    bg_stream_read_start(&X->server);
}

static void server_data(bg_stream_t *s, const char *p, size_t n)
{
    on_data(s, p, n);
    rec_t *r = s->data;
    if (!r->paused_once && r->got > BIG / 4) {
        /* Pause the reader for a moment: the writer's queue has to hold the rest. */
        r->paused_once = true;
        bg_stream_read_stop(s);
        uv_timer_start(&X->resume, resume_cb, 50, 0);
    }
}

static void server_eof(bg_stream_t *s)
{
    on_eof(s);
    bg_stream_close(s);
    bg_stream_close(&X->client);
    bg_listen_sock_close(&X->ls, NULL);
    uv_close((uv_handle_t *)&X->resume, NULL);
}

static const bg_stream_callbacks_t server_cbs = {
    .on_open = on_open, .on_data = server_data, .on_eof = server_eof, .on_error = on_error,
    .on_drain = on_drain, .on_closed = on_closed,
};

static void client_open(bg_stream_t *s)
{
    on_open(s);
    CHECK_INT(bg_stream_write(s, X->big, BIG), 0);
    CHECK(s->write_pending > 0); /* more than the socket takes at once */
    bg_stream_shutdown(s);      /* goes out after the queue */
}

static const bg_stream_callbacks_t client_cbs = {
    .on_open = client_open, .on_data = on_data, .on_eof = on_eof, .on_error = on_error,
    .on_drain = on_drain, .on_closed = on_closed,
};

static void accept_cb(bg_listen_sock_t *l, int fd, const struct sockaddr_storage *peer)
{
    CHECK_INT(peer->ss_family, AF_INET);
    CHECK(!X->accepted);
    X->accepted = true;
    (void)l;
    bg_stream_init(&X->server, X->loop, &server_cbs, &X->rs);
    CHECK_INT(bg_stream_accept(&X->server, fd, NULL), 0);
}

static void test_large_write_through_listener_with_pause_arrives_whole(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    xfer_t x = {.loop = &loop};
    X = &x;
    x.big = malloc(BIG);
    CHECK(x.big != NULL);
    for (size_t i = 0; i < BIG; i++)
        x.big[i] = (char)pattern(i);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
    CHECK_INT(bg_listen_sock_start(&x.ls, &loop, lfd, 16, accept_cb, &x), 0);
    uv_timer_init(&loop, &x.resume);
    bg_stream_init(&x.client, &loop, &client_cbs, &x.rc);
    CHECK_INT(bg_stream_connect(&x.client, (struct sockaddr *)&a, NULL, NULL, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(x.accepted);
    CHECK_INT(x.rc.opened, 1);
    CHECK_INT(x.rs.opened, 1);
    CHECK_INT(x.rs.got, BIG);
    CHECK_INT(x.rs.bad, 0);
    CHECK(x.rs.paused_once);
    CHECK_INT(x.rs.eofs, 1);
    CHECK_INT(x.rc.drains, 1); /* the queue emptied once, after the pause */
    CHECK_INT(x.rc.errors + x.rs.errors, 0);
    CHECK_INT(x.rc.closed, 1);
    CHECK_INT(x.rs.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    free(x.big);
}

int main(void)
{
    RUN(test_close_without_socket_reports_closed_once_later);
    RUN(test_refused_connect_reports_through_on_error);
    RUN(test_large_write_through_listener_with_pause_arrives_whole);
    bg_stream_global_cleanup();
    return bg_test_done();
}
