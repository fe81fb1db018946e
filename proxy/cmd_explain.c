/*
 * cmd_explain.c — `bordergate explain`. PLACEHOLDER until its module lands (replaced wholesale by its owner).
 */
#include "cli.h"
#include <stdio.h>

int bg_cmd_explain(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "bordergate: 'explain' is not built yet\n");
    return 1;
}
