/*
 * metrics.c (unit) — per-worker counters summed on render, histogram buckets cumulative,
 * label escaping, bounded series (overflow counted), basis expiry from a hand-filled config,
 * records gauges, a concurrent scrape during updates, and the text format checked by
 * `promtool check metrics` when promtool is installed. Also prints the hot-path cost.
 */
#include "metrics.h"
#include "test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool has_line(const bg_buf_t *b, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = b->data; p && (p = strstr(p, line)); p++)
        if ((p == b->data || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

#define CHECK_LINE(b, line)                                                              \
    do {                                                                                 \
        if (!has_line(b, line))                                                          \
            bg_test_fail(__FILE__, __LINE__, "missing line: %s", line);                  \
    } while (0)

/* The sum of every sample of `family` (its name followed by '{' or ' '). */
static uint64_t family_sum(const bg_buf_t *b, const char *family)
{
    uint64_t sum = 0;
    size_t fl = strlen(family);
    for (const char *p = b->data; p && *p;) {
        if (strncmp(p, family, fl) == 0 && (p[fl] == '{' || p[fl] == ' ')) {
            const char *sp = strchr(p, '\n');
            const char *v = sp ? sp : p + strlen(p);
            while (v > p && v[-1] != ' ')
                v--;
            sum += strtoull(v, NULL, 10);
        }
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return sum;
}

static size_t count_prefix(const bg_buf_t *b, const char *prefix)
{
    size_t n = 0, pl = strlen(prefix);
    for (const char *p = b->data; p && *p;) {
        if (strncmp(p, prefix, pl) == 0)
            n++;
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

static void test_sums_across_workers(void)
{
    bg_metrics_t *m = bg_metrics_create(3, 0);
    for (unsigned w = 0; w < 3; w++)
        for (unsigned i = 0; i <= w; i++) /* 1 + 2 + 3 = 6 */
            bg_metrics_transfer(m, w, "acme", "US", "third_country", BG_DECISION_ALLOW, BG_MECH_SCC, 0.002);
    bg_metrics_transfer(m, 1, "acme", "", NULL, BG_DECISION_BLOCK, BG_MECH_NONE, 0.0003);
    bg_metrics_transfer(m, 2, "acme", "US", "third_country", BG_DECISION_ENCRYPT, BG_MECH_NONE, 45);
    bg_metrics_transfer(m, 7, "ignored", "US", "x", BG_DECISION_ALLOW, BG_MECH_SCC, 1); /* no such worker */
    bg_metrics_findings(m, 0, "identifier", "email", 2);
    bg_metrics_findings(m, 2, "identifier", "email", 5);
    bg_metrics_findings(m, 1, "device", "ipv4", 1);
    bg_metrics_categories(m, 0, "acme", 1u << BG_CAT_IDENTIFIER | 1u << BG_CAT_DEVICE);
    bg_metrics_categories(m, 1, "acme", 1u << BG_CAT_IDENTIFIER);
    bg_metrics_block(m, 1, "acme", "no_basis: identifier,device");
    bg_metrics_block(m, 2, "acme", "NO_BASIS");
    bg_metrics_block(m, 0, "acme", "");
    bg_metrics_would_block(m, 2, "acme", "no_transfer_basis: identifier");
    bg_metrics_upstream_error(m, 0, "acme", "connect");
    bg_metrics_upstream_error(m, 1, "acme", "connect");
    bg_metrics_conn(m, 0, 1);
    bg_metrics_conn(m, 0, 1);
    bg_metrics_conn(m, 1, 1);
    bg_metrics_conn(m, 2, -1);
    bg_metrics_inflight(m, 2, 1);
    for (int s = 100; s < 700; s += 50)
        bg_metrics_request(m, (unsigned)(s / 50) % 3, s);
    bg_metrics_request(m, 0, 451);
    bg_metrics_config_reload(m, true);
    bg_metrics_config_reload(m, true);
    bg_metrics_config_reload(m, false);

    bg_buf_t b;
    bg_buf_init(&b);
    bg_metrics_render(m, NULL, NULL, 0, &b);
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"acme\",dest_country=\"US\",dest_region=\"third_country\","
                   "decision=\"allow\",mechanism=\"scc\"} 6");
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"acme\",dest_country=\"unknown\",dest_region=\"unknown\","
                   "decision=\"block\",mechanism=\"none\"} 1");
    CHECK_INT(count_prefix(&b, "bordergate_transfers_total{"), 3);
    CHECK(strstr(b.data, "ignored") == NULL);
    CHECK_LINE(&b, "bordergate_personal_data_findings_total{category=\"identifier\",detector=\"email\"} 7");
    CHECK_LINE(&b, "bordergate_personal_data_findings_total{category=\"device\",detector=\"ipv4\"} 1");
    CHECK_LINE(&b, "bordergate_transfer_categories_total{vendor=\"acme\",category=\"identifier\"} 2");
    CHECK_LINE(&b, "bordergate_transfer_categories_total{vendor=\"acme\",category=\"device\"} 1");
    CHECK_LINE(&b, "bordergate_blocks_total{vendor=\"acme\",reason=\"no_basis\"} 2");
    CHECK_LINE(&b, "bordergate_blocks_total{vendor=\"acme\",reason=\"unknown\"} 1");
    CHECK_INT(count_prefix(&b, "bordergate_blocks_total{"), 2); /* the report-only one is not a block */
    CHECK_LINE(&b, "bordergate_report_only_blocks_total{vendor=\"acme\",reason=\"no_transfer_basis\"} 1");
    CHECK_LINE(&b, "bordergate_upstream_errors_total{vendor=\"acme\",kind=\"connect\"} 2");
    CHECK_LINE(&b, "bordergate_open_connections 2");
    CHECK_LINE(&b, "bordergate_inflight_exchanges 1");
    CHECK_LINE(&b, "bordergate_http_responses_total{code=\"1xx\"} 2");
    CHECK_LINE(&b, "bordergate_http_responses_total{code=\"4xx\"} 3");
    CHECK_LINE(&b, "bordergate_http_responses_total{code=\"5xx\"} 2");
    CHECK_LINE(&b, "bordergate_http_responses_total{code=\"other\"} 2");
    CHECK_LINE(&b, "bordergate_config_reloads_total{result=\"success\"} 2");
    CHECK_LINE(&b, "bordergate_config_reloads_total{result=\"error\"} 1");
    /* Histogram: 6 × 2 ms for allow; cumulative buckets, +Inf = _count. */
    CHECK_LINE(&b, "bordergate_request_duration_seconds_bucket{decision=\"allow\",le=\"0.001\"} 0");
    CHECK_LINE(&b, "bordergate_request_duration_seconds_bucket{decision=\"allow\",le=\"0.0025\"} 6");
    CHECK_LINE(&b, "bordergate_request_duration_seconds_bucket{decision=\"allow\",le=\"+Inf\"} 6");
    CHECK_LINE(&b, "bordergate_request_duration_seconds_count{decision=\"allow\"} 6");
    CHECK_LINE(&b, "bordergate_request_duration_seconds_sum{decision=\"allow\"} 0.012000000");
    CHECK_LINE(&b, "bordergate_request_duration_seconds_bucket{decision=\"block\",le=\"0.0005\"} 1");
    CHECK_LINE(&b, "bordergate_request_duration_seconds_bucket{decision=\"encrypt\",le=\"30\"} 0");
    CHECK_LINE(&b, "bordergate_request_duration_seconds_bucket{decision=\"encrypt\",le=\"+Inf\"} 1");
    CHECK_LINE(&b, "bordergate_request_duration_seconds_sum{decision=\"encrypt\"} 45.000000000");
    CHECK_LINE(&b, "bordergate_metrics_series_dropped_total 0");
    CHECK(strstr(b.data, "records_written") == NULL);             /* no writer given */
    CHECK(strstr(b.data, "geoip_database_build") == NULL);        /* epoch 0: omitted */
    CHECK_LINE(&b, "bordergate_build_info{version=\"" BG_VERSION "\",config_version=\"\"} 1");
    bg_buf_dispose(&b);
    bg_metrics_destroy(m);
}

static void test_escaping_and_config(void)
{
    bg_metrics_t *m = bg_metrics_create(1, 0);
    bg_metrics_upstream_error(m, 0, "we\"ird\\ven\ndor", "tls");
    bg_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.version, "abc123");
    bg_vendor_t v[3];
    memset(v, 0, sizeof v);
    v[0].name = "acme-analytics";
    v[0].has_scc = true;
    v[0].scc.expires = 1803859200; /* 2027-03-01 */
    v[1].name = "llm-provider";
    v[1].has_dpf = true;
    v[1].dpf.certified = true;
    v[1].dpf.expires = 1790812800;
    v[2].name = "helpdesk-eu"; /* no basis: no series */
    cfg.vendors = v;
    cfg.nvendors = 3;
    char dir[] = "/tmp/bg-metrics-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/t.jsonl", dir);
    cfg.records.path = path;
    bg_records_t *rec = NULL;
    char err[256];
    CHECK_INT(bg_records_open(&cfg, &rec, err, sizeof err), 0);
    bg_buf_t b;
    bg_buf_init(&b);
    bg_metrics_render(m, &cfg, rec, 1764000000, &b);
    CHECK_LINE(&b, "bordergate_upstream_errors_total{vendor=\"we\\\"ird\\\\ven\\ndor\",kind=\"tls\"} 1");
    CHECK_LINE(&b, "bordergate_transfer_basis_expiry_timestamp_seconds{vendor=\"acme-analytics\",basis=\"scc\"} 1803859200");
    CHECK_LINE(&b, "bordergate_transfer_basis_expiry_timestamp_seconds{vendor=\"llm-provider\",basis=\"dpf\"} 1790812800");
    CHECK(strstr(b.data, "helpdesk-eu") == NULL);
    CHECK_LINE(&b, "bordergate_geoip_database_build_timestamp_seconds 1764000000");
    CHECK_LINE(&b, "bordergate_records_written_total 0");
    CHECK_LINE(&b, "bordergate_records_queue_depth 0");
    CHECK_LINE(&b, "bordergate_records_healthy 1");
    CHECK_LINE(&b, "bordergate_build_info{version=\"" BG_VERSION "\",config_version=\"abc123\"} 1");
    bg_records_close(rec);
    bg_buf_dispose(&b);
    bg_metrics_destroy(m);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

static void test_bounded_series(void)
{
    bg_metrics_t *m = bg_metrics_create(2, 0);
    char vendor[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(vendor, sizeof vendor, "v%d", i);
        bg_metrics_upstream_error(m, 0, vendor, "connect");
    }
    bg_metrics_upstream_error(m, 0, "v1", "connect"); /* existing series still count */
    bg_metrics_upstream_error(m, 1, "other-worker", "connect"); /* the other worker has room */
    bg_buf_t b;
    bg_buf_init(&b);
    bg_metrics_render(m, NULL, NULL, 0, &b);
    /* 4096 series of worker 0, one of worker 1, and the overflow series with the 904 that found
     * worker 0's table full: the family still sums to the 5002 errors counted. */
    CHECK_INT(count_prefix(&b, "bordergate_upstream_errors_total{"), BG_METRICS_SERIES_DEFAULT + 2);
    CHECK_INT(family_sum(&b, "bordergate_upstream_errors_total"), 5002);
    CHECK_LINE(&b, "bordergate_upstream_errors_total{overflow=\"true\"} 904");
    CHECK_LINE(&b, "bordergate_metrics_series_dropped_total 904");
    CHECK_LINE(&b, "bordergate_upstream_errors_total{vendor=\"v1\",kind=\"connect\"} 2");
    CHECK_LINE(&b, "bordergate_upstream_errors_total{vendor=\"other-worker\",kind=\"connect\"} 1");
    /* A very long label value is capped, not grown. */
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    bg_metrics_upstream_error(m, 1, big, "connect");
    bg_buf_reset(&b);
    bg_metrics_render(m, NULL, NULL, 0, &b);
    CHECK(strstr(b.data, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxx\",kind") != NULL);
    bg_buf_dispose(&b);
    bg_metrics_destroy(m);
}

/* A bound of 16 series per worker and more label sets than that: every family's samples still
 * sum to exactly what was counted (the rest in its overflow series), and the dropped counter
 * says how many increments lost their labels. */
static void test_overflow_keeps_totals_exact(void)
{
    bg_metrics_t *m = bg_metrics_create(2, 16);
    char vendor[32];
    uint64_t transfers = 0, findings = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(vendor, sizeof vendor, "vendor-%d", i);
        for (unsigned w = 0; w < 2; w++)
            for (int k = 0; k <= i % 3; k++) {
                bg_metrics_transfer(m, w, vendor, "US", "third_country", BG_DECISION_ALLOW, BG_MECH_SCC, 0.002);
                transfers++;
            }
        bg_metrics_findings(m, 1, "identifier", vendor, 3); /* n > 1: the overflow adds n */
        findings += 3;
    }
    bg_buf_t b;
    bg_buf_init(&b);
    bg_metrics_render(m, NULL, NULL, 0, &b);
    CHECK_INT(family_sum(&b, "bordergate_transfers_total"), transfers);
    CHECK_INT(family_sum(&b, "bordergate_personal_data_findings_total"), findings);
    CHECK_INT(family_sum(&b, "bordergate_request_duration_seconds_count"), transfers);
    CHECK_INT(count_prefix(&b, "bordergate_transfers_total{vendor="), 16); /* worker 1's table also holds findings */
    CHECK(has_line(&b, "bordergate_transfers_total{vendor=\"vendor-0\",dest_country=\"US\",dest_region=\"third_country\","
                       "decision=\"allow\",mechanism=\"scc\"} 2"));
    CHECK_INT(count_prefix(&b, "bordergate_transfers_total{overflow=\"true\"} "), 1);
    CHECK_INT(count_prefix(&b, "bordergate_personal_data_findings_total{overflow=\"true\"} "), 1);
    CHECK(strstr(b.data, "bordergate_metrics_series_dropped_total 0\n") == NULL);
    CHECK_INT(count_prefix(&b, "bordergate_blocks_total{"), 0); /* no overflow line for an untouched family */
    bg_buf_dispose(&b);
    bg_metrics_destroy(m);
}

/* bg_metrics_transfer remembers the last inputs' series: a change in any one input, and a full
 * table (nothing to remember), still count in the right series. */
static void test_transfer_memo(void)
{
    bg_metrics_t *m = bg_metrics_create(1, 0);
    char v[8];
    strcpy(v, "acme");
    for (int i = 0; i < 3; i++)
        bg_metrics_transfer(m, 0, v, "US", "third_country", BG_DECISION_ALLOW, BG_MECH_SCC, 0.001);
    strcpy(v, "acmf"); /* the same pointer, another vendor */
    bg_metrics_transfer(m, 0, v, "US", "third_country", BG_DECISION_ALLOW, BG_MECH_SCC, 0.001);
    bg_metrics_transfer(m, 0, "acme", "DE", "third_country", BG_DECISION_ALLOW, BG_MECH_SCC, 0.001);
    bg_metrics_transfer(m, 0, "acme", "DE", "eea", BG_DECISION_ALLOW, BG_MECH_SCC, 0.001);
    bg_metrics_transfer(m, 0, "acme", "DE", "eea", BG_DECISION_BLOCK, BG_MECH_SCC, 0.001);
    bg_metrics_transfer(m, 0, "acme", "DE", "eea", BG_DECISION_BLOCK, BG_MECH_NONE, 0.001);
    bg_metrics_transfer(m, 0, "acme", "DE", "eea", BG_DECISION_BLOCK, BG_MECH_NONE, 0.001);
    bg_metrics_transfer(m, 0, "acme", "", NULL, BG_DECISION_BLOCK, BG_MECH_NONE, 0.001);
    bg_metrics_transfer(m, 0, "acme", NULL, "", BG_DECISION_BLOCK, BG_MECH_NONE, 0.001);
    bg_buf_t b;
    bg_buf_init(&b);
    bg_metrics_render(m, NULL, NULL, 0, &b);
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"acme\",dest_country=\"US\",dest_region=\"third_country\",decision=\"allow\",mechanism=\"scc\"} 3");
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"acmf\",dest_country=\"US\",dest_region=\"third_country\",decision=\"allow\",mechanism=\"scc\"} 1");
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"acme\",dest_country=\"DE\",dest_region=\"third_country\",decision=\"allow\",mechanism=\"scc\"} 1");
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"acme\",dest_country=\"DE\",dest_region=\"eea\",decision=\"allow\",mechanism=\"scc\"} 1");
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"acme\",dest_country=\"DE\",dest_region=\"eea\",decision=\"block\",mechanism=\"scc\"} 1");
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"acme\",dest_country=\"DE\",dest_region=\"eea\",decision=\"block\",mechanism=\"none\"} 2");
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"acme\",dest_country=\"unknown\",dest_region=\"unknown\",decision=\"block\",mechanism=\"none\"} 2");
    /* Full table: the transfer is dropped every time, never counted in a remembered series. */
    char vendor[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(vendor, sizeof vendor, "v%d", i);
        bg_metrics_upstream_error(m, 0, vendor, "connect");
    }
    bg_metrics_transfer(m, 0, "new", "US", "x", BG_DECISION_ALLOW, BG_MECH_SCC, 0.001);
    bg_metrics_transfer(m, 0, "new", "US", "x", BG_DECISION_ALLOW, BG_MECH_SCC, 0.001);
    bg_buf_reset(&b);
    bg_metrics_render(m, NULL, NULL, 0, &b);
    CHECK(strstr(b.data, "vendor=\"new\"") == NULL);
    CHECK_LINE(&b, "bordergate_transfers_total{overflow=\"true\"} 2"); /* counted, without labels */
    CHECK_LINE(&b, "bordergate_metrics_series_dropped_total 913");
    bg_buf_dispose(&b);
    bg_metrics_destroy(m);
}

typedef struct {
    bg_metrics_t *m;
    unsigned w;
} thr_t;

static void *hammer(void *arg)
{
    thr_t *t = arg;
    for (int i = 0; i < 100000; i++) {
        bg_metrics_transfer(t->m, t->w, i % 2 ? "a" : "b", "US", "third_country", BG_DECISION_ALLOW, BG_MECH_DPF,
                            0.001);
        bg_metrics_request(t->m, t->w, 200);
    }
    return NULL;
}

static void test_concurrent_scrape(void)
{
    bg_metrics_t *m = bg_metrics_create(4, 0);
    pthread_t th[4];
    thr_t t[4];
    for (unsigned i = 0; i < 4; i++) {
        t[i] = (thr_t){m, i};
        pthread_create(&th[i], NULL, hammer, &t[i]);
    }
    bg_buf_t b;
    bg_buf_init(&b);
    for (int i = 0; i < 20; i++) { /* scrapes while workers write: must not crash or go backwards */
        bg_buf_reset(&b);
        bg_metrics_render(m, NULL, NULL, 0, &b);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    bg_buf_reset(&b);
    bg_metrics_render(m, NULL, NULL, 0, &b);
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"a\",dest_country=\"US\",dest_region=\"third_country\","
                   "decision=\"allow\",mechanism=\"dpf\"} 200000");
    CHECK_LINE(&b, "bordergate_transfers_total{vendor=\"b\",dest_country=\"US\",dest_region=\"third_country\","
                   "decision=\"allow\",mechanism=\"dpf\"} 200000");
    CHECK_LINE(&b, "bordergate_http_responses_total{code=\"2xx\"} 400000");
    CHECK_LINE(&b, "bordergate_request_duration_seconds_count{decision=\"allow\"} 400000");
    bg_buf_dispose(&b);
    bg_metrics_destroy(m);
}

static void test_promtool(void)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "  (promtool not installed: format check skipped)\n");
        return;
    }
    bg_metrics_t *m = bg_metrics_create(2, 0);
    bg_metrics_transfer(m, 0, "acme", "US", "third_country", BG_DECISION_ALLOW, BG_MECH_SCC, 0.01);
    bg_metrics_transfer(m, 1, "we\"ird", "", "", BG_DECISION_BLOCK, BG_MECH_NONE, 2);
    bg_metrics_findings(m, 0, "identifier", "email", 3);
    bg_metrics_categories(m, 0, "acme", 3);
    bg_metrics_block(m, 1, "we\"ird", "no_basis: x");
    bg_metrics_upstream_error(m, 1, "acme", "tls");
    bg_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    bg_vendor_t v = {0};
    v.name = "acme";
    v.has_scc = true;
    v.scc.expires = 1803859200;
    cfg.vendors = &v;
    cfg.nvendors = 1;
    bg_buf_t b;
    bg_buf_init(&b);
    bg_metrics_render(m, &cfg, NULL, 1764000000, &b);
    char path[] = "/tmp/bg-metrics-prom-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, b.data, b.len), b.len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1", path, path);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat %s.out >&2", path);
        CHECK_INT(system(cmd), 0);
    }
    CHECK_INT(rc, 0);
    snprintf(cmd, sizeof cmd, "rm -f %s %s.out", path, path);
    CHECK_INT(system(cmd), 0);
    bg_buf_dispose(&b);
    bg_metrics_destroy(m);
}

static void test_hot_path_cost(void)
{
    bg_metrics_t *m = bg_metrics_create(1, 0);
    const char *vendors[] = {"acme-analytics", "helpdesk-eu", "llm-provider"};
    struct timespec a, z;
    int n = 1000000;
    /* Thread CPU time, not wall time: the figure holds on a loaded machine. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (int i = 0; i < n; i++)
        bg_metrics_transfer(m, 0, vendors[i % 3], "US", "third_country", BG_DECISION_ALLOW, BG_MECH_SCC, 0.003);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &z);
    double ns = ((z.tv_sec - a.tv_sec) * 1e9 + (z.tv_nsec - a.tv_nsec)) / n;
    fprintf(stderr, "  bench: bg_metrics_transfer %.0f ns CPU/call (1 worker, 3 series)\n", ns);
    CHECK(ns < 5000); /* a gross regression guard only */
    bg_metrics_destroy(m);
    /* Render cost with a full table. */
    m = bg_metrics_create(4, 0);
    char v[32];
    for (unsigned w = 0; w < 4; w++)
        for (int i = 0; i < 1000; i++) {
            snprintf(v, sizeof v, "vendor-%d", i % 250);
            bg_metrics_transfer(m, w, v, i % 2 ? "US" : "DE", "x", (bg_decision_kind_t)(i % 3), BG_MECH_SCC, 0.01);
        }
    bg_buf_t b;
    bg_buf_init(&b);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    bg_metrics_render(m, NULL, NULL, 0, &b);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &z);
    fprintf(stderr, "  bench: bg_metrics_render %.2f ms CPU for 4 workers x 1000 series (%zu bytes)\n",
            ((z.tv_sec - a.tv_sec) * 1e9 + (z.tv_nsec - a.tv_nsec)) / 1e6, b.len);
    bg_buf_dispose(&b);
    bg_metrics_destroy(m);
}

int main(void)
{
    RUN(test_sums_across_workers);
    RUN(test_escaping_and_config);
    RUN(test_bounded_series);
    RUN(test_transfer_memo);
    RUN(test_overflow_keeps_totals_exact);
    RUN(test_concurrent_scrape);
    RUN(test_promtool);
    RUN(test_hot_path_cost);
    return bg_test_done();
}
