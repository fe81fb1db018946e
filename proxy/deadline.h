/*
 * deadline.h — a timer that is cheap to re-arm: a connection's idle, header and response
 * timeouts move on every request, and a libuv timer pays a heap removal and insertion each time.
 * A deadline only records its new due time while the libuv timer under it is already due no
 * later; when that timer fires early it is started again for what remains. Stopping only
 * disarms: the libuv timer may still fire once, and then does nothing. One worker thread.
 */
#ifndef BG_DEADLINE_H
#define BG_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct {
    uv_timer_t timer;  /* private; timer.data is the owner's (the callback gets &timer) */
    uv_timer_cb cb;    /* private */
    uint64_t due;      /* private: loop time the armed deadline expires */
    uint64_t fires_at; /* private: loop time the libuv timer fires, when it is active */
    bool armed;        /* private */
} bg_deadline_t;

/** Initialise on loop with the owner's pointer in timer.data; 0 or a libuv error. */
int bg_deadline_init(uv_loop_t *loop, bg_deadline_t *d, void *data);
/** Arm: cb(&d->timer) runs once, ms from the loop's now, unless re-armed or stopped first. */
void bg_deadline_start(bg_deadline_t *d, uv_timer_cb cb, uint64_t ms);
/** Disarm (cb will not run). */
void bg_deadline_stop(bg_deadline_t *d);
/** Whether it is armed. */
static inline bool bg_deadline_armed(const bg_deadline_t *d) { return d->armed; }
/** Close the libuv timer (uv_close semantics: close_cb follows on the loop). */
void bg_deadline_close(bg_deadline_t *d, uv_close_cb close_cb);

#endif
