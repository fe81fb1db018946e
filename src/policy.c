/*
 * policy.c — bg_policy_decide: the rules of issue 6 in order, first match wins:
 *   0 an input error → block with it (before anything: a failed lookup makes the country unknown,
 *     and the root cause is the better reason); 1 country unknown or outside the vendor's regions →
 *     block region_mismatch; unscannable body under `oversize_body: block` → block; 2 no personal data
 *     → allow; 3 domestic → allow; 4 adequate (scope full / commercial / dpf) and the decision in
 *     force at now (date <= now < expires, where the regions file gives them) → allow, or fall through;
 *   5 a valid SCC or BCR → allow when every category is approved; 6 otherwise on_violation.
 * Invariants: region_mismatch and errors never encrypt; report-only never blocks (action ALLOW).
 * Pure, any thread, no allocation.
 */
#include "policy.h"

#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Pseudo-category for a body that could not be classified under `oversize_body: personal`:
 * personal data of unknown kind, which no vendor's approved list can cover. */
#define UNSCANNED_BIT (1u << 31)
#define KNOWN_CATS ((1u << BG_CAT__COUNT) - 1u)

static void trail(bg_decision_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trail(bg_decision_t *d, const char *fmt, ...)
{
    if (d->no_trail || d->ntrail >= BG_POLICY_TRAIL_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->trail[d->ntrail], BG_POLICY_TRAIL_LEN, fmt, ap);
    va_end(ap);
    d->ntrail++;
}

static void set_reason(bg_decision_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(bg_decision_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
}

/* A reason that is one string: copied (cut like vsnprintf would) without the formatter, which
 * cost ~600 instructions on every request's decision. */
static void put_reason(bg_decision_t *d, const char *s)
{
    (void)bg_str_copy(d->reason, sizeof d->reason, s, SIZE_MAX);
}

/* "2027-03-01" into out[11]. */
static const char *date_str(int64_t s, char out[11])
{
    char tmp[32];
    bg_format_rfc3339_ms(s * 1000, tmp);
    memcpy(out, tmp, 10);
    out[10] = 0;
    return out;
}

bool bg_policy_scc_module_fits(int module, bg_role_t role)
{
    switch (module) {
    case 1: /* controller → controller */
    case 4: /* processor → controller */
        return role == BG_ROLE_CONTROLLER;
    case 2: /* controller → processor */
    case 3: /* processor → processor */
        return role == BG_ROLE_PROCESSOR;
    default:
        return false;
    }
}

char *bg_policy_categories_str(uint32_t mask, char *out, size_t cap)
{
    const char *names[BG_CAT__COUNT + 1];
    size_t nn = 0;
    for (int i = 0; i < BG_CAT__COUNT; i++)
        if (mask & (1u << i))
            names[nn++] = bg_category_name(i);
    if (mask & ~KNOWN_CATS)
        names[nn++] = "unknown";
    if (cap == 0)
        return out;
    out[0] = 0;
    size_t len = 0;
    for (size_t i = 0; i < nn; i++) {
        size_t l = strlen(names[i]) + (i ? 1 : 0);
        /* keep room for ",+N" unless this is the last name */
        size_t tail = i + 1 < nn ? 4 : 0;
        if (len + l + tail + 1 > cap) {
            int w = snprintf(out + len, cap - len, "%s+%zu", i ? "," : "", nn - i);
            (void)w;
            return out;
        }
        snprintf(out + len, cap - len, "%s%s", i ? "," : "", names[i]);
        len += l;
    }
    return out;
}

static bool valid_dpf(const bg_vendor_t *v, int64_t now_s)
{
    /* An absent expiry (0) is not "unexpired": DPF certifications are annual, fail closed. */
    return v->has_dpf && v->dpf.certified && v->dpf.expires > 0 && now_s < v->dpf.expires;
}

/* The regions file's entry for an adequate country, or NULL. A linear walk over a few dozen
 * entries, only for adequate destinations: the caller's dest_kind says the entry exists. */
static const bg_adequacy_t *adequacy_entry(const bg_config_t *cfg, const char *cc)
{
    for (size_t i = 0; i < cfg->nadequacy; i++)
        if (cfg->adequacy[i].country[0] == cc[0] && cfg->adequacy[i].country[1] == cc[1])
            return &cfg->adequacy[i];
    return NULL;
}

static void finish(const bg_config_t *cfg, bg_decision_t *d)
{
    d->enforced = !cfg || cfg->mode != BG_MODE_REPORT_ONLY;
    d->action = d->enforced ? d->decision : BG_DECISION_ALLOW;
    if (!d->enforced && d->decision != BG_DECISION_ALLOW)
        trail(d, "mode report-only: would %s, forwarding unchanged", bg_decision_name(d->decision));
}

static void block(const bg_config_t *cfg, bg_decision_t *d)
{
    d->decision = BG_DECISION_BLOCK;
    d->mechanism = BG_MECH_NONE;
    d->seal_categories = 0;
    finish(cfg, d);
}

static void allow(const bg_config_t *cfg, bg_decision_t *d, bg_mechanism_t m, const char *reason)
{
    d->decision = BG_DECISION_ALLOW;
    d->mechanism = m;
    put_reason(d, reason);
    finish(cfg, d);
}

/* Rule 6: the vendor's on_violation; `seal` is what would have to be sealed. */
static void violation(const bg_config_t *cfg, const bg_vendor_t *v, bg_decision_t *d, uint32_t seal)
{
    if (v->on_violation == BG_VIOLATION_ENCRYPT && cfg->encryption.keys_dir) {
        d->decision = BG_DECISION_ENCRYPT;
        d->seal_categories = seal & KNOWN_CATS;
        trail(d, "rule 6: violation (%s): vendor on_violation encrypt: seal the personal data", d->reason);
    } else {
        d->decision = BG_DECISION_BLOCK;
        d->seal_categories = 0;
        if (v->on_violation == BG_VIOLATION_ENCRYPT)
            trail(d, "rule 6: violation (%s): on_violation encrypt but no keys configured: block", d->reason);
        else
            trail(d, "rule 6: violation (%s): vendor on_violation block", d->reason);
    }
    finish(cfg, d);
}

void bg_policy_decide(const bg_config_t *cfg, const bg_vendor_t *v, const bg_policy_input_t *in,
                      int64_t now_s, bg_decision_t *out)
{
    bg_decision_t *d = out;
    memset(d, 0, sizeof *d);
    d->no_trail = in && in->no_trail;
    char cats[72], date1[11], date2[11]; /* 23 + 72 < sizeof reason: the list is never cut by the reason */

    if (!cfg || !v || !in) {
        put_reason(d, !cfg ? "no_config" : !v ? "no_vendor" : "no_input");
        trail(d, "rule 0: %s: block (fail closed)", d->reason);
        block(cfg, d);
        return;
    }
    const char *country = in->country && in->country[0] ? in->country : NULL;

    /* Rule 0: an error before the decision. */
    if (in->error) {
        put_reason(d, in->error[0] ? in->error : "error");
        trail(d, "rule 0: error before the decision (%s): block (fail closed)", d->reason);
        block(cfg, d);
        return;
    }

    /* Rule 1: the destination must be where the vendor said it processes, whatever the data. */
    if (!country || !in->region_covered) {
        put_reason(d, "region_mismatch");
        if (!country)
            trail(d, "rule 1: destination country unknown: outside vendor %s's regions: block", v->name);
        else
            trail(d, "rule 1: destination %.2s is outside vendor %s's declared regions: block", country,
                  v->name);
        block(cfg, d);
        return;
    }
    trail(d, "rule 1: destination %.2s is inside vendor %s's declared regions", country, v->name);

    uint32_t found = in->categories;
    if (in->unscannable) {
        const char *why = in->unscannable_reason && in->unscannable_reason[0] ? in->unscannable_reason
                                                                               : "unknown";
        if (cfg->limits.oversize_body != BG_OVERSIZE_PERSONAL) {
            set_reason(d, "unscannable_body: %s", why);
            trail(d, "body unscannable (%s) and oversize_body: block: block", why);
            block(cfg, d);
            return;
        }
        found |= UNSCANNED_BIT;
        trail(d, "body unscannable (%s), oversize_body: personal: personal data of unknown category", why);
    }

    /* Rule 2. */
    if (!found) {
        trail(d, "rule 2: no personal data found: allow");
        allow(cfg, d, BG_MECH_NONE, "no_personal_data");
        return;
    }
    if (found & ~UNSCANNED_BIT)
        trail(d, "rule 2: personal data found: %s",
              bg_policy_categories_str(found & ~UNSCANNED_BIT, cats, sizeof cats));

    /* Rule 3. */
    bg_dest_kind_t kind = in->dest_kind;
    if (kind == BG_DEST_DOMESTIC) {
        trail(d, "rule 3: %.2s is inside the jurisdiction %s: allow", country,
              cfg->jurisdiction ? cfg->jurisdiction : "?");
        allow(cfg, d, BG_MECH_DOMESTIC, "domestic");
        return;
    }

    /* Rule 4: adequacy, honouring its scope. A failure here is remembered: it is the reason when
     * rule 5 finds nothing more specific. */
    const char *adequacy_fail = NULL;
    const bg_adequacy_t *adq = kind == BG_DEST_ADEQUATE ? adequacy_entry(cfg, country) : NULL;
    if (adq && adq->expires && now_s >= adq->expires) {
        /* A decision with a sunset (the UK's) ceases to apply on that day: from then on the country
         * is a third country for this request, whatever the scope. */
        adequacy_fail = "adequacy_expired";
        trail(d, "rule 4: %.2s adequacy decision expired on %s: not applied", country,
              date_str(adq->expires, date1));
    } else if (adq && adq->date && now_s < adq->date) {
        adequacy_fail = "adequacy_not_in_force";
        trail(d, "rule 4: %.2s adequacy decision applies from %s: not applied", country,
              date_str(adq->date, date1));
    } else if (kind == BG_DEST_ADEQUATE) {
        switch (in->scope) {
        case BG_SCOPE_FULL:
            trail(d, "rule 4: %.2s has an EU adequacy decision: allow", country);
            allow(cfg, d, BG_MECH_ADEQUACY, "adequacy");
            return;
        case BG_SCOPE_COMMERCIAL:
            if (!v->public_body) {
                trail(d, "rule 4: %.2s adequacy (commercial organisations), vendor is not a public body: allow",
                      country);
                allow(cfg, d, BG_MECH_ADEQUACY, "adequacy");
                return;
            }
            adequacy_fail = "adequacy_scope_commercial";
            trail(d, "rule 4: %.2s adequacy covers commercial organisations only, vendor is a public body",
                  country);
            break;
        case BG_SCOPE_DPF:
            if (valid_dpf(v, now_s)) {
                trail(d, "rule 4: %.2s adequacy for DPF-certified organisations, vendor certified until %s: allow",
                      country, date_str(v->dpf.expires, date1));
                allow(cfg, d, BG_MECH_DPF, "dpf");
                return;
            }
            if (v->has_dpf && v->dpf.certified) {
                adequacy_fail = "dpf_lapsed";
                if (v->dpf.expires > 0)
                    trail(d, "rule 4: %.2s DPF adequacy: vendor's certification lapsed on %s", country,
                          date_str(v->dpf.expires, date1));
                else
                    trail(d, "rule 4: %.2s DPF adequacy: vendor's certification has no expiry date", country);
            } else {
                trail(d, "rule 4: %.2s adequacy needs DPF certification, vendor is not certified", country);
            }
            break;
        default:
            trail(d, "rule 4: %.2s adequacy of unknown scope: not applied", country);
            break;
        }
    } else {
        trail(d, "rule 4: %.2s is a third country (no adequacy)", country);
    }

    /* Rule 5: a basis on the vendor. SCC first (it names a module and reference), then BCR. */
    const char *scc_fail = NULL;
    bg_mechanism_t basis = BG_MECH_NONE;
    if (v->has_scc) {
        const char *ref = v->scc.reference ? v->scc.reference : "?";
        if (now_s < v->scc.signed_at) {
            scc_fail = "scc_not_yet_signed";
            trail(d, "rule 5: SCC %s (module %d) not in force before %s", ref, v->scc.module,
                  date_str(v->scc.signed_at, date1));
        } else if (now_s >= v->scc.expires) {
            scc_fail = "scc_expired";
            trail(d, "rule 5: SCC %s (module %d) expired on %s", ref, v->scc.module,
                  date_str(v->scc.expires, date1));
        } else if (!bg_policy_scc_module_fits(v->scc.module, v->role)) {
            scc_fail = "scc_module_role_mismatch";
            trail(d, "rule 5: SCC %s module %d does not fit the vendor's role %s", ref, v->scc.module,
                  v->role == BG_ROLE_CONTROLLER ? "controller" : "processor");
        } else {
            basis = BG_MECH_SCC;
            d->scc_module = v->scc.module;
            d->scc_reference = v->scc.reference;
            trail(d, "rule 5: SCC %s module %d valid %s..%s", ref, v->scc.module,
                  date_str(v->scc.signed_at, date1), date_str(v->scc.expires, date2));
        }
    }
    if (basis == BG_MECH_NONE && v->bcr) {
        basis = BG_MECH_BCR;
        trail(d, "rule 5: vendor has binding corporate rules");
    }

    if (basis != BG_MECH_NONE) {
        d->mechanism = basis;
        uint32_t missing = found & ~(v->categories & KNOWN_CATS);
        if (!missing) {
            trail(d, "rule 5: every category found is approved for %s: allow", v->name);
            allow(cfg, d, basis, basis == BG_MECH_SCC ? "scc" : "bcr");
            return;
        }
        uint32_t named = missing & ~UNSCANNED_BIT;
        if (named) {
            set_reason(d, "category_not_approved: %s", bg_policy_categories_str(named, cats, sizeof cats));
            trail(d, "rule 5: not approved for %s: %s", v->name, cats);
        } else {
            set_reason(d, "unscannable_body: %s",
                       in->unscannable_reason && in->unscannable_reason[0] ? in->unscannable_reason
                                                                           : "unknown");
            trail(d, "rule 5: a body of unknown categories cannot be covered by %s's approved categories",
                  v->name);
        }
        violation(cfg, v, d, missing);
        return;
    }

    /* Rule 6: no basis; the most specific reason. */
    if (scc_fail)
        put_reason(d, scc_fail);
    else if (adequacy_fail)
        put_reason(d, adequacy_fail);
    else
        put_reason(d, "no_transfer_basis");
    if (!v->has_scc && !v->bcr)
        trail(d, "rule 5: vendor %s has no SCC or BCR", v->name);
    d->mechanism = BG_MECH_NONE;
    d->scc_module = 0;
    d->scc_reference = NULL;
    violation(cfg, v, d, found);
}
