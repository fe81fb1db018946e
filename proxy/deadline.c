/*
 * deadline.c — see deadline.h. Invariant: while armed, the libuv timer is active and fires at
 * fires_at <= due, so the deadline is never missed; it may fire before due, and then it is
 * started again for the rest. One worker thread.
 */
#include "deadline.h"

#include <stddef.h>

static void fire_cb(uv_timer_t *t)
{
    bg_deadline_t *d = (bg_deadline_t *)((char *)t - offsetof(bg_deadline_t, timer));
    if (!d->armed)
        return; /* stopped since it was set: nothing to do, and the libuv timer is now idle */
    uint64_t now = uv_now(t->loop);
    if (now < d->due) {
        d->fires_at = d->due;
        uv_timer_start(t, fire_cb, d->due - now, 0);
        return;
    }
    d->armed = false;
    d->cb(t);
}

int bg_deadline_init(uv_loop_t *loop, bg_deadline_t *d, void *data)
{
    d->cb = NULL, d->due = d->fires_at = 0, d->armed = false;
    int r = uv_timer_init(loop, &d->timer);
    d->timer.data = data;
    return r;
}

void bg_deadline_start(bg_deadline_t *d, uv_timer_cb cb, uint64_t ms)
{
    uint64_t due = uv_now(d->timer.loop) + ms;
    d->cb = cb, d->due = due, d->armed = true;
    /* The libuv timer already fires at or before the new due time: it will look again then. */
    if (uv_is_active((uv_handle_t *)&d->timer) && d->fires_at <= due)
        return;
    d->fires_at = due;
    uv_timer_start(&d->timer, fire_cb, ms, 0);
}

void bg_deadline_stop(bg_deadline_t *d) { d->armed = false; }

void bg_deadline_close(bg_deadline_t *d, uv_close_cb close_cb)
{
    d->armed = false;
    uv_close((uv_handle_t *)&d->timer, close_cb);
}
