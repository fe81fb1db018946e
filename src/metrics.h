/*
 * metrics.h — Prometheus counters, gauges and histograms for the gateway. Each worker thread
 * writes only its own block (C11 atomics, relaxed load + store, never a read-modify-write), so
 * the hot path has no contention; a scrape sums the blocks with relaxed loads. Labelled series
 * live in a fixed-capacity table per worker (metrics.max_series); beyond it a new label set is
 * counted in its family's {overflow="true"} series (so sums stay exact) and in
 * bordergate_metrics_series_dropped_total, never grown.
 * Thread rules: hot-path calls from worker `w` only; config_reload from the main thread;
 * render from any one thread at a time (the admin listener).
 */
#ifndef BG_METRICS_H
#define BG_METRICS_H

#include "config.h"
#include "records.h"
#include "types.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

#define BG_METRICS_SERIES_DEFAULT 4096 /* labelled series per worker, all families together */

typedef struct bg_metrics bg_metrics_t;

/** Allocate counters for nworkers workers (at least 1), each holding at most max_series labelled
 *  series (0: BG_METRICS_SERIES_DEFAULT). Aborts on allocation failure. */
bg_metrics_t *bg_metrics_create(unsigned nworkers, unsigned max_series);
/** Free everything. NULL is ignored. No other call may run concurrently. */
void bg_metrics_destroy(bg_metrics_t *m);

/* The hot-path calls, from worker `w` only (w < nworkers; others are ignored). Label values
 * are copied; NULL or "" country/region are written as "unknown". */
/** One finished transfer: bordergate_transfers_total{vendor,dest_country,dest_region,decision,
 *  mechanism} and bordergate_request_duration_seconds{decision}. */
void bg_metrics_transfer(bg_metrics_t *m, unsigned w, const char *vendor, const char *dest_country,
                         const char *dest_region, bg_decision_kind_t decision, bg_mechanism_t mech,
                         double duration_s);
/** n findings of a detector: bordergate_personal_data_findings_total{category,detector}. */
void bg_metrics_findings(bg_metrics_t *m, unsigned w, const char *category, const char *detector, uint64_t n);
/** A transfer to `vendor` carried these categories (bitmask of 1u << bg_category_t):
 *  bordergate_transfer_categories_total{vendor,category}, +1 per category set. (Addition to the
 *  brief: it feeds the "categories by vendor" panel with a bounded vendor × 9 label set.) */
void bg_metrics_categories(bg_metrics_t *m, unsigned w, const char *vendor, uint32_t categories);
/** A blocked transfer: bordergate_blocks_total{vendor,reason}. Only the reason code is kept
 *  (the leading [A-Za-z0-9_] run, lowercased, at most 48 chars: "no_basis: identifier" →
 *  "no_basis"), so the label set stays bounded. (Addition to the brief.) */
void bg_metrics_block(bg_metrics_t *m, unsigned w, const char *vendor, const char *reason);
/** A block that `mode: report-only` did not enforce (the transfer went out unchanged):
 *  bordergate_report_only_blocks_total{vendor,reason}, reason code as for bg_metrics_block. It is
 *  not counted in bordergate_blocks_total, which counts only transfers that were stopped. */
void bg_metrics_would_block(bg_metrics_t *m, unsigned w, const char *vendor, const char *reason);
/** bordergate_upstream_errors_total{vendor,kind}; kind is a fixed code ("connect", "tls", ...). */
void bg_metrics_upstream_error(bg_metrics_t *m, unsigned w, const char *vendor, const char *kind);
/** A connection or request refused by a limit: bordergate_limited_total{scope,kind}; scope is
 *  "listener" or "caller", kind "connections" or "requests" (fixed codes). */
void bg_metrics_limited(bg_metrics_t *m, unsigned w, const char *scope, const char *kind);
/* How a vendor host name lookup ended (bordergate_dns_lookups_total{result}). */
typedef enum {
    BG_DNS_OK,    /* "ok": addresses */
    BG_DNS_ERROR, /* "error": failed, and the name has no addresses to serve */
    BG_DNS_STALE, /* "stale": failed, and the name's previous addresses go on serving (bounded) */
} bg_dns_result_t;
/** bordergate_dns_lookups_total{result}: a vendor host name lookup finished. */
void bg_metrics_dns_lookup(bg_metrics_t *m, unsigned w, bg_dns_result_t result);
/** bordergate_upstream_tls_handshakes_total{vendor,resumed}: one per TLS connection to a vendor. */
void bg_metrics_upstream_tls(bg_metrics_t *m, unsigned w, const char *vendor, bool resumed);
/** Open connections gauge (bordergate_open_connections): delta +1 on accept, -1 on close. */
void bg_metrics_conn(bg_metrics_t *m, unsigned w, int delta);
/** In-flight exchanges gauge (bordergate_inflight_exchanges). */
void bg_metrics_inflight(bg_metrics_t *m, unsigned w, int delta);
/** Every HTTP response sent to a client: bordergate_http_responses_total{code="1xx".."5xx"|"other"}. */
void bg_metrics_request(bg_metrics_t *m, unsigned w, int status);

/** From the main thread: bordergate_config_reloads_total{result="success"|"error"}. */
void bg_metrics_config_reload(bg_metrics_t *m, bool ok);
/** Destination address lookups by worker w: answered by its cache, and looked up. Worker w only. */
void bg_metrics_geo_lookups(bg_metrics_t *m, unsigned w, uint64_t cache_hits, uint64_t lookups);

/** Append the Prometheus text format (0.0.4) to out: HELP and TYPE for every family, series
 *  sorted, histogram buckets cumulative with +Inf, _sum and _count, label values escaped.
 *  `cfg` (may be NULL) gives bordergate_transfer_basis_expiry_timestamp_seconds{vendor,basis}
 *  for every vendor's scc/dpf expiry and build_info's config_version; `records` (may be NULL)
 *  gives records_written_total, records_queue_depth, records_healthy, records_slots_used,
 *  records_slots, records_refused_total and records_pending_age_seconds; geoip_build_epoch
 *  (0: omitted) gives bordergate_geoip_database_build_timestamp_seconds. */
void bg_metrics_render(bg_metrics_t *m, const bg_config_t *cfg, const bg_records_t *records,
                       int64_t geoip_build_epoch, bg_buf_t *out);

#endif
