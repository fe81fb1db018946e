/*
 * stream.c (unit) — proxy/stream.c on a real libuv loop and loopback sockets: a stream closed before
 * it had a socket still reports on_closed once, later; a refused connect reports its errno through
 * on_error (never from inside bg_stream_connect); 4 MiB written at once through a listener's
 * accepted stream arrive whole and in order while the reader pauses and resumes (the write queue
 * grows, slides and drains; on_drain follows), and a shutdown after the queue reaches the reader as
 * end of stream; with the loop's io_uring, a batched read whose stream was paused by an earlier
 * result's callback is kept and handed over, in order, after read_start, and one whose stream was
 * closed is dropped (what it wrote just before the close still reaches its peer); writes made inside
 * the check keep their order: a small one waits for the check's next io_uring_enter, a large one
 * behind it joins its queue, and a large one to a stream with nothing queued goes at once; a
 * buffer handed over with bg_stream_write_give becomes the queue of a stream with nothing queued
 * (inside the check, and outside it when the socket takes only part), is copied behind queued
 * bytes, arrives byte-exact and in order, and is wiped once sent; bg_stream_read_take hands the
 * owner the buffer of a batched read that ends with the bytes asked for (once; not a part that
 * ends before the read's end), and the next reads land in the storage it gave up. Single-threaded.
 */
#include "log.h"
#include "stream.h"
#include "test.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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


/* ---- batched reads (io_uring): a result whose stream was paused or closed meanwhile --------- */

#define PART1 30000
#define PART2 70000

typedef struct {
    uv_loop_t *loop;
    bg_stream_t a, b, c;
    rec_t ra, rb, rc;
    int peer_a, peer_b, peer_c;
    uv_timer_t resume;
    size_t b_stashed;   /* what B held, taken by a batched read while paused, when resumed */
    bool b_queued_at_resume;
} batch_t;

static batch_t *B;

static void write_pattern(int fd, size_t from, size_t n)
{
    unsigned char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(from + i);
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, p + off, n - off);
        CHECK(w > 0);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(p);
}

static void batch_resume_cb(uv_timer_t *t)
{
    (void)t;
    B->b_stashed = B->b.stash_len;
    bg_stream_read_start(&B->b);
    B->b_queued_at_resume = B->b.rq_queued;
    CHECK(bg_stream_unread(&B->b, false)); /* stashed bytes count as unread */
}

static void a_data(bg_stream_t *s, const char *p, size_t n)
{
    on_data(s, p, n);
    if (B->ra.paused_once)
        return;
    B->ra.paused_once = true;
    /* B's and C's reads went to the kernel with A's: their results wait behind this callback. */
    bg_stream_read_stop(&B->b);
    /* A write inside the check waits for its next io_uring_enter; a close before that sends it. */
    CHECK_INT(bg_stream_write(&B->c, "bye", 3), 0);
    CHECK(B->c.write_pending == 3);
    bg_stream_close(&B->c);
    write_pattern(B->peer_b, PART1, PART2); /* arrives behind what B's read took */
    shutdown(B->peer_b, SHUT_WR);
    uv_timer_start(&B->resume, batch_resume_cb, 20, 0);
}

static void b_eof(bg_stream_t *s)
{
    on_eof(s);
    bg_stream_close(&B->a);
    bg_stream_close(s);
    uv_close((uv_handle_t *)&B->resume, NULL);
}

static void c_data(bg_stream_t *s, const char *p, size_t n)
{
    on_data(s, p, n); /* must never run: C was closed before its result was handed over */
}

static const bg_stream_callbacks_t a_cbs = {.on_data = a_data, .on_eof = on_eof, .on_error = on_error, .on_closed = on_closed};
static const bg_stream_callbacks_t b_cbs = {.on_data = on_data, .on_eof = b_eof, .on_error = on_error, .on_closed = on_closed};
static const bg_stream_callbacks_t c_cbs = {.on_data = c_data, .on_eof = on_eof, .on_error = on_error, .on_closed = on_closed};

/* A loop with the calling thread's io_uring started, for the batched path's tests; false (and a
 * line saying so) where the kernel refuses a ring: those tests cannot run there. */
static bool uring_loop(uv_loop_t *loop)
{
    uv_loop_init(loop);
    int r = bg_stream_uring_start(loop);
    if (r < 0) {
        fprintf(stderr, "  (no io_uring here: %s; the batched path is not tested)\n", uv_strerror(r));
        uv_loop_close(loop);
        return false;
    }
    return true;
}

static void test_batched_read_of_a_paused_or_closed_stream(void)
{
    bg_log_setup(BG_LOG_WARN, BG_LOG_LOGFMT); /* not the ring's counters line at stop */
    uv_loop_t loop;
    if (!uring_loop(&loop))
        return;
    batch_t x = {.loop = &loop};
    B = &x;
    int pa[2], pb[2], pc[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pa), 0);
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pb), 0);
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pc), 0);
    x.peer_a = pa[1], x.peer_b = pb[1], x.peer_c = pc[1];
    uv_timer_init(&loop, &x.resume);
    bg_stream_init(&x.a, &loop, &a_cbs, &x.ra);
    bg_stream_init(&x.b, &loop, &b_cbs, &x.rb);
    bg_stream_init(&x.c, &loop, &c_cbs, &x.rc);
    CHECK_INT(bg_stream_accept(&x.a, pa[0], NULL), 0);
    CHECK_INT(bg_stream_accept(&x.b, pb[0], NULL), 0);
    CHECK_INT(bg_stream_accept(&x.c, pc[0], NULL), 0);
    /* All three readable before the first poll, A first: one batch, A's result handed over first. */
    write_pattern(x.peer_a, 0, 1000);
    write_pattern(x.peer_b, 0, PART1);
    write_pattern(x.peer_c, 0, 500);
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t enters, reads, late;
    bg_stream_uring_stats(&enters, &reads, &late);
    bg_stream_uring_stop(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(x.ra.got, 1000);
    CHECK_INT(x.ra.bad, 0);
    CHECK_INT(x.b_stashed, PART1);      /* taken while paused, kept */
    CHECK(x.b_queued_at_resume);        /* handed over by the next check, not inside read_start */
    CHECK_INT(x.rb.got, PART1 + PART2); /* then the rest, in order */
    CHECK_INT(x.rb.bad, 0);
    CHECK_INT(x.rb.eofs, 1);
    CHECK_INT(x.rc.got, 0);             /* C's result dropped with C */
    char bye[8] = {0};
    CHECK_INT(read(x.peer_c, bye, sizeof bye), 3); /* what C wrote just before its close */
    CHECK(memcmp(bye, "bye", 3) == 0);
    CHECK_INT(x.ra.errors + x.rb.errors + x.rc.errors, 0);
    CHECK_INT(x.ra.closed + x.rb.closed + x.rc.closed, 3);
    CHECK(enters >= 1 && reads >= 3);
    CHECK_INT(late, 0);
    close(x.peer_a), close(x.peer_b), close(x.peer_c);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* ---- writes inside the io_uring check: batched, whatever their size, in order --------------- */

#define SMALL 100
#define LARGE 20000 /* more than one read's worth: the socket may take it in parts */

typedef struct {
    bg_stream_t a, b;
    rec_t ra, rb;
    int peer_a, peer_b;
    size_t a_small, a_large, b_large; /* write_pending right after each write */
    bool a_listed;                    /* A's queue waits for the check's next io_uring_enter */
    char *big;
} wbatch_t;

static wbatch_t *W;

static void w_data(bg_stream_t *s, const char *p, size_t n)
{
    (void)p, (void)n;
    if (s != &W->a)
        return;
    /* Inside the check: A's small write waits for its next io_uring_enter; its large write after
     * it must join that queue (never overtake it); B's large write waits for the same enter. */
    CHECK_INT(bg_stream_write(&W->a, W->big, SMALL), 0);
    W->a_small = W->a.write_pending;
    W->a_listed = W->a.sq_queued;
    CHECK_INT(bg_stream_write(&W->a, W->big + SMALL, LARGE), 0);
    W->a_large = W->a.write_pending;
    CHECK_INT(bg_stream_write(&W->b, W->big, LARGE), 0);
    W->b_large = W->b.write_pending;
}

static void w_drain(bg_stream_t *s)
{
    /* A queue went out (the check's next io_uring_enter, then the poll for any rest); once both
     * have, the streams close. */
    on_drain(s);
    if (W->ra.drains && W->rb.drains) {
        bg_stream_close(&W->a);
        bg_stream_close(&W->b);
    }
}

static const bg_stream_callbacks_t w_cbs = {
    .on_data = w_data, .on_eof = on_eof, .on_error = on_error, .on_drain = w_drain, .on_closed = on_closed,
};

/* Read n bytes from a blocking peer, compare them with big[0..n). */
static size_t read_exact_pattern(int fd, const char *big, size_t n)
{
    char *got = malloc(n);
    size_t have = 0;
    while (have < n) {
        ssize_t r = read(fd, got + have, n - have);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    size_t bad = have == n ? (size_t)(memcmp(got, big, n) != 0) : 1;
    free(got);
    return bad;
}

static void test_writes_inside_the_check_keep_their_order(void)
{
    bg_log_setup(BG_LOG_WARN, BG_LOG_LOGFMT);
    uv_loop_t loop;
    if (!uring_loop(&loop))
        return;
    wbatch_t x = {0};
    W = &x;
    x.big = malloc(SMALL + LARGE);
    for (size_t i = 0; i < SMALL + LARGE; i++)
        x.big[i] = (char)pattern(i);
    int pa[2], pb[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pa), 0);
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pb), 0);
    x.peer_a = pa[1], x.peer_b = pb[1];
    bg_stream_init(&x.a, &loop, &w_cbs, &x.ra);
    bg_stream_init(&x.b, &loop, &w_cbs, &x.rb);
    CHECK_INT(bg_stream_accept(&x.a, pa[0], NULL), 0);
    CHECK_INT(bg_stream_accept(&x.b, pb[0], NULL), 0);
    CHECK_INT(write(x.peer_a, "go", 2), 2); /* A's read result runs w_data inside the check */
    uv_run(&loop, UV_RUN_DEFAULT);
    bg_stream_uring_stop(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(x.a_small, SMALL);          /* queued for the next enter */
    CHECK(x.a_listed);
    CHECK_INT(x.a_large, SMALL + LARGE);  /* behind it, not sent past it */
    CHECK_INT(x.b_large, LARGE);          /* queued for the same enter */
    int fl = 0;
    CHECK_INT(ioctl(x.peer_a, FIONBIO, &fl), 0);
    CHECK_INT(read_exact_pattern(x.peer_a, x.big, SMALL + LARGE), 0);
    CHECK_INT(read_exact_pattern(x.peer_b, x.big, LARGE), 0);
    CHECK_INT(x.ra.drains, 1);
    CHECK_INT(x.rb.drains, 1);
    CHECK_INT(x.ra.errors + x.rb.errors, 0);
    CHECK_INT(x.ra.closed + x.rb.closed, 2);
    close(x.peer_a), close(x.peer_b);
    free(x.big);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* ---- bg_stream_write_give: a buffer handed over instead of copied ---------------------------- */

#define GIVE_OFF 64 /* bytes in front of the given ones (room the exchange keeps for a head) */
#define GIVE_BIG 100000

typedef struct {
    bg_stream_t a, b;
    rec_t ra, rb;
    char *big;
    int a_ret, b_ret;
    bool a_kept;         /* A's caller kept its buffer (copied behind A's queued bytes) */
    char *b_given;       /* the buffer handed to B */
    char *b_back;        /* what came back: B's former queue storage (none) */
    bool b_is_queue;     /* B's queue is the given buffer, all of it pending */
    bool b_still;        /* at B's drain its queue storage is still the given buffer */
    size_t b_unwiped;    /* bytes of it not zero at B's drain */
} give_t;

static give_t *G;

static char *given_copy(const char *src, size_t n)
{
    char *q = malloc(GIVE_OFF + n);
    memset(q, 'x', GIVE_OFF); /* the room: wiped with the rest */
    memcpy(q + GIVE_OFF, src, n);
    return q;
}

static size_t nonzero(const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] != 0;
    return k;
}

static void g_data(bg_stream_t *s, const char *p, size_t n)
{
    (void)p, (void)n;
    if (s != &G->a)
        return;
    /* Inside the check. A has bytes queued: the given ones are copied behind them. */
    CHECK_INT(bg_stream_write(&G->a, G->big, SMALL), 0);
    char *buf = given_copy(G->big + SMALL, LARGE), *mine = buf;
    size_t cap = GIVE_OFF + LARGE;
    G->a_ret = bg_stream_write_give(&G->a, &buf, &cap, GIVE_OFF, LARGE);
    G->a_kept = buf == mine && cap == GIVE_OFF + LARGE;
    free(buf);
    /* B has nothing queued: the buffer becomes its queue, for the check's next io_uring_enter. */
    char *bb = given_copy(G->big, LARGE);
    size_t bc = GIVE_OFF + LARGE;
    G->b_given = bb;
    G->b_ret = bg_stream_write_give(&G->b, &bb, &bc, GIVE_OFF, LARGE);
    G->b_back = bb;
    G->b_is_queue = G->b.wq == G->b_given && G->b.write_pending == LARGE && G->b.wq_off == GIVE_OFF;
}

static void g_drain(bg_stream_t *s)
{
    on_drain(s);
    if (s == &G->b) {
        G->b_still = G->b.wq == G->b_given;
        G->b_unwiped = G->b_still ? nonzero(G->b.wq, GIVE_OFF + LARGE) : 0;
    }
    if (G->ra.drains && G->rb.drains) {
        bg_stream_close(&G->a);
        bg_stream_close(&G->b);
    }
}

static const bg_stream_callbacks_t g_cbs = {
    .on_data = g_data, .on_eof = on_eof, .on_error = on_error, .on_drain = g_drain, .on_closed = on_closed,
};

static void test_given_buffers_inside_the_check_keep_their_order_and_are_wiped(void)
{
    uv_loop_t loop;
    if (!uring_loop(&loop))
        return;
    give_t x = {0};
    G = &x;
    x.big = malloc(SMALL + LARGE);
    for (size_t i = 0; i < SMALL + LARGE; i++)
        x.big[i] = (char)pattern(i);
    int pa[2], pb[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pa), 0);
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pb), 0);
    bg_stream_init(&x.a, &loop, &g_cbs, &x.ra);
    bg_stream_init(&x.b, &loop, &g_cbs, &x.rb);
    CHECK_INT(bg_stream_accept(&x.a, pa[0], NULL), 0);
    CHECK_INT(bg_stream_accept(&x.b, pb[0], NULL), 0);
    CHECK_INT(write(pa[1], "go", 2), 2);
    uv_run(&loop, UV_RUN_DEFAULT);
    bg_stream_uring_stop(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(x.a_ret, 0);
    CHECK(x.a_kept);
    CHECK_INT(x.b_ret, 1);
    CHECK(x.b_back == NULL); /* B had no queue storage yet */
    CHECK(x.b_is_queue);
    CHECK(x.b_still);
    CHECK_INT(x.b_unwiped, 0);
    int fl = 0;
    CHECK_INT(ioctl(pa[1], FIONBIO, &fl), 0);
    CHECK_INT(read_exact_pattern(pa[1], x.big, SMALL + LARGE), 0);
    CHECK_INT(read_exact_pattern(pb[1], x.big, LARGE), 0);
    CHECK_INT(x.ra.errors + x.rb.errors, 0);
    CHECK_INT(x.ra.closed + x.rb.closed, 2);
    close(pa[1]), close(pb[1]);
    free(x.big);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static bg_stream_t *GD;
static size_t gd_unwiped;
static char *gd_given;
static void gd_drain(bg_stream_t *s)
{
    on_drain(s);
    gd_unwiped = s->wq == gd_given ? nonzero(s->wq, GIVE_OFF + GIVE_BIG) : (size_t)-1;
    bg_stream_close(s);
}
static const bg_stream_callbacks_t gd_cbs = {
    .on_data = on_data, .on_eof = on_eof, .on_error = on_error, .on_drain = gd_drain, .on_closed = on_closed,
};

/* Outside the check a given buffer goes to the socket at once; what it does not take stays in the
 * buffer, which becomes the queue: the rest goes out by the poll, in order, and is wiped. Then a
 * stream whose old storage held bytes gives that storage back wiped. */
static void test_given_buffer_the_socket_takes_in_part_becomes_the_queue(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *big = malloc(GIVE_BIG);
    for (size_t i = 0; i < GIVE_BIG; i++)
        big[i] = (char)pattern(i);
    int p[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p), 0);
    int sz = 4096;
    setsockopt(p[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz); /* takes only part of it at once */
    rec_t rs = {0};
    bg_stream_t s;
    bg_stream_init(&s, &loop, &gd_cbs, &rs);
    GD = &s;
    CHECK_INT(bg_stream_accept(&s, p[0], NULL), 0);
    char *buf = given_copy(big, GIVE_BIG);
    size_t cap = GIVE_OFF + GIVE_BIG;
    gd_given = buf;
    CHECK_INT(bg_stream_write_give(&s, &buf, &cap, GIVE_OFF, GIVE_BIG), 1);
    CHECK(buf == NULL);
    CHECK(s.wq == gd_given);
    CHECK(s.write_pending > 0 && s.write_pending < GIVE_BIG);
    /* More bytes behind the given ones are copied into the queue (slid to the front of the given
     * storage, or moved to larger storage and the given one wiped): the caller keeps its buffer. */
    char *more = given_copy(big, 1000), *mine = more;
    size_t mcap = GIVE_OFF + 1000;
    size_t before = s.write_pending;
    CHECK_INT(bg_stream_write_give(&s, &more, &mcap, GIVE_OFF, 1000), 0);
    CHECK(more == mine);
    CHECK_INT(s.write_pending, before + 1000);
    free(more);
    gd_given = s.wq; /* where the queue is now */
    int fl = 0;
    CHECK_INT(ioctl(p[1], FIONBIO, &fl), 0);
    /* A blocking reader in the same thread would wait for the loop: read in pieces between runs. */
    char *got = malloc(GIVE_BIG + 1000);
    size_t have = 0;
    while (have < GIVE_BIG + 1000 && !rs.closed) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t r = recv(p[1], got + have, GIVE_BIG + 1000 - have, MSG_DONTWAIT);
        if (r > 0)
            have += (size_t)r;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    while (have < GIVE_BIG + 1000) {
        ssize_t r = recv(p[1], got + have, GIVE_BIG + 1000 - have, MSG_DONTWAIT);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    CHECK_INT(have, GIVE_BIG + 1000);
    CHECK_INT(memcmp(got, big, GIVE_BIG), 0);
    CHECK_INT(memcmp(got + GIVE_BIG, big, 1000), 0);
    CHECK_INT(rs.drains, 1);
    CHECK_INT(gd_unwiped, 0);
    CHECK_INT(rs.errors, 0);
    CHECK_INT(rs.closed, 1);
    free(got);
    free(big);
    close(p[1]);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* ---- bg_stream_read_take: a batched read's buffer taken over by its owner ------------------- */

typedef struct {
    bg_stream_t s;
    rec_t r;
    int peer;
    int reads;
    bool part_refused, taken, again_refused, p_inside, room_before;
    char *spare;                /* the storage given up for the slot */
    char *held;                 /* the buffer taken (first read) */
    size_t held_cap, held_n;
    const char *held_p;
    bool second_in_spare;       /* the second read landed in the storage given up */
} take_t;

static take_t *T;

static void t_data(bg_stream_t *s, const char *p, size_t n)
{
    on_data(s, p, n); /* counts and checks the pattern */
    T->reads++;
    if (T->reads == 1) {
        char *buf = T->spare;
        size_t cap = 70000;
        T->part_refused = n > 1 && !bg_stream_read_take(s, p, n - 1, &buf, &cap) && buf == T->spare;
        T->taken = bg_stream_read_take(s, p, n, &buf, &cap);
        T->held = buf, T->held_cap = cap, T->held_p = p, T->held_n = n;
        T->p_inside = p >= buf && p + n < buf + cap;
        T->room_before = (size_t)(p - buf) >= 512;
        char *b2 = NULL;
        size_t c2 = 0;
        T->again_refused = !bg_stream_read_take(s, p, n, &b2, &c2) && b2 == NULL;
        CHECK_INT(write(T->peer, "x", 1), 1); /* a second read */
        return;
    }
    /* The second read: in the storage given up (its first bytes after the room). */
    T->second_in_spare = p >= T->spare && p < T->spare + 70000;
    bg_stream_close(s);
}

static const bg_stream_callbacks_t t_cbs = {
    .on_data = t_data, .on_eof = on_eof, .on_error = on_error, .on_drain = on_drain, .on_closed = on_closed,
};

static void test_read_take_hands_over_the_batched_reads_buffer(void)
{
    uv_loop_t loop;
    if (!uring_loop(&loop))
        return;
    take_t x = {0};
    T = &x;
    x.spare = malloc(70000);
    memset(x.spare, 0, 70000);
    int p[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p), 0);
    x.peer = p[1];
    bg_stream_init(&x.s, &loop, &t_cbs, &x.r);
    CHECK_INT(bg_stream_accept(&x.s, p[0], NULL), 0);
    char first[3000];
    for (size_t i = 0; i < sizeof first; i++)
        first[i] = (char)pattern(i);
    CHECK_INT(write(p[1], first, sizeof first), (int)sizeof first);
    uv_run(&loop, UV_RUN_DEFAULT);
    bg_stream_uring_stop(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(x.reads, 2);
    CHECK(x.part_refused);
    CHECK(x.taken);
    CHECK(x.p_inside);
    CHECK(x.room_before);
    CHECK(x.again_refused);
    CHECK(x.second_in_spare);
    CHECK_INT(x.held_n, sizeof first);
    CHECK_INT(memcmp(x.held_p, first, sizeof first), 0); /* the taken bytes are intact */
    CHECK_INT(x.r.bad, 1);                               /* the "x" is off the pattern */
    CHECK_INT(x.r.errors, 0);
    CHECK_INT(x.r.closed, 1);
    free(x.held);
    close(p[1]);
    CHECK_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    RUN(test_close_without_socket_reports_closed_once_later);
    RUN(test_refused_connect_reports_through_on_error);
    RUN(test_large_write_through_listener_with_pause_arrives_whole);
    RUN(test_batched_read_of_a_paused_or_closed_stream);
    RUN(test_writes_inside_the_check_keep_their_order);
    RUN(test_given_buffers_inside_the_check_keep_their_order_and_are_wiped);
    RUN(test_given_buffer_the_socket_takes_in_part_becomes_the_queue);
    RUN(test_read_take_hands_over_the_batched_reads_buffer);
    bg_stream_global_cleanup();
    return bg_test_done();
}
