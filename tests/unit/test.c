/*
 * test.c — the unit-test runner behind test.h. Single-threaded.
 */
#include "test.h"

#include <stdarg.h>

int bg_test_failed_now;
static int passed, failed;
static const char *current;

void bg_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  FAIL %s (%s:%d): ", current ? current : "?", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    bg_test_failed_now++;
}

void bg_test_run(const char *name, void (*fn)(void))
{
    current = name;
    bg_test_failed_now = 0;
    fn();
    if (bg_test_failed_now)
        failed++, fprintf(stderr, "not ok %s\n", name);
    else
        passed++;
    current = NULL;
}

int bg_test_done(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
