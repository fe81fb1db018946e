/*
 * cmd_run.c — `bordergate run -c FILE`: serve. Main thread.
 */
#include "cli.h"
#include "server.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

int bg_cmd_run(int argc, char **argv)
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
            printf("usage: bordergate run -c FILE\n\n"
                   "Serve on the listeners of the config FILE until SIGTERM or SIGINT (drain, then exit 0).\n"
                   "SIGHUP reloads the config (a bad one keeps the running one), SIGUSR1 reopens the record file.\n");
            return 0;
        case ':': return bg_cli_usage_error("run", "option '%s' needs a value", argv[optind - 1]);
        default: return bg_cli_usage_error("run", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bg_cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
    if (!config)
        return bg_cli_usage_error("run", "missing -c FILE");
    return bg_server_run(config);
}
