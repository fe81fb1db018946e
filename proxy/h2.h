/*
 * h2.h — the HTTP/2 codec on a client connection (nghttp2 server session): each stream is
 * an exchange (exchange.h), classified, decided and recorded on its own; the session
 * implements bg_downstream_t per stream. conn.c hands a connection over when TLS
 * negotiated ALPN "h2" or a plain connection starts with the HTTP/2 preface (h2c by prior
 * knowledge), then forwards the stream's bytes and events here. One worker thread.
 */
#ifndef BG_H2_H
#define BG_H2_H

#include "server.h"
#include "stream.h"

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct bg_h2 bg_h2_t;

/** The 24-byte client connection preface. */
#define BG_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define BG_H2_PREFACE_LEN 24

/** Submits trailers on stream `id` of `ng` (either side: client responses, vendor requests) as a
 *  HEADERS frame with END_STREAM, from field lines as bg_h1_split_fields reads them (as the
 *  HTTP/1.1 codec keeps them). Call from a data source's read callback, as nghttp2 allows. 0, or
 *  -1 when there is no field or nghttp2 refuses (then the DATA ends the stream, trailers lost). */
int bg_h2_submit_trailer_lines(nghttp2_session *ng, int32_t id, const char *lines, size_t len);

/** Start a server session on `stream` (owned by the caller's connection; writes go to it) and
 *  queue the server SETTINGS. caller/client_ip/tls describe the client for the exchanges; li
 *  and lslot the listener it came in on (cfg->listen index and limits slot, -1 unknown).
 *  Returns NULL on failure (the caller closes the connection). */
bg_h2_t *bg_h2_create(bg_worker_t *w, bg_stream_t *stream, const char *caller, const char *client_ip, bool tls,
                      int li, int lslot);
/** Bytes from the client. Returns 0, or negative when the connection must be closed (protocol
 *  error, flood): GOAWAY has been queued when possible. */
int bg_h2_feed(bg_h2_t *s, const char *p, size_t n);
/** The client's write queue drained: send more. */
void bg_h2_drained(bg_h2_t *s);
/** Graceful shutdown (SIGTERM): GOAWAY, let the open streams finish. */
void bg_h2_shutdown(bg_h2_t *s);
/** An idle connection is about to be closed: a final GOAWAY (NO_ERROR, the last stream taken) is
 *  queued and flushed, so a request the client sends meanwhile is known not to be processed. */
void bg_h2_goodbye(bg_h2_t *s);
/** Whether the session is finished (no open streams, nothing to send, peer or we said GOAWAY)
 *  and the connection can be closed. */
bool bg_h2_done(const bg_h2_t *s);
/** Answer 408 on every stream whose request body (the part held for the decision) has not
 *  arrived within body_timeout_ms of its head; and on every stream whose body streams to the
 *  vendor and got no DATA for limits.idle_timeout (reset instead once its answer began). */
void bg_h2_expire(bg_h2_t *s, uint64_t body_timeout_ms);
/** Whether any stream is open (an idle connection timer must not cut them). */
bool bg_h2_busy(const bg_h2_t *s);
/** Free the session; every open exchange is cancelled (recorded as 499). */
void bg_h2_destroy(bg_h2_t *s);

#endif
