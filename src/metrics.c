/*
 * metrics.c — see metrics.h. Each worker owns a cache-aligned block: an open-addressing table
 * of labelled series (family + pre-escaped label string → counter; at most max_series, in twice
 * as many slots rounded up to a power of two), one overflow counter per family for what finds
 * the table full (so every family's total stays exact), fixed histograms and gauges.
 * Only the owning worker stores into its block (relaxed load + store: no RMW, no contention);
 * a new series is published by a release store of its label pointer after its other fields are
 * set, so a concurrent scrape sees either nothing or a complete series. The scrape copies,
 * sorts and sums. Allocation failure aborts (data-plane rule).
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABELS_MAX 1024
#define VALUE_MAX 128

enum { F_TRANSFERS, F_CATEGORIES, F_BLOCKS, F_WOULD_BLOCK, F_FINDINGS, F_UPSTREAM, F_LIMITED, F_UPSTREAM_TLS, F__COUNT };

static const struct {
    const char *name, *help;
} families[F__COUNT] = {
    {"bordergate_transfers_total", "Transfers that reached a decision, by vendor, destination and legal mechanism."},
    {"bordergate_transfer_categories_total", "Transfers carrying each personal-data category, by vendor."},
    {"bordergate_blocks_total", "Blocked transfers by vendor and reason code."},
    {"bordergate_report_only_blocks_total",
     "Transfers mode report-only would have blocked and forwarded unchanged, by vendor and reason code."},
    {"bordergate_personal_data_findings_total", "Personal-data findings by category and detector."},
    {"bordergate_upstream_errors_total", "Errors talking to vendors, by vendor and kind."},
    {"bordergate_limited_total", "Connections and requests refused by a limit, by scope and kind."},
    {"bordergate_upstream_tls_handshakes_total",
     "TLS handshakes with vendors, by vendor and whether an earlier session was resumed."},
};

static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10,   30};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])
static const char *const bucket_text[NBUCKETS] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                                  "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                                  "1",      "2.5",   "5",      "10",    "30"};

typedef struct {
    _Atomic(const char *) labels; /* NULL: free slot; set last (release) */
    uint32_t hash;
    uint8_t family;
    atomic_uint_least64_t value;
} series_t;

/* The inputs of the worker's last bg_metrics_transfer and the series they named: consecutive
 * transfers mostly repeat them, and the key then need not be built and hashed again. */
typedef struct {
    series_t *series; /* NULL: nothing remembered */
    char vendor[64], country[8], region[32];
    int decision, mech;
} transfer_memo_t;

typedef struct {
    series_t *slots;      /* nslots: a power of two, at least twice max_series: probes stay short */
    size_t nslots;
    unsigned max_series;
    transfer_memo_t memo; /* owner only */
    unsigned nseries; /* owner only */
    atomic_uint_least64_t dropped;
    atomic_uint_least64_t overflow[F__COUNT]; /* per family: increments that found no series */
    atomic_uint_least64_t buckets[BG_DECISION__COUNT][NBUCKETS + 1]; /* per bucket, last = above 30 s */
    atomic_uint_least64_t sum_ns[BG_DECISION__COUNT];
    atomic_int_least64_t conns, inflight;
    atomic_uint_least64_t responses[6]; /* 1xx..5xx, other */
    atomic_uint_least64_t geo[2];       /* destination lookups: answered by the cache, looked up */
    atomic_uint_least64_t dns[3];       /* vendor name lookups finished, by bg_dns_result_t */
} worker_t;

struct bg_metrics {
    unsigned nworkers;
    worker_t **workers;
    atomic_uint_least64_t reloads_ok, reloads_failed;
};

/* Owner-only increment: the scraper may read concurrently, nobody else writes. */
static inline void bump(atomic_uint_least64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

bg_metrics_t *bg_metrics_create(unsigned nworkers, unsigned max_series)
{
    if (nworkers == 0)
        nworkers = 1;
    if (max_series == 0)
        max_series = BG_METRICS_SERIES_DEFAULT;
    size_t nslots = 16;
    while (nslots < 2 * (size_t)max_series)
        nslots *= 2;
    bg_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->nworkers = nworkers;
    m->workers = calloc(nworkers, sizeof *m->workers);
    if (!m->workers)
        abort();
    size_t sz = (sizeof(worker_t) + 63) / 64 * 64;
    for (unsigned i = 0; i < nworkers; i++) {
        m->workers[i] = aligned_alloc(64, sz);
        if (!m->workers[i])
            abort();
        memset(m->workers[i], 0, sz); /* all-zero is the initial state of every atomic here */
        m->workers[i]->slots = calloc(nslots, sizeof(series_t));
        if (!m->workers[i]->slots)
            abort();
        m->workers[i]->nslots = nslots;
        m->workers[i]->max_series = max_series;
    }
    return m;
}

void bg_metrics_destroy(bg_metrics_t *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->nworkers; i++) {
        for (size_t s = 0; s < m->workers[i]->nslots; s++)
            free((void *)atomic_load(&m->workers[i]->slots[s].labels));
        free(m->workers[i]->slots);
        free(m->workers[i]);
    }
    free(m->workers);
    free(m);
}

/* Append name="value" (escaped, value capped) to a bounded key. */
static void put_label(char *key, size_t *len, const char *name, const char *value)
{
    if (!value || !*value)
        value = "unknown";
    size_t n = *len;
    if (n && n < LABELS_MAX - 1)
        key[n++] = ',';
    for (const char *p = name; *p && n < LABELS_MAX - 1; p++)
        key[n++] = *p;
    if (n + 2 < LABELS_MAX) {
        key[n++] = '=';
        key[n++] = '"';
    }
    size_t vl = 0;
    for (const char *p = value; *p && vl < VALUE_MAX && n + 3 < LABELS_MAX; p++, vl++) {
        char c = *p;
        if (c == '\\' || c == '"') {
            key[n++] = '\\';
            key[n++] = c;
        } else if (c == '\n') {
            key[n++] = '\\';
            key[n++] = 'n';
        } else {
            key[n++] = c;
        }
    }
    if (n < LABELS_MAX - 1)
        key[n++] = '"';
    key[n] = 0;
    *len = n;
}

/* The table is full: n goes to the family's overflow series (its total stays exact) and the
 * dropped counter says one increment lost its labels. */
static void overflow(worker_t *wk, unsigned family, uint64_t n)
{
    bump(&wk->overflow[family], n);
    bump(&wk->dropped, 1);
}

/* Returns the series counted, or NULL when the table was full (counted in the overflow series). */
static series_t *series_add(worker_t *wk, unsigned family, const char *key, uint64_t n)
{
    uint32_t h = 2166136261u ^ family;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    size_t mask = wk->nslots - 1;
    for (size_t probe = 0; probe < wk->nslots; probe++) {
        series_t *s = &wk->slots[(h + probe) & mask];
        const char *lab = atomic_load_explicit(&s->labels, memory_order_relaxed);
        if (!lab) {
            if (wk->nseries >= wk->max_series) {
                overflow(wk, family, n);
                return NULL;
            }
            char *copy = strdup(key);
            if (!copy)
                abort();
            s->hash = h;
            s->family = (uint8_t)family;
            atomic_store_explicit(&s->value, n, memory_order_relaxed);
            atomic_store_explicit(&s->labels, copy, memory_order_release);
            wk->nseries++;
            return s;
        }
        if (s->hash == h && s->family == family && strcmp(lab, key) == 0) {
            bump(&s->value, n);
            return s;
        }
    }
    overflow(wk, family, n);
    return NULL;
}

/* Copy s into a memo field; false when it does not fit (then nothing is remembered). */
static bool memo_put(char *dst, size_t cap, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n >= cap)
        return false;
    memcpy(dst, s ? s : "", n + 1);
    return true;
}

static bool memo_eq(const char *memo, const char *s) { return strcmp(memo, s ? s : "") == 0; }

void bg_metrics_transfer(bg_metrics_t *m, unsigned w, const char *vendor, const char *dest_country,
                         const char *dest_region, bg_decision_kind_t decision, bg_mechanism_t mech,
                         double duration_s)
{
    if (!m || w >= m->nworkers)
        return;
    worker_t *wk = m->workers[w];
    transfer_memo_t *mo = &wk->memo;
    if (mo->series && mo->decision == (int)decision && mo->mech == (int)mech && memo_eq(mo->vendor, vendor) &&
        memo_eq(mo->country, dest_country) && memo_eq(mo->region, dest_region)) {
        bump(&mo->series->value, 1);
    } else {
        char key[LABELS_MAX];
        size_t n = 0;
        key[0] = 0;
        put_label(key, &n, "vendor", vendor);
        put_label(key, &n, "dest_country", dest_country);
        put_label(key, &n, "dest_region", dest_region);
        put_label(key, &n, "decision", bg_decision_name(decision));
        put_label(key, &n, "mechanism", bg_mechanism_name(mech));
        mo->series = series_add(wk, F_TRANSFERS, key, 1);
        mo->decision = (int)decision;
        mo->mech = (int)mech;
        if (!memo_put(mo->vendor, sizeof mo->vendor, vendor) || !memo_put(mo->country, sizeof mo->country, dest_country) ||
            !memo_put(mo->region, sizeof mo->region, dest_region))
            mo->series = NULL;
    }
    unsigned d = decision < BG_DECISION__COUNT ? (unsigned)decision : BG_DECISION_BLOCK;
    if (!(duration_s >= 0)) /* also catches NaN */
        duration_s = 0;
    size_t b = 0;
    while (b < NBUCKETS && duration_s > bucket_le[b])
        b++;
    bump(&wk->buckets[d][b], 1);
    double ns = duration_s * 1e9;
    bump(&wk->sum_ns[d], ns < 1.8e19 ? (uint64_t)ns : UINT64_MAX / 2);
}

void bg_metrics_findings(bg_metrics_t *m, unsigned w, const char *category, const char *detector, uint64_t n)
{
    if (!m || w >= m->nworkers || n == 0)
        return;
    char key[LABELS_MAX];
    size_t k = 0;
    key[0] = 0;
    put_label(key, &k, "category", category);
    put_label(key, &k, "detector", detector);
    series_add(m->workers[w], F_FINDINGS, key, n);
}

void bg_metrics_categories(bg_metrics_t *m, unsigned w, const char *vendor, uint32_t categories)
{
    if (!m || w >= m->nworkers)
        return;
    for (int c = 0; c < BG_CAT__COUNT; c++)
        if (categories & (1u << c)) {
            char key[LABELS_MAX];
            size_t k = 0;
            key[0] = 0;
            put_label(key, &k, "vendor", vendor);
            put_label(key, &k, "category", bg_category_name(c));
            series_add(m->workers[w], F_CATEGORIES, key, 1);
        }
}

/* +1 on the series of family f with two labels. */
static void add2(worker_t *wk, unsigned f, const char *k1, const char *v1, const char *k2, const char *v2)
{
    char key[LABELS_MAX];
    size_t k = 0;
    key[0] = 0;
    put_label(key, &k, k1, v1);
    put_label(key, &k, k2, v2);
    series_add(wk, f, key, 1);
}

/* +1 on family f (blocks or would-be blocks) for vendor and the reason's leading code. */
static void add_block(bg_metrics_t *m, unsigned w, unsigned f, const char *vendor, const char *reason)
{
    if (!m || w >= m->nworkers)
        return;
    char code[49];
    size_t n = 0;
    for (const char *p = reason ? reason : ""; *p && n < sizeof code - 1; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            break;
        code[n++] = c;
    }
    code[n] = 0;
    add2(m->workers[w], f, "vendor", vendor, "reason", code);
}

void bg_metrics_block(bg_metrics_t *m, unsigned w, const char *vendor, const char *reason)
{
    add_block(m, w, F_BLOCKS, vendor, reason);
}

void bg_metrics_would_block(bg_metrics_t *m, unsigned w, const char *vendor, const char *reason)
{
    add_block(m, w, F_WOULD_BLOCK, vendor, reason);
}

void bg_metrics_upstream_error(bg_metrics_t *m, unsigned w, const char *vendor, const char *kind)
{
    if (m && w < m->nworkers)
        add2(m->workers[w], F_UPSTREAM, "vendor", vendor, "kind", kind);
}

void bg_metrics_upstream_tls(bg_metrics_t *m, unsigned w, const char *vendor, bool resumed)
{
    if (m && w < m->nworkers)
        add2(m->workers[w], F_UPSTREAM_TLS, "vendor", vendor, "resumed", resumed ? "true" : "false");
}

void bg_metrics_limited(bg_metrics_t *m, unsigned w, const char *scope, const char *kind)
{
    if (m && w < m->nworkers)
        add2(m->workers[w], F_LIMITED, "scope", scope, "kind", kind);
}

void bg_metrics_conn(bg_metrics_t *m, unsigned w, int delta)
{
    if (!m || w >= m->nworkers)
        return;
    atomic_int_least64_t *g = &m->workers[w]->conns;
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + delta, memory_order_relaxed);
}

void bg_metrics_inflight(bg_metrics_t *m, unsigned w, int delta)
{
    if (!m || w >= m->nworkers)
        return;
    atomic_int_least64_t *g = &m->workers[w]->inflight;
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + delta, memory_order_relaxed);
}

void bg_metrics_request(bg_metrics_t *m, unsigned w, int status)
{
    if (!m || w >= m->nworkers)
        return;
    int cls = status >= 100 && status <= 599 ? status / 100 - 1 : 5;
    bump(&m->workers[w]->responses[cls], 1);
}

void bg_metrics_geo_lookups(bg_metrics_t *m, unsigned w, uint64_t cache_hits, uint64_t lookups)
{
    if (!m || w >= m->nworkers)
        return;
    bump(&m->workers[w]->geo[0], cache_hits);
    bump(&m->workers[w]->geo[1], lookups);
}

void bg_metrics_dns_lookup(bg_metrics_t *m, unsigned w, bg_dns_result_t result)
{
    if (m && w < m->nworkers && (unsigned)result < 3)
        bump(&m->workers[w]->dns[result], 1);
}

void bg_metrics_config_reload(bg_metrics_t *m, bool ok)
{
    if (!m)
        return;
    /* Main thread only, and not hot: a plain RMW is fine here. */
    atomic_fetch_add_explicit(ok ? &m->reloads_ok : &m->reloads_failed, 1, memory_order_relaxed);
}

typedef struct {
    unsigned family;
    const char *labels;
    uint64_t value;
} row_t;

static int row_cmp(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    return strcmp(x->labels, y->labels);
}

static void header(bg_buf_t *out, const char *name, const char *type, const char *help)
{
    bg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value from outside the series table (config strings): escape for the text format. */
static void put_value(bg_buf_t *out, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            bg_buf_printf(out, "\\%c", *p);
        else if (*p == '\n')
            bg_buf_puts(out, "\\n");
        else
            bg_buf_append(out, p, 1);
    }
}

void bg_metrics_render(bg_metrics_t *m, const bg_config_t *cfg, const bg_records_t *records,
                       int64_t geoip_build_epoch, bg_buf_t *out)
{
    header(out, "bordergate_build_info", "gauge", "Build and configuration version (always 1).");
    bg_buf_puts(out, "bordergate_build_info{version=\"");
    put_value(out, BG_VERSION);
    bg_buf_puts(out, "\",config_version=\"");
    put_value(out, cfg ? cfg->version : "");
    bg_buf_puts(out, "\"} 1\n");

    /* Labelled families: copy every published series, sort, sum equal keys. */
    size_t cap = 1024, n = 0;
    row_t *rows = malloc(cap * sizeof *rows);
    if (!rows)
        abort();
    uint64_t dropped = 0;
    for (unsigned i = 0; i < m->nworkers; i++) {
        worker_t *wk = m->workers[i];
        dropped += atomic_load_explicit(&wk->dropped, memory_order_relaxed);
        for (size_t s = 0; s < wk->nslots; s++) {
            const char *lab = atomic_load_explicit(&wk->slots[s].labels, memory_order_acquire);
            if (!lab)
                continue;
            if (n == cap) {
                cap *= 2;
                rows = realloc(rows, cap * sizeof *rows);
                if (!rows)
                    abort();
            }
            rows[n++] = (row_t){wk->slots[s].family, lab,
                                atomic_load_explicit(&wk->slots[s].value, memory_order_relaxed)};
        }
    }
    qsort(rows, n, sizeof *rows, row_cmp);
    size_t r = 0;
    for (unsigned f = 0; f < F__COUNT; f++) {
        header(out, families[f].name, "counter", families[f].help);
        while (r < n && rows[r].family == f) {
            uint64_t v = rows[r].value;
            size_t e = r + 1;
            while (e < n && rows[e].family == f && strcmp(rows[e].labels, rows[r].labels) == 0)
                v += rows[e++].value;
            bg_buf_printf(out, "%s{%s} %llu\n", families[f].name, rows[r].labels, (unsigned long long)v);
            r = e;
        }
        /* What found a worker's table full: labelled only as overflow (no real series has that
         * label), so that sum() over the family is exact. Shown once it is not 0. */
        uint64_t over = 0;
        for (unsigned i = 0; i < m->nworkers; i++)
            over += atomic_load_explicit(&m->workers[i]->overflow[f], memory_order_relaxed);
        if (over)
            bg_buf_printf(out, "%s{overflow=\"true\"} %llu\n", families[f].name, (unsigned long long)over);
    }
    free(rows);

    header(out, "bordergate_request_duration_seconds", "histogram",
           "Time from request received to response finished, by decision.");
    for (int d = 0; d < BG_DECISION__COUNT; d++) {
        uint64_t cum = 0, sum_ns = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) {
            for (unsigned i = 0; i < m->nworkers; i++)
                cum += atomic_load_explicit(&m->workers[i]->buckets[d][b], memory_order_relaxed);
            bg_buf_printf(out, "bordergate_request_duration_seconds_bucket{decision=\"%s\",le=\"%s\"} %llu\n",
                          bg_decision_name(d), b < NBUCKETS ? bucket_text[b] : "+Inf", (unsigned long long)cum);
        }
        for (unsigned i = 0; i < m->nworkers; i++)
            sum_ns += atomic_load_explicit(&m->workers[i]->sum_ns[d], memory_order_relaxed);
        /* _count is the +Inf bucket by construction, so the two always agree in one scrape. */
        bg_buf_printf(out, "bordergate_request_duration_seconds_sum{decision=\"%s\"} %.9f\n", bg_decision_name(d),
                      (double)sum_ns / 1e9);
        bg_buf_printf(out, "bordergate_request_duration_seconds_count{decision=\"%s\"} %llu\n", bg_decision_name(d),
                      (unsigned long long)cum);
    }

    static const char *const classes[6] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
    header(out, "bordergate_http_responses_total", "counter", "HTTP responses sent to clients, by status class.");
    for (int c = 0; c < 6; c++) {
        uint64_t v = 0;
        for (unsigned i = 0; i < m->nworkers; i++)
            v += atomic_load_explicit(&m->workers[i]->responses[c], memory_order_relaxed);
        bg_buf_printf(out, "bordergate_http_responses_total{code=\"%s\"} %llu\n", classes[c], (unsigned long long)v);
    }

    int64_t conns = 0, inflight = 0;
    for (unsigned i = 0; i < m->nworkers; i++) {
        conns += atomic_load_explicit(&m->workers[i]->conns, memory_order_relaxed);
        inflight += atomic_load_explicit(&m->workers[i]->inflight, memory_order_relaxed);
    }
    header(out, "bordergate_open_connections", "gauge", "Client connections currently open.");
    bg_buf_printf(out, "bordergate_open_connections %lld\n", (long long)conns);
    header(out, "bordergate_inflight_exchanges", "gauge", "Requests being processed now.");
    bg_buf_printf(out, "bordergate_inflight_exchanges %lld\n", (long long)inflight);

    header(out, "bordergate_config_reloads_total", "counter", "Configuration reloads by result.");
    bg_buf_printf(out, "bordergate_config_reloads_total{result=\"success\"} %llu\n",
                  (unsigned long long)atomic_load(&m->reloads_ok));
    bg_buf_printf(out, "bordergate_config_reloads_total{result=\"error\"} %llu\n",
                  (unsigned long long)atomic_load(&m->reloads_failed));

    if (records) {
        header(out, "bordergate_records_written_total", "counter", "Transfer records written to disk.");
        bg_buf_printf(out, "bordergate_records_written_total %llu\n", (unsigned long long)bg_records_written(records));
        header(out, "bordergate_records_queue_depth", "gauge", "Transfer records waiting for the writer.");
        bg_buf_printf(out, "bordergate_records_queue_depth %llu\n", (unsigned long long)bg_records_queue_depth(records));
        header(out, "bordergate_records_healthy", "gauge", "1 when the records file is writable, 0 after a disk error.");
        bg_buf_printf(out, "bordergate_records_healthy %d\n", bg_records_healthy(records) ? 1 : 0);
        header(out, "bordergate_records_slots_used", "gauge",
               "Slots of the records queue taken: records waiting for the writer plus exchanges in flight that reserved one.");
        bg_buf_printf(out, "bordergate_records_slots_used %llu\n", (unsigned long long)bg_records_slots_used(records));
        header(out, "bordergate_records_slots", "gauge", "Slots of the records queue (records.queue_size).");
        bg_buf_printf(out, "bordergate_records_slots %llu\n", (unsigned long long)bg_records_capacity(records));
        header(out, "bordergate_records_refused_total", "counter",
               "Requests refused with 503 because the records queue had no free slot (nothing was forwarded).");
        bg_buf_printf(out, "bordergate_records_refused_total %llu\n", (unsigned long long)bg_records_refused(records));
        header(out, "bordergate_records_pending_age_seconds", "gauge",
               "How long the records writer has had work pending (a record or an fsync) without finishing a write "
               "or fsync; 0 when idle. /readyz fails from records.stall_timeout.");
        bg_buf_printf(out, "bordergate_records_pending_age_seconds %.3f\n",
                      (double)bg_records_pending_ms(records) / 1000.0);
    }

    header(out, "bordergate_transfer_basis_expiry_timestamp_seconds", "gauge",
           "Expiry of each vendor's transfer basis (SCC or DPF certification), Unix seconds.");
    for (size_t i = 0; cfg && i < cfg->nvendors; i++) {
        const bg_vendor_t *v = &cfg->vendors[i];
        if (v->has_scc && v->scc.expires) {
            bg_buf_puts(out, "bordergate_transfer_basis_expiry_timestamp_seconds{vendor=\"");
            put_value(out, v->name);
            bg_buf_printf(out, "\",basis=\"scc\"} %lld\n", (long long)v->scc.expires);
        }
        if (v->has_dpf && v->dpf.expires) {
            bg_buf_puts(out, "bordergate_transfer_basis_expiry_timestamp_seconds{vendor=\"");
            put_value(out, v->name);
            bg_buf_printf(out, "\",basis=\"dpf\"} %lld\n", (long long)v->dpf.expires);
        }
    }

    if (geoip_build_epoch) {
        header(out, "bordergate_geoip_database_build_timestamp_seconds", "gauge",
               "Build time of the GeoIP database in use, Unix seconds.");
        bg_buf_printf(out, "bordergate_geoip_database_build_timestamp_seconds %lld\n", (long long)geoip_build_epoch);
    }

    uint64_t geo[2] = {0, 0};
    for (unsigned i = 0; i < m->nworkers; i++)
        for (int k = 0; k < 2; k++)
            geo[k] += atomic_load_explicit(&m->workers[i]->geo[k], memory_order_relaxed);
    header(out, "bordergate_geoip_lookups_total", "counter",
           "Destination address lookups (overrides, then the GeoIP database), by whether the worker's cache answered.");
    bg_buf_printf(out, "bordergate_geoip_lookups_total{result=\"cache_hit\"} %llu\n", (unsigned long long)geo[0]);
    bg_buf_printf(out, "bordergate_geoip_lookups_total{result=\"lookup\"} %llu\n", (unsigned long long)geo[1]);

    uint64_t dns[3] = {0, 0, 0};
    for (unsigned i = 0; i < m->nworkers; i++)
        for (int k = 0; k < 3; k++)
            dns[k] += atomic_load_explicit(&m->workers[i]->dns[k], memory_order_relaxed);
    header(out, "bordergate_dns_lookups_total", "counter",
           "Vendor host names resolved (one lookup per name at a time, per worker), by result (stale: failed, "
           "the previous addresses still serve).");
    bg_buf_printf(out, "bordergate_dns_lookups_total{result=\"ok\"} %llu\n", (unsigned long long)dns[0]);
    bg_buf_printf(out, "bordergate_dns_lookups_total{result=\"error\"} %llu\n", (unsigned long long)dns[1]);
    bg_buf_printf(out, "bordergate_dns_lookups_total{result=\"stale\"} %llu\n", (unsigned long long)dns[2]);

    header(out, "bordergate_metrics_series_dropped_total", "counter",
           "Increments counted in their family's overflow=\"true\" series, without their labels, because a "
           "worker's series table was full (metrics.max_series).");
    bg_buf_printf(out, "bordergate_metrics_series_dropped_total %llu\n", (unsigned long long)dropped);
}
