/*
 * tests/tools/http1_bench.c — micro-benchmark of the HTTP/1.1 codec (not a test): parses a
 * typical client request head, a typical vendor response head and a chunked body in a
 * timing loop and prints ns per operation. Usage: http1_bench [iterations]. Single-threaded.
 */
#include "http1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char request[] =
    "POST /v1/customers?expand=default_source HTTP/1.1\r\n"
    "Host: api.vendor.example\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Language: en-GB,en;q=0.9\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 128\r\n"
    "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N\r\n"
    "X-Request-Id: 6f1c2a8e-3b7d-4e2f-9a1b-0c5d7e9f1a2b\r\n"
    "Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

static const char response[] =
    "HTTP/1.1 200 OK\r\n"
    "Date: Sun, 29 Nov 2026 10:45:00 GMT\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Content-Length: 512\r\n"
    "Connection: keep-alive\r\n"
    "Cache-Control: no-cache, no-store\r\n"
    "Request-Id: req_1234567890abcdef\r\n"
    "Strict-Transport-Security: max-age=63072000; includeSubDomains; preload\r\n"
    "\r\n";

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the host may be shared */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000000;
    static bg_h1_request_t req;
    static bg_h1_response_t resp;
    bg_h1_limits_t lim = {.max_header_bytes = 16384, .max_headers = 100, .max_uri = 8192};
    volatile long sink = 0;

    for (long i = 0; i < iters / 10; i++) /* warm up */
        sink += bg_h1_parse_request(request, sizeof request - 1, &lim, &req);
    double t0 = now_ns();
    for (long i = 0; i < iters; i++)
        sink += bg_h1_parse_request(request, sizeof request - 1, &lim, &req);
    double t1 = now_ns();
    if (bg_h1_parse_request(request, sizeof request - 1, &lim, &req) != (int)sizeof request - 1) {
        fprintf(stderr, "request did not parse: %s\n", req.error ? req.error : "partial");
        return 1;
    }
    printf("request head  %4zu bytes, %2zu fields: %7.1f ns/op  %6.2f GB/s\n", sizeof request - 1, req.nheaders,
           (t1 - t0) / (double)iters, (double)(sizeof request - 1) * (double)iters / (t1 - t0));

    t0 = now_ns();
    for (long i = 0; i < iters; i++)
        sink += bg_h1_parse_response(response, sizeof response - 1, false, &resp);
    t1 = now_ns();
    printf("response head %4zu bytes, %2zu fields: %7.1f ns/op  %6.2f GB/s\n", sizeof response - 1, resp.nheaders,
           (t1 - t0) / (double)iters, (double)(sizeof response - 1) * (double)iters / (t1 - t0));

    /* chunked: 64 chunks of 1 KiB, decoded in place from a fresh copy each round */
    enum { CHUNKS = 64, CHUNK = 1024 };
    static char body[CHUNKS * (CHUNK + 16) + 16], work[sizeof body];
    size_t n = 0;
    for (int c = 0; c < CHUNKS; c++) {
        n += (size_t)sprintf(body + n, "%x\r\n", CHUNK);
        memset(body + n, 'x', CHUNK);
        n += CHUNK;
        n += (size_t)sprintf(body + n, "\r\n");
    }
    n += (size_t)sprintf(body + n, "0\r\n\r\n");
    long rounds = iters / 200 + 1;
    double copy_ns = 0;
    t0 = now_ns();
    for (long i = 0; i < rounds; i++) {
        double c0 = now_ns();
        memcpy(work, body, n);
        copy_ns += now_ns() - c0;
        bg_h1_chunked_t d;
        bg_h1_chunked_init(&d);
        size_t used, out;
        if (bg_h1_chunked_decode(&d, work, n, &used, &out) != 0 || !d.done || out != CHUNKS * CHUNK) {
            fprintf(stderr, "chunked did not decode\n");
            return 1;
        }
        sink += (long)out;
    }
    t1 = now_ns();
    double dec = t1 - t0 - copy_ns;
    printf("chunked body  %4zu bytes, %d chunks: %7.1f ns/op  %6.2f GB/s (excluding the copy)\n", n, CHUNKS,
           dec / (double)rounds, (double)n * (double)rounds / dec);
    return sink == 42 ? 2 : 0;
}
