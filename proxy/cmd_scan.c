/*
 * cmd_scan.c — `bordergate scan`. PLACEHOLDER until its module lands (replaced wholesale by its owner).
 */
#include "cli.h"
#include <stdio.h>

int bg_cmd_scan(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "bordergate: 'scan' is not built yet\n");
    return 1;
}
