/*
 * cmd_explain.c — `bordergate explain`: what the gateway would do with a described request,
 * computed by the data plane's own code (exchange.c: route, classify, decide per address,
 * build the vendor's request) on an exchange built by hand, with no network: the destination
 * address comes from --address, the vendor's pinned addresses, or getaddrinfo only when
 * --resolve is given. Prints text or one JSON object. `--address` without --url shows an
 * address's country and region under the config. Values found are never printed on their own:
 * only detector names and key paths; the rewritten request shows tokens in their place.
 * Main thread only; exit 0 explained, 1 error (bad config: FILE:LINE:COL lines), 2 usage.
 */
#include "classify.h"
#include "cli.h"
#include "exchange.h"
#include "geo.h"
#include "policy.h"
#include "seal.h"
#include "util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPLAIN_MAX_HEADERS 64
#define EXPLAIN_MAX_ADDRS 16
#define EXPLAIN_MAX_BODY (64u << 20)

static const char explain_usage[] =
    "usage: bordergate explain -c FILE --url URL [--method M] [-H 'Name: value']...\n"
    "                          [--body FILE|-] [--content-type T] [--address IP]... [--resolve]\n"
    "                          [--at DATE] [--json]\n"
    "       bordergate explain -c FILE --address IP [--json]\n"
    "\n"
    "Shows what the gateway would do with a request, using the same code as the data plane and\n"
    "no network: the vendor matched, each destination address with its country and region\n"
    "(geoip overrides, then the database), the data categories with detector counts, the policy\n"
    "rules that fired, the decision, reason and legal mechanism, the 451 answer for a block, and\n"
    "for `encrypt` the request the vendor would receive (tokens in place of the values).\n"
    "With --address and no --url: the country and region of that address under the config.\n"
    "\n"
    "  -c, --config FILE     the gateway's config\n"
    "  --url URL             http(s)://host[:port]/path?query of the request\n"
    "  -X, --method M        request method (default GET, or POST with --body)\n"
    "  -H, --header 'N: v'   a request header (repeatable)\n"
    "  --body FILE           the request body (- for stdin)\n"
    "  --content-type T      shorthand for -H 'Content-Type: T'\n"
    "  --address IP          a destination address (repeatable; default: the vendor's pinned\n"
    "                        upstream.addresses)\n"
    "  --resolve             look the host up with getaddrinfo when no address is given\n"
    "  --at DATE             decide at this time: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (default now)\n"
    "  --json                print one JSON object\n"
    "  -h, --help            this text\n"
    "\n"
    "Exit 0 when the request was explained (whatever the decision), 1 on error (an invalid config\n"
    "prints FILE:LINE:COL: message lines; no address to decide for), 2 on a usage error.\n";

typedef struct {
    const char *config, *url, *method, *body_path, *ctype, *at;
    const char *headers[EXPLAIN_MAX_HEADERS];
    size_t nheaders;
    const char *addrs[EXPLAIN_MAX_ADDRS];
    size_t naddrs;
    bool resolve, json;
} opts_t;

/* --at: "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[.fff]Z" into Unix ms. 0 or -1. */
static int parse_at(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    size_t len = strlen(s);
    if (len == 10) {
        if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
            return -1;
    } else {
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
            return -1;
        const char *rest = s + 19;
        if (*rest == '.') {
            rest++;
            while (*rest >= '0' && *rest <= '9')
                rest++;
        }
        if (strcmp(rest, "Z") != 0)
            return -1;
    }
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return -1;
    int64_t days = bg_days_from_civil(y, (unsigned)mo, (unsigned)d);
    *ms = ((days * 86400) + h * 3600 + mi * 60 + sec) * 1000;
    return 0;
}

/* Take the value of a flag given as "--flag VALUE" or "--flag=VALUE". 1 matched, 0 not this
 * flag, -1 missing value. */
static int flag_value(int argc, char **argv, int *i, const char *shortf, const char *longf, const char **out)
{
    const char *a = argv[*i];
    size_t ll = strlen(longf);
    if (strncmp(a, longf, ll) == 0 && a[ll] == '=') {
        *out = a + ll + 1;
        return 1;
    }
    if (strcmp(a, longf) != 0 && !(shortf && strcmp(a, shortf) == 0))
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *out = argv[++*i];
    return 1;
}

static int parse_args(int argc, char **argv, opts_t *o, bool *help)
{
    static const struct {
        const char *s, *l;
    } flags[] = {{"-c", "--config"}, {NULL, "--url"},          {"-X", "--method"}, {"-H", "--header"},
                 {NULL, "--body"},   {NULL, "--content-type"}, {NULL, "--address"}, {NULL, "--at"}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = true;
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--resolve") == 0) {
            o->resolve = true;
            continue;
        }
        int which = -1, r = 0;
        const char *val = NULL;
        for (size_t f = 0; f < BG_ARRAY_SIZE(flags) && which < 0; f++) {
            r = flag_value(argc, argv, &i, flags[f].s, flags[f].l, &val);
            if (r < 0)
                return bg_cli_usage_error("explain", "%s needs a value", a);
            if (r > 0)
                which = (int)f;
        }
        switch (which) {
        case 0: o->config = val; break;
        case 1: o->url = val; break;
        case 2: o->method = val; break;
        case 3:
            if (o->nheaders == EXPLAIN_MAX_HEADERS)
                return bg_cli_usage_error("explain", "more than %d headers", EXPLAIN_MAX_HEADERS);
            o->headers[o->nheaders++] = val;
            break;
        case 4: o->body_path = val; break;
        case 5: o->ctype = val; break;
        case 6:
            if (o->naddrs == EXPLAIN_MAX_ADDRS)
                return bg_cli_usage_error("explain", "more than %d addresses", EXPLAIN_MAX_ADDRS);
            o->addrs[o->naddrs++] = val;
            break;
        case 7: o->at = val; break;
        default:
            if (a[0] == '-')
                return bg_cli_usage_error("explain", "unknown flag '%s'", a);
            return bg_cli_usage_error("explain", "unexpected argument '%s'", a);
        }
    }
    if (!o->config || !*o->config)
        return bg_cli_usage_error("explain", "no config given (-c FILE)");
    if (!o->url && !o->naddrs)
        return bg_cli_usage_error("explain", "nothing to explain: give --url URL (or --address IP alone)");
    if (!o->url && (o->method || o->nheaders || o->body_path || o->ctype || o->resolve))
        return bg_cli_usage_error("explain", "--method, -H, --body, --content-type and --resolve need --url");
    return 0;
}

/* ---- the runtime ---------------------------------------------------------------------- */

/* What a decision needs from a config: GeoIP, keys, classifier, opened as bg_runtime_create
 * does, without the TLS contexts (explain connects nowhere, so a certificate that is not made
 * yet must not stop it). 0, or -1 with the problems in diag; cfg is consumed on success. */
static int runtime_open(bg_config_t *cfg, bg_runtime_t **out, bg_diag_t *diag)
{
    char err[256] = "";
    bg_pos_t nopos = {0, 0};
    bg_runtime_t *rt = calloc(1, sizeof *rt);
    if (!rt)
        abort();
    atomic_init(&rt->refcount, 1);
    rt->listen_ctx = calloc(cfg->nlisten + 1, sizeof *rt->listen_ctx);
    rt->vendor_ctx = calloc(cfg->nvendors + 1, sizeof *rt->vendor_ctx);
    if (!rt->listen_ctx || !rt->vendor_ctx)
        abort();
    if (cfg->geoip.database &&
        bg_geo_open(cfg->geoip.database, cfg->geoip.schema, cfg->geoip.registered_country_fallback, &rt->geo, err,
                    sizeof err) < 0)
        bg_diag_error(diag, cfg->path, cfg->geoip.database_pos, "%s", err);
    if (cfg->encryption.keys_dir &&
        bg_keyring_load(cfg->encryption.keys_dir, cfg->encryption.active_key, &rt->keys, err, sizeof err) < 0)
        bg_diag_error(diag, cfg->path, cfg->encryption.keys_pos, "encryption.keys: %s", err);
    rt->classifier = bg_classifier_create(cfg, err, sizeof err);
    if (!rt->classifier)
        bg_diag_error(diag, cfg->path, nopos, "classification: %s", err);
    if (diag->nerrors)
        goto fail;
    rt->cfg = cfg;
    *out = rt;
    return 0;
fail:
    bg_runtime_release(rt); /* rt->cfg is NULL: the config is not consumed */
    return -1;
}

/* ---- addresses ----------------------------------------------------------------------- */

static void ip_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
    out[0] = 0;
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)n);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)n);
}

/* Where the country came from: "override NET/P" (the most specific matching one, as geo.c
 * picks) or "database" or "none". */
static void geo_source(const bg_runtime_t *rt, const struct sockaddr_storage *ss, const char *country, char *out,
                       size_t n)
{
    const bg_config_t *cfg = rt->cfg;
    const bg_geo_override_t *best = NULL;
    for (size_t i = 0; i < cfg->geoip.noverrides; i++) {
        const bg_geo_override_t *o = &cfg->geoip.overrides[i];
        if (bg_cidr_contains(&o->net, (const struct sockaddr *)ss) && (!best || o->net.prefix > best->net.prefix))
            best = o;
    }
    if (best) {
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(best->net.family, best->net.addr, ip, sizeof ip);
        snprintf(out, n, "override %s/%d", ip, best->net.prefix);
    } else {
        snprintf(out, n, "%s", country[0] ? "database" : "none");
    }
}

/* The named regions (regions.yaml) that list the country, comma-separated. */
static void regions_of(const bg_config_t *cfg, const char *country, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; country[0] && i < cfg->nregions; i++)
        for (size_t j = 0; j < cfg->regions[i].ncountries; j++)
            if (strcmp(cfg->regions[i].countries[j], country) == 0) {
                int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", cfg->regions[i].name);
                if (w > 0 && (size_t)w < n - len)
                    len += (size_t)w;
                break;
            }
}

static const char *kind_name(bg_dest_kind_t k)
{
    static const char *const names[] = {"domestic", "adequate", "third_country", "unknown"};
    return (unsigned)k < 4 ? names[k] : "unknown";
}

static const char *scope_name(bg_adequacy_scope_t s)
{
    return s == BG_SCOPE_COMMERCIAL ? "commercial" : s == BG_SCOPE_DPF ? "dpf" : "full";
}

/* Everything said about one address. */
typedef struct {
    char ip[48], country[3], region[64], in_regions[128], source[80];
    bg_dest_kind_t kind;
    bg_adequacy_scope_t scope;
} addr_info_t;

static void addr_info(const bg_runtime_t *rt, const struct sockaddr_storage *ss, addr_info_t *ai)
{
    const bg_config_t *cfg = rt->cfg;
    memset(ai, 0, sizeof *ai);
    ip_text(ss, ai->ip, sizeof ai->ip);
    bg_geo_lookup(rt->geo, cfg->geoip.overrides, cfg->geoip.noverrides, (const struct sockaddr *)ss, ai->country);
    ai->scope = BG_SCOPE_FULL;
    ai->kind = bg_config_dest_kind(cfg, ai->country, &ai->scope);
    snprintf(ai->region, sizeof ai->region, "%s", bg_config_dest_region_label(cfg, ai->kind));
    regions_of(cfg, ai->country, ai->in_regions, sizeof ai->in_regions);
    geo_source(rt, ss, ai->country, ai->source, sizeof ai->source);
}

static void json_str(bg_buf_t *b, const char *s)
{
    if (!s) {
        bg_buf_puts(b, "null");
        return;
    }
    bg_buf_puts(b, "\"");
    bg_buf_json_escape(b, s, strlen(s));
    bg_buf_puts(b, "\"");
}

static void json_addr(bg_buf_t *b, const addr_info_t *ai)
{
    bg_buf_puts(b, "{\"address\":");
    json_str(b, ai->ip);
    bg_buf_puts(b, ",\"country\":");
    json_str(b, ai->country);
    bg_buf_puts(b, ",\"region\":");
    json_str(b, ai->region);
    bg_buf_printf(b, ",\"kind\":\"%s\"", kind_name(ai->kind));
    if (ai->kind == BG_DEST_ADEQUATE)
        bg_buf_printf(b, ",\"adequacy_scope\":\"%s\"", scope_name(ai->scope));
    bg_buf_puts(b, ",\"in_regions\":[");
    for (const char *p = ai->in_regions; *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        bg_buf_puts(b, p == ai->in_regions ? "\"" : ",\"");
        bg_buf_json_escape(b, p, n);
        bg_buf_puts(b, "\"");
        p += n + (c ? 1 : 0);
    }
    bg_buf_puts(b, "],\"source\":");
    json_str(b, ai->source);
}

static void text_addr(FILE *f, const addr_info_t *ai)
{
    fprintf(f, "%s: country %s, region %s (%s%s%s)", ai->ip, ai->country[0] ? ai->country : "unknown", ai->region,
            kind_name(ai->kind), ai->kind == BG_DEST_ADEQUATE ? ", scope " : "",
            ai->kind == BG_DEST_ADEQUATE ? scope_name(ai->scope) : "");
    if (ai->in_regions[0])
        fprintf(f, ", in %s", ai->in_regions);
    fprintf(f, "; from %s", ai->source);
}

/* `--address` alone: the geography of addresses under the config. */
static int explain_addresses(const bg_runtime_t *rt, const opts_t *o, const struct sockaddr_storage *addrs)
{
    bg_buf_t b;
    bg_buf_init(&b);
    if (o->json) {
        bg_buf_puts(&b, "{\"config\":");
        json_str(&b, o->config);
        bg_buf_printf(&b, ",\"jurisdiction\":");
        json_str(&b, rt->cfg->jurisdiction);
        bg_buf_puts(&b, ",\"addresses\":[");
    }
    for (size_t i = 0; i < o->naddrs; i++) {
        addr_info_t ai;
        addr_info(rt, &addrs[i], &ai);
        if (o->json) {
            bg_buf_puts(&b, i ? "," : "");
            json_addr(&b, &ai);
            bg_buf_puts(&b, "}");
        } else {
            text_addr(stdout, &ai);
            fputc('\n', stdout);
        }
    }
    if (o->json) {
        bg_buf_puts(&b, "]}\n");
        fwrite(b.data, 1, b.len, stdout);
    }
    bg_buf_dispose(&b);
    return 0;
}

/* ---- the request ---------------------------------------------------------------------- */

/* Split http(s)://authority/path?query#frag. 0, or -1 with a message. */
static int parse_url(const char *url, const char **auth, size_t *auth_len, const char **target, size_t *target_len,
                     bool *https, const char **why)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
        *https = false;
    } else if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
        *https = true;
    } else {
        *why = "the URL must start with http:// or https://";
        return -1;
    }
    size_t n = strcspn(p, "/?#");
    if (n == 0) {
        *why = "the URL has no host";
        return -1;
    }
    if (memchr(p, '@', n)) {
        *why = "credentials in the URL are not supported (send them in a header)";
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f) {
            *why = "the URL's host has a space or control character";
            return -1;
        }
    *auth = p;
    *auth_len = n;
    const char *t = p + n;
    size_t tn = strcspn(t, "#");
    for (size_t i = 0; i < tn; i++)
        if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f) {
            *why = "the URL's path has a space or control character (percent-encode it)";
            return -1;
        }
    *target = t;
    *target_len = tn;
    return 0;
}

static int read_body(const char *path, bg_buf_t *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return -1;
    char tmp[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (b->len + n > EXPLAIN_MAX_BODY) {
            rc = -2;
            break;
        }
        bg_buf_append(b, tmp, n);
    }
    if (ferror(f))
        rc = -1;
    if (f != stdin)
        fclose(f);
    OPENSSL_cleanse(tmp, sizeof tmp);
    return rc;
}

/* ---- rendering ------------------------------------------------------------------------ */

typedef struct {
    const opts_t *o;
    bg_exchange_t *ex;
    int64_t at_ms;
    const char *url_host; /* authority as given */
    size_t url_host_len;
    int status;           /* what the client would get from the gateway: 403/405/413/451, or 0 forwarded */
    const char *outcome;  /* "no_vendor" | "method_not_allowed" | "body_too_large" | "block" | "forward" */
    const char *note;     /* an extra line (e.g. why an encrypt became a block) */
    addr_info_t ai[EXPLAIN_MAX_ADDRS];
    size_t nai;
    bool need_address;    /* no address to decide for */
    bool rewritten;       /* out_head/out_body hold the vendor's request */
} report_t;

static void print_escaped(FILE *f, const char *p, size_t n, const char *indent)
{
    fputs(indent, f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r' && i + 1 < n && p[i + 1] == '\n')
            continue;
        if (c == '\n')
            fprintf(f, "\n%s", i + 1 < n ? indent : "");
        else if (c == '\t' || (c >= 0x20 && c != 0x7f))
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
    if (n && p[n - 1] != '\n')
        fputc('\n', f);
}

static void render_text(const report_t *r)
{
    bg_exchange_t *ex = r->ex;
    const bg_runtime_t *rt = ex->rt;
    char when[32];
    printf("request:     %.*s %s", (int)ex->req.method_len, ex->req.method, r->o->url);
    if (ex->body.len || ex->body_over_scan)
        printf(" (body %zu bytes%s)", (size_t)ex->body_total, ex->body_over_scan ? ", over max_body_scan" : "");
    printf("\nat:          %s\n", bg_format_rfc3339_ms(r->at_ms, when));
    if (r->status == 405) {
        printf("decision:    refused: 405 Method Not Allowed (CONNECT is not supported), nothing is sent\n");
        return;
    }
    if (!ex->vendor) {
        printf("vendor:      none: %s is on no vendor's hosts\n", ex->host[0] ? ex->host : "(bad host)");
        printf("decision:    refused (default deny): 403 Forbidden, nothing is sent\n");
        return;
    }
    const bg_vendor_t *v = ex->vendor;
    printf("vendor:      %s (%s, %s; %s), host %s\n", v->name, v->entity_name ? v->entity_name : "?",
           v->entity_country[0] ? v->entity_country : "?", v->role == BG_ROLE_CONTROLLER ? "controller" : "processor",
           ex->host);
    if (r->status == 413) {
        printf("decision:    refused before classification: %d %s\n", r->status, bg_h1_reason(r->status));
        return;
    }
    char cats[128];
    printf("categories:  %s\n",
           ex->cls.categories ? bg_policy_categories_str(ex->cls.categories, cats, sizeof cats) : "none");
    unsigned ndet = bg_classifier_ndetectors(rt->classifier);
    bool any = false;
    for (unsigned i = 0; i < ndet; i++)
        if (ex->cls.counts[i]) {
            printf("%s%s %u (%s)", any ? ", " : "detections:  ", bg_classifier_detector_name(rt->classifier, i),
                   ex->cls.counts[i], bg_category_name(bg_classifier_detector_category(rt->classifier, i)));
            any = true;
        }
    if (any)
        putchar('\n');
    for (size_t i = 0; i < ex->cls.nfindings; i++) {
        const bg_finding_t *fd = &ex->cls.findings[i];
        printf("  found %s (%s) in %s %s\n", bg_classifier_detector_name(rt->classifier, fd->detector),
               bg_category_name(fd->category), bg_where_name(fd->where), fd->path[0] ? fd->path : "");
    }
    if (ex->cls.findings_truncated)
        printf("  (more findings than listed)\n");
    if (ex->cls.unscannable)
        printf("body:        unscannable (%s)\n", ex->cls.unscannable_reason ? ex->cls.unscannable_reason : "?");
    if (r->need_address) {
        printf("destination: unknown: an address is needed to decide (the vendor pins none): pass --address IP,\n"
               "             or --resolve to look %s up\n",
               ex->host);
        return;
    }
    for (size_t i = 0; i < r->nai; i++) {
        printf("%s", i ? "             " : "destination: ");
        text_addr(stdout, &r->ai[i]);
        printf("%s\n", (int)i == ex->chosen ? " [chosen]" : "");
        if (r->nai > 1)
            printf("               -> %s: %s\n", bg_decision_name(ex->dests[i].dec.decision), ex->dests[i].dec.reason);
    }
    const bg_decision_t *d = &ex->dec;
    printf("policy:\n");
    for (int i = 0; i < d->ntrail; i++)
        printf("  %d. %s\n", i + 1, d->trail[i]);
    printf("decision:    %s%s\n", bg_decision_name(d->decision), d->enforced ? "" : " (not enforced: mode report-only)");
    printf("reason:      %s\n", d->reason);
    printf("mechanism:   %s", bg_mechanism_name(d->mechanism));
    if (d->mechanism == BG_MECH_SCC)
        printf(" (module %d, reference %s)", d->scc_module, d->scc_reference ? d->scc_reference : "?");
    printf("\nenforced:    %s\n", d->enforced ? "yes" : "no");
    if (r->note)
        printf("note:        %s\n", r->note);
    if (r->status == 451) {
        bg_buf_t pb;
        bg_buf_init(&pb);
        bg_exchange_problem_451(ex, &pb);
        printf("answer:      451 Unavailable For Legal Reasons, nothing is sent to the vendor (explain writes no\n             record: the transfer id is illustrative)\n             %s\n",
               pb.data);
        bg_buf_dispose(&pb);
    } else {
        printf("answer:      forwarded to %s port %u%s\n", ex->dests[ex->chosen].ip, v->upstream.port,
               v->upstream.tls ? " (TLS)" : "");
    }
    if (r->rewritten) {
        printf("rewritten request (what the vendor receives):\n");
        print_escaped(stdout, ex->out_head.data, ex->out_head.len, "  ");
        const bg_buf_t *body = ex->out_body.len ? &ex->out_body : &ex->body;
        if (body->len)
            print_escaped(stdout, body->data, body->len, "  ");
    }
}

static void render_json(const report_t *r)
{
    bg_exchange_t *ex = r->ex;
    const bg_runtime_t *rt = ex->rt;
    bg_buf_t b;
    bg_buf_init(&b);
    char when[32];
    bg_buf_puts(&b, "{\"config\":");
    json_str(&b, r->o->config);
    bg_buf_printf(&b, ",\"at\":\"%s\",\"request\":{\"method\":\"", bg_format_rfc3339_ms(r->at_ms, when));
    bg_buf_json_escape(&b, ex->req.method, ex->req.method_len);
    bg_buf_puts(&b, "\",\"url\":");
    json_str(&b, r->o->url);
    bg_buf_puts(&b, ",\"host\":");
    json_str(&b, ex->host);
    bg_buf_printf(&b, ",\"body_bytes\":%llu}", (unsigned long long)ex->body_total);
    bg_buf_puts(&b, ",\"vendor\":");
    const bg_vendor_t *v = ex->vendor;
    if (v) {
        bg_buf_puts(&b, "{\"name\":");
        json_str(&b, v->name);
        bg_buf_puts(&b, ",\"entity\":");
        json_str(&b, v->entity_name);
        bg_buf_puts(&b, ",\"entity_country\":");
        json_str(&b, v->entity_country);
        bg_buf_printf(&b, ",\"role\":\"%s\",\"on_violation\":\"%s\"}",
                      v->role == BG_ROLE_CONTROLLER ? "controller" : "processor",
                      v->on_violation == BG_VIOLATION_ENCRYPT ? "encrypt" : "block");
    } else {
        bg_buf_puts(&b, "null");
    }
    bg_buf_printf(&b, ",\"outcome\":\"%s\",\"status\":", r->outcome);
    if (r->status)
        bg_buf_printf(&b, "%d", r->status);
    else
        bg_buf_puts(&b, "null");
    if (ex->cls_ready) {
        bg_buf_puts(&b, ",\"categories\":[");
        int k = 0;
        for (int c = 0; c < BG_CAT__COUNT; c++)
            if (ex->cls.categories & (1u << c))
                bg_buf_printf(&b, "%s\"%s\"", k++ ? "," : "", bg_category_name(c));
        bg_buf_puts(&b, "],\"detections\":{");
        unsigned ndet = bg_classifier_ndetectors(rt->classifier);
        k = 0;
        for (unsigned i = 0; i < ndet; i++)
            if (ex->cls.counts[i]) {
                bg_buf_puts(&b, k++ ? "," : "");
                json_str(&b, bg_classifier_detector_name(rt->classifier, i));
                bg_buf_printf(&b, ":%u", ex->cls.counts[i]);
            }
        bg_buf_puts(&b, "},\"findings\":[");
        for (size_t i = 0; i < ex->cls.nfindings; i++) {
            const bg_finding_t *fd = &ex->cls.findings[i];
            bg_buf_puts(&b, i ? ",{\"detector\":" : "{\"detector\":");
            json_str(&b, bg_classifier_detector_name(rt->classifier, fd->detector));
            bg_buf_printf(&b, ",\"category\":\"%s\",\"where\":\"%s\",\"path\":", bg_category_name(fd->category),
                          bg_where_name(fd->where));
            json_str(&b, fd->path);
            bg_buf_puts(&b, "}");
        }
        bg_buf_printf(&b, "],\"findings_truncated\":%s,\"unscannable\":", ex->cls.findings_truncated ? "true" : "false");
        json_str(&b, ex->cls.unscannable ? ex->cls.unscannable_reason : NULL);
    }
    if (r->need_address)
        bg_buf_puts(&b, ",\"destinations\":[],\"error\":\"an address is needed: pass --address IP or --resolve\"");
    if (r->nai) {
        bg_buf_puts(&b, ",\"destinations\":[");
        for (size_t i = 0; i < r->nai; i++) {
            bg_buf_puts(&b, i ? "," : "");
            json_addr(&b, &r->ai[i]);
            bg_buf_printf(&b, ",\"decision\":\"%s\",\"reason\":", bg_decision_name(ex->dests[i].dec.decision));
            json_str(&b, ex->dests[i].dec.reason);
            bg_buf_printf(&b, ",\"chosen\":%s}", (int)i == ex->chosen ? "true" : "false");
        }
        bg_buf_puts(&b, "]");
        const bg_decision_t *d = &ex->dec;
        bg_buf_printf(&b, ",\"decision\":\"%s\",\"action\":\"%s\",\"reason\":", bg_decision_name(d->decision),
                      bg_decision_name(d->action));
        json_str(&b, d->reason);
        bg_buf_printf(&b, ",\"mechanism\":\"%s\"", bg_mechanism_name(d->mechanism));
        if (d->mechanism == BG_MECH_SCC) {
            bg_buf_printf(&b, ",\"scc_module\":%d,\"scc_reference\":", d->scc_module);
            json_str(&b, d->scc_reference);
        }
        bg_buf_printf(&b, ",\"enforced\":%s,\"trail\":[", d->enforced ? "true" : "false");
        for (int i = 0; i < d->ntrail; i++) {
            bg_buf_puts(&b, i ? "," : "");
            json_str(&b, d->trail[i]);
        }
        bg_buf_puts(&b, "],\"seal_categories\":[");
        int k = 0;
        for (int c = 0; c < BG_CAT__COUNT; c++)
            if (d->decision == BG_DECISION_ENCRYPT && (d->seal_categories & (1u << c)))
                bg_buf_printf(&b, "%s\"%s\"", k++ ? "," : "", bg_category_name(c));
        bg_buf_puts(&b, "],\"note\":");
        json_str(&b, r->note);
        if (r->status == 451) {
            /* The problem body is JSON already: embed it as an object. */
            bg_buf_puts(&b, ",\"problem\":");
            bg_exchange_problem_451(ex, &b);
        }
        if (r->rewritten) {
            const bg_buf_t *body = ex->out_body.len ? &ex->out_body : &ex->body;
            bg_buf_puts(&b, ",\"rewritten_request\":{\"head\":\"");
            bg_buf_json_escape(&b, ex->out_head.data, ex->out_head.len);
            bg_buf_puts(&b, "\",\"body\":\"");
            bg_buf_json_escape(&b, body->data ? body->data : "", body->len);
            bg_buf_puts(&b, "\"}");
        }
    }
    bg_buf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    bg_buf_dispose_secure(&b); /* it held the request's body when forwarded */
}

/* ---- the command ---------------------------------------------------------------------- */

/* Resolve host for --resolve into addrs (at most max). Returns the count, or -1. */
static int resolve(const char *host, struct sockaddr_storage *addrs, size_t max)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "bordergate: explain: cannot resolve %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        memset(&addrs[n], 0, sizeof addrs[n]);
        memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
        n++;
    }
    freeaddrinfo(res);
    return (int)n;
}

static int explain_request(bg_runtime_t *rt, const opts_t *o, const struct sockaddr_storage *given, int64_t at_ms)
{
    int rc = 1;
    report_t r = {.o = o, .at_ms = at_ms, .outcome = "forward"};
    char clen[24];
    bg_exchange_t *ex = calloc(1, sizeof *ex);
    if (!ex)
        abort();
    ex->rt = bg_runtime_retain(rt);
    ex->vendor_index = -1;
    ex->chosen = -1;
    ex->start_ms = at_ms;
    ex->protocol = "http/1.1";
    snprintf(ex->caller, sizeof ex->caller, "explain");
    snprintf(ex->client_ip, sizeof ex->client_ip, "127.0.0.1");
    bg_record_id_make(at_ms, 0, 0, ex->id);
    r.ex = ex;

    const char *auth, *target, *why = NULL;
    size_t auth_len, target_len;
    bool https;
    if (parse_url(o->url, &auth, &auth_len, &target, &target_len, &https, &why) < 0) {
        rc = bg_cli_usage_error("explain", "bad --url: %s", why);
        goto done;
    }
    if (target_len == 0)
        target = "/", target_len = 1;
    if (o->body_path) {
        int br = read_body(o->body_path, &ex->body);
        if (br < 0) {
            fprintf(stderr, "bordergate: explain: %s: %s\n", o->body_path,
                    br == -2 ? "body larger than 64 MiB" : "cannot read");
            goto done;
        }
    }
    /* The request as the HTTP/1.1 codec would have parsed it. */
    bg_h1_request_t *q = &ex->req;
    q->method = o->method ? o->method : o->body_path ? "POST" : "GET";
    q->method_len = strlen(q->method);
    q->target = q->path = target;
    q->target_len = q->path_len = target_len;
    q->minor_version = 1;
    q->host = auth;
    q->host_len = auth_len;
    q->keep_alive = true;
    q->content_length = o->body_path ? (int64_t)ex->body.len : -1;
    q->headers[q->nheaders++] = (bg_header_t){"Host", 4, auth, auth_len};
    bool have_ctype = false;
    for (size_t i = 0; i < o->nheaders; i++) {
        const char *h = o->headers[i];
        const char *colon = strchr(h, ':');
        if (!colon || colon == h || strcspn(h, " \t") < (size_t)(colon - h)) {
            rc = bg_cli_usage_error("explain", "bad header '%s' (want 'Name: value')", h);
            goto done;
        }
        size_t nl = (size_t)(colon - h);
        if (bg_span_ieq(h, nl, "host") || bg_span_ieq(h, nl, "content-length") ||
            bg_span_ieq(h, nl, "transfer-encoding")) {
            rc = bg_cli_usage_error("explain", "-H %.*s: set by explain (from --url and --body)", (int)nl, h);
            goto done;
        }
        const char *val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        size_t vl = strlen(val);
        while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
            vl--;
        have_ctype |= bg_span_ieq(h, nl, "content-type");
        q->headers[q->nheaders++] = (bg_header_t){h, nl, val, vl};
    }
    if (o->ctype && !have_ctype)
        q->headers[q->nheaders++] = (bg_header_t){"Content-Type", 12, o->ctype, strlen(o->ctype)};
    if (o->body_path) {
        snprintf(clen, sizeof clen, "%zu", ex->body.len);
        q->headers[q->nheaders++] = (bg_header_t){"Content-Length", 14, clen, strlen(clen)};
    }
    ex->target = target;
    ex->target_len = target_len;
    ex->body_total = ex->bytes_in = ex->body.len;
    ex->body_done = true;
    uint64_t scan = rt->cfg->limits.max_body_scan;
    if (ex->body.len > scan) {
        /* The data plane keeps only max_body_scan bytes to classify. */
        ex->body.len = (size_t)scan;
        ex->body_over_scan = true;
    }

    /* The steps of exchange.c, in its order. */
    if (bg_span_ieq(q->method, q->method_len, "CONNECT")) {
        r.status = 405;
        r.outcome = "method_not_allowed";
        goto render;
    }
    if (bg_exchange_route(ex, auth, auth_len) < 0) {
        r.status = 403;
        r.outcome = "no_vendor";
        goto render;
    }
    if (q->content_length > 0 && (uint64_t)q->content_length > ex->vendor->max_body) {
        r.status = 413;
        r.outcome = "body_too_large";
        goto render;
    }
    ex->cls_locations = true; /* the report names where each finding is */
    bg_exchange_classify(ex);
    struct sockaddr_storage addrs[EXPLAIN_MAX_ADDRS];
    size_t n = 0;
    const bg_vendor_t *v = ex->vendor;
    if (o->naddrs) {
        memcpy(addrs, given, o->naddrs * sizeof *addrs);
        n = o->naddrs;
    } else if (v->upstream.naddresses) {
        for (size_t i = 0; i < v->upstream.naddresses && n < EXPLAIN_MAX_ADDRS; i++)
            addrs[n++] = v->upstream.addresses[i].addr;
    } else if (o->resolve) {
        int k = resolve(ex->host, addrs, EXPLAIN_MAX_ADDRS);
        if (k < 0)
            goto done;
        n = (size_t)k;
    }
    if (n == 0) {
        r.need_address = true;
        r.outcome = "need_address";
        fprintf(stderr, "bordergate: explain: no destination address for %s: pass --address IP or --resolve\n",
                ex->host);
        rc = 1;
        if (o->json)
            render_json(&r);
        else
            render_text(&r);
        goto done;
    }
    bg_exchange_decide(ex, addrs, n);
    r.nai = n;
    for (size_t i = 0; i < n; i++)
        addr_info(rt, &addrs[i], &r.ai[i]);
    /* act() in exchange.c: these turn an encrypt into a block there too. */
    bool encrypt = ex->dec.action == BG_DECISION_ENCRYPT;
    const char *override = NULL;
    if (ex->dec.action != BG_DECISION_BLOCK && encrypt && (!rt->keys || ex->body_over_scan))
        override = rt->keys ? "encrypt_unscannable_body" : "encrypt_no_keys";
    else if (ex->dec.action != BG_DECISION_BLOCK && bg_exchange_build_request(ex, encrypt) < 0)
        override = "seal_failed";
    if (override) {
        snprintf(ex->dec.reason, sizeof ex->dec.reason, "%s", override);
        ex->dec.decision = ex->dec.action = BG_DECISION_BLOCK;
        ex->dec.enforced = true;
        r.note = "the values cannot be sealed here, so the gateway blocks instead";
    }
    if (ex->dec.action == BG_DECISION_BLOCK) {
        r.status = 451;
        r.outcome = "block";
    } else {
        r.rewritten = encrypt;
    }
render:
    if (o->json)
        render_json(&r);
    else
        render_text(&r);
    rc = 0;
done:
    bg_exchange_destroy(ex);
    return rc;
}

int bg_cmd_explain(int argc, char **argv)
{
    opts_t o = {0};
    bool help = false;
    int rc = parse_args(argc, argv, &o, &help);
    if (rc != 0)
        return rc;
    if (help) {
        fputs(explain_usage, stdout);
        return 0;
    }
    int64_t at_ms = bg_now_ms();
    if (o.at && parse_at(o.at, &at_ms) < 0)
        return bg_cli_usage_error("explain", "bad --at '%s' (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)", o.at);
    struct sockaddr_storage addrs[EXPLAIN_MAX_ADDRS];
    for (size_t i = 0; i < o.naddrs; i++)
        if (bg_geo_parse_addr(o.addrs[i], &addrs[i]) < 0)
            return bg_cli_usage_error("explain", "bad --address '%s' (an IPv4 or IPv6 literal)", o.addrs[i]);

    bg_diag_t d;
    bg_config_t *cfg = NULL;
    bg_runtime_t *rt = NULL;
    bg_diag_init(&d);
    rc = 1;
    if (bg_config_load(o.config, (int64_t)time(NULL), &cfg, &d) < 0)
        goto fail;
    if (runtime_open(cfg, &rt, &d) < 0)
        goto fail;
    cfg = NULL; /* owned by rt */
    rc = o.url ? explain_request(rt, &o, addrs, at_ms) : explain_addresses(rt, &o, addrs);
fail:
    for (size_t i = 0; i < d.nerrors; i++)
        fprintf(stderr, "%s\n", d.errors[i]);
    if (d.nerrors)
        fprintf(stderr, "%s: invalid (%zu error%s)\n", o.config, d.nerrors, d.nerrors == 1 ? "" : "s");
    bg_runtime_release(rt);
    bg_config_release(cfg);
    bg_diag_dispose(&d);
    return rc;
}
