/*
 * cmd_scan.c — `bordergate scan`: the classifier's standalone face. Classifies a body (FILE or
 * stdin), a header block (--headers FILE) and a target (--query), and prints one JSON line per
 * finding (detector, category, where, path, offset, length — never the value) and a summary
 * line. `--jsonl` reads one {"text","context"} object per stdin line and prints one result line
 * each (for evaluation runs). Main thread only; exit 0 (findings or not), 1 error, 2 usage.
 */
#include "classify.h"
#include "cli.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX_READ (64u << 20)
#define SCAN_MAX_HEADERS 256

static const char scan_usage[] =
    "usage: bordergate scan [FILE|-] [--content-type T] [--content-encoding E] [--headers FILE]\n"
    "                       [--query STRING] [--ai] [--max-body-scan N] [-c CONFIG]\n"
    "       bordergate scan --jsonl < lines   (one {\"text\",\"context\"} object per line)\n"
    "\n"
    "Classifies a request body (FILE, or stdin when no FILE and no --headers/--query), a header\n"
    "block (raw 'Name: value' lines) and a target ('/path?a=b' or just 'a=b'). Prints one JSON line\n"
    "per finding and a summary line; values are never printed. --ai treats the vendor as an AI\n"
    "route. Exit 0 (even with findings), 1 on error, 2 on usage error.\n"
    "contexts for --jsonl: json, form, free_text, text, query, headers.\n";

/* Read all of f into b (up to limit + 1 bytes). 0, or -1 with errno. */
static int read_all(FILE *f, bg_buf_t *b, size_t limit)
{
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        bg_buf_append(b, tmp, n);
        if (b->len > limit)
            return 0;
    }
    return ferror(f) ? -1 : 0;
}

static int read_file(const char *path, bg_buf_t *b, size_t limit)
{
    if (strcmp(path, "-") == 0)
        return read_all(stdin, b, limit);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int rc = read_all(f, b, limit);
    fclose(f);
    return rc;
}

/* Split a raw header block into views (the block stays owned by the caller). */
static size_t parse_headers(const char *p, size_t n, bg_header_t *h, size_t max)
{
    size_t nh = 0, i = 0;
    while (i < n && nh < max) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - p) : n;
        size_t le = e;
        if (le > i && p[le - 1] == '\r')
            le--;
        const char *colon = memchr(p + i, ':', le - i);
        if (colon && colon > p + i) {
            size_t v = (size_t)(colon - p) + 1;
            while (v < le && (p[v] == ' ' || p[v] == '\t'))
                v++;
            h[nh].name = p + i;
            h[nh].name_len = (size_t)(colon - p) - i;
            h[nh].value = p + v;
            h[nh].value_len = le - v;
            nh++;
        }
        i = e + 1;
    }
    return nh;
}

static void print_categories(bg_buf_t *o, uint32_t cats)
{
    bg_buf_puts(o, "[");
    bool first = true;
    for (int k = 0; k < BG_CAT__COUNT; k++)
        if (cats & (1u << k)) {
            bg_buf_printf(o, "%s\"%s\"", first ? "" : ",", bg_category_name(k));
            first = false;
        }
    bg_buf_puts(o, "]");
}

/* One finding as JSON; text_base >= 0 adds "text_offset" (jsonl mode). */
static void print_finding(bg_buf_t *o, const bg_classifier_t *c, const bg_finding_t *f, long long text_off)
{
    bg_buf_printf(o, "{\"detector\":\"%s\",\"category\":\"%s\",\"where\":\"%s\",\"path\":\"",
                  bg_classifier_detector_name(c, f->detector), bg_category_name(f->category), bg_where_name(f->where));
    bg_buf_json_escape(o, f->path, strnlen(f->path, sizeof f->path));
    bg_buf_printf(o, "\",\"offset\":%u,\"length\":%u", f->offset, f->length);
    if (f->where == BG_WHERE_HEADER)
        bg_buf_printf(o, ",\"header\":%u", f->header);
    if (f->encoded)
        bg_buf_puts(o, ",\"encoded\":true");
    if (f->covers & ~(1u << f->category)) { /* what lies inside it besides its own category */
        bg_buf_puts(o, ",\"covers\":");
        print_categories(o, f->covers | 1u << f->category);
    }
    if (text_off >= 0)
        bg_buf_printf(o, ",\"text_offset\":%lld", text_off);
    bg_buf_puts(o, "}");
}

static void print_summary(bg_buf_t *o, const bg_classification_t *r)
{
    bg_buf_puts(o, "{\"summary\":true,\"categories\":");
    print_categories(o, r->categories);
    bg_buf_printf(o, ",\"findings\":%zu,\"body\":\"%s\",\"unscannable\":%s", r->nfindings,
                  bg_body_kind_name(r->body_kind), r->unscannable ? "true" : "false");
    if (r->unscannable)
        bg_buf_printf(o, ",\"reason\":\"%s\"", r->unscannable_reason);
    if (r->findings_truncated)
        bg_buf_puts(o, ",\"findings_truncated\":true");
    bg_buf_puts(o, "}");
}

/* A string member of a one-level JSON object line, decoded into out. */
static bool jsonl_field(const char *line, size_t n, const char *name, bg_buf_t *out)
{
    bg_json_t j;
    bg_json_token_t t;
    bg_json_init(&j, line, n, 8);
    bool want = false;
    int rc;
    while ((rc = bg_json_next(&j, &t)) > 0) {
        if (t.type == BG_JSON_KEY && bg_json_depth(&j) == 1) {
            want = t.len == strlen(name) && memcmp(line + t.start, name, t.len) == 0;
            continue;
        }
        if (want && t.type == BG_JSON_STRING && bg_json_depth(&j) == 1) {
            bg_buf_reset(out);
            bg_buf_reserve(out, t.len);
            out->len = bg_json_unescape(line + t.start, t.len, out->data, NULL);
            out->data[out->len] = 0;
            return true;
        }
        want = false;
    }
    return false;
}

static int run_jsonl(const bg_classifier_t *c, bool ai)
{
    bg_buf_t text, ctx, line, o;
    bg_buf_init(&text);
    bg_buf_init(&ctx);
    bg_buf_init(&line);
    bg_buf_init(&o);
    bg_classification_t r;
    bg_classification_init(&r, c);
    char *l = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    bg_header_t *hdrs = malloc(SCAN_MAX_HEADERS * sizeof *hdrs);
    if (!hdrs)
        abort();
    while ((len = getline(&l, &cap, stdin)) >= 0) {
        while (len && (l[len - 1] == '\n' || l[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        if (!jsonl_field(l, (size_t)len, "text", &text)) {
            fprintf(stderr, "bordergate: scan --jsonl: a line has no \"text\" string\n");
            rc = 1;
            break;
        }
        if (!jsonl_field(l, (size_t)len, "context", &ctx))
            bg_buf_puts(&ctx, "free_text");
        bg_header_t ct = {"content-type", 12, NULL, 0};
        bg_classify_input_t in = {0};
        in.ai_route = ai;
        long long toff = 0; /* where offsets sit in the text */
        bg_buf_t target;
        bg_buf_init(&target);
        const char *cx = ctx.data ? ctx.data : "free_text";
        if (strcmp(cx, "headers") == 0) {
            in.headers = hdrs;
            in.nheaders = parse_headers(text.data, text.len, hdrs, SCAN_MAX_HEADERS);
        } else if (strcmp(cx, "query") == 0) {
            if (text.len && text.data[0] == '/') {
                in.target = text.data;
                in.target_len = text.len;
            } else {
                bg_buf_puts(&target, "/?");
                bg_buf_append(&target, text.data, text.len);
                in.target = target.data;
                in.target_len = target.len;
                toff = -2;
            }
        } else {
            ct.value = strcmp(cx, "json") == 0   ? "application/json"
                       : strcmp(cx, "form") == 0 ? "application/x-www-form-urlencoded"
                                                 : "text/plain";
            ct.value_len = strlen(ct.value);
            in.headers = &ct;
            in.nheaders = 1;
            in.body = text.data;
            in.body_len = text.len;
        }
        if (bg_classify(c, &in, &r) != 0) {
            bg_buf_dispose(&target);
            rc = 1;
            break;
        }
        bg_buf_reset(&o);
        bg_buf_puts(&o, "{\"findings\":[");
        for (size_t i = 0; i < r.nfindings; i++) {
            const bg_finding_t *f = &r.findings[i];
            long long abs = (long long)f->offset + toff;
            if (f->where == BG_WHERE_HEADER)
                abs = (long long)(in.headers[f->header].value - text.data) + f->offset;
            if (i)
                bg_buf_puts(&o, ",");
            print_finding(&o, c, f, abs);
        }
        bg_buf_puts(&o, "],\"summary\":");
        print_summary(&o, &r);
        bg_buf_puts(&o, "}\n");
        fwrite(o.data, 1, o.len, stdout);
        bg_buf_dispose_secure(&target);
    }
    free(l);
    free(hdrs);
    bg_classification_dispose(&r);
    bg_buf_dispose_secure(&text);
    bg_buf_dispose(&ctx);
    bg_buf_dispose(&line);
    bg_buf_dispose(&o);
    return rc;
}

int bg_cmd_scan(int argc, char **argv)
{
    const char *file = NULL, *ctype = NULL, *cenc = NULL, *hfile = NULL, *query = NULL, *config = NULL;
    bool ai = false, jsonl = false;
    uint64_t max_scan = 16u << 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(scan_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--ai") == 0) {
            ai = true;
            continue;
        }
        if (strcmp(a, "--jsonl") == 0) {
            jsonl = true;
            continue;
        }
        if (strcmp(a, "--content-type") == 0)
            dst = &ctype;
        else if (strcmp(a, "--content-encoding") == 0)
            dst = &cenc;
        else if (strcmp(a, "--headers") == 0)
            dst = &hfile;
        else if (strcmp(a, "--query") == 0)
            dst = &query;
        else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            dst = &config;
        else if (strcmp(a, "--max-body-scan") == 0) {
            if (i + 1 >= argc)
                return bg_cli_usage_error("scan", "%s needs a value", a);
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || *end || v == 0)
                return bg_cli_usage_error("scan", "bad --max-body-scan '%s' (bytes)", argv[i]);
            max_scan = v;
            continue;
        }
        if (dst) {
            if (i + 1 >= argc)
                return bg_cli_usage_error("scan", "%s needs a value", a);
            *dst = argv[++i];
            continue;
        }
        if (a[0] == '-' && a[1] != 0)
            return bg_cli_usage_error("scan", "unknown flag '%s'", a);
        if (file)
            return bg_cli_usage_error("scan", "more than one FILE");
        file = a;
    }
    /* With -c, the config's detectors list and custom detectors apply. */
    bg_config_t *cfg = NULL;
    if (config) {
        bg_diag_t d;
        bg_diag_init(&d);
        if (bg_config_load(config, bg_now_ms() / 1000, &cfg, &d) != 0) {
            for (size_t i = 0; i < d.nerrors; i++)
                fprintf(stderr, "%s\n", d.errors[i]);
            bg_diag_dispose(&d);
            return 1;
        }
        bg_diag_dispose(&d);
    }
    char err[256] = "";
    bg_classifier_t *c = bg_classifier_create(cfg, err, sizeof err);
    bg_config_release(cfg);
    if (!c) {
        fprintf(stderr, "bordergate: scan: %s\n", err);
        return 1;
    }
    int rc = 1;
    bg_buf_t body, hblock, target, o;
    bg_buf_init(&body);
    bg_buf_init(&hblock);
    bg_buf_init(&target);
    bg_buf_init(&o);
    bg_header_t *hdrs = malloc((SCAN_MAX_HEADERS + 2) * sizeof *hdrs);
    if (!hdrs)
        abort();
    bg_classification_t r;
    bg_classification_init(&r, c);
    if (jsonl) {
        rc = run_jsonl(c, ai);
        goto out;
    }
    size_t nh = 0;
    if (hfile) {
        if (read_file(hfile, &hblock, 1u << 20) != 0) {
            fprintf(stderr, "bordergate: scan: %s: %s\n", hfile, strerror(errno));
            goto out;
        }
        nh = parse_headers(hblock.data ? hblock.data : "", hblock.len, hdrs, SCAN_MAX_HEADERS);
    }
    /* Flags override the header block's Content-Type/-Encoding. */
    if (ctype)
        hdrs[nh++] = (bg_header_t){"Content-Type", 12, ctype, strlen(ctype)};
    if (cenc)
        hdrs[nh++] = (bg_header_t){"Content-Encoding", 16, cenc, strlen(cenc)};
    if (ctype || cenc) {
        /* Move the overrides first so they are the ones the classifier reads. */
        size_t k = (ctype ? 1 : 0) + (cenc ? 1 : 0);
        bg_header_t tmp[2];
        memcpy(tmp, hdrs + nh - k, k * sizeof *hdrs);
        memmove(hdrs + k, hdrs, (nh - k) * sizeof *hdrs);
        memcpy(hdrs, tmp, k * sizeof *hdrs);
    }
    if (query) {
        if (query[0] != '/')
            bg_buf_puts(&target, "/?");
        bg_buf_puts(&target, query);
    }
    bool want_body = file || (!hfile && !query);
    if (want_body && read_file(file ? file : "-", &body, max_scan) != 0) {
        fprintf(stderr, "bordergate: scan: %s: %s\n", file ? file : "stdin", strerror(errno));
        goto out;
    }
    bg_classify_input_t in = {0};
    in.headers = hdrs;
    in.nheaders = nh;
    in.target = target.data;
    in.target_len = target.len;
    in.body = body.data;
    in.body_len = body.len > max_scan ? max_scan : body.len;
    in.body_truncated = body.len > max_scan;
    in.ai_route = ai;
    if (bg_classify(c, &in, &r) != 0) {
        fprintf(stderr, "bordergate: scan: internal error\n");
        goto out;
    }
    for (size_t i = 0; i < r.nfindings; i++) {
        bg_buf_reset(&o);
        print_finding(&o, c, &r.findings[i], -1);
        bg_buf_puts(&o, "\n");
        fwrite(o.data, 1, o.len, stdout);
    }
    bg_buf_reset(&o);
    print_summary(&o, &r);
    bg_buf_puts(&o, "\n");
    fwrite(o.data, 1, o.len, stdout);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    bg_classification_dispose(&r);
    bg_classifier_destroy(c);
    free(hdrs);
    bg_buf_dispose_secure(&body);
    bg_buf_dispose_secure(&hblock);
    bg_buf_dispose_secure(&target);
    bg_buf_dispose(&o);
    return rc;
}
