/*
 * cli.h — the bordergate command line. main.c parses the global flags (--log-format,
 * --log-level, --version, help) and dispatches to one bg_cmd_<name> per command.
 * Each command gets argv with argv[0] = the command's name, prints its own -h/--help,
 * and returns the process exit code: 0 success, 1 failure, 2 usage error.
 */
#ifndef BG_CLI_H
#define BG_CLI_H

int bg_cmd_run(int argc, char **argv);     /* run -c FILE: serve */
int bg_cmd_check(int argc, char **argv);   /* check -c FILE: validate a config */
int bg_cmd_explain(int argc, char **argv); /* explain -c FILE --url ...: show a decision */
int bg_cmd_scan(int argc, char **argv);    /* scan [FILE] --content-type ...: classify */
int bg_cmd_records(int argc, char **argv); /* records verify|report FILE...: audit trail */
int bg_cmd_reload(int argc, char **argv);  /* reload -c FILE: ask the running gateway to reload */

/** Print "bordergate: MESSAGE" and a pointer to help on stderr; returns 2. */
int bg_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
