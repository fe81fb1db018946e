/*
 * records.h — transfer records: the hash-chained audit trail (one JSON object per line).
 * Encoding (bg_record_id_make, bg_record_encode, the JSON helpers) is pure. The writer
 * (bg_records_*) owns one thread and a bounded queue: workers push, the writer batches,
 * chains, writes, fsyncs, rotates and reopens. Verification reads files on the caller's thread.
 *
 * Canonical form (what "hash" covers): a record line is
 *     {"ts":...,...,"config_version":"...","prev":"<64 hex>","hash":"<64 hex>"}
 * with "prev" and "hash" always the last two members, in that order. hash = SHA-256 (lowercase
 * hex) of the exact bytes of the line with the `,"hash":"<64 hex>"` member removed, i.e. of
 * `{...,"prev":"<64 hex>"}`. A verifier needs no JSON re-serialisation: it cuts the last 75
 * bytes before the closing brace. The first record ever has prev = 64 zeros. Across rotation
 * and restarts the chain simply continues: the first record of a new file has as "prev" the
 * "hash" of the last record of the previous file (no header line).
 */
#ifndef BG_RECORDS_H
#define BG_RECORDS_H

#include "config.h"
#include "types.h"
#include "util.h"

#include <openssl/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BG_RECORD_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
#define BG_RECORD_MAX_LINE (256u * 1024u) /* longest line the writer and verifier accept */

/* One transfer record. Strings are borrowed at submit time and copied by bg_records_submit.
 * NULL strings are written as "". */
typedef struct {
    int64_t ts_ms;
    const char *id;     /* bg_record_id_make */
    const char *caller; /* "127.0.0.1:53412" or the mTLS subject "CN=svc-a,O=..." */
    const char *vendor, *host, *method, *path; /* path already redacted by the data plane, no query */
    const char *dest_ip, *dest_country, *dest_region; /* "" when unknown */
    bool cross_border;
    uint32_t categories; /* bitmask 1u << bg_category_t → JSON array of names (types.h) */
    const char *const *detector_names;
    const uint32_t *detector_counts;
    size_t ndetectors; /* only counts > 0 written */
    bg_mechanism_t mechanism;
    int scc_module;            /* written only when mechanism is BG_MECH_SCC */
    const char *scc_reference; /* written only when mechanism is BG_MECH_SCC */
    bg_decision_kind_t decision;
    const char *reason;
    bool enforced;
    int status;
    uint64_t bytes_in, bytes_out;
    uint64_t duration_ms;
    const char *protocol; /* "http/1.1" | "h2": what the client spoke */
    const char *upstream_protocol; /* "http/1.1" | "h2": what the vendor spoke; NULL (not written) when
                                    * nothing was sent to it */
    const char *config_version;
} bg_record_t;

/** A unique, sortable id into out[27]: 26 Crockford base32 digits of 128 bits = 48-bit ms time,
 *  16-bit worker, 64-bit per-worker sequence (ULID layout: ids sort by time, then worker, then
 *  seq). Pure. */
void bg_record_id_make(int64_t ts_ms, unsigned worker, uint64_t seq, char out[27]);

/** Append one record as a JSON line (no newline) to out, with "prev" = prev_hash, and write its
 *  hash (canonical form above) into hash_out[65]. Member order: ts id caller vendor host method
 *  path dest_ip dest_country dest_region cross_border categories detections mechanism
 *  [scc_module scc_reference] decision reason enforced status bytes_in bytes_out duration_ms
 *  protocol [upstream_protocol] config_version prev hash. Pure. */
void bg_record_encode(const bg_record_t *r, const char prev_hash[65], bg_buf_t *out, char hash_out[65]);

/** Check one line (no newline) of a record file: 0 when it is a well-formed record whose hash
 *  matches; then prev_out/hash_out (65 bytes each) hold its links. Otherwise a negative code
 *  and *why a static message. Pure. */
int bg_record_check_line(const char *line, size_t len, char prev_out[65], char hash_out[65], const char **why);

/* Small JSON readers over one record line, for verify and report. Pure; no allocation. */
/** Whether p[0..n) is exactly one valid JSON value (RFC 8259, nesting ≤ 64) with optional
 *  surrounding whitespace. */
bool bg_records_json_valid(const char *p, size_t n);
/** Find top-level member `key` of the object in p[0..n); its raw value span in *v, length *vn.
 *  Returns true when found. The object must be valid JSON (check first). */
bool bg_records_json_member(const char *p, size_t n, const char *key, const char **v, size_t *vn);
/** Decode a raw JSON string value span (with quotes) into out (NUL-terminated, truncated to
 *  outlen-1). Returns the decoded length, or -1 when the span is not a string. */
int bg_records_json_string(const char *v, size_t vn, char *out, size_t outlen);
/** Iterate the string elements of a raw JSON array span: *pos starts at 0; each call decodes the
 *  next string into out and returns true, false at the end (or on a non-string element). */
bool bg_records_json_array_next(const char *v, size_t vn, size_t *pos, char *out, size_t outlen);

/* Internal to records_*.c: the writer encodes bodies on the submitting thread and chains them
 * on its own. Not for other modules. */
/** Append the record up to but excluding its ,"prev" member to out. Pure. */
void bg_records_encode_body(const bg_record_t *r, bg_buf_t *out);
/** The same body in a malloc'd string of exactly its bytes and a NUL (*len bytes); the caller
 *  frees it. Encoded on the stack when its worst case fits (one allocation, no resizing). */
char *bg_records_encode_body_dup(const bg_record_t *r, size_t *len);
/** Complete a body that starts at out->data[start]: append ,"prev":"<prev>", hash the canonical
 *  form, append ,"hash":"<hash>"} and write the hash into hash_out (may alias prev). Pure. */
void bg_records_chain_body(bg_buf_t *out, size_t start, const char prev[65], char hash_out[65]);
/** The same with a digest context the caller keeps across records (the writer thread's: no
 *  algorithm fetch and no context allocation per record). md: SHA-256 (EVP_MD_fetch). */
void bg_records_chain_body_ctx(bg_buf_t *out, size_t start, const char prev[65], char hash_out[65],
                               EVP_MD_CTX *ctx, const EVP_MD *md);

typedef struct bg_records bg_records_t; /* the writer: one thread, a bounded queue */

/** Open cfg->records (path, rotate_size, retention_days, fsync), recover the chain head from the
 *  last line of the current file (or of the newest rotated sibling when the current file is
 *  empty or missing; a torn final line is cut off first), delete expired rotated files, and
 *  start the writer thread. Returns 0 and the writer in *out, or -1 with a message in err. */
int bg_records_open(const bg_config_t *cfg, bg_records_t **out, char *err, size_t errlen);

/** Reserve a slot of the writer's queue (records.queue_size slots, shared by the records
 *  queued and the reservations not yet submitted) for one record to come. Never blocks: 0, or
 *  -EAGAIN when every slot is taken (counted in bg_records_refused). An exchange reserves when it
 *  is admitted, before anything is forwarded, so that its record always finds room: a slow or
 *  stalled disk turns into refused requests, never into a blocked worker or a lost record.
 *  Thread-safe, lock-free. */
int bg_records_reserve(bg_records_t *w);
/** Give back a reservation that will not be submitted. Thread-safe. */
void bg_records_unreserve(bg_records_t *w);
/** Hand a record to the writer into a slot taken by bg_records_reserve (encoded and copied here,
 *  on the caller's thread); consumes the reservation whatever it returns. Never blocks (but for
 *  the queue's lock, held only for the push). done (may be NULL) is called ON THE WRITER THREAD
 *  once the record is written (and fsynced when fsync: always) with 0, or a negative errno if it
 *  could not be written. Returns 0, -E2BIG (a line over BG_RECORD_MAX_LINE), or -EIO when the
 *  writer is failed (then done is never called; the caller blocks the transfer:
 *  records_unavailable). Thread-safe. */
int bg_records_submit_reserved(bg_records_t *w, const bg_record_t *r, void (*done)(void *arg, int status), void *arg);
/** The same without a reservation: waits while every slot is taken (back-pressure; never drops).
 *  For callers that may block (tools, tests); the data plane reserves. Thread-safe. */
int bg_records_submit(bg_records_t *w, const bg_record_t *r, void (*done)(void *arg, int status), void *arg);
/** Whether the writer can take traffic: false while it is failed (*why = "failing"), while it is
 *  stalled (bg_records_stall_ms > 0: "stalled"), or once 3/4 of its slots are taken, until they
 *  are back under 1/2 ("backlogged"); else "ok". stall_ms (may be NULL) gets the stall age that
 *  made the verdict "stalled", else 0: one reading, so a message built from it agrees with the
 *  verdict even if the writer progresses meanwhile (a second bg_records_stall_ms may say 0).
 *  Thread-safe (the hysteresis state is an atomic flag). */
bool bg_records_ready(bg_records_t *w, const char **why, uint64_t *stall_ms);
/** How long (ms) the writer has had work pending (a queued record, or written lines to fsync)
 *  without finishing a step, when that is at least records.stall_timeout; else 0. Catches a
 *  writer blocked in write(2)/fsync(2) on a dead disk under traffic too light to fill the
 *  queue. Thread-safe. */
uint64_t bg_records_stall_ms(const bg_records_t *w);
/** The same age without the threshold: 0 while the writer is idle, a few ms while it keeps up.
 *  Thread-safe. */
uint64_t bg_records_pending_ms(const bg_records_t *w);
/** Slots taken (queued records plus outstanding reservations), the capacity, and reservations
 *  refused since open. Thread-safe. */
uint64_t bg_records_slots_used(const bg_records_t *w);
uint64_t bg_records_capacity(const bg_records_t *w);
uint64_t bg_records_refused(const bg_records_t *w);
/** false after a write/fsync/open error, until a successful bg_records_reopen. Thread-safe. */
bool bg_records_healthy(const bg_records_t *w);
/** Records queued and not yet taken by the writer. Thread-safe. */
uint64_t bg_records_queue_depth(const bg_records_t *w);
/** Records written (write(2) returned) since open. Thread-safe. */
uint64_t bg_records_written(const bg_records_t *w);
/** fsync/fdatasync calls made since open (for tests and metrics). Thread-safe. */
uint64_t bg_records_syncs(const bg_records_t *w);
/** Ask the writer to close and reopen the path (SIGUSR1 after logrotate renamed the file); a
 *  failed writer retries opening and recovers its chain head from disk. Asynchronous,
 *  thread-safe; not async-signal-safe (call it from the loop's signal watcher). */
void bg_records_reopen(bg_records_t *w);
/** Flush everything queued, fsync, stop the thread, free. NULL is ignored. No submit may run
 *  concurrently or after. */
void bg_records_close(bg_records_t *w);

/** records verify: check the chain across files in the given order; prints to `out` the count
 *  and, on failure, the first broken FILE:LINE and why (a torn final line of the last file is
 *  reported distinctly, as "truncated"). Returns 0 ok, 1 broken (or unreadable). */
int bg_records_verify(char **files, size_t nfiles, FILE *out);
/** The same over already open streams (names are used in messages). For fuzzing and tests. */
int bg_records_verify_streams(FILE **ins, const char *const *names, size_t n, FILE *out);

#endif
