/*
 * types.h — the vocabulary every bordergate module shares: data categories, decisions,
 * legal mechanisms, destination kinds and a header view. Plain enums and structs, no code.
 * Owned by no single module so that classify, policy, records and metrics agree on names.
 */
#ifndef BG_TYPES_H
#define BG_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Data categories (DESIGN.md). Sets of them are uint32_t bitmasks: 1u << BG_CAT_x. */
typedef enum {
    BG_CAT_IDENTIFIER = 0,
    BG_CAT_DEVICE,
    BG_CAT_LOCATION,
    BG_CAT_USAGE,
    BG_CAT_CONTENT,
    BG_CAT_CREDENTIAL,
    BG_CAT_AI_INTERACTION,
    BG_CAT_FINANCIAL,
    BG_CAT_CHILD,
    BG_CAT__COUNT
} bg_category_t;

/** The category's config/record name ("identifier"...), or NULL when out of range. */
const char *bg_category_name(int cat);
/** The category for a name (case-sensitive), or -1. */
int bg_category_parse(const char *name, size_t len);

typedef enum { BG_DECISION_ALLOW = 0, BG_DECISION_BLOCK, BG_DECISION_ENCRYPT, BG_DECISION__COUNT } bg_decision_kind_t;
/** "allow" | "block" | "encrypt". */
const char *bg_decision_name(int d);

typedef enum {
    BG_MECH_NONE = 0,
    BG_MECH_DOMESTIC,
    BG_MECH_ADEQUACY,
    BG_MECH_DPF,
    BG_MECH_SCC,
    BG_MECH_BCR,
    BG_MECH__COUNT
} bg_mechanism_t;
/** "none" | "domestic" | "adequacy" | "dpf" | "scc" | "bcr". */
const char *bg_mechanism_name(int m);

/* Where a destination country sits relative to the jurisdiction. */
typedef enum {
    BG_DEST_DOMESTIC = 0, /* inside the jurisdiction's region */
    BG_DEST_ADEQUATE,     /* a country with an EU adequacy decision (see scope) */
    BG_DEST_THIRD,        /* any other known country */
    BG_DEST_UNKNOWN       /* no country: treated as a third country with no adequacy */
} bg_dest_kind_t;

typedef enum {
    BG_SCOPE_FULL = 0,   /* adequacy without restriction */
    BG_SCOPE_COMMERCIAL, /* only for commercial organisations (CA) */
    BG_SCOPE_DPF         /* only for organisations certified under the EU-US DPF (US) */
} bg_adequacy_scope_t;

/* A view of one header field inside a caller's buffer (never owns the bytes). */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} bg_header_t;

#endif
