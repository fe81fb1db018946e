/*
 * cmd_reload.c — `bordergate reload`. PLACEHOLDER until its module lands (replaced wholesale by its owner).
 */
#include "cli.h"
#include <stdio.h>

int bg_cmd_reload(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "bordergate: 'reload' is not built yet\n");
    return 1;
}
