/*
 * exchange.h — one request/response through the gateway, independent of the protocol it
 * arrived on. A codec (HTTP/1.1 in conn.c; HTTP/2 streams later) parses a request head into
 * ex->req, calls bg_exchange_start, feeds the body with bg_exchange_body / _body_end, and
 * implements bg_downstream_t to carry the answer back. The exchange routes, classifies,
 * decides per destination address, blocks or forwards (sealing values under `encrypt`) to
 * exactly the allowed address, relays the response with back-pressure, and writes the
 * transfer record. The vendor's answer arrives as response events (head, body bytes, end or
 * error): from the HTTP/1.1 parser in exchange.c, or from an HTTP/2 stream (h2up.c) through
 * bg_exchange_resp_*; reveal, records, metrics, fsync holds, 502/504 and back-pressure are
 * the same for both. One worker thread owns it.
 */
#ifndef BG_EXCHANGE_H
#define BG_EXCHANGE_H

#include "classify.h"
#include "http1.h"
#include "policy.h"
#include "server.h"
#include "upstream.h"
#include "util.h"

typedef struct bg_exchange bg_exchange_t;

/* The codec side of an exchange. Every call is on the worker thread. */
typedef struct {
    /** Send the response head. `headers` are end-to-end fields (framing and hop-by-hop
     *  removed, X-Transfer-Id included); body_len is the exact body length, or -1 when the
     *  body streams (the codec frames it); bodiless: no body follows whatever the headers say
     *  (HEAD, 204, 304, 1xx). A head with no body after it (bodiless, or body_len 0) is only
     *  composed here, its bytes counted in bytes_out, and leaves with end (never flush: it is
     *  the whole answer, complete only once the vendor's stream is): under fsync: always such
     *  an answer is composed before its record is written (which counts it) and goes out once
     *  the record is durable. */
    void (*head)(bg_exchange_t *ex, int status, const bg_header_t *headers, size_t n, int64_t body_len,
                 bool bodiless);
    /** Send response body bytes (already decoded from the vendor's framing). */
    void (*body)(bg_exchange_t *ex, const char *p, size_t n);
    /** The response is complete and recorded: the codec destroys the exchange (possibly
     *  closing when ex->body_done is false: the rest of the request is still on the wire). */
    void (*end)(bg_exchange_t *ex);
    /** The response cannot be completed (vendor failed mid-body): reset/close. The codec
     *  destroys the exchange with bg_exchange_cancel. */
    void (*abort)(bg_exchange_t *ex);
    /** Bytes queued towards the client (for back-pressure). */
    size_t (*pending)(bg_exchange_t *ex);
    /** Optional (may be NULL): push out anything the codec held back to coalesce writes (a
     *  response head waiting for its first body bytes; not a head with no body after it, see
     *  head). Called when a vendor read is done and body bytes are to follow. */
    void (*flush)(bg_exchange_t *ex);
    /** Optional (may be NULL): the response's trailer fields (already filtered: only fields
     *  allowed in trailers), just before end. The codec sends them if its framing can (an
     *  HTTP/1.1 chunked answer, an HTTP/2 stream with a body) and drops them otherwise. The
     *  exchange counts their bytes in bytes_out (see trailers_fit), not the codec. */
    void (*trailers)(bg_exchange_t *ex, const bg_header_t *fields, size_t n);
    /** With trailers: whether the answer's framing can carry them (trailers will send them). */
    bool (*trailers_fit)(bg_exchange_t *ex);
    /** Optional (may be NULL): take back a head that has not left (one with no body after it,
     *  held until end; see head): its bytes come off bytes_out and the codec is as before head,
     *  so the exchange may answer in its place. Returns false when any of it may have left (or
     *  the codec cannot): then only abort remains. A codec whose exchange is cancelled with such
     *  a head held takes it back the same way (nothing of the answer went out: bytes_out 0). */
    bool (*retract)(bg_exchange_t *ex);
    /** Stop / restart delivering request body bytes. */
    void (*pause_request)(bg_exchange_t *ex);
    void (*resume_request)(bg_exchange_t *ex);
    /** Optional (may be NULL): the whole request body p .. p + n, just handed to bg_exchange_body,
     *  is the end of the codec's read buffer: hand that buffer to the exchange instead of a copy
     *  (bg_stream_read_take: *buf, *cap in, storage the exchange gives up, wiped; out, the read's
     *  buffer). False: nothing changed. */
    bool (*adopt_body)(bg_exchange_t *ex, const char *p, size_t n, char **buf, size_t *cap);
} bg_downstream_t;

/* Candidate destination addresses and the decision reached for each. */
typedef struct {
    struct sockaddr_storage addr;
    char ip[48];
    char country[3];
    bg_dest_kind_t kind;
    bg_decision_t dec;
} bg_dest_t;

enum { BG_EX_NEW, BG_EX_BODY, BG_EX_DECIDING, BG_EX_FORWARD, BG_EX_DONE };

struct bg_exchange {
    bg_worker_t *w;
    bg_runtime_t *rt;            /* the snapshot this exchange started on (retained) */
    const bg_downstream_t *down;
    void *down_ctx;              /* the codec's connection or stream */
    int state;
    const bg_vendor_t *vendor;
    int vendor_index;
    int64_t start_ms;
    uint64_t start_hr;           /* uv_hrtime at start */
    char id[27];
    const char *protocol;        /* "http/1.1" | "h2" */
    char caller[288];            /* client address, or the mTLS subject */
    char client_ip[48];          /* for X-Forwarded-For */
    bool client_tls;             /* for X-Forwarded-Proto */
    int listener;                /* index into cfg->listen, -1 unknown */
    int lslot;                   /* the listener's limits slot (server.h), -1 none */
    char retry_after[16];        /* a 429's Retry-After value */

    /* Request, filled by the codec before bg_exchange_start. */
    char *head;                  /* owned copy of the bytes req points into (may be NULL) */
    size_t head_len;
    char *head_store;            /* bg_exchange_set_head's storage, kept when the exchange is recycled */
    size_t head_cap;
    bg_h1_request_t req;         /* method, target, host, headers, framing flags */
    char host[256];              /* lowercased, without port */
    const char *target;          /* origin-form path + query */
    size_t target_len;
    bg_buf_t body;               /* decoded body prefix, at most max_body_scan bytes; only appended to */
    char *body_store;            /* body's storage on the data plane (NULL: body is a plain bg_buf_t,
                                  * as `explain` fills it): body_room bytes kept free for the vendor's
                                  * request head, then the body, so that both go to the vendor as one
                                  * buffer handed over rather than copied (bg_stream_write_give) */
    size_t body_store_cap, body_room;
    bool body_adopted;           /* body_store is the codec's read buffer (adopt_body): counted whole */
    bg_buf_t pending;            /* body bytes beyond max_body_scan, held until the decision */
    uint64_t body_total;         /* decoded bytes received so far */
    bool body_done;
    bool body_over_scan;
    size_t held_counted;         /* body + pending bytes counted in w->held_bytes */
    size_t ntrailers;            /* the last ntrailers of req.headers are request trailers */
    char *trailer_store;         /* owned bytes those trailer fields point into */
    size_t trailer_store_len;

    /* Decision. */
    bg_classification_t cls;
    bool cls_ready;
    bool cls_locations;          /* classify with each finding's path text (explain prints it) */
    bg_dest_t *dests;
    size_t ndests;
    size_t dests_cap;            /* dests allocated (kept when the exchange is recycled) */
    bg_buf_t rec_path;           /* the record's redacted path (kept when the exchange is recycled) */
    int chosen;                  /* index into dests, -1 none */
    uint32_t tried;              /* bit i: dests[i] was given up on (failed to connect, circuit open) */
    bg_decision_t dec;           /* the decision taken (copy of the chosen dest's) */
    const char *error;           /* a failure before the decision (e.g. "dns_failed") */
    struct bg_dns_entry *dns_wait; /* the name whose first lookup it waits for (exchange.c), or NULL */
    struct bg_exchange *dns_next;  /* the next exchange waiting on it */

    /* Forwarding and the vendor's response. */
    bg_upstream_t *up;           /* an HTTP/1.1 connection (or one still connecting) */
    struct bg_h2up_stream *h2s;  /* or the HTTP/2 stream to the vendor (h2up.h) */
    const char *up_protocol;     /* what the vendor side spoke: "http/1.1" | "h2", NULL before */
    bool up_stream_body;         /* the body streams to the vendor (chunked, or DATA frames) */
    bg_buf_t out_trailers;       /* request trailer lines for the vendor ("name: value\r\n", sealed) */
    bg_buf_t resp_traw;          /* the vendor's chunked trailer section as decoded (HTTP/1.1) */
    bg_buf_t resp_trailers;      /* response trailer lines kept for the client (filtered) */
    const char *resp_trailers_over; /* an HTTP/2 vendor's trailers were over the limits: why */
    bool retried;
    bool resp_started;
    bool head_uncounted;         /* the codec holds a head with no body after it: counted as sent at finish */
    bg_buf_t out_head, out_body, rin, rbody, resp_head;
    bool resp_head_done;
    int resp_framing;
    int64_t resp_remaining;
    bg_h1_chunked_t resp_dec;
    bool resp_keep_alive;
    bool resp_reveal;
    bool reveal_failed;          /* the body to reveal outgrew its bound */
    char circuit[128];           /* the vendor address's circuit key (upstream.h) */
    char pool_key[200];          /* the upstream pool key */
    bool queued;                 /* waiting for a connection slot of the address */

    /* Outcome. */
    int status;
    uint64_t bytes_in, bytes_out;
    bool recorded;
    bool rec_reserved;           /* holds a slot of the records queue (bg_records_reserve) for its record */

    /* fsync: always — the answer waits until the record is on disk. */
    bool awaiting_record;
    bool cancelled;              /* the codec went away while we waited */
    int deferred;                /* what to do once the record is durable */
    bool hold_tail;              /* keep the response's last byte until then (a bodiless head: the codec) */
    bg_header_t dh[8];           /* a deferred gateway answer: headers (pointing to stable strings) */
    size_t ndh;
    struct bg_exchange *done_next;
};

/** Start an exchange on worker w (retains the worker's runtime). */
bg_exchange_t *bg_exchange_create(bg_worker_t *w, const char *protocol, const char *caller,
                                  const bg_downstream_t *down, void *down_ctx);
/** Copy a request head of len bytes into storage the exchange owns (ex->head, reused from a
 *  recycled exchange when large enough); the codec then points ex->req into it. */
void bg_exchange_set_head(bg_exchange_t *ex, const char *src, size_t len);
/** Free the exchanges worker w keeps for reuse (at worker teardown). */
void bg_exchange_spares_free(bg_worker_t *w);
/** Route and check the request head in ex->req: answers 403/405/413 itself (then the state is
 *  DONE and down->end has been called), else the state is BODY. */
void bg_exchange_start(bg_exchange_t *ex);
/** Decoded request body bytes / the end of the body. */
void bg_exchange_body(bg_exchange_t *ex, const char *p, size_t n);
void bg_exchange_body_end(bg_exchange_t *ex);
/** The request's trailer section, as field lines "name: value\r\n", before _body_end. Fields not
 *  allowed in trailers are dropped; the rest are classified with the headers and go to the
 *  vendor as trailers. oversize: the codec's own bound was passed. Over the header limits
 *  (counted with the head) the exchange answers 431 itself. Once the decision is taken (the
 *  body streamed past max_body_scan) they cannot be classified: dropped, logged. */
void bg_exchange_trailers(bg_exchange_t *ex, const char *lines, size_t len, bool oversize);
/** The codec's body deadline passed: if the exchange still waits for the body it holds for the
 *  decision, answer 408 (recorded); otherwise nothing. */
void bg_exchange_timeout(bg_exchange_t *ex);
/** The client sent none of its body for the codec's idle timeout while the body streams to the
 *  vendor (and the exchange had not paused it): the stall is the client's, not the vendor's. If
 *  nothing was answered, answer 408 (recorded); once the answer began, break it off (down->abort,
 *  recorded 499). Nothing when the exchange no longer waits for the client's body. */
void bg_exchange_client_idle(bg_exchange_t *ex);
/** The codec cannot hold more of this exchange's body (its connection's budget for held bodies is
 *  spent): decide on the part received, as when max_body_scan is reached (the body counts as
 *  unscannable; the rest waits, paused). Nothing when the exchange no longer waits for its body. */
void bg_exchange_scan_cut(bg_exchange_t *ex);
/** Body bytes the exchange holds while it waits for them to decide (0 once decided). */
size_t bg_exchange_held(const bg_exchange_t *ex);
/** The client's queue drained below the back-pressure mark. */
void bg_exchange_drained(bg_exchange_t *ex);
/** The codec is going away (client closed or reset): stop everything, record what happened,
 *  and free the exchange. No downstream call is made after this. */
void bg_exchange_cancel(bg_exchange_t *ex);
/** Worker thread: the exchange's record is durable (fsync: always); resume its answer. */
void bg_exchange_record_done(bg_exchange_t *ex);
/* Response events from an upstream that frames by itself (HTTP/2 streams, h2up.c). The
 * stream is the exchange's (ex->h2s) until the end or an error: those detach it. */
/** The vendor's final response head in HTTP/1.1 form (status line, fields, empty line);
 *  ends: no body follows and the stream is already detached. */
void bg_exchange_resp_head(bg_exchange_t *ex, const char *head, size_t len, bool ends);
/** Response body bytes (back-pressure: the exchange pauses ex->h2s while the client lags). */
void bg_exchange_resp_body(bg_exchange_t *ex, const char *p, size_t n);
/** The vendor's trailer fields in HTTP/1.1 form ("name: value\r\n" lines), just before
 *  bg_exchange_resp_end; never ends the exchange itself. oversize: over the stream's bound.
 *  A section over limits.max_header_size or max_headers (a response header section's limits)
 *  is the vendor's failure: bg_exchange_resp_end then fails the response (502 before the head,
 *  else the client's answer is broken off, never completed). */
void bg_exchange_resp_trailers(bg_exchange_t *ex, const char *lines, size_t len, bool oversize);
/** The response is complete (END_STREAM); the stream is detached. */
void bg_exchange_resp_end(bg_exchange_t *ex);
/** The stream failed (reset, GOAWAY, connection loss, timeout); it is detached. refused: the
 *  vendor never processed it, so an idempotent request may be tried on a new connection. */
void bg_exchange_resp_error(bg_exchange_t *ex, bg_upstream_error_t kind, const char *msg, bool refused);
/** The request body queued on ex->h2s drained below the back-pressure mark. */
void bg_exchange_req_drained(bg_exchange_t *ex);
/** Point a chunked decoder's trailer buffer at b (empty; no allocation) under the bound max
 *  (limits.max_header_size); the codec calls bg_exchange_trailers_room when the decoder says
 *  it is full. b is the codec's or exchange's, disposed securely with it. */
void bg_exchange_trailers_capture(bg_h1_chunked_t *d, bg_buf_t *b, uint32_t max);
/** The decoder's trailer buffer is full (d->trailers_full): move the kept bytes to one twice as
 *  large, wiping the old (trailers may carry personal data), and clear trailers_full. */
void bg_exchange_trailers_room(bg_h1_chunked_t *d, bg_buf_t *b);
/** Free the exchange (after down->end). ex->w may be NULL (an exchange built by `explain`). */
void bg_exchange_destroy(bg_exchange_t *ex);

/* Pieces shared with `explain` (no network): */
/** Route host (port stripped, lowercased into ex->host): 0 found, -1 none. */
int bg_exchange_route(bg_exchange_t *ex, const char *host, size_t len);
/** Classify the request (headers, target, body prefix). */
void bg_exchange_classify(bg_exchange_t *ex);
/** Given the candidate addresses, decide each and choose. Sets ex->dec and ex->chosen. Uses the
 *  worker's GeoIP cache, or none when ex->w is NULL (`explain`). */
void bg_exchange_decide(bg_exchange_t *ex, const struct sockaddr_storage *addrs, size_t naddrs);
/** Build the request for the vendor into ex->out_head (and ex->out_body when the body was
 *  rewritten; empty: send ex->body as is), sealing the personal-data values under `encrypt`.
 *  Returns 0, or -1 when sealing failed (the caller blocks). Both buffers stay owned by ex. */
int bg_exchange_build_request(bg_exchange_t *ex, bool encrypt);
/** Fill a RFC 9457 problem+json body for a 451 into out. */
void bg_exchange_problem_451(bg_exchange_t *ex, bg_buf_t *out);

#endif
