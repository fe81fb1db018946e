/*
 * tools/classify_diff.c — freezes the classifier's behaviour for optimisation work: classifies a
 * large deterministic corpus (JSON, form, text, query and header inputs built from PII-like and
 * look-alike fragments, escapes, UTF-8, truncations and byte mutations) plus, optionally, the
 * `text` of each line of JSONL files, and prints every finding (detector, where, header, offset,
 * length, flags, path) and the categories/unscannable state per input. A second corpus repeats
 * values within a document (the JSON walk's memo of values that found nothing), a third is
 * UUID- and timestamp-shaped values and their near misses (the shape pre-filters), a fourth targets
 * in absolute form and their near misses and header sets naming the body's type in other
 * spellings (the scheme skip, find_header). Run it from two builds
 * and diff the outputs: they must be identical. Single thread; output is plain text on stdout.
 *   build/tests/tools/classify_diff [N-synthetic (default 20000)] [file.jsonl ...] > out.txt
 * BG_DIFF_SKIP_LOCATIONS=1 classifies as the gateway does (skip_locations: every path empty), so
 * that the data plane's code paths are compared too.
 */
#include "classify.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool skip_loc; /* BG_DIFF_SKIP_LOCATIONS=1 */

static uint64_t rng = 0x243f6a8885a308d3ULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
#define PICK(a) (a)[rnd() % (sizeof(a) / sizeof((a)[0]))]

static const char *const keys[] = {
    "id", "name", "first_name", "last_name", "full_name", "holder_name", "email", "e-mail", "phone", "tel",
    "mobile", "ip", "client_ip", "address", "lat", "lng", "latitude", "longitude", "location", "geo", "coords",
    "device_id", "idfa", "imei", "mac", "uuid", "request_id", "sku", "price", "product", "title", "dob",
    "date_of_birth", "birthday", "ssn", "nino", "iban", "card", "card_number", "token", "api_key", "apiKey",
    "password", "secret", "access_token", "session", "messages", "prompt", "input", "content", "role", "text",
    "description", "version", "order_id", "tracking", "user", "customer", "contact", "billing", "items", "data",
    "meta", "Customer-Name", "X_Api_Key", "UserAgent", "userAgent", "note", "comment", "username", "login",
    "account_number", "invoice", "amount", "currency", "timestamp", "created_at", "organisation", "company",
    "inputs", "system", "instructions", "\\u006eame", "ph\\u006fne", "caf\xc3\xa9", "x"};

static const char *const frags[] = {
    "ann.lee@example.com", "john.o'neil+tag@mail.example.co.uk", "not@an", "file@2x.png", "user@host.de",
    "+14155552671", "+44 20 7946 0958", "(415) 555-2671", "040 379 2455", "020 7946 0958", "2026-11-29",
    "12:34:56", "order 123456789", "phone: 415-555-2671", "tel +49 30 901820", "call me at 555 123 4567",
    "203.0.113.7", "10.0.0.1", "v=3.14.22.190", "Chrome/120.0.0.0", "1.3.6.1.4.1", "2001:db8::1",
    "fe80::1%eth0", "::ffff:192.0.2.1", "4111 1111 1111 1111", "4111111111111111", "5500-0000-0000-0004",
    "378282246310005", "1234567812345678", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432",
    "FR1420041010050500013M02606", "123-45-6789", "078-05-1120", "000-12-3456", "ssn 123456789",
    "AB123456C", "QQ 12 34 56 C", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "AKIAIOSFODNN7EXAMPLE", "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "xoxb-123456789012-abcdefghijkl", "AIzaSyA-1234567890abcdefghijklmnopqrstu", "Bearer abcdefghijklmnop",
    "48.8566, 2.3522", "48.8566,2.3522", "-33.8688", "151.2093", "91.5", "00:1A:2B:3C:4D:5E",
    "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e", "490154203237518", "IMEI 356938035643809",
    "620476c1-43ad-4d5c-a7a6-c5780eb765ef", "00000000-0000-0000-0000-000000000000", "Ann Lee", "María José",
    "O'Brien", "Ergonomic Steel Chair", "born 1990-01-31", "DOB: 31/01/1990", "date of birth 31.01.1990",
    "SKU-00042", "INV-2026-0001", "tracking 1Z999AA10123456784", "the quick brown fox", "hello world",
    "Mozilla/5.0 (X11; Linux x86_64)", "ratio 0.1234", "3.14159", "1e10", "caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 5",
    "\xf0\x9f\x98\x80 emoji", "line\nbreak", "tab\there", "quote\"inside", "back\\slash", "a/b", "x:y:z",
    "ab:cd:ef:01:23:45", "12:ab", "::", "1.2.3.4.5", "978-3-16-148410-0", "+", "(", "@", "@@", "a@b.c",
    "me@127.0.0.1", "http://www.example.hu/path?q=1", "Ann@Lee", "ANN LEE", "Dr. Ann Lee", "anne", "sk_test_x",
    "AB 12 34 56", "6011 0000 0000 0004", "3530111333300000", "12 34 56 78 90 12", "0049 30 901820",
    "+1 (415) 555-2671 ext. 12", "AKIAABCDEFGHIJKLMNOPabc", "AIzaSyABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
    "abcd.efab.cdef", "ab:cd:ef:ab:cd:ef", "abcd::ef", "eyJabcdefghijkl.eyJabcdefghijkl.abcdef", "Is it", "555-0100", "1-800-555-0199", "31/12/2025", "GR1601101250000000012300695",
    /* The shapes text_quick_skip waves through (UUIDs, ISO timestamps, digit strings, SKUs) and
     * their near misses: each one's answer must not change. */
    "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "12345678-1234-4123-a123-123456789012", "DE893704-0044-0532-0130-00ABCDEF0123",
    "de893704-0044-0532-0130-00abcdef0123", "ab123456-c1d2-4e3f-a4b5-ab123456c1d2", "AB123456-C1D2-4E3F-A4B5-AB123456C1D2",
    "4111-1111-1111-1111abcd", "a4111111-1111-1111-1111-abcdefabcdef", "00000000-0000-0000-0000-123456789012",
    "aaaaaaaa-4111-1111-1111-111111111111", "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "12ab34cd-56ef-78ab-90cd-12ef34ab56cd",
    "2026-11-29T12:34:56Z", "2026-11-29T12:34:56.789Z", "2026-11-29T12:34:56.123456789Z", "2026-11-29T12:34:56",
    "2026-11-29T12:34:56.1", "2026-11-29T12:34:56+01:00", "2026-11-29T12:34:56.123-05:00", "2026-11-29T12:34:56.1234567890Z",
    "1990-01-31T00:00:00Z", "2026-11-29 12:34:56", "2026-11-29T12:34", "1700000000000", "4111111111111",
    "4111111111111111", "378282246310005", "490154203237518", "123456789", "078051120", "4155552671", "14155552671",
    "1234567", "12345678", "123456789012", "5500000000000004", "12345678901234567890", "1234567890123456789",
    "BE685390-0754-7034-abcd-0123456789ab", "BE30A1B2-C3D4-E5F6-ABCD-0123ABCD4567", "be685390-0754-7034-abcd-0123456789ab", "SKU-00042", "SKU-1", "AB-123456", "A-1", "AKIA-123456", "SKU-1234567", "SKUSKUSKU-12", "sku-00042", "ABCDEF-123456",
};

static void frag(bg_buf_t *b)
{
    int k = 1 + (int)(rnd() % 3);
    for (int i = 0; i < k; i++) {
        if (i)
            bg_buf_puts(b, PICK(((const char *const[]){" ", ", ", " - ", "; ", "/", "", " at ", ": "})));
        bg_buf_puts(b, PICK(frags));
    }
}

/* frag, JSON-escaped (some escapes forced with \u forms). */
static void jfrag(bg_buf_t *b)
{
    bg_buf_t t;
    bg_buf_init(&t);
    frag(&t);
    for (size_t i = 0; i < t.len; i++) {
        unsigned char c = (unsigned char)t.data[i];
        if (c == '"' || c == '\\')
            bg_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            bg_buf_puts(b, "\\n");
        else if (c == '\t')
            bg_buf_puts(b, "\\t");
        else if (c < 0x80 && rnd() % 97 == 0)
            bg_buf_printf(b, "\\u%04x", c);
        else if (c == '/' && rnd() % 5 == 0)
            bg_buf_puts(b, "\\/");
        else
            bg_buf_printf(b, "%c", c);
    }
    bg_buf_dispose(&t);
}

/* Repeat mode (the second corpus): string values are mostly drawn from a small pool built per
 * document, so a body repeats its values under the same and under other keys, as API bodies do
 * (the classifier's memo of values that found nothing must not change an answer). */
static bool rep_mode;
static bg_buf_t rep_pool[6];

static void jvalue(bg_buf_t *b, int depth)
{
    unsigned r = rnd() % 16;
    if (depth > 5)
        r = 8 + r % 8;
    if (r < 2) {
        bg_buf_puts(b, "{");
        int n = (int)(rnd() % 6);
        for (int i = 0; i < n; i++) {
            bg_buf_printf(b, "%s\"%s\":", i ? "," : "", PICK(keys));
            jvalue(b, depth + 1);
        }
        bg_buf_puts(b, "}");
    } else if (r < 4) {
        bg_buf_puts(b, "[");
        int n = (int)(rnd() % 5);
        for (int i = 0; i < n; i++) {
            if (i)
                bg_buf_puts(b, rnd() % 2 ? "," : " , ");
            jvalue(b, depth + 1);
        }
        bg_buf_puts(b, "]");
    } else if (r < 12) {
        bg_buf_puts(b, "\"");
        if (rep_mode && rnd() % 4) {
            const bg_buf_t *v = &rep_pool[rnd() % 6];
            bg_buf_append(b, v->data, v->len);
        } else {
            jfrag(b);
        }
        bg_buf_puts(b, "\"");
    } else if (r < 14) {
        static const char *const nums[] = {"0", "-1", "3.5", "14155552671", "4111111111111111", "48.8566",
                                           "1e5", "123456789", "490154203237518", "-122.4194", "2026"};
        bg_buf_puts(b, PICK(nums));
    } else {
        bg_buf_puts(b, PICK(((const char *const[]){"true", "false", "null"})));
    }
}

static void json_doc(bg_buf_t *b)
{
    if (rep_mode)
        for (int k = 0; k < 6; k++) {
            bg_buf_reset(&rep_pool[k]);
            jfrag(&rep_pool[k]);
        }
    bg_buf_puts(b, "{");
    int n = 1 + (int)(rnd() % (rep_mode ? 24 : 8));
    for (int i = 0; i < n; i++) {
        bg_buf_printf(b, "%s\n  \"%s\": ", i ? "," : "", PICK(keys));
        jvalue(b, 0);
    }
    bg_buf_puts(b, "}");
}

static void pct(bg_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ')
            bg_buf_puts(b, rnd() % 2 ? "+" : "%20");
        else if (c == '&' || c == '=' || c == '%' || c == '+' || c >= 0x80 || c < 0x20 || rnd() % 23 == 0)
            bg_buf_printf(b, "%%%02X", c);
        else
            bg_buf_printf(b, "%c", c);
    }
}

static void form(bg_buf_t *b)
{
    int n = 1 + (int)(rnd() % 6);
    for (int i = 0; i < n; i++) {
        const char *k = PICK(keys);
        bg_buf_t t;
        bg_buf_init(&t);
        frag(&t);
        bg_buf_printf(b, "%s%s=", i ? "&" : "", k);
        pct(b, t.data, t.len);
        bg_buf_dispose(&t);
    }
}

static bg_classifier_t *cl;
static bg_classification_t res;
static unsigned long ninputs;

static void dump(const char *label)
{
    printf("# %lu %s cats=%x unscan=%s kind=%s infl=%d trunc=%d n=%zu\n", ninputs++, label, res.categories,
           res.unscannable ? res.unscannable_reason : "-", bg_body_kind_name(res.body_kind), res.body_inflated,
           res.findings_truncated, res.nfindings);
    for (unsigned d = 0; d < bg_classifier_ndetectors(cl); d++)
        if (res.counts[d])
            printf("c %s %u\n", bg_classifier_detector_name(cl, d), res.counts[d]);
    for (size_t i = 0; i < res.nfindings; i++) {
        const bg_finding_t *f = &res.findings[i];
        printf("f %s %u %s h%u %u+%u s%u e%u %s\n", bg_classifier_detector_name(cl, f->detector), f->category,
               bg_where_name(f->where), f->header, f->offset, f->length, f->json_string, f->encoded, f->path);
    }
}

static void run_body(const char *ctype, const char *body, size_t n, bool ai, const char *label)
{
    bg_header_t h = {"Content-Type", 12, ctype, strlen(ctype)};
    bg_classify_input_t in = {&h, 1, "/v1/x", 5, body, n, false, ai, 0, skip_loc};
    bg_classify(cl, &in, &res);
    dump(label);
}

static void run_query(const char *q, size_t n, const char *label)
{
    bg_buf_t t;
    bg_buf_init(&t);
    bg_buf_puts(&t, "/api/v2/items?");
    bg_buf_append(&t, q, n);
    bg_classify_input_t in = {NULL, 0, t.data, t.len, NULL, 0, false, false, 0, skip_loc};
    bg_classify(cl, &in, &res);
    dump(label);
    bg_buf_dispose(&t);
}

static const char *const hnames[] = {"X-Note", "User-Agent", "X-Forwarded-For", "X-Real-IP", "Authorization",
                                     "Cookie", "X-Api-Key", "Referer", "X-Customer-Email", "X-Phone",
                                     "X-Session-Id", "Accept", "X-Device-Id", "Forwarded"};

static void run_header(const char *v, size_t n, const char *label)
{
    bg_header_t h[3] = {{"Host", 4, "api.example", 11}, {PICK(hnames), 0, v, n}, {PICK(hnames), 0, v, n}};
    h[1].name_len = strlen(h[1].name);
    h[2].name_len = strlen(h[2].name);
    bg_classify_input_t in = {h, 3, "/", 1, NULL, 0, false, false, 0, skip_loc};
    bg_classify(cl, &in, &res);
    dump(label);
}

/* Every way of looking at one piece of text. */
static void all_views(const char *t, size_t n, const char *label)
{
    char l[64];
    snprintf(l, sizeof l, "%s/text", label);
    run_body("text/plain", t, n, false, l);
    snprintf(l, sizeof l, "%s/header", label);
    run_header(t, n, l);
    bg_buf_t b;
    bg_buf_init(&b);
    const char *k = PICK(keys);
    bg_buf_printf(&b, "{\"%s\":\"", k);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '"' || c == '\\')
            bg_buf_printf(&b, "\\%c", c);
        else if (c < 0x20)
            bg_buf_printf(&b, "\\u%04x", c);
        else
            bg_buf_printf(&b, "%c", c);
    }
    bg_buf_puts(&b, "\"}");
    snprintf(l, sizeof l, "%s/json:%s", label, k);
    run_body("application/json", b.data, b.len, rnd() % 3 == 0, l);
    bg_buf_reset(&b);
    bg_buf_printf(&b, "%s=", PICK(keys));
    pct(&b, t, n);
    snprintf(l, sizeof l, "%s/query", label);
    run_query(b.data, b.len, l);
    snprintf(l, sizeof l, "%s/form", label);
    run_body("application/x-www-form-urlencoded", b.data, b.len, false, l);
    bg_buf_dispose(&b);
}

static void jsonl_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long ln = 0;
    char *dec = NULL;
    while ((len = getline(&line, &cap, f)) > 0) {
        ln++;
        /* Find "text": "<string>" with the tokenizer and decode it. */
        bg_json_t j;
        bg_json_token_t tok;
        bg_json_init(&j, line, (size_t)len, 0);
        bool want = false;
        while (bg_json_next(&j, &tok) > 0) {
            if (tok.type == BG_JSON_KEY && bg_json_depth(&j) == 1) {
                want = tok.len == 4 && memcmp(line + tok.start, "text", 4) == 0;
                continue;
            }
            if (want && tok.type == BG_JSON_STRING) {
                dec = realloc(dec, tok.len + 1);
                size_t dn = bg_json_unescape(line + tok.start, tok.len, dec, NULL);
                char label[32];
                snprintf(label, sizeof label, "L%lu", ln);
                all_views(dec, dn, label);
                break;
            }
            want = false;
        }
        char label[32];
        snprintf(label, sizeof label, "L%lu/raw", ln);
        run_body("application/json", line, (size_t)len, false, label);
    }
    free(dec);
    free(line);
    fclose(f);
}

int main(int argc, char **argv)
{
    long nsyn = argc > 1 ? atol(argv[1]) : 20000;
    const char *sl = getenv("BG_DIFF_SKIP_LOCATIONS");
    skip_loc = sl && strcmp(sl, "1") == 0;
    char err[128];
    cl = bg_classifier_create(NULL, err, sizeof err);
    if (!cl) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    bg_classification_init(&res, cl);
    bg_buf_t b;
    bg_buf_init(&b);
    for (long i = 0; i < nsyn; i++) {
        char label[32];
        bg_buf_reset(&b);
        unsigned kind = rnd() % 8;
        if (kind < 4) {
            json_doc(&b);
            snprintf(label, sizeof label, "S%ld/json", i);
            bool ai = rnd() % 4 == 0;
            run_body(rnd() % 5 ? "application/json" : "application/vnd.api+json; charset=utf-8", b.data, b.len, ai,
                     label);
            /* A truncated prefix and a one-byte mutation: error paths report what came before. */
            size_t cut = b.len ? rnd() % b.len : 0;
            snprintf(label, sizeof label, "S%ld/json-cut", i);
            run_body("application/json", b.data, cut, ai, label);
            if (b.len) {
                size_t at = rnd() % b.len;
                b.data[at] = (char)PICK(((const char[]){'"', '\\', ',', ':', '{', ']', 'x', '\x01', '\xc3', ' '}));
                snprintf(label, sizeof label, "S%ld/json-mut", i);
                run_body("application/json", b.data, b.len, ai, label);
            }
        } else if (kind == 4) {
            form(&b);
            snprintf(label, sizeof label, "S%ld/form", i);
            run_body("application/x-www-form-urlencoded", b.data, b.len, false, label);
            snprintf(label, sizeof label, "S%ld/query", i);
            run_query(b.data, b.len, label);
        } else {
            int nf = 1 + (int)(rnd() % 6);
            for (int k = 0; k < nf; k++) {
                if (k)
                    bg_buf_puts(&b, PICK(((const char *const[]){" ", "\n", ". ", " and ", ", phone ", " email: "})));
                frag(&b);
            }
            snprintf(label, sizeof label, "S%ld", i);
            all_views(b.data, b.len, label);
        }
    }
    /* The repeat corpus: a quarter as many JSON documents whose values repeat (see rep_mode). */
    rep_mode = true;
    for (int k = 0; k < 6; k++)
        bg_buf_init(&rep_pool[k]);
    for (long i = 0; i < nsyn / 4; i++) {
        char label[32];
        bg_buf_reset(&b);
        json_doc(&b);
        snprintf(label, sizeof label, "R%ld/json", i);
        run_body("application/json", b.data, b.len, rnd() % 8 == 0, label);
        if (b.len) {
            size_t at = rnd() % b.len;
            b.data[at] = (char)PICK(((const char[]){'"', '\\', ',', ':', '{', ']', 'x', '\x01', '\xc3', ' '}));
            snprintf(label, sizeof label, "R%ld/json-mut", i);
            run_body("application/json", b.data, b.len, false, label);
        }
    }
    for (int k = 0; k < 6; k++)
        bg_buf_dispose(&rep_pool[k]);
    rep_mode = false;
    /* The shape corpus: UUID- and timestamp-shaped values (the shape pre-filters' bit-mask
     * rules) with digit-heavy groups, letters, and one byte changed, under neutral keys. */
    for (long i = 0; i < nsyn / 4; i++) {
        char v[48], label[32];
        static const char hexd[] = "0123456789abcdefABCDEF0123456789";
        if (rnd() % 2) {
            for (int k = 0; k < 36; k++)
                v[k] = (k == 8 || k == 13 || k == 18 || k == 23) ? '-'
                       : rnd() % 3 ? (char)('0' + rnd() % 10) : hexd[rnd() % 32];
            v[36] = 0;
            if (rnd() % 4 == 0) /* a 12-digit group that is a card (Maestro, Luhn) */
                memcpy(v + 24, PICK(((const char *const[]){"501800000009", "501800000008", "5018a0000009"})), 12);
            if (rnd() % 4 == 0) /* a group that starts an IBAN or a NINO */
                memcpy(v + PICK(((const int[]){0, 9, 14, 19, 24})),
                       PICK(((const char *const[]){"BE68", "GB82", "AB12", "be68", "QQ12"})), 4);
        } else {
            snprintf(v, sizeof v, "%04u-%02u-%02uT%02u:%02u:%02u%s", rnd() % 10000, rnd() % 100, rnd() % 100,
                     rnd() % 100, rnd() % 100, rnd() % 100,
                     PICK(((const char *const[]){"", "Z", ".5Z", ".123456789Z", "+01:00", "-05:30", ".1234567890Z"})));
        }
        size_t vl = strlen(v);
        if (rnd() % 3 == 0)
            v[rnd() % vl] = PICK(((const char[]){'0', '9', 'a', 'F', 'g', '-', ':', 'T', '.', ' ', 'Z', '/'}));
        bg_buf_reset(&b);
        bg_buf_printf(&b, "{\"x\":\"%s\",\"y\":[\"%s\"]}", v, v);
        snprintf(label, sizeof label, "U%ld/json", i);
        run_body("application/json", b.data, b.len, false, label);
    }
    /* The target and header-set corpus: absolute-form targets and ':' / '/' near misses (the
     * scheme-and-authority skip), and bodies whose Content-Type / Content-Encoding headers are
     * spelled in other cases, cut or lengthened, or come after other headers (find_header). */
    for (long i = 0; i < nsyn / 8; i++) {
        char label[32];
        bg_buf_t t;
        bg_buf_init(&t);
        bg_buf_puts(&t, PICK(((const char *const[]){"", "http://", "https://", "h:", ":", "://", "a:/", "::", "x:/",
                                                   "/", "//", "ftp:/x://"})));
        bg_buf_puts(&t, PICK(((const char *const[]){"", "api.example.com", "ann@example.com:8080", "u:p@host",
                                                   "203.0.113.7", "[2001:db8::1]:443"})));
        int nseg = (int)(rnd() % 4);
        for (int k = 0; k < nseg; k++) {
            bg_buf_puts(&t, PICK(((const char *const[]){"/", "//", ":", "/:", "://", ":/"})));
            bg_buf_reset(&b);
            frag(&b);
            bg_buf_append(&t, b.data, b.len < 40 ? b.len : 40);
        }
        if (rnd() % 2)
            bg_buf_printf(&t, "?email=%s&tel=%s", PICK(((const char *const[]){"a%40b.co", "x://y", "ann@example.com"})),
                          PICK(((const char *const[]){"%2B14155550123", "12", "http://a"})));
        if (t.len) {
            if (rnd() % 4 == 0)
                t.data[rnd() % t.len] = PICK(((const char[]){':', '/', '?', '#', '@'}));
        }
        bg_classify_input_t in = {NULL, 0, t.data, t.len, NULL, 0, false, false, 0, skip_loc};
        bg_classify(cl, &in, &res);
        snprintf(label, sizeof label, "T%ld/target", i);
        dump(label);
        bg_buf_dispose(&t);

        static const char *const ctn[] = {"Content-Type", "content-type", "CONTENT-TYPE", "Content-Typ",
                                          "Content-Types", "X-Content-Type", "Content-type"};
        static const char *const cen[] = {"Content-Encoding", "content-encoding", "Content-Encodin", "Content-Encodings"};
        static const char *const ctv[] = {"application/json", "text/plain", "application/x-www-form-urlencoded"};
        bg_header_t h[4];
        size_t nh = 0;
        if (rnd() % 2)
            h[nh++] = (bg_header_t){"Accept", 6, "application/json", 16};
        const char *cn = PICK(ctn), *cv = PICK(ctv);
        h[nh++] = (bg_header_t){cn, strlen(cn), cv, strlen(cv)};
        if (rnd() % 3 == 0) {
            const char *en = PICK(cen), *ev = PICK(((const char *const[]){"identity", "gzip", "br", "Identity"}));
            h[nh++] = (bg_header_t){en, strlen(en), ev, strlen(ev)};
        }
        if (rnd() % 2)
            h[nh++] = (bg_header_t){"content-TYPE", 12, "text/plain", 10};
        const char *body = strcmp(cv, "application/x-www-form-urlencoded") == 0 ? "email=ann%40example.com&n=1"
                                                                              : "{\"email\":\"ann@example.com\"}";
        bg_classify_input_t hin = {h, nh, "/v1/x", 5, body, strlen(body), false, false, 0, skip_loc};
        bg_classify(cl, &hin, &res);
        snprintf(label, sizeof label, "T%ld/headers", i);
        dump(label);
    }
    for (int a = 2; a < argc; a++)
        jsonl_file(argv[a]);
    bg_buf_dispose(&b);
    bg_classification_dispose(&res);
    bg_classifier_destroy(cl);
    fprintf(stderr, "%lu inputs\n", ninputs);
    return 0;
}
