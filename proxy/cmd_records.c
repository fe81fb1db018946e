/*
 * cmd_records.c — `bordergate records verify FILE...` (check the hash chain across files, in
 * the order given) and `bordergate records report FILE... [--from DATE] [--to DATE]
 * [--format md|csv|json]` (the transfer inventory for the record of processing activities,
 * GDPR Art. 30(1)(e): per vendor × destination country × mechanism × category, counts of
 * allowed / encrypted / blocked and first / last seen). Main thread only; reads files only.
 */
#include "cli.h"
#include "records.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char verify_usage[] =
    "usage: bordergate records verify FILE...\n"
    "\n"
    "Checks every record's hash and its link to the record before, across the files in the\n"
    "order given (oldest first: rotated files sort by their timestamp suffix, the current file\n"
    "last, e.g. records/transfers.jsonl.* records/transfers.jsonl). Prints the count; on a break,\n"
    "the first broken FILE:LINE and why. A torn final line is reported as \"truncated\".\n"
    "Exit status: 0 intact, 1 broken or unreadable, 2 usage.\n";

static const char report_usage[] =
    "usage: bordergate records report FILE... [--from DATE] [--to DATE] [--format md|csv|json]\n"
    "\n"
    "Inventory of transfers for the record of processing activities (GDPR Art. 30(1)(e)):\n"
    "one row per vendor x destination country x mechanism x data category, with the number of\n"
    "transfers allowed, encrypted and blocked, and when first and last seen. A transfer with\n"
    "several categories counts once under each; one without personal data under \"none\".\n"
    "report_only counts the blocks that mode: report-only did not enforce: those transfers\n"
    "went out, and are not counted as blocked.\n"
    "DATE is YYYY-MM-DD (UTC) or an RFC 3339 prefix; --from and --to are inclusive.\n"
    "Lines that are not records are skipped and counted on stderr (use verify for integrity).\n"
    "Default format: md.\n";

static const char records_usage[] =
    "usage: bordergate records verify FILE...\n"
    "       bordergate records report FILE... [--from DATE] [--to DATE] [--format md|csv|json]\n"
    "Run 'bordergate records verify -h' or 'bordergate records report -h' for details.\n";

static int cmd_verify(int argc, char **argv)
{
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(verify_usage, stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1])
            return bg_cli_usage_error("records verify", "unknown flag '%s'", argv[i]);
        nfiles++;
    }
    if (nfiles == 0)
        return bg_cli_usage_error("records verify", "verify needs at least one FILE");
    return bg_records_verify(argv + 1, (size_t)(argc - 1), stdout) == 0 ? 0 : 1;
}

typedef struct {
    char vendor[128], country[8], mechanism[16], category[32];
    uint64_t allowed, encrypted, blocked, report_only;
    char first[32], last[32];
} row_t;

typedef struct {
    row_t *rows;
    size_t n, cap;
    uint64_t records, skipped;
    char first[32], last[32];
} report_t;

static void add_row(report_t *rp, const char *vendor, const char *country, const char *mech, const char *cat,
                    const char *decision, bool enforced, const char *ts)
{
    row_t *r = NULL;
    for (size_t i = rp->n; i-- > 0;)
        if (strcmp(rp->rows[i].category, cat) == 0 && strcmp(rp->rows[i].vendor, vendor) == 0 &&
            strcmp(rp->rows[i].country, country) == 0 && strcmp(rp->rows[i].mechanism, mech) == 0) {
            r = &rp->rows[i];
            break;
        }
    if (!r) {
        if (rp->n == rp->cap) {
            rp->cap = rp->cap ? rp->cap * 2 : 64;
            rp->rows = realloc(rp->rows, rp->cap * sizeof *rp->rows);
            if (!rp->rows)
                abort();
        }
        r = &rp->rows[rp->n++];
        memset(r, 0, sizeof *r);
        snprintf(r->vendor, sizeof r->vendor, "%s", vendor);
        snprintf(r->country, sizeof r->country, "%s", country);
        snprintf(r->mechanism, sizeof r->mechanism, "%s", mech);
        snprintf(r->category, sizeof r->category, "%s", cat);
        snprintf(r->first, sizeof r->first, "%s", ts);
        snprintf(r->last, sizeof r->last, "%s", ts);
    }
    if (strcmp(decision, "allow") == 0)
        r->allowed++;
    else if (strcmp(decision, "encrypt") == 0)
        r->encrypted++;
    else if (!enforced) /* report-only let it through: a transfer that happened, not a block */
        r->report_only++;
    else
        r->blocked++;
    if (strcmp(ts, r->first) < 0)
        snprintf(r->first, sizeof r->first, "%s", ts);
    if (strcmp(ts, r->last) > 0)
        snprintf(r->last, sizeof r->last, "%s", ts);
}

static bool get_str(const char *line, size_t len, const char *key, char *out, size_t outlen)
{
    const char *v;
    size_t vn;
    return bg_records_json_member(line, len, key, &v, &vn) && bg_records_json_string(v, vn, out, outlen) >= 0;
}

/* RFC 3339 timestamps of one format compare as strings; a DATE bound compares on its prefix. */
static bool in_range(const char *ts, const char *from, const char *to)
{
    if (from && strncmp(ts, from, strlen(from)) < 0)
        return false;
    if (to && strncmp(ts, to, strlen(to)) > 0)
        return false;
    return true;
}

static void report_line(report_t *rp, const char *line, size_t len, const char *from, const char *to)
{
    char ts[32], vendor[128], country[8], mech[16], decision[16];
    const char *cats;
    size_t catsn;
    if (len > BG_RECORD_MAX_LINE || !bg_records_json_valid(line, len) || !get_str(line, len, "ts", ts, sizeof ts) ||
        !get_str(line, len, "vendor", vendor, sizeof vendor) ||
        !get_str(line, len, "dest_country", country, sizeof country) ||
        !get_str(line, len, "mechanism", mech, sizeof mech) ||
        !get_str(line, len, "decision", decision, sizeof decision) ||
        !bg_records_json_member(line, len, "categories", &cats, &catsn)) {
        rp->skipped++;
        return;
    }
    if (!in_range(ts, from, to))
        return;
    if (!*country)
        snprintf(country, sizeof country, "unknown");
    const char *ev;
    size_t evn;
    bool enforced = !(bg_records_json_member(line, len, "enforced", &ev, &evn) && evn == 5 && memcmp(ev, "false", 5) == 0);
    rp->records++;
    if (!*rp->first || strcmp(ts, rp->first) < 0)
        snprintf(rp->first, sizeof rp->first, "%s", ts);
    if (strcmp(ts, rp->last) > 0)
        snprintf(rp->last, sizeof rp->last, "%s", ts);
    size_t pos = 0;
    char cat[32];
    bool any = false;
    while (bg_records_json_array_next(cats, catsn, &pos, cat, sizeof cat)) {
        add_row(rp, vendor, country, mech, cat, decision, enforced, ts);
        any = true;
    }
    if (!any)
        add_row(rp, vendor, country, mech, "none", decision, enforced, ts);
}

static int row_cmp(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    int c = strcmp(x->vendor, y->vendor);
    if (!c)
        c = strcmp(x->country, y->country);
    if (!c)
        c = strcmp(x->mechanism, y->mechanism);
    if (!c)
        c = strcmp(x->category, y->category);
    return c;
}

static void put_csv(const char *s, bool last)
{
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote) {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    putchar(last ? '\n' : ',');
}

static void put_md(const char *s)
{
    for (; *s; s++) {
        if (*s == '|' || *s == '\\' || *s == '`' || *s == '*')
            putchar('\\');
        putchar(*s == '\n' || *s == '\r' ? ' ' : *s);
    }
}

static void put_json(const char *s)
{
    bg_buf_t b;
    bg_buf_init(&b);
    bg_buf_append(&b, "\"", 1);
    bg_buf_json_escape(&b, s, strlen(s));
    bg_buf_append(&b, "\"", 1);
    fputs(b.data, stdout);
    bg_buf_dispose(&b);
}

static bool date_ok(const char *s)
{
    /* YYYY-MM-DD, optionally followed by the rest of an RFC 3339 timestamp. */
    for (int i = 0; i < 10; i++) {
        char c = s[i];
        if (i == 4 || i == 7 ? c != '-' : !(c >= '0' && c <= '9'))
            return false;
    }
    return s[10] == 0 || s[10] == 'T';
}

static int cmd_report(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *format = "md";
    char **files = calloc((size_t)argc, sizeof *files);
    size_t nfiles = 0;
    int rc = 0;
    report_t rp;
    memset(&rp, 0, sizeof rp);
    if (!files)
        abort();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(report_usage, stdout);
            goto done;
        }
        if (strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0 || strcmp(a, "--format") == 0) {
            if (i + 1 >= argc) {
                rc = bg_cli_usage_error("records report", "%s needs a value", a);
                goto done;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--format") == 0) {
                if (strcmp(v, "md") && strcmp(v, "csv") && strcmp(v, "json")) {
                    rc = bg_cli_usage_error("records report", "unknown format '%s' (md, csv or json)", v);
                    goto done;
                }
                format = v;
            } else {
                if (!date_ok(v)) {
                    rc = bg_cli_usage_error("records report", "%s: '%s' is not a date (YYYY-MM-DD)", a, v);
                    goto done;
                }
                if (strcmp(a, "--from") == 0)
                    from = v;
                else
                    to = v;
            }
            continue;
        }
        if (a[0] == '-' && a[1]) {
            rc = bg_cli_usage_error("records report", "unknown flag '%s'", a);
            goto done;
        }
        files[nfiles++] = argv[i];
    }
    if (nfiles == 0) {
        rc = bg_cli_usage_error("records report", "report needs at least one FILE");
        goto done;
    }
    for (size_t f = 0; f < nfiles; f++) {
        FILE *in = fopen(files[f], "rb");
        if (!in) {
            fprintf(stderr, "bordergate: %s: %s\n", files[f], strerror(errno));
            rc = 1;
            goto done;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, in)) >= 0) {
            size_t len = (size_t)n;
            if (len && line[len - 1] == '\n')
                len--;
            if (len)
                report_line(&rp, line, len, from, to);
        }
        free(line);
        fclose(in);
    }
    if (rp.n) /* no rows: rp.rows is NULL, which qsort may not be given */
        qsort(rp.rows, rp.n, sizeof *rp.rows, row_cmp);
    if (strcmp(format, "csv") == 0) {
        puts("vendor,dest_country,mechanism,category,allowed,encrypted,blocked,report_only,first_seen,last_seen");
        for (size_t i = 0; i < rp.n; i++) {
            row_t *r = &rp.rows[i];
            put_csv(r->vendor, false);
            put_csv(r->country, false);
            put_csv(r->mechanism, false);
            put_csv(r->category, false);
            printf("%llu,%llu,%llu,%llu,", (unsigned long long)r->allowed, (unsigned long long)r->encrypted,
                   (unsigned long long)r->blocked, (unsigned long long)r->report_only);
            put_csv(r->first, false);
            put_csv(r->last, true);
        }
    } else if (strcmp(format, "json") == 0) {
        printf("{\"records\":%llu,\"from\":", (unsigned long long)rp.records);
        put_json(from ? from : "");
        fputs(",\"to\":", stdout);
        put_json(to ? to : "");
        fputs(",\"first_seen\":", stdout);
        put_json(rp.first);
        fputs(",\"last_seen\":", stdout);
        put_json(rp.last);
        fputs(",\"rows\":[", stdout);
        for (size_t i = 0; i < rp.n; i++) {
            row_t *r = &rp.rows[i];
            fputs(i ? ",{\"vendor\":" : "{\"vendor\":", stdout);
            put_json(r->vendor);
            fputs(",\"dest_country\":", stdout);
            put_json(r->country);
            fputs(",\"mechanism\":", stdout);
            put_json(r->mechanism);
            fputs(",\"category\":", stdout);
            put_json(r->category);
            printf(",\"allowed\":%llu,\"encrypted\":%llu,\"blocked\":%llu,\"report_only\":%llu,\"first_seen\":",
                   (unsigned long long)r->allowed, (unsigned long long)r->encrypted, (unsigned long long)r->blocked,
                   (unsigned long long)r->report_only);
            put_json(r->first);
            fputs(",\"last_seen\":", stdout);
            put_json(r->last);
            fputs("}", stdout);
        }
        puts("]}");
    } else {
        puts("# Transfers to vendors (GDPR Art. 30(1)(e))\n");
        printf("%llu transfer records", (unsigned long long)rp.records);
        if (rp.records)
            printf(", %s to %s", rp.first, rp.last);
        if (from || to)
            printf(" (filter: from %s to %s)", from ? from : "the start", to ? to : "the end");
        puts(".\n");
        puts("| Vendor | Destination country | Mechanism | Category | Allowed | Encrypted | Blocked | Report-only | "
             "First seen | Last seen |");
        puts("|---|---|---|---|---:|---:|---:|---:|---|---|");
        for (size_t i = 0; i < rp.n; i++) {
            row_t *r = &rp.rows[i];
            fputs("| ", stdout);
            put_md(r->vendor);
            fputs(" | ", stdout);
            put_md(r->country);
            fputs(" | ", stdout);
            put_md(r->mechanism);
            fputs(" | ", stdout);
            put_md(r->category);
            printf(" | %llu | %llu | %llu | %llu | %s | %s |\n", (unsigned long long)r->allowed,
                   (unsigned long long)r->encrypted, (unsigned long long)r->blocked, (unsigned long long)r->report_only,
                   r->first, r->last);
        }
    }
    if (rp.skipped)
        fprintf(stderr, "bordergate: %llu lines skipped (not transfer records)\n", (unsigned long long)rp.skipped);
done:
    free(rp.rows);
    free(files);
    return rc;
}

int bg_cmd_records(int argc, char **argv)
{
    if (argc < 2) {
        fputs(records_usage, stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(records_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    return bg_cli_usage_error("records", "unknown subcommand '%s' (verify or report)", argv[1]);
}
