/*
 * http1.h — a strict HTTP/1.1 codec (RFC 9112): pure functions over a caller's buffer, no
 * I/O, no allocation, no globals. Parsed fields point into the caller's buffer.
 * Parsers return the number of bytes consumed (> 0), BG_H1_PARTIAL when more input is
 * needed, or BG_H1_ERROR with `status` set to the HTTP status to answer (400, 414, 431,
 * 501 ...) and `error` to a short reason for the log. Anything ambiguous is an error:
 * the data plane answers it and closes the connection, never guesses.
 */
#ifndef BG_HTTP1_H
#define BG_HTTP1_H

#include "types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BG_H1_PARTIAL (-2)
#define BG_H1_ERROR (-1)
#define BG_H1_MAX_HEADERS 128 /* hard array size; the configured limit may be lower */
#define BG_H1_TRAILER_MAX 8192 /* a chunked body's whole trailer section without trailers_max; beyond: BG_H1_ERROR */
#define BG_H1_TRAILER_KEEP_MAX (64 * 1024) /* the largest trailers_max (as h2.c's hard header list bound) */

typedef struct {
    uint32_t max_header_bytes; /* request line + headers; beyond: 431 (414 if the line alone is over max_uri) */
    uint32_t max_headers;      /* count; beyond: 431 */
    uint32_t max_uri;          /* request-target length; beyond: 414 */
} bg_h1_limits_t;

typedef struct {
    const char *method;
    size_t method_len;
    const char *target; /* as sent: origin-form "/p?q", absolute-form "http://h/p", "*" or authority-form */
    size_t target_len;
    int minor_version; /* 0 or 1 */
    bg_header_t headers[BG_H1_MAX_HEADERS];
    size_t nheaders;

    /* Derived by the parser (valid when it returns > 0). */
    const char *host;      /* authority: absolute-form authority if present, else the Host header value */
    size_t host_len;
    const char *path;      /* origin-form path and query (absolute-form's path part; "/" if empty) */
    size_t path_len;
    bool absolute_form;
    bool chunked;          /* Transfer-Encoding: chunked (final and only coding); from h2.c: the body
                            * (or trailers) may follow, its end is END_STREAM, content_length <= 0 */
    int64_t content_length; /* -1: none */
    bool keep_alive;       /* after this request (version default, Connection: close / keep-alive) */
    bool expect_continue;  /* Expect: 100-continue */
    bool upgrade;          /* Upgrade header present (we do not tunnel: treated as a plain request) */

    int status;            /* on BG_H1_ERROR: status to answer */
    const char *error;     /* on BG_H1_ERROR: reason, static string */
} bg_h1_request_t;

typedef struct {
    int minor_version;
    int status;
    const char *reason;
    size_t reason_len;
    bg_header_t headers[BG_H1_MAX_HEADERS];
    size_t nheaders;

    bool chunked;
    int64_t content_length; /* -1: none */
    bool keep_alive;
    bool close_delimited;   /* body runs until the connection closes (no length, no chunked, not bodiless) */
    const char *error;
} bg_h1_response_t;

/** Parse one request head from buf[0..len). See the file comment for returns. */
int bg_h1_parse_request(const char *buf, size_t len, const bg_h1_limits_t *limits, bg_h1_request_t *req);

/** Parse one response head. `head_request` (HEAD) and 1xx/204/304 mean no body.
 *  Same returns; errors mean the vendor sent something ambiguous (the gateway answers 502). */
int bg_h1_parse_response(const char *buf, size_t len, bool head_request, bg_h1_response_t *resp);

/* Incremental chunked-body decoder. Zero-initialise (or bg_h1_chunked_init) before use. */
typedef struct {
    int state;          /* private */
    uint64_t remaining; /* private */
    uint32_t line_len;  /* private: bytes of the current size/trailer line, bounded */
    uint32_t trailer_bytes; /* private */
    bool done;          /* public: the last chunk and the trailers have been read */
    /* Optional, set by the caller after init: the trailer field lines ("name:value\r\n" as
     * sent, without the final empty line) are copied here, at most trailers_cap bytes (give
     * BG_H1_TRAILER_MAX to keep them all). trailers_len: bytes stored. */
    char *trailers;
    uint32_t trailers_cap;
    uint32_t trailers_len;
    /* Optional, set by the caller after init: the caller's bound on the field lines (the
     * header size limit), at most BG_H1_TRAILER_KEEP_MAX. With it, the section is no longer
     * an error past BG_H1_TRAILER_MAX: field lines beyond trailers_max are not kept and set
     * trailers_over (the rest of the section is still read and validated, up to twice
     * BG_H1_TRAILER_KEEP_MAX in all; beyond that it is an error, with trailers_over set). And
     * the buffer may start smaller than trailers_max: when it is full, decoding stops before
     * the byte that does not fit (return 0, consumed short) with trailers_full set; the caller
     * gives a larger buffer holding the trailers_len bytes kept, clears trailers_full and
     * calls again with the rest. */
    uint32_t trailers_max;
    bool trailers_full; /* public */
    bool trailers_over; /* public */
} bg_h1_chunked_t;

void bg_h1_chunked_init(bg_h1_chunked_t *d);

/** Decode chunked framing in place: data bytes are moved to the front of buf. On return
 *  *consumed is the input bytes used and *out_len the data bytes now at buf[0..*out_len).
 *  Returns 0 (call again with more input unless d->done), or BG_H1_ERROR (bad framing,
 *  size overflow, oversized line or trailers). Trailers are validated, and kept in
 *  d->trailers when the caller gave a buffer (dropped otherwise). */
int bg_h1_chunked_decode(bg_h1_chunked_t *d, char *buf, size_t len, size_t *consumed, size_t *out_len);

/** Whether a header name is hop-by-hop (Connection, Keep-Alive, Proxy-Connection, TE,
 *  Trailer, Transfer-Encoding, Upgrade, Proxy-Authorization, Proxy-Authenticate), or is
 *  named in the message's Connection header (`connection` may be NULL). */
bool bg_h1_is_hop_by_hop(const char *name, size_t len, const char *connection, size_t connection_len);
/** The next element of a comma-separated field value in [*p, end), spaces and tabs trimmed
 *  (may be empty); advances *p (NULL after the last). False when the list is done. */
bool bg_h1_list_next(const char **p, const char *end, const char **elem, size_t *elem_len);

/** Split field lines "name:OWS value OWS\r\n" (a chunked trailer section as the decoder keeps
 *  it, or a head's field lines) into out[0..max). Lines without a colon are skipped. Returns
 *  the number of fields, or -1 when there are more than max. Fields point into buf. */
int bg_h1_split_fields(const char *buf, size_t len, bg_header_t *out, size_t max);

/** Whether a field may travel in a trailer section (RFC 9110 6.5.1): false for the fields a
 *  recipient needs before the content or that must not be appended late — framing
 *  (Content-Length, Transfer-Encoding), routing (Host, :pseudo), hop-by-hop, authentication
 *  (Authorization, Proxy-*, WWW-Authenticate), cookies, controls (Cache-Control, Expect, TE,
 *  Range, If-*, Max-Forwards, Pragma), content metadata (Content-Type/-Encoding/-Range/...),
 *  response controls (Age, Date, Expires, Location, Retry-After, Vary), and the gateway's
 *  own fields (Via, Forwarded, X-Forwarded-*, X-Transfer-Id). See http1.c for each reason. */
bool bg_h1_trailer_allowed(const char *name, size_t len);

/** Whether s[0..n) is an authority as a request's Host may carry it: host [":" port], where
 *  host is a DNS name (letters, digits, '-', '_', '.') or an IP literal: no userinfo, path,
 *  whitespace, sub-delims or percent-encoding (the rules the request parser applies to Host and
 *  to an absolute-form target; for HTTP/2's :authority and host, which nghttp2 checks less
 *  strictly). */
bool bg_h1_authority_valid(const char *s, size_t n);

/** Whether t[0..n) is a request-target the gateway forwards in its HTTP/1.1 request line:
 *  origin-form ("/" then pchar, "/", "?" or valid percent-encoding; no fragment, no space), or
 *  "*" when the method is OPTIONS. The request parser's rules, for HTTP/2's :path. */
bool bg_h1_target_valid(const char *method, size_t method_len, const char *t, size_t n);

/** Why a request's content fields could be read two ways, or NULL: more than one Content-Type
 *  (a singleton: the classifier reads the first, many servers the last) or more than one
 *  Content-Encoding field line (the classifier decodes one coding; a server applies the list).
 *  The request parser refuses such a head with 400; HTTP/2 (h2.c) asks the same of its fields. */
const char *bg_h1_content_fields_ambiguous(const bg_header_t *h, size_t n);

/** The reason phrase for a status code ("OK", "Unavailable For Legal Reasons" ...). */
const char *bg_h1_reason(int status);

#endif
