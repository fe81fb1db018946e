/*
 * policy.h — the transfer decision (issue 6): given the config snapshot, the vendor, what the
 * classifier found and where the destination is, decide allow / block / encrypt, with the legal
 * mechanism, a machine reason code and the trail of rules that fired (for `explain`).
 * Pure: no clock (now is passed in), no I/O, no globals, no allocation; any thread.
 * Never puts a personal-data value anywhere: reasons and trail hold codes, names and dates only.
 */
#ifndef BG_POLICY_H
#define BG_POLICY_H

#include "config.h"
#include "types.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *country;          /* "" or NULL = unknown */
    bg_dest_kind_t dest_kind;     /* from the config's regions (caller computes) */
    bg_adequacy_scope_t scope;    /* when ADEQUATE */
    bool region_covered;          /* the country is inside the vendor's declared regions (caller computes) */
    uint32_t categories;          /* found (bitmask 1u << bg_category_t) */
    bool unscannable;             /* body could not be classified (too large, malformed...) */
    const char *unscannable_reason; /* e.g. "too_large", "malformed_json" */
    const char *error;            /* non-NULL: something failed before the decision (e.g. "lookup_failed",
                                     "records_unavailable"): block with this reason */
    bool no_trail;                /* skip writing trail[] (the data plane; `explain` wants it) */
} bg_policy_input_t;

#define BG_POLICY_TRAIL_MAX 12
#define BG_POLICY_TRAIL_LEN 112

typedef struct {
    bg_decision_kind_t decision;  /* the decision the rules reached */
    bg_decision_kind_t action;    /* what the gateway does: == decision under enforce; ALLOW under report-only */
    bool enforced;                /* false under mode: report-only */
    bg_mechanism_t mechanism;     /* the basis that allowed it, or the basis that did not cover the
                                     categories (category_not_approved); NONE otherwise */
    char reason[96];              /* machine code: "no_personal_data", "domestic", "adequacy", "dpf", "scc",
                                     "bcr", "region_mismatch", "category_not_approved: device,usage",
                                     "no_transfer_basis", "scc_expired", "scc_not_yet_signed",
                                     "scc_module_role_mismatch", "dpf_lapsed", "adequacy_scope_commercial",
                                     "adequacy_expired", "adequacy_not_in_force",
                                     "unscannable_body: malformed_json", or the input error */
    int scc_module;               /* when mechanism == SCC, else 0 */
    const char *scc_reference;    /* when mechanism == SCC: points into the vendor (config snapshot), else NULL */
    uint32_t seal_categories;     /* decision ENCRYPT: the categories whose values must be sealed (the
                                     unapproved ones, or every one found when there is no basis). With
                                     input.unscannable the body cannot be rewritten field by field: seal it
                                     whole (JWE). */
    char trail[BG_POLICY_TRAIL_MAX][BG_POLICY_TRAIL_LEN]; /* the rules that fired, in order, for `explain` */
    int ntrail;
    bool no_trail;                /* copied from the input */
} bg_decision_t;

/** Decide what to do with one request (rules of issue 6, see policy.c for the order). cfg, v and in
 *  are read only; out is overwritten entirely (no allocation; scc_reference borrows from v, so it
 *  lives as long as the config snapshot). NULL cfg or v blocks with "no_config" / "no_vendor". */
void bg_policy_decide(const bg_config_t *cfg, const bg_vendor_t *v, const bg_policy_input_t *in,
                      int64_t now_s, bg_decision_t *out);

/** The SCC module (1..4) an importer with this role must have signed, as a pair: module 1
 *  (controller→controller) and 4 (processor→controller) need a controller, 2 (controller→processor)
 *  and 3 (processor→processor) a processor. Returns true when module and role agree. */
bool bg_policy_scc_module_fits(int module, bg_role_t role);

/** Write the comma-separated names of the categories in mask into out[cap] (bits outside the known
 *  categories are written as "unknown"); truncated lists end in ",+N". Returns out. */
char *bg_policy_categories_str(uint32_t mask, char *out, size_t cap);

#endif
