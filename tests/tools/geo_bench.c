/*
 * geo_bench.c — lookups per second per core of bg_geo_lookup (uncached) and
 * bg_geo_cache_lookup (per-thread cache) on a database, for random public IPv4 and IPv6
 * addresses; optionally on T threads at once sharing one bg_geo_t (each with its own cache).
 * Also `--check PATH [IP...]`: open a database the way bordergate does, print its metadata and
 * the country of each IP (used by config/geoip/update.sh when mmdblookup is missing).
 * A tool, not a test: nothing here asserts.
 *
 * usage: geo_bench [--db PATH] [--seconds S] [--threads T] [--working-set N] [--cache N]
 *        geo_bench --check PATH [IP...]
 */
#include "geo.h"
#include "util.h"

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    struct sockaddr_storage *addrs;
    size_t n;
} addr_set_t;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static bool v4_public(uint32_t a)
{
    uint8_t o1 = (uint8_t)(a >> 24), o2 = (uint8_t)(a >> 16);
    if (o1 == 0 || o1 == 10 || o1 == 127 || o1 >= 224)
        return false;
    if (o1 == 100 && (o2 & 0xc0) == 64)
        return false;
    if ((o1 == 169 && o2 == 254) || (o1 == 172 && (o2 & 0xf0) == 16) || (o1 == 192 && o2 == 168))
        return false;
    return true;
}

/* n random public IPv4 addresses, or IPv6 in 2000::/3; known_only: only addresses the database
 * knows (the realistic case for a vendor address, and the longest tree walks). */
static void make_set(addr_set_t *s, size_t n, int family, bool known_only, const bg_geo_t *geo, uint64_t seed)
{
    s->addrs = calloc(n, sizeof *s->addrs);
    s->n = n;
    if (!s->addrs)
        abort();
    uint64_t r = seed;
    for (size_t i = 0; i < n;) {
        struct sockaddr_storage *ss = &s->addrs[i];
        memset(ss, 0, sizeof *ss);
        if (family == AF_INET) {
            uint32_t a = (uint32_t)rng_next(&r);
            if (!v4_public(a))
                continue;
            struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
            s4->sin_family = AF_INET;
            s4->sin_addr.s_addr = htonl(a);
        } else {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
            uint64_t hi = rng_next(&r), lo = rng_next(&r);
            s6->sin6_family = AF_INET6;
            for (int b = 0; b < 8; b++) {
                s6->sin6_addr.s6_addr[b] = (uint8_t)(hi >> (56 - 8 * b));
                s6->sin6_addr.s6_addr[8 + b] = (uint8_t)(lo >> (56 - 8 * b));
            }
            s6->sin6_addr.s6_addr[0] = (uint8_t)(0x20 | (s6->sin6_addr.s6_addr[0] & 0x1f)); /* 2000::/3 */
        }
        if (known_only) {
            char cc[3];
            if (bg_geo_lookup(geo, NULL, 0, (struct sockaddr *)ss, cc) != 0)
                continue;
        }
        i++;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    const bg_geo_t *geo;
    const addr_set_t *set;
    size_t working_set; /* addresses cycled through (cached runs) */
    size_t cache_entries; /* 0: uncached */
    double seconds;
    /* out */
    double rate;
    double known;
    double hit_rate;
} job_t;

static void *run_job(void *arg)
{
    job_t *j = arg;
    bg_geo_cache_t *c = j->cache_entries ? bg_geo_cache_create(j->cache_entries) : NULL;
    size_t n = j->working_set && j->working_set < j->set->n ? j->working_set : j->set->n;
    uint64_t done = 0, known = 0;
    char cc[3];
    double t0 = now_s(), t1;
    do {
        for (int rep = 0; rep < 4; rep++)
            for (size_t i = 0; i < n; i++) {
                const struct sockaddr *sa = (const struct sockaddr *)&j->set->addrs[i];
                int rc = c ? bg_geo_cache_lookup(c, j->geo, NULL, 0, sa, cc) : bg_geo_lookup(j->geo, NULL, 0, sa, cc);
                known += rc == 0;
            }
        done += 4 * n;
        t1 = now_s();
    } while (t1 - t0 < j->seconds);
    j->rate = (double)done / (t1 - t0);
    j->known = (double)known / (double)done;
    uint64_t hits = 0, misses = 0;
    bg_geo_cache_stats(c, &hits, &misses);
    j->hit_rate = hits + misses ? (double)hits / (double)(hits + misses) : 0;
    bg_geo_cache_destroy(c);
    return NULL;
}

static void bench(const char *label, const bg_geo_t *geo, const addr_set_t *set, size_t working_set,
                  size_t cache_entries, double seconds, int threads)
{
    job_t *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (!jobs || !tids)
        abort();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job_t){.geo = geo, .set = set, .working_set = working_set, .cache_entries = cache_entries,
                          .seconds = seconds};
        if (threads == 1)
            run_job(&jobs[t]);
        else if (pthread_create(&tids[t], NULL, run_job, &jobs[t]) != 0)
            abort();
    }
    double sum = 0, min = 1e300;
    for (int t = 0; t < threads; t++) {
        if (threads > 1)
            pthread_join(tids[t], NULL);
        sum += jobs[t].rate;
        if (jobs[t].rate < min)
            min = jobs[t].rate;
    }
    printf("%-34s %9.2f M/s per core", label, sum / threads / 1e6);
    if (threads > 1)
        printf(" (min %.2f, total %.2f M/s on %d threads)", min / 1e6, sum / 1e6, threads);
    printf("  known %5.1f%%", jobs[0].known * 100);
    if (cache_entries)
        printf("  hit %5.1f%%", jobs[0].hit_rate * 100);
    printf("\n");
    free(jobs);
    free(tids);
}

/* The floor: libmaxminddb's own lookup alone (no value decoding, no overrides), same addresses. */
static void bench_raw(const char *label, const char *path, const addr_set_t *set, double seconds)
{
    MMDB_s m;
    if (MMDB_open(path, MMDB_MODE_MMAP, &m) != MMDB_SUCCESS)
        return;
    uint64_t done = 0, found = 0;
    double t0 = now_s(), t1;
    do {
        for (size_t i = 0; i < set->n; i++) {
            int e;
            MMDB_lookup_result_s r = MMDB_lookup_sockaddr(&m, (const struct sockaddr *)&set->addrs[i], &e);
            found += r.found_entry;
        }
        done += set->n;
        t1 = now_s();
    } while (t1 - t0 < seconds);
    printf("%-34s %9.2f M/s per core  known %5.1f%%\n", label, (double)done / (t1 - t0) / 1e6,
           100.0 * (double)found / (double)done);
    MMDB_close(&m);
}

static int check(const char *path, int nip, char **ips)
{
    bg_geo_t *geo = NULL;
    char err[512];
    if (bg_geo_open(path, BG_GEO_SCHEMA_AUTO, true, &geo, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    static const char *const schemas[] = {"auto (both tried)", "maxmind (country.iso_code)", "dbip (country_code)"};
    char when[32];
    int64_t now = bg_now_ms() / 1000;
    printf("database_type %s\n", bg_geo_database_type(geo));
    printf("build_epoch %lld %s\n", (long long)bg_geo_build_epoch(geo),
           bg_format_rfc3339_ms(bg_geo_build_epoch(geo) * 1000, when));
    printf("age_days %d\n", bg_geo_age_days(geo, now));
    printf("schema %s\n", schemas[bg_geo_schema(geo)]);
    printf("ip_version %d\nnode_count %u\n", bg_geo_ip_version(geo), bg_geo_node_count(geo));
    int rc = 0;
    for (int i = 0; i < nip; i++) {
        struct sockaddr_storage ss;
        char cc[3];
        if (bg_geo_parse_addr(ips[i], &ss) != 0) {
            fprintf(stderr, "%s: not an IP address\n", ips[i]);
            rc = 1;
            continue;
        }
        bg_geo_lookup(geo, NULL, 0, (struct sockaddr *)&ss, cc);
        printf("%s %s\n", ips[i], cc[0] ? cc : "-");
    }
    bg_geo_close(geo);
    return rc;
}

int main(int argc, char **argv)
{
    const char *db = "config/geoip/dbip-country-lite.mmdb";
    double seconds = 1.0;
    int threads = 1;
    size_t working_set = 1024, cache = 4096;
    if (argc >= 3 && strcmp(argv[1], "--check") == 0)
        return check(argv[2], argc - 3, argv + 3);
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--db") == 0 && v)
            db = v, i++;
        else if (strcmp(argv[i], "--seconds") == 0 && v)
            seconds = atof(v), i++;
        else if (strcmp(argv[i], "--threads") == 0 && v)
            threads = atoi(v), i++;
        else if (strcmp(argv[i], "--working-set") == 0 && v)
            working_set = strtoul(v, NULL, 10), i++;
        else if (strcmp(argv[i], "--cache") == 0 && v)
            cache = strtoul(v, NULL, 10), i++;
        else {
            fprintf(stderr, "usage: geo_bench [--db PATH] [--seconds S] [--threads T] [--working-set N] [--cache N]\n"
                            "       geo_bench --check PATH [IP...]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 256 || seconds <= 0 || working_set == 0 || cache == 0) {
        fprintf(stderr, "geo_bench: bad arguments\n");
        return 2;
    }
    bg_geo_t *geo = NULL;
    char err[512];
    if (bg_geo_open(db, BG_GEO_SCHEMA_AUTO, true, &geo, err, sizeof err) != 0) {
        fprintf(stderr, "geo_bench: %s\n", err);
        return 1;
    }
    printf("database %s (%s, %u nodes), %d thread(s), %.1f s per run\n", db, bg_geo_database_type(geo),
           bg_geo_node_count(geo), threads, seconds);
    enum { N = 1 << 20 };
    addr_set_t v4, v6, v6k;
    make_set(&v4, N, AF_INET, false, geo, 0x9e3779b97f4a7c15ull);
    make_set(&v6, N, AF_INET6, false, geo, 0xc2b2ae3d27d4eb4full);
    make_set(&v6k, N / 4, AF_INET6, true, geo, 0x165667b19e3779f9ull);

    char label[128];
    if (threads == 1)
        bench_raw("libmaxminddb alone, IPv4 (same 1M)", db, &v4, seconds);
    bench("uncached IPv4 (1M random public)", geo, &v4, 0, 0, seconds, threads);
    bench("uncached IPv6 (1M random 2000::/3)", geo, &v6, 0, 0, seconds, threads);
    bench("uncached IPv6 (256k with a country)", geo, &v6k, 0, 0, seconds, threads);
    snprintf(label, sizeof label, "cached IPv4 (%zu addrs, %zu slots)", working_set, cache);
    bench(label, geo, &v4, working_set, cache, seconds, threads);
    snprintf(label, sizeof label, "cached IPv6 (%zu addrs, %zu slots)", working_set, cache);
    bench(label, geo, &v6k, working_set, cache, seconds, threads);
    snprintf(label, sizeof label, "cached IPv4 (%zu addrs, 65536 slots)", working_set);
    bench(label, geo, &v4, working_set, 65536, seconds, threads);
    bench("cached IPv4 (1M addrs, 4096 slots)", geo, &v4, 0, 4096, seconds, threads);
    free(v4.addrs);
    free(v6.addrs);
    free(v6k.addrs);
    bg_geo_close(geo);
    return 0;
}
