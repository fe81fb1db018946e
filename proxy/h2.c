/*
 * h2.c — PLACEHOLDER until the HTTP/2 codec lands: refuses HTTP/2 (the connection is closed),
 * so nothing is ever forwarded unchecked. Replaced wholesale by its owner.
 */
#include "h2.h"

bg_h2_t *bg_h2_create(bg_worker_t *w, bg_stream_t *stream, const char *caller, const char *client_ip, bool tls)
{
    (void)w, (void)stream, (void)caller, (void)client_ip, (void)tls;
    return NULL;
}
int bg_h2_feed(bg_h2_t *s, const char *p, size_t n) { (void)s, (void)p, (void)n; return -1; }
void bg_h2_drained(bg_h2_t *s) { (void)s; }
void bg_h2_shutdown(bg_h2_t *s) { (void)s; }
bool bg_h2_done(const bg_h2_t *s) { (void)s; return true; }
void bg_h2_destroy(bg_h2_t *s) { (void)s; }
