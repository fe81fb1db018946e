/*
 * cmd_reload.c — `bordergate reload -c FILE`: validate FILE as `check` does (the config, and
 * what the gateway would open: keys, certificates, the GeoIP database), then send SIGHUP to the
 * gateway whose pid is in the config's pid_file. The running gateway re-reads and swaps the
 * config itself (a bad one keeps the old): this command only asks. Main thread.
 */
#include "cli.h"
#include "config.h"
#include "server.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
                   "Validate FILE, then signal (SIGHUP) the gateway whose pid is in the config's pid_file.\n");
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
     * unreadable certificate): open it as the reload will, so that "reload requested" means the
     * gateway is asked to load something `check` accepts. */
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
    const char *pid_file = rt->cfg->pid_file;
    if (!pid_file) {
        fprintf(stderr, "bordergate: %s sets no pid_file: send SIGHUP to the gateway yourself\n", config);
        goto done;
    }
    FILE *f = fopen(pid_file, "r");
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "bordergate: cannot read a pid from %s\n", pid_file);
        if (f)
            fclose(f);
        goto done;
    }
    fclose(f);
    if (kill((pid_t)pid, SIGHUP) < 0) {
        fprintf(stderr, "bordergate: cannot signal pid %ld: %s\n", pid, strerror(errno));
        goto done;
    }
    printf("reload requested (pid %ld)\n", pid);
    rc = 0;
done:
    bg_runtime_release(rt);
    bg_config_release(cfg);
    bg_diag_dispose(&diag);
    return rc;
}
