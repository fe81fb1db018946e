/*
 * cmd_records.c — `bordergate records`. PLACEHOLDER until its module lands (replaced wholesale by its owner).
 */
#include "cli.h"
#include <stdio.h>

int bg_cmd_records(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "bordergate: 'records' is not built yet\n");
    return 1;
}
