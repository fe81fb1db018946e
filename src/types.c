/*
 * types.c — names of the shared enums in types.h, as they appear in config, records and
 * metrics. Pure, thread-safe (read-only tables).
 */
#include "types.h"
#include <string.h>

static const char *const category_names[BG_CAT__COUNT] = {
    "identifier", "device", "location", "usage", "content",
    "credential", "ai_interaction", "financial", "child",
};

const char *bg_category_name(int cat)
{
    return cat >= 0 && cat < BG_CAT__COUNT ? category_names[cat] : NULL;
}

int bg_category_parse(const char *name, size_t len)
{
    for (int i = 0; i < BG_CAT__COUNT; i++)
        if (strlen(category_names[i]) == len && memcmp(category_names[i], name, len) == 0)
            return i;
    return -1;
}

const char *bg_decision_name(int d)
{
    static const char *const names[] = {"allow", "block", "encrypt"};
    return d >= 0 && d < BG_DECISION__COUNT ? names[d] : "block";
}

const char *bg_mechanism_name(int m)
{
    static const char *const names[] = {"none", "domestic", "adequacy", "dpf", "scc", "bcr"};
    return m >= 0 && m < BG_MECH__COUNT ? names[m] : "none";
}
