/*
 * tests/unit/policy.c — bg_policy_decide over the matrix of issue 6. Each row is written from the
 * rules (expected decision, action, mechanism, reason), not from the code's output. Vendors and the
 * config are filled by hand: config.c is not linked. Single-threaded.
 */
#include "policy.h"
#include "test.h"
#include "util.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#define ID (1u << BG_CAT_IDENTIFIER)
#define DEV (1u << BG_CAT_DEVICE)
#define LOC (1u << BG_CAT_LOCATION)
#define USE (1u << BG_CAT_USAGE)
#define CON (1u << BG_CAT_CONTENT)
#define CRED (1u << BG_CAT_CREDENTIAL)
#define AI (1u << BG_CAT_AI_INTERACTION)
#define FIN (1u << BG_CAT_FINANCIAL)
#define CHILD (1u << BG_CAT_CHILD)
#define APPROVED (ID | DEV | USE)

#define ALLOW BG_DECISION_ALLOW
#define BLOCK BG_DECISION_BLOCK
#define ENCRYPT BG_DECISION_ENCRYPT

static int64_t day(int y, unsigned m, unsigned d) { return bg_days_from_civil(y, m, d) * 86400; }

/* The vendor's basis, as the config would hold it. */
typedef enum {
    B_NONE,
    B_SCC,          /* module 2, processor, 2024-03-01..2027-03-01 */
    B_SCC_EXPIRED,  /* 2023-01-01..2026-03-01 */
    B_SCC_FUTURE,   /* signed 2027-01-01 */
    B_SCC_MISMATCH, /* module 1 (C2C) but the vendor is a processor */
    B_SCC_M1_CTRL,  /* module 1, controller: fits */
    B_SCC_M4_CTRL,  /* module 4, controller: fits */
    B_SCC_M3_PROC,  /* module 3, processor: fits */
    B_SCC_M4_PROC,  /* module 4 but processor: mismatch */
    B_SCC_M3_CTRL,  /* module 3 but controller: mismatch */
    B_DPF,          /* certified until 2027-10-01 */
    B_DPF_LAPSED,   /* certified, expired 2026-10-01 */
    B_DPF_UNCERT,   /* dpf: {certified: false} */
    B_BCR,
    B_SCC_EXPIRED_BCR,  /* expired SCC, but BCR */
    B_DPF_LAPSED_SCC,   /* lapsed DPF, valid SCC */
    B_DPF_LAPSED_SCC_X, /* lapsed DPF, expired SCC */
} basis_t;

enum { SC_NONE = 0, SC_BLOCK = 1, SC_PERSONAL = 2 }; /* unscannable body under oversize_body */

typedef struct {
    const char *name;
    uint32_t cats;
    const char *country;
    bg_dest_kind_t kind;
    bg_adequacy_scope_t scope;
    bool covered;
    basis_t basis;
    uint32_t approved;
    bool public_body;
    bool encrypt;  /* on_violation: encrypt */
    bool report;   /* mode: report-only */
    int unscannable;
    const char *error;
    bg_decision_kind_t decision, action;
    bg_mechanism_t mech;
    const char *reason;
} row_t;

#define D BG_DEST_DOMESTIC
#define A BG_DEST_ADEQUATE
#define T BG_DEST_THIRD
#define U BG_DEST_UNKNOWN
#define FULL BG_SCOPE_FULL
#define COMM BG_SCOPE_COMMERCIAL
#define DPF BG_SCOPE_DPF
#define M_NONE BG_MECH_NONE
#define M_DOM BG_MECH_DOMESTIC
#define M_ADQ BG_MECH_ADEQUACY
#define M_DPF BG_MECH_DPF
#define M_SCC BG_MECH_SCC
#define M_BCR BG_MECH_BCR

/* name, cats, country, kind, scope, covered, basis, approved, public_body, encrypt, report, unscannable, error,
 * decision, action, mechanism, reason */
static const row_t rows[] = {
    /* no personal data: allowed wherever the vendor may be, with or without a basis */
    {"none/domestic", 0, "DE", D, FULL, true, B_NONE, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_NONE, "no_personal_data"},
    {"none/adequate", 0, "JP", A, FULL, true, B_NONE, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_NONE, "no_personal_data"},
    {"none/dpf-uncert", 0, "US", A, DPF, true, B_DPF_UNCERT, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_NONE, "no_personal_data"},
    {"none/third-nobasis", 0, "IN", T, FULL, true, B_NONE, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_NONE, "no_personal_data"},
    {"none/third-expired", 0, "IN", T, FULL, true, B_SCC_EXPIRED, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_NONE, "no_personal_data"},
    {"none/region-mismatch", 0, "CN", T, FULL, false, B_SCC, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},
    {"none/unknown-country", 0, "", U, FULL, false, B_SCC, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},
    {"none/null-country-covered", 0, NULL, U, FULL, true, B_SCC, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},

    /* domestic */
    {"pd/domestic", ID, "DE", D, FULL, true, B_NONE, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_DOM, "domestic"},
    {"pd/domestic-unapproved-cat", FIN | CHILD, "FR", D, FULL, true, B_NONE, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_DOM, "domestic"},
    {"pd/domestic-outermost", ID, "RE", D, FULL, true, B_NONE, APPROVED, 0, 1, 0, 0, NULL, ALLOW, ALLOW, M_DOM, "domestic"},
    {"pd/domestic-mismatch", ID, "DE", D, FULL, false, B_NONE, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},
    {"pd/domestic-mismatch-encrypt", ID, "DE", D, FULL, false, B_NONE, APPROVED, 0, 1, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},

    /* adequacy, full scope */
    {"pd/adequate-full", ID | FIN, "JP", A, FULL, true, B_NONE, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_ADQ, "adequacy"},
    {"pd/adequate-full-public", ID, "CH", A, FULL, true, B_NONE, APPROVED, 1, 0, 0, 0, NULL, ALLOW, ALLOW, M_ADQ, "adequacy"},
    {"pd/adequate-full-expired-scc", ID, "JP", A, FULL, true, B_SCC_EXPIRED, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_ADQ, "adequacy"},
    {"pd/adequate-mismatch", ID, "JP", A, FULL, false, B_SCC, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},

    /* adequacy, commercial scope (CA) */
    {"pd/ca-commercial", ID, "CA", A, COMM, true, B_NONE, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_ADQ, "adequacy"},
    {"pd/ca-public-nobasis", ID, "CA", A, COMM, true, B_NONE, APPROVED, 1, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "adequacy_scope_commercial"},
    {"pd/ca-public-encrypt", ID, "CA", A, COMM, true, B_NONE, APPROVED, 1, 1, 0, 0, NULL, ENCRYPT, ENCRYPT, M_NONE, "adequacy_scope_commercial"},
    {"pd/ca-public-scc", ID, "CA", A, COMM, true, B_SCC, APPROVED, 1, 0, 0, 0, NULL, ALLOW, ALLOW, M_SCC, "scc"},
    {"pd/ca-public-scc-expired", ID, "CA", A, COMM, true, B_SCC_EXPIRED, APPROVED, 1, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "scc_expired"},
    {"pd/ca-public-bcr-unapproved", ID | LOC, "CA", A, COMM, true, B_BCR, APPROVED, 1, 0, 0, 0, NULL, BLOCK, BLOCK, M_BCR, "category_not_approved: location"},

    /* adequacy for DPF-certified organisations (US) */
    {"pd/us-dpf", ID | FIN, "US", A, DPF, true, B_DPF, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_DPF, "dpf"},
    {"pd/us-dpf-lapsed", ID, "US", A, DPF, true, B_DPF_LAPSED, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "dpf_lapsed"},
    {"pd/us-dpf-lapsed-encrypt", ID, "US", A, DPF, true, B_DPF_LAPSED, APPROVED, 0, 1, 0, 0, NULL, ENCRYPT, ENCRYPT, M_NONE, "dpf_lapsed"},
    {"pd/us-dpf-uncert", ID, "US", A, DPF, true, B_DPF_UNCERT, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "no_transfer_basis"},
    {"pd/us-nodpf", ID, "US", A, DPF, true, B_NONE, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "no_transfer_basis"},
    {"pd/us-nodpf-scc", ID | DEV, "US", A, DPF, true, B_SCC, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_SCC, "scc"},
    {"pd/us-lapsed-scc", ID, "US", A, DPF, true, B_DPF_LAPSED_SCC, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_SCC, "scc"},
    {"pd/us-lapsed-scc-expired", ID, "US", A, DPF, true, B_DPF_LAPSED_SCC_X, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "scc_expired"},
    {"pd/us-nodpf-scc-unapproved", ID | AI, "US", A, DPF, true, B_SCC, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_SCC, "category_not_approved: ai_interaction"},
    {"pd/us-dpf-mismatch", ID, "US", A, DPF, false, B_DPF, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},
    {"pd/us-bcr", ID, "US", A, DPF, true, B_BCR, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_BCR, "bcr"},

    /* third country × basis */
    {"pd/third-nobasis", ID, "IN", T, FULL, true, B_NONE, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "no_transfer_basis"},
    {"pd/third-nobasis-encrypt", ID, "IN", T, FULL, true, B_NONE, APPROVED, 0, 1, 0, 0, NULL, ENCRYPT, ENCRYPT, M_NONE, "no_transfer_basis"},
    {"pd/third-scc", ID | DEV | USE, "IN", T, FULL, true, B_SCC, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_SCC, "scc"},
    {"pd/third-scc-unapproved", ID | DEV, "IN", T, FULL, true, B_SCC, ID, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_SCC, "category_not_approved: device"},
    {"pd/third-scc-unapproved-2", ID | DEV | USE | FIN, "IN", T, FULL, true, B_SCC, ID, 0, 1, 0, 0, NULL, ENCRYPT, ENCRYPT, M_SCC, "category_not_approved: device,usage,financial"},
    {"pd/third-scc-none-approved", CHILD, "IN", T, FULL, true, B_SCC, 0, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_SCC, "category_not_approved: child"},
    {"pd/third-scc-expired", ID, "IN", T, FULL, true, B_SCC_EXPIRED, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "scc_expired"},
    {"pd/third-scc-expired-encrypt", ID, "IN", T, FULL, true, B_SCC_EXPIRED, APPROVED, 0, 1, 0, 0, NULL, ENCRYPT, ENCRYPT, M_NONE, "scc_expired"},
    {"pd/third-scc-future", ID, "IN", T, FULL, true, B_SCC_FUTURE, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "scc_not_yet_signed"},
    {"pd/third-scc-future-encrypt", ID, "IN", T, FULL, true, B_SCC_FUTURE, APPROVED, 0, 1, 0, 0, NULL, ENCRYPT, ENCRYPT, M_NONE, "scc_not_yet_signed"},
    {"pd/third-scc-mismatch", ID, "IN", T, FULL, true, B_SCC_MISMATCH, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "scc_module_role_mismatch"},
    {"pd/third-scc-m1-controller", ID, "IN", T, FULL, true, B_SCC_M1_CTRL, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_SCC, "scc"},
    {"pd/third-scc-m4-controller", ID, "IN", T, FULL, true, B_SCC_M4_CTRL, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_SCC, "scc"},
    {"pd/third-scc-m3-processor", ID, "IN", T, FULL, true, B_SCC_M3_PROC, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_SCC, "scc"},
    {"pd/third-scc-m4-processor", ID, "IN", T, FULL, true, B_SCC_M4_PROC, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "scc_module_role_mismatch"},
    {"pd/third-scc-m3-controller", ID, "IN", T, FULL, true, B_SCC_M3_CTRL, APPROVED, 0, 1, 0, 0, NULL, ENCRYPT, ENCRYPT, M_NONE, "scc_module_role_mismatch"},
    {"pd/third-bcr", ID | USE, "BR", T, FULL, true, B_BCR, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_BCR, "bcr"},
    {"pd/third-bcr-unapproved", ID | CRED, "BR", T, FULL, true, B_BCR, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_BCR, "category_not_approved: credential"},
    {"pd/third-expired-scc-bcr", ID, "BR", T, FULL, true, B_SCC_EXPIRED_BCR, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_BCR, "bcr"},
    {"pd/third-dpf-not-us", ID, "IN", T, FULL, true, B_DPF, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "no_transfer_basis"},
    {"pd/third-mismatch", ID, "CN", T, FULL, false, B_SCC, APPROVED, 0, 1, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},
    {"pd/third-mismatch-bcr", ID, "RU", T, FULL, false, B_BCR, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},

    /* unknown destination: region_mismatch (fail closed), whatever the basis */
    {"pd/unknown", ID, "", U, FULL, false, B_SCC, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},
    {"pd/unknown-encrypt", ID, NULL, U, FULL, false, B_BCR, APPROVED, 0, 1, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},
    {"pd/unknown-report", ID, "", U, FULL, false, B_SCC, APPROVED, 0, 0, 1, 0, NULL, BLOCK, ALLOW, M_NONE, "region_mismatch"},
    /* a known country the regions file does not classify is a third country with no adequacy */
    {"pd/unknown-kind-scc", ID, "XK", U, FULL, true, B_SCC, APPROVED, 0, 0, 0, 0, NULL, ALLOW, ALLOW, M_SCC, "scc"},
    {"pd/unknown-kind-nobasis", ID, "XK", U, FULL, true, B_DPF, APPROVED, 0, 0, 0, 0, NULL, BLOCK, BLOCK, M_NONE, "no_transfer_basis"},

    /* report-only: the decision is computed, the action is always allow */
    {"report/third-nobasis", ID, "IN", T, FULL, true, B_NONE, APPROVED, 0, 0, 1, 0, NULL, BLOCK, ALLOW, M_NONE, "no_transfer_basis"},
    {"report/third-encrypt", ID, "IN", T, FULL, true, B_NONE, APPROVED, 0, 1, 1, 0, NULL, ENCRYPT, ALLOW, M_NONE, "no_transfer_basis"},
    {"report/third-scc", ID, "IN", T, FULL, true, B_SCC, APPROVED, 0, 0, 1, 0, NULL, ALLOW, ALLOW, M_SCC, "scc"},
    {"report/unapproved", FIN, "IN", T, FULL, true, B_SCC, APPROVED, 0, 0, 1, 0, NULL, BLOCK, ALLOW, M_SCC, "category_not_approved: financial"},
    {"report/mismatch", ID, "CN", T, FULL, false, B_SCC, APPROVED, 0, 1, 1, 0, NULL, BLOCK, ALLOW, M_NONE, "region_mismatch"},
    {"report/domestic", ID, "DE", D, FULL, true, B_NONE, APPROVED, 0, 0, 1, 0, NULL, ALLOW, ALLOW, M_DOM, "domestic"},
    {"report/dpf-lapsed", ID, "US", A, DPF, true, B_DPF_LAPSED, APPROVED, 0, 0, 1, 0, NULL, BLOCK, ALLOW, M_NONE, "dpf_lapsed"},
    {"report/error", ID, "US", A, DPF, true, B_DPF, APPROVED, 0, 0, 1, 0, "lookup_failed", BLOCK, ALLOW, M_NONE, "lookup_failed"},

    /* errors: always block (never encrypt), before the region check */
    {"error/lookup", ID, "", U, FULL, false, B_SCC, APPROVED, 0, 1, 0, 0, "lookup_failed", BLOCK, BLOCK, M_NONE, "lookup_failed"},
    {"error/records", 0, "DE", D, FULL, true, B_NONE, APPROVED, 0, 0, 0, 0, "records_unavailable", BLOCK, BLOCK, M_NONE, "records_unavailable"},
    {"error/classify-domestic", ID, "DE", D, FULL, true, B_NONE, APPROVED, 0, 1, 0, 0, "classification_failed", BLOCK, BLOCK, M_NONE, "classification_failed"},

    /* unscannable body, oversize_body: block */
    {"unscan-block/domestic", 0, "DE", D, FULL, true, B_NONE, APPROVED, 0, 0, 0, SC_BLOCK, NULL, BLOCK, BLOCK, M_NONE, "unscannable_body: malformed_json"},
    {"unscan-block/third-scc-encrypt", ID, "IN", T, FULL, true, B_SCC, APPROVED, 0, 1, 0, SC_BLOCK, NULL, BLOCK, BLOCK, M_NONE, "unscannable_body: malformed_json"},
    {"unscan-block/mismatch", 0, "CN", T, FULL, false, B_SCC, APPROVED, 0, 0, 0, SC_BLOCK, NULL, BLOCK, BLOCK, M_NONE, "region_mismatch"},
    {"unscan-block/report", 0, "IN", T, FULL, true, B_SCC, APPROVED, 0, 0, 1, SC_BLOCK, NULL, BLOCK, ALLOW, M_NONE, "unscannable_body: malformed_json"},

    /* unscannable body, oversize_body: personal: personal data of unknown category */
    {"unscan-personal/domestic", 0, "DE", D, FULL, true, B_NONE, APPROVED, 0, 0, 0, SC_PERSONAL, NULL, ALLOW, ALLOW, M_DOM, "domestic"},
    {"unscan-personal/adequate", 0, "JP", A, FULL, true, B_NONE, APPROVED, 0, 0, 0, SC_PERSONAL, NULL, ALLOW, ALLOW, M_ADQ, "adequacy"},
    {"unscan-personal/us-dpf", 0, "US", A, DPF, true, B_DPF, APPROVED, 0, 0, 0, SC_PERSONAL, NULL, ALLOW, ALLOW, M_DPF, "dpf"},
    {"unscan-personal/third-scc", 0, "IN", T, FULL, true, B_SCC, APPROVED, 0, 0, 0, SC_PERSONAL, NULL, BLOCK, BLOCK, M_SCC, "unscannable_body: malformed_json"},
    {"unscan-personal/third-scc-encrypt", ID, "IN", T, FULL, true, B_SCC, APPROVED, 0, 1, 0, SC_PERSONAL, NULL, ENCRYPT, ENCRYPT, M_SCC, "unscannable_body: malformed_json"},
    {"unscan-personal/third-scc-unapproved", ID | FIN, "IN", T, FULL, true, B_SCC, APPROVED, 0, 0, 0, SC_PERSONAL, NULL, BLOCK, BLOCK, M_SCC, "category_not_approved: financial"},
    {"unscan-personal/third-nobasis", 0, "IN", T, FULL, true, B_NONE, APPROVED, 0, 0, 0, SC_PERSONAL, NULL, BLOCK, BLOCK, M_NONE, "no_transfer_basis"},
    {"unscan-personal/third-expired", 0, "IN", T, FULL, true, B_SCC_EXPIRED, APPROVED, 0, 1, 0, SC_PERSONAL, NULL, ENCRYPT, ENCRYPT, M_NONE, "scc_expired"},
    {"unscan-personal/report", 0, "IN", T, FULL, true, B_BCR, APPROVED, 0, 0, 1, SC_PERSONAL, NULL, BLOCK, ALLOW, M_BCR, "unscannable_body: malformed_json"},
};

static const int64_t NOW_Y = 2026, NOW_M = 11, NOW_D = 29;

static void make_vendor(bg_vendor_t *v, const row_t *r)
{
    memset(v, 0, sizeof *v);
    v->name = "vendor-x";
    v->role = BG_ROLE_PROCESSOR;
    v->categories = r->approved;
    v->public_body = r->public_body;
    v->on_violation = r->encrypt ? BG_VIOLATION_ENCRYPT : BG_VIOLATION_BLOCK;
    v->scc.reference = "DPA-2024-017";
    int64_t s0 = day(2024, 3, 1), s1 = day(2027, 3, 1);
    switch (r->basis) {
    case B_NONE:
        break;
    case B_SCC: case B_SCC_MISMATCH: case B_SCC_M1_CTRL: case B_SCC_M4_CTRL: case B_SCC_M3_PROC:
    case B_SCC_M4_PROC: case B_SCC_M3_CTRL: case B_DPF_LAPSED_SCC:
        v->has_scc = true;
        v->scc.module = 2;
        v->scc.signed_at = s0;
        v->scc.expires = s1;
        break;
    case B_SCC_EXPIRED: case B_SCC_EXPIRED_BCR: case B_DPF_LAPSED_SCC_X:
        v->has_scc = true;
        v->scc.module = 2;
        v->scc.signed_at = day(2023, 1, 1);
        v->scc.expires = day(2026, 3, 1);
        break;
    case B_SCC_FUTURE:
        v->has_scc = true;
        v->scc.module = 2;
        v->scc.signed_at = day(2027, 1, 1);
        v->scc.expires = day(2029, 1, 1);
        break;
    default:
        break;
    }
    switch (r->basis) {
    case B_SCC_MISMATCH: v->scc.module = 1; break;
    case B_SCC_M1_CTRL: v->scc.module = 1; v->role = BG_ROLE_CONTROLLER; break;
    case B_SCC_M4_CTRL: v->scc.module = 4; v->role = BG_ROLE_CONTROLLER; break;
    case B_SCC_M3_PROC: v->scc.module = 3; break;
    case B_SCC_M4_PROC: v->scc.module = 4; break;
    case B_SCC_M3_CTRL: v->scc.module = 3; v->role = BG_ROLE_CONTROLLER; break;
    case B_DPF: v->has_dpf = true; v->dpf.certified = true; v->dpf.expires = day(2027, 10, 1); break;
    case B_DPF_LAPSED: case B_DPF_LAPSED_SCC: case B_DPF_LAPSED_SCC_X:
        v->has_dpf = true; v->dpf.certified = true; v->dpf.expires = day(2026, 10, 1); break;
    case B_DPF_UNCERT: v->has_dpf = true; v->dpf.certified = false; break;
    case B_BCR: case B_SCC_EXPIRED_BCR: v->bcr = true; break;
    default: break;
    }
}

static void make_config(bg_config_t *c, bool report, bool personal)
{
    memset(c, 0, sizeof *c);
    c->jurisdiction = "EEA";
    c->mode = report ? BG_MODE_REPORT_ONLY : BG_MODE_ENFORCE;
    c->limits.oversize_body = personal ? BG_OVERSIZE_PERSONAL : BG_OVERSIZE_BLOCK;
    c->encryption.keys_dir = "config/keys";
    c->encryption.active_key = "k1";
}

static int row_failures;

static void run_row(const row_t *r)
{
    bg_config_t cfg;
    bg_vendor_t v;
    make_config(&cfg, r->report, r->unscannable == SC_PERSONAL);
    make_vendor(&v, r);
    bg_policy_input_t in = {
        .country = r->country,
        .dest_kind = r->kind,
        .scope = r->scope,
        .region_covered = r->covered,
        .categories = r->cats,
        .unscannable = r->unscannable != SC_NONE,
        .unscannable_reason = r->unscannable ? "malformed_json" : NULL,
        .error = r->error,
    };
    bg_decision_t d;
    bg_policy_decide(&cfg, &v, &in, day(NOW_Y, NOW_M, NOW_D) + 3600, &d);
    int before = bg_test_failed_now;
    CHECK_STR(d.reason, r->reason);
    CHECK_INT(d.decision, r->decision);
    CHECK_INT(d.action, r->action);
    CHECK_INT(d.mechanism, r->mech);
    CHECK_INT(d.enforced, !r->report);
    CHECK(d.ntrail >= 1 && d.ntrail <= BG_POLICY_TRAIL_MAX);
    if (r->mech == BG_MECH_SCC) {
        CHECK_INT(d.scc_module, v.scc.module);
        CHECK(d.scc_reference == v.scc.reference);
    } else {
        CHECK_INT(d.scc_module, 0);
        CHECK(d.scc_reference == NULL);
    }
    /* encrypt never for region_mismatch or errors */
    if (r->error || strcmp(r->reason, "region_mismatch") == 0)
        CHECK_INT(d.decision, BG_DECISION_BLOCK);
    if (d.decision == BG_DECISION_ENCRYPT)
        CHECK((d.seal_categories & ~r->cats) == 0);
    else
        CHECK_INT(d.seal_categories, 0);
    if (bg_test_failed_now != before) {
        fprintf(stderr, "    in row \"%s\"\n", r->name);
        row_failures++;
    }
}

static void test_matrix(void)
{
    for (size_t i = 0; i < BG_ARRAY_SIZE(rows); i++)
        run_row(&rows[i]);
    fprintf(stderr, "policy matrix: %zu rows, %d failing\n", BG_ARRAY_SIZE(rows), row_failures);
    CHECK(BG_ARRAY_SIZE(rows) >= 60);
}

/* The same inputs, the time moving across the tag's boundaries (signed <= now < expires). */
static void test_boundaries(void)
{
    bg_config_t cfg;
    bg_vendor_t v;
    row_t r = {.basis = B_SCC, .approved = APPROVED};
    make_config(&cfg, false, false);
    make_vendor(&v, &r);
    bg_policy_input_t in = {.country = "IN", .dest_kind = BG_DEST_THIRD, .region_covered = true, .categories = ID};
    bg_decision_t d;
    bg_policy_decide(&cfg, &v, &in, v.scc.signed_at - 1, &d);
    CHECK_STR(d.reason, "scc_not_yet_signed");
    bg_policy_decide(&cfg, &v, &in, v.scc.signed_at, &d);
    CHECK_STR(d.reason, "scc");
    bg_policy_decide(&cfg, &v, &in, v.scc.expires - 1, &d);
    CHECK_STR(d.reason, "scc");
    CHECK_INT(d.decision, BG_DECISION_ALLOW);
    bg_policy_decide(&cfg, &v, &in, v.scc.expires, &d);
    CHECK_STR(d.reason, "scc_expired");
    CHECK_INT(d.decision, BG_DECISION_BLOCK);

    row_t r2 = {.basis = B_DPF, .approved = APPROVED};
    make_vendor(&v, &r2);
    bg_policy_input_t us = {.country = "US", .dest_kind = BG_DEST_ADEQUATE, .scope = BG_SCOPE_DPF,
                            .region_covered = true, .categories = ID};
    bg_policy_decide(&cfg, &v, &us, v.dpf.expires - 1, &d);
    CHECK_STR(d.reason, "dpf");
    CHECK_INT(d.mechanism, BG_MECH_DPF);
    bg_policy_decide(&cfg, &v, &us, v.dpf.expires, &d);
    CHECK_STR(d.reason, "dpf_lapsed");
    /* certified without an expiry date is not "unexpired": fail closed */
    v.dpf.expires = 0;
    bg_policy_decide(&cfg, &v, &us, day(2026, 1, 1), &d);
    CHECK_STR(d.reason, "dpf_lapsed");
    CHECK_INT(d.decision, BG_DECISION_BLOCK);
}

/* An adequacy decision applies from its date until its sunset (`expires` in the regions file), at the
 * time of each request: after it, the country needs a basis like any third country. */
static void test_adequacy_dates(void)
{
    bg_config_t cfg;
    bg_vendor_t v;
    row_t r = {.basis = B_NONE, .approved = APPROVED};
    make_config(&cfg, false, false);
    make_vendor(&v, &r);
    bg_adequacy_t adq[3] = {
        {.country = "GB", .scope = BG_SCOPE_FULL, .date = day(2021, 6, 28), .expires = day(2025, 12, 27)},
        {.country = "BR", .scope = BG_SCOPE_FULL, .date = day(2027, 1, 1)},
        {.country = "JP", .scope = BG_SCOPE_FULL}, /* no dates: in force */
    };
    cfg.adequacy = adq;
    cfg.nadequacy = 3;
    bg_policy_input_t in = {.country = "GB", .dest_kind = BG_DEST_ADEQUATE, .scope = BG_SCOPE_FULL,
                            .region_covered = true, .categories = ID};
    bg_decision_t d;
    bg_policy_decide(&cfg, &v, &in, adq[0].expires - 1, &d);
    CHECK_STR(d.reason, "adequacy");
    CHECK_INT(d.mechanism, BG_MECH_ADEQUACY);
    bg_policy_decide(&cfg, &v, &in, adq[0].expires, &d);
    CHECK_STR(d.reason, "adequacy_expired");
    CHECK_INT(d.decision, BG_DECISION_BLOCK);
    CHECK_INT(d.mechanism, BG_MECH_NONE);
    bool said = false;
    for (int i = 0; i < d.ntrail; i++)
        said |= strstr(d.trail[i], "GB adequacy decision expired on 2025-12-27") != NULL;
    CHECK(said);
    /* With a basis of its own the vendor carries on after the sunset. */
    row_t rs = {.basis = B_SCC, .approved = APPROVED};
    make_vendor(&v, &rs);
    bg_policy_decide(&cfg, &v, &in, adq[0].expires, &d);
    CHECK_STR(d.reason, "scc");
    CHECK_INT(d.decision, BG_DECISION_ALLOW);
    /* No personal data: allowed whatever the adequacy. */
    make_vendor(&v, &r);
    in.categories = 0;
    bg_policy_decide(&cfg, &v, &in, adq[0].expires, &d);
    CHECK_STR(d.reason, "no_personal_data");
    in.categories = ID;
    /* Before the decision's date it is not in force yet. */
    in.country = "BR";
    bg_policy_decide(&cfg, &v, &in, adq[1].date - 1, &d);
    CHECK_STR(d.reason, "adequacy_not_in_force");
    CHECK_INT(d.decision, BG_DECISION_BLOCK);
    bg_policy_decide(&cfg, &v, &in, adq[1].date, &d);
    CHECK_STR(d.reason, "adequacy");
    in.country = "JP";
    bg_policy_decide(&cfg, &v, &in, day(2040, 1, 1), &d);
    CHECK_STR(d.reason, "adequacy");
    /* The sunset counts for the DPF scope too; encrypt vendors seal instead of blocking. */
    bg_adequacy_t us = {.country = "US", .scope = BG_SCOPE_DPF, .date = day(2023, 7, 10), .expires = day(2026, 7, 10)};
    cfg.adequacy = &us;
    cfg.nadequacy = 1;
    row_t rd = {.basis = B_DPF, .approved = APPROVED, .encrypt = true};
    make_vendor(&v, &rd);
    bg_policy_input_t usin = {.country = "US", .dest_kind = BG_DEST_ADEQUATE, .scope = BG_SCOPE_DPF,
                              .region_covered = true, .categories = ID};
    bg_policy_decide(&cfg, &v, &usin, day(2026, 7, 9), &d);
    CHECK_STR(d.reason, "dpf");
    bg_policy_decide(&cfg, &v, &usin, day(2026, 7, 10), &d);
    CHECK_STR(d.reason, "adequacy_expired");
    CHECK_INT(d.decision, BG_DECISION_ENCRYPT);
    CHECK_INT(d.seal_categories, ID);
}

static void test_module_roles(void)
{
    CHECK(bg_policy_scc_module_fits(1, BG_ROLE_CONTROLLER));
    CHECK(!bg_policy_scc_module_fits(1, BG_ROLE_PROCESSOR));
    CHECK(bg_policy_scc_module_fits(2, BG_ROLE_PROCESSOR));
    CHECK(!bg_policy_scc_module_fits(2, BG_ROLE_CONTROLLER));
    CHECK(bg_policy_scc_module_fits(3, BG_ROLE_PROCESSOR));
    CHECK(!bg_policy_scc_module_fits(3, BG_ROLE_CONTROLLER));
    CHECK(bg_policy_scc_module_fits(4, BG_ROLE_CONTROLLER));
    CHECK(!bg_policy_scc_module_fits(4, BG_ROLE_PROCESSOR));
    CHECK(!bg_policy_scc_module_fits(0, BG_ROLE_PROCESSOR));
    CHECK(!bg_policy_scc_module_fits(5, BG_ROLE_CONTROLLER));
}

static void test_categories_str(void)
{
    char buf[96];
    CHECK_STR(bg_policy_categories_str(0, buf, sizeof buf), "");
    CHECK_STR(bg_policy_categories_str(DEV | USE, buf, sizeof buf), "device,usage");
    CHECK_STR(bg_policy_categories_str(1u << 20, buf, sizeof buf), "unknown");
    CHECK_STR(bg_policy_categories_str((1u << BG_CAT__COUNT) - 1, buf, sizeof buf),
              "identifier,device,location,usage,content,credential,ai_interaction,financial,child");
    /* too small: cut at a name, the rest counted */
    CHECK_STR(bg_policy_categories_str(ID | DEV | LOC, buf, 20), "identifier,+2");
    CHECK_STR(bg_policy_categories_str(ID | DEV | LOC, buf, 22), "identifier,device,+1");
}

/* Every category missing: the reason is bounded and still starts with the code. */
static void test_long_reason(void)
{
    bg_config_t cfg;
    bg_vendor_t v;
    row_t r = {.basis = B_SCC, .approved = 0};
    make_config(&cfg, false, false);
    make_vendor(&v, &r);
    bg_policy_input_t in = {.country = "IN", .dest_kind = BG_DEST_THIRD, .region_covered = true,
                            .categories = (1u << BG_CAT__COUNT) - 1};
    bg_decision_t d;
    bg_policy_decide(&cfg, &v, &in, day(2026, 6, 1), &d);
    CHECK(strncmp(d.reason, "category_not_approved: identifier,device,", 41) == 0);
    CHECK(strlen(d.reason) < sizeof d.reason);
    CHECK(strstr(d.reason, ",+") != NULL);
    CHECK_INT(d.decision, BG_DECISION_BLOCK);

    /* an enormous error string is cut, not overflowed */
    char big[400];
    memset(big, 'e', sizeof big - 1);
    big[sizeof big - 1] = 0;
    in.error = big;
    bg_policy_decide(&cfg, &v, &in, day(2026, 6, 1), &d);
    CHECK_INT(strlen(d.reason), sizeof d.reason - 1);
    CHECK_INT(d.decision, BG_DECISION_BLOCK);
}

static void test_trail_and_seal(void)
{
    bg_config_t cfg;
    bg_vendor_t v;
    row_t r = {.basis = B_SCC, .approved = ID, .encrypt = true};
    make_config(&cfg, false, false);
    make_vendor(&v, &r);
    bg_policy_input_t in = {.country = "US", .dest_kind = BG_DEST_ADEQUATE, .scope = BG_SCOPE_DPF,
                            .region_covered = true, .categories = ID | DEV | FIN};
    bg_decision_t d;
    bg_policy_decide(&cfg, &v, &in, day(2026, 11, 29), &d);
    CHECK_INT(d.decision, BG_DECISION_ENCRYPT);
    CHECK_STR(d.reason, "category_not_approved: device,financial");
    /* only the unapproved categories need sealing */
    CHECK_INT(d.seal_categories, DEV | FIN);
    CHECK(d.ntrail >= 5);
    CHECK(strstr(d.trail[0], "rule 1") && strstr(d.trail[0], "US"));
    int saw_scc = 0;
    for (int i = 0; i < d.ntrail; i++)
        if (strstr(d.trail[i], "DPA-2024-017") && strstr(d.trail[i], "2027-03-01"))
            saw_scc = 1;
    CHECK(saw_scc);
    CHECK(strstr(d.trail[d.ntrail - 1], "encrypt") != NULL);

    /* The data plane asks for no trail: the same decision, no text. */
    bg_decision_t q;
    in.no_trail = true;
    bg_policy_decide(&cfg, &v, &in, day(2026, 11, 29), &q);
    CHECK_INT(q.decision, d.decision);
    CHECK_INT(q.action, d.action);
    CHECK_INT(q.mechanism, d.mechanism);
    CHECK_STR(q.reason, d.reason);
    CHECK_INT(q.seal_categories, d.seal_categories);
    CHECK_INT(q.ntrail, 0);
    in.no_trail = false;

    /* no basis: every category found is sealed */
    v.has_scc = false;
    bg_policy_decide(&cfg, &v, &in, day(2026, 11, 29), &d);
    CHECK_STR(d.reason, "no_transfer_basis");
    CHECK_INT(d.seal_categories, ID | DEV | FIN);

    /* encrypt without keys configured: fail closed to block */
    cfg.encryption.keys_dir = NULL;
    bg_policy_decide(&cfg, &v, &in, day(2026, 11, 29), &d);
    CHECK_INT(d.decision, BG_DECISION_BLOCK);
    CHECK_STR(d.reason, "no_transfer_basis");
}

static void test_null_inputs(void)
{
    bg_config_t cfg;
    make_config(&cfg, false, false);
    bg_policy_input_t in = {.country = "DE", .dest_kind = BG_DEST_DOMESTIC, .region_covered = true};
    bg_decision_t d;
    bg_policy_decide(&cfg, NULL, &in, 0, &d);
    CHECK_INT(d.decision, BG_DECISION_BLOCK);
    CHECK_INT(d.action, BG_DECISION_BLOCK);
    CHECK_STR(d.reason, "no_vendor");
    bg_policy_decide(NULL, NULL, &in, 0, &d);
    CHECK_STR(d.reason, "no_config");
    CHECK_INT(d.action, BG_DECISION_BLOCK);
}

/* Printed, not asserted: the cost of one decision on the data plane. */
static void test_timing(void)
{
    bg_config_t cfg;
    bg_vendor_t v;
    row_t r = {.basis = B_SCC, .approved = APPROVED};
    make_config(&cfg, false, false);
    make_vendor(&v, &r);
    bg_policy_input_t in = {.country = "US", .dest_kind = BG_DEST_ADEQUATE, .scope = BG_SCOPE_DPF,
                            .region_covered = true, .categories = ID | DEV};
    bg_decision_t d;
    const int N = 200000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int allowed = 0;
    for (int i = 0; i < N; i++) {
        bg_policy_decide(&cfg, &v, &in, day(2026, 11, 29) + i, &d);
        allowed += d.decision == BG_DECISION_ALLOW;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK_INT(allowed, N);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N;
    fprintf(stderr, "  timing: bg_policy_decide (US, SCC, 2 categories, 5 trail lines) %.0f ns\n", ns);
}

int main(void)
{
    RUN(test_matrix);
    RUN(test_boundaries);
    RUN(test_adequacy_dates);
    RUN(test_module_roles);
    RUN(test_categories_str);
    RUN(test_long_reason);
    RUN(test_trail_and_seal);
    RUN(test_null_inputs);
    RUN(test_timing);
    return bg_test_done();
}
