/*
 * cmd_reload.c — `bordergate reload -c FILE`: validate FILE as `check` does (the config, and
 * what the gateway would open: keys, certificates, the GeoIP database), then ask the running
 * gateway to reload it. With the admin listener on, the request is POST /reload there, so the
 * gateway's own verdict comes back: "reloaded", or every problem it found as FILE:LINE:COL (it
 * runs as `user:`, and can refuse what this command, often run as root, could read). With the
 * admin listener off (or not answering) it sends SIGHUP to the pid in pid_file, and the verdict
 * is in the gateway's log. Main thread, blocking I/O.
 */
#include "cli.h"
#include "config.h"
#include "json.h"
#include "server.h"
#include "util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define ANSWER_MAX (8u << 20) /* a thousand problems fit many times over */

/* Print s[0..n) (a decoded JSON string) on one line of f, control characters as '?'. */
static void put_line(FILE *f, const char *prefix, const char *s, size_t n)
{
    fputs(prefix, f);
    for (size_t i = 0; i < n; i++)
        fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i], f);
    fputc('\n', f);
}

/* Print the string members of the problem's "errors" and "warnings" lists, one a line on
 * stderr; returns how many errors. Anything that is not the shape expected is skipped. */
static size_t print_problems(const char *body, size_t n)
{
    bg_json_t j;
    bg_json_token_t t;
    const char *list = NULL; /* inside "errors" or "warnings" at depth 1 */
    size_t nerrors = 0;
    char *buf = malloc(n + 1);
    if (!buf)
        abort();
    bg_json_init(&j, body, n, 8);
    while (bg_json_next(&j, &t) == 1) {
        if (t.type == BG_JSON_KEY && bg_json_depth(&j) == 1) {
            list = t.len == 6 && memcmp(body + t.start, "errors", 6) == 0     ? "errors"
                   : t.len == 8 && memcmp(body + t.start, "warnings", 8) == 0 ? "warnings"
                                                                               : NULL;
        } else if (t.type == BG_JSON_STRING && list && bg_json_depth(&j) == 2) {
            size_t len = bg_json_unescape(body + t.start, t.len, buf, NULL);
            put_line(stderr, "", buf, len);
            nerrors += list[0] == 'e';
        } else if (t.type == BG_JSON_ARR_END && bg_json_depth(&j) == 1) {
            list = NULL;
        }
    }
    free(buf);
    return nerrors;
}

/* POST /reload to the admin listener. Returns the HTTP status (the body in *body, to free), -1
 * with errno when it could not connect (nothing was asked), or -2 with errno when the request may
 * have reached the gateway but no answer came. */
static int post_reload(const bg_config_t *cfg, bg_buf_t *body)
{
    const bg_sockaddr_t *a = &cfg->admin.address;
    int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* A reload opens the GeoIP database and every key and certificate: seconds at most. */
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bg_buf_t req, in;
    bg_buf_init(&req);
    bg_buf_init(&in);
    int status = -1, saved = 0; /* -1 until connected, then -2 until answered */
    if (connect(fd, (const struct sockaddr *)&a->addr, a->addrlen) < 0)
        goto done;
    status = -2;
    bg_buf_printf(&req, "POST /reload HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n", a->text);
    if (cfg->admin.token)
        bg_buf_printf(&req, "Authorization: Bearer %s\r\n", cfg->admin.token);
    bg_buf_puts(&req, "\r\n");
    for (size_t off = 0; off < req.len;) {
        ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            errno = w < 0 ? errno : EPIPE;
            goto done;
        }
        off += (size_t)w;
    }
    char chunk[16384];
    for (;;) {
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto done;
        if (r == 0)
            break;
        if (in.len + (size_t)r > ANSWER_MAX) {
            errno = EMSGSIZE;
            goto done;
        }
        bg_buf_append(&in, chunk, (size_t)r);
    }
    const char *end = in.len ? memmem(in.data, in.len, "\r\n\r\n", 4) : NULL;
    int code = 0;
    if (!end || in.len < 12 || memcmp(in.data, "HTTP/1.", 7) != 0 || sscanf(in.data + 9, "%3d", &code) != 1) {
        errno = EPROTO;
        goto done;
    }
    bg_buf_append(body, end + 4, (size_t)(in.data + in.len - (end + 4)));
    status = code;
done:
    saved = errno;
    if (req.data) /* the request holds the admin token */
        OPENSSL_cleanse(req.data, req.len);
    bg_buf_dispose(&req);
    bg_buf_dispose(&in);
    close(fd);
    errno = saved;
    return status;
}

/* The pid in pid_file, or 0. */
static long read_pid(const char *pid_file)
{
    long pid = 0;
    FILE *f = pid_file ? fopen(pid_file, "r") : NULL;
    if (f && (fscanf(f, "%ld", &pid) != 1 || pid <= 1))
        pid = 0;
    if (f)
        fclose(f);
    return pid;
}

int bg_cmd_reload(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *config = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'h':
            printf("usage: bordergate reload -c FILE\n\n"
                   "Validate FILE, then ask the running gateway to reload it: POST /reload on the admin\n"
                   "listener (printing the gateway's verdict: every problem as FILE:LINE:COL), or, with the\n"
                   "admin listener off or not answering, SIGHUP to the pid in the config's pid_file.\n");
            return 0;
        case ':': return bg_cli_usage_error("reload", "option '%s' needs a value", argv[optind - 1]);
        default: return bg_cli_usage_error("reload", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bg_cli_usage_error("reload", "unexpected argument '%s'", argv[optind]);
    if (!config)
        return bg_cli_usage_error("reload", "missing -c FILE");
    bg_diag_t diag;
    bg_diag_init(&diag);
    bg_config_t *cfg = NULL;
    bg_runtime_t *rt = NULL;
    int rc = 1;
    /* A config that loads can still be refused by the gateway (a key of the wrong length, an
     * unreadable certificate): open it as the reload will, so that the gateway is only asked to
     * load something `check` accepts. */
    if (bg_config_load(config, bg_now_ms() / 1000, &cfg, &diag) == 0 && bg_runtime_create(cfg, &rt, &diag) == 0)
        cfg = NULL; /* owned by rt now */
    for (size_t i = 0; i < diag.nwarnings; i++)
        fprintf(stderr, "%s\n", diag.warnings[i]);
    if (!rt) {
        for (size_t i = 0; i < diag.nerrors; i++)
            fprintf(stderr, "%s\n", diag.errors[i]);
        fprintf(stderr, "bordergate: not reloading: %s is invalid\n", config);
        goto done;
    }
    const bg_config_t *c = rt->cfg;
    const char *pid_file = c->pid_file;
    long pid = read_pid(pid_file);
    if (c->admin.enabled) {
        bg_buf_t body;
        bg_buf_init(&body);
        int st = post_reload(c, &body);
        int err = errno;
        if (st == 200) {
            if (pid)
                printf("reloaded: pid %ld serves %s\n", pid, config);
            else
                printf("reloaded: the gateway at %s serves %s\n", c->admin.address.text, config);
            rc = 0;
        } else if (st == 422) {
            size_t n = print_problems(body.data ? body.data : "", body.len);
            fprintf(stderr, "bordergate: the gateway refused %s (%zu error%s) and keeps its running config\n", config,
                    n, n == 1 ? "" : "s");
            if (n == 0)
                fprintf(stderr, "bordergate: the gateway gave no reasons: see its log\n");
        } else if (st == 401) {
            /* FILE may bring a new admin token, which the gateway learns only from this reload. */
            fprintf(stderr, "bordergate: the admin listener %s refused the token in %s (a new one?); sending SIGHUP "
                            "instead\n", c->admin.address.text, config);
        } else if (st > 0) {
            fprintf(stderr, "bordergate: the admin listener %s answered %d to POST /reload\n", c->admin.address.text,
                    st);
        } else if (st == -2) {
            fprintf(stderr, "bordergate: asked the gateway at %s to reload, but got no answer (%s): see its log\n",
                    c->admin.address.text, strerror(err));
        }
        bg_buf_dispose(&body);
        if (st != -1 && st != 401)
            goto done;
        /* Not connected: the admin listener may be elsewhere in the running config. The signal
         * still reaches the gateway, without its verdict. */
        if (st == -1)
            fprintf(stderr, "bordergate: the admin listener %s did not answer (%s); sending SIGHUP instead\n",
                    c->admin.address.text, strerror(err));
    }
    if (!pid_file) {
        fprintf(stderr, "bordergate: %s sets no pid_file: send SIGHUP to the gateway yourself\n", config);
        goto done;
    }
    if (!pid) {
        fprintf(stderr, "bordergate: cannot read a pid from %s\n", pid_file);
        goto done;
    }
    if (kill((pid_t)pid, SIGHUP) < 0) {
        fprintf(stderr, "bordergate: cannot signal pid %ld: %s\n", pid, strerror(errno));
        goto done;
    }
    printf("reload requested (pid %ld): the gateway logs 'config reloaded' or 'reload failed'\n", pid);
    rc = 0;
done:
    bg_runtime_release(rt);
    bg_config_release(cfg);
    bg_diag_dispose(&diag);
    return rc;
}
