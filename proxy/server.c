/*
 * server.c — `bordergate run`: load the config, build the runtime, bind every listener
 * once per worker (SO_REUSEPORT) on the main thread, open the records writer, start the
 * workers and the admin listener, then serve signals: SIGTERM/SIGINT drain and exit,
 * SIGHUP reloads, SIGUSR1 reopens the record file. Main thread only.
 */
#include "server.h"

#include "cli.h"
#include "log.h"
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int bg_socket_bind(const bg_sockaddr_t *a, bool shared, const char **step)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->addr;
    *step = "socket";
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    *step = "bind";
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (shared && sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if ((shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
        bind(fd, sa, a->addrlen) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int bg_listener_bind(const bg_listen_t *l, char *err, size_t errlen)
{
    const char *step;
    int fd = bg_socket_bind(&l->address, true, &step);
    if (fd >= 0)
        return fd;
    if (strcmp(step, "socket") == 0)
        snprintf(err, errlen, "socket: %s", strerror(-fd));
    else
        snprintf(err, errlen, "cannot listen on %s: %s", l->address.text, strerror(-fd));
    return -1;
}

bool bg_sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

void bg_server_assign_slots(bg_server_t *s, const bg_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const bg_listen_t *l = &cfg->listen[i];
        int k = bg_server_slot(s, &l->address.addr);
        if (k < 0) {
            size_t n = atomic_load(&s->nlslots);
            if (n == BG_LISTEN_SLOTS) {
                /* Only after hundreds of distinct addresses over the process's life. */
                bg_log_warn("too many listen addresses: this one's limits are not enforced", "address",
                            l->address.text);
                continue;
            }
            s->lslots[n].addr = l->address.addr;
            atomic_store(&s->nlslots, n + 1); /* publishes the address (seq_cst) */
            k = (int)n;
        }
        bg_listen_slot_t *sl = &s->lslots[k];
        if (sl->rps != l->requests_per_second || sl->burst != l->request_burst) {
            atomic_store(&sl->rate, 0);
            sl->rps = l->requests_per_second;
            sl->burst = l->request_burst;
        }
    }
    if (s->caller_rps != cfg->limits.requests_per_second_per_caller ||
        s->caller_burst != cfg->limits.request_burst_per_caller) {
        for (size_t i = 0; i < BG_CALLER_BUCKETS; i++)
            atomic_store_explicit(&s->caller_rate[i], 0, memory_order_relaxed);
        s->caller_rps = cfg->limits.requests_per_second_per_caller;
        s->caller_burst = cfg->limits.request_burst_per_caller;
    }
}

int bg_server_slot(bg_server_t *s, const struct sockaddr_storage *addr)
{
    size_t n = atomic_load(&s->nlslots);
    for (size_t i = 0; i < n; i++)
        if (bg_sockaddr_equal(&s->lslots[i].addr, addr))
            return (int)i;
    return -1;
}

int bg_server_caller_bucket(const char *client_ip)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = client_ip; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return (int)(h % BG_CALLER_BUCKETS);
}

/* Every problem of a config load, one log line each: under logfmt the bare "FILE:LINE:COL:
 * message" lines `check` prints, under --log-format json a JSON line like any other. */
static void log_diag(const bg_diag_t *d)
{
    for (size_t i = 0; i < d->nwarnings; i++)
        bg_log_line(BG_LOG_WARN, "config warning", "warning", d->warnings[i]);
    for (size_t i = 0; i < d->nerrors; i++)
        bg_log_line(BG_LOG_ERROR, "config error", "error", d->errors[i]);
}

static int reload(bg_server_t *s, bg_diag_t *diag);

/* Load path into a runtime; every problem (and warning) is logged, and left in diag. */
static int load_runtime(const char *path, bg_runtime_t **out, bg_diag_t *diag)
{
    bg_config_t *cfg = NULL;
    int rc = -1;
    if (bg_config_load(path, bg_now_ms() / 1000, &cfg, diag) < 0)
        goto done;
    if (bg_runtime_create(cfg, out, diag) < 0) {
        bg_config_release(cfg);
        goto done;
    }
    rc = 0;
done:
    log_diag(diag);
    return rc;
}

int bg_server_reload(bg_server_t *s, bg_diag_t *out)
{
    bg_diag_t own;
    bg_diag_t *diag = out ? out : &own;
    if (!out)
        bg_diag_init(&own);
    int rc = reload(s, diag);
    if (!out)
        bg_diag_dispose(&own);
    return rc;
}

static int reload(bg_server_t *s, bg_diag_t *diag)
{
    bg_runtime_t *rt = NULL;
    if (load_runtime(s->config_path, &rt, diag) < 0) {
        char n[24];
        snprintf(n, sizeof n, "%zu", diag->nerrors);
        bg_log_error("reload failed: keeping the running config", "config", s->config_path, "errors", n);
        bg_metrics_config_reload(s->metrics, false);
        return -1;
    }
    rt->generation = atomic_fetch_add(&s->generation, 1) + 1;
    /* Listeners the running config does not have yet get one socket per worker now, so that a
     * bind error fails the reload instead of a worker. */
    const bg_config_t *ncfg = rt->cfg, *ocfg = s->rt->cfg;
    size_t nl = ncfg->nlisten;
    int *fds = malloc((s->nworkers * nl + 1) * sizeof *fds);
    if (!fds)
        abort();
    for (size_t i = 0; i < s->nworkers * nl; i++)
        fds[i] = -1;
    for (size_t li = 0; li < nl; li++) {
        bool exists = false;
        for (size_t j = 0; j < ocfg->nlisten && !exists; j++)
            exists = bg_sockaddr_equal(&ocfg->listen[j].address.addr, &ncfg->listen[li].address.addr);
        for (unsigned wi = 0; !exists && wi < s->nworkers; wi++) {
            char err[256];
            if ((fds[wi * nl + li] = bg_listener_bind(&ncfg->listen[li], err, sizeof err)) < 0) {
                /* Reported like a config error, at the listener's address, to the log and to
                 * POST /reload alike. */
                size_t before = diag->nerrors;
                bg_diag_error(diag, ncfg->path, ncfg->listen[li].pos, "listen address %s: %s",
                              ncfg->listen[li].address.text, err);
                bg_diag_t added = {.errors = diag->errors + before, .nerrors = diag->nerrors - before};
                log_diag(&added);
                bg_log_error("reload failed: keeping the running config", "config", s->config_path, "errors", "1");
                for (size_t i = 0; i < s->nworkers * nl; i++)
                    if (fds[i] >= 0)
                        close(fds[i]);
                free(fds);
                bg_runtime_release(rt);
                bg_metrics_config_reload(s->metrics, false);
                return -1;
            }
        }
    }
    bg_runtime_keep_tls_sessions(rt, s->rt);
    bg_server_assign_slots(s, ncfg);
    /* Per worker, the fds for each listener index. */
    int *mine = malloc((nl + 1) * sizeof *mine);
    if (!mine)
        abort();
    for (unsigned i = 0; i < s->nworkers; i++) {
        for (size_t li = 0; li < nl; li++)
            mine[li] = fds[i * nl + li];
        bg_worker_publish(&s->workers[i], bg_runtime_retain(rt), mine, nl);
    }
    free(mine);
    free(fds);
    bg_runtime_t *old = s->rt;
    s->rt = rt;
    bg_runtime_release(old);
    bg_metrics_config_reload(s->metrics, true);
    bg_log_info("config reloaded", "config", s->config_path, "version", rt->cfg->version);
    return 0;
}

static void stop_all(bg_server_t *s)
{
    if (atomic_exchange(&s->stopping, true))
        return;
    bg_log_info("stopping: draining connections");
    for (unsigned i = 0; i < s->nworkers; i++)
        bg_worker_stop(&s->workers[i]);
    bg_admin_stop(s);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
    uv_close((uv_handle_t *)&s->sig_usr1, NULL);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    bg_server_t *s = h->data;
    if (signum == SIGHUP)
        bg_server_reload(s, NULL);
    else if (signum == SIGUSR1)
        bg_records_reopen(s->records);
    else
        stop_all(s);
}

static int drop_privileges(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        bg_log_error("unknown user", "user", user);
        return -1;
    }
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        bg_log_error("cannot drop privileges", "user", user, "error", strerror(errno));
        return -1;
    }
    return 0;
}

int bg_server_run(const char *config_path)
{
    bg_server_t srv;
    memset(&srv, 0, sizeof srv);
    bg_server_t *s = &srv;
    s->config_path = (char *)config_path;
    int rc = 1;
    int *fds = NULL, *lidx = NULL;
    char *pid_file = NULL;
    unsigned started = 0;
    bg_diag_t diag;
    bg_diag_init(&diag);
    int loaded = load_runtime(config_path, &s->rt, &diag);
    bg_diag_dispose(&diag);
    if (loaded < 0)
        return 1;
    const bg_config_t *cfg = s->rt->cfg;
    s->nworkers = cfg->workers > 0 ? (unsigned)cfg->workers : 1;
    char err[256];
    if (bg_records_open(cfg, &s->records, err, sizeof err) < 0) {
        bg_log_error("cannot open transfer records", "path", cfg->records.path, "error", err);
        bg_runtime_release(s->rt);
        return 1;
    }
    s->metrics = bg_metrics_create(s->nworkers, cfg->metrics.max_series);
    s->caller_conns = calloc(BG_CALLER_BUCKETS, sizeof *s->caller_conns);
    s->caller_rate = calloc(BG_CALLER_BUCKETS, sizeof *s->caller_rate);
    s->lslots = calloc(BG_LISTEN_SLOTS, sizeof *s->lslots);
    if (!s->caller_conns || !s->caller_rate || !s->lslots)
        abort();
    bg_server_assign_slots(s, cfg);
    s->workers = calloc(s->nworkers, sizeof *s->workers);
    size_t nl = cfg->nlisten;
    fds = calloc(s->nworkers * (nl ? nl : 1), sizeof *fds);
    lidx = calloc(nl ? nl : 1, sizeof *lidx);
    if (!s->workers || !fds || !lidx)
        abort();
    for (size_t i = 0; i < s->nworkers * nl; i++)
        fds[i] = -1;
    for (unsigned wi = 0; wi < s->nworkers; wi++)
        for (size_t li = 0; li < nl; li++) {
            lidx[li] = (int)li;
            if ((fds[wi * nl + li] = bg_listener_bind(&cfg->listen[li], err, sizeof err)) < 0) {
                bg_log_error(err);
                goto out;
            }
        }
    s->loop = uv_default_loop();
    s->loop->data = s;
    if (cfg->admin.enabled && bg_admin_start(s, err, sizeof err) < 0) {
        bg_log_error("cannot start the admin listener", "error", err);
        goto out;
    }
    for (unsigned wi = 0; wi < s->nworkers; wi++) {
        int r = bg_worker_init(&s->workers[wi], s, wi, s->rt, &fds[wi * nl], lidx, nl);
        for (size_t li = 0; li < nl; li++)
            fds[wi * nl + li] = -1; /* owned by the worker's handles now */
        if (r < 0) {
            bg_log_error("cannot start worker", "error", uv_strerror(r));
            goto out;
        }
    }
    /* The pid file is written while still privileged (its directory is usually root's), and
     * its path kept: after a reload the startup config is gone. */
    if (cfg->pid_file) {
        FILE *f = fopen(cfg->pid_file, "w");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
            pid_file = strdup(cfg->pid_file);
        } else {
            bg_log_warn("cannot write pid file", "path", cfg->pid_file, "error", strerror(errno));
        }
    }
    if (cfg->user && drop_privileges(cfg->user) < 0)
        goto out;
    uv_signal_init(s->loop, &s->sig_term);
    uv_signal_init(s->loop, &s->sig_int);
    uv_signal_init(s->loop, &s->sig_hup);
    uv_signal_init(s->loop, &s->sig_usr1);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s->sig_usr1.data = s;
    uv_signal_start(&s->sig_term, signal_cb, SIGTERM);
    uv_signal_start(&s->sig_int, signal_cb, SIGINT);
    uv_signal_start(&s->sig_hup, signal_cb, SIGHUP);
    uv_signal_start(&s->sig_usr1, signal_cb, SIGUSR1);
    for (; started < s->nworkers; started++)
        if (bg_worker_start(&s->workers[started]) < 0) {
            bg_log_error("cannot start worker thread");
            stop_all(s);
            break;
        }
    {
        char nw[16], nv[16];
        snprintf(nw, sizeof nw, "%u", s->nworkers);
        snprintf(nv, sizeof nv, "%zu", cfg->nvendors);
        for (size_t li = 0; li < nl; li++)
            bg_log_info("listening", "address", cfg->listen[li].address.text, "tls", cfg->listen[li].tls ? "true" : "false");
        bg_log_info("bordergate started", "version", BG_VERSION, "config", config_path, "config_version",
                    cfg->version, "workers", nw, "vendors", nv, "mode",
                    cfg->mode == BG_MODE_ENFORCE ? "enforce" : "report-only");
    }
    uv_run(s->loop, UV_RUN_DEFAULT);
    rc = 0;
out:
    if (!atomic_load(&s->stopping) && s->loop) {
        /* Failed before serving: stop whatever started. */
        atomic_store(&s->stopping, true);
        for (unsigned wi = 0; wi < started; wi++)
            bg_worker_stop(&s->workers[wi]);
        bg_admin_stop(s);
        uv_run(s->loop, UV_RUN_DEFAULT);
    }
    for (unsigned wi = 0; wi < started; wi++)
        pthread_join(s->workers[wi].thread, NULL);
    /* Every queued record is on disk before we exit; records whose exchange waited for them are
     * handed back to their (stopped) worker and freed with it below. */
    bg_records_close(s->records);
    s->records = NULL;
    for (unsigned wi = 0; wi < s->nworkers && s->loop; wi++)
        if (s->workers[wi].loop.data)
            bg_worker_dispose(&s->workers[wi]);
    for (size_t i = 0; fds && i < s->nworkers * nl; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(lidx);
    if (s->loop) {
        uv_run(s->loop, UV_RUN_NOWAIT);
        uv_loop_close(s->loop);
    }
    if (pid_file) {
        if (rc == 0)
            unlink(pid_file); /* may fail after dropping privileges; systemd's RuntimeDirectory cleans up */
        free(pid_file);
    }
    bg_metrics_destroy(s->metrics);
    free(s->caller_conns);
    free(s->caller_rate);
    free(s->lslots);
    free(s->workers);
    bg_runtime_release(s->rt);
    bg_stream_global_cleanup();
    if (rc == 0)
        bg_log_info("stopped");
    return rc;
}
