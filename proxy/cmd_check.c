/*
 * cmd_check.c — `bordergate check -c FILE`: load and validate a config exactly as `run` would
 * (same loader, same files checked on disk) without binding anything. Valid: one line on
 * stdout, exit 0. Invalid: every problem as FILE:LINE:COL on stderr, exit 1. Warnings go to
 * stderr and never fail. Usage errors exit 2. Main thread only.
 */
#include "cli.h"
#include "server.h"
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: bordergate check -c FILE\n"
    "\n"
    "Validate a bordergate config and the regions file and other files it names.\n"
    "Prints FILE:LINE:COL: message for every problem (exit 1), warnings such as transfer\n"
    "bases expiring within 30 days (exit 0), or one OK line with the config version.\n"
    "\n"
    "  -c, --config FILE   the config file to check\n"
    "  -h, --help          this text\n";

int bg_cmd_check(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return bg_cli_usage_error("check", "%s needs a FILE", a);
            file = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            file = a + 9;
        } else if (a[0] == '-') {
            return bg_cli_usage_error("check", "unknown flag '%s'", a);
        } else {
            return bg_cli_usage_error("check", "unexpected argument '%s' (the config is given with -c FILE)", a);
        }
    }
    if (!file || !*file)
        return bg_cli_usage_error("check", "no config given (-c FILE)");

    bg_diag_t d;
    bg_config_t *cfg = NULL;
    bg_runtime_t *rt = NULL;
    bg_diag_init(&d);
    int64_t now = (int64_t)time(NULL);
    int rc = bg_config_load(file, now, &cfg, &d);
    if (rc == 0) {
        /* Open what `run` opens (TLS certificates and keys, the GeoIP database, the encryption
         * keys, the classifier), so that a config check passes exactly when a start would. */
        rc = bg_runtime_create(cfg, &rt, &d);
        if (rc == 0) {
            cfg = NULL; /* owned by the runtime now */
            int age = rt->geo ? bg_geo_age_days(rt->geo, now) : -1;
            if (age > 60)
                fprintf(stderr, "%s: warning: the GeoIP database %s is %d days old (update it: make geoip-update)\n",
                        file, rt->cfg->geoip.database, age);
        }
    }
    for (size_t i = 0; i < d.nwarnings; i++)
        fprintf(stderr, "%s\n", d.warnings[i]);
    for (size_t i = 0; i < d.nerrors; i++)
        fprintf(stderr, "%s\n", d.errors[i]);
    if (rc == 0) {
        const bg_config_t *c = rt->cfg;
        printf("%s: OK (%zu listener%s, %zu vendor%s, version %.12s\xe2\x80\xa6)\n", file, c->nlisten,
               c->nlisten == 1 ? "" : "s", c->nvendors, c->nvendors == 1 ? "" : "s", c->version);
    } else {
        fprintf(stderr, "%s: invalid (%zu error%s)\n", file, d.nerrors, d.nerrors == 1 ? "" : "s");
    }
    bg_runtime_release(rt);
    bg_config_release(cfg);
    bg_diag_dispose(&d);
    return rc == 0 ? 0 : 1;
}
