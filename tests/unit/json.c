/*
 * unit/json.c — the strict JSON tokenizer: token sequences and spans, RFC 8259 rejections,
 * truncation at every prefix, a 100k-deep document against the depth limit, escapes with
 * surrogate pairs and the raw-offset map; the portable core against the SSE2 one on generated,
 * cut and mutated documents; the classifier's own walk of the same state machine against
 * bg_json_next, and its number shapes. Inputs end at an unreadable page so any over-read crashes.
 * Single-threaded.
 */
#include "classify.h"
#include "config.h"
#include "json.h"
#include "test.h"

/* The tokenizer's core again, built here without SIMD (the library's copy uses SSE2 on x86-64):
 * test_portable_path checks that the two give the same tokens. */
#define BG_NO_SIMD
#include "json_core.h"
#undef BG_NO_SIMD

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Copy s so that its last byte is the last readable byte before a PROT_NONE page. */
static char *guarded(const char *s, size_t n, void **map, size_t *maplen)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = ((n + pg - 1) / pg + 1) * pg;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        abort();
    mprotect(m + len - pg, pg, PROT_NONE);
    char *p = m + len - pg - n;
    memcpy(p, s, n);
    *map = m;
    *maplen = len;
    return p;
}

/* Tokenize s; returns the final rc and writes a compact trace ("{k:s,n,[t]}") into trace. */
static int tokenize(const char *s, size_t n, char *trace, size_t cap)
{
    void *m;
    size_t ml;
    char *p = guarded(s, n, &m, &ml);
    bg_json_t j;
    bg_json_token_t t;
    bg_json_init(&j, p, n, 0);
    size_t o = 0;
    int rc;
    while ((rc = bg_json_next(&j, &t)) > 0 && o + 2 < cap) {
        static const char sym[] = "?{}[]ksntfz";
        trace[o++] = sym[t.type];
    }
    trace[o] = 0;
    munmap(m, ml);
    return rc;
}

static void test_valid_sequences(void)
{
    char tr[256];
    CHECK_INT(tokenize("{}", 2, tr, sizeof tr), 0);
    CHECK_STR(tr, "{}");
    const char *doc = " {\"a\": [1, -2.5e+3, \"x\", true, false, null, {}, []], \"b\": {\"c\": \"\\u00e9\"}} ";
    CHECK_INT(tokenize(doc, strlen(doc), tr, sizeof tr), 0);
    CHECK_STR(tr, "{k[nnstfz{}[]]k{ks}}");
    CHECK_INT(tokenize("42", 2, tr, sizeof tr), 0);
    CHECK_STR(tr, "n");
    CHECK_INT(tokenize("\"x\"", 3, tr, sizeof tr), 0);
    CHECK_INT(tokenize("-0", 2, tr, sizeof tr), 0);
    CHECK_INT(tokenize("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 11, tr, sizeof tr), 0);
}

/* The 16-byte string scan: a special byte (quote, escape, control, UTF-8) at every position of a
 * long string, and the string's end at every distance from the buffer's end. */
static void test_long_strings(void)
{
    char doc[128], tr[64];
    for (int at = 0; at < 48; at++) {
        char v[64];
        memset(v, 'a', 48);
        v[48] = 0;
        /* an escape at `at`: one string token, escaped */
        int n = snprintf(doc, sizeof doc, "{\"k\":\"%.*s\\n%s\"}", at, v, v + at);
        CHECK_INT(tokenize(doc, (size_t)n, tr, sizeof tr), 0);
        CHECK_STR(tr, "{ks}");
        /* a control byte at `at`: invalid */
        n = snprintf(doc, sizeof doc, "[\"%.*s\x01%s\"]", at, v, v + at);
        CHECK_INT(tokenize(doc, (size_t)n, tr, sizeof tr), BG_JSON_EINVAL);
        /* a two-byte UTF-8 sequence at `at`: valid; cut in half at the end: truncated */
        n = snprintf(doc, sizeof doc, "[\"%.*s\xc3\xa9%s\"]", at, v, v + at);
        CHECK_INT(tokenize(doc, (size_t)n, tr, sizeof tr), 0);
        n = snprintf(doc, sizeof doc, "\"%.*s\xc3", at, v);
        CHECK_INT(tokenize(doc, (size_t)n, tr, sizeof tr), BG_JSON_ETRUNC);
        /* a string of `at` bytes ending right at the buffer's end */
        n = snprintf(doc, sizeof doc, "\"%.*s\"", at, v);
        CHECK_INT(tokenize(doc, (size_t)n, tr, sizeof tr), 0);
        CHECK_STR(tr, "s");
    }
    /* Spaced and compact documents tokenize alike; a missing colon is still an error. */
    const char *a = "{\"a\":1,\"b\":[\"x\",{\"c\":null}]}", *b = "{ \"a\" : 1 , \"b\" : [ \"x\" , { \"c\" :null } ] }";
    char ta[64];
    CHECK_INT(tokenize(a, strlen(a), ta, sizeof ta), 0);
    CHECK_INT(tokenize(b, strlen(b), tr, sizeof tr), 0);
    CHECK_STR(ta, tr);
    CHECK_INT(tokenize("{\"a\" 1}", 7, tr, sizeof tr), BG_JSON_EINVAL);
    CHECK_INT(tokenize("{\"a\":", 5, tr, sizeof tr), BG_JSON_ETRUNC);
    CHECK_INT(tokenize("{\"a\"::1}", 8, tr, sizeof tr), BG_JSON_EINVAL);
}

static void test_spans(void)
{
    const char *doc = "{\"key\":\"va\\\"lue\",\"n\":123}";
    bg_json_t j;
    bg_json_token_t t;
    bg_json_init(&j, doc, strlen(doc), 0);
    CHECK_INT(bg_json_next(&j, &t), 1);
    CHECK_INT(t.type, BG_JSON_OBJ_START);
    CHECK_INT(bg_json_next(&j, &t), 1);
    CHECK_INT(t.type, BG_JSON_KEY);
    CHECK_SPAN(doc + t.start, t.len, "key");
    CHECK(!t.escaped);
    CHECK_INT(bg_json_depth(&j), 1);
    CHECK_INT(bg_json_next(&j, &t), 1);
    CHECK_INT(t.type, BG_JSON_STRING);
    CHECK_SPAN(doc + t.start, t.len, "va\\\"lue");
    CHECK(t.escaped);
    CHECK_INT(bg_json_next(&j, &t), 1);
    CHECK_INT(bg_json_next(&j, &t), 1);
    CHECK_INT(t.type, BG_JSON_NUMBER);
    CHECK_SPAN(doc + t.start, t.len, "123");
    CHECK_INT(bg_json_next(&j, &t), 1);
    CHECK_INT(t.type, BG_JSON_OBJ_END);
    CHECK_INT(bg_json_next(&j, &t), 0);
}

/* Numbers whose digit runs are read eight bytes at a time: every length, the run ending at each
 * place in a word with a letter, a dot, a byte >= 0x80 or the end of input after it. */
static void test_long_numbers(void)
{
    char doc[64], tr[256];
    for (int len = 1; len <= 20; len++) {
        for (int fr = 0; fr <= 18; fr += 6) {
            size_t o = 0;
            doc[o++] = '[';
            for (int k = 0; k < len; k++)
                doc[o++] = (char)('1' + k % 9);
            if (fr) {
                doc[o++] = '.';
                for (int k = 0; k < fr; k++)
                    doc[o++] = (char)('0' + k % 10);
            }
            size_t numend = o;
            doc[o++] = ']';
            CHECK_INT(tokenize(doc, o, tr, sizeof tr), 0);
            CHECK_STR(tr, "[n]");
            bg_json_t j;
            bg_json_token_t t;
            bg_json_init(&j, doc, o, 0);
            CHECK_INT(bg_json_next(&j, &t), 1);
            CHECK_INT(bg_json_next(&j, &t), 1);
            CHECK_INT((int)t.len, (int)(numend - 1));
            static const char tails[] = {'a', 'Z', '.', (char)0xc3, '"'};
            for (size_t x = 0; x < sizeof tails; x++) {
                doc[numend] = tails[x];
                doc[numend + 1] = ']';
                CHECK_INT(tokenize(doc, numend + 2, tr, sizeof tr), BG_JSON_EINVAL);
            }
            doc[numend] = ']';
            CHECK_INT(tokenize(doc + 1, numend - 1, tr, sizeof tr), 0); /* a top-level number to the end */
            CHECK_STR(tr, "n");
        }
    }
    /* Digit runs of every length up to 40 with 16 or more bytes readable after them (the 16-byte
     * digit scan), ended by each kind of byte: a ',', a space, a '.' or 'e' that go on. */
    char big[128];
    static const char *const ends[] = {",0]", " ]", ".5]", "e7]", ".25e-3]"};
    for (int len = 1; len <= 40; len++) {
        for (size_t e = 0; e < sizeof ends / sizeof ends[0]; e++) {
            size_t o = 0;
            big[o++] = '[';
            for (int k = 0; k < len; k++)
                big[o++] = (char)('1' + (k * 7) % 9);
            size_t numend = o + (e >= 2 ? strlen(ends[e]) - 1 : 0);
            memcpy(big + o, ends[e], strlen(ends[e]));
            o += strlen(ends[e]);
            memset(big + o, ' ', 40);
            o += 40;
            bg_json_t j;
            bg_json_token_t t;
            bg_json_init(&j, big, o, 0);
            CHECK_INT(bg_json_next(&j, &t), 1);
            CHECK_INT(bg_json_next(&j, &t), 1);
            CHECK_INT(t.type, BG_JSON_NUMBER);
            CHECK_INT((int)t.len, (int)(numend - 1));
            while (bg_json_next(&j, &t) > 0)
                ;
            CHECK_INT(j.error, 0);
        }
    }
}

static void test_invalid(void)
{
    static const char *const bad[] = {
        "{,}", "[1,]", "{\"a\":1,}", "[01]", "[1.]", "[.5]", "[+1]", "[1e]", "{a:1}", "['x']", "[\"\\x\"]",
        "[\"\\u12g4\"]", "[\"a\x01\"]", "[tru]", "[nul1]", "[1 2]", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "]",
        "}", "[}", "{]", "[1]x", "[1] [2]", "NaN", "[Infinity]", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
        "\"\xff\"", "[1,,2]", "[\"\t\"]", "{\"a\":1}}", "truex", "[1true]",
    };
    char tr[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = tokenize(bad[i], strlen(bad[i]), tr, sizeof tr);
        if (rc != BG_JSON_EINVAL)
            bg_test_fail(__FILE__, __LINE__, "bad[%zu] %s: rc %d, want EINVAL", i, bad[i], rc);
    }
}

static void test_truncated_prefixes(void)
{
    const char *doc = "{\"a\":[1,\"x\\u00e9\\ud83d\\ude00\",true,{\"b\":null}],\"c\":-1.5e3}";
    size_t n = strlen(doc);
    char tr[256];
    for (size_t k = 0; k < n; k++) {
        int rc = tokenize(doc, k, tr, sizeof tr);
        if (rc != BG_JSON_ETRUNC)
            bg_test_fail(__FILE__, __LINE__, "prefix %zu: rc %d, want ETRUNC", k, rc);
    }
    CHECK_INT(tokenize(doc, n, tr, sizeof tr), 0);
    /* A UTF-8 sequence cut by the end is truncation too. */
    CHECK_INT(tokenize("\"\xe2\x82", 3, tr, sizeof tr), BG_JSON_ETRUNC);
}

static void test_deep_nesting(void)
{
    size_t n = 100000;
    char *s = malloc(n);
    memset(s, '[', n);
    char tr[512];
    CHECK_INT(tokenize(s, n, tr, sizeof tr), BG_JSON_EDEPTH);
    /* Exactly at the limit is fine. */
    char ok[2 * BG_JSON_MAX_DEPTH];
    memset(ok, '[', BG_JSON_MAX_DEPTH);
    memset(ok + BG_JSON_MAX_DEPTH, ']', BG_JSON_MAX_DEPTH);
    CHECK_INT(tokenize(ok, sizeof ok, tr, sizeof tr), 0);
    /* A smaller limit. */
    bg_json_t j;
    bg_json_token_t t;
    bg_json_init(&j, "[[[1]]]", 7, 2);
    int rc;
    while ((rc = bg_json_next(&j, &t)) > 0)
        ;
    CHECK_INT(rc, BG_JSON_EDEPTH);
    free(s);
}

static void test_unescape(void)
{
    const char *raw = "a\\u0040b\\n\\ud83d\\ude00\\udc00z\\/";
    size_t n = strlen(raw);
    char out[64];
    uint32_t map[64];
    size_t o = bg_json_unescape(raw, n, out, map);
    CHECK_INT(o, 1 + 1 + 1 + 1 + 4 + 3 + 1 + 1);
    CHECK(memcmp(out, "a@b\n\xf0\x9f\x98\x80\xef\xbf\xbdz/", o) == 0);
    CHECK_INT(map[0], 0);
    CHECK_INT(map[1], 1);  /* '@' comes from the \u0040 at 1 */
    CHECK_INT(map[2], 7);  /* 'b' */
    CHECK_INT(map[3], 8);  /* \n */
    CHECK_INT(map[4], 10); /* the surrogate pair starts at 10 */
    CHECK_INT(map[7], 10);
    CHECK_INT(map[8], 22); /* lone low surrogate → U+FFFD */
    CHECK_INT(map[o], n);
    CHECK_INT(bg_json_unescape("plain", 5, out, NULL), 5);
}

static uint64_t rng = 0x6a09e667f3bcc909ULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* A random document of JSON-ish pieces (some wrong on purpose) into b; returns its length. */
static size_t gen_doc(char *b, size_t cap, int depth)
{
    static const char *const atoms[] = {
        "\"abc\"", "\"\"", "\"a\\\"b\"", "\"\\u00e9x\"", "\"caf\xc3\xa9\"", "\"\\ud83d\\ude00\"", "\"bad\\x\"",
        "\"\xff\"", "\"tab\there\"", "\"0123456789abcdef0123456789 \\n long enough for two blocks\"",
        "\"\xe2\x82\xac twenty-three bytes \xf0\x9f\x98\x80\"", "0", "-0", "12", "-7.25", "1e10", "2E-3", "01",
        "1.", "-", "12a", "1700000123456", "true", "false", "null", "tru", "nulll", " ", "\n", "\t",
    };
    size_t o = 0;
    int k = (int)(rnd() % (depth > 5 ? 3 : 6));
    if (k < 3) {
        const char *a = atoms[rnd() % (sizeof atoms / sizeof atoms[0])];
        size_t l = strlen(a);
        if (l < cap) {
            memcpy(b, a, l);
            o = l;
        }
        return o;
    }
    bool obj = k < 5;
    b[o++] = obj ? '{' : '[';
    int m = (int)(rnd() % 4);
    for (int i = 0; i < m && o + 16 < cap; i++) {
        if (i)
            b[o++] = rnd() % 16 ? ',' : ' ';
        if (obj) {
            memcpy(b + o, rnd() % 8 ? "\"key\": " : "\"k\\u0041\"", 8);
            o += 8;
        }
        o += gen_doc(b + o, cap - o - 2, depth + 1);
    }
    b[o++] = obj ? (rnd() % 16 ? '}' : ']') : (rnd() % 16 ? ']' : '}');
    return o;
}

/* Same tokens, spans and final code from the library (SSE2) and the portable inline core. */
static bool same_tokens(const char *s, size_t n, unsigned max_depth)
{
    void *m;
    size_t ml;
    char *p = guarded(s, n, &m, &ml);
    bg_json_t a, b;
    bg_json_init(&a, p, n, max_depth);
    bg_json_init(&b, p, n, max_depth);
    size_t pos = b.pos;
    int state = b.state, ra, rb;
    unsigned depth = b.depth;
    bool same = true;
    do {
        bg_json_token_t ta, tb;
        ra = bg_json_next(&a, &ta);
        rb = bgj_next_token(&b, &pos, &state, &depth, &tb);
        same = ra == rb && (ra <= 0 || (ta.type == tb.type && ta.start == tb.start && ta.len == tb.len &&
                                        ta.escaped == tb.escaped));
    } while (same && ra > 0);
    munmap(m, ml);
    return same;
}

static void test_portable_path(void)
{
    static char doc[4096], mut[4096];
    unsigned differ = 0, docs = 0;
    for (int it = 0; it < 3000; it++) {
        size_t n = gen_doc(doc, sizeof doc, 0);
        unsigned md = rnd() % 4 ? 0 : 1 + rnd() % 4;
        differ += !same_tokens(doc, n, md);
        for (size_t cut = 0; cut < n; cut += 1 + rnd() % 7)
            differ += !same_tokens(doc, cut, md);
        for (int k = 0; k < 4 && n; k++) {
            static const char sp[] = "\"\\{}[],:0-e.tfn \x01\x80\xc3";
            memcpy(mut, doc, n);
            mut[rnd() % n] = sp[rnd() % (sizeof sp - 1)];
            differ += !same_tokens(mut, n, md);
        }
        docs++;
    }
    CHECK_INT(docs, 3000);
    CHECK_INT(differ, 0);
}

/* The classifier's JSON walk runs json_core.h's state machine itself (classify.c scan_json):
 * it must accept exactly what bg_json_next accepts, and call "json_too_deep" exactly what
 * bg_json_next calls BG_JSON_EDEPTH. Returns false on a mismatch. */
static bg_classifier_t *walk_cl;
static bool walk_agrees(const char *s, size_t n)
{
    if (n == 0)
        return true; /* an empty body is not scanned */
    void *m;
    size_t ml;
    char *p = guarded(s, n, &m, &ml); /* the walk must not read past the body either */
    bg_json_t j;
    bg_json_token_t t;
    bg_json_init(&j, p, n, 0);
    int rc;
    while ((rc = bg_json_next(&j, &t)) > 0)
        ;
    bg_header_t ct = {"Content-Type", 12, "application/json", 16};
    bg_classify_input_t in = {&ct, 1, "/", 1, p, n, false, (rnd() & 1) != 0, 0, false};
    bg_classification_t r;
    bg_classification_init(&r, walk_cl);
    bg_classify(walk_cl, &in, &r);
    bool ok = r.unscannable == (rc < 0);
    if (ok && rc < 0)
        ok = strcmp(r.unscannable_reason, rc == BG_JSON_EDEPTH ? "json_too_deep" : "malformed_json") == 0;
    if (!ok)
        bg_test_fail(__FILE__, __LINE__, "walk and tokenizer disagree on %.*s: rc %d, unscannable %d (%s)",
                     (int)(n < 200 ? n : 200), s, rc, r.unscannable, r.unscannable ? r.unscannable_reason : "-");
    bg_classification_dispose(&r);
    munmap(m, ml);
    return ok;
}

static void test_classifier_walk(void)
{
    char err[128];
    walk_cl = bg_classifier_create(NULL, err, sizeof err);
    CHECK(walk_cl != NULL);
    if (!walk_cl)
        return;
    static const char *const fixed[] = {
        "{}", "[]", "42", "\"x\"", "-0", " {\"a\" : [1 , \"b\" ,{ }] } ", "{\"a\":1}}", "{\"a\" 1}", "{\"a\"::1}",
        "[1,]", "{,}", "[1 2]", "[1]x", "[1] [2]", "truex", "[1true]", "{\"a\":tru}", "{\"a\":nul", "[\"\\x\"]",
        "{\"name\":\"Ann Lee\",\"sku\":1", "{\"a\":{\"name\":\"Ann Lee\"", "[\"ann@example.com\"", "\"\xc0\xaf\"",
        "{\"k\\u0041\":\"+14155552671\"}", "\t\n{\"a\"\n:\n2\r}\n", "{\"a\":[]}", "{\"a\":{}}", "[[],{},[{}]]",
    };
    unsigned bad = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        size_t n = strlen(fixed[i]);
        bad += !walk_agrees(fixed[i], n);
        for (size_t k = 1; k < n; k++)
            bad += !walk_agrees(fixed[i], k); /* every prefix */
    }
    /* The depth bound: 128 containers open is the most either allows (arrays, and objects). */
    static char deep[6 * BG_JSON_MAX_DEPTH + 8];
    for (int d = BG_JSON_MAX_DEPTH - 1; d <= BG_JSON_MAX_DEPTH + 1; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        bad += !walk_agrees(deep, 2 * (size_t)d);
        bad += !walk_agrees(deep, (size_t)d);
        size_t o = 0;
        for (int k = 0; k < d; k++)
            memcpy(deep + o, "{\"a\":", 5), o += 5;
        deep[o++] = '1';
        for (int k = 0; k < d; k++)
            deep[o++] = '}';
        bad += !walk_agrees(deep, o);
    }
    static char doc[4096], mut[4096];
    for (int it = 0; it < 2000; it++) {
        size_t n = gen_doc(doc, sizeof doc, 0);
        bad += !walk_agrees(doc, n);
        for (size_t cut = 1; cut < n; cut += 1 + rnd() % 7)
            bad += !walk_agrees(doc, cut);
        for (int k = 0; k < 4 && n; k++) {
            static const char sp[] = "\"\\{}[],:0-e.tfn \x01\x80\xc3";
            memcpy(mut, doc, n);
            mut[rnd() % n] = sp[rnd() % (sizeof sp - 1)];
            bad += !walk_agrees(mut, n);
        }
    }
    CHECK_INT(bad, 0);
    bg_classifier_destroy(walk_cl);
}

/* The classifier waves numbers through without scanning them by their shape (classify.c
 * number_quick_skip, fed by the tokenizer's BGJ_NUM_* bits). With a custom detector nothing is
 * waved through, so a classifier with one that never matches must find exactly the same in
 * documents of numbers of every length, sign, fraction and exponent, some of them card numbers,
 * under plain and rule keys. */
static void test_number_shapes(void)
{
    bg_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    bg_custom_detector_t cd = {"never", BG_CAT_IDENTIFIER, NULL, 0, "QQZX-", 6};
    cfg.classification.all = true;
    cfg.classification.custom = &cd;
    cfg.classification.ncustom = 1;
    char err[128];
    bg_classifier_t *quick = bg_classifier_create(NULL, err, sizeof err);
    bg_classifier_t *full = bg_classifier_create(&cfg, err, sizeof err);
    CHECK(quick && full);
    if (!quick || !full)
        return;
    bg_classification_t a, b;
    bg_classification_init(&a, quick);
    bg_classification_init(&b, full);
    static const char *const cards[] = {"4111111111111111", "378282246310005", "5500000000000004", "490154203237518",
                                        "6011111111111117", "30569309025904"};
    static const char *const keys[] = {"x", "id", "amount", "phone", "lat"};
    char doc[256], num[64];
    unsigned differ = 0, docs = 0;
    for (int it = 0; it < 20000; it++) {
        size_t o = 0;
        if (rnd() % 8 == 0) {
            o = (size_t)snprintf(num, sizeof num, "%s", cards[rnd() % 6]);
        } else {
            if (rnd() % 4 == 0)
                num[o++] = '-';
            size_t nd = 1 + rnd() % 20;
            for (size_t k = 0; k < nd; k++)
                num[o++] = (char)((k == 0 && nd > 1 ? '1' : '0') + rnd() % (k == 0 && nd > 1 ? 9 : 10));
        }
        if (rnd() % 4 == 0) {
            num[o++] = '.';
            for (size_t k = 1 + rnd() % 8; k > 0; k--)
                num[o++] = (char)('0' + rnd() % 10);
        }
        if (rnd() % 8 == 0)
            o += (size_t)snprintf(num + o, sizeof num - o, "%s%u", rnd() % 2 ? "e" : "E-", rnd() % 30);
        num[o] = 0;
        const char *k = keys[rnd() % 5];
        /* the number last, so that it ends near the buffer's end too */
        int n = snprintf(doc, sizeof doc, "{\"%s\":[%s,\"%s\"],\"%s\":%s}", k, num, num, k, num);
        bg_header_t h = {"Content-Type", 12, "application/json", 16};
        bg_classify_input_t in = {&h, 1, NULL, 0, doc, (size_t)n, false, false, 0, false};
        bg_classify(quick, &in, &a);
        bg_classify(full, &in, &b);
        bool same = a.nfindings == b.nfindings && a.unscannable == b.unscannable;
        for (size_t f = 0; same && f < a.nfindings; f++)
            same = a.findings[f].detector == b.findings[f].detector && a.findings[f].offset == b.findings[f].offset &&
                   a.findings[f].length == b.findings[f].length;
        if (!same && differ++ < 5)
            bg_test_fail(__FILE__, __LINE__, "%s: %zu findings waved through, %zu scanned", doc, a.nfindings,
                         b.nfindings);
        docs++;
    }
    CHECK_INT(docs, 20000);
    CHECK_INT(differ, 0);
    bg_classification_dispose(&a);
    bg_classification_dispose(&b);
    bg_classifier_destroy(quick);
    bg_classifier_destroy(full);
}

int main(void)
{
    RUN(test_valid_sequences);
    RUN(test_spans);
    RUN(test_invalid);
    RUN(test_long_numbers);
    RUN(test_truncated_prefixes);
    RUN(test_deep_nesting);
    RUN(test_unescape);
    RUN(test_long_strings);
    RUN(test_portable_path);
    RUN(test_classifier_walk);
    RUN(test_number_shapes);
    return bg_test_done();
}
