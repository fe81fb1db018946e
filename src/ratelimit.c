/*
 * ratelimit.c — GCRA over one atomic word (see ratelimit.h). A request at `now` passes when the
 * theoretical arrival time is at most (burst - 1) emission intervals ahead of now; passing moves
 * it one interval further. Concurrent takers retry their compare-and-swap, so no request is
 * counted twice or lost. Any thread.
 */
#include "ratelimit.h"

uint64_t bg_ratelimit_take(bg_ratelimit_t *tat, uint64_t now_ns, uint32_t rate, uint32_t burst)
{
    if (rate == 0)
        return 0;
    if (burst == 0)
        burst = 1;
    const uint64_t interval = 1000000000ull / rate ? 1000000000ull / rate : 1;
    const uint64_t tolerance = (uint64_t)(burst - 1) * interval;
    uint64_t cur = atomic_load_explicit(tat, memory_order_relaxed);
    for (;;) {
        uint64_t t = cur > now_ns ? cur : now_ns;
        if (t - now_ns > tolerance)
            return t - now_ns - tolerance;
        if (atomic_compare_exchange_weak_explicit(tat, &cur, t + interval, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
}
