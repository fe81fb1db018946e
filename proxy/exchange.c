/*
 * exchange.c — the protocol-neutral steps of one transfer: route, classify, decide per
 * destination address, record. Runs on the worker thread that owns the exchange. The
 * decision is made for every candidate address of the vendor; the upstream then connects
 * to exactly the address whose classification allowed it (no second lookup). The vendor's
 * answer comes from the HTTP/1.1 parser here or from an HTTP/2 stream (h2up.c, through
 * bg_exchange_resp_*); both end in accept_head / relay_body / complete / upstream_failed.
 */
#include "exchange.h"

#include "h2up.h"
#include "log.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Destroyed exchanges a worker keeps, with their buffers, so that a request in the steady state
 * allocates nothing here: no exchange, head copy, destination array, request or response
 * buffers. Bounded in number and in what each keeps; every buffer is wiped before it is kept. */
#define BG_EX_SPARES 64
#define BG_EX_KEEP_BODY (64u << 10) /* a kept request body buffer (a codec's read buffer fits) */
#define BG_EX_KEEP_BUF (16u << 10)  /* a kept head / response buffer */
/* Room kept in front of a request body for the head that goes to the vendor before it: the
 * client's head and what build_request adds (forwarding fields, framing), up to a bound (a larger
 * head is copied as before). */
#define BG_EX_HEAD_EXTRA 512
#define BG_EX_ROOM_MAX (8u << 10)

/* What a recycled exchange hands to the next one. */
typedef struct {
    bg_buf_t out_head, rin, resp_head, rec_path;
    char *body_store;
    size_t body_store_cap;
    char *head_store;
    size_t head_cap;
    bg_dest_t *dests;
    size_t dests_cap;
} ex_kept_t;

static void kept_take(bg_exchange_t *ex, ex_kept_t *k)
{
    k->body_store = ex->body_store, k->body_store_cap = ex->body_store_cap;
    k->out_head = ex->out_head, k->rin = ex->rin, k->resp_head = ex->resp_head;
    k->rec_path = ex->rec_path;
    k->head_store = ex->head_store, k->head_cap = ex->head_cap;
    k->dests = ex->dests, k->dests_cap = ex->dests_cap;
}

static void kept_give(bg_exchange_t *ex, const ex_kept_t *k)
{
    ex->body_store = k->body_store, ex->body_store_cap = k->body_store_cap;
    ex->out_head = k->out_head, ex->rin = k->rin, ex->resp_head = k->resp_head;
    ex->rec_path = k->rec_path;
    ex->head_store = k->head_store, ex->head_cap = k->head_cap;
    ex->dests = k->dests, ex->dests_cap = k->dests_cap;
}

/* Free what an exchange keeps for reuse (ex_kept_t's fields), wiped first. */
static void kept_free(bg_exchange_t *ex)
{
    if (ex->body_store) { /* ex->body lives inside it */
        bg_wipe(ex->body_store, ex->body_store_cap);
        free(ex->body_store);
        ex->body_store = NULL;
        ex->body_store_cap = 0;
        bg_buf_init(&ex->body);
    } else {
        bg_buf_dispose_secure(&ex->body); /* `explain` fills it as a plain buffer */
    }
    bg_buf_dispose_secure(&ex->out_head);
    bg_buf_dispose_secure(&ex->rin);
    bg_buf_dispose(&ex->resp_head);
    bg_buf_dispose_secure(&ex->rec_path);
    if (ex->head_store) {
        bg_wipe(ex->head_store, ex->head_cap);
        free(ex->head_store);
    }
    free(ex->dests);
}

/* Wipe the held body: its bytes (only ever appended to: nothing was written past them) and, in a
 * codec's read buffer taken over (adopt_body), the request head and whatever else that read
 * brought before them. The rest of the storage is clean. */
static void body_wipe(bg_exchange_t *ex)
{
    if (ex->body.data && ex->body_store)
        bg_wipe(ex->body_store, (size_t)(ex->body.data - ex->body_store) + ex->body.len);
    else if (ex->body.data)
        bg_wipe(ex->body.data, ex->body.len);
}

/* How a kept buffer is wiped: not at all (nothing private in it), its bytes up to len (a buffer
 * only ever appended to: nothing was written past len), or whole (consumed or reset buffers
 * leave older bytes past len). */
enum { WIPE_NONE, WIPE_LEN, WIPE_CAP };

/* Keep a buffer's storage (wiped, empty) when it is small enough; free it otherwise. */
static void buf_recycle(bg_buf_t *b, size_t keep_max, int wipe)
{
    if (!b->data)
        return;
    if (b->cap > keep_max + 1) {
        if (wipe != WIPE_NONE)
            bg_buf_dispose_secure(b);
        else
            bg_buf_dispose(b);
        return;
    }
    if (wipe != WIPE_NONE)
        bg_wipe(b->data, wipe == WIPE_LEN ? b->len : b->cap);
    b->len = 0;
    b->data[0] = 0;
}

bg_exchange_t *bg_exchange_create(bg_worker_t *w, const char *protocol, const char *caller,
                                  const bg_downstream_t *down, void *down_ctx)
{
    ex_kept_t kept = {0};
    bg_exchange_t *ex = w->spares;
    if (ex) {
        w->spares = ex->done_next;
        w->nspares--;
        kept_take(ex, &kept);
    } else {
        ex = malloc(sizeof *ex);
        if (!ex)
            abort();
    }
    /* Zeroed but for the parser's header array (4 KiB per exchange), which the codec fills and
     * nothing reads past req.nheaders. */
    memset(ex, 0, offsetof(bg_exchange_t, req.headers));
    memset(&ex->req.nheaders, 0, sizeof *ex - offsetof(bg_exchange_t, req.nheaders));
    kept_give(ex, &kept);
    ex->w = w;
    ex->rt = bg_runtime_retain(w->rt);
    ex->down = down;
    ex->down_ctx = down_ctx;
    ex->vendor_index = -1;
    ex->listener = -1;
    ex->lslot = -1;
    ex->chosen = -1;
    ex->start_ms = bg_now_ms();
    ex->start_hr = uv_hrtime();
    ex->protocol = protocol;
    bg_str_copy(ex->caller, sizeof ex->caller, caller, SIZE_MAX);
    bg_record_id_make(ex->start_ms, w->id, w->seq++, ex->id);
    bg_metrics_inflight(w->server->metrics, w->id, 1);
    return ex;
}

void bg_exchange_set_head(bg_exchange_t *ex, const char *src, size_t len)
{
    if (ex->head_cap < len || !ex->head_store) {
        size_t cap = len < 1024 ? 1024 : len;
        if (ex->head_store) {
            bg_wipe(ex->head_store, ex->head_cap);
            free(ex->head_store);
        }
        ex->head_store = malloc(cap);
        if (!ex->head_store)
            abort();
        ex->head_cap = cap;
    }
    memcpy(ex->head_store, src, len);
    ex->head = ex->head_store;
    ex->head_len = len;
}

void bg_exchange_spares_free(bg_worker_t *w)
{
    while (w->spares) {
        bg_exchange_t *ex = w->spares;
        w->spares = ex->done_next;
        kept_free(ex); /* wiped when kept already; this is teardown */
        free(ex);
    }
    w->nspares = 0;
}

/* The exchange waits no longer for its vendor name's first lookup (it was answered, or goes). */
static void dns_unwait(bg_exchange_t *ex)
{
    if (!ex->dns_wait)
        return;
    bg_exchange_t **q = &ex->dns_wait->waiters;
    while (*q && *q != ex)
        q = &(*q)->dns_next;
    if (*q)
        *q = ex->dns_next;
    ex->dns_wait = NULL;
    ex->dns_next = NULL;
}

void bg_exchange_destroy(bg_exchange_t *ex)
{
    if (!ex)
        return;
    if (ex->up)
        bg_upstream_release(ex->up, false);
    if (ex->h2s)
        bg_h2up_stream_release(ex->h2s);
    if (ex->queued && ex->w)
        bg_upstream_unqueue(ex->w, ex->pool_key, ex);
    dns_unwait(ex);
    if (ex->cls_ready)
        bg_classification_dispose(&ex->cls);
    bg_buf_dispose_secure(&ex->pending);
    bg_buf_dispose_secure(&ex->out_body);
    bg_buf_dispose_secure(&ex->rbody);
    bg_buf_dispose_secure(&ex->out_trailers);
    bg_buf_dispose_secure(&ex->resp_traw);
    bg_buf_dispose_secure(&ex->resp_trailers);
    if (ex->trailer_store) {
        bg_wipe(ex->trailer_store, ex->trailer_store_len);
        free(ex->trailer_store);
    }
    if (ex->head && ex->head != ex->head_store) { /* a codec's own copy (h2.c) */
        bg_wipe(ex->head, ex->head_len);
        free(ex->head);
    }
    bg_worker_t *w = ex->w; /* NULL for exchanges built by `explain` */
    if (ex->rec_reserved) { /* ended without a record (none is written for it) */
        bg_records_unreserve(w->server->records);
        ex->rec_reserved = false;
    }
    bool keep = w && w->nspares < BG_EX_SPARES;
    if (keep) {
        body_wipe(ex);
        bg_buf_init(&ex->body); /* it pointed into body_store, which is kept or goes */
        if (ex->body_store_cap > BG_EX_KEEP_BODY + BG_EX_ROOM_MAX) {
            free(ex->body_store);
            ex->body_store = NULL, ex->body_store_cap = 0;
        }
        buf_recycle(&ex->out_head, BG_EX_KEEP_BUF, WIPE_CAP);
        buf_recycle(&ex->rin, BG_EX_KEEP_BUF, WIPE_CAP);
        buf_recycle(&ex->resp_head, BG_EX_KEEP_BUF, WIPE_NONE);
        buf_recycle(&ex->rec_path, BG_EX_KEEP_BUF, WIPE_CAP);
        if (ex->head_store && ex->head == ex->head_store)
            bg_wipe(ex->head_store, ex->head_len); /* earlier heads were wiped in their turn */
        if (ex->head_store && ex->head_cap > BG_EX_KEEP_BUF) {
            free(ex->head_store);
            ex->head_store = NULL, ex->head_cap = 0;
        }
    } else {
        kept_free(ex);
    }
    if (w) {
        w->held_bytes -= ex->held_counted;
        bg_metrics_inflight(w->server->metrics, w->id, -1);
    }
    bg_runtime_release(ex->rt);
    if (keep) {
        ex->done_next = w->spares;
        w->spares = ex;
        w->nspares++;
        return;
    }
    free(ex);
}

int bg_exchange_route(bg_exchange_t *ex, const char *host, size_t len)
{
    /* Strip the port: "[v6]:p" keeps the brackets off, "h:p" drops ":p". */
    if (len && host[0] == '[') {
        const char *end = memchr(host, ']', len);
        len = end ? (size_t)(end - host) + 1 : len;
    } else {
        const char *colon = memchr(host, ':', len);
        if (colon)
            len = (size_t)(colon - host);
    }
    if (len && host[len - 1] == '.')
        len--; /* a fully qualified name routes like the name */
    if (len == 0 || len >= sizeof ex->host)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = host[i];
        ex->host[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    ex->host[len] = 0;
    const bg_vendor_t *v = bg_config_route(ex->rt->cfg, ex->host, len);
    if (!v)
        return -1;
    ex->vendor = v;
    ex->vendor_index = (int)(v - ex->rt->cfg->vendors);
    return 0;
}

void bg_exchange_classify(bg_exchange_t *ex)
{
    const bg_config_t *cfg = ex->rt->cfg;
    bg_classification_init(&ex->cls, ex->rt->classifier);
    ex->cls_ready = true;
    bg_classify_input_t in = {
        .headers = ex->req.headers,
        .nheaders = ex->req.nheaders,
        .target = ex->target,
        .target_len = ex->target_len,
        .body = ex->body.data,
        .body_len = ex->body.len,
        .body_truncated = ex->body_over_scan,
        .ai_route = ex->vendor ? ex->vendor->ai : false,
        .max_inflate = cfg->limits.max_inflate,
        .skip_locations = !ex->cls_locations, /* offsets are what the data plane reads */
    };
    if (bg_classify(ex->rt->classifier, &in, &ex->cls) < 0)
        ex->error = "classification_failed";
}

static void addr_to_ip(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    out[0] = 0;
    if (ss->ss_family == AF_INET && outlen >= INET_ADDRSTRLEN) {
        /* Dotted quad by hand (inet_ntop goes through sprintf): once per destination per request. */
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
        size_t n = 0;
        for (int i = 0; i < 4; i++) {
            if (i)
                out[n++] = '.';
            if (a[i] >= 100)
                out[n++] = (char)('0' + a[i] / 100);
            if (a[i] >= 10)
                out[n++] = (char)('0' + a[i] / 10 % 10);
            out[n++] = (char)('0' + a[i] % 10);
        }
        out[n] = 0;
    } else if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)outlen);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)outlen);
}

/* Two destinations the policy decided exactly alike: a request built for one may go to the other. */
static bool same_decision(const bg_decision_t *a, const bg_decision_t *b)
{
    return a->action == b->action && a->decision == b->decision && a->enforced == b->enforced;
}

/* Two destinations a request may take in turn: decided alike, in the same country. */
static bool equivalent_dest(const bg_dest_t *a, const bg_dest_t *b)
{
    return same_decision(&a->dec, &b->dec) && strcmp(a->country, b->country) == 0;
}

void bg_exchange_decide(bg_exchange_t *ex, const struct sockaddr_storage *addrs, size_t naddrs)
{
    const bg_config_t *cfg = ex->rt->cfg;
    const bg_vendor_t *v = ex->vendor;
    int64_t now_s = ex->start_ms / 1000;
    size_t need = naddrs ? naddrs : 1;
    if (ex->dests_cap < need) {
        free(ex->dests);
        ex->dests = malloc(need * sizeof *ex->dests);
        if (!ex->dests)
            abort();
        ex->dests_cap = need;
    }
    memset(ex->dests, 0, need * sizeof *ex->dests);
    ex->ndests = naddrs;
    ex->chosen = -1;
    ex->tried = 0;
    bg_policy_input_t in = {
        .no_trail = ex->w != NULL, /* only `explain` (no worker) prints the rules that fired */
        .categories = ex->cls_ready ? ex->cls.categories : 0,
        .unscannable = ex->cls_ready && ex->cls.unscannable,
        .unscannable_reason = ex->cls_ready ? ex->cls.unscannable_reason : NULL,
        .error = ex->error,
    };
    if (naddrs == 0) {
        /* Nothing to connect to: decide with an unknown destination (fails closed). */
        in.country = "";
        in.dest_kind = BG_DEST_UNKNOWN;
        in.region_covered = false;
        if (!in.error)
            in.error = "no_destination_address";
        bg_policy_decide(cfg, v, &in, now_s, &ex->dec);
        return;
    }
    uint64_t hits0 = 0, miss0 = 0;
    bg_geo_cache_t *gc = ex->w ? ex->w->geo_cache : NULL;
    if (gc)
        bg_geo_cache_stats(gc, &hits0, &miss0);
    for (size_t i = 0; i < naddrs; i++) {
        bg_dest_t *d = &ex->dests[i];
        d->addr = addrs[i];
        addr_to_ip(&addrs[i], d->ip, sizeof d->ip);
        bg_geo_cache_lookup(ex->w ? ex->w->geo_cache : NULL, ex->rt->geo, cfg->geoip.overrides, cfg->geoip.noverrides,
                            (const struct sockaddr *)&addrs[i], d->country);
        bg_adequacy_scope_t scope = BG_SCOPE_FULL;
        d->kind = bg_config_dest_kind(cfg, d->country, &scope);
        in.country = d->country;
        in.dest_kind = d->kind;
        in.scope = scope;
        in.region_covered = d->country[0] && bg_config_vendor_covers(cfg, v, d->country);
        bg_policy_decide(cfg, v, &in, now_s, &d->dec);
        /* The policy heard of the decision (its reason names the sunset); the record and the
         * metrics name the region the law put the country in at the time: a third country. */
        if (d->kind == BG_DEST_ADEQUATE && !bg_config_adequacy_in_force(cfg, d->country, now_s))
            d->kind = BG_DEST_THIRD;
        if (ex->chosen < 0 && d->dec.action != BG_DECISION_BLOCK)
            ex->chosen = (int)i;
    }
    if (gc) {
        uint64_t hits1 = 0, miss1 = 0;
        bg_geo_cache_stats(gc, &hits1, &miss1);
        bg_metrics_geo_lookups(ex->w->server->metrics, ex->w->id, hits1 - hits0, miss1 - miss0);
    }
    /* Several addresses in the same country decided alike (a name with several A records, a
     * load balancer's nodes): each worker takes them in turn, as nginx's round robin over a
     * name's addresses, instead of sending everything to the first. */
    if (ex->chosen >= 0 && ex->w) {
        const bg_dest_t *c = &ex->dests[ex->chosen];
        unsigned same = 0;
        for (size_t i = 0; i < naddrs; i++)
            same += equivalent_dest(&ex->dests[i], c);
        if (same > 1) {
            unsigned k = ex->w->next_address++ % same;
            for (size_t i = 0; i < naddrs; i++)
                if (equivalent_dest(&ex->dests[i], c) && k-- == 0) {
                    ex->chosen = (int)i;
                    break;
                }
        }
    }
    /* No allowed address: the first one's decision explains the block. */
    ex->dec = ex->dests[ex->chosen >= 0 ? ex->chosen : 0].dec;
}

/* The path for the record: no query, and every personal-data span found in it replaced. */
static void redacted_path(const bg_exchange_t *ex, bg_buf_t *out)
{
    size_t plen = ex->target_len;
    const char *q = memchr(ex->target, '?', ex->target_len);
    if (q)
        plen = (size_t)(q - ex->target);
    size_t pos = 0;
    if (ex->cls_ready) {
        for (size_t i = 0; i < ex->cls.nfindings; i++) {
            const bg_finding_t *f = &ex->cls.findings[i];
            if (f->where != BG_WHERE_PATH || f->offset < pos || f->offset + f->length > plen)
                continue;
            bg_buf_append(out, ex->target + pos, f->offset - pos);
            bg_buf_puts(out, "[redacted]");
            pos = f->offset + f->length;
        }
        if (ex->cls.findings_truncated) {
            /* Not every span is known: keep only the first segment. */
            bg_buf_reset(out);
            bg_buf_puts(out, "[redacted]");
            return;
        }
    }
    bg_buf_append(out, ex->target + pos, plen - pos);
}

/* Why an exchange ended before the policy decided it, by the status it ended with. */
static const char *undecided_reason(int status)
{
    switch (status) {
    case 408: return "request_timeout";
    case 413: return "body_too_large";
    case 431: return "trailers_too_large";
    case 499: return "client_closed";
    default: return "not_decided";
    }
}

static int exchange_record(bg_exchange_t *ex, void (*done)(void *, int))
{
    if (ex->recorded || !ex->vendor)
        return -1;
    ex->recorded = true;
    if (!ex->dec.reason[0]) {
        /* Ended before the policy ran (every decision names a reason): 413, 408, 431, or the
         * client went away while its body was held. Nothing was sent, so the record, the Art. 30
         * report and the counters say the transfer was stopped and why, never a zeroed "allow"
         * that nobody decided. In report-only mode too: these refusals are not the policy's. */
        ex->dec.decision = ex->dec.action = BG_DECISION_BLOCK;
        ex->dec.enforced = true;
        ex->dec.mechanism = BG_MECH_NONE;
        snprintf(ex->dec.reason, sizeof ex->dec.reason, "%s", undecided_reason(ex->status));
    }
    bg_server_t *s = ex->w->server;
    const bg_config_t *cfg = ex->rt->cfg;
    const bg_dest_t *d = ex->ndests ? &ex->dests[ex->chosen >= 0 ? ex->chosen : 0] : NULL;
    uint64_t dur_ns = uv_hrtime() - ex->start_hr;
    bg_buf_t *path = &ex->rec_path;
    bg_buf_reset(path);
    redacted_path(ex, path);
    char method[24];
    bg_str_copy(method, sizeof method, ex->req.method, ex->req.method_len < 20 ? ex->req.method_len : 20);

    unsigned ndet = bg_classifier_ndetectors(ex->rt->classifier);
    const char *names[256];
    uint32_t counts[256];
    size_t n = 0;
    for (unsigned i = 0; ex->cls_ready && i < ndet && n < 256; i++) {
        if (!ex->cls.counts[i])
            continue;
        names[n] = bg_classifier_detector_name(ex->rt->classifier, i);
        counts[n] = ex->cls.counts[i];
        bg_metrics_findings(s->metrics, ex->w->id,
                            bg_category_name(bg_classifier_detector_category(ex->rt->classifier, i)),
                            names[n], counts[n]);
        n++;
    }
    const char *region = d ? bg_config_dest_region_label(cfg, d->kind) : "unknown";
    bg_record_t r = {
        .ts_ms = ex->start_ms,
        .id = ex->id,
        .caller = ex->caller,
        .vendor = ex->vendor->name,
        .host = ex->host,
        .method = method,
        .path = path->data ? path->data : "/",
        .dest_ip = d ? d->ip : "",
        .dest_country = d ? d->country : "",
        .dest_region = region,
        .cross_border = d ? d->kind != BG_DEST_DOMESTIC : true,
        .categories = ex->cls_ready ? ex->cls.categories : 0,
        .detector_names = names,
        .detector_counts = counts,
        .ndetectors = n,
        .mechanism = ex->dec.mechanism,
        .scc_module = ex->dec.scc_module,
        .scc_reference = ex->dec.scc_reference,
        .decision = ex->dec.decision,
        .reason = ex->dec.reason,
        .enforced = ex->dec.enforced,
        .status = ex->status,
        .bytes_in = ex->bytes_in,
        .bytes_out = ex->bytes_out,
        .duration_ms = dur_ns / 1000000,
        .protocol = ex->protocol,
        .upstream_protocol = ex->up_protocol,
        .config_version = cfg->version,
    };
    /* Every exchange that gets here holds the slot it reserved when it was admitted, so the submit
     * never waits for the writer, whatever the disk does. Why it always does: ex->vendor is set
     * only in bg_exchange_start (the listener's vendor, or bg_exchange_route), which on a worker
     * calls records_admit right after: that reserves, or clears ex->vendor and answers 503 (no
     * record). exchange_record runs only on a worker (finish, respond, record_and_wait,
     * bg_exchange_cancel; `explain` has no worker and never calls them), only with ex->vendor set,
     * and once (ex->recorded); the slot is given back only here or in bg_exchange_destroy. There
     * used to be a fallback to the blocking bg_records_submit here: it could not run, and had it
     * run it would have stalled the worker's loop on the records disk, which reservations exist
     * to prevent. A broken invariant is now a loud error and a missing record, never a wait. */
    int rc;
    if (ex->rec_reserved) {
        ex->rec_reserved = false;
        rc = bg_records_submit_reserved(s->records, &r, done, ex);
    } else {
        bg_log_error("BUG: a routed exchange without a records slot; its record is not written", "id", ex->id,
                     "vendor", ex->vendor->name);
        rc = -EPROTO;
    }
    if (rc < 0)
        bg_log_error("transfer record not written", "id", ex->id, "vendor", ex->vendor->name);
    bg_metrics_transfer(s->metrics, ex->w->id, ex->vendor->name, d ? d->country : "", region,
                        ex->dec.decision, ex->dec.mechanism, (double)dur_ns / 1e9);
    if (r.categories)
        bg_metrics_categories(s->metrics, ex->w->id, ex->vendor->name, r.categories);
    if (ex->dec.decision == BG_DECISION_BLOCK && ex->dec.enforced)
        bg_metrics_block(s->metrics, ex->w->id, ex->vendor->name, ex->dec.reason);
    else if (ex->dec.decision == BG_DECISION_BLOCK)
        bg_metrics_would_block(s->metrics, ex->w->id, ex->vendor->name, ex->dec.reason);
    return rc < 0 ? -1 : 0;
}

void bg_exchange_problem_451(bg_exchange_t *ex, bg_buf_t *out)
{
    const bg_dest_t *d = ex->ndests ? &ex->dests[0] : NULL;
    bg_buf_puts(out, "{\"type\":\"https://bordergate.dev/problems/transfer-blocked\","
                     "\"title\":\"Transfer blocked: no legal basis for this transfer of personal data\","
                     "\"status\":451,\"reason\":\"");
    bg_buf_json_escape(out, ex->dec.reason, strlen(ex->dec.reason));
    bg_buf_puts(out, "\",\"vendor\":\"");
    bg_buf_json_escape(out, ex->vendor->name, strlen(ex->vendor->name));
    bg_buf_puts(out, "\",\"destination_country\":\"");
    if (d)
        bg_buf_puts(out, d->country);
    bg_buf_puts(out, "\",\"categories\":[");
    int k = 0;
    for (int c = 0; c < BG_CAT__COUNT; c++)
        if (ex->cls_ready && (ex->cls.categories & (1u << c)))
            bg_buf_printf(out, "%s\"%s\"", k++ ? "," : "", bg_category_name(c));
    bg_buf_printf(out, "],\"transfer_id\":\"%s\"}", ex->id);
}

/* ==== the flow of one exchange ========================================================== */

#define BG_BACKPRESSURE (1u << 20) /* bytes queued towards one peer before we pause the other */
#define BG_REVEAL_MAX (8u << 20)   /* response bytes buffered to open tokens */
#define BG_BODY_PRESIZE_MAX (256u << 10) /* request bodies up to this are buffered at their exact size */

/* RF_EVENT: the upstream codec frames the body itself (HTTP/2 DATA until END_STREAM). */
enum { RF_NONE, RF_LENGTH, RF_CHUNKED, RF_CLOSE, RF_EVENT };

static void decide(bg_exchange_t *ex);
static void start_forward(bg_exchange_t *ex);

enum { DEFER_NONE, DEFER_END, DEFER_TAIL };

static void record_done_cb(void *arg, int status)
{
    /* Writer thread: hand the exchange back to its worker's loop. */
    bg_exchange_t *ex = arg;
    (void)status; /* a failed write marks the writer unhealthy: later transfers are blocked */
    bg_worker_t *w = ex->w;
    pthread_mutex_lock(&w->done_lock);
    ex->done_next = w->done_head;
    w->done_head = ex;
    if (!w->async_closed)
        uv_async_send(&w->async); /* else freed by bg_worker_dispose after the writer closed */
    pthread_mutex_unlock(&w->done_lock);
}

/* Under fsync: always, submit the record and continue in bg_exchange_record_done once it is on
 * disk. Returns false when nothing is pending (not `always`, or the writer refused). */
static bool record_and_wait(bg_exchange_t *ex, int deferred)
{
    if (ex->rt->cfg->records.fsync != BG_FSYNC_ALWAYS || !ex->vendor || ex->recorded)
        return false;
    ex->deferred = deferred;
    ex->awaiting_record = true;
    if (exchange_record(ex, record_done_cb) == 0)
        return true;
    ex->awaiting_record = false;
    return false;
}

static bool is_head(const bg_exchange_t *ex)
{
    return ex->req.method && bg_span_ieq(ex->req.method, ex->req.method_len, "HEAD");
}

/* Send a gateway answer's head and the first `upto` bytes of its body (ex->rbody). A HEAD
 * request gets the head only (RFC 9110 9.3.2), or a keep-alive client loses sync. */
static void send_answer(bg_exchange_t *ex, size_t upto)
{
    bool head = is_head(ex);
    bg_metrics_request(ex->w->server->metrics, ex->w->id, ex->status);
    ex->down->head(ex, ex->status, ex->dh, ex->ndh, (int64_t)ex->rbody.len, head);
    if (upto && !head)
        ex->down->body(ex, ex->rbody.data, upto);
}

/* A relayed answer's held last byte (fsync: always) completes it now. */
static void send_held(bg_exchange_t *ex)
{
    if (ex->hold_tail && ex->rbody.len) {
        ex->down->body(ex, ex->rbody.data, ex->rbody.len);
        bg_buf_reset(&ex->rbody);
    }
}

/* The bytes of the trailer fields the client will get, as field lines ("name: value\r\n"),
 * whichever protocol carries them; counted before the record, which may be written (fsync:
 * always) before they go out behind the held-back last body byte. */
static uint64_t resp_trailer_bytes(bg_exchange_t *ex)
{
    if (!ex->resp_trailers.len || !ex->down->trailers || !ex->down->trailers_fit || !ex->down->trailers_fit(ex))
        return 0;
    bg_header_t f[BG_H1_MAX_HEADERS];
    int n = bg_h1_split_fields(ex->resp_trailers.data, ex->resp_trailers.len, f, BG_H1_MAX_HEADERS);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += f[i].name_len + f[i].value_len + 4;
    return sum;
}

/* The vendor's trailer fields kept by resp_trailers_keep go to the codec, once, after the
 * last body byte and before the end (their bytes were counted by finish). */
static void send_trailers(bg_exchange_t *ex)
{
    if (!ex->resp_trailers.len)
        return;
    bg_header_t f[BG_H1_MAX_HEADERS];
    int n = bg_h1_split_fields(ex->resp_trailers.data, ex->resp_trailers.len, f, BG_H1_MAX_HEADERS);
    if (n > 0 && ex->down->trailers)
        ex->down->trailers(ex, f, (size_t)n);
    bg_buf_dispose_secure(&ex->resp_trailers);
}

void bg_exchange_record_done(bg_exchange_t *ex)
{
    ex->awaiting_record = false;
    if (ex->cancelled) {
        bg_exchange_destroy(ex);
        return;
    }
    if (ex->deferred == DEFER_TAIL) {
        ex->down->body(ex, ex->rbody.data + ex->rbody.len - 1, 1);
    } else {
        send_held(ex);
        send_trailers(ex);
    }
    ex->down->end(ex);
}

/* The exchange is over: record it and hand it back to the codec. */
static void finish(bg_exchange_t *ex)
{
    if (ex->state == BG_EX_DONE)
        return;
    ex->state = BG_EX_DONE;
    if (ex->up) {
        bg_upstream_release(ex->up, false);
        ex->up = NULL;
    }
    if (ex->h2s) {
        bg_h2up_stream_release(ex->h2s);
        ex->h2s = NULL;
    }
    if (ex->head_uncounted) {
        ex->head_uncounted = false;
        bg_metrics_request(ex->w->server->metrics, ex->w->id, ex->status);
    }
    ex->bytes_out += resp_trailer_bytes(ex);
    if (!ex->hold_tail)
        send_trailers(ex); /* nothing held back: now; else after the record, behind the last byte */
    if (record_and_wait(ex, DEFER_END))
        return;
    if (ex->vendor && !ex->recorded)
        exchange_record(ex, NULL);
    send_held(ex); /* the record did not wait (the writer refused it): the answer completes anyway */
    send_trailers(ex);
    ex->down->end(ex);
}

/* A complete answer generated by the gateway. `extra` headers must point to strings that
 * outlive the exchange's wait for its record (literals, the exchange, thread-locals). */
static void respond(bg_exchange_t *ex, int status, const char *ctype, const char *body, size_t blen,
                    const bg_header_t *extra, size_t nextra)
{
    size_t n = 0;
    if (ctype)
        ex->dh[n++] = (bg_header_t){"Content-Type", 12, ctype, strlen(ctype)};
    if (ex->vendor) /* only routed exchanges leave a record under this id */
        ex->dh[n++] = (bg_header_t){"X-Transfer-Id", 13, ex->id, strlen(ex->id)};
    for (size_t i = 0; i < nextra && n < 8; i++)
        ex->dh[n++] = extra[i];
    ex->ndh = n;
    ex->status = status;
    if (!is_head(ex)) /* a HEAD request gets the head only (send_answer) */
        ex->bytes_out += blen;
    bg_buf_reset(&ex->rbody);
    bg_buf_append(&ex->rbody, body, blen);
    ex->state = BG_EX_DONE;
    if (ex->up) {
        bg_upstream_release(ex->up, false);
        ex->up = NULL;
    }
    if (ex->h2s) {
        bg_h2up_stream_release(ex->h2s);
        ex->h2s = NULL;
    }
    /* Answered while the decision waited for DNS or the vendor address for a free slot (a 413
     * mid-body): neither may go on with the exchange, which can outlive this call (fsync: always). */
    dns_unwait(ex);
    if (ex->queued) {
        bg_upstream_unqueue(ex->w, ex->pool_key, ex);
        ex->queued = false;
    }
    bool always = ex->rt->cfg->records.fsync == BG_FSYNC_ALWAYS && ex->vendor && !ex->recorded;
    if (always && (is_head(ex) || blen == 0)) {
        /* Nothing to hold back but the head, which the codec holds until end: composed now, so
         * that the record counts it, and out once the record is durable. */
        send_answer(ex, 0);
        if (!record_and_wait(ex, DEFER_END))
            ex->down->end(ex); /* the writer refused the record: the answer completes anyway */
        return;
    }
    /* The record is written after the answer went out, so it counts the bytes sent; under
     * fsync: always the answer's last byte waits until the record is durable. */
    send_answer(ex, always ? blen - 1 : blen);
    if (always && record_and_wait(ex, DEFER_TAIL))
        return;
    if (always)
        ex->down->body(ex, ex->rbody.data + blen - 1, 1);
    if (ex->vendor && !ex->recorded)
        exchange_record(ex, NULL);
    ex->down->end(ex);
}

static void respond_problem(bg_exchange_t *ex, int status, const char *type, const char *title,
                            const char *detail_key, const char *detail)
{
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_printf(&b, "{\"type\":\"https://bordergate.dev/problems/%s\",\"title\":\"%s\",\"status\":%d", type,
                  title, status);
    if (detail_key && detail) {
        bg_buf_printf(&b, ",\"%s\":\"", detail_key);
        bg_buf_json_escape(&b, detail, strlen(detail));
        bg_buf_puts(&b, "\"");
    }
    if (ex->vendor)
        bg_buf_printf(&b, ",\"transfer_id\":\"%s\"", ex->id);
    bg_buf_puts(&b, "}");
    bg_header_t cc = {"Cache-Control", 13, "no-store", 8};
    respond(ex, status, "application/problem+json", b.data, b.len, &cc, 1);
    bg_buf_dispose(&b);
}

/* Request-rate limits of the listener and of the caller (shared by the workers): 429 with
 * Retry-After when over. Checked before anything is routed or classified, so a flood costs
 * little; nothing was sent anywhere, so, like a 403, no transfer record. */
static bool rate_limited(bg_exchange_t *ex)
{
    const bg_config_t *cfg = ex->rt->cfg;
    const bg_listen_t *l = ex->listener >= 0 && (size_t)ex->listener < cfg->nlisten ? &cfg->listen[ex->listener] : NULL;
    uint32_t crate = cfg->limits.requests_per_second_per_caller;
    if (!ex->w || ((!l || !l->requests_per_second || ex->lslot < 0) && !crate))
        return false;
    bg_server_t *s = ex->w->server;
    uint64_t now = uv_hrtime(), wait = 0;
    const char *scope = NULL;
    if (l && l->requests_per_second && ex->lslot >= 0 &&
        (wait = bg_ratelimit_take(&s->lslots[ex->lslot].rate, now, l->requests_per_second, l->request_burst)))
        scope = "listener";
    else if (crate && (wait = bg_ratelimit_take(&s->caller_rate[bg_server_caller_bucket(ex->client_ip)], now, crate,
                                                cfg->limits.request_burst_per_caller)))
        scope = "caller";
    if (!scope)
        return false;
    bg_metrics_limited(s->metrics, ex->w->id, scope, "requests");
    snprintf(ex->retry_after, sizeof ex->retry_after, "%llu", (unsigned long long)((wait + 999999999ull) / 1000000000ull));
    bg_header_t h[2] = {{"Cache-Control", 13, "no-store", 8},
                        {"Retry-After", 11, ex->retry_after, strlen(ex->retry_after)}};
    char body[200];
    int n = snprintf(body, sizeof body,
                     "{\"type\":\"https://bordergate.dev/problems/rate-limited\",\"title\":\"Too many requests\","
                     "\"status\":429,\"limit\":\"%s\"}", scope);
    respond(ex, 429, "application/problem+json", body, (size_t)n, h, 2);
    return true;
}

/* Admission to the records queue: a routed exchange always leaves a record, so it takes the
 * record's slot now, before anything is forwarded; its submit then never waits for the writer.
 * With every slot taken (the records disk is stalled or slower than the traffic) the request is
 * refused with a 503 and sent nowhere: no transfer, so no record (there is no room for one) and
 * no X-Transfer-Id; bordergate_records_refused_total counts it and /readyz already says not
 * ready. Fail closed: nothing leaves the gateway without its record, and the worker goes on
 * serving everything else (other vendors' 403s, answers of exchanges in flight, timers). */
static bool records_admit(bg_exchange_t *ex)
{
    bg_records_t *rec = ex->w->server->records;
    if (bg_records_reserve(rec) == 0) {
        ex->rec_reserved = true;
        return true;
    }
    const char *vendor = ex->vendor->name;
    ex->vendor = NULL;
    ex->vendor_index = -1;
    /* One log line per second per worker at most: the refusals come in floods. */
    uint64_t now = uv_now(&ex->w->loop);
    if (now - ex->w->records_full_logged >= 1000 || !ex->w->records_full_logged) {
        ex->w->records_full_logged = now ? now : 1;
        char used[24];
        snprintf(used, sizeof used, "%llu", (unsigned long long)bg_records_slots_used(rec));
        bg_log_warn("records queue full; refusing transfers with 503 until the writer catches up", "vendor", vendor,
                    "slots", used);
    }
    bg_header_t h[2] = {{"Cache-Control", 13, "no-store", 8}, {"Retry-After", 11, "1", 1}};
    static const char body[] = "{\"type\":\"https://bordergate.dev/problems/records-unavailable\","
                               "\"title\":\"Transfer records cannot keep up; try again later\",\"status\":503}";
    respond(ex, 503, "application/problem+json", body, sizeof body - 1, h, 2);
    return false;
}

void bg_exchange_start(bg_exchange_t *ex)
{
    bg_h1_request_t *req = &ex->req;
    ex->state = BG_EX_BODY;
    if (rate_limited(ex))
        return;
    if (bg_span_ieq(req->method, req->method_len, "CONNECT")) {
        respond_problem(ex, 405, "method-not-allowed", "CONNECT is not supported", NULL, NULL);
        return;
    }
    if (!ex->target) {
        ex->target = req->absolute_form ? req->path : req->target;
        ex->target_len = req->absolute_form ? req->path_len : req->target_len;
    }
    const bg_config_t *cfg = ex->rt->cfg;
    const bg_listen_t *l = ex->listener >= 0 && (size_t)ex->listener < cfg->nlisten ? &cfg->listen[ex->listener] : NULL;
    if (req->host_len == 0 && l && l->vendor && l->vendor_index >= 0 && (size_t)l->vendor_index < cfg->nvendors) {
        /* No Host (HTTP/1.0): the listener names the vendor; its first host is the authority. */
        ex->vendor = &cfg->vendors[l->vendor_index];
        ex->vendor_index = l->vendor_index;
        const char *h0 = ex->vendor->nhosts ? ex->vendor->hosts[0] : "";
        snprintf(ex->host, sizeof ex->host, "%s", strncmp(h0, "*.", 2) == 0 ? h0 + 2 : h0);
    } else if (bg_exchange_route(ex, req->host, req->host_len) < 0) {
        char host[256];
        snprintf(host, sizeof host, "%.*s", (int)(req->host_len < 255 ? req->host_len : 255), req->host);
        respond_problem(ex, 403, "unknown-vendor", "Destination is not an approved vendor", "host", host);
        return;
    }
    if (ex->w && !records_admit(ex))
        return;
    if (!req->chunked && req->content_length > 0 && (uint64_t)req->content_length > ex->vendor->max_body) {
        respond_problem(ex, 413, "body-too-large", "Request body too large", "vendor", ex->vendor->name);
        return;
    }
    if (!req->chunked && req->content_length <= 0)
        bg_exchange_body_end(ex);
}

/* Room in ex->body for n more bytes (and its NUL): exactly that when the size is known (exact), else
 * doubling. ex->body lives in body_store after body_room bytes kept for the vendor's request head
 * (give_body), sized when the first bytes come. Growing moves the body to new storage and wipes the
 * old, where realloc could leave its bytes behind in freed memory. */
static void body_reserve(bg_exchange_t *ex, size_t n, bool exact)
{
    if (ex->body.data && n + 1 <= ex->body.cap - ex->body.len)
        return;
    if (!ex->body.data)
        ex->body_room = ex->head_len + BG_EX_HEAD_EXTRA <= BG_EX_ROOM_MAX ? ex->head_len + BG_EX_HEAD_EXTRA : 0;
    size_t want = ex->body.len + n + 1;
    if (!exact) {
        size_t c = ex->body.cap ? ex->body.cap : 256;
        while (c < want)
            c *= 2;
        want = c;
    }
    if (ex->body_room + want > ex->body_store_cap) {
        char *q = malloc(ex->body_room + want);
        if (!q)
            abort();
        if (ex->body.data) {
            memcpy(q + ex->body_room, ex->body.data, ex->body.len);
            body_wipe(ex);
        }
        free(ex->body_store);
        ex->body_store = q;
        ex->body_store_cap = ex->body_room + want;
    }
    ex->body.data = ex->body_store + ex->body_room;
    ex->body.cap = ex->body_store_cap - ex->body_room;
    ex->body.data[ex->body.len] = 0;
}

/* The request body bytes the exchange holds: a codec's read buffer it took over counts whole. */
static size_t held_now(const bg_exchange_t *ex)
{
    return (ex->body_adopted ? ex->body_store_cap : ex->body.len) + ex->pending.len;
}

/* Count them in the worker's total (limits.max_body_scan_total). */
static void held_sync(bg_exchange_t *ex)
{
    if (!ex->w)
        return;
    size_t now = held_now(ex);
    ex->w->held_bytes = ex->w->held_bytes - ex->held_counted + now;
    ex->held_counted = now;
}

/* A body without a declared length (chunked, HTTP/2 DATA) grew past the vendor's max_body. While
 * no byte of an answer went to the client, it gets the 413 a Content-Length over the limit gets,
 * whether the body was still held for the decision or already streaming to the vendor: respond()
 * lets go of the vendor side unreusable (an HTTP/1.1 connection is closed, an HTTP/2 stream reset),
 * as the vendor got a body that will never be complete. The codec then drops the rest of the body
 * (HTTP/1.1 closes the connection; HTTP/2 discards it, then resets the stream with NO_ERROR if the
 * client keeps sending). Once the answer began, a status now would corrupt it: both sides are cut. */
static void body_too_large(bg_exchange_t *ex)
{
    if (ex->resp_started) {
        ex->down->abort(ex);
        return;
    }
    respond_problem(ex, 413, "body-too-large", "Request body too large", "vendor", ex->vendor->name);
}

void bg_exchange_body(bg_exchange_t *ex, const char *p, size_t n)
{
    if (ex->state == BG_EX_DONE || n == 0)
        return;
    ex->body_total += n;
    ex->bytes_in += n;
    if (ex->body_total > ex->vendor->max_body) {
        body_too_large(ex);
        return;
    }
    if (ex->state == BG_EX_BODY || ex->state == BG_EX_DECIDING || (ex->state == BG_EX_FORWARD && !ex->up_stream_body)) {
        const bg_config_t *cfg = ex->rt->cfg;
        uint64_t limit = cfg->limits.max_body_scan;
        uint64_t room = 0;
        if (ex->w && ex->state == BG_EX_BODY) {
            /* The worker's share of max_body_scan_total: past it, this body is decided on what
             * came so far (unscannable), so held bodies cannot exhaust memory however many
             * connections send them. */
            uint64_t share = cfg->limits.max_body_scan_total / (ex->w->server->nworkers ? ex->w->server->nworkers : 1);
            room = share > ex->w->held_bytes ? share - ex->w->held_bytes : 0;
            if (ex->body.len + room < limit)
                limit = ex->body.len + room;
        }
        size_t fit = 0;
        if (ex->state == BG_EX_BODY && !ex->body_over_scan && ex->body.len < limit)
            fit = (size_t)(limit - ex->body.len) < n ? (size_t)(limit - ex->body.len) : n;
        bool adopted = false;
        if (fit == n && !ex->body.data && !ex->req.chunked && ex->req.content_length == (int64_t)n &&
            ex->down->adopt_body && room >= BG_EX_KEEP_BODY + BG_EX_ROOM_MAX) {
            /* The whole body, at the end of the codec's read: its buffer becomes the body's
             * storage (the room in front of it holds the client's head, copied already), counted
             * whole in what the worker holds. */
            char *buf = ex->body_store;
            size_t cap = ex->body_store_cap;
            if (ex->down->adopt_body(ex, p, n, &buf, &cap)) {
                ex->body_store = buf;
                ex->body_store_cap = cap;
                ex->body_room = (size_t)(p - buf);
                ex->body.data = buf + ex->body_room;
                ex->body.len = n;
                ex->body.cap = cap - ex->body_room;
                ex->body.data[n] = 0;
                ex->body_adopted = adopted = true;
            }
        }
        if (fit && !adopted) {
            size_t want = fit;
            bool exact = ex->body.len == 0 && !ex->req.chunked && ex->req.content_length > 0 &&
                         (uint64_t)ex->req.content_length <= BG_BODY_PRESIZE_MAX;
            if (exact) {
                /* The announced size, not the next power of two (half the bytes to wipe at the
                 * end); bounded so an announced length alone cannot make us allocate much. */
                size_t announced = (uint64_t)ex->req.content_length < limit ? (size_t)ex->req.content_length
                                                                             : (size_t)limit;
                if (announced > want)
                    want = announced;
            }
            body_reserve(ex, want, exact);
            bg_buf_append(&ex->body, p, fit); /* within the room reserved: never reallocates */
        }
        held_sync(ex);
        if (fit < n) {
            /* Over the scan limit: hold what came (bounded by what the codec delivers before it
             * pauses) and decide on the prefix. */
            bg_buf_append(&ex->pending, p + fit, n - fit);
            held_sync(ex);
            if (!ex->body_over_scan) {
                ex->body_over_scan = true;
                ex->down->pause_request(ex);
                if (ex->state == BG_EX_BODY)
                    decide(ex);
            }
        }
        return;
    }
    /* Streaming to the vendor as chunked. */
    if (ex->up && ex->up->ready) {
        char hdr[24];
        int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
        uv_buf_t bufs[3] = {uv_buf_init(hdr, (unsigned)hl), uv_buf_init((char *)p, (unsigned)n),
                            uv_buf_init("\r\n", 2)};
        bg_upstream_writev(ex->up, bufs, 3);
        /* The vendor answers after the body's end: its silence while the client still sends is
         * no timeout (h2up counts from the last body bytes sent too). A vendor that stops
         * reading still times out: past the back-pressure mark the client is paused, and this
         * deadline is no longer moved. */
        bg_upstream_set_timeout(ex->up, ex->rt->cfg->limits.upstream_timeout_ms);
        if (ex->up->stream.write_pending > BG_BACKPRESSURE)
            ex->down->pause_request(ex);
    } else if (ex->h2s) {
        bg_h2up_stream_write(ex->h2s, p, n);
        if (ex->h2s && bg_h2up_stream_pending(ex->h2s) > BG_BACKPRESSURE)
            ex->down->pause_request(ex);
    } else {
        bg_buf_append(&ex->pending, p, n);
        held_sync(ex);
        ex->down->pause_request(ex);
    }
}

void bg_exchange_trailers(bg_exchange_t *ex, const char *lines, size_t len, bool oversize)
{
    if (ex->state == BG_EX_DONE || ex->trailer_store || (!len && !oversize))
        return;
    ex->bytes_in += len;
    if (ex->state != BG_EX_BODY) {
        /* The decision was taken before they came (the body streamed past max_body_scan): they
         * were never classified, so they do not travel (fail closed). */
        bg_log_info("request trailers dropped", "reason", "after_decision", "vendor", ex->vendor->name, "id", ex->id);
        return;
    }
    const bg_config_t *cfg = ex->rt->cfg;
    bg_header_t f[BG_H1_MAX_HEADERS];
    int n = oversize ? -1 : bg_h1_split_fields(lines, len, f, BG_H1_MAX_HEADERS);
    /* Trailers are header fields sent late: together with the head they stay within the limits. */
    size_t total = len;
    for (size_t i = 0; i < ex->req.nheaders; i++)
        total += ex->req.headers[i].name_len + ex->req.headers[i].value_len + 4;
    if (n < 0 || total > cfg->limits.max_header_size || ex->req.nheaders + (size_t)n > cfg->limits.max_headers ||
        ex->req.nheaders + (size_t)n > BG_H1_MAX_HEADERS) {
        respond_problem(ex, 431, "trailers-too-large", "Request trailer fields too large", NULL, NULL);
        return;
    }
    ex->trailer_store = malloc(len ? len : 1);
    if (!ex->trailer_store)
        abort();
    ex->trailer_store_len = len;
    size_t off = 0, dropped = 0;
    for (int i = 0; i < n; i++) {
        if (!bg_h1_trailer_allowed(f[i].name, f[i].name_len)) {
            dropped++;
            continue;
        }
        /* name and value fit: together they are shorter than their line. */
        bg_header_t *t = &ex->req.headers[ex->req.nheaders++];
        memcpy(ex->trailer_store + off, f[i].name, f[i].name_len);
        t->name = ex->trailer_store + off, t->name_len = f[i].name_len;
        off += f[i].name_len;
        memcpy(ex->trailer_store + off, f[i].value, f[i].value_len);
        t->value = ex->trailer_store + off, t->value_len = f[i].value_len;
        off += f[i].value_len;
        ex->ntrailers++;
    }
    if (dropped) {
        char nd[24];
        snprintf(nd, sizeof nd, "%zu", dropped);
        bg_log_debug("request trailer fields not allowed in trailers dropped", "count", nd, "id", ex->id);
    }
}

void bg_exchange_scan_cut(bg_exchange_t *ex)
{
    if (ex->state != BG_EX_BODY || ex->body_over_scan || ex->body_done)
        return;
    ex->body_over_scan = true;
    ex->down->pause_request(ex);
    decide(ex);
}

size_t bg_exchange_held(const bg_exchange_t *ex)
{
    return ex->state == BG_EX_BODY ? held_now(ex) : 0;
}

void bg_exchange_timeout(bg_exchange_t *ex)
{
    if (ex->state == BG_EX_BODY)
        respond_problem(ex, 408, "request-timeout", "Request body not received in time", NULL, NULL);
}

/* The client stopped sending a body that streams to the vendor: a 408, or a cut once the answer
 * began (bytes of it are out: a status now would corrupt it). */
static void answer_client_stall(bg_exchange_t *ex)
{
    if (ex->resp_started) {
        ex->down->abort(ex);
        return;
    }
    respond_problem(ex, 408, "request-timeout", "Request body not received in time", NULL, NULL);
}

void bg_exchange_client_idle(bg_exchange_t *ex)
{
    /* Waiting for a connection (queued or connecting), the body is paused by us: not the client's. */
    if (ex->state != BG_EX_FORWARD || ex->body_done || ex->queued || (!ex->h2s && !(ex->up && ex->up->ready)))
        return;
    answer_client_stall(ex);
}

void bg_exchange_body_end(bg_exchange_t *ex)
{
    if (ex->state == BG_EX_DONE || ex->body_done)
        return;
    ex->body_done = true;
    if (ex->state == BG_EX_BODY) {
        decide(ex);
        return;
    }
    if (ex->state == BG_EX_FORWARD && ex->up_stream_body && ex->up && ex->up->ready && !ex->pending.len) {
        bg_upstream_write(ex->up, "0\r\n\r\n", 5);
        bg_upstream_set_timeout(ex->up, ex->rt->cfg->limits.upstream_timeout_ms); /* from the request's end */
        ex->up_stream_body = false;
    } else if (ex->state == BG_EX_FORWARD && ex->up_stream_body && ex->h2s && !ex->pending.len) {
        bg_h2up_stream_end(ex->h2s);
        ex->up_stream_body = false;
    }
}

/* ---- decision ---------------------------------------------------------------------------- */

static void act(bg_exchange_t *ex);

/* Decide on the vendor's addresses (none, or dns_failed: the name did not resolve) and act. */
static void decide_on(bg_exchange_t *ex, const struct sockaddr_storage *addrs, size_t n, bool dns_failed)
{
    if (dns_failed)
        ex->error = "dns_failed";
    bg_exchange_decide(ex, addrs, n);
    act(ex);
}

/* How long a name's last addresses may serve past their expiry while every refresh fails, in units
 * of limits.dns_ttl (30 s: 5 minutes). Bounded: a vendor that moved away for good (and whose old
 * addresses someone else may take over) is not followed to a stale address forever. */
#define BG_DNS_STALE_TTLS 10

/* Whether e's addresses may serve at loop time now: fresh, or a past answer (refreshing, or whose
 * refresh failed) within its stale bound. */
static bool dns_serves(const bg_dns_entry_t *e, uint64_t now)
{
    return e->answered && (e->expires > now || (e->naddrs && !e->error && now < e->stale_until));
}

/* A lookup of e's name finished: its answer replaces the cached one (a failure is cached for 5 s),
 * unless it failed and the name has addresses still within their stale bound: those go on serving
 * (serve-stale, as RFC 8767 lets resolvers do; each request decides on them, GeoIP and policy
 * included, exactly as on a fresh answer) and the lookup is tried again after the same 5 s. Then
 * the exchanges that waited for an answer go on, in arrival order. */
static void dns_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    bg_dns_entry_t *e = req->data;
    bg_worker_t *w = req->loop->data;
    free(req);
    if (!e) { /* the worker let go of the entry */
        uv_freeaddrinfo(res);
        return;
    }
    e->gai = NULL;
    struct sockaddr_storage addrs[16];
    size_t n = 0;
    for (struct addrinfo *ai = status < 0 ? NULL : res; ai && n < 16; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        memset(&addrs[n], 0, sizeof addrs[n]);
        memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
        n++;
    }
    uv_freeaddrinfo(res);
    uint64_t now = uv_now(&w->loop);
    bool failed = status < 0 || n == 0;
    if (failed && e->answered && e->naddrs && !e->error && now < e->stale_until) {
        bg_metrics_dns_lookup(w->server->metrics, w->id, BG_DNS_STALE);
        if (!e->stale)
            bg_log_warn("vendor name lookup failed; serving its previous addresses", "host", e->host, "error",
                        status < 0 ? uv_strerror(status) : "no addresses");
        e->stale = true;
        e->expires = now + 5000 < e->stale_until ? now + 5000 : e->stale_until;
        n = e->naddrs < 16 ? e->naddrs : 16;
        memcpy(addrs, e->addrs, n * sizeof *addrs);
        failed = false; /* for the waiters: the stale addresses */
    } else {
        bg_metrics_dns_lookup(w->server->metrics, w->id, failed ? BG_DNS_ERROR : BG_DNS_OK);
        if (e->stale && failed)
            bg_log_warn("vendor name still fails; its previous addresses are no longer served", "host", e->host);
        else if (e->stale)
            bg_log_info("vendor name resolves again", "host", e->host);
        e->stale = false;
        free(e->addrs);
        e->addrs = n ? malloc(n * sizeof *e->addrs) : NULL;
        if (n && !e->addrs)
            abort();
        if (n)
            memcpy(e->addrs, addrs, n * sizeof *addrs);
        e->naddrs = n;
        e->error = status < 0 ? status : 0;
        e->answered = true;
        e->expires = now + (failed ? 5000 : w->rt->cfg->limits.dns_ttl_ms);
        e->stale_until = failed ? 0 : e->expires + BG_DNS_STALE_TTLS * w->rt->cfg->limits.dns_ttl_ms;
    }
    /* One at a time off the queue: an exchange's act may end others that wait here (they leave
     * the queue as they go) or start new ones (they find the entry answered); the entry stays
     * while the queue drains (dns_entry keeps entries that are waking). */
    e->waking = true;
    bg_exchange_t *ex;
    while ((ex = e->waiters)) {
        e->waiters = ex->dns_next;
        ex->dns_wait = NULL;
        ex->dns_next = NULL;
        decide_on(ex, addrs, n, failed);
    }
    e->waking = false;
}

/* Start the lookup of e's name (none is in flight). 0, or a negative error (nothing started). */
static int dns_start(bg_worker_t *w, bg_dns_entry_t *e)
{
    e->gai = malloc(sizeof *e->gai);
    if (!e->gai)
        abort();
    e->gai->data = e;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int r = uv_getaddrinfo(&w->loop, e->gai, dns_cb, e->host, NULL, &hints);
    if (r < 0) {
        free(e->gai);
        e->gai = NULL;
    }
    return r;
}

/* The entry for host, else a new one (no answer yet); entries past their time with nothing in
 * flight and nobody waiting are dropped on the way, and any such beyond 4096 names. */
static bg_dns_entry_t *dns_entry(bg_worker_t *w, const char *host, uint64_t now)
{
    bg_dns_entry_t *found = NULL;
    for (bg_dns_entry_t **p = &w->dns; *p;) {
        bg_dns_entry_t *e = *p;
        if (!found && strcmp(e->host, host) == 0) {
            found = e;
        } else if (!e->gai && !e->waiters && !e->waking && (!dns_serves(e, now) || w->ndns > 4096)) {
            *p = e->next;
            free(e->host);
            free(e->addrs);
            free(e);
            w->ndns--;
            continue;
        }
        p = &e->next;
    }
    if (found)
        return found;
    bg_dns_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->host = strdup(host);
    if (!e->host)
        abort();
    e->next = w->dns;
    w->dns = e;
    w->ndns++;
    return e;
}

static void decide(bg_exchange_t *ex)
{
    ex->state = BG_EX_DECIDING;
    if (!ex->body_done)
        ex->down->pause_request(ex); /* hold the rest of the body until we know */
    bg_exchange_classify(ex);
    if (!bg_records_healthy(ex->w->server->records) && ex->rt->cfg->mode == BG_MODE_ENFORCE)
        ex->error = "records_unavailable";
    const bg_vendor_t *v = ex->vendor;
    if (v->upstream.naddresses) {
        struct sockaddr_storage addrs[16];
        size_t n = 0;
        for (size_t i = 0; i < v->upstream.naddresses && n < 16; i++)
            addrs[n++] = v->upstream.addresses[i].addr;
        decide_on(ex, addrs, n, false);
        return;
    }
    bg_worker_t *w = ex->w;
    uint64_t now = uv_now(&w->loop);
    bg_dns_entry_t *e = dns_entry(w, ex->host, now);
    /* Past its time, an answer is refreshed by one lookup; addresses go on serving meanwhile (a
     * lookup that could not start is tried again by the next request) within their stale bound,
     * a failure does not. */
    if (e->answered && e->expires <= now && !e->gai)
        dns_start(w, e);
    if (dns_serves(e, now)) {
        decide_on(ex, e->addrs, e->naddrs, e->error || e->naddrs == 0);
        return;
    }
    /* No answer yet, or a failure past its time: wait for the name's lookup (one per name,
     * however many requests ask). */
    if (!e->gai && dns_start(w, e) < 0) {
        decide_on(ex, NULL, 0, true);
        return;
    }
    bg_exchange_t **q = &e->waiters;
    while (*q)
        q = &(*q)->dns_next;
    *q = ex;
    ex->dns_wait = e;
}

/* Whether the vendor may not see this finding's bytes in clear: a category the policy names is
 * among those it covers (0: every category). */
static bool must_seal(const bg_exchange_t *ex, const bg_finding_t *f)
{
    return !ex->dec.seal_categories || (ex->dec.seal_categories & (f->covers | 1u << f->category));
}

/* Replace the personal-data spans of one location with tokens. */
static int seal_spans(bg_exchange_t *ex, int where, int header, const char *src, size_t n, bg_buf_t *out)
{
    bg_seal_span_t spans[256];
    size_t ns = 0;
    if (ex->cls.findings_truncated)
        return -1; /* not every value is known: refuse rather than leak one */
    for (size_t i = 0; i < ex->cls.nfindings; i++) {
        const bg_finding_t *f = &ex->cls.findings[i];
        bool here = f->where == where || (where == BG_WHERE_QUERY && f->where == BG_WHERE_PATH);
        if (!here || (where == BG_WHERE_HEADER && f->header != header))
            continue;
        /* Only what the vendor may not see in clear: the categories the policy names, including
         * those of detections a longer finding holds (an e-mail inside an AI prompt). */
        if (!must_seal(ex, f))
            continue;
        if (ns == 256)
            return -1;
        uint8_t flags = 0;
        if (where == BG_WHERE_BODY && ex->cls.body_kind == BG_BODY_JSON)
            flags = f->json_string ? BG_SEAL_JSON_STRING : BG_SEAL_QUOTE; /* a number becomes a string token */
        else if (f->encoded && (where == BG_WHERE_QUERY || where == BG_WHERE_PATH ||
                                (where == BG_WHERE_BODY && ex->cls.body_kind == BG_BODY_FORM)))
            /* the same value gives the same token wherever it travels; in a path '+' is itself,
             * as the classifier read it */
            flags = BG_SEAL_PERCENT | (f->where == BG_WHERE_PATH ? BG_SEAL_NOPLUS : 0);
        spans[ns++] = (bg_seal_span_t){f->offset, f->length, flags};
    }
    /* Path and query share the target's coordinates: sort by offset and drop overlaps. */
    for (size_t i = 1; i < ns; i++)
        for (size_t j = i; j > 0 && spans[j].offset < spans[j - 1].offset; j--) {
            bg_seal_span_t t = spans[j];
            spans[j] = spans[j - 1];
            spans[j - 1] = t;
        }
    size_t k = 0;
    for (size_t i = 0; i < ns; i++) {
        if (spans[i].offset + (uint64_t)spans[i].length > n)
            return -1;
        if (k && spans[i].offset < spans[k - 1].offset + spans[k - 1].length)
            continue;
        spans[k++] = spans[i];
    }
    return bg_seal_rewrite(ex->rt->keys, src, n, spans, k, out);
}

/* The names a message's Connection fields list, read once per message rather than once per
 * field; names that are hop-by-hop anyway (keep-alive, the usual one) are not kept. */
typedef struct {
    struct {
        const char *p;
        size_t n;
    } name[16];
    size_t n;
    const bg_header_t *all; /* more names than fit: look through all nall fields' lists again */
    size_t nall;
} hop_set_t;

static void hop_set_init(hop_set_t *hs, const bg_header_t *fields, size_t n)
{
    hs->n = 0, hs->all = NULL, hs->nall = 0;
    for (size_t i = 0; i < n; i++) {
        if (!BG_NAME_IS(fields[i].name, fields[i].name_len, "connection"))
            continue;
        const char *p = fields[i].value, *end = p + fields[i].value_len, *e;
        size_t elen;
        while (bg_h1_list_next(&p, end, &e, &elen)) {
            if (elen == 0 || bg_h1_is_hop_by_hop(e, elen, NULL, 0))
                continue;
            if (hs->n == sizeof hs->name / sizeof hs->name[0]) {
                hs->all = fields, hs->nall = n;
                return;
            }
            hs->name[hs->n].p = e, hs->name[hs->n].n = elen, hs->n++;
        }
    }
}

/* Hop-by-hop: the fixed set, or a name listed in ANY Connection field of the message. */
static bool is_hop(const hop_set_t *hs, const bg_header_t *h)
{
    if (bg_h1_is_hop_by_hop(h->name, h->name_len, NULL, 0))
        return true;
    if (hs->all) {
        for (size_t i = 0; i < hs->nall; i++)
            if (BG_NAME_IS(hs->all[i].name, hs->all[i].name_len, "connection") &&
                bg_h1_is_hop_by_hop(h->name, h->name_len, hs->all[i].value, hs->all[i].value_len))
                return true;
        return false;
    }
    for (size_t i = 0; i < hs->n; i++)
        if (hs->name[i].n == h->name_len && bg_span_ieq2(hs->name[i].p, hs->name[i].n, h->name, h->name_len))
            return true;
    return false;
}

/* Whether the request's method is idempotent (RFC 9110 9.2.2): only such a request is ever sent
 * again (a POST might have been acted on). */
static bool idempotent(const bg_exchange_t *ex)
{
    static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof idem / sizeof idem[0]; i++)
        if (bg_span_ieq(ex->req.method, ex->req.method_len, idem[i]))
            return true;
    return false;
}

/* Whether a request may be sent again after a reused connection broke before any answer. */
static bool may_retry(const bg_exchange_t *ex, const bg_upstream_t *up)
{
    if (ex->resp_head_done || ex->rin.len || !up->reused || ex->retried || !ex->body_done || ex->up_stream_body)
        return false;
    return idempotent(ex);
}

/* The request trailers (the last ex->ntrailers of req.headers, classified with the head) into
 * ex->out_trailers as field lines, sealed like headers; their names announced in a Trailer field
 * of the head h (RFC 9110 6.6.2). */
static int build_trailers(bg_exchange_t *ex, bool seal, bg_buf_t *h)
{
    size_t first = ex->req.nheaders - ex->ntrailers;
    bg_buf_puts(h, "Trailer: ");
    for (size_t i = first; i < ex->req.nheaders; i++) {
        const bg_header_t *hd = &ex->req.headers[i];
        if (i > first)
            bg_buf_puts(h, ", ");
        bg_buf_append(h, hd->name, hd->name_len);
        bg_buf_append(&ex->out_trailers, hd->name, hd->name_len);
        bg_buf_puts(&ex->out_trailers, ": ");
        if (seal) {
            if (seal_spans(ex, BG_WHERE_HEADER, (int)i, hd->value, hd->value_len, &ex->out_trailers) < 0)
                return -1;
        } else {
            bg_buf_append(&ex->out_trailers, hd->value, hd->value_len);
        }
        bg_buf_puts(&ex->out_trailers, "\r\n");
    }
    bg_buf_puts(h, "\r\n");
    return 0;
}

/* The values of every `name` field among req.headers[first..end), in order, joined with ", "
 * as one field (RFC 9110 5.3: a list field sent as several lines is the lines joined by commas);
 * empty values add nothing. Each is sealed by its own index when `seal`. Returns 0, or -1 when
 * sealing failed. */
static int append_list_field(bg_exchange_t *ex, bg_buf_t *h, const char *name, size_t first, size_t end,
                             bool seal)
{
    bool any = false;
    for (size_t i = first; i < end; i++) {
        const bg_header_t *hd = &ex->req.headers[i];
        if (!hd->value_len || !bg_span_ieq(hd->name, hd->name_len, name))
            continue;
        if (any)
            bg_buf_puts(h, ", ");
        any = true;
        if (seal) {
            if (seal_spans(ex, BG_WHERE_HEADER, (int)i, hd->value, hd->value_len, h) < 0)
                return -1;
        } else {
            bg_buf_append(h, hd->value, hd->value_len);
        }
    }
    if (any)
        bg_buf_puts(h, ", ");
    return 0;
}

int bg_exchange_build_request(bg_exchange_t *ex, bool encrypt)
{
    bg_buf_t *h = &ex->out_head;
    bg_buf_reset(h);
    bg_buf_reset(&ex->out_body);
    /* An unscannable body (malformed JSON, unknown encoding … under oversize_body: personal) may
     * hold anything: under encrypt it is sealed whole even when nothing was found in it. */
    bool seal_unread = encrypt && ex->cls.unscannable && ex->body.len;
    bool seal = encrypt && (ex->cls.nfindings || seal_unread);
    bg_buf_append(h, ex->req.method, ex->req.method_len);
    bg_buf_puts(h, " ");
    if (ex->target_len && ex->target[0] == '?')
        bg_buf_puts(h, "/"); /* absolute-form "http://h?q": its origin-form is "/?q" (RFC 9112 3.2.1) */
    if (seal) {
        if (seal_spans(ex, BG_WHERE_QUERY, -1, ex->target, ex->target_len, h) < 0)
            return -1;
    } else {
        bg_buf_append(h, ex->target, ex->target_len);
    }
    bg_buf_puts(h, " HTTP/1.1\r\nHost: ");
    if (ex->req.host_len)
        bg_buf_append(h, ex->req.host, ex->req.host_len);
    else
        bg_buf_puts(h, ex->host);
    bg_buf_puts(h, "\r\n");
    /* The first X-Forwarded-For and Via fields: where appending the chain starts (none: -1). */
    int xff = -1, via = -1;
    bool body_sealed_whole = false;
    if (seal && ex->body.len) {
        bool by_field = (ex->cls.body_kind == BG_BODY_JSON || ex->cls.body_kind == BG_BODY_FORM) &&
                        !ex->cls.body_inflated;
        /* Only findings the vendor may not see count: a body holding approved values alone goes
         * as it is, as it would by field. */
        bool any_body = false;
        for (size_t i = 0; i < ex->cls.nfindings; i++)
            any_body |= ex->cls.findings[i].where == BG_WHERE_BODY && must_seal(ex, &ex->cls.findings[i]);
        if (seal_unread) {
            by_field = false; /* its findings are some of what it holds, not all */
            any_body = true;
        }
        if (any_body && by_field) {
            if (seal_spans(ex, BG_WHERE_BODY, -1, ex->body.data, ex->body.len, &ex->out_body) < 0)
                return -1;
        } else if (any_body) {
            /* Text, multipart, compressed or unreadable bodies cannot be rewritten field by field:
             * seal whole. */
            if (bg_seal_jwe(ex->rt->keys, ex->body.data, ex->body.len, NULL, &ex->out_body) < 0)
                return -1;
            body_sealed_whole = true;
        }
    }
    size_t nhead = ex->req.nheaders - ex->ntrailers; /* the trailers go after the body */
    hop_set_t hops;
    hop_set_init(&hops, ex->req.headers, ex->req.nheaders);
    for (size_t i = 0; i < nhead; i++) {
        const bg_header_t *hd = &ex->req.headers[i];
        if (is_hop(&hops, hd) || BG_NAME_IS(hd->name, hd->name_len, "host") ||
            BG_NAME_IS(hd->name, hd->name_len, "content-length") || BG_NAME_IS(hd->name, hd->name_len, "expect") ||
            BG_NAME_IS(hd->name, hd->name_len, "x-forwarded-proto"))
            continue;
        if (BG_NAME_IS(hd->name, hd->name_len, "x-forwarded-for")) {
            if (xff < 0)
                xff = (int)i;
            continue;
        }
        if (BG_NAME_IS(hd->name, hd->name_len, "via")) {
            if (via < 0)
                via = (int)i;
            continue;
        }
        if (body_sealed_whole && (BG_NAME_IS(hd->name, hd->name_len, "content-type") ||
                                  BG_NAME_IS(hd->name, hd->name_len, "content-encoding")))
            continue;
        /* A digest of the body the client sent: wrong for the rewritten one (a vendor that checks
         * it refuses the request), and a hash of the values sealed out of it (one that guesses
         * them can confirm a guess). RFC 9530 lets a transforming intermediary drop it. */
        if (ex->out_body.len && (BG_NAME_IS(hd->name, hd->name_len, "content-digest") ||
                                 BG_NAME_IS(hd->name, hd->name_len, "repr-digest") ||
                                 BG_NAME_IS(hd->name, hd->name_len, "digest") ||
                                 BG_NAME_IS(hd->name, hd->name_len, "content-md5")))
            continue;
        bg_buf_append(h, hd->name, hd->name_len);
        bg_buf_puts(h, ": ");
        if (seal) {
            if (seal_spans(ex, BG_WHERE_HEADER, (int)i, hd->value, hd->value_len, h) < 0)
                return -1;
        } else {
            bg_buf_append(h, hd->value, hd->value_len);
        }
        bg_buf_puts(h, "\r\n");
    }
    if (body_sealed_whole)
        bg_buf_puts(h, "Content-Type: application/jose\r\n");
    /* The caller's address is the hop we know; keep the chain that came before it, all of it
     * when the client sent it in several fields. The chain is client data: each field is sealed
     * like any header when encrypting. */
    bg_buf_puts(h, "X-Forwarded-For: ");
    if (xff >= 0 && append_list_field(ex, h, "x-forwarded-for", (size_t)xff, nhead, seal) < 0)
        return -1;
    bg_buf_puts(h, ex->client_ip);
    bg_buf_puts(h, ex->client_tls ? "\r\nX-Forwarded-Proto: https\r\nVia: " : "\r\nX-Forwarded-Proto: http\r\nVia: ");
    if (via >= 0)
        append_list_field(ex, h, "via", (size_t)via, nhead, false);
    if (strcmp(ex->protocol, "h2") == 0)
        bg_buf_puts(h, "2 bordergate\r\n");
    else if (ex->req.minor_version == 0 || ex->req.minor_version == 1)
        bg_buf_puts(h, ex->req.minor_version ? "1.1 bordergate\r\n" : "1.0 bordergate\r\n");
    else
        bg_buf_printf(h, "1.%d bordergate\r\n", ex->req.minor_version);
    bg_buf_reset(&ex->out_trailers);
    if (ex->ntrailers && build_trailers(ex, seal, h) < 0)
        return -1;
    if (ex->body_done && ex->ntrailers) {
        bg_buf_puts(h, "Transfer-Encoding: chunked\r\n"); /* only chunked carries trailers in HTTP/1.1 */
        ex->up_stream_body = false;
    } else if (ex->body_done) {
        size_t blen = ex->out_body.len ? ex->out_body.len : ex->body.len;
        if (blen || ex->req.content_length >= 0 || ex->req.chunked) {
            bg_buf_puts(h, "Content-Length: ");
            bg_buf_append_u64(h, blen);
            bg_buf_puts(h, "\r\n");
        }
        ex->up_stream_body = false;
    } else {
        bg_buf_puts(h, "Transfer-Encoding: chunked\r\n");
        ex->up_stream_body = true;
    }
    bg_buf_puts(h, "\r\n");
    return 0;
}

static void block(bg_exchange_t *ex, const char *reason)
{
    if (reason) {
        snprintf(ex->dec.reason, sizeof ex->dec.reason, "%s", reason);
        ex->dec.decision = ex->dec.action = BG_DECISION_BLOCK;
        ex->dec.enforced = true;
    }
    bg_buf_t body;
    bg_buf_init(&body);
    bg_exchange_problem_451(ex, &body);
    static _Thread_local char link[256];
    if (!link[0]) {
        char host[200];
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "localhost");
        snprintf(link, sizeof link, "<urn:bordergate:%.200s>; rel=\"blocked-by\"", host);
    }
    bg_header_t extra[2] = {{"Link", 4, link, strlen(link)}, {"Cache-Control", 13, "no-store", 8}};
    respond(ex, 451, "application/problem+json", body.data, body.len, extra, 2);
    bg_buf_dispose(&body);
}

static void act(bg_exchange_t *ex)
{
    if (ex->dec.action == BG_DECISION_BLOCK) {
        block(ex, NULL);
        return;
    }
    if (ex->chosen < 0) {
        /* Report-only lets a would-be block through, but with no address (DNS failed) there is
         * nothing to connect to: the transfer fails, recorded with the decision it would have had. */
        bg_metrics_upstream_error(ex->w->server->metrics, ex->w->id, ex->vendor->name, "no_address");
        respond_problem(ex, 502, "upstream-failed", "No address to connect to for this vendor", "vendor",
                        ex->vendor->name);
        return;
    }
    bool encrypt = ex->dec.action == BG_DECISION_ENCRYPT;
    if (encrypt && (!ex->rt->keys || !ex->body_done || ex->body_over_scan)) {
        /* Cannot seal what we cannot see whole, or without keys. */
        block(ex, ex->rt->keys ? "encrypt_unscannable_body" : "encrypt_no_keys");
        return;
    }
    if (bg_exchange_build_request(ex, encrypt) < 0) {
        block(ex, "seal_failed");
        return;
    }
    start_forward(ex);
}

/* ---- forwarding -------------------------------------------------------------------------- */

/* A failure of the chosen address: its circuit, the log line and the counter. */
static void count_upstream_failure(bg_exchange_t *ex, bg_upstream_error_t kind, const char *msg)
{
    static const char *const kinds[] = {"connect", "tls", "timeout", "closed", "protocol"};
    if (kind == BG_UP_CONNECT_FAILED || kind == BG_UP_TLS_FAILED || kind == BG_UP_TIMEOUT)
        bg_upstream_circuit_report(ex->w, ex->circuit, false);
    bg_log_warn("upstream failed", "vendor", ex->vendor->name, "address",
                ex->chosen >= 0 ? ex->dests[ex->chosen].ip : "", "kind", kinds[kind], "error", msg, "id", ex->id);
    bg_metrics_upstream_error(ex->w->server->metrics, ex->w->id, ex->vendor->name, kinds[kind]);
}

/* Another address of the vendor for a request that has not left: not given up on yet, and one the
 * policy decided exactly as the chosen one (the same decision and action: the request was built
 * for that action, so an address whose transfer needs its values sealed never gets them in clear,
 * and the record's mechanism follows the address used). Its index, or -1. As nginx's
 * proxy_next_upstream: a vendor behind several addresses keeps answering while one is down. */
static int next_address(const bg_exchange_t *ex)
{
    if (ex->chosen < 0)
        return -1;
    const bg_decision_t *c = &ex->dests[ex->chosen].dec;
    for (size_t i = 0; i < ex->ndests && i < 32; i++)
        if ((int)i != ex->chosen && !(ex->tried >> i & 1) && same_decision(&ex->dests[i].dec, c))
            return (int)i;
    return -1;
}

/* Give up on the chosen address for this request and take dests[next] (next_address). */
static void switch_address(bg_exchange_t *ex, int next)
{
    if (ex->chosen < 32)
        ex->tried |= 1u << ex->chosen;
    bg_log_info("trying the vendor's next address", "vendor", ex->vendor->name, "address", ex->dests[next].ip,
                "id", ex->id);
    ex->chosen = next;
    ex->dec = ex->dests[next].dec;
}

/* The connection to the chosen address failed before anything was sent on it (connect, TLS
 * handshake, connect timeout): counted against that address, and the request goes to the next
 * one when there is one (true); false: upstream_failed must answer. */
static bool failover(bg_exchange_t *ex, bg_upstream_error_t kind, const char *msg)
{
    int next = ex->resp_started ? -1 : next_address(ex);
    if (next < 0)
        return false;
    count_upstream_failure(ex, kind, msg);
    switch_address(ex, next);
    start_forward(ex);
    return true;
}

static void upstream_failed(bg_exchange_t *ex, bg_upstream_error_t kind, const char *msg)
{
    count_upstream_failure(ex, kind, msg);
    if (ex->up) {
        bg_upstream_release(ex->up, false);
        ex->up = NULL;
    }
    if (ex->h2s) {
        bg_h2up_stream_release(ex->h2s);
        ex->h2s = NULL;
    }
    if (ex->resp_started && !(ex->down->retract && ex->down->retract(ex))) {
        /* Part of the response is out: the only honest signal left is to break the stream. */
        ex->status = 502;
        ex->down->abort(ex);
        return;
    }
    if (ex->resp_started) {
        /* The vendor's head had nothing after it and waited in the codec for its stream's end:
         * none of it left, and the codec took it back. The client gets a whole error answer, as
         * when the vendor fails before its head, and the record says so; never that head as a
         * complete answer, nor a reset the record would call something else. */
        ex->resp_started = ex->head_uncounted = ex->hold_tail = false;
        bg_buf_dispose_secure(&ex->resp_trailers); /* the vendor's, if any: not this answer's */
    }
    int status = kind == BG_UP_TIMEOUT ? 504 : 502;
    respond_problem(ex, status, kind == BG_UP_TIMEOUT ? "upstream-timeout" : "upstream-failed",
                    kind == BG_UP_TIMEOUT ? "Vendor did not answer in time" : "Vendor connection failed", "vendor",
                    ex->vendor->name);
}

/* The connection chose HTTP/2: the request becomes a stream on it, and the connection goes
 * back to being shared (ex->up is cleared). */
static void send_request_h2(bg_exchange_t *ex)
{
    bg_upstream_t *up = ex->up;
    const bg_buf_t *body = ex->out_body.len ? &ex->out_body : &ex->body;
    ex->up = NULL;
    ex->up_protocol = "h2";
    bool has_body = ex->up_stream_body || body->len || ex->ntrailers;
    ex->h2s = bg_h2up_open(up->h2, ex, ex->out_head.data, ex->out_head.len, has_body,
                           ex->rt->cfg->limits.upstream_timeout_ms);
    if (!ex->h2s) {
        upstream_failed(ex, BG_UP_PROTOCOL, "cannot open an HTTP/2 stream");
        return;
    }
    if (!has_body)
        return;
    if (ex->up_stream_body) {
        bg_h2up_stream_write(ex->h2s, ex->body.data, ex->body.len);
        if (ex->h2s)
            bg_h2up_stream_write(ex->h2s, ex->pending.data, ex->pending.len);
        bg_buf_reset(&ex->pending);
        if (!ex->h2s)
            return;
        if (ex->body_done) {
            bg_h2up_stream_end(ex->h2s);
            ex->up_stream_body = false;
        } else {
            ex->down->resume_request(ex); /* the rest streams through as it arrives */
        }
        return;
    }
    bg_h2up_stream_write(ex->h2s, body->data, body->len);
    if (ex->h2s && ex->ntrailers)
        bg_h2up_stream_trailers(ex->h2s, ex->out_trailers.data, ex->out_trailers.len);
    else if (ex->h2s)
        bg_h2up_stream_end(ex->h2s);
}

/* A whole request with trailers to an HTTP/1.1 vendor: the body as one chunk, then the last
 * chunk with the trailer section (build_request chose chunked framing). */
static void send_request_trailers(bg_exchange_t *ex, const bg_buf_t *body)
{
    uv_buf_t bufs[6];
    size_t nb = 0;
    char hdr[24];
    bufs[nb++] = uv_buf_init(ex->out_head.data, (unsigned)ex->out_head.len);
    if (body->len) {
        int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", body->len);
        bufs[nb++] = uv_buf_init(hdr, (unsigned)hl);
        bufs[nb++] = uv_buf_init(body->data, (unsigned)body->len);
        bufs[nb++] = uv_buf_init("\r\n0\r\n", 5);
    } else {
        bufs[nb++] = uv_buf_init("0\r\n", 3);
    }
    bufs[nb++] = uv_buf_init(ex->out_trailers.data, (unsigned)ex->out_trailers.len);
    bufs[nb++] = uv_buf_init("\r\n", 2);
    bg_upstream_writev(ex->up, bufs, nb);
    bg_upstream_set_timeout(ex->up, ex->rt->cfg->limits.upstream_timeout_ms);
}

/* The head and the body (as the client sent it) to an HTTP/1.1 vendor over plain TCP as one buffer
 * handed to the connection rather than copied into its queue: the head goes into the room kept
 * in front of the body, and the body's storage trades places with the queue's, which wipes it once
 * sent (bg_stream_write_give). Not for a request that may be sent again (idempotent: its body stays
 * for the retry) nor a head larger than the room. True when written this way (ex->body is then
 * empty when the connection took the buffer); false: nothing was written. */
static bool give_body(bg_exchange_t *ex)
{
    size_t hl = ex->out_head.len;
    if (!ex->body_store || !ex->body.data || !ex->body.len || hl > ex->body_room || bg_stream_tls(&ex->up->stream) ||
        idempotent(ex))
        return false;
    char *at = ex->body.data - hl;
    memcpy(at, ex->out_head.data, hl);
    char *store = ex->body_store;
    size_t cap = ex->body_store_cap;
    if (bg_stream_write_give(&ex->up->stream, &store, &cap, (size_t)(at - store), hl + ex->body.len) == 1) {
        ex->body_store = store; /* the queue's former storage, wiped */
        ex->body_store_cap = cap;
        ex->body_adopted = false;
        bg_buf_init(&ex->body);
    } else {
        bg_wipe(at, hl); /* sent or copied: the body stays the exchange's, the room is clean again */
    }
    return true;
}

static void send_request(bg_exchange_t *ex)
{
    if (ex->up->h2) {
        send_request_h2(ex);
        return;
    }
    if (ex->vendor->upstream.protocol == BG_PROTO_HTTP2) {
        upstream_failed(ex, BG_UP_PROTOCOL, "vendor did not negotiate HTTP/2 (upstream.protocol: http2)");
        return;
    }
    ex->up_protocol = "http/1.1";
    const bg_buf_t *body = ex->out_body.len ? &ex->out_body : &ex->body;
    uv_buf_t bufs[5];
    size_t nb = 0;
    char hdr[24];
    bufs[nb++] = uv_buf_init(ex->out_head.data, (unsigned)ex->out_head.len);
    if (ex->up_stream_body) {
        size_t n = ex->body.len + ex->pending.len;
        if (n) {
            int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
            bufs[nb++] = uv_buf_init(hdr, (unsigned)hl);
            if (ex->body.len)
                bufs[nb++] = uv_buf_init(ex->body.data, (unsigned)ex->body.len);
            if (ex->pending.len)
                bufs[nb++] = uv_buf_init(ex->pending.data, (unsigned)ex->pending.len);
            bufs[nb++] = uv_buf_init("\r\n", 2);
        }
    } else if (ex->ntrailers) {
        send_request_trailers(ex, body);
        return;
    } else if (body == &ex->body && give_body(ex)) {
        nb = 0;
    } else if (body->len) {
        bufs[nb++] = uv_buf_init(body->data, (unsigned)body->len);
    }
    if (nb)
        bg_upstream_writev(ex->up, bufs, nb);
    bg_upstream_set_timeout(ex->up, ex->rt->cfg->limits.upstream_timeout_ms);
    if (ex->up_stream_body) {
        bg_buf_reset(&ex->pending);
        if (ex->body_done) {
            bg_upstream_write(ex->up, "0\r\n\r\n", 5);
            ex->up_stream_body = false;
        } else {
            ex->down->resume_request(ex); /* the rest streams through as it arrives */
        }
    }
}

/* The pool and circuit keys, as snprintf "%.60s|%.47s|%u[|%d|%.80s|%p]" would write them, without
 * the formatting (once per forwarded request). */
static size_t key_put(char *out, size_t cap, size_t pos, const char *s, size_t max)
{
    return pos + (pos < cap ? bg_str_copy(out + pos, cap - pos, s, max) : 0);
}

static size_t key_put_u64(char *out, size_t cap, size_t pos, uint64_t v, bool hex)
{
    char tmp[24];
    size_t n = sizeof tmp - 1;
    tmp[n] = 0;
    do
        tmp[--n] = "0123456789abcdef"[hex ? v % 16 : v % 10];
    while ((v /= hex ? 16 : 10));
    return key_put(out, cap, pos, tmp + n, SIZE_MAX);
}

static size_t circuit_key_make(char *out, size_t cap, const bg_vendor_t *v, const char *ip)
{
    size_t pos = key_put(out, cap, 0, v->name, 60);
    pos = key_put(out, cap, pos, "|", 1);
    pos = key_put(out, cap, pos, ip, 47);
    pos = key_put(out, cap, pos, "|", 1);
    return key_put_u64(out, cap, pos, v->upstream.port, false);
}

/* The pool key: the circuit key (made once, passed in) then |tls|host|ctx. */
static void pool_key_make(char *out, size_t cap, const char *circuit, size_t circuit_len, const bg_vendor_t *v,
                          const char *host, const void *ctx)
{
    size_t pos = key_put(out, cap, 0, circuit, circuit_len);
    pos = key_put(out, cap, pos, v->upstream.tls ? "|1|" : "|0|", 3);
    pos = key_put(out, cap, pos, host, 80);
    if (ctx) {
        pos = key_put(out, cap, pos, "|0x", 3);
        key_put_u64(out, cap, pos, (uintptr_t)ctx, true);
    } else {
        key_put(out, cap, pos, "|(nil)", 6);
    }
}

static void start_forward(bg_exchange_t *ex)
{
    const bg_vendor_t *v = ex->vendor;
    bg_dest_t *d = &ex->dests[ex->chosen];
    struct sockaddr_storage addr = d->addr;
    if (addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&addr)->sin_port = htons(v->upstream.port);
    else
        ((struct sockaddr_in6 *)&addr)->sin6_port = htons(v->upstream.port);
    char *key = ex->pool_key;
    SSL_CTX *kctx = ex->rt->vendor_ctx[ex->vendor_index];
    /* The TLS context is part of the key: a reload that changes a vendor's TLS settings (CA,
     * verify, client certificate) must not reuse connections made under the old ones. */
    size_t clen = circuit_key_make(ex->circuit, sizeof ex->circuit, v, d->ip);
    pool_key_make(key, sizeof ex->pool_key, ex->circuit, clen, v, ex->host, kctx);
    SSL_CTX *ctx = ex->rt->vendor_ctx[ex->vendor_index];
    const char *sni = v->upstream.sni ? v->upstream.sni : ex->host;
    int err = 0;
    if (!bg_upstream_circuit_allow(ex->w, ex->circuit)) {
        int next = next_address(ex);
        if (next >= 0) { /* another address of the vendor, decided alike */
            switch_address(ex, next);
            start_forward(ex);
            return;
        }
        /* The address failed repeatedly: fail fast rather than pile up connections to it. */
        bg_metrics_upstream_error(ex->w->server->metrics, ex->w->id, v->name, "circuit_open");
        respond_problem(ex, 503, "upstream-circuit-open", "Vendor address is failing; retry later", "vendor",
                        v->name);
        return;
    }
    bg_buf_reset(&ex->rin);
    ex->resp_head_done = false;
    ex->resp_started = false;
    ex->state = BG_EX_FORWARD;
    unsigned nw = ex->w->server->nworkers ? ex->w->server->nworkers : 1;
    uint32_t per_worker = (v->upstream.max_connections + nw - 1) / nw;
    ex->up = bg_upstream_acquire(ex->w, key, (const struct sockaddr *)&addr, ctx, sni, v->upstream.verify ? sni : NULL,
                                 ex->rt->cfg->limits.upstream_connect_timeout_ms, per_worker,
                                 v->upstream.protocol, ex, &err);
    if (!ex->up && err == BG_UP_QUEUED) {
        ex->queued = true; /* bg_upstream_slot_cb or bg_upstream_queue_timeout_cb follows */
        return;
    }
    if (!ex->up) {
        if (!failover(ex, BG_UP_CONNECT_FAILED, uv_strerror(err)))
            upstream_failed(ex, BG_UP_CONNECT_FAILED, uv_strerror(err));
        return;
    }
    if (ex->up->ready)
        send_request(ex);
}

void bg_upstream_slot_cb(void *owner)
{
    bg_exchange_t *ex = owner;
    ex->queued = false;
    start_forward(ex);
}

void bg_upstream_queue_timeout_cb(void *owner)
{
    bg_exchange_t *ex = owner;
    ex->queued = false;
    bg_metrics_upstream_error(ex->w->server->metrics, ex->w->id, ex->vendor->name, "queue_timeout");
    respond_problem(ex, 503, "upstream-busy", "Vendor connection limit reached; retry later", "vendor",
                    ex->vendor->name);
}

void bg_upstream_ready_cb(bg_upstream_t *up, void *owner)
{
    bg_exchange_t *ex = owner; /* a new connection: count its handshake */
    if (bg_stream_tls(&up->stream))
        bg_metrics_upstream_tls(ex->w->server->metrics, ex->w->id, ex->vendor->name,
                                bg_stream_tls_resumed(&up->stream));
    send_request(ex);
}

void bg_upstream_drain_cb(bg_upstream_t *up, void *owner)
{
    (void)up;
    bg_exchange_t *ex = owner;
    if (ex->state == BG_EX_FORWARD && !ex->body_done)
        ex->down->resume_request(ex);
}

/* ---- response ---------------------------------------------------------------------------- */

void bg_exchange_trailers_capture(bg_h1_chunked_t *d, bg_buf_t *b, uint32_t max)
{
    static char none[1]; /* a buffer of no room: the decoder asks for room when a section comes */
    d->trailers = b->cap ? b->data : none;
    d->trailers_cap = b->cap ? (uint32_t)(b->cap - 1) : 0;
    d->trailers_len = 0;
    d->trailers_max = max ? max : 1;
}

void bg_exchange_trailers_room(bg_h1_chunked_t *d, bg_buf_t *b)
{
    /* A new buffer rather than realloc: the old one held the fields so far and is wiped. */
    size_t cap = d->trailers_cap < 512 ? 1024 : 2 * ((size_t)d->trailers_cap + 1);
    bg_buf_t nb;
    bg_buf_init(&nb);
    bg_buf_reserve_exact(&nb, cap - 1);
    bg_buf_append(&nb, d->trailers, d->trailers_len);
    bg_buf_dispose_secure(b);
    *b = nb;
    d->trailers = b->data;
    d->trailers_cap = (uint32_t)(b->cap - 1);
    d->trailers_full = false;
}

static void response_done(bg_exchange_t *ex, bool upstream_reusable)
{
    if (ex->h2s) {
        bg_h2up_stream_release(ex->h2s);
        ex->h2s = NULL;
    }
    if (ex->up) {
        bg_upstream_release(ex->up, upstream_reusable && ex->resp_keep_alive && ex->body_done && !ex->up_stream_body);
        ex->up = NULL;
    }
    finish(ex);
}

static void write_body_piece(bg_exchange_t *ex, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (ex->resp_reveal) {
        if (ex->reveal_failed || ex->rbody.len + n > BG_REVEAL_MAX) {
            ex->reveal_failed = true; /* reported by complete(): nothing here may end the exchange */
            return;
        }
        bg_buf_append(&ex->rbody, p, n);
        return;
    }
    ex->bytes_out += n;
    ex->down->body(ex, p, n);
    if (ex->up && ex->down->pending(ex) > BG_BACKPRESSURE)
        bg_upstream_pause(ex->up);
    else if (ex->h2s && ex->down->pending(ex) > BG_BACKPRESSURE)
        bg_h2up_stream_pause(ex->h2s);
}

void bg_exchange_drained(bg_exchange_t *ex)
{
    if (ex->up && ex->state == BG_EX_FORWARD)
        bg_upstream_resume(ex->up);
    else if (ex->h2s && ex->state == BG_EX_FORWARD)
        bg_h2up_stream_resume(ex->h2s);
}

/* A chunked response's trailer section is kept by the decoder, within limits.max_header_size
 * (the bound the exchange holds any trailer section to); its buffer grows only when a section
 * comes (bg_exchange_trailers_room). */
static void resp_trailers_capture(bg_exchange_t *ex)
{
    bg_buf_reset(&ex->resp_traw);
    bg_exchange_trailers_capture(&ex->resp_dec, &ex->resp_traw, ex->rt->cfg->limits.max_header_size);
}

static const char TRAILERS_TOO_LARGE[] = "response trailer section over limits.max_header_size";
static const char TRAILERS_TOO_MANY[] = "response trailer fields over limits.max_headers";

/* The vendor's trailer fields: those allowed in trailers are kept for send_trailers. Returns
 * NULL, or why the section is over the limits (a response header section's: the vendor's
 * failure, reported by the caller; the fields' values are not kept). */
static const char *resp_trailers_keep(bg_exchange_t *ex, const char *lines, size_t len, bool oversize)
{
    bg_buf_reset(&ex->resp_trailers);
    if (oversize || len > ex->rt->cfg->limits.max_header_size)
        return TRAILERS_TOO_LARGE;
    if (!len)
        return NULL;
    bg_header_t f[BG_H1_MAX_HEADERS];
    int n = bg_h1_split_fields(lines, len, f, BG_H1_MAX_HEADERS);
    if (n < 0 || (size_t)n > ex->rt->cfg->limits.max_headers)
        return TRAILERS_TOO_MANY;
    for (int i = 0; i < n; i++) {
        if (!bg_h1_trailer_allowed(f[i].name, f[i].name_len))
            continue;
        bg_buf_append(&ex->resp_trailers, f[i].name, f[i].name_len);
        bg_buf_puts(&ex->resp_trailers, ": ");
        bg_buf_append(&ex->resp_trailers, f[i].value, f[i].value_len);
        bg_buf_puts(&ex->resp_trailers, "\r\n");
    }
    return NULL;
}

/* Relay response body bytes; returns true when the response is complete. */
static bool relay_body(bg_exchange_t *ex, char *p, size_t n, bool *extra)
{
    *extra = false;
    if (ex->resp_framing == RF_NONE) {
        *extra = n > 0;
        return true;
    }
    if (ex->reveal_failed)
        return true;
    if (ex->resp_framing == RF_EVENT) {
        if (ex->hold_tail && !ex->resp_reveal && n) {
            /* fsync: always — the end is not known in advance: keep the latest byte back; it
             * goes out once the record is on disk (send_held). */
            if (ex->rbody.len) {
                ex->down->body(ex, ex->rbody.data, ex->rbody.len);
                bg_buf_reset(&ex->rbody);
            }
            write_body_piece(ex, p, n - 1);
            bg_buf_append(&ex->rbody, p + n - 1, 1);
            ex->bytes_out += 1;
        } else {
            write_body_piece(ex, p, n);
        }
        return ex->reveal_failed;
    }
    if (ex->resp_framing == RF_LENGTH) {
        size_t take = n < (uint64_t)ex->resp_remaining ? n : (size_t)ex->resp_remaining;
        if (ex->hold_tail && !ex->resp_reveal && take && take == (uint64_t)ex->resp_remaining) {
            /* fsync: always — the last byte goes out once the record is on disk. */
            write_body_piece(ex, p, take - 1);
            bg_buf_reset(&ex->rbody);
            bg_buf_append(&ex->rbody, p + take - 1, 1);
            ex->bytes_out += 1;
        } else {
            write_body_piece(ex, p, take);
        }
        ex->resp_remaining -= (int64_t)take;
        *extra = take < n;
        return ex->resp_remaining == 0 && ex->state == BG_EX_FORWARD;
    }
    if (ex->resp_framing == RF_CHUNKED) {
        while (n > 0 && ex->state == BG_EX_FORWARD) {
            size_t consumed = 0, outlen = 0;
            if (bg_h1_chunked_decode(&ex->resp_dec, p, n, &consumed, &outlen) < 0) {
                upstream_failed(ex, BG_UP_PROTOCOL,
                                ex->resp_dec.trailers_over ? TRAILERS_TOO_LARGE : "malformed chunked response");
                return false;
            }
            write_body_piece(ex, p, outlen);
            if (ex->reveal_failed)
                return true;
            p += consumed;
            n -= consumed;
            if (ex->resp_dec.trailers_over) {
                /* Over the limit: the vendor's failure, as soon as it is known (not read on). */
                upstream_failed(ex, BG_UP_PROTOCOL, TRAILERS_TOO_LARGE);
                return false;
            }
            if (ex->resp_dec.trailers_full) {
                bg_exchange_trailers_room(&ex->resp_dec, &ex->resp_traw);
                continue;
            }
            if (ex->resp_dec.done) {
                const char *over = resp_trailers_keep(ex, ex->resp_dec.trailers, ex->resp_dec.trailers_len, false);
                if (over) {
                    upstream_failed(ex, BG_UP_PROTOCOL, over);
                    return false;
                }
                *extra = n > 0;
                return ex->state == BG_EX_FORWARD;
            }
            if (consumed == 0)
                break;
        }
        return false;
    }
    write_body_piece(ex, p, n); /* RF_CLOSE: until EOF */
    return ex->reveal_failed;
}

/* Relay the vendor's response head to the codec. */
static void send_response_head(bg_exchange_t *ex, const bg_h1_response_t *resp)
{
    bool head = bg_span_ieq(ex->req.method, ex->req.method_len, "HEAD");
    /* HEAD and 304 answers carry the representation's Content-Length, not a body's: keep it. */
    bool keep_length = head || resp->status == 304;
    bool bodiless = keep_length || resp->status == 204 || resp->status < 200;
    bg_header_t h[BG_H1_MAX_HEADERS + 1];
    size_t n = 0;
    hop_set_t hops;
    hop_set_init(&hops, resp->headers, resp->nheaders);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const bg_header_t *hd = &resp->headers[i];
        if (is_hop(&hops, hd) ||
            (!keep_length && BG_NAME_IS(hd->name, hd->name_len, "content-length")) ||
            BG_NAME_IS(hd->name, hd->name_len, "x-transfer-id"))
            continue;
        h[n++] = *hd;
    }
    h[n++] = (bg_header_t){"X-Transfer-Id", 13, ex->id, strlen(ex->id)};
    int64_t len = -1;
    if (ex->resp_framing == RF_LENGTH || (ex->resp_framing == RF_EVENT && resp->content_length >= 0))
        len = resp->content_length; /* HTTP/2: nghttp2 holds the DATA to the declared length */
    else if (ex->resp_framing == RF_NONE && !bodiless)
        len = 0;
    ex->status = resp->status;
    /* A head with no body after it waits in the codec until end: it counts as an answer sent once
     * it goes (finish), not when the vendor fails meanwhile and it is taken back. */
    ex->head_uncounted = bodiless || len == 0;
    if (!ex->head_uncounted)
        bg_metrics_request(ex->w->server->metrics, ex->w->id, resp->status);
    ex->resp_started = true;
    ex->down->head(ex, resp->status, h, n, len, bodiless);
}

static void send_revealed(bg_exchange_t *ex)
{
    bg_buf_t out;
    bg_buf_init(&out);
    size_t opened = 0;
    bg_h1_response_t resp;
    bool head = bg_span_ieq(ex->req.method, ex->req.method_len, "HEAD");
    bg_h1_parse_response(ex->resp_head.data, ex->resp_head.len, head, &resp); /* parsed before */
    bool json = false;
    for (size_t i = 0; i < resp.nheaders; i++)
        if (bg_span_ieq(resp.headers[i].name, resp.headers[i].name_len, "content-type") &&
            memmem(resp.headers[i].value, resp.headers[i].value_len, "json", 4))
            json = true;
    bg_seal_reveal(ex->rt->keys, ex->rbody.data ? ex->rbody.data : "", ex->rbody.len, json, &out, &opened);
    ex->resp_reveal = false;
    int framing = ex->resp_framing;
    ex->resp_framing = RF_LENGTH;
    resp.content_length = (int64_t)out.len;
    send_response_head(ex, &resp);
    /* Under fsync: always the last byte waits for the record (send_held), as relay_body's does
     * for a body relayed as it comes: written whole here, the answer was complete before it. */
    size_t tail = ex->hold_tail && out.len ? 1 : 0;
    write_body_piece(ex, out.data ? out.data : "", out.len - tail);
    bg_buf_dispose_secure(&ex->rbody);
    if (tail) {
        bg_buf_append(&ex->rbody, out.data + out.len - 1, 1);
        ex->bytes_out += 1;
    }
    bg_buf_dispose_secure(&out);
    response_done(ex, framing != RF_CLOSE);
}

static void complete(bg_exchange_t *ex, bool extra)
{
    if (ex->reveal_failed)
        upstream_failed(ex, BG_UP_PROTOCOL, "response too large to reveal");
    else if (ex->resp_reveal)
        send_revealed(ex);
    else
        response_done(ex, !extra);
}

/* The vendor's final response head, parsed from `raw` (its HTTP/1.1 form), with ex->resp_framing
 * set: relay it, or keep it for the revealed body. */
static void accept_head(bg_exchange_t *ex, const bg_h1_response_t *resp, const char *raw, size_t rawlen)
{
    ex->resp_reveal = ex->vendor->reveal_responses && ex->rt->keys && ex->resp_framing != RF_NONE;
    ex->resp_head_done = true;
    bg_upstream_circuit_report(ex->w, ex->circuit, true);
    /* Under fsync: always the last body byte waits for the record (relay_body); a head with
     * nothing after it (RF_NONE) goes to the codec now all the same, which holds it until end,
     * after the record, which counts its bytes. */
    ex->hold_tail = ex->rt->cfg->records.fsync == BG_FSYNC_ALWAYS;
    if (ex->resp_reveal) {
        /* The head goes out with the revealed body's length once the body is complete. */
        bg_buf_reset(&ex->resp_head);
        bg_buf_append(&ex->resp_head, raw, rawlen);
    } else {
        send_response_head(ex, resp);
    }
}

void bg_upstream_data_cb(bg_upstream_t *up, void *owner, const char *p, size_t n)
{
    (void)up;
    bg_exchange_t *ex = owner;
    bool extra = false;
    if (ex->resp_head_done) {
        if (relay_body(ex, (char *)p, n, &extra))
            complete(ex, extra);
        return;
    }
    /* The head is parsed where it lies: in this read (the common case, no copy), or, when it came
     * in pieces, in rin, which holds the earlier ones. */
    const char *base = p;
    size_t total = n;
    if (ex->rin.len) {
        bg_buf_append(&ex->rin, p, n);
        base = ex->rin.data;
        total = ex->rin.len;
    }
    bool head = bg_span_ieq(ex->req.method, ex->req.method_len, "HEAD");
    bg_h1_response_t resp;
    size_t at = 0; /* past interim (1xx) responses, which are not relayed */
    int r;
    for (;;) {
        r = bg_h1_parse_response(base + at, total - at, head, &resp);
        if (r == BG_H1_PARTIAL) {
            if (base == p)
                bg_buf_append(&ex->rin, p + at, n - at);
            else
                bg_buf_consume(&ex->rin, at);
            if (ex->rin.len > 65536)
                upstream_failed(ex, BG_UP_PROTOCOL, "response head too large");
            return;
        }
        if (r < 0) {
            upstream_failed(ex, BG_UP_PROTOCOL, resp.error ? resp.error : "malformed response");
            return;
        }
        if (resp.status >= 200)
            break;
        if (resp.status == 101) {
            upstream_failed(ex, BG_UP_PROTOCOL, "unexpected 101");
            return;
        }
        at += (size_t)r;
    }
    ex->resp_keep_alive = resp.keep_alive;
    if (resp.chunked) {
        ex->resp_framing = RF_CHUNKED;
        bg_h1_chunked_init(&ex->resp_dec);
        resp_trailers_capture(ex);
    } else if (resp.close_delimited) {
        ex->resp_framing = RF_CLOSE;
        ex->resp_keep_alive = false;
    } else if (resp.content_length > 0 && !head) {
        ex->resp_framing = RF_LENGTH;
        ex->resp_remaining = resp.content_length;
    } else {
        ex->resp_framing = RF_NONE;
    }
    accept_head(ex, &resp, base + at, (size_t)r);
    at += (size_t)r;
    /* A head that came in pieces: rin is moved out first (relay_body may end the exchange), and
     * wiped after (the vendor's head and first body bytes). */
    bg_buf_t pieces;
    bg_buf_init(&pieces);
    if (base != p) {
        pieces = ex->rin;
        bg_buf_init(&ex->rin);
    }
    size_t rest = total - at;
    if (!rest && ex->resp_started && !ex->resp_reveal && ex->resp_framing != RF_NONE && ex->down->flush)
        ex->down->flush(ex); /* the body comes in a later read: the head goes out now */
    if (ex->state == BG_EX_FORWARD && relay_body(ex, (char *)base + at, rest, &extra))
        complete(ex, extra);
    bg_buf_dispose_secure(&pieces);
}

void bg_upstream_eof_cb(bg_upstream_t *up, void *owner)
{
    bg_exchange_t *ex = owner;
    ex->up = NULL; /* the pool closes it */
    if (ex->resp_head_done && ex->resp_framing == RF_CLOSE) {
        complete(ex, false);
        return;
    }
    if (may_retry(ex, up)) {
        /* A kept-alive connection the vendor had closed: try once more on a fresh one. */
        ex->retried = true;
        start_forward(ex);
        return;
    }
    upstream_failed(ex, BG_UP_CLOSED, ex->resp_head_done ? "closed mid-response" : "closed before responding");
}

/* The vendor's response timeout ran out while the request body still streams to it and none of it
 * waits to go to the vendor (queued: bytes held towards it): the vendor waits for body bytes the
 * client stopped sending. */
static bool client_owes_body(const bg_exchange_t *ex, size_t queued)
{
    return ex->state == BG_EX_FORWARD && !ex->body_done && ex->up_stream_body && !ex->pending.len && !queued;
}

/* That silence is the client's (answer_client_stall), and nothing is counted against the vendor: a
 * client that stalls its upload must not show as the vendor's timeout nor open the vendor's circuit
 * breaker for every other caller. Both callers have let go of the vendor side already (ex->up or
 * ex->h2s cleared; the upstream code closes or resets it). */
static void client_stalled(bg_exchange_t *ex)
{
    bg_log_info("request body stalled while the vendor waited for it", "vendor", ex->vendor->name, "id", ex->id);
    answer_client_stall(ex);
}

void bg_upstream_error_cb(bg_upstream_t *up, void *owner, bg_upstream_error_t kind, const char *msg)
{
    bg_exchange_t *ex = owner;
    ex->up = NULL;
    if (kind == BG_UP_TIMEOUT && up->ready && client_owes_body(ex, up->stream.write_pending)) {
        client_stalled(ex); /* the upstream closes the connection after this callback */
        return;
    }
    if (kind == BG_UP_CLOSED && may_retry(ex, up)) {
        ex->retried = true;
        start_forward(ex);
        return;
    }
    /* Nothing was sent on a connection that never opened: another address may take the request. */
    bool unopened = kind == BG_UP_CONNECT_FAILED || kind == BG_UP_TLS_FAILED || (kind == BG_UP_TIMEOUT && !up->ready);
    if (unopened && failover(ex, kind, msg))
        return;
    upstream_failed(ex, kind, msg);
}

/* ---- response events from HTTP/2 streams (h2up.c) ------------------------------------ */

void bg_exchange_resp_head(bg_exchange_t *ex, const char *head, size_t len, bool ends)
{
    if (ends)
        ex->h2s = NULL;
    if (ex->state != BG_EX_FORWARD || ex->resp_head_done)
        return;
    bool head_req = is_head(ex);
    bg_h1_response_t resp;
    int r = bg_h1_parse_response(head, len, head_req, &resp);
    if (r < 0 || (size_t)r != len || resp.status < 200) {
        upstream_failed(ex, BG_UP_PROTOCOL, r < 0 && resp.error ? resp.error : "malformed HTTP/2 response head");
        return;
    }
    ex->resp_keep_alive = true;
    bool bodiless = head_req || resp.status == 204 || resp.status == 304;
    ex->resp_framing = ends || bodiless ? RF_NONE : RF_EVENT;
    accept_head(ex, &resp, head, len);
    if (ex->state != BG_EX_FORWARD)
        return;
    if (ex->resp_framing == RF_NONE) {
        complete(ex, false);
        return;
    }
    /* The head goes out now only when body bytes are to follow it. A head declaring
     * content-length: 0 is the whole answer at the client (HTTP/1.1 Content-Length: 0, HTTP/2
     * HEADERS with END_STREAM): the codec holds it until end, which follows the stream's actual
     * end (END_STREAM, after trailers or an empty DATA frame) and, under fsync: always, the
     * record. Flushed here, it completed the answer before the vendor's stream ended and its
     * record was durable. */
    if (resp.content_length != 0 && ex->resp_started && !ex->resp_reveal && ex->down->flush)
        ex->down->flush(ex);
}

void bg_exchange_resp_body(bg_exchange_t *ex, const char *p, size_t n)
{
    bool extra = false;
    if (ex->state != BG_EX_FORWARD || !ex->resp_head_done)
        return;
    if (relay_body(ex, (char *)p, n, &extra))
        complete(ex, extra);
}

void bg_exchange_resp_trailers(bg_exchange_t *ex, const char *lines, size_t len, bool oversize)
{
    if (ex->state != BG_EX_FORWARD || !ex->resp_head_done)
        return;
    ex->resp_trailers_over = resp_trailers_keep(ex, lines, len, oversize); /* reported by _resp_end */
}

void bg_exchange_resp_end(bg_exchange_t *ex)
{
    ex->h2s = NULL;
    if (ex->state != BG_EX_FORWARD)
        return;
    if (!ex->resp_head_done) {
        upstream_failed(ex, BG_UP_PROTOCOL, "stream ended without a response");
        return;
    }
    if (ex->resp_trailers_over) {
        upstream_failed(ex, BG_UP_PROTOCOL, ex->resp_trailers_over);
        return;
    }
    complete(ex, false);
}

void bg_exchange_resp_error(bg_exchange_t *ex, bg_upstream_error_t kind, const char *msg, bool refused)
{
    /* A timeout comes from bg_h2up_tick, whose stream is still alive (it resets it after this). */
    size_t queued = kind == BG_UP_TIMEOUT && ex->h2s ? bg_h2up_stream_pending(ex->h2s) : 0;
    ex->h2s = NULL;
    if (ex->state != BG_EX_FORWARD)
        return;
    if (kind == BG_UP_TIMEOUT && client_owes_body(ex, queued)) {
        client_stalled(ex);
        return;
    }
    if (refused && !ex->resp_head_done && !ex->retried && ex->body_done && !ex->up_stream_body && idempotent(ex)) {
        /* Never processed (GOAWAY above the vendor's last stream, REFUSED_STREAM): like the
         * HTTP/1.1 retry, an idempotent request goes once more on a new connection. */
        ex->retried = true;
        start_forward(ex);
        return;
    }
    upstream_failed(ex, kind, msg);
}

void bg_exchange_req_drained(bg_exchange_t *ex)
{
    if (ex->state == BG_EX_FORWARD && !ex->body_done)
        ex->down->resume_request(ex);
}

void bg_exchange_cancel(bg_exchange_t *ex)
{
    if (ex->awaiting_record) {
        ex->cancelled = true; /* freed when the writer hands it back */
        return;
    }
    if (ex->state != BG_EX_DONE && ex->vendor && !ex->recorded) {
        /* The answer never completed: the client went away (499), unless the vendor broke it. */
        if (!ex->status || (ex->resp_started && ex->status < 500))
            ex->status = 499;
        exchange_record(ex, NULL);
    }
    ex->state = BG_EX_DONE;
    bg_exchange_destroy(ex);
}
