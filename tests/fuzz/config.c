/*
 * fuzz/config.c — libFuzzer target over bg_config_load_buffer: any bytes must load or be
 * rejected with messages, never crash, leak or run away (depth, aliases, huge scalars).
 * Initialisation moves into a fresh temp directory holding a regions file and the files a
 * config may name, so the fuzzer also reaches the checks after a successful regions load.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char regions[] =
    "regions:\n"
    "  EEA: { countries: [AT, BE, DE, FR, GR, IS, LI, NO, GF, AX] }\n"
    "  APAC: [JP, IN, SG]\n"
    "adequacy:\n"
    "  - { country: CA, scope: commercial, date: 2001-12-20 }\n"
    "  - { country: JP, date: 2019-01-23 }\n"
    "  - { country: US, scope: dpf, date: 2023-07-10 }\n"
    "  - { country: GB, date: 2021-06-28, expires: 2031-12-27 }\n";

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

/* The target runs in a temp directory, so corpus directories given as relative paths are
 * made absolute and crash artifacts go to the directory the fuzzer was started from
 * (libFuzzer reads argv after LLVMFuzzerInitialize returns). */
static void absolutize_args(int *argc, char ***argv)
{
    static char cwd[4096];
    if (!getcwd(cwd, sizeof cwd - 1))
        abort();
    int n = *argc, has_prefix = 0;
    char **out = calloc((size_t)n + 2, sizeof *out);
    if (!out)
        abort();
    for (int i = 0; i < n; i++) {
        char *a = (*argv)[i];
        out[i] = a;
        if (strncmp(a, "-artifact_prefix=", 17) == 0)
            has_prefix = 1;
        if (i > 0 && a[0] != '-' && a[0] != '/') {
            size_t len = strlen(cwd) + strlen(a) + 2;
            out[i] = malloc(len);
            if (!out[i])
                abort();
            snprintf(out[i], len, "%s/%s", cwd, a);
        }
    }
    if (!has_prefix) {
        size_t len = strlen(cwd) + 32;
        out[n] = malloc(len);
        if (!out[n])
            abort();
        snprintf(out[n], len, "-artifact_prefix=%s/", cwd);
        n++;
    }
    *argc = n;
    *argv = out; /* lives for the whole process */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    absolutize_args(argc, argv);
    char dir[] = "/tmp/bg-fuzz-config-XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0)
        abort();
    mkdir("config", 0700);
    mkdir("config/geoip", 0700);
    mkdir("config/keys", 0700);
    mkdir("certs", 0700);
    put("config/regions.yaml", regions);
    put("config/geoip/dbip-country-lite.mmdb", "x");
    put("config/keys/k1.key", "x");
    put("certs/gateway.crt", "x");
    put("certs/gateway.key", "x");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bg_diag_t d;
    bg_config_t *cfg = NULL;
    bg_diag_init(&d);
    int rc = bg_config_load_buffer("fuzz.yaml", (const char *)data, size, 1796000000, &cfg, &d);
    if ((rc == 0) != (cfg != NULL) || (rc == 0 && d.nerrors) || (rc != 0 && !d.nerrors))
        abort();
    if (cfg) {
        /* Exercise the read side too. */
        bg_adequacy_scope_t scope;
        (void)bg_config_dest_kind(cfg, "US", &scope);
        (void)bg_config_route(cfg, "a.example.com", 13);
        for (size_t i = 0; i < cfg->nvendors; i++)
            (void)bg_config_vendor_covers(cfg, &cfg->vendors[i], "JP");
        bg_config_release(bg_config_retain(cfg));
        bg_config_release(cfg);
    }
    bg_diag_dispose(&d);
    return 0;
}
