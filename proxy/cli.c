/*
 * cli.c — helpers shared by the commands (cli.h). Kept out of main.c so that every command
 * file links into the library, the unit tests and the fuzz targets (which have no main.c).
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>

int bg_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bordergate: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "Run 'bordergate %s%s-h' for usage.\n", cmd ? cmd : "", cmd ? " " : "");
    return 2;
}
