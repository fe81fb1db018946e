/*
 * main.c — the bordergate binary: a thin shell over the library. Parses the global flags,
 * sets up logging and dispatches to a command (cli.h). Runs on the main thread only.
 */
#include "cli.h"
#include "log.h"

#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bordergate [--log-format logfmt|json] [--log-level debug|info|warn|error] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  run -c FILE               serve on the listeners of the config\n"
    "  check -c FILE             validate a config; print FILE:LINE:COL for each problem\n"
    "  explain -c FILE --url URL show the decision for a described request (no network)\n"
    "  scan [FILE]               classify a body (or --headers FILE, --query STRING)\n"
    "  records verify FILE...    check the hash chain of transfer record files\n"
    "  records report FILE...    inventory of transfers (GDPR Art. 30(1)(e))\n"
    "  reload -c FILE            ask the running gateway to reload its config\n"
    "  help [COMMAND]            this text, or a command's help (also COMMAND -h)\n"
    "  --version                 print the version\n";

typedef struct {
    const char *name;
    int (*fn)(int, char **);
} command_t;

static const command_t commands[] = {
    {"run", bg_cmd_run},         {"check", bg_cmd_check},     {"explain", bg_cmd_explain},
    {"scan", bg_cmd_scan},       {"records", bg_cmd_records}, {"reload", bg_cmd_reload},
};

int main(int argc, char **argv)
{
    bg_log_level_t level = BG_LOG_INFO;
    bg_log_format_t format = BG_LOG_LOGFMT;
    int i = 1;
    /* Global flags come before the command. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("bordergate %s\n", BG_VERSION);
            return 0;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strncmp(a, "--log-format", 12) == 0 || strncmp(a, "--log-level", 11) == 0) {
            const char *eq = strchr(a, '=');
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return bg_cli_usage_error(NULL, "%s needs a value", a);
            if (strncmp(a, "--log-format", 12) == 0) {
                if (strcmp(val, "json") == 0)
                    format = BG_LOG_JSON;
                else if (strcmp(val, "logfmt") == 0)
                    format = BG_LOG_LOGFMT;
                else
                    return bg_cli_usage_error(NULL, "unknown log format '%s' (logfmt or json)", val);
            } else if (bg_log_level_parse(val, &level) != 0) {
                return bg_cli_usage_error(NULL, "unknown log level '%s' (debug, info, warn, error)", val);
            }
            continue;
        }
        return bg_cli_usage_error(NULL, "unknown flag '%s'", a);
    }
    bg_log_setup(level, format);
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "help") == 0) {
        /* `help help` and `help -h` are `COMMAND -h` for the help command itself: its usage. */
        if (i + 1 < argc && strcmp(argv[i + 1], "help") != 0 && strcmp(argv[i + 1], "-h") != 0 &&
            strcmp(argv[i + 1], "--help") != 0) {
            for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
                if (strcmp(argv[i + 1], commands[c].name) == 0) {
                    char *hargv[] = {(char *)commands[c].name, "-h", NULL};
                    return commands[c].fn(2, hargv);
                }
            return bg_cli_usage_error(NULL, "unknown command '%s'", argv[i + 1]);
        }
        fputs(usage, stdout);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit must give the records writer EFBIG, not kill us */
    OPENSSL_init_ssl(0, NULL);
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
        if (strcmp(cmd, commands[c].name) == 0)
            return commands[c].fn(argc - i, argv + i);
    return bg_cli_usage_error(NULL, "unknown command '%s'", cmd);
}
