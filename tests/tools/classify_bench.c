/*
 * tools/classify_bench.c — classifier throughput: realistic JSON bodies (1 KiB–1 MiB, with and
 * without personal data; generated deterministically: API-style records with ids, timestamps,
 * prices, product names next to skus, prose, UUID request ids) and header-only requests.
 * Prints MB/s per body size and ns per header-only request, single thread.
 *   build/tests/tools/classify_bench [seconds-per-case (default 1)]
 *   build/tests/tools/classify_bench -n ITER   fixed iterations per case (for callgrind instruction counts)
 *   build/tests/tools/classify_bench -n ITER with|without   only the bodies with (without) personal data
 *   build/tests/tools/classify_bench -n ITER headers        only the header-only requests (ITER*100, in 1000s)
 *   build/tests/tools/classify_bench -n ITER post           only the POST leg's body (bench/compare.sh, issue #3)
 *   build/tests/tools/classify_bench -n ITER percall        per-request fixed costs as proxy/exchange.c pays
 *       them (init + classify + dispose per request, on a worker thread): a 1 KiB body with personal
 *       data (ITER requests) and the header-only request (ITER*100)
 *   build/tests/tools/classify_bench -n ITER percall body|headers   only one of the two
 * The `post` corpus is the 16 KiB body bench/compare.sh sends (built the same way as its python
 * snippet: order items with sku/qty/price_cents/note, an e-mail every 10th item, a "pad" string).
 * Classification runs as the gateway runs it (skip_locations: findings carry no path text, which
 * only `bordergate scan` and `explain` print); the timed table also gives each body with the path
 * text ("loc" yes), and BG_BENCH_LOCATIONS=1 makes every mode build it. BG_BENCH_SIZE=N runs
 * only the bodies of that size (e.g. 1024, for callgrind on the smallest body alone).
 */
#include "classify.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool want_loc; /* BG_BENCH_LOCATIONS=1: findings with their path text, as `scan` */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the figure is per core even on a busy machine */
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *const words[] = {"alpha", "quick", "shipment", "delivered", "warehouse", "pending", "review",
                                    "customer", "service", "premium", "standard", "monthly", "invoice", "blue",
                                    "large", "status", "update", "the", "and", "with", "for", "order", "item"};

static void prose(bg_buf_t *b, int nw)
{
    for (int i = 0; i < nw; i++)
        bg_buf_printf(b, "%s%s", i ? " " : "", words[rnd() % (sizeof words / sizeof words[0])]);
}

static void uuid(bg_buf_t *b)
{
    bg_buf_printf(b, "%08x-%04x-4%03x-a%03x-%08x%04x", rnd(), rnd() & 0xffff, rnd() & 0xfff, rnd() & 0xfff, rnd(),
                  rnd() & 0xffff);
}

/* One record; pii adds a customer block with name, email, phone, address and an IP. */
static void record(bg_buf_t *b, int i, bool pii)
{
    bg_buf_printf(b, "{\"id\":%d,\"request_id\":\"", 100000 + i);
    uuid(b);
    bg_buf_printf(b, "\",\"created_at\":\"2026-11-%02dT%02d:%02d:%02d.%03dZ\",\"updated_at_ms\":%llu,", 1 + rnd() % 28,
                  rnd() % 24, rnd() % 60, rnd() % 60, rnd() % 1000, 1700000000000ULL + rnd());
    bg_buf_printf(b, "\"status\":\"%s\",\"priority\":%u,\"active\":%s,\"score\":%u.%02u,", words[rnd() % 8], rnd() % 5,
                  rnd() & 1 ? "true" : "false", rnd() % 100, rnd() % 100);
    bg_buf_printf(b, "\"items\":[{\"sku\":\"SKU-%05u\",\"name\":\"Ergonomic Steel Chair\",\"price\":%u.%02u,\"qty\":%u},"
                     "{\"sku\":\"SKU-%05u\",\"name\":\"Small Cotton Gloves\",\"price\":%u.%02u,\"qty\":%u}],",
                  rnd() % 100000, rnd() % 1000, rnd() % 100, 1 + rnd() % 9, rnd() % 100000, rnd() % 1000, rnd() % 100,
                  1 + rnd() % 9);
    bg_buf_puts(b, "\"description\":\"");
    prose(b, 12 + rnd() % 20);
    bg_buf_printf(b, "\",\"tags\":[\"%s\",\"%s\"],\"metrics\":{\"views\":%u,\"ratio\":0.%04u,\"version\":\"%u.%u.%u\"}",
                  words[rnd() % 23], words[rnd() % 23], rnd() % 100000, rnd() % 10000, rnd() % 10, rnd() % 30,
                  rnd() % 100);
    if (pii)
        bg_buf_printf(b, ",\"customer\":{\"first_name\":\"Ann\",\"last_name\":\"Lee\",\"email\":\"ann.lee%u@example.com\","
                         "\"phone\":\"+1415555%04u\",\"address\":\"%u Main Street\",\"ip\":\"203.0.113.%u\"}",
                      rnd() % 1000, rnd() % 10000, rnd() % 999, rnd() % 255);
    bg_buf_puts(b, "}");
}

/* bench/compare.sh's POST body, byte for byte: json.dumps of {"order_id", "items"} grown while
 * it fits in 16384 - 40 bytes, then a "pad" string filling it to exactly 16384 bytes. */
static void make_post(bg_buf_t *b)
{
    bg_buf_t it;
    bg_buf_init(&it);
    bg_buf_reset(b);
    bg_buf_puts(b, "{\"order_id\": \"ORD-2026-000123\", \"items\": [");
    for (int i = 0;; i++) {
        bg_buf_reset(&it);
        bg_buf_printf(&it, "{\"sku\": \"SKU-%06d\", \"qty\": %d, \"price_cents\": %d, "
                           "\"note\": \"standard shipping, gift wrap: no\"", i, i % 7 + 1, 1999 + i);
        if (i % 10 == 0)
            bg_buf_printf(&it, ", \"email\": \"customer%d@example.com\"", i);
        bg_buf_puts(&it, "}");
        if (b->len + (i ? 2 : 0) + it.len + 2 > 16384 - 40)
            break;
        if (i)
            bg_buf_puts(b, ", ");
        bg_buf_append(b, it.data, it.len);
    }
    bg_buf_puts(b, "], \"pad\": \""); /* doc[:-1] + ', "pad": "': the doc's "]}" less its '}' */
    size_t pad = 16384 - b->len - 2;
    for (size_t k = 0; k < pad; k++)
        bg_buf_puts(b, "p");
    bg_buf_puts(b, "\"}");
    bg_buf_dispose(&it);
}

static void make_body(bg_buf_t *b, size_t target, bool pii)
{
    bg_buf_reset(b);
    bg_buf_puts(b, "{\"page\":1,\"data\":[");
    for (int i = 0; b->len + 2 < target; i++) {
        if (i)
            bg_buf_puts(b, ",");
        record(b, i, pii);
    }
    bg_buf_puts(b, "]}");
}

/* The header-only request: a typical set (one with personal data in cookie/UA/XFF). */
static bg_header_t hdrs[] = {
    {"Host", 0, "api.vendor.example", 0},
    {"User-Agent", 0, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0.0.0 Safari/537.36", 0},
    {"Accept", 0, "application/json", 0},
    {"Accept-Encoding", 0, "gzip, br", 0},
    {"Accept-Language", 0, "en-GB,en;q=0.9", 0},
    {"X-Request-Id", 0, "620476c1-43ad-4d5c-a7a6-c5780eb765ef", 0},
    {"Authorization", 0, "Bearer abcdefghijklmnopqrstuvwxyz012345", 0},
    {"Cookie", 0, "theme=dark; lang=en", 0},
    {"X-Forwarded-For", 0, "203.0.113.7", 0},
    {"Cache-Control", 0, "no-cache", 0},
};
static const char *const hdr_target = "/v2/orders?page=2&per_page=50&sort=-created_at";

static void hdrs_fill(void)
{
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) { /* lengths from the strings: no over-read */
        hdrs[i].name_len = strlen(hdrs[i].name);
        hdrs[i].value_len = strlen(hdrs[i].value);
    }
}

typedef struct {
    const bg_classifier_t *c;
    long iters;
    const char *which; /* NULL: both; "body" or "headers" */
} percall_t;

/* iters calls of init + classify + dispose on `in`: ns per call; *nf = the last call's findings. */
static double percall_loop(const bg_classifier_t *c, const bg_classify_input_t *in, long iters, size_t *nf)
{
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        bg_classification_t r;
        bg_classification_init(&r, c);
        bg_classify(c, in, &r);
        *nf = r.nfindings;
        bg_classification_dispose(&r);
    }
    return iters ? (now_s() - t0) / iters * 1e9 : 0;
}

/* Worker thread (glibc gives it a non-main arena, as the proxy's workers have): each request
 * gets its own bg_classification_t, as proxy/exchange.c does. */
static void *percall_cb(void *arg)
{
    percall_t *p = arg;
    bg_header_t ct = {"Content-Type", 12, "application/json", 16};
    bg_buf_t body;
    bg_buf_init(&body);
    make_body(&body, 1024, true);
    bg_classify_input_t in = {&ct, 1, "/v1/records", 11, body.data, body.len, false, false, 0, !want_loc};
    size_t nf = 0;
    long biters = p->which && strcmp(p->which, "body") != 0 ? 0 : p->iters;
    double ns = percall_loop(p->c, &in, biters, &nf);
    if (biters)
        printf("per-call 1 KiB body with personal data (%zu bytes): %.0f ns/request, %zu findings\n", body.len,
               ns, nf);
    bg_classify_input_t hin = {hdrs, sizeof hdrs / sizeof hdrs[0], hdr_target, strlen(hdr_target), NULL, 0,
                               false, false, 0, !want_loc};
    long hiters = p->which && strcmp(p->which, "headers") != 0 ? 0 : p->iters * 100;
    ns = percall_loop(p->c, &hin, hiters, &nf);
    if (hiters)
        printf("per-call header-only request: %.0f ns/request, %zu findings\n", ns, nf);
    bg_buf_dispose(&body);
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    long fixed = argc > 2 && strcmp(argv[1], "-n") == 0 ? atol(argv[2]) : 0; /* iterations, not time */
    const char *mode = fixed && argc > 3 ? argv[3] : NULL;
    int only = !mode ? -1 : strcmp(mode, "with") == 0 ? 1 : strcmp(mode, "without") == 0 ? 0
             : strcmp(mode, "headers") == 0 ? 2 : strcmp(mode, "post") == 0 ? 3
             : strcmp(mode, "percall") == 0 ? 4 : -1;
    const char *wl = getenv("BG_BENCH_LOCATIONS");
    want_loc = wl && strcmp(wl, "1") == 0;
    const char *ws = getenv("BG_BENCH_SIZE");
    size_t only_size = ws ? strtoul(ws, NULL, 10) : 0;
    char err[128];
    bg_classifier_t *c = bg_classifier_create(NULL, err, sizeof err);
    hdrs_fill();
    if (only == 4) {
        percall_t p = {c, fixed, argc > 4 ? argv[4] : NULL};
        pthread_t t;
        if (pthread_create(&t, NULL, percall_cb, &p) != 0)
            return 1;
        pthread_join(t, NULL);
        bg_classifier_destroy(c);
        return 0;
    }
    bg_classification_t r;
    bg_classification_init(&r, c);
    bg_header_t ct = {"Content-Type", 12, "application/json", 16};
    static const size_t sizes[] = {1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024};
    bg_buf_t body;
    bg_buf_init(&body);
    printf("%-8s %-9s %-4s %10s %10s %10s %9s %s\n", "body", "pii", "loc", "bytes", "MB/s", "ns/body", "findings",
           "unscannable");
    /* pii 0: without, 1: with, 2: the POST leg's body (one size). loc 0: as the gateway classifies
     * (no path text); loc 1: with each finding's path text, as `bordergate scan` (timed runs only). */
    for (int pii = 0; pii < 3; pii++) {
        if (only == 2 || (only >= 0 && pii != (only == 3 ? 2 : only)))
            continue; /* `headers` runs no body (its 2 is not the POST body's pii 2) */
        for (size_t k = 0; k < (pii == 2 ? 1 : sizeof sizes / sizeof sizes[0]); k++) {
            if (pii != 2 && only_size && sizes[k] != only_size)
                continue;
            if (pii == 2)
                make_post(&body);
            else
                make_body(&body, sizes[k], pii);
            for (int loc = want_loc; loc < (fixed ? want_loc + 1 : 2); loc++) {
                bg_classify_input_t in = {&ct, 1, "/v1/records", 11, body.data, body.len, false, false, 0, !loc};
                bg_classify(c, &in, &r); /* warm up */
                size_t iters = 0;
                double t0 = now_s(), t1;
                do {
                    for (int i = 0; i < 8; i++)
                        bg_classify(c, &in, &r);
                    iters += 8;
                    t1 = now_s();
                } while (fixed ? (long)iters < fixed : t1 - t0 < secs);
                double mbps = (double)body.len * iters / (t1 - t0) / 1e6;
                printf("%-8zu %-9s %-4s %10zu %10.0f %10.0f %9zu %s\n", pii == 2 ? body.len : sizes[k],
                       pii == 2 ? "post" : pii ? "with" : "without", loc ? "yes" : "no", body.len, mbps,
                       (t1 - t0) / iters * 1e9, r.nfindings, r.unscannable ? r.unscannable_reason : "no");
            }
        }
    }
    if (only == 3 || only == 0 || only == 1)
        goto done;
    /* Header-only requests. */
    bg_header_t *h = hdrs;
    const char *target = hdr_target;
    bg_classify_input_t in = {h, sizeof hdrs / sizeof hdrs[0], target, strlen(target), NULL, 0, false, false, 0,
                              !want_loc};
    size_t iters = 0;
    double t0 = now_s(), t1;
    do {
        for (int i = 0; i < 1000; i++)
            bg_classify(c, &in, &r);
        iters += 1000;
        t1 = now_s();
    } while (fixed ? (long)iters < fixed * 100 : t1 - t0 < secs);
    printf("header-only request (%zu headers + query): %.0f ns/request, %zu findings\n", sizeof hdrs / sizeof hdrs[0],
           (t1 - t0) / iters * 1e9, r.nfindings);
done:
    bg_buf_dispose(&body);
    bg_classification_dispose(&r);
    bg_classifier_destroy(c);
    return 0;
}
