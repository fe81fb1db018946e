/*
 * records_encode.c — record ids and the canonical JSON line of a transfer record (records.h
 * documents the form the hash covers). Pure: no clock, no globals; thread-safe.
 * Invariant: "prev" and "hash" are always the last two members, so a line's hash can be
 * checked byte-for-byte without re-serialising it.
 */
#include "records.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void bg_record_id_make(int64_t ts_ms, unsigned worker, uint64_t seq, char out[27])
{
    /* 128 bits, most significant first: hi = time(48) | worker(16); lo = seq(64). */
    uint64_t hi = ((uint64_t)ts_ms & 0xffffffffffffull) << 16 | (worker & 0xffffu);
    uint64_t lo = seq;
    /* 26 digits × 5 bits = 130 bits: the top digit carries the top 3 bits (as in ULID). */
    for (int i = 25; i >= 0; i--) {
        out[i] = crockford[lo & 31];
        lo = (lo >> 5) | (hi << 59);
        hi >>= 5;
    }
    out[26] = 0;
}

/* Plain appends, not printf: this runs once per transfer on the workers. Keys are literals
 * (their strlen folds at compile time). */
static inline void put_lit(bg_buf_t *b, const char *s) { bg_buf_append(b, s, strlen(s)); }

static inline void put_key(bg_buf_t *b, const char *key, const char *tail)
{
    bg_buf_append(b, ",\"", 2);
    put_lit(b, key);
    put_lit(b, tail);
}

static inline void put_str(bg_buf_t *b, const char *key, const char *val)
{
    put_key(b, key, "\":\"");
    if (val)
        bg_buf_append_json(b, val, strlen(val));
    bg_buf_append(b, "\"", 1);
}

static inline void put_u64(bg_buf_t *b, const char *key, uint64_t v)
{
    put_key(b, key, "\":");
    bg_buf_append_u64(b, v);
}

static void put2(char *p, unsigned v) { p[0] = (char)('0' + v / 10 % 10), p[1] = (char)('0' + v % 10); }

/* "YYYY-MM-DDThh:mm:ss.mmmZ" as bg_format_rfc3339_ms writes it, without gmtime and snprintf. */
static void put_ts(bg_buf_t *b, int64_t ms)
{
    int y = 0;
    unsigned mo = 0, d = 0;
    int64_t s = ms / 1000, days = s / 86400;
    if (ms >= 0)
        bg_civil_from_days(days, &y, &mo, &d);
    if (ms < 0 || y > 9999) {
        char ts[32];
        bg_format_rfc3339_ms(ms, ts);
        put_lit(b, ts);
        return;
    }
    unsigned sod = (unsigned)(s % 86400), msec = (unsigned)(ms % 1000);
    char t[24];
    put2(t, (unsigned)y / 100), put2(t + 2, (unsigned)y % 100);
    t[4] = '-', put2(t + 5, mo), t[7] = '-', put2(t + 8, d), t[10] = 'T';
    put2(t + 11, sod / 3600), t[13] = ':', put2(t + 14, sod / 60 % 60), t[16] = ':', put2(t + 17, sod % 60);
    t[19] = '.', t[20] = (char)('0' + msec / 100), put2(t + 21, msec % 100), t[23] = 'Z';
    bg_buf_append(b, t, sizeof t);
}

/* Everything up to (and excluding) the ,"prev" member. */
static void encode_body(const bg_record_t *r, bg_buf_t *b)
{
    bg_buf_reserve(b, 768); /* a typical line: one allocation */
    put_lit(b, "{\"ts\":\"");
    put_ts(b, r->ts_ms);
    bg_buf_append(b, "\"", 1);
    put_str(b, "id", r->id);
    put_str(b, "caller", r->caller);
    put_str(b, "vendor", r->vendor);
    put_str(b, "host", r->host);
    put_str(b, "method", r->method);
    put_str(b, "path", r->path);
    put_str(b, "dest_ip", r->dest_ip);
    put_str(b, "dest_country", r->dest_country);
    put_str(b, "dest_region", r->dest_region);
    put_lit(b, r->cross_border ? ",\"cross_border\":true,\"categories\":[" : ",\"cross_border\":false,\"categories\":[");
    bool first = true;
    for (int c = 0; c < BG_CAT__COUNT; c++)
        if (r->categories & (1u << c)) {
            put_lit(b, first ? "\"" : ",\"");
            put_lit(b, bg_category_name(c));
            bg_buf_append(b, "\"", 1);
            first = false;
        }
    put_lit(b, "],\"detections\":{");
    first = true;
    for (size_t i = 0; i < r->ndetectors; i++) {
        if (!r->detector_counts || !r->detector_names || r->detector_counts[i] == 0)
            continue;
        const char *n = r->detector_names[i] ? r->detector_names[i] : "";
        put_lit(b, first ? "\"" : ",\"");
        bg_buf_append_json(b, n, strlen(n));
        bg_buf_append(b, "\":", 2);
        bg_buf_append_u64(b, r->detector_counts[i]);
        first = false;
    }
    put_lit(b, "},\"mechanism\":\"");
    put_lit(b, bg_mechanism_name(r->mechanism));
    bg_buf_append(b, "\"", 1);
    if (r->mechanism == BG_MECH_SCC) {
        put_lit(b, ",\"scc_module\":");
        if (r->scc_module < 0)
            bg_buf_append(b, "-", 1);
        bg_buf_append_u64(b, r->scc_module < 0 ? (uint64_t)(-(int64_t)r->scc_module) : (uint64_t)r->scc_module);
        put_str(b, "scc_reference", r->scc_reference);
    }
    put_lit(b, ",\"decision\":\"");
    put_lit(b, bg_decision_name(r->decision));
    bg_buf_append(b, "\"", 1);
    put_str(b, "reason", r->reason);
    put_lit(b, r->enforced ? ",\"enforced\":true" : ",\"enforced\":false");
    put_lit(b, ",\"status\":");
    if (r->status < 0)
        bg_buf_append(b, "-", 1);
    bg_buf_append_u64(b, r->status < 0 ? (uint64_t)(-(int64_t)r->status) : (uint64_t)r->status);
    put_u64(b, "bytes_in", r->bytes_in);
    put_u64(b, "bytes_out", r->bytes_out);
    put_u64(b, "duration_ms", r->duration_ms);
    put_str(b, "protocol", r->protocol);
    put_str(b, "config_version", r->config_version);
}

/* Append ,"prev":"P"} to a body at out[start..], hash it, then insert ,"hash":"H" before the
 * closing brace. Shared by bg_record_encode and the writer (which encodes bodies on the
 * submitting thread and chains them on its own). */
void bg_records_chain_body(bg_buf_t *out, size_t start, const char prev[65], char hash_out[65])
{
    bg_buf_puts(out, ",\"prev\":\"");
    bg_buf_append(out, prev, 64);
    bg_buf_puts(out, "\"}");
    bg_sha256_hex(out->data + start, out->len - start, hash_out);
    out->len--; /* drop the brace, then append the hash member and the brace again */
    bg_buf_puts(out, ",\"hash\":\"");
    bg_buf_append(out, hash_out, 64);
    bg_buf_puts(out, "\"}");
}

void bg_records_encode_body(const bg_record_t *r, bg_buf_t *out) { encode_body(r, out); }

void bg_record_encode(const bg_record_t *r, const char prev_hash[65], bg_buf_t *out, char hash_out[65])
{
    size_t start = out->len;
    encode_body(r, out);
    bg_records_chain_body(out, start, prev_hash, hash_out);
}

/* SHA-256 of a‖b in hex, without copying a. */
static void sha256_hex2(const void *a, size_t an, const void *b, size_t bn, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        abort();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, a, an);
    EVP_DigestUpdate(ctx, b, bn);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = 0;
}

static bool is_hex64(const char *p)
{
    for (int i = 0; i < 64; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

/* ,"prev":"<64>","hash":"<64>"} — 9 + 64 + 10 + 64 + 2 bytes. */
#define TAIL_LEN (9 + 64 + 10 + 64 + 2)

int bg_record_check_line(const char *line, size_t len, char prev_out[65], char hash_out[65], const char **why)
{
    if (len == 0) {
        *why = "empty line";
        return -1;
    }
    if (len > BG_RECORD_MAX_LINE) {
        *why = "line too long";
        return -1;
    }
    if (!bg_records_json_valid(line, len) || line[0] != '{') {
        *why = "not a JSON object";
        return -2;
    }
    const char *t = line + len - TAIL_LEN;
    if (len < TAIL_LEN + 2 || memcmp(t, ",\"prev\":\"", 9) != 0 || !is_hex64(t + 9) ||
        memcmp(t + 73, "\",\"hash\":\"", 10) != 0 || !is_hex64(t + 83) || memcmp(t + 147, "\"}", 2) != 0) {
        *why = "not a record: \"prev\" and \"hash\" are not the last members";
        return -3;
    }
    /* The canonical form: the line without ,"hash":"..." — hash the prefix up to the end of
     * the prev member, then the closing brace. */
    size_t plen = (size_t)(t - line) + 9 + 64 + 1;
    char want[65];
    sha256_hex2(line, plen, "}", 1, want);
    memcpy(prev_out, t + 9, 64);
    prev_out[64] = 0;
    memcpy(hash_out, t + 83, 64);
    hash_out[64] = 0;
    if (memcmp(want, hash_out, 64) != 0) {
        *why = "hash mismatch: the record was modified";
        return -4;
    }
    return 0;
}
