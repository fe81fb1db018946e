/*
 * exchange.c — the protocol-neutral steps of one transfer: route, classify, decide per
 * destination address, record. Runs on the worker thread that owns the exchange. The
 * decision is made for every candidate address of the vendor; the upstream then connects
 * to exactly the address whose classification allowed it (no second lookup).
 */
#include "exchange.h"

#include "log.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

bg_exchange_t *bg_exchange_create(bg_worker_t *w, const char *protocol, const char *caller)
{
    bg_exchange_t *ex = calloc(1, sizeof *ex);
    if (!ex)
        abort();
    ex->w = w;
    ex->rt = bg_runtime_retain(w->rt);
    ex->vendor_index = -1;
    ex->chosen = -1;
    ex->start_ms = bg_now_ms();
    ex->start_hr = uv_hrtime();
    ex->protocol = protocol;
    snprintf(ex->caller, sizeof ex->caller, "%s", caller);
    bg_record_id_make(ex->start_ms, w->id, w->seq++, ex->id);
    bg_buf_init(&ex->body);
    return ex;
}

void bg_exchange_destroy(bg_exchange_t *ex)
{
    if (!ex)
        return;
    if (ex->cls_ready)
        bg_classification_dispose(&ex->cls);
    bg_buf_dispose_secure(&ex->body);
    if (ex->head) {
        OPENSSL_cleanse(ex->head, ex->head_len);
        free(ex->head);
    }
    free(ex->dests);
    bg_runtime_release(ex->rt);
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
    };
    if (bg_classify(ex->rt->classifier, &in, &ex->cls) < 0)
        ex->error = "classification_failed";
}

static void addr_to_ip(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    out[0] = 0;
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)outlen);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)outlen);
}

void bg_exchange_decide(bg_exchange_t *ex, const struct sockaddr_storage *addrs, size_t naddrs)
{
    const bg_config_t *cfg = ex->rt->cfg;
    const bg_vendor_t *v = ex->vendor;
    int64_t now_s = ex->start_ms / 1000;
    free(ex->dests);
    ex->dests = calloc(naddrs ? naddrs : 1, sizeof *ex->dests);
    if (!ex->dests)
        abort();
    ex->ndests = naddrs;
    ex->chosen = -1;
    bg_policy_input_t in = {
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
    for (size_t i = 0; i < naddrs; i++) {
        bg_dest_t *d = &ex->dests[i];
        d->addr = addrs[i];
        addr_to_ip(&addrs[i], d->ip, sizeof d->ip);
        bg_geo_cache_lookup(ex->w->geo_cache, ex->rt->geo, cfg->geoip.overrides, cfg->geoip.noverrides,
                            (const struct sockaddr *)&addrs[i], d->country);
        bg_adequacy_scope_t scope = BG_SCOPE_FULL;
        d->kind = bg_config_dest_kind(cfg, d->country, &scope);
        in.country = d->country;
        in.dest_kind = d->kind;
        in.scope = scope;
        in.region_covered = d->country[0] && bg_config_vendor_covers(cfg, v, d->country);
        bg_policy_decide(cfg, v, &in, now_s, &d->dec);
        if (ex->chosen < 0 && d->dec.action != BG_DECISION_BLOCK)
            ex->chosen = (int)i;
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

void bg_exchange_record(bg_exchange_t *ex)
{
    if (ex->recorded || !ex->vendor)
        return;
    ex->recorded = true;
    bg_server_t *s = ex->w->server;
    const bg_config_t *cfg = ex->rt->cfg;
    const bg_dest_t *d = ex->ndests ? &ex->dests[ex->chosen >= 0 ? ex->chosen : 0] : NULL;
    uint64_t dur_ns = uv_hrtime() - ex->start_hr;
    bg_buf_t path;
    bg_buf_init(&path);
    redacted_path(ex, &path);
    char method[24];
    snprintf(method, sizeof method, "%.*s", (int)(ex->req.method_len < 20 ? ex->req.method_len : 20), ex->req.method);

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
        .path = path.data ? path.data : "/",
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
        .config_version = cfg->version,
    };
    if (bg_records_submit(s->records, &r, NULL, NULL) < 0)
        bg_log_error("transfer record not written", "id", ex->id, "vendor", ex->vendor->name);
    bg_metrics_transfer(s->metrics, ex->w->id, ex->vendor->name, d ? d->country : "", region,
                        ex->dec.decision, ex->dec.mechanism, (double)dur_ns / 1e9);
    bg_buf_dispose(&path);
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
