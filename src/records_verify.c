/*
 * records_verify.c — `records verify`: walks record files in order and checks every line's
 * hash and its link to the line before (across files too). Reports the first break as
 * FILE:LINE: why. Runs on the caller's thread; reads streams line by line with bounded memory
 * (lines over BG_RECORD_MAX_LINE are a break). No globals.
 */
#include "records.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char head[65];       /* hash of the last good record */
    bool have_head;
    char anchor[65];     /* prev of the very first record */
    uint64_t count;      /* records verified */
    const char *head_file; /* where the head record lives */
} vstate_t;

/* Read one line (with its newline, if any) into buf[0..cap); a line longer than cap-1 is cut
 * and the rest skipped, and *too_long set. Returns the stored length, or -1 at EOF. */
static ssize_t read_line(FILE *in, char *buf, size_t cap, bool *too_long)
{
    size_t n = 0;
    int c;
    *too_long = false;
    while ((c = getc_unlocked(in)) != EOF) {
        if (n + 1 < cap)
            buf[n++] = (char)c;
        else
            *too_long = true;
        if (c == '\n')
            break;
    }
    if (c == EOF && n == 0 && !*too_long)
        return -1;
    buf[n] = 0;
    return (ssize_t)n;
}

/* 0: file ok; 1: broken (message printed). */
static int verify_stream(FILE *in, const char *name, bool last_file, vstate_t *st, FILE *out)
{
    size_t cap = BG_RECORD_MAX_LINE + 2;
    char *line = malloc(cap);
    if (!line)
        abort();
    ssize_t n;
    bool too_long;
    uint64_t lineno = 0;
    int rc = 0;
    bool first_in_file = true;
    while ((n = read_line(in, line, cap, &too_long)) >= 0) {
        lineno++;
        if (too_long) {
            fprintf(out, "%s:%llu: line too long (over %u bytes)\n", name, (unsigned long long)lineno,
                    BG_RECORD_MAX_LINE);
            rc = 1;
            break;
        }
        size_t len = (size_t)n;
        bool has_nl = len > 0 && line[len - 1] == '\n';
        if (has_nl)
            len--;
        char prev[65], hash[65];
        const char *why = NULL;
        int c = bg_record_check_line(line, len, prev, hash, &why);
        if (!has_nl) {
            /* The final line of a file lacks its newline: a torn write. At the end of the last
             * file it is a crash artefact, not tampering; anywhere else it breaks the chain. */
            if (last_file)
                fprintf(out, "%s:%llu: truncated: the final line is incomplete (torn write, %zu bytes)%s\n", name,
                        (unsigned long long)lineno, len, c == 0 ? " although its hash is intact" : "");
            else
                fprintf(out, "%s:%llu: truncated line in the middle of the chain (no newline before the next file)\n",
                        name, (unsigned long long)lineno);
            rc = 1;
            break;
        }
        if (c != 0) {
            fprintf(out, "%s:%llu: %s\n", name, (unsigned long long)lineno, why);
            rc = 1;
            break;
        }
        if (!st->have_head) {
            memcpy(st->anchor, prev, 65);
        } else if (memcmp(prev, st->head, 64) != 0) {
            if (first_in_file)
                fprintf(out,
                        "%s:%llu: broken link across files: \"prev\" is not the hash of the last record of %s\n",
                        name, (unsigned long long)lineno, st->head_file);
            else
                fprintf(out,
                        "%s:%llu: broken chain: \"prev\" is not the hash of the line before "
                        "(a line was deleted, inserted or reordered)\n",
                        name, (unsigned long long)lineno);
            rc = 1;
            break;
        }
        memcpy(st->head, hash, 65);
        st->have_head = true;
        st->head_file = name;
        st->count++;
        first_in_file = false;
    }
    if (rc == 0 && ferror(in)) {
        fprintf(out, "%s: read error: %s\n", name, strerror(errno));
        rc = 1;
    }
    free(line);
    return rc;
}

int bg_records_verify_streams(FILE **ins, const char *const *names, size_t n, FILE *out)
{
    vstate_t st;
    memset(&st, 0, sizeof st);
    st.head_file = "";
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = verify_stream(ins[i], names[i], i + 1 == n, &st, out);
    if (rc == 0) {
        fprintf(out, "OK: %llu records in %zu file%s, chain intact\n", (unsigned long long)st.count, n,
                n == 1 ? "" : "s");
        if (st.have_head)
            fprintf(out, "first prev: %s%s\nlast hash:  %s\n", st.anchor,
                    strcmp(st.anchor, BG_RECORD_GENESIS) == 0 ? " (genesis)" : " (continues an earlier file)",
                    st.head);
    } else {
        fprintf(out, "BROKEN: %llu records verified before the break\n", (unsigned long long)st.count);
    }
    return rc;
}

int bg_records_verify(char **files, size_t nfiles, FILE *out)
{
    FILE **ins = calloc(nfiles ? nfiles : 1, sizeof *ins);
    if (!ins)
        abort();
    int rc = 0;
    for (size_t i = 0; i < nfiles; i++) {
        ins[i] = fopen(files[i], "rb");
        if (!ins[i]) {
            fprintf(out, "%s: cannot open: %s\n", files[i], strerror(errno));
            rc = 1;
            goto done;
        }
    }
    rc = bg_records_verify_streams(ins, (const char *const *)files, nfiles, out);
done:
    for (size_t i = 0; i < nfiles; i++)
        if (ins[i])
            fclose(ins[i]);
    free(ins);
    return rc;
}
