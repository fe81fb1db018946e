/*
 * records.c — the transfer-record writer: one thread owns the file. Workers encode a record
 * body on their own thread and push it into a bounded queue (the lock is held only for the
 * push); the writer takes batches, chains them (prev/hash), writes many lines per write(2),
 * fsyncs per policy, rotates by size, reopens on request and deletes expired rotated files.
 * Invariants: the chain head (w->head) always equals the hash of the last line on disk;
 * a record is never dropped: it is written or its done callback gets an error; after a disk
 * error the writer is unhealthy and refuses submits until a reopen succeeds. The queue's slots
 * are counted in `used` (queued records + reservations): a worker reserves before it forwards,
 * so its submit never waits, and a full queue refuses new work instead of blocking a loop.
 */
#include "records.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_CAP_DEFAULT 16384u /* records.queue_size when the config leaves it 0 */
#define BATCH_MAX 4096u
#define BATCH_SYNC_MS 100
/* How long the writer lets records gather before it takes a small batch (fewer than BATCH_MAX / 4):
 * see writer_main. Bounded so that a small batch and what arrives meanwhile stay far below the queue's capacity. */
#define GATHER_NS 1000000L
#define WRITER_NICE 10 /* the writer's nice value while it keeps up (see writer_main) */
#define RETENTION_CHECK_MS (3600 * 1000)

typedef struct {
    char *body; /* the record up to ,"prev" (malloc'd by submit, freed by the writer) */
    size_t len;
    void (*done)(void *arg, int status);
    void *arg;
} item_t;

struct bg_records {
    /* immutable after open */
    char *path, *dir, *base;
    uint64_t rotate_size;
    int retention_days;
    bg_fsync_t fsync_mode;
    size_t cap;             /* queue slots (records.queue_size) */
    int64_t stall_ms;       /* records.stall_timeout: pending work this long without progress = stalled */
    pthread_t thread;

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    item_t *q;
    size_t qhead, qlen;
    bool stopping, reopen_req;
    bool sleeping;          /* under mu: the writer waits on nonempty (only then is a signal needed) */

    /* shared, atomics (read by any thread) */
    atomic_bool healthy;
    atomic_uint_fast64_t depth, written, syncs;
    atomic_int err; /* the first error after healthy went false, a negative errno */
    /* Slots taken: records in the queue plus reservations not yet submitted (bg_records_reserve).
     * Never above cap, and never below qlen: a reserved submit always finds room. */
    atomic_size_t used;
    atomic_uint_fast64_t refused; /* reservations refused: no free slot */
    atomic_bool backlogged;       /* readiness hysteresis (bg_records_ready) */
    /* Monotonic ms since which the writer has had work (a queued record, or an fsync of written
     * lines) without finishing a step; 0 when it has none. Set by the first submit into an empty
     * queue (or by the writer before a timed fsync), reset by the writer after every step. A writer
     * blocked in write/fsync on a dead disk leaves it standing however little traffic there is. */
    atomic_int_least64_t pending_since;

    /* writer thread only */
    int fd;
    uint64_t size;
    char head[65];
    bool dirty;
    int64_t last_sync_ms, last_retention_ms;
    bg_buf_t wbuf;
    EVP_MD *md;             /* SHA-256, fetched once (NULL: bg_sha256_hex per record) */
    EVP_MD_CTX *mdctx;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, int e)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, strerror(e));
}

/* Work is pending from now unless it already was (then the older time stands). Any thread. */
static void mark_pending(bg_records_t *w)
{
    int_least64_t zero = 0;
    if (atomic_load_explicit(&w->pending_since, memory_order_relaxed) == 0)
        atomic_compare_exchange_strong_explicit(&w->pending_since, &zero, mono_ms(), memory_order_relaxed,
                                                memory_order_relaxed);
}

static void mark_failed(bg_records_t *w, const char *what, int e)
{
    if (e <= 0)
        e = EIO;
    if (atomic_load(&w->healthy)) {
        atomic_store(&w->err, -e);
        atomic_store(&w->healthy, false);
        bg_log_error("records writer failed; transfers are refused until it recovers", "path", w->path, "op", what,
                     "error", strerror(e));
        /* Wake submitters blocked on a full queue: they must see the failure. */
        pthread_mutex_lock(&w->mu);
        pthread_cond_broadcast(&w->nonfull);
        pthread_mutex_unlock(&w->mu);
    }
}

static int do_sync(bg_records_t *w)
{
    if (w->fd < 0)
        return 0;
    atomic_fetch_add_explicit(&w->syncs, 1, memory_order_relaxed);
    w->last_sync_ms = mono_ms();
    w->dirty = false;
    return fdatasync(w->fd) == 0 ? 0 : -errno;
}

static void sync_dir(const bg_records_t *w)
{
    int d = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
        (void)fsync(d);
        close(d);
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return -EIO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The last complete line of fd (size bytes) into hash/prev via bg_record_check_line.
 * *complete_end = offset just past the last '\n' (< size when the final line is torn).
 * Returns 0, 1 when there is no complete line, or -errno / -EINVAL (not a record). */
static int read_tail(int fd, uint64_t size, char hash[65], uint64_t *complete_end, const char **why)
{
    size_t win = size < BG_RECORD_MAX_LINE + 2 ? (size_t)size : BG_RECORD_MAX_LINE + 2;
    uint64_t off = size - win;
    char *buf = malloc(win + 1);
    int rc = 1;
    if (!buf)
        abort();
    size_t got = 0;
    while (got < win) {
        ssize_t k = pread(fd, buf + got, win - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = k < 0 ? -errno : -EIO;
            goto done;
        }
        got += (size_t)k;
    }
    size_t last_nl = win; /* index of the last '\n', win when none */
    for (size_t i = win; i-- > 0;)
        if (buf[i] == '\n') {
            last_nl = i;
            break;
        }
    if (last_nl == win) {
        *complete_end = 0;
        if (off != 0) {
            *why = "final line too long";
            rc = -EINVAL;
        }
        goto done;
    }
    *complete_end = off + last_nl + 1;
    size_t start = last_nl;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (start == 0 && off != 0) {
        *why = "last line too long";
        rc = -EINVAL;
        goto done;
    }
    char prev[65];
    int c = bg_record_check_line(buf + start, last_nl - start, prev, hash, why);
    /* A modified last record still names its hash; verify reports it, the chain goes on. */
    rc = c == 0 || c == -4 ? 0 : -EINVAL;
done:
    free(buf);
    return rc;
}

/* The newest rotated sibling (base.* or base-*, not compressed) by mtime, or NULL. */
static char *newest_sibling(const bg_records_t *w)
{
    DIR *d = opendir(w->dir);
    if (!d)
        return NULL;
    size_t bl = strlen(w->base);
    char *best = NULL;
    struct timespec best_t = {0, 0};
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t nl = strlen(n);
        if (nl <= bl + 1 || strncmp(n, w->base, bl) != 0 || (n[bl] != '.' && n[bl] != '-'))
            continue;
        static const char *const skip[] = {".gz", ".xz", ".zst", ".bz2", ".lz4", ".tmp"};
        bool compressed = false;
        for (size_t i = 0; i < BG_ARRAY_SIZE(skip); i++) {
            size_t sl = strlen(skip[i]);
            if (nl > sl && strcmp(n + nl - sl, skip[i]) == 0)
                compressed = true;
        }
        if (compressed)
            continue;
        bg_buf_t p;
        bg_buf_init(&p);
        bg_buf_printf(&p, "%s/%s", w->dir, n);
        struct stat st;
        if (stat(p.data, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
            (!best || st.st_mtim.tv_sec > best_t.tv_sec ||
             (st.st_mtim.tv_sec == best_t.tv_sec && st.st_mtim.tv_nsec > best_t.tv_nsec) ||
             (st.st_mtim.tv_sec == best_t.tv_sec && st.st_mtim.tv_nsec == best_t.tv_nsec && strcmp(p.data, best) > 0))) {
            free(best);
            best = p.data;
            best_t = st.st_mtim;
        } else {
            bg_buf_dispose(&p);
        }
    }
    closedir(d);
    return best;
}

/* Open (or create) the current file; when recover is set, take the chain head from disk
 * (cutting a torn final line first). Returns 0 or -errno with err filled. */
static int open_current(bg_records_t *w, bool recover, char *err, size_t errlen)
{
    int fd = open(w->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        set_err(err, errlen, "cannot open %s: %s", w->path, e);
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        set_err(err, errlen, "cannot stat %s: %s", w->path, e);
        close(fd);
        return -e;
    }
    uint64_t size = (uint64_t)st.st_size;
    char hash[65];
    const char *why = "";
    uint64_t end = 0;
    int rc = size ? read_tail(fd, size, hash, &end, &why) : 1;
    if (rc < 0 && rc != -EINVAL) {
        set_err(err, errlen, "cannot read %s: %s", w->path, -rc);
        close(fd);
        return rc;
    }
    if (size && end < size && rc >= 0) {
        /* A torn final write: the record was never acknowledged as durable. Cut it so the next
         * line starts on a line boundary, and say so. */
        char cut[32];
        snprintf(cut, sizeof cut, "%llu", (unsigned long long)(size - end));
        bg_log_warn("records: cutting a torn final line", "path", w->path, "bytes", cut);
        if (ftruncate(fd, (off_t)end) != 0) {
            int e = errno;
            set_err(err, errlen, "cannot truncate the torn line of %s: %s", w->path, e);
            close(fd);
            return -e;
        }
        size = end;
        rc = size ? read_tail(fd, size, hash, &end, &why) : 1;
    }
    if (rc == -EINVAL) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot recover the chain head: %s (move the file aside)", w->path, why);
        close(fd);
        return -EINVAL;
    }
    if (recover) {
        if (rc == 0) {
            memcpy(w->head, hash, 65);
        } else {
            /* Empty current file: the chain continues from the newest rotated file. */
            memcpy(w->head, BG_RECORD_GENESIS, 65);
            char *sib = newest_sibling(w);
            if (sib) {
                int sfd = open(sib, O_RDONLY | O_CLOEXEC);
                struct stat sst;
                if (sfd >= 0 && fstat(sfd, &sst) == 0) {
                    int src = read_tail(sfd, (uint64_t)sst.st_size, hash, &end, &why);
                    if (src == 0)
                        memcpy(w->head, hash, 65);
                    else
                        bg_log_warn("records: newest rotated file has no usable last record; chain restarts",
                                    "path", sib, "why", why);
                }
                if (sfd >= 0)
                    close(sfd);
                free(sib);
            }
        }
    }
    w->fd = fd;
    w->size = size;
    w->dirty = false;
    sync_dir(w);
    return 0;
}

/* Delete rotated files named base.YYYYMMDDTHHMMSS... older than retention_days. */
static void retention(bg_records_t *w)
{
    w->last_retention_ms = mono_ms();
    if (w->retention_days <= 0)
        return;
    DIR *d = opendir(w->dir);
    if (!d)
        return;
    int64_t now = bg_now_ms() / 1000, limit = (int64_t)w->retention_days * 86400;
    size_t bl = strlen(w->base);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, w->base, bl) != 0 || n[bl] != '.')
            continue;
        const char *t = n + bl + 1;
        unsigned Y, M, D, h, m, s;
        char T;
        if (strlen(t) < 15 || sscanf(t, "%4u%2u%2u%c%2u%2u%2u", &Y, &M, &D, &T, &h, &m, &s) != 7 || T != 'T' ||
            M < 1 || M > 12 || D < 1 || D > 31)
            continue;
        int64_t when = bg_days_from_civil((int)Y, M, D) * 86400 + h * 3600 + m * 60 + s;
        if (now - when <= limit)
            continue;
        bg_buf_t p;
        bg_buf_init(&p);
        bg_buf_printf(&p, "%s/%s", w->dir, n);
        if (unlink(p.data) == 0)
            bg_log_info("records: deleted an expired rotated file", "path", p.data);
        bg_buf_dispose(&p);
    }
    closedir(d);
}

/* Close the current file under a timestamped name and start a new one. */
static int rotate(bg_records_t *w)
{
    int rc = do_sync(w);
    if (rc != 0)
        return rc;
    close(w->fd);
    w->fd = -1;
    int64_t now = bg_now_ms();
    time_t s = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char ts[40];
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
    bg_buf_t name;
    bg_buf_init(&name);
    for (int i = 0;; i++) {
        bg_buf_reset(&name);
        bg_buf_printf(&name, "%s.%s.%03dZ", w->path, ts, (int)(now % 1000));
        if (i)
            bg_buf_printf(&name, "-%d", i);
        if (access(name.data, F_OK) != 0)
            break;
    }
    if (rename(w->path, name.data) != 0) {
        rc = -errno;
        bg_buf_dispose(&name);
        return rc;
    }
    bg_log_info("records: rotated", "path", name.data);
    bg_buf_dispose(&name);
    rc = open_current(w, false, NULL, 0);
    retention(w);
    return rc;
}

/* Write wbuf (lines of items [first, i)); on failure cut what was partly written and rewind the
 * chain head to the last line on disk. */
static int flush(bg_records_t *w, const char chunk_head[65], size_t nlines)
{
    if (!w->wbuf.len)
        return 0;
    int rc = write_all(w->fd, w->wbuf.data, w->wbuf.len);
    if (rc != 0) {
        if (ftruncate(w->fd, (off_t)w->size) != 0)
            bg_log_error("records: cannot cut a partial write", "path", w->path);
        memcpy(w->head, chunk_head, 65);
    } else {
        w->size += w->wbuf.len;
        w->dirty = true;
        atomic_fetch_add_explicit(&w->written, nlines, memory_order_relaxed);
    }
    bg_buf_reset(&w->wbuf);
    return rc;
}

static void process(bg_records_t *w, item_t *items, size_t k, int *status)
{
    size_t first = 0, i = 0;
    int rc = 0;
    if (!atomic_load(&w->healthy) || w->fd < 0) {
        rc = atomic_load(&w->err);
        goto fail;
    }
    char chunk_head[65];
    memcpy(chunk_head, w->head, 65);
    bg_buf_reset(&w->wbuf);
    for (i = 0; i < k; i++) {
        uint64_t pending = w->size + w->wbuf.len;
        if (w->rotate_size && pending > 0 && pending + items[i].len + 160 > w->rotate_size) {
            if ((rc = flush(w, chunk_head, i - first)) != 0)
                goto fail;
            first = i;
            if ((rc = rotate(w)) != 0) {
                mark_failed(w, "rotate", -rc);
                goto fail;
            }
            memcpy(chunk_head, w->head, 65);
        }
        size_t start = w->wbuf.len;
        bg_buf_append(&w->wbuf, items[i].body, items[i].len);
        bg_records_chain_body_ctx(&w->wbuf, start, w->head, w->head, w->mdctx, w->md);
        bg_buf_append(&w->wbuf, "\n", 1);
    }
    if ((rc = flush(w, chunk_head, k - first)) != 0)
        goto fail;
    if (w->fsync_mode == BG_FSYNC_ALWAYS && (rc = do_sync(w)) != 0) {
        first = 0; /* written but not durable: every record of the batch failed */
        goto fail;
    }
    for (i = 0; i < k; i++)
        status[i] = 0;
    return;
fail:
    for (i = 0; i < first; i++)
        status[i] = 0;
    for (i = first; i < k; i++)
        status[i] = rc ? rc : -EIO;
    if (rc)
        mark_failed(w, "write", -rc);
}

static void reopen_now(bg_records_t *w)
{
    if (w->fd >= 0) {
        if (w->dirty)
            (void)do_sync(w);
        close(w->fd);
        w->fd = -1;
    }
    bool was_healthy = atomic_load(&w->healthy);
    char err[512];
    /* A healthy writer keeps its in-memory head (the file was renamed away, maybe compressed);
     * a failed one trusts only what is on disk. */
    int rc = open_current(w, !was_healthy, err, sizeof err);
    if (rc != 0) {
        bg_log_error("records: reopen failed", "error", err);
        mark_failed(w, "reopen", -rc);
        return;
    }
    if (!was_healthy) {
        atomic_store(&w->healthy, true);
        bg_log_info("records writer recovered", "path", w->path);
    }
}

static void *writer_main(void *arg)
{
    bg_records_t *w = arg;
    pthread_setname_np(pthread_self(), "bg-records"); /* top -H, ps -L, perf */
    /* Yielding (see below) needs a way back: probe that this thread may raise its priority
     * again (root, CAP_SYS_NICE or RLIMIT_NICE), from whatever nice the process started at. */
    bool yielding = false;
    id_t tid = (id_t)gettid();
    errno = 0;
    int base_nice = getpriority(PRIO_PROCESS, tid);
    bool can_yield = errno == 0 && base_nice < 19 && setpriority(PRIO_PROCESS, tid, base_nice + 1) == 0 &&
                     setpriority(PRIO_PROCESS, tid, base_nice) == 0;
    int yield_nice = base_nice + WRITER_NICE < 19 ? base_nice + WRITER_NICE : 19;
    item_t *batch = malloc(BATCH_MAX * sizeof *batch);
    int *status = malloc(BATCH_MAX * sizeof *status);
    if (!batch || !status)
        abort();
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->qlen && !w->stopping && !w->reopen_req) {
            int64_t wait_ms = 1000;
            if (w->dirty && w->fsync_mode == BG_FSYNC_BATCH) {
                wait_ms = w->last_sync_ms + BATCH_SYNC_MS - mono_ms();
                if (wait_ms <= 0)
                    break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            w->sleeping = true;
            int rc = pthread_cond_timedwait(&w->nonempty, &w->mu, &ts);
            w->sleeping = false;
            if (rc == ETIMEDOUT)
                break;
            if (w->qlen && w->qlen < BATCH_MAX / 4 && w->fsync_mode != BG_FSYNC_ALWAYS && !w->stopping) {
                /* Woken by the first record of a burst: let a few more arrive so that one write(2)
                 * carries many (the workers do not wake us again meanwhile). Not under `always`,
                 * where an answer waits for its record. */
                pthread_mutex_unlock(&w->mu);
                struct timespec nap = {0, GATHER_NS};
                nanosleep(&nap, NULL);
                pthread_mutex_lock(&w->mu);
            }
        }
        size_t k = w->qlen < BATCH_MAX ? w->qlen : BATCH_MAX;
        for (size_t i = 0; i < k; i++) {
            batch[i] = w->q[w->qhead];
            w->qhead = (w->qhead + 1) % w->cap;
        }
        w->qlen -= k;
        atomic_fetch_sub_explicit(&w->used, k, memory_order_release);
        atomic_store_explicit(&w->depth, w->qlen, memory_order_relaxed);
        /* While it keeps up (small batches), the writer runs at a lower weight than the workers
         * (nice +WRITER_NICE: ~1/10 of a worker's share of a core both want): nothing waits for
         * a record outside `always`, while a worker it preempts holds every in-flight request.
         * Once batches grow (it falls behind: many busy workers) or under `always` (each answer
         * waits for it), it competes at the workers' weight. Linux applies this to the calling
         * thread only; one system call per change. */
        bool yield = can_yield && w->fsync_mode != BG_FSYNC_ALWAYS && k < BATCH_MAX / 4 && w->qlen < BATCH_MAX / 4;
        if (yield != yielding && setpriority(PRIO_PROCESS, tid, yield ? yield_nice : base_nice) == 0)
            yielding = yield;
        if (k)
            pthread_cond_broadcast(&w->nonfull);
        bool stop = w->stopping && w->qlen == 0;
        bool reopen = w->reopen_req;
        w->reopen_req = false;
        pthread_mutex_unlock(&w->mu);

        /* Reopen before writing what was taken with the request: a record submitted after
         * bg_records_reopen returned must land in the new file. */
        if (reopen)
            reopen_now(w);
        if (k) {
            process(w, batch, k, status);
            /* Progress: whatever is still pending has waited only since now (before the callbacks,
             * so that whoever learns of a written record also sees the writer progressing). */
            atomic_store_explicit(&w->pending_since, mono_ms(), memory_order_relaxed);
            for (size_t i = 0; i < k; i++) {
                free(batch[i].body);
                if (batch[i].done)
                    batch[i].done(batch[i].arg, status[i]);
            }
        }
        if (w->dirty && w->fsync_mode == BG_FSYNC_BATCH && mono_ms() - w->last_sync_ms >= BATCH_SYNC_MS) {
            mark_pending(w); /* lines not yet durable are work too: a sync that hangs is a stall */
            int rc = do_sync(w);
            if (rc != 0)
                mark_failed(w, "fsync", -rc);
        }
        if (mono_ms() - w->last_retention_ms >= RETENTION_CHECK_MS)
            retention(w);
        if (k && k < BATCH_MAX / 4 && w->fsync_mode != BG_FSYNC_ALWAYS && !stop) {
            /* Under load, take the queue at most once per GATHER_NS (1 ms): each write(2) then
             * carries that long's records, and the workers' pushes seldom meet the writer on the lock.
             * Without this pause the writer took a few records at a time: one futex call per three
             * requests and a context switch per batch on a machine whose cores serve the traffic.
             * The pause also bounds each step's burst of work (hashing, write(2): ~1 us a record),
             * which holds a core that a worker, a vendor or a client wants: at 10 ms a step took
             * ~600 records at 60k req/s, and those 0.6 ms bursts made the answers' p99 (1.5-1.7 ms
             * against 1.3 ms with records discarded); at 1 ms p99 is 1.3 ms and throughput 2-4%
             * higher (bench/RESULTS.md, session 15; in session 4, at 35k req/s, 10 ms had been the
             * better). A batch of BATCH_MAX / 4 or more is not followed by a pause, so the queue
             * never holds much more than BATCH_MAX / 4 plus 1 ms of records. Nothing waits for a
             * record outside `always`; the queue's bound is unchanged. */
            struct timespec nap = {0, GATHER_NS};
            nanosleep(&nap, NULL);
        }
        pthread_mutex_lock(&w->mu);
        /* A step is done: what is queued now has waited only since this moment. */
        atomic_store_explicit(&w->pending_since, w->qlen ? mono_ms() : 0, memory_order_relaxed);
        if (stop && w->qlen == 0)
            break;
    }
    pthread_mutex_unlock(&w->mu);
    if (w->fd >= 0) {
        int rc = do_sync(w);
        if (rc != 0)
            mark_failed(w, "fsync", -rc);
        close(w->fd);
        w->fd = -1;
    }
    free(batch);
    free(status);
    return NULL;
}

static int mkdirs(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp)
        return n == 0 ? 0 : -ENAMETOOLONG;
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++)
        if (tmp[i] == '/' || tmp[i] == 0) {
            char c = tmp[i];
            tmp[i] = 0;
            if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
                return -errno;
            tmp[i] = c;
        }
    return 0;
}

static void free_writer(bg_records_t *w)
{
    free(w->path);
    free(w->dir);
    free(w->base);
    free(w->q);
    bg_buf_dispose(&w->wbuf);
    EVP_MD_CTX_free(w->mdctx);
    EVP_MD_free(w->md);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->nonempty);
    pthread_cond_destroy(&w->nonfull);
    free(w);
}

int bg_records_open(const bg_config_t *cfg, bg_records_t **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *path = cfg->records.path ? cfg->records.path : "records/transfers.jsonl";
    bg_records_t *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->fd = -1;
    w->path = strdup(path);
    const char *slash = strrchr(path, '/');
    w->dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    w->base = strdup(slash ? slash + 1 : path);
    w->cap = cfg->records.queue_size ? cfg->records.queue_size : QUEUE_CAP_DEFAULT;
    w->q = calloc(w->cap, sizeof *w->q);
    if (!w->path || !w->dir || !w->base || !w->q)
        abort();
    w->rotate_size = cfg->records.rotate_size;
    w->retention_days = cfg->records.retention_days;
    w->fsync_mode = cfg->records.fsync;
    bg_buf_init(&w->wbuf);
    w->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    w->mdctx = EVP_MD_CTX_new();
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->nonempty, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->nonfull, NULL);
    atomic_init(&w->healthy, true);
    atomic_init(&w->depth, 0);
    atomic_init(&w->written, 0);
    atomic_init(&w->syncs, 0);
    atomic_init(&w->err, 0);
    atomic_init(&w->used, 0);
    atomic_init(&w->refused, 0);
    atomic_init(&w->backlogged, false);
    atomic_init(&w->pending_since, 0);
    w->stall_ms = (int64_t)cfg->records.stall_timeout_ms;
    w->last_sync_ms = mono_ms();

    if (!*w->base) {
        if (err && errlen)
            snprintf(err, errlen, "records.path '%s' names no file", path);
        goto fail;
    }
    int rc = mkdirs(w->dir);
    if (rc != 0) {
        set_err(err, errlen, "cannot create directory %s: %s", w->dir, -rc);
        goto fail;
    }
    if (open_current(w, true, err, errlen) != 0)
        goto fail;
    retention(w);
    /* The writer thread takes no signals: the loop's signal watchers get them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        set_err(err, errlen, "cannot start the records writer for %s: %s", path, rc);
        goto fail;
    }
    *out = w;
    return 0;
fail:
    if (w->fd >= 0)
        close(w->fd);
    free_writer(w);
    return -1;
}

/* Take one slot when one is free. Lock-free: workers call it for every routed request. */
static bool try_reserve(bg_records_t *w)
{
    size_t u = atomic_load_explicit(&w->used, memory_order_relaxed);
    while (u < w->cap)
        if (atomic_compare_exchange_weak_explicit(&w->used, &u, u + 1, memory_order_acquire, memory_order_relaxed))
            return true;
    return false;
}

int bg_records_reserve(bg_records_t *w)
{
    if (try_reserve(w))
        return 0;
    atomic_fetch_add_explicit(&w->refused, 1, memory_order_relaxed);
    return -EAGAIN;
}

void bg_records_unreserve(bg_records_t *w)
{
    atomic_fetch_sub_explicit(&w->used, 1, memory_order_release);
    /* A bg_records_submit waiting for room looks again at least every 100 ms (it waits with a
     * timeout): the lock and a broadcast per released reservation would cost every worker. */
}

int bg_records_submit_reserved(bg_records_t *w, const bg_record_t *r, void (*done)(void *arg, int status), void *arg)
{
    if (!atomic_load_explicit(&w->healthy, memory_order_acquire)) {
        bg_records_unreserve(w);
        return -EIO;
    }
    /* A queued record keeps only its bytes, so a full queue (a slow disk) holds cap records'
     * worth, not that many worst cases of the encoder. */
    bg_buf_t b;
    b.data = bg_records_encode_body_dup(r, &b.len);
    b.cap = b.len + 1;
    if (b.len + 160 > BG_RECORD_MAX_LINE) {
        bg_buf_dispose(&b);
        bg_records_unreserve(w);
        return -E2BIG;
    }
    pthread_mutex_lock(&w->mu);
    if (!atomic_load(&w->healthy)) {
        pthread_mutex_unlock(&w->mu);
        bg_buf_dispose(&b);
        bg_records_unreserve(w);
        return -EIO;
    }
    /* The reservation is this record's slot: qlen < used <= cap, so there is room; nothing waits. */
    w->q[(w->qhead + w->qlen) % w->cap] = (item_t){b.data, b.len, done, arg};
    w->qlen++;
    atomic_store_explicit(&w->depth, w->qlen, memory_order_relaxed);
    mark_pending(w);
    /* A busy writer finds the record when it looks at the queue again (under the same lock):
     * only a sleeping one needs waking, which saves a futex wake per record under load. */
    if (w->sleeping)
        pthread_cond_signal(&w->nonempty);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int bg_records_submit(bg_records_t *w, const bg_record_t *r, void (*done)(void *arg, int status), void *arg)
{
    if (!atomic_load_explicit(&w->healthy, memory_order_acquire))
        return -EIO;
    if (!try_reserve(w)) {
        pthread_mutex_lock(&w->mu);
        while (!try_reserve(w)) {
            if (!atomic_load(&w->healthy)) {
                pthread_mutex_unlock(&w->mu);
                return -EIO;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->nonfull, &w->mu, &ts);
        }
        pthread_mutex_unlock(&w->mu);
    }
    return bg_records_submit_reserved(w, r, done, arg);
}

bool bg_records_healthy(const bg_records_t *w) { return atomic_load((atomic_bool *)&w->healthy); }

uint64_t bg_records_queue_depth(const bg_records_t *w)
{
    return atomic_load_explicit((atomic_uint_fast64_t *)&w->depth, memory_order_relaxed);
}

uint64_t bg_records_slots_used(const bg_records_t *w)
{
    return atomic_load_explicit((atomic_size_t *)&w->used, memory_order_relaxed);
}

uint64_t bg_records_capacity(const bg_records_t *w) { return w->cap; }

uint64_t bg_records_refused(const bg_records_t *w)
{
    return atomic_load_explicit((atomic_uint_fast64_t *)&w->refused, memory_order_relaxed);
}

bool bg_records_ready(bg_records_t *w, const char **why, uint64_t *stall_ms)
{
    if (stall_ms)
        *stall_ms = 0;
    if (!atomic_load(&w->healthy)) {
        *why = "failing";
        return false;
    }
    /* Hysteresis: not ready from 3/4 of the slots taken until back under 1/2, so that a load
     * balancer sees one clear transition each way, not a flapping answer at the mark. */
    size_t used = atomic_load_explicit(&w->used, memory_order_relaxed);
    bool back = atomic_load(&w->backlogged);
    if (!back && used >= w->cap - w->cap / 4)
        atomic_store(&w->backlogged, back = true);
    else if (back && used <= w->cap / 2)
        atomic_store(&w->backlogged, back = false);
    uint64_t stalled = bg_records_stall_ms(w);
    if (stalled > 0) {
        if (stall_ms)
            *stall_ms = stalled;
        *why = "stalled";
        return false;
    }
    *why = back ? "backlogged" : "ok";
    return !back;
}

uint64_t bg_records_pending_ms(const bg_records_t *w)
{
    int64_t since = atomic_load_explicit((atomic_int_least64_t *)&w->pending_since, memory_order_relaxed);
    int64_t age = since ? mono_ms() - since : 0;
    return age > 0 ? (uint64_t)age : 0;
}

uint64_t bg_records_stall_ms(const bg_records_t *w)
{
    uint64_t age = bg_records_pending_ms(w);
    return w->stall_ms > 0 && age >= (uint64_t)w->stall_ms ? age : 0;
}

uint64_t bg_records_written(const bg_records_t *w)
{
    return atomic_load_explicit((atomic_uint_fast64_t *)&w->written, memory_order_relaxed);
}

uint64_t bg_records_syncs(const bg_records_t *w)
{
    return atomic_load_explicit((atomic_uint_fast64_t *)&w->syncs, memory_order_relaxed);
}

void bg_records_reopen(bg_records_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->reopen_req = true;
    pthread_cond_signal(&w->nonempty);
    pthread_mutex_unlock(&w->mu);
}

void bg_records_close(bg_records_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->nonempty);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    free_writer(w);
}
