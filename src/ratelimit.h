/*
 * ratelimit.h — request-rate limiting by the generic cell rate algorithm (GCRA): the whole state
 * of a limiter is one "theoretical arrival time" in an atomic 64-bit word, so workers can share a
 * limiter without a lock (a compare-and-swap per request). Pure: the caller passes the clock.
 */
#ifndef BG_RATELIMIT_H
#define BG_RATELIMIT_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t bg_ratelimit_t; /* zero-initialised: a full burst is available */

/** Take one request from limiter `tat` at time now_ns (monotonic nanoseconds) for `rate`
 *  requests per second with `burst` back-to-back requests allowed (burst 0 counts as 1).
 *  Returns 0 when the request may pass (the limiter advanced), else the nanoseconds until
 *  one would (the limiter is unchanged). rate 0 means no limit (always 0). Thread-safe. */
uint64_t bg_ratelimit_take(bg_ratelimit_t *tat, uint64_t now_ns, uint32_t rate, uint32_t burst);

#endif
