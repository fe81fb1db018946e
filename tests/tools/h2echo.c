/*
 * h2echo.c — test upstream for HTTP/2 towards vendors: a TLS server (ALPN h2; a minimal
 * HTTP/1.1, Content-Length bodies only, for clients that do not offer h2) answering each
 * stream with JSON of what it saw: protocol, method, :path, :authority, :scheme, headers, body length and SHA-256,
 * connection number. Paths with special behaviour: /rst (RST_STREAM before answering),
 * /stall (never answers), /cut (half a body, then GOAWAY and close), /refuse-once (the first
 * one gets GOAWAY below its stream id), /echo-body (the request body back, as JSON),
 * /big?n=N (N bytes of body), /_stats (connections accepted so far, still open, GOAWAYs received),
 * /trailers (the JSON, then trailers: grpc-status, grpc-message, x-checksum and fields not allowed
 * in trailers; /trailers?cl also declares content-length; /trailers?big adds a 20,000-byte field;
 * /trailers?section=N pads them with one x-big field to N bytes of "name: value\r\n" lines;
 * /trailers?fields=N adds x-tI fields to make N fields in all, up to 1,000).
 * /empty?ms=N: a head declaring content-length: 0 without END_STREAM; N ms later (default 0) the
 * stream ends with an empty DATA frame, or with the /trailers fields when the path says "trailers"
 * (a vendor whose answer is bodiless by its length but ends later), or, when it says "rst", is
 * reset (RST_STREAM INTERNAL_ERROR: a vendor that fails after such a head).
 * Request trailers are echoed in the JSON as "trailers".
 * /slow-read?ms=N: after each DATA chunk of the request body the connection's thread sleeps N ms
 * (default 20): a vendor that takes an upload slowly. With H2ECHO_WINDOW=BYTES in the environment
 * the server's stream and connection windows are that large (a vendor that lets a client send a
 * large body at once, so it waits in the client's buffers rather than behind flow control).
 * Usage: h2echo PORT CERT KEY [MAX_CONCURRENT_STREAMS [ADDRESS (default 127.0.0.1)]]. One thread per connection; test only.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H2ECHO_MAX_TRAILERS 1000 /* x-tI fields /trailers?fields=N may add */

static atomic_int nconns;
static atomic_int nactive;
static atomic_int ngoaways; /* GOAWAY frames received from clients (the gateway) */
static atomic_int refused_once;
static uint32_t max_streams = 100;

typedef struct req {
    int32_t id;
    char method[16], path[512], authority[256], scheme[16];
    char *hdrs;      /* JSON object members */
    size_t hlen, hcap;
    char *trs;       /* request trailers, JSON object members */
    size_t tlen, tcap;
    bool trailer_frame; /* the request ended with a trailing HEADERS frame */
    bool send_trailers;
    EVP_MD_CTX *md;
    uint64_t body_len;
    char *body;      /* kept for /echo-body (bounded) */
    size_t blen;
    char *resp;      /* response body */
    size_t rlen, roff;
    uint64_t big_left;
    struct req *next;
} req_t;

typedef struct {
    SSL *ssl;
    int conn;
    req_t *reqs;
    bool close_after;
} conn_t;

static void jesc(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (*len + 8 > *cap) {
            *cap = *cap ? *cap * 2 : 1024;
            *buf = realloc(*buf, *cap);
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            (*buf)[(*len)++] = '\\', (*buf)[(*len)++] = (char)c;
        else if (c < 0x20)
            *len += (size_t)snprintf(*buf + *len, 8, "\\u%04x", c);
        else
            (*buf)[(*len)++] = (char)c;
    }
}

static void raw(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    while (*len + n + 1 > *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
}

static void add_hdr(req_t *r, const char *name, size_t nlen, const char *val, size_t vlen)
{
    raw(&r->hdrs, &r->hlen, &r->hcap, r->hlen ? ",\"" : "\"");
    jesc(&r->hdrs, &r->hlen, &r->hcap, name, nlen);
    raw(&r->hdrs, &r->hlen, &r->hcap, "\":\"");
    jesc(&r->hdrs, &r->hlen, &r->hcap, val, vlen);
    raw(&r->hdrs, &r->hlen, &r->hcap, "\"");
}

static req_t *find(conn_t *c, int32_t id)
{
    for (req_t *r = c->reqs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

static void make_json(conn_t *c, req_t *r, const char *proto)
{
    unsigned char dig[32];
    unsigned dl = 0;
    EVP_DigestFinal_ex(r->md, dig, &dl);
    char hex[65];
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", dig[i]);
    size_t cap = r->hlen + r->tlen + 2048;
    r->resp = malloc(cap);
    r->rlen = (size_t)snprintf(r->resp, cap,
                               "{\"proto\":\"%s\",\"conn\":%d,\"stream\":%d,\"method\":\"%s\",\"path\":\"%s\","
                               "\"authority\":\"%s\",\"scheme\":\"%s\",\"body_len\":%llu,\"body_sha256\":\"%s\","
                               "\"headers\":{%.*s},\"trailer_frame\":%s,\"trailers\":{%.*s}}",
                               proto, c->conn, r->id, r->method, r->path, r->authority, r->scheme,
                               (unsigned long long)r->body_len, hex, (int)r->hlen, r->hdrs ? r->hdrs : "",
                               r->trailer_frame ? "true" : "false", (int)r->tlen, r->trs ? r->trs : "");
}

static ssize_t resp_read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                            nghttp2_data_source *src, void *user)
{
    req_t *r = src->ptr;
    conn_t *c = user;
    if (strncmp(r->path, "/empty", 6) == 0) {
        /* The HEADERS went out in an earlier nghttp2_session_mem_send (one frame per call):
         * the end follows them on the wire after the pause. */
        const char *q = strstr(r->path, "ms=");
        if (q)
            usleep((useconds_t)strtoul(q + 3, NULL, 10) * 1000);
        if (strstr(r->path, "rst"))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* nghttp2 resets the stream */
    }
    if (strcmp(r->path, "/cut") == 0) {
        /* Half the body, then the connection goes away. */
        size_t n = length < 1000 ? length : 1000;
        memset(buf, 'x', n);
        nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR, NULL, 0);
        c->close_after = true;
        return (ssize_t)n;
    }
    if (r->big_left) {
        size_t n = length < r->big_left ? length : (size_t)r->big_left;
        memset(buf, 'b', n);
        r->big_left -= n;
        if (!r->big_left)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    size_t n = r->rlen - r->roff < length ? r->rlen - r->roff : length;
    if (n) /* /big?n=0 has no resp at all: memcpy from NULL is undefined even for 0 bytes */
        memcpy(buf, r->resp + r->roff, n);
    r->roff += n;
    if (r->roff == r->rlen) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (r->send_trailers) {
            static char big[20001];
            if (!big[0])
                memset(big, 'b', sizeof big - 1);
            nghttp2_nv tv[8 + H2ECHO_MAX_TRAILERS] = {
                {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0},
                {(uint8_t *)"grpc-message", (uint8_t *)"all good", 12, 8, 0},
                {(uint8_t *)"x-checksum", (uint8_t *)"abc123", 10, 6, 0},
                {(uint8_t *)"set-cookie", (uint8_t *)"s=1", 10, 3, 0},
                {(uint8_t *)"authorization", (uint8_t *)"Bearer x", 13, 8, 0},
                {(uint8_t *)"cache-control", (uint8_t *)"no-cache", 13, 8, 0},
                {(uint8_t *)"content-type", (uint8_t *)"text/evil", 12, 9, 0},
                {(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof big - 1, 0},
            };
            size_t ntv = strstr(r->path, "big") ? 8 : 7;
            /* ?section=N: one x-big field makes the section ("name: value\r\n" lines) N bytes;
             * ?fields=N: x-tI fields make N fields in all. nghttp2 copies the fields. */
            size_t base = 0;
            for (size_t i = 0; i < 7; i++)
                base += tv[i].namelen + tv[i].valuelen + 4;
            const char *q;
            char *pad = NULL;
            char names[H2ECHO_MAX_TRAILERS][8];
            if ((q = strstr(r->path, "section=")) != NULL) {
                size_t want = strtoull(q + 8, NULL, 10), vlen = want > base + 9 ? want - base - 9 : 0;
                pad = malloc(vlen + 1);
                memset(pad, 'b', vlen);
                tv[7] = (nghttp2_nv){(uint8_t *)"x-big", (uint8_t *)pad, 5, vlen, 0};
                ntv = 8;
            } else if ((q = strstr(r->path, "fields=")) != NULL) {
                size_t want = strtoull(q + 7, NULL, 10);
                for (ntv = 7; ntv < want && ntv < 7 + H2ECHO_MAX_TRAILERS; ntv++) {
                    snprintf(names[ntv - 7], sizeof names[0], "x-t%zu", ntv - 7);
                    tv[ntv] = (nghttp2_nv){(uint8_t *)names[ntv - 7], (uint8_t *)"tttttttt", strlen(names[ntv - 7]), 8, 0};
                }
            }
            if (nghttp2_submit_trailer(s, id, tv, ntv) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            free(pad);
        }
    }
    return (ssize_t)n;
}

static void respond(nghttp2_session *s, conn_t *c, req_t *r)
{
    if (strcmp(r->path, "/rst") == 0) {
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, r->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    if (strcmp(r->path, "/stall") == 0)
        return;
    if (strcmp(r->path, "/refuse-once") == 0 && atomic_fetch_add(&refused_once, 1) == 0) {
        nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, r->id - 2 > 0 ? r->id - 2 : 0, NGHTTP2_NO_ERROR, NULL, 0);
        c->close_after = true;
        return;
    }
    char clen[32] = "";
    const char *ctype = "application/json";
    if (strcmp(r->path, "/echo-body") == 0) {
        EVP_MD_CTX_free(r->md);
        r->md = NULL;
        r->resp = r->body ? r->body : strdup("");
        r->rlen = r->blen;
        r->body = NULL;
    } else if (strncmp(r->path, "/big?n=", 7) == 0) {
        r->big_left = strtoull(r->path + 7, NULL, 10);
        ctype = "application/octet-stream";
        snprintf(clen, sizeof clen, "%llu", (unsigned long long)r->big_left);
    } else if (strncmp(r->path, "/empty", 6) == 0) {
        strcpy(clen, "0"); /* no resp: the read callback ends the stream with nothing */
        r->send_trailers = strstr(r->path, "trailers") != NULL;
    } else if (strcmp(r->path, "/_stats") == 0) {
        r->resp = malloc(128);
        r->rlen = (size_t)snprintf(r->resp, 128, "{\"connections\":%d,\"active\":%d,\"goaways\":%d}",
                                   atomic_load(&nconns), atomic_load(&nactive), atomic_load(&ngoaways));
    } else if (strncmp(r->path, "/trailers", 9) == 0) {
        make_json(c, r, "h2");
        r->send_trailers = true;
        if (strstr(r->path, "cl"))
            snprintf(clen, sizeof clen, "%zu", r->rlen); /* else no length: the gateway frames it */
    } else {
        make_json(c, r, "h2");
    }
    if (!clen[0] && strcmp(r->path, "/cut") != 0 && !r->send_trailers)
        snprintf(clen, sizeof clen, "%zu", r->rlen);
    nghttp2_nv nv[4] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"content-type", (uint8_t *)ctype, 12, strlen(ctype), 0},
        {(uint8_t *)"x-upstream", (uint8_t *)"h2echo", 10, 6, 0},
        {(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen), 0},
    };
    nghttp2_data_provider prd = {.source.ptr = r, .read_callback = resp_read_cb};
    nghttp2_submit_response(s, r->id, nv, clen[0] ? 4 : 3, &prd);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    conn_t *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    req_t *r = calloc(1, sizeof *r);
    r->id = f->hd.stream_id;
    r->md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(r->md, EVP_sha256(), NULL);
    r->next = c->reqs;
    c->reqs = r;
    (void)s;
    return 0;
}

static void cp(char *dst, size_t cap, const uint8_t *v, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *val, size_t vlen, uint8_t flags, void *user)
{
    req_t *r = find(user, f->hd.stream_id);
    (void)s, (void)flags;
    if (!r)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_HEADERS) {
        r->trailer_frame = true;
        raw(&r->trs, &r->tlen, &r->tcap, r->tlen ? ",\"" : "\"");
        jesc(&r->trs, &r->tlen, &r->tcap, (const char *)name, nlen);
        raw(&r->trs, &r->tlen, &r->tcap, "\":\"");
        jesc(&r->trs, &r->tlen, &r->tcap, (const char *)val, vlen);
        raw(&r->trs, &r->tlen, &r->tcap, "\"");
        return 0;
    }
    if (nlen == 7 && !memcmp(name, ":method", 7))
        cp(r->method, sizeof r->method, val, vlen);
    else if (nlen == 5 && !memcmp(name, ":path", 5))
        cp(r->path, sizeof r->path, val, vlen);
    else if (nlen == 10 && !memcmp(name, ":authority", 10))
        cp(r->authority, sizeof r->authority, val, vlen);
    else if (nlen == 7 && !memcmp(name, ":scheme", 7))
        cp(r->scheme, sizeof r->scheme, val, vlen);
    else
        add_hdr(r, (const char *)name, nlen, (const char *)val, vlen);
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n, void *user)
{
    req_t *r = find(user, id);
    (void)s, (void)flags;
    if (!r)
        return 0;
    EVP_DigestUpdate(r->md, d, n);
    r->body_len += n;
    if (strncmp(r->path, "/slow-read", 10) == 0) {
        const char *q = strstr(r->path, "ms=");
        usleep((useconds_t)(q ? strtoul(q + 3, NULL, 10) : 20) * 1000);
    }
    if (r->blen + n <= (1u << 20)) {
        r->body = realloc(r->body, r->blen + n + 1);
        memcpy(r->body + r->blen, d, n);
        r->blen += n;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    if (f->hd.type == NGHTTP2_GOAWAY)
        atomic_fetch_add(&ngoaways, 1);
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        req_t *r = find(user, f->hd.stream_id);
        if (r)
            respond(s, user, r);
    }
    return 0;
}

static void serve_h1(conn_t *c)
{
    char buf[65536];
    size_t len = 0;
    char *end = NULL;
    while (!end && len < sizeof buf - 1) {
        int n = SSL_read(c->ssl, buf + len, (int)(sizeof buf - 1 - len));
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return;
    req_t r = {0};
    r.md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(r.md, EVP_sha256(), NULL);
    sscanf(buf, "%15s %511s", r.method, r.path);
    strcpy(r.scheme, "https");
    char *cl = strcasestr(buf, "\r\ncontent-length:");
    uint64_t want = cl && cl < end ? strtoull(cl + 17, NULL, 10) : 0;
    size_t have = len - (size_t)(end + 4 - buf);
    EVP_DigestUpdate(r.md, end + 4, have);
    r.body_len = have;
    while (r.body_len < want) {
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n <= 0)
            break;
        EVP_DigestUpdate(r.md, buf, (size_t)n);
        r.body_len += (size_t)n;
    }
    make_json(c, &r, "http/1.1");
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      r.rlen);
    SSL_write(c->ssl, head, hl);
    SSL_write(c->ssl, r.resp, (int)r.rlen);
    EVP_MD_CTX_free(r.md);
    free(r.resp);
    free(r.hdrs);
}

static void *serve(void *arg)
{
    conn_t *c = arg;
    if (SSL_accept(c->ssl) != 1)
        goto out;
    c->conn = atomic_fetch_add(&nconns, 1) + 1; /* counted once TLS is up (port probes are not) */
    atomic_fetch_add(&nactive, 1);
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
        serve_h1(c);
        goto out;
    }
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session *s;
    nghttp2_session_server_new(&s, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    const char *win = getenv("H2ECHO_WINDOW");
    int32_t window = win ? (int32_t)strtol(win, NULL, 10) : 0;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)window}};
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, window > 0 ? 2 : 1);
    if (window > 0)
        nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, window);
    char buf[16384];
    for (;;) {
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(s, &p)) > 0)
            if (SSL_write(c->ssl, p, (int)n) <= 0)
                goto done;
        if (c->close_after || (!nghttp2_session_want_read(s) && !nghttp2_session_want_write(s)))
            break;
        int r = SSL_read(c->ssl, buf, sizeof buf);
        if (r <= 0)
            break;
        if (nghttp2_session_mem_recv(s, (const uint8_t *)buf, (size_t)r) < 0)
            break;
    }
done:
    nghttp2_session_del(s);
out:
    if (c->conn)
        atomic_fetch_sub(&nactive, 1);
    while (c->reqs) {
        req_t *r = c->reqs;
        c->reqs = r->next;
        EVP_MD_CTX_free(r->md);
        free(r->hdrs);
        free(r->trs);
        free(r->body);
        free(r->resp);
        free(r);
    }
    SSL_shutdown(c->ssl);
    close(SSL_get_fd(c->ssl));
    SSL_free(c->ssl);
    free(c);
    return NULL;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x02h2\x08http/1.1";
    (void)ssl, (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, ours, sizeof ours - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_NOACK;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: h2echo PORT CERT KEY [MAX_CONCURRENT_STREAMS [ADDRESS]]\n");
        return 2;
    }
    if (argc > 4)
        max_streams = (uint32_t)atoi(argv[4]);
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    if (inet_pton(AF_INET, argc > 5 ? argv[5] : "127.0.0.1", &a.sin_addr) != 1)
        return 2;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 128) != 0) {
        perror("h2echo: bind");
        return 1;
    }
    printf("h2echo listening on %s\n", argv[1]);
    fflush(stdout);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* WINDOW_UPDATEs go at once */
        conn_t *c = calloc(1, sizeof *c);
        c->ssl = SSL_new(ctx);
        SSL_set_fd(c->ssl, fd);
        pthread_t t;
        pthread_create(&t, NULL, serve, c);
        pthread_detach(t);
    }
}
