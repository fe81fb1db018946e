/*
 * mkmmdb.c — a writer of the MaxMind DB format (spec v2.0), for tests: builds a small country
 * database from CIDR=COUNTRY pairs so unit and integration tests exercise the real
 * libmaxminddb path. Networks are inserted least specific first, so a more specific network
 * always wins whatever the argument order. IPv6 databases hold IPv4 under ::/96 and alias
 * ::ffff:0:0/96 to the same subtree (as MaxMind's own databases do).
 * Single-threaded. The unit test includes this file with MKMMDB_NO_MAIN defined and calls
 * mmdbw_* directly.
 *
 * usage: mkmmdb OUT.mmdb [--schema maxmind|dbip] [--ip-version 4|6] [--type NAME]
 *               [--build-epoch N] [--record-size 24|28|32] [--description TEXT] [--no-alias]
 *               CIDR=VALUE ...
 * VALUE: "CC" (country), "CC:RC" (country and registered_country, maxmind schema), ":RC"
 * (registered_country only), "" (a record with no country at all).
 */
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MMDBW_MAXMIND = 0, MMDBW_DBIP = 1 };

/* In-memory records: the top two bits say what the low 30 are. */
#define REC_EMPTY 0u
#define REC_NODE(i) (0x40000000u | (uint32_t)(i))
#define REC_DATA(j) (0x80000000u | (uint32_t)(j))
#define REC_KIND(r) ((r) & 0xc0000000u)
#define REC_IDX(r) ((r) & 0x3fffffffu)

typedef struct {
    char cc[32]; /* country (iso_code / country_code), "" none */
    char rc[32]; /* registered_country, "" none */
} mmdbw_value_t;

typedef struct {
    uint8_t a[16]; /* bits from the root: IPv4 DB 4 bytes, IPv6 DB 16 */
    int prefix;
    size_t order;
    uint32_t value; /* index into vals */
} mmdbw_net_t;

typedef struct {
    int ip_version;
    int schema;
    char type[128];
    char description[256];
    uint64_t build_epoch;
    int record_size; /* 0: smallest that fits */
    bool alias;
    uint32_t (*nodes)[2];
    size_t nnodes, capnodes;
    mmdbw_value_t *vals;
    size_t nvals, capvals;
    mmdbw_net_t *nets;
    size_t nnets, capnets;
} mmdbw_t;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p)
        abort();
    return p;
}

/** A writer with defaults (IPv6, maxmind schema, GeoLite2-Country, now, alias on); free with
 *  mmdbw_destroy. */
static mmdbw_t *mmdbw_create(void)
{
    mmdbw_t *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->ip_version = 6;
    w->schema = MMDBW_MAXMIND;
    w->build_epoch = (uint64_t)time(NULL);
    w->alias = true;
    snprintf(w->description, sizeof w->description, "bordergate test database");
    return w;
}

static void mmdbw_destroy(mmdbw_t *w)
{
    if (!w)
        return;
    free(w->nodes);
    free(w->vals);
    free(w->nets);
    free(w);
}

static const char *mmdbw_type(const mmdbw_t *w)
{
    if (w->type[0])
        return w->type;
    if (w->schema == MMDBW_DBIP)
        return w->ip_version == 4 ? "country ipv4" : "country ipvAll";
    return "GeoLite2-Country";
}

/* "a.b.c.d[/p]" or "x::y[/p]" into the tree's bit string; host bits are cleared. */
static int parse_cidr(const mmdbw_t *w, const char *s, uint8_t a[16], int *prefix, char *err, size_t errlen)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof host) {
        snprintf(err, errlen, "bad network \"%s\"", s);
        return -1;
    }
    memcpy(host, s, hl);
    host[hl] = 0;
    uint8_t b[16] = {0};
    int max, off;
    memset(a, 0, 16);
    if (inet_pton(AF_INET, host, b) == 1) {
        max = 32;
        if (w->ip_version == 4) {
            memcpy(a, b, 4);
            off = 0;
        } else {
            memcpy(a + 12, b, 4); /* ::a.b.c.d */
            off = 96;
        }
    } else if (inet_pton(AF_INET6, host, b) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (w->ip_version == 4) {
            snprintf(err, errlen, "IPv6 network \"%s\" in an IPv4 database", s);
            return -1;
        }
        max = 128;
        off = 0;
        memcpy(a, b, 16);
        if (memcmp(b, mapped, 12) == 0 && w->alias) {
            /* ::ffff:0:0/96 is an alias of ::/96: store the network there. */
            memset(a, 0, 12);
        }
    } else {
        snprintf(err, errlen, "bad address in \"%s\"", s);
        return -1;
    }
    int p = max;
    if (slash) {
        char *end;
        errno = 0;
        long v = strtol(slash + 1, &end, 10);
        if (errno || *end || end == slash + 1 || v < 0 || v > max) {
            snprintf(err, errlen, "bad prefix length in \"%s\"", s);
            return -1;
        }
        p = (int)v;
    }
    if (max == 128 && memcmp(b, (const uint8_t[12]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 12) == 0 &&
        w->alias) {
        if (p < 96) {
            snprintf(err, errlen, "\"%s\" would overlap the ::ffff:0:0/96 alias (use --no-alias)", s);
            return -1;
        }
    }
    p += off;
    int full = p / 8, rest = p % 8;
    if (rest)
        a[full++] &= (uint8_t)(0xff << (8 - rest));
    for (int i = full; i < 16; i++)
        a[i] = 0;
    *prefix = p;
    return 0;
}

/** Add a network: "CIDR" and a VALUE (see the file comment). 0, or -1 with err set. */
static int mmdbw_add(mmdbw_t *w, const char *cidr, const char *value, char *err, size_t errlen)
{
    mmdbw_value_t v;
    memset(&v, 0, sizeof v);
    const char *colon = strchr(value, ':');
    size_t cl = colon ? (size_t)(colon - value) : strlen(value);
    size_t rl = colon ? strlen(colon + 1) : 0;
    if (colon && strchr(colon + 1, ':')) {
        snprintf(err, errlen, "bad value \"%s\" (CC, CC:RC, :RC or empty)", value);
        return -1;
    }
    if (cl >= sizeof v.cc || rl >= sizeof v.rc) {
        snprintf(err, errlen, "value too long: \"%s\"", value);
        return -1;
    }
    if (colon && w->schema == MMDBW_DBIP) {
        snprintf(err, errlen, "registered_country (\"%s\") needs --schema maxmind", value);
        return -1;
    }
    memcpy(v.cc, value, cl);
    if (colon)
        memcpy(v.rc, colon + 1, rl);
    mmdbw_net_t n;
    memset(&n, 0, sizeof n);
    if (parse_cidr(w, cidr, n.a, &n.prefix, err, errlen) != 0)
        return -1;
    size_t j;
    for (j = 0; j < w->nvals; j++)
        if (strcmp(w->vals[j].cc, v.cc) == 0 && strcmp(w->vals[j].rc, v.rc) == 0)
            break;
    if (j == w->nvals) {
        if (w->nvals == w->capvals) {
            w->capvals = w->capvals ? w->capvals * 2 : 16;
            w->vals = xrealloc(w->vals, w->capvals * sizeof *w->vals);
        }
        w->vals[w->nvals++] = v;
    }
    n.value = (uint32_t)j;
    n.order = w->nnets;
    if (w->nnets == w->capnets) {
        w->capnets = w->capnets ? w->capnets * 2 : 16;
        w->nets = xrealloc(w->nets, w->capnets * sizeof *w->nets);
    }
    w->nets[w->nnets++] = n;
    return 0;
}

/** Add "CIDR=VALUE". */
static int mmdbw_add_arg(mmdbw_t *w, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    char cidr[80];
    if (!eq || (size_t)(eq - arg) >= sizeof cidr) {
        snprintf(err, errlen, "expected CIDR=VALUE, got \"%s\"", arg);
        return -1;
    }
    memcpy(cidr, arg, (size_t)(eq - arg));
    cidr[eq - arg] = 0;
    return mmdbw_add(w, cidr, eq + 1, err, errlen);
}

/* ---- the search tree ------------------------------------------------------------- */

static uint32_t node_new(mmdbw_t *w, uint32_t left, uint32_t right)
{
    if (w->nnodes == w->capnodes) {
        w->capnodes = w->capnodes ? w->capnodes * 2 : 64;
        w->nodes = xrealloc(w->nodes, w->capnodes * sizeof *w->nodes);
    }
    w->nodes[w->nnodes][0] = left;
    w->nodes[w->nnodes][1] = right;
    return (uint32_t)w->nnodes++;
}

static int bit_at(const uint8_t *a, int i) { return (a[i / 8] >> (7 - i % 8)) & 1; }

/* Point the record for a/prefix at rec, splitting leaves on the way down. */
static void tree_set(mmdbw_t *w, const uint8_t *a, int prefix, uint32_t rec)
{
    if (prefix == 0) {
        w->nodes[0][0] = w->nodes[0][1] = rec;
        return;
    }
    uint32_t cur = 0;
    for (int i = 0; i < prefix; i++) {
        int b = bit_at(a, i);
        if (i == prefix - 1) {
            w->nodes[cur][b] = rec;
            return;
        }
        uint32_t r = w->nodes[cur][b];
        if (REC_KIND(r) != REC_NODE(0)) {
            uint32_t n = node_new(w, r, r); /* may move w->nodes */
            w->nodes[cur][b] = REC_NODE(n);
            r = REC_NODE(n);
        }
        cur = REC_IDX(r);
    }
}

/* The record reached by a/prefix (a leaf above it if the path ends earlier). */
static uint32_t tree_get(const mmdbw_t *w, const uint8_t *a, int prefix)
{
    uint32_t r = REC_NODE(0);
    for (int i = 0; i < prefix && REC_KIND(r) == REC_NODE(0); i++)
        r = w->nodes[REC_IDX(r)][bit_at(a, i)];
    return r;
}

static int net_cmp(const void *x, const void *y)
{
    const mmdbw_net_t *a = x, *b = y;
    if (a->prefix != b->prefix)
        return a->prefix < b->prefix ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* ---- the data section encoding ------------------------------------------------------ */

enum { T_EXT = 0, T_POINTER = 1, T_STRING = 2, T_DOUBLE = 3, T_BYTES = 4, T_UINT16 = 5, T_UINT32 = 6, T_MAP = 7,
       T_INT32 = 8, T_UINT64 = 9, T_UINT128 = 10, T_ARRAY = 11, T_BOOL = 14, T_FLOAT = 15 };

static void put_u8(bg_buf_t *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    bg_buf_append(b, &c, 1);
}

static void enc_ctrl(bg_buf_t *b, int type, size_t size)
{
    unsigned first = type <= 7 ? (unsigned)type << 5 : 0;
    uint8_t extra[3];
    size_t nextra = 0;
    if (size < 29) {
        first |= (unsigned)size;
    } else if (size < 29 + 256) {
        first |= 29;
        extra[nextra++] = (uint8_t)(size - 29);
    } else if (size < 285 + 65536) {
        size_t s = size - 285;
        first |= 30;
        extra[nextra++] = (uint8_t)(s >> 8);
        extra[nextra++] = (uint8_t)s;
    } else {
        size_t s = size - 65821;
        first |= 31;
        extra[nextra++] = (uint8_t)(s >> 16);
        extra[nextra++] = (uint8_t)(s >> 8);
        extra[nextra++] = (uint8_t)s;
    }
    put_u8(b, first);
    if (type > 7)
        put_u8(b, (unsigned)(type - 7));
    bg_buf_append(b, extra, nextra);
}

static void enc_string(bg_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    enc_ctrl(b, T_STRING, n);
    bg_buf_append(b, s, n);
}

/* Unsigned integers are stored big-endian in as few bytes as the value needs. */
static void enc_uint(bg_buf_t *b, int type, uint64_t v)
{
    uint8_t tmp[8];
    size_t n = 0;
    for (uint64_t x = v; x; x >>= 8)
        n++;
    for (size_t i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    enc_ctrl(b, type, n);
    bg_buf_append(b, tmp, n);
}

static void enc_value(const mmdbw_t *w, bg_buf_t *b, const mmdbw_value_t *v)
{
    if (w->schema == MMDBW_DBIP) {
        enc_ctrl(b, T_MAP, v->cc[0] ? 1 : 0);
        if (v->cc[0]) {
            enc_string(b, "country_code");
            enc_string(b, v->cc);
        }
        return;
    }
    enc_ctrl(b, T_MAP, (v->cc[0] ? 1 : 0) + (v->rc[0] ? 1 : 0));
    if (v->cc[0]) {
        enc_string(b, "country");
        enc_ctrl(b, T_MAP, 1);
        enc_string(b, "iso_code");
        enc_string(b, v->cc);
    }
    if (v->rc[0]) {
        enc_string(b, "registered_country");
        enc_ctrl(b, T_MAP, 1);
        enc_string(b, "iso_code");
        enc_string(b, v->rc);
    }
}

static void enc_metadata(const mmdbw_t *w, bg_buf_t *b, uint32_t node_count, int record_size)
{
    bg_buf_append(b, "\xab\xcd\xef" "MaxMind.com", 14);
    enc_ctrl(b, T_MAP, 9);
    enc_string(b, "binary_format_major_version");
    enc_uint(b, T_UINT16, 2);
    enc_string(b, "binary_format_minor_version");
    enc_uint(b, T_UINT16, 0);
    enc_string(b, "build_epoch");
    enc_uint(b, T_UINT64, w->build_epoch);
    enc_string(b, "database_type");
    enc_string(b, mmdbw_type(w));
    enc_string(b, "description");
    enc_ctrl(b, T_MAP, 1);
    enc_string(b, "en");
    enc_string(b, w->description);
    enc_string(b, "ip_version");
    enc_uint(b, T_UINT16, (uint64_t)w->ip_version);
    enc_string(b, "languages");
    enc_ctrl(b, T_ARRAY, 1);
    enc_string(b, "en");
    enc_string(b, "node_count");
    enc_uint(b, T_UINT32, node_count);
    enc_string(b, "record_size");
    enc_uint(b, T_UINT16, (uint64_t)record_size);
}

static void put_record_pair(bg_buf_t *b, int rs, uint32_t l, uint32_t r)
{
    uint8_t n[8];
    if (rs == 24) {
        n[0] = (uint8_t)(l >> 16), n[1] = (uint8_t)(l >> 8), n[2] = (uint8_t)l;
        n[3] = (uint8_t)(r >> 16), n[4] = (uint8_t)(r >> 8), n[5] = (uint8_t)r;
        bg_buf_append(b, n, 6);
    } else if (rs == 28) {
        n[0] = (uint8_t)(l >> 16), n[1] = (uint8_t)(l >> 8), n[2] = (uint8_t)l;
        n[3] = (uint8_t)((((l >> 24) & 0x0f) << 4) | ((r >> 24) & 0x0f));
        n[4] = (uint8_t)(r >> 16), n[5] = (uint8_t)(r >> 8), n[6] = (uint8_t)r;
        bg_buf_append(b, n, 7);
    } else {
        for (int i = 0; i < 4; i++) {
            n[i] = (uint8_t)(l >> (24 - 8 * i));
            n[4 + i] = (uint8_t)(r >> (24 - 8 * i));
        }
        bg_buf_append(b, n, 8);
    }
}

/** Build the tree from the networks added so far and write the database to path.
 *  0, or -1 with err set. The writer can take more networks and write again. */
static int mmdbw_write(mmdbw_t *w, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    bg_buf_t data, out;
    uint32_t *number = NULL, *queue = NULL;
    uint32_t *data_off = NULL;
    FILE *f = NULL;
    bg_buf_init(&data);
    bg_buf_init(&out);

    /* The tree, least specific first so that more specific networks overwrite. */
    w->nnodes = 0;
    node_new(w, REC_EMPTY, REC_EMPTY);
    qsort(w->nets, w->nnets, sizeof *w->nets, net_cmp);
    for (size_t i = 0; i < w->nnets; i++)
        tree_set(w, w->nets[i].a, w->nets[i].prefix, REC_DATA(w->nets[i].value));
    if (w->ip_version == 6 && w->alias) {
        static const uint8_t zero[16];
        static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
        uint32_t v4root = tree_get(w, zero, 96);
        /* A leaf at or above bit 80 already covers both ::/96 and ::ffff:0:0/96. */
        if (tree_get(w, zero, 80) != v4root || REC_KIND(v4root) == REC_NODE(0))
            tree_set(w, mapped, 96, v4root);
    }

    /* Data section: one record per distinct value. */
    data_off = calloc(w->nvals ? w->nvals : 1, sizeof *data_off);
    if (!data_off)
        abort();
    for (size_t j = 0; j < w->nvals; j++) {
        data_off[j] = (uint32_t)data.len;
        enc_value(w, &data, &w->vals[j]);
    }

    /* Number the reachable nodes breadth first (root = 0); a shared subtree (the alias) gets
     * one number, overwritten nodes none. */
    number = malloc(w->nnodes * sizeof *number);
    queue = malloc(w->nnodes * sizeof *queue);
    if (!number || !queue)
        abort();
    for (size_t i = 0; i < w->nnodes; i++)
        number[i] = UINT32_MAX;
    size_t qh = 0, qt = 0;
    number[0] = 0;
    queue[qt++] = 0;
    while (qh < qt) {
        uint32_t n = queue[qh++];
        for (int s = 0; s < 2; s++) {
            uint32_t r = w->nodes[n][s];
            if (REC_KIND(r) == REC_NODE(0) && number[REC_IDX(r)] == UINT32_MAX) {
                number[REC_IDX(r)] = (uint32_t)qt;
                queue[qt++] = REC_IDX(r);
            }
        }
    }
    uint32_t node_count = (uint32_t)qt;
    uint64_t maxrec = (uint64_t)node_count + 16 + data.len;
    int rs = w->record_size;
    if (rs == 0)
        rs = maxrec < (1ull << 24) ? 24 : maxrec < (1ull << 28) ? 28 : 32;
    if ((rs != 24 && rs != 28 && rs != 32) || (rs < 32 && maxrec >= (1ull << rs)) || maxrec > UINT32_MAX) {
        snprintf(err, errlen, "record size %d cannot address %llu", rs, (unsigned long long)maxrec);
        goto done;
    }
    for (size_t qi = 0; qi < qt; qi++) {
        uint32_t rec[2];
        for (int s = 0; s < 2; s++) {
            uint32_t r = w->nodes[queue[qi]][s];
            if (REC_KIND(r) == REC_NODE(0))
                rec[s] = number[REC_IDX(r)];
            else if (REC_KIND(r) == REC_DATA(0))
                rec[s] = node_count + 16 + data_off[REC_IDX(r)];
            else
                rec[s] = node_count; /* no data */
        }
        put_record_pair(&out, rs, rec[0], rec[1]);
    }
    static const uint8_t separator[16];
    bg_buf_append(&out, separator, sizeof separator);
    bg_buf_append(&out, data.data, data.len);
    enc_metadata(w, &out, node_count, rs);

    f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (fwrite(out.data, 1, out.len, f) != out.len || fflush(f) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (f && fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "%s: close failed: %s", path, strerror(errno));
        rc = -1;
    }
    free(number);
    free(queue);
    free(data_off);
    bg_buf_dispose(&data);
    bg_buf_dispose(&out);
    return rc;
}

#ifndef MKMMDB_NO_MAIN
static int usage(void)
{
    fprintf(stderr, "usage: mkmmdb OUT.mmdb [--schema maxmind|dbip] [--ip-version 4|6] [--type NAME]\n"
                    "              [--build-epoch N] [--record-size 24|28|32] [--description TEXT]\n"
                    "              [--no-alias] CIDR=VALUE ...\n"
                    "VALUE: CC | CC:RC (registered_country, maxmind) | :RC | \"\" (record without country)\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return usage();
    mmdbw_t *w = mmdbw_create();
    const char *outp = argv[1];
    char err[256];
    int i;
    /* Options first: they change how networks are parsed. */
    for (i = 2; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--no-alias") == 0) {
            w->alias = false;
            continue;
        }
        if (i + 1 >= argc) {
            mmdbw_destroy(w);
            return usage();
        }
        const char *v = argv[++i];
        if (strcmp(o, "--schema") == 0 && (strcmp(v, "maxmind") == 0 || strcmp(v, "dbip") == 0))
            w->schema = strcmp(v, "dbip") == 0 ? MMDBW_DBIP : MMDBW_MAXMIND;
        else if (strcmp(o, "--ip-version") == 0 && (strcmp(v, "4") == 0 || strcmp(v, "6") == 0))
            w->ip_version = atoi(v);
        else if (strcmp(o, "--type") == 0 && strlen(v) < sizeof w->type)
            snprintf(w->type, sizeof w->type, "%s", v);
        else if (strcmp(o, "--description") == 0 && strlen(v) < sizeof w->description)
            snprintf(w->description, sizeof w->description, "%s", v);
        else if (strcmp(o, "--build-epoch") == 0 && v[0] >= '0' && v[0] <= '9')
            w->build_epoch = strtoull(v, NULL, 10);
        else if (strcmp(o, "--record-size") == 0 &&
                 (strcmp(v, "24") == 0 || strcmp(v, "28") == 0 || strcmp(v, "32") == 0))
            w->record_size = atoi(v);
        else {
            fprintf(stderr, "mkmmdb: bad option %s %s\n", o, v);
            mmdbw_destroy(w);
            return usage();
        }
    }
    for (; i < argc; i++) {
        if (mmdbw_add_arg(w, argv[i], err, sizeof err) != 0) {
            fprintf(stderr, "mkmmdb: %s\n", err);
            mmdbw_destroy(w);
            return 1;
        }
    }
    int rc = mmdbw_write(w, outp, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "mkmmdb: %s\n", err);
    mmdbw_destroy(w);
    return rc == 0 ? 0 : 1;
}
#endif
