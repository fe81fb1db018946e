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
    /* 26 digits x 5 bits = 130 bits: the top digit carries the top 3 bits (as in ULID). Digit k
     * from the right holds bits 5k..5k+4: the low 12 digits come from lo, the 13th straddles
     * the two words, the top 13 come from hi. */
    for (int k = 0; k < 12; k++)
        out[25 - k] = crockford[(lo >> (5 * k)) & 31];
    out[13] = crockford[((lo >> 60) | (hi << 4)) & 31];
    for (int k = 13; k < 26; k++)
        out[25 - k] = crockford[(hi >> (5 * k - 64)) & 31];
    out[26] = 0;
}

/* The body is written in one pass into space reserved for its worst case (every string byte
 * escaped as \u00XX): no printf, no per-piece bounds checks. This runs once per transfer on the
 * workers. The escapes are bg_buf_json_escape's, byte for byte (the same bg_json_special table). */

static inline char *w_mem(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define W_LIT(p, lit) w_mem((p), (lit), sizeof(lit) - 1)

/* Whether any of the 8 bytes in x is special for JSON (bg_json_special: below 0x20, '"', '\\'
 * or 0x7f). Exact: the has-zero-byte and has-less-than tests never report a byte that is not. */
static inline bool word_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\'), d = x ^ (ones * 0x7f);
    uint64_t lt = (x - ones * 0x20) & ~x;
    uint64_t z = ((q - ones) & ~q) | ((b - ones) & ~b) | ((d - ones) & ~d);
    return ((lt | z) & highs) != 0;
}

static char *w_json_slow(char *p, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        /* A run of plain bytes (all of it, mostly) is copied at once; eight are looked at per
         * step until a word holds a special byte. */
        size_t j = i;
        for (uint64_t x; j + 8 <= n && (memcpy(&x, s + j, 8), !word_special(x));)
            j += 8;
        while (j < n && !bg_json_special[(unsigned char)s[j]])
            j++;
        if (j > i) {
            p = w_mem(p, s + i, j - i);
            if (j == n)
                break;
            i = j;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\', *p++ = (char)c;
        } else {
            p = W_LIT(p, "\\u00");
            *p++ = hex[c >> 4], *p++ = hex[c & 15];
        }
    }
    return p;
}

/* The common case first: a string with nothing to escape (ids, addresses, country codes,
 * hashes, most paths) is checked and copied a word at a time, its last word overlapping the one
 * before, without a memcpy call; at the first word (or byte) that holds a special byte the
 * general loop takes over from the last clean word. */
static inline char *w_json(char *p, const char *s, size_t n)
{
    size_t i = 0;
    uint64_t x;
    if (n >= 8) {
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, s + i, 8);
            if (word_special(x))
                return w_json_slow(p + i, s + i, n - i);
            memcpy(p + i, &x, 8);
        }
        if (i < n) {
            memcpy(&x, s + n - 8, 8);
            if (word_special(x))
                return w_json_slow(p + i, s + i, n - i);
            memcpy(p + n - 8, &x, 8);
        }
        return p + n;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (bg_json_special[c])
            return w_json_slow(p + i, s + i, n - i);
        p[i] = (char)c;
    }
    return p + n;
}

static char *w_u64(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = sizeof tmp;
    do
        tmp[--n] = (char)('0' + v % 10);
    while ((v /= 10) && n);
    return w_mem(p, tmp + n, sizeof tmp - n);
}

static char *w_int(char *p, int v)
{
    if (v < 0)
        *p++ = '-';
    return w_u64(p, v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v);
}

/* ,"key":"escaped value" — key is a literal; n is strlen(val) (0 for NULL), from encode_bound. */
#define W_STR(p, key, val, n) w_str((p), ",\"" key "\":\"", sizeof(",\"" key "\":\"") - 1, (val), (n))

static char *w_str(char *p, const char *head, size_t hn, const char *val, size_t n)
{
    p = w_mem(p, head, hn);
    if (val)
        p = w_json(p, val, n);
    *p++ = '"';
    return p;
}

static void put2(char *p, unsigned v) { p[0] = (char)('0' + v / 10 % 10), p[1] = (char)('0' + v % 10); }

/* "YYYY-MM-DDThh:mm:ss.mmmZ" as bg_format_rfc3339_ms writes it, without gmtime and snprintf. */
static char *w_ts(char *p, int64_t ms)
{
    int y = 0;
    unsigned mo = 0, d = 0;
    int64_t s = ms / 1000, days = s / 86400;
    if (ms >= 0)
        bg_civil_from_days(days, &y, &mo, &d);
    if (ms < 0 || y > 9999) {
        char ts[32];
        bg_format_rfc3339_ms(ms, ts);
        return w_mem(p, ts, strlen(ts));
    }
    unsigned sod = (unsigned)(s % 86400), msec = (unsigned)(ms % 1000);
    put2(p, (unsigned)y / 100), put2(p + 2, (unsigned)y % 100);
    p[4] = '-', put2(p + 5, mo), p[7] = '-', put2(p + 8, d), p[10] = 'T';
    put2(p + 11, sod / 3600), p[13] = ':', put2(p + 14, sod / 60 % 60), p[16] = ':', put2(p + 17, sod % 60);
    p[19] = '.', p[20] = (char)('0' + msec / 100), put2(p + 21, msec % 100), p[23] = 'Z';
    return p + 24;
}

static size_t slen(const char *s) { return s ? strlen(s) : 0; }

/* The record's strings, measured once by encode_bound for encode_into. */
enum { L_ID, L_CALLER, L_VENDOR, L_HOST, L_METHOD, L_PATH, L_DEST_IP, L_DEST_COUNTRY, L_DEST_REGION,
       L_SCC_REFERENCE, L_REASON, L_PROTOCOL, L_UPSTREAM_PROTOCOL, L_CONFIG_VERSION, L__COUNT };

/* Worst case of the body: the fixed text (keys, literals, numbers, names) under 1 KiB, plus 6
 * bytes per string byte (\u00XX) and per detector-name byte. Fills len[] for encode_into. */
static size_t encode_bound(const bg_record_t *r, size_t len[L__COUNT])
{
    len[L_ID] = slen(r->id), len[L_CALLER] = slen(r->caller), len[L_VENDOR] = slen(r->vendor);
    len[L_HOST] = slen(r->host), len[L_METHOD] = slen(r->method), len[L_PATH] = slen(r->path);
    len[L_DEST_IP] = slen(r->dest_ip), len[L_DEST_COUNTRY] = slen(r->dest_country);
    len[L_DEST_REGION] = slen(r->dest_region), len[L_SCC_REFERENCE] = slen(r->scc_reference);
    len[L_REASON] = slen(r->reason), len[L_PROTOCOL] = slen(r->protocol);
    len[L_UPSTREAM_PROTOCOL] = slen(r->upstream_protocol), len[L_CONFIG_VERSION] = slen(r->config_version);
    size_t strings = 0;
    for (int i = 0; i < L__COUNT; i++)
        strings += len[i];
    size_t dets = 0;
    for (size_t i = 0; r->detector_counts && r->detector_names && i < r->ndetectors; i++)
        dets += slen(r->detector_names[i]) * 6 + 32;
    return 1024 + 6 * strings + dets;
}

/* Everything up to (and excluding) the ,"prev" member, written at p (encode_bound bytes free,
 * len[] from it); returns the end. */
static char *encode_into(const bg_record_t *r, const size_t len[L__COUNT], char *p)
{
    p = W_LIT(p, "{\"ts\":\"");
    p = w_ts(p, r->ts_ms);
    *p++ = '"';
    p = W_STR(p, "id", r->id, len[L_ID]);
    p = W_STR(p, "caller", r->caller, len[L_CALLER]);
    p = W_STR(p, "vendor", r->vendor, len[L_VENDOR]);
    p = W_STR(p, "host", r->host, len[L_HOST]);
    p = W_STR(p, "method", r->method, len[L_METHOD]);
    p = W_STR(p, "path", r->path, len[L_PATH]);
    p = W_STR(p, "dest_ip", r->dest_ip, len[L_DEST_IP]);
    p = W_STR(p, "dest_country", r->dest_country, len[L_DEST_COUNTRY]);
    p = W_STR(p, "dest_region", r->dest_region, len[L_DEST_REGION]);
    if (r->cross_border)
        p = W_LIT(p, ",\"cross_border\":true,\"categories\":[");
    else
        p = W_LIT(p, ",\"cross_border\":false,\"categories\":[");
    bool first = true;
    for (int c = 0; c < BG_CAT__COUNT; c++)
        if (r->categories & (1u << c)) {
            if (!first)
                *p++ = ',';
            *p++ = '"';
            const char *name = bg_category_name(c);
            p = w_mem(p, name, strlen(name));
            *p++ = '"';
            first = false;
        }
    p = W_LIT(p, "],\"detections\":{");
    first = true;
    for (size_t i = 0; i < r->ndetectors; i++) {
        if (!r->detector_counts || !r->detector_names || r->detector_counts[i] == 0)
            continue;
        const char *n = r->detector_names[i] ? r->detector_names[i] : "";
        if (!first)
            *p++ = ',';
        *p++ = '"';
        p = w_json(p, n, strlen(n));
        *p++ = '"', *p++ = ':';
        p = w_u64(p, r->detector_counts[i]);
        first = false;
    }
    p = W_LIT(p, "},\"mechanism\":\"");
    const char *mech = bg_mechanism_name(r->mechanism);
    p = w_mem(p, mech, strlen(mech));
    *p++ = '"';
    if (r->mechanism == BG_MECH_SCC) {
        p = W_LIT(p, ",\"scc_module\":");
        p = w_int(p, r->scc_module);
        p = W_STR(p, "scc_reference", r->scc_reference, len[L_SCC_REFERENCE]);
    }
    p = W_LIT(p, ",\"decision\":\"");
    const char *dec = bg_decision_name(r->decision);
    p = w_mem(p, dec, strlen(dec));
    *p++ = '"';
    p = W_STR(p, "reason", r->reason, len[L_REASON]);
    if (r->enforced)
        p = W_LIT(p, ",\"enforced\":true");
    else
        p = W_LIT(p, ",\"enforced\":false");
    p = W_LIT(p, ",\"status\":");
    p = w_int(p, r->status);
    p = W_LIT(p, ",\"bytes_in\":");
    p = w_u64(p, r->bytes_in);
    p = W_LIT(p, ",\"bytes_out\":");
    p = w_u64(p, r->bytes_out);
    p = W_LIT(p, ",\"duration_ms\":");
    p = w_u64(p, r->duration_ms);
    p = W_STR(p, "protocol", r->protocol, len[L_PROTOCOL]);
    if (r->upstream_protocol)
        p = W_STR(p, "upstream_protocol", r->upstream_protocol, len[L_UPSTREAM_PROTOCOL]);
    p = W_STR(p, "config_version", r->config_version, len[L_CONFIG_VERSION]);
    return p;
}

static void encode_body(const bg_record_t *r, bg_buf_t *b)
{
    size_t len[L__COUNT];
    char *base = bg_buf_space(b, encode_bound(r, len));
    bg_buf_commit(b, (size_t)(encode_into(r, len, base) - base));
}

char *bg_records_encode_body_dup(const bg_record_t *r, size_t *len)
{
    char tmp[4096];
    size_t sl[L__COUNT];
    size_t bound = encode_bound(r, sl);
    if (bound >= sizeof tmp) {
        char *d = malloc(bound + 1);
        if (!d)
            abort();
        size_t n = (size_t)(encode_into(r, sl, d) - d);
        char *t = realloc(d, n + 1); /* keeps only its bytes (and the NUL) */
        d = t ? t : d;
        d[n] = 0;
        *len = n;
        return d;
    }
    size_t n = (size_t)(encode_into(r, sl, tmp) - tmp);
    char *d = malloc(n + 1);
    if (!d)
        abort();
    memcpy(d, tmp, n);
    d[n] = 0;
    *len = n;
    return d;
}

/* Append ,"prev":"P"} to a body at out[start..], hash it, then insert ,"hash":"H" before the
 * closing brace. Shared by bg_record_encode and the writer (which encodes bodies on the
 * submitting thread and chains them on its own). */
static void chain(bg_buf_t *out, size_t start, const char prev[65], char hash_out[65], EVP_MD_CTX *ctx,
                  const EVP_MD *md)
{
    bg_buf_puts(out, ",\"prev\":\"");
    bg_buf_append(out, prev, 64);
    bg_buf_puts(out, "\"}");
    unsigned char d[32];
    unsigned int dlen = 0;
    if (ctx && md && EVP_DigestInit_ex2(ctx, md, NULL) == 1 &&
        EVP_DigestUpdate(ctx, out->data + start, out->len - start) == 1 && EVP_DigestFinal_ex(ctx, d, &dlen) == 1 &&
        dlen == 32) {
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++)
            hash_out[2 * i] = hex[d[i] >> 4], hash_out[2 * i + 1] = hex[d[i] & 15];
        hash_out[64] = 0;
    } else {
        bg_sha256_hex(out->data + start, out->len - start, hash_out);
    }
    out->len--; /* drop the brace, then append the hash member and the brace again */
    bg_buf_puts(out, ",\"hash\":\"");
    bg_buf_append(out, hash_out, 64);
    bg_buf_puts(out, "\"}");
}

void bg_records_chain_body(bg_buf_t *out, size_t start, const char prev[65], char hash_out[65])
{
    chain(out, start, prev, hash_out, NULL, NULL);
}

void bg_records_chain_body_ctx(bg_buf_t *out, size_t start, const char prev[65], char hash_out[65],
                               EVP_MD_CTX *ctx, const EVP_MD *md)
{
    chain(out, start, prev, hash_out, ctx, md);
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
