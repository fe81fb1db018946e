/*
 * exchange.h — one request/response through the gateway, independent of the protocol it
 * arrived on: the routed vendor, the request (method, authority, target, headers, body
 * prefix), the classification, the destination and the decision, and the counters that
 * end up in the transfer record. The codec (http1 conn.c today) fills the request part
 * and drives the steps; bg_exchange_decide is protocol-neutral. One worker thread.
 */
#ifndef BG_EXCHANGE_H
#define BG_EXCHANGE_H

#include "classify.h"
#include "http1.h"
#include "policy.h"
#include "server.h"
#include "util.h"

typedef struct bg_exchange bg_exchange_t;

/* Candidate destination addresses and the decision reached for each. */
typedef struct {
    struct sockaddr_storage addr;
    char ip[48];
    char country[3];
    bg_dest_kind_t kind;
    bg_decision_t dec;
} bg_dest_t;

struct bg_exchange {
    bg_worker_t *w;
    bg_runtime_t *rt;            /* the snapshot this exchange started on (retained) */
    const bg_vendor_t *vendor;
    int vendor_index;
    int64_t start_ms;
    uint64_t start_hr;           /* uv_hrtime at start */
    char id[27];
    const char *protocol;        /* "http/1.1" | "h2" */
    char caller[288];

    /* Request: the raw head is copied so headers stay valid while the input buffer moves. */
    char *head;
    size_t head_len;
    bg_h1_request_t req;
    char host[256];              /* lowercased, without port */
    const char *target;          /* origin-form path + query */
    size_t target_len;
    bg_buf_t body;               /* decoded body prefix, at most max_body_scan bytes */
    uint64_t body_total;         /* decoded bytes received so far */
    bool body_done;
    bool body_over_scan;         /* the body is longer than max_body_scan */

    /* Decision. */
    bg_classification_t cls;
    bool cls_ready;
    bg_dest_t *dests;
    size_t ndests;
    int chosen;                  /* index into dests, -1 none */
    bg_decision_t dec;           /* the decision taken (copy of the chosen dest's) */
    const char *error;           /* a failure before the decision (e.g. "dns_failed") */

    /* Outcome. */
    int status;
    uint64_t bytes_in, bytes_out;
    bool recorded;
};

/** Start an exchange on worker w (retains the worker's runtime). */
bg_exchange_t *bg_exchange_create(bg_worker_t *w, const char *protocol, const char *caller);
/** Release everything (runtime ref, buffers wiped: they held request data). */
void bg_exchange_destroy(bg_exchange_t *ex);
/** Route host (port stripped, lowercased into ex->host): 0 found, -1 none. */
int bg_exchange_route(bg_exchange_t *ex, const char *host, size_t len);
/** Classify the request (headers, target, body prefix). */
void bg_exchange_classify(bg_exchange_t *ex);
/** Given the candidate addresses, decide each and choose. Sets ex->dec and ex->chosen. */
void bg_exchange_decide(bg_exchange_t *ex, const struct sockaddr_storage *addrs, size_t naddrs);
/** Write the transfer record and count metrics (once). */
void bg_exchange_record(bg_exchange_t *ex);
/** Fill a RFC 9457 problem+json body for a 451 into out. */
void bg_exchange_problem_451(bg_exchange_t *ex, bg_buf_t *out);

#endif
