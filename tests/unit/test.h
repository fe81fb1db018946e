/*
 * test.h — the unit-test runner. A test is a function `static void test_x(void)` run with
 * RUN(test_x); checks inside it print both values on failure and mark the test failed.
 * main() ends with `return bg_test_done();`, which prints "N passed, N failed" (tests,
 * not checks) and returns non-zero when any failed.
 */
#ifndef BG_TEST_H
#define BG_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int bg_test_failed_now; /* checks failed in the current test */
void bg_test_run(const char *name, void (*fn)(void));
int bg_test_done(void);
void bg_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define RUN(fn) bg_test_run(#fn, fn)

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond))                                                                  \
            bg_test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);              \
    } while (0)

#define CHECK_INT(a, b)                                                               \
    do {                                                                              \
        long long _a = (long long)(a), _b = (long long)(b);                           \
        if (_a != _b)                                                                 \
            bg_test_fail(__FILE__, __LINE__, "%s == %s: got %lld, want %lld", #a, #b, _a, _b); \
    } while (0)

#define CHECK_STR(a, b)                                                               \
    do {                                                                              \
        const char *_a = (a), *_b = (b);                                              \
        if (!_a || !_b || strcmp(_a, _b) != 0)                                        \
            bg_test_fail(__FILE__, __LINE__, "%s == %s: got \"%s\", want \"%s\"", #a, #b, \
                         _a ? _a : "(null)", _b ? _b : "(null)");                     \
    } while (0)

/* Span (pointer, length) against a C string. */
#define CHECK_SPAN(p, n, s)                                                           \
    do {                                                                              \
        const char *_p = (const char *)(p), *_s = (s);                                \
        size_t _n = (size_t)(n);                                                      \
        if (_n != strlen(_s) || memcmp(_p, _s, _n) != 0)                              \
            bg_test_fail(__FILE__, __LINE__, "%s == %s: got \"%.*s\", want \"%s\"", #p, #s, \
                         (int)_n, _p ? _p : "", _s);                                  \
    } while (0)

#endif
