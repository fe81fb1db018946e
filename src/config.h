/*
 * config.h — the loaded configuration: an immutable, reference-counted snapshot of
 * bordergate.yaml and the regions file it names, with a version (SHA-256 of the inputs).
 * Loaded on the main thread; read concurrently by every worker without locks (it never
 * changes after bg_config_load returns). A reload builds a new snapshot and swaps it;
 * exchanges keep a reference to the one they started with.
 * The struct is visible (read-only for everyone but config.c) because the data plane
 * reads it on every request.
 */
#ifndef BG_CONFIG_H
#define BG_CONFIG_H

#include "types.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Where a value came from in its file, for messages. */
typedef struct {
    int line; /* 1-based */
    int col;  /* 1-based */
} bg_pos_t;

/* Diagnostics: every problem found, each already formatted "FILE:LINE:COL: message". */
typedef struct {
    char **errors;
    size_t nerrors;
    char **warnings;
    size_t nwarnings;
} bg_diag_t;

/** Initialise an empty diagnostics list. */
void bg_diag_init(bg_diag_t *d);
/** Free every message. */
void bg_diag_dispose(bg_diag_t *d);
/** Append a formatted error (file may be NULL: no position prefix). */
void bg_diag_error(bg_diag_t *d, const char *file, bg_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Append a formatted warning. */
void bg_diag_warn(bg_diag_t *d, const char *file, bg_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef enum { BG_MODE_ENFORCE = 0, BG_MODE_REPORT_ONLY } bg_mode_t;
typedef enum { BG_ROLE_PROCESSOR = 0, BG_ROLE_CONTROLLER } bg_role_t;
typedef enum { BG_VIOLATION_BLOCK = 0, BG_VIOLATION_ENCRYPT } bg_violation_t;
typedef enum { BG_OVERSIZE_BLOCK = 0, BG_OVERSIZE_PERSONAL } bg_oversize_t;
typedef enum { BG_FSYNC_BATCH = 0, BG_FSYNC_ALWAYS, BG_FSYNC_NEVER } bg_fsync_t;
typedef enum { BG_PROTO_AUTO = 0, BG_PROTO_HTTP1, BG_PROTO_HTTP2 } bg_upstream_proto_t;
typedef enum { BG_GEO_SCHEMA_AUTO = 0, BG_GEO_SCHEMA_MAXMIND, BG_GEO_SCHEMA_DBIP } bg_geo_schema_t;

/* A CIDR network: family AF_INET or AF_INET6, address bytes in network order. */
typedef struct {
    int family;
    uint8_t addr[16];
    int prefix; /* 0..32 or 0..128 */
} bg_cidr_t;

/* "host:port" parsed: IPv4 "a.b.c.d:p", IPv6 "[::1]:p". */
typedef struct {
    char *text; /* as written */
    struct sockaddr_storage addr;
    socklen_t addrlen;
} bg_sockaddr_t;

typedef struct {
    bg_sockaddr_t address;
    bool tls;
    char *certificate; /* paths, resolved relative to the config file's directory? no: to the CWD */
    char *key;
    char *client_ca; /* NULL: no client certificates asked */
    bg_pos_t certificate_pos, key_pos, client_ca_pos; /* where the config names them, for messages */
    char *vendor;    /* `vendor:` the vendor for requests that carry no Host (HTTP/1.0), NULL: none */
    int vendor_index; /* resolved index into vendors, -1 when none */
    bg_pos_t vendor_pos;
    uint32_t max_connections;     /* open client connections on this listener (all workers); 0: no limit */
    uint32_t requests_per_second; /* requests accepted per second on this listener; 0: no limit */
    uint32_t request_burst;       /* back-to-back requests allowed above that rate; default: one second's worth */
    bg_pos_t pos;
} bg_listen_t;

typedef struct {
    char *name;
    uint32_t category; /* a bg_category_t */
    char **keys;       /* JSON keys, form and query parameter names */
    size_t nkeys;
    char *prefix;      /* NULL: none */
    int digits;        /* -1: any */
} bg_custom_detector_t;

typedef struct {
    bg_cidr_t net;
    char country[3];
} bg_geo_override_t;

/* One entry of the vendor's `regions`: a country code or a region name from regions.yaml. */
typedef struct {
    bool is_region;  /* true: `name` is a region (e.g. "EEA"); false: `country` */
    char country[3];
    char *name;      /* region name when is_region */
} bg_region_ref_t;

typedef struct {
    char *name;
    char *entity_name;
    char entity_country[3]; /* "" when not given */
    bool public_body;       /* entity.public_body: a public authority (no commercial adequacy) */
    bg_role_t role;
    char **hosts; /* lowercase; "*.example.com" wildcards allowed */
    size_t nhosts;
    struct {
        uint16_t port;          /* default 443 with tls, 80 without */
        bool tls;               /* default true */
        bool verify;            /* default true */
        char *ca;               /* NULL: system store */
        char *client_certificate;
        char *client_key;
        bg_pos_t ca_pos, client_certificate_pos, client_key_pos; /* where the config names them */
        char *sni;              /* NULL: the request's host */
        bg_sockaddr_t *addresses; /* pinned addresses (port = upstream.port), NULL: DNS */
        size_t naddresses;
        bg_upstream_proto_t protocol;
        uint32_t max_connections; /* open connections per vendor address, gateway-wide; default 256 */
    } upstream;
    bg_region_ref_t *regions;
    size_t nregions;
    uint32_t categories; /* bitmask of approved categories */
    bool has_scc;
    struct {
        int module;       /* 1..4 */
        char *reference;
        int64_t signed_at; /* Unix seconds, 00:00 UTC of the date */
        int64_t expires;   /* Unix seconds, 00:00 UTC of the date; the tag is valid while now < expires */
    } scc;
    bool has_dpf;
    struct {
        bool certified;
        int64_t expires; /* Unix seconds; 0 when absent */
    } dpf;
    bool bcr;
    bg_violation_t on_violation;
    bool reveal_responses; /* open tokens in responses on the way back */
    bool ai;               /* an AI-vendor route (default: categories include ai_interaction) */
    uint64_t max_body;     /* request body limit for this vendor (413 beyond); default limits.max_body */
    bg_pos_t pos;
} bg_vendor_t;

/* regions.yaml, resolved. */
typedef struct {
    char *name;
    char (*countries)[3];
    size_t ncountries;
} bg_region_t;

typedef struct {
    char country[3];
    bg_adequacy_scope_t scope;
    int64_t date;      /* Unix seconds of the decision date, 0 unknown */
    int64_t expires;   /* Unix seconds, 0: no expiry */
} bg_adequacy_t;

typedef struct bg_config {
    atomic_int refcount; /* private */
    char version[65];    /* SHA-256 hex of the config file and the regions file */
    char *path;          /* the config file as given */

    char *jurisdiction;  /* a region name */
    bg_mode_t mode;

    bg_listen_t *listen;
    size_t nlisten;

    struct {
        bg_sockaddr_t address; /* default 127.0.0.1:9901 */
        char *token;           /* bearer token for the admin endpoints, NULL: none */
        bool enabled;          /* false when `admin: off` */
    } admin;

    int workers; /* resolved: `auto` = number of online CPUs */
    char *user;  /* drop privileges to this user after binding, NULL: stay */
    char *pid_file;
    bool io_uring; /* default true: workers read sockets in batches through io_uring where the kernel allows */

    struct {
        uint64_t max_body_scan;   /* default 1 MiB */
        uint64_t max_body_scan_per_connection; /* default 16 MiB: bodies held by one HTTP/2 connection's streams */
        uint64_t max_body_scan_total; /* default 512 MiB: bodies held by all exchanges (split per worker) */
        uint64_t max_body;        /* default 64 MiB: larger request bodies get 413 */
        bg_oversize_t oversize_body;
        uint64_t header_timeout_ms;  /* default 10 s */
        uint64_t idle_timeout_ms;    /* default 60 s */
        uint64_t body_timeout_ms;    /* default 60 s: the body part held before the decision must arrive in this time */
        uint64_t upstream_connect_timeout_ms; /* default 5 s */
        uint64_t upstream_timeout_ms;         /* default 30 s */
        uint64_t drain_timeout_ms;            /* default 30 s */
        uint64_t dns_ttl_ms;                  /* default 30 s: how long a vendor name's addresses are fresh */
        uint32_t max_connections;             /* default 10000 */
        uint32_t max_connections_per_caller;  /* per client address; default 0: no limit */
        uint32_t requests_per_second_per_caller; /* per client address; default 0: no limit (429 beyond) */
        uint32_t request_burst_per_caller;    /* default: one second's worth */
        uint32_t max_header_size;             /* default 16 KiB (431 beyond) */
        uint32_t max_headers;                 /* default 100 (431 beyond) */
        uint32_t max_uri;                     /* default 8 KiB (414 beyond) */
        uint64_t max_inflate;                 /* default 16 MiB: inflated bodies beyond are unscannable */
    } limits;

    struct {
        char *database;       /* path; default config/geoip/dbip-country-lite.mmdb */
        bg_pos_t database_pos; /* its value, else the `geoip` block, else {0,0} (the default, unnamed) */
        bg_geo_schema_t schema;
        bool registered_country_fallback; /* default true */
        bg_geo_override_t *overrides;
        size_t noverrides;
    } geoip;

    char *regions_path; /* default config/regions.yaml */
    bg_region_t *regions;
    size_t nregions;
    bg_adequacy_t *adequacy;
    size_t nadequacy;
    int jurisdiction_region; /* index into regions */

    struct {
        bool all;           /* `detectors: all` (default) */
        char **detectors;   /* names when a list */
        size_t ndetectors;
        bg_custom_detector_t *custom;
        size_t ncustom;
    } classification;

    struct {
        char *keys_dir;   /* NULL: encryption unavailable (vendors with on_violation: encrypt are an error) */
        bg_pos_t keys_pos;
        char *active_key; /* key id */
    } encryption;

    struct {
        char *path;           /* default records/transfers.jsonl */
        uint64_t rotate_size; /* default 100 MiB */
        int retention_days;   /* default 400 */
        bg_fsync_t fsync;
        uint32_t queue_size;  /* writer queue slots (records + reservations); default 16384, 0 = default */
        uint64_t stall_timeout_ms; /* pending work without progress this long: not ready; default 30 s, 0 = never */
    } records;

    struct {
        uint32_t max_series; /* labelled series per worker (all families); default 4096; read at start */
    } metrics;

    bg_vendor_t *vendors;
    size_t nvendors;
} bg_config_t;

/** Load and validate FILE (and the regions file it names). On success returns 0 and a snapshot
 *  with refcount 1 in *out; otherwise every problem is in diag->errors and *out is NULL
 *  (returns -1). Warnings (e.g. an SCC tag expiring within 30 days of now_s) go to
 *  diag->warnings either way. Never crashes on any input. */
int bg_config_load(const char *file, int64_t now_s, bg_config_t **out, bg_diag_t *diag);
/** Load from a buffer; `name` is used in messages and to resolve nothing (regions file is still
 *  read from disk). For tests and fuzzing. */
int bg_config_load_buffer(const char *name, const char *data, size_t len, int64_t now_s,
                          bg_config_t **out, bg_diag_t *diag);
/** Take a reference. Thread-safe. */
bg_config_t *bg_config_retain(bg_config_t *cfg);
/** Drop a reference; the last one frees the snapshot. Thread-safe. NULL is ignored. */
void bg_config_release(bg_config_t *cfg);

/** The vendor whose hosts match `host` (exact, or a `*.suffix` wildcard; case-insensitive; any
 *  `:port` already stripped), or NULL. */
const bg_vendor_t *bg_config_route(const bg_config_t *cfg, const char *host, size_t len);

/** Classify a country code ("" or NULL = unknown) relative to the jurisdiction; *scope is set
 *  when the result is BG_DEST_ADEQUATE. */
bg_dest_kind_t bg_config_dest_kind(const bg_config_t *cfg, const char *country,
                                   bg_adequacy_scope_t *scope);
/** Whether `country` has an adequacy decision in force at now_s (Unix seconds): listed, and
 *  date <= now < expires where the regions file gives them. */
bool bg_config_adequacy_in_force(const bg_config_t *cfg, const char *country, int64_t now_s);
/** A short region label for records and metrics: the jurisdiction name when domestic,
 *  "adequate", "third_country" or "unknown". */
const char *bg_config_dest_region_label(const bg_config_t *cfg, bg_dest_kind_t kind);
/** Whether `country` is inside the vendor's declared regions (unknown country: false). */
bool bg_config_vendor_covers(const bg_config_t *cfg, const bg_vendor_t *v, const char *country);

/** Parse helpers, exposed for tests and other modules. Each returns 0 or -1. */
int bg_parse_size(const char *s, uint64_t *out);        /* "1MiB", "512KiB", "10MB", "123" */
int bg_parse_duration_ms(const char *s, uint64_t *out); /* "10s", "250ms", "5m", "1h" */
int bg_parse_date(const char *s, int64_t *out_s);       /* "2027-03-01" → Unix seconds 00:00 UTC */
int bg_parse_cidr(const char *s, bg_cidr_t *out);       /* "10.0.0.0/8", "2001:db8::/32", bare address = host */
int bg_parse_sockaddr(const char *s, bg_sockaddr_t *out); /* "127.0.0.1:8080", "[::1]:8080" (text is strdup'd) */
bool bg_country_valid(const char *s);                   /* an assigned ISO 3166-1 alpha-2 code */
bool bg_cidr_contains(const bg_cidr_t *net, const struct sockaddr *sa);

#endif
