/*
 * config_yaml.h — private to the config module: libyaml events turned into a small tree of
 * mappings, lists and scalars, each with its line and column, so validation can walk it and
 * point at every problem. Bounded: nesting depth, alias expansion and total nodes are capped,
 * so no input (binary garbage, alias bombs, deep nesting) can exhaust memory or the stack.
 * Pure (no globals); any thread, one tree per caller.
 */
#ifndef BG_CONFIG_YAML_H
#define BG_CONFIG_YAML_H

#include "config.h"

#define BG_YAML_MAX_DEPTH 64        /* nested collections */
#define BG_YAML_MAX_ALIAS_NODES 10000 /* nodes all aliases together may bring in */
#define BG_YAML_MAX_NODES 1000000   /* nodes in one document */

typedef enum { BG_YNODE_SCALAR = 0, BG_YNODE_MAP, BG_YNODE_SEQ } bg_ynode_kind_t;

typedef struct bg_ynode bg_ynode_t;
struct bg_ynode {
    bg_ynode_kind_t kind;
    bg_pos_t pos;
    char *str;          /* scalar: the bytes, NUL-terminated (may contain NULs: see len) */
    size_t len;         /* scalar length */
    bool plain;         /* scalar written without quotes */
    bool null;          /* plain empty, "~" or "null" */
    bg_ynode_t **items; /* seq: the items; map: key, value, key, value... */
    size_t n;           /* entries in items (twice the pairs for a map) */
    size_t cap;
    size_t weight;      /* nodes in this subtree, aliases expanded (saturating) */
};

typedef struct {
    bg_ynode_t *root; /* NULL when the document is empty */
    bg_ynode_t **all; /* every node allocated, for dispose (aliases share nodes) */
    size_t nall, capall;
} bg_ydoc_t;

/** Parse data[0..len) into doc. Returns 0, or -1 after adding a "FILE:LINE:COL: message" error
 *  to d (syntax error, depth, alias budget, several documents, a tag other than !!str). doc must be
 *  disposed either way. */
int bg_ydoc_parse(bg_ydoc_t *doc, const char *file, const char *data, size_t len, bg_diag_t *d);
/** Free every node of doc. */
void bg_ydoc_dispose(bg_ydoc_t *doc);

#endif
