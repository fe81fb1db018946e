/*
 * classify.h — personal-data classification of one request: headers, target (path and query)
 * and body (JSON, form, multipart, text; gzip/deflate inflated under a bound). Yields data
 * categories, counts per detector and findings (detector, where, key path, byte offset and
 * length) that the encrypt action uses to seal values in place. Never copies a value out except
 * the inflated body it owns (wiped on dispose). Invariants: findings never overlap (when two
 * detectors hit overlapping bytes the longer span is kept, the earlier one on a tie) and counts
 * count kept findings. The classifier is immutable after create: bg_classify is pure and may run
 * on any number of threads over one classifier.
 */
#ifndef BG_CLASSIFY_H
#define BG_CLASSIFY_H

#include "config.h"
#include "types.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BG_MAX_FINDINGS 1024

typedef struct bg_classifier bg_classifier_t;

/* Built-in detector ids (custom detectors follow, from BG_DET__BUILTIN). */
enum {
    BG_DET_EMAIL = 0,
    BG_DET_PHONE,
    BG_DET_IP_ADDRESS,
    BG_DET_CARD_NUMBER,
    BG_DET_IBAN,
    BG_DET_US_SSN,
    BG_DET_UK_NINO,
    BG_DET_JWT,
    BG_DET_BEARER_TOKEN,
    BG_DET_API_KEY,
    BG_DET_SESSION_COOKIE,
    BG_DET_COORDINATES,
    BG_DET_MAC_ADDRESS,
    BG_DET_IMEI,
    BG_DET_DEVICE_ID,
    BG_DET_USER_AGENT,
    BG_DET_CLIENT_IP,
    BG_DET_PERSON_NAME,
    BG_DET_DATE_OF_BIRTH,
    BG_DET_AI_PROMPT,
    BG_DET_FILE_UPLOAD,
    BG_DET__BUILTIN
};

/** Build from cfg->classification (detectors: all or a list; custom detectors); cfg NULL = all
 *  built-ins, no custom. Returns NULL and a message in err on bad input (unknown detector name).
 *  The classifier copies what it needs: cfg may be released afterwards. Caller destroys it. */
bg_classifier_t *bg_classifier_create(const bg_config_t *cfg, char *err, size_t errlen);
/** Free a classifier (NULL is ignored). */
void bg_classifier_destroy(bg_classifier_t *c);
/** Number of detectors (built-ins then custom). */
unsigned bg_classifier_ndetectors(const bg_classifier_t *c);
/** Detector id's name ("email" ... then custom names), or NULL when out of range. Owned by c. */
const char *bg_classifier_detector_name(const bg_classifier_t *c, unsigned id);
/** Detector id's category (bg_category_t), or -1 when out of range. */
int bg_classifier_detector_category(const bg_classifier_t *c, unsigned id);
/** Detector id for a name, or -1. */
int bg_classifier_detector_find(const bg_classifier_t *c, const char *name);

typedef enum { BG_WHERE_HEADER, BG_WHERE_PATH, BG_WHERE_QUERY, BG_WHERE_BODY } bg_where_t;
typedef enum { BG_BODY_NONE, BG_BODY_JSON, BG_BODY_FORM, BG_BODY_MULTIPART, BG_BODY_TEXT, BG_BODY_OTHER } bg_body_kind_t;

/** "header" | "path" | "query" | "body". */
const char *bg_where_name(int where);
/** "none" | "json" | "form" | "multipart" | "text" | "other". */
const char *bg_body_kind_name(int kind);

typedef struct {
    uint16_t detector;   /* id */
    uint8_t category;    /* bg_category_t */
    uint8_t where;       /* bg_where_t */
    uint8_t json_string; /* BODY+JSON: the span is inside a JSON string (1) or is a bare number/literal (0) */
    uint8_t encoded;     /* the span contains %-escapes or '+' (query/form) or JSON escapes */
    uint16_t header;     /* HEADER: index into the input headers */
    uint16_t covers;     /* categories whose detections this span holds: its own, and those of every
                            overlapping detection it won over or that lost to it (an e-mail inside
                            an AI prompt): what sealing it must answer for */
    uint32_t offset;     /* HEADER: in that header's value; PATH/QUERY: in the target; BODY: in the
                            scanned body (the inflated copy when body_inflated) */
    uint32_t length;
    char path[64];       /* where, as text: header name, query/form parameter name, JSON path ($.a.b[2]),
                            multipart part name — keys only, never a value; truncated to fit */
} bg_finding_t;

typedef struct {
    uint32_t categories;          /* bitmask of 1u << bg_category_t; includes detections subsumed by a
                                     longer overlapping finding (e.g. an e-mail inside an AI prompt),
                                     which that finding's `covers` names */
    uint32_t *counts;             /* per detector id, bg_classifier_ndetectors() long */
    bg_finding_t *findings;       /* at most BG_MAX_FINDINGS; beyond, counts go on */
    size_t nfindings;
    size_t findings_cap;          /* allocated: starts small (in the counts block), grows x4 */
    bool findings_truncated;
    bool unscannable;             /* the body could not be read: policy treats it per oversize_body */
    const char *unscannable_reason; /* static: "body_too_large", "malformed_json", "json_too_deep",
                                       "unknown_encoding", "inflate_limit", "truncated_gzip",
                                       "malformed_gzip", "malformed_multipart",
                                       "encoding_too_deep" (base64-JSON nested too deep) */
    bg_body_kind_t body_kind;
    bool body_inflated;           /* body offsets refer to `inflated` */
    bg_buf_t inflated;            /* owned; wiped on dispose */
} bg_classification_t;

typedef struct {
    const bg_header_t *headers; size_t nheaders;   /* content-type/encoding are read from these */
    const char *target; size_t target_len;          /* origin-form "/path?query" */
    const char *body; size_t body_len;              /* as received (maybe gzip) */
    bool body_truncated;  /* only a prefix of the body is here: unscannable "body_too_large" */
    bool ai_route;        /* vendor is an AI route: messages/prompt/input/content are ai_interaction */
    uint64_t max_inflate; /* bound on the inflated size (0 = 16 MiB) */
    bool skip_locations;  /* leave each finding's path text empty: the data plane reads only the
                             detector, category, where and offsets; `scan` and `explain` print it */
} bg_classify_input_t;

/** Prepare out for bg_classify (one small block: the counts and the first few findings; the
 *  findings array grows as bg_classify needs, up to BG_MAX_FINDINGS). */
void bg_classification_init(bg_classification_t *out, const bg_classifier_t *c);
/** Free what out holds; the inflated body is wiped first. */
void bg_classification_dispose(bg_classification_t *out);
/** Classify; pure (no globals, thread-safe over a shared classifier). out must come from
 *  bg_classification_init with the same classifier and is reset first. 0, or negative on
 *  internal error. */
int bg_classify(const bg_classifier_t *c, const bg_classify_input_t *in, bg_classification_t *out);

/* Validators, exposed for tests. Each takes a span of digits/characters as written. */
/** Luhn checksum over the digits of s[0..n) (other bytes skipped); true when valid. */
bool bg_detect_luhn(const char *s, size_t n);
/** Payment card: 12–19 digits (spaces/dashes allowed), issuer prefix and length, Luhn. */
bool bg_detect_card_valid(const char *s, size_t n);
/** Registered IBAN length for a 2-letter country code, or 0. */
int bg_detect_iban_length(const char *cc);
/** IBAN: country code, per-country length, mod-97 (spaces allowed). */
bool bg_detect_iban_valid(const char *s, size_t n);
/** US SSN "AAA-GG-SSSS" (or 9 digits, or space/dot separated): area not 000/666/9xx, group not
 *  00, serial not 0000. */
bool bg_detect_ssn_valid(const char *s, size_t n);
/** Email address (local@domain.tld, the TLD alphabetic or punycode, not a file extension). */
bool bg_detect_email_valid(const char *s, size_t n);
/** The domain of an e-mail address (after the '@'): 4 to 253 bytes of labels (letters, digits,
 *  inner '-', 1 to 63 bytes) and a TLD as bg_detect_email_valid checks it. */
bool bg_detect_email_domain_valid(const char *s, size_t n);
/** IPv4 dotted quad (no leading zeros, each <= 255). */
bool bg_detect_ipv4_valid(const char *s, size_t n);
/** IPv6 (RFC 4291 text forms, embedded IPv4, optional %zone). */
bool bg_detect_ipv6_valid(const char *s, size_t n);

#endif
