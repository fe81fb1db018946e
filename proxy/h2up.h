/*
 * h2up.h — HTTP/2 towards vendors: an nghttp2 client session over a pooled upstream
 * connection whose TLS handshake chose ALPN "h2". Many exchanges share the connection, one
 * stream each, up to the vendor's MAX_CONCURRENT_STREAMS. Requests come from the exchange's
 * HTTP/1.1-form head (translated per RFC 9113 §8); responses go back through the exchange's
 * response events (bg_exchange_resp_*). Response DATA is acknowledged to the vendor (stream
 * window) only as the client drains. One worker thread; the connection (upstream.c) owns it.
 */
#ifndef BG_H2UP_H
#define BG_H2UP_H

#include "upstream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bg_h2up bg_h2up_t;
typedef struct bg_h2up_stream bg_h2up_stream_t;
struct bg_exchange;

/** Start an HTTP/2 client session on the ready connection up (sends the preface and SETTINGS).
 *  Never fails (allocation failure aborts); freed with bg_h2up_destroy. */
bg_h2up_t *bg_h2up_create(bg_upstream_t *up);
/** Free the session after the connection closed. No exchange callback is made. */
void bg_h2up_destroy(bg_h2up_t *c);
/** Bytes from the vendor. 0, or -1 when the connection must close (bg_h2up_lost first). */
int bg_h2up_recv(bg_h2up_t *c, const char *p, size_t n);
/** The connection is gone: every open stream fails with kind (refused when the vendor never
 *  saw it). Idempotent. */
void bg_h2up_lost(bg_h2up_t *c, bg_upstream_error_t kind, const char *msg);
/** Before an orderly close (idle sweep, shutdown): sends GOAWAY (NO_ERROR) when the connection
 *  is still healthy and not inside one of its own callbacks; otherwise does nothing. */
void bg_h2up_goodbye(bg_h2up_t *c);
/** The connection's write queue drained: send what waits. */
void bg_h2up_drain(bg_h2up_t *c);
/** Whether another stream may be opened now (alive, no GOAWAY, under the peer's limit). */
bool bg_h2up_available(const bg_h2up_t *c);
/** Streams open (ours, not yet closed). */
size_t bg_h2up_nstreams(const bg_h2up_t *c);
/** Whether the session is finished (GOAWAY either way and no stream left, or nothing to do). */
bool bg_h2up_finished(const bg_h2up_t *c);
/** Timer: streams silent for their response timeout (not paused by the client) fail with
 *  BG_UP_TIMEOUT. now is uv_now. */
void bg_h2up_tick(bg_h2up_t *c, uint64_t now);

/** Open a stream for ex: `head` is the request head in HTTP/1.1 form as the exchange built
 *  it; has_body: DATA follows (bg_h2up_stream_write, then bg_h2up_stream_end). Returns the
 *  stream, or NULL (then nothing was sent and no callback follows). */
bg_h2up_stream_t *bg_h2up_open(bg_h2up_t *c, struct bg_exchange *ex, const char *head, size_t head_len,
                               bool has_body, uint64_t timeout_ms);
/** Queue request body bytes (copied; flow control decides when they leave). */
void bg_h2up_stream_write(bg_h2up_stream_t *s, const char *p, size_t n);
/** The request body is complete (END_STREAM after what is queued). */
void bg_h2up_stream_end(bg_h2up_stream_t *s);
/** The request body is complete and the trailer section `lines` ("name: value\r\n", copied)
 *  follows it as a HEADERS frame with END_STREAM (RFC 9113 8.1). */
void bg_h2up_stream_trailers(bg_h2up_stream_t *s, const char *lines, size_t len);
/** Request body bytes queued and not yet handed to the session. */
size_t bg_h2up_stream_pending(const bg_h2up_stream_t *s);
/** Stop / restart acknowledging response DATA (client back-pressure); paused streams do
 *  not time out. */
void bg_h2up_stream_pause(bg_h2up_stream_t *s);
void bg_h2up_stream_resume(bg_h2up_stream_t *s);
/** The exchange is done with the stream: cancel it (RST_STREAM) if still open. No callback
 *  after this. */
void bg_h2up_stream_release(bg_h2up_stream_t *s);

/* Implemented by upstream.c. */
/** A stream of the connection closed: wake waiters, close the connection when finished. */
void bg_upstream_h2_stream_done(bg_upstream_t *up);

#endif
