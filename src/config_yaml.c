/*
 * config_yaml.c — libyaml events into a bg_ynode_t tree (see config_yaml.h). An anchor is
 * registered when its node is complete, so an alias can never point at an ancestor (no
 * cycles); an alias shares the anchored node and charges its whole weight to the alias
 * budget, so the tree a validator walks is bounded by BG_YAML_MAX_ALIAS_NODES extra nodes.
 * Pure; any thread.
 */
#include "config_yaml.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_ANCHORS 1000

typedef struct {
    char *name;
    bg_ynode_t *node;
} anchor_t;

typedef struct {
    bg_ydoc_t *doc;
    const char *file;
    const char *data; /* the input, for positions the reader gives as offsets */
    size_t len;
    bg_diag_t *d;
    bg_ynode_t *stack[BG_YAML_MAX_DEPTH];
    int depth;
    anchor_t anchors[MAX_ANCHORS];
    char *pending[BG_YAML_MAX_DEPTH]; /* anchor names of the open collections */
    int nanchors;
    size_t alias_nodes;
} builder_t;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        abort();
    return q;
}

static bg_pos_t mark_pos(yaml_mark_t m)
{
    bg_pos_t p = {(int)(m.line + 1 > 0x7fffffff ? 0x7fffffff : m.line + 1),
                  (int)(m.column + 1 > 0x7fffffff ? 0x7fffffff : m.column + 1)};
    return p;
}

static bg_ynode_t *node_new(builder_t *b, bg_ynode_kind_t kind, yaml_mark_t m)
{
    bg_ydoc_t *doc = b->doc;
    if (doc->nall == doc->capall) {
        doc->capall = doc->capall ? doc->capall * 2 : 64;
        doc->all = xrealloc(doc->all, doc->capall * sizeof *doc->all);
    }
    bg_ynode_t *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->kind = kind;
    n->pos = mark_pos(m);
    n->weight = 1;
    doc->all[doc->nall++] = n;
    return n;
}

static void add_child(bg_ynode_t *parent, bg_ynode_t *child)
{
    if (parent->n == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 8;
        parent->items = xrealloc(parent->items, parent->cap * sizeof *parent->items);
    }
    parent->items[parent->n++] = child;
    parent->weight += child->weight;
    if (parent->weight > BG_YAML_MAX_NODES * 4u)
        parent->weight = BG_YAML_MAX_NODES * 4u; /* saturate: budgets reject long before */
}

/* Attach a finished node to the open collection (or make it the root). */
static void attach(builder_t *b, bg_ynode_t *n)
{
    if (b->depth > 0)
        add_child(b->stack[b->depth - 1], n);
    else if (!b->doc->root)
        b->doc->root = n;
}

static int register_anchor(builder_t *b, const char *name, bg_ynode_t *n, yaml_mark_t m)
{
    if (!name)
        return 0;
    /* A redefined anchor shadows the earlier one (YAML 1.2 §3.2.2.2). */
    for (int i = b->nanchors - 1; i >= 0; i--)
        if (strcmp(b->anchors[i].name, name) == 0) {
            b->anchors[i].node = n;
            return 0;
        }
    if (b->nanchors == MAX_ANCHORS) {
        bg_pos_t p = mark_pos(m);
        bg_diag_error(b->d, b->file, p, "too many YAML anchors (more than %d)", MAX_ANCHORS);
        return -1;
    }
    char *copy = strdup(name);
    if (!copy)
        abort();
    b->anchors[b->nanchors].name = copy;
    b->anchors[b->nanchors].node = n;
    b->nanchors++;
    return 0;
}

static bool is_null_scalar(const char *s, size_t len)
{
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

#define YAML_CORE_PREFIX "tag:yaml.org,2002:"

/* A tag a node may carry: none, the non-specific "!", !!str on a scalar, or !!map / !!seq on
 * their own kinds. Any other tag asks for a meaning bordergate would not give the value (an
 * `!env NAME` would be read as the text NAME): an error at the node, parsing goes on. */
static bool tag_ok(builder_t *b, const yaml_char_t *utag, yaml_event_type_t type, yaml_mark_t m)
{
    const char *tag = (const char *)utag;
    if (!tag || strcmp(tag, "!") == 0)
        return true;
    const char *core = strncmp(tag, YAML_CORE_PREFIX, sizeof YAML_CORE_PREFIX - 1) == 0
                           ? tag + sizeof YAML_CORE_PREFIX - 1
                           : NULL;
    bool scalar = type == YAML_SCALAR_EVENT;
    if (core && ((scalar && strcmp(core, "str") == 0) ||
                 (type == YAML_MAPPING_START_EVENT && strcmp(core, "map") == 0) ||
                 (type == YAML_SEQUENCE_START_EVENT && strcmp(core, "seq") == 0)))
        return true;
    /* As written: !!x for the core schema, !x for a local tag, !<...> for a verbatim one; printable
     * ASCII only, bounded. */
    char shown[80];
    size_t n = 0;
    const char *src = core ? core : tag[0] == '!' ? tag + 1 : tag;
    const char *pre = core ? "!!" : tag[0] == '!' ? "!" : "!<";
    for (; *src && n < 60; src++)
        shown[n++] = (unsigned char)*src >= 0x20 && (unsigned char)*src < 0x7f ? *src : '?';
    shown[n] = 0;
    bool verbatim = !core && tag[0] != '!';
    bg_diag_error(b->d, b->file, mark_pos(m),
                  "YAML tag '%s%s%s%s' is not supported%s: bordergate reads every value as written and would "
                  "ignore it (only !!str may be used, on a value)",
                  pre, shown, *src ? "..." : "", verbatim ? ">" : "", scalar ? "" : " on a list or mapping");
    return false;
}

/* Line and column (in characters, as libyaml counts them) of byte `off` of the input. */
static bg_pos_t offset_pos(const char *data, size_t len, size_t off)
{
    bg_pos_t p = {1, 1};
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\n' || (ch == '\r' && (i + 1 >= len || data[i + 1] != '\n'))) {
            if (p.line < 0x7fffffff)
                p.line++;
            p.col = 1;
        } else if ((ch & 0xc0) != 0x80 && p.col < 0x7fffffff) {
            p.col++; /* continuation bytes belong to the character before */
        }
    }
    return p;
}

static void syntax_error(builder_t *b, yaml_parser_t *p)
{
    bg_pos_t pos = mark_pos(p->problem_mark);
    const char *problem = p->problem ? p->problem : "unreadable input";
    if (p->error == YAML_MEMORY_ERROR)
        problem = "out of memory";
    if (p->error == YAML_READER_ERROR) {
        /* The reader (bad UTF-8, control characters) leaves problem_mark unset and gives the
         * byte offset instead: without this every such error read "1:1". */
        size_t off = p->problem_offset < b->len ? p->problem_offset : b->len;
        if (strstr(problem, "trailing") || strstr(problem, "incomplete")) {
            /* libyaml points past the lead byte, at the one that broke the sequence (often the
             * line end after a Latin-1 letter): show the sequence's first byte instead. */
            size_t i = off;
            while (i > 0 && off - i < 4 && ((unsigned char)b->data[i - 1] & 0xc0) == 0x80)
                i--;
            if (i > 0 && ((unsigned char)b->data[i - 1] & 0xc0) == 0xc0) {
                bg_diag_error(b->d, b->file, offset_pos(b->data, b->len, i - 1),
                              "YAML syntax error: invalid UTF-8 sequence starting with byte 0x%02x",
                              (unsigned char)b->data[i - 1]);
                return;
            }
        }
        pos = offset_pos(b->data, b->len, off);
        if (p->problem_value >= 0)
            bg_diag_error(b->d, b->file, pos, "YAML syntax error: %s (byte 0x%02x)", problem,
                          (unsigned)p->problem_value & 0xffffffu);
        else
            bg_diag_error(b->d, b->file, pos, "YAML syntax error: %s", problem);
        return;
    }
    if (p->context) {
        bg_pos_t cpos = mark_pos(p->context_mark);
        bg_diag_error(b->d, b->file, pos, "YAML syntax error: %s (%s at %d:%d)", problem, p->context,
                      cpos.line, cpos.col);
    } else {
        bg_diag_error(b->d, b->file, pos, "YAML syntax error: %s", problem);
    }
}

int bg_ydoc_parse(bg_ydoc_t *doc, const char *file, const char *data, size_t len, bg_diag_t *d)
{
    memset(doc, 0, sizeof *doc);
    yaml_parser_t parser;
    builder_t *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    b->doc = doc;
    b->file = file;
    b->data = data;
    b->len = len;
    b->d = d;
    int rc = -1, docs = 0, tag_errors = 0;
    if (!yaml_parser_initialize(&parser))
        abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(b, &parser);
            goto fail;
        }
        yaml_event_type_t type = ev.type;
        int bad = 0;
        switch (type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                bg_diag_error(d, file, mark_pos(ev.start_mark),
                              "only one YAML document is allowed (found a second '---')");
                bad = 1;
            }
            break;
        case YAML_SCALAR_EVENT: {
            bg_ynode_t *n = node_new(b, BG_YNODE_SCALAR, ev.start_mark);
            n->len = ev.data.scalar.length;
            n->str = malloc(n->len + 1);
            if (!n->str)
                abort();
            memcpy(n->str, ev.data.scalar.value, n->len);
            n->str[n->len] = 0;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            /* !!str makes "null" and "~" the text, as quotes would. */
            n->null = n->plain && !ev.data.scalar.tag && is_null_scalar(n->str, n->len);
            if (!tag_ok(b, ev.data.scalar.tag, type, ev.start_mark))
                tag_errors++;
            if (doc->nall > BG_YAML_MAX_NODES) {
                bg_diag_error(d, file, n->pos, "document too large (more than %d nodes)", BG_YAML_MAX_NODES);
                bad = 1;
            } else if (register_anchor(b, (const char *)ev.data.scalar.anchor, n, ev.start_mark) != 0) {
                bad = 1;
            } else {
                attach(b, n);
            }
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (b->depth == BG_YAML_MAX_DEPTH) {
                bg_diag_error(d, file, mark_pos(ev.start_mark), "nesting deeper than %d levels",
                              BG_YAML_MAX_DEPTH);
                bad = 1;
                break;
            }
            if (doc->nall >= BG_YAML_MAX_NODES) {
                bg_diag_error(d, file, mark_pos(ev.start_mark), "document too large (more than %d nodes)",
                              BG_YAML_MAX_NODES);
                bad = 1;
                break;
            }
            if (!tag_ok(b, type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.tag : ev.data.mapping_start.tag,
                        type, ev.start_mark))
                tag_errors++;
            bg_ynode_t *n = node_new(b, type == YAML_SEQUENCE_START_EVENT ? BG_YNODE_SEQ : BG_YNODE_MAP,
                                     ev.start_mark);
            const yaml_char_t *anchor = type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                                          : ev.data.mapping_start.anchor;
            b->pending[b->depth] = anchor ? strdup((const char *)anchor) : NULL;
            b->stack[b->depth++] = n;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            /* libyaml balances start/end events, so depth > 0 here. */
            bg_ynode_t *n = b->stack[--b->depth];
            char *anchor = b->pending[b->depth];
            b->pending[b->depth] = NULL;
            if (register_anchor(b, anchor, n, ev.start_mark) != 0)
                bad = 1;
            free(anchor);
            if (!bad)
                attach(b, n);
            break;
        }
        case YAML_ALIAS_EVENT: {
            const char *name = (const char *)ev.data.alias.anchor;
            bg_ynode_t *target = NULL;
            for (int i = b->nanchors - 1; i >= 0 && !target; i--)
                if (strcmp(b->anchors[i].name, name) == 0)
                    target = b->anchors[i].node;
            if (!target) {
                bg_diag_error(d, file, mark_pos(ev.start_mark),
                              "alias '*%.64s' refers to no earlier complete anchor", name);
                bad = 1;
                break;
            }
            b->alias_nodes += target->weight;
            if (b->alias_nodes > BG_YAML_MAX_ALIAS_NODES) {
                bg_diag_error(d, file, mark_pos(ev.start_mark),
                              "aliases expand to more than %d nodes (alias bomb?)", BG_YAML_MAX_ALIAS_NODES);
                bad = 1;
                break;
            }
            attach(b, target);
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (bad)
            goto fail;
        if (type == YAML_STREAM_END_EVENT)
            break;
    }
    rc = tag_errors ? -1 : 0;
fail:
    for (int i = 0; i < b->depth; i++)
        free(b->pending[i]);
    for (int i = 0; i < b->nanchors; i++)
        free(b->anchors[i].name);
    free(b);
    yaml_parser_delete(&parser);
    return rc;
}

void bg_ydoc_dispose(bg_ydoc_t *doc)
{
    for (size_t i = 0; i < doc->nall; i++) {
        free(doc->all[i]->str);
        free(doc->all[i]->items);
        free(doc->all[i]);
    }
    free(doc->all);
    memset(doc, 0, sizeof *doc);
}
