/*
 * ratelimit.c (unit) — GCRA: a fresh limiter gives exactly `burst` requests at one instant,
 * then one per interval; waiting reports the time until the next pass; rate 0 never limits;
 * four threads hammering one limiter at a frozen clock pass exactly `burst` requests in total.
 */
#include "ratelimit.h"
#include "test.h"

#include <pthread.h>

#define SEC 1000000000ull

static void test_burst_then_rate(void)
{
    bg_ratelimit_t t = 0;
    uint64_t now = 5 * SEC;
    for (int i = 0; i < 10; i++)
        CHECK_INT(bg_ratelimit_take(&t, now, 100, 10), 0);
    uint64_t wait = bg_ratelimit_take(&t, now, 100, 10);
    CHECK_INT(wait, SEC / 100); /* the next slot opens one interval (10 ms) later */
    CHECK_INT(bg_ratelimit_take(&t, now + SEC / 100 - 1, 100, 10), 1);
    CHECK_INT(bg_ratelimit_take(&t, now + SEC / 100, 100, 10), 0);
    CHECK(bg_ratelimit_take(&t, now + SEC / 100, 100, 10) > 0);
    /* After a long quiet spell the burst is back, not more. */
    now += 100 * SEC;
    int passed = 0;
    for (int i = 0; i < 50; i++)
        passed += bg_ratelimit_take(&t, now, 100, 10) == 0;
    CHECK_INT(passed, 10);
}

static void test_steady_rate(void)
{
    /* 1,000 requests spread evenly over one second at 200/s with burst 1: 200 pass. */
    bg_ratelimit_t t = 0;
    int passed = 0;
    for (int i = 0; i < 1000; i++)
        passed += bg_ratelimit_take(&t, SEC + (uint64_t)i * SEC / 1000, 200, 1) == 0;
    CHECK_INT(passed, 200);
}

static void test_no_limit_and_burst_zero(void)
{
    bg_ratelimit_t t = 0;
    for (int i = 0; i < 1000; i++)
        CHECK_INT(bg_ratelimit_take(&t, SEC, 0, 0), 0);
    CHECK_INT(t, 0);
    CHECK_INT(bg_ratelimit_take(&t, SEC, 1, 0), 0); /* burst 0 acts as 1 */
    CHECK_INT(bg_ratelimit_take(&t, SEC, 1, 0), SEC);
}

static bg_ratelimit_t shared;
static int passed_by[4];

static void *hammer(void *arg)
{
    int *n = arg;
    for (int i = 0; i < 100000; i++)
        *n += bg_ratelimit_take(&shared, 42 * SEC, 1000, 500) == 0;
    return NULL;
}

static void test_threads_share_exactly(void)
{
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, &passed_by[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(passed_by[0] + passed_by[1] + passed_by[2] + passed_by[3], 500);
}

int main(void)
{
    RUN(test_burst_then_rate);
    RUN(test_steady_rate);
    RUN(test_no_limit_and_burst_zero);
    RUN(test_threads_share_exactly);
    return bg_test_done();
}
