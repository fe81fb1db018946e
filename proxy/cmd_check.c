/*
 * cmd_check.c — `bordergate check`. PLACEHOLDER until its module lands (replaced wholesale by its owner).
 */
#include "cli.h"
#include <stdio.h>

int bg_cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "bordergate: 'check' is not built yet\n");
    return 1;
}
