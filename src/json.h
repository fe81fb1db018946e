/*
 * json.h — a strict (RFC 8259) pull tokenizer over a complete buffer, for the classifier.
 * It never recurses: nesting is an explicit bounded stack (depth limit → BG_JSON_EDEPTH), so
 * memory is constant whatever the input. Tokens are spans into the caller's buffer (string
 * tokens exclude the quotes); bg_json_unescape() decodes a string's contents with a byte map
 * back to the raw offsets. Pure, no allocation; one bg_json_t per document, any thread.
 */
#ifndef BG_JSON_H
#define BG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BG_JSON_MAX_DEPTH 128

typedef enum {
    BG_JSON_OBJ_START = 1,
    BG_JSON_OBJ_END,
    BG_JSON_ARR_START,
    BG_JSON_ARR_END,
    BG_JSON_KEY,    /* an object member's name (string contents) */
    BG_JSON_STRING, /* a string value (contents, without quotes) */
    BG_JSON_NUMBER,
    BG_JSON_TRUE,
    BG_JSON_FALSE,
    BG_JSON_NULL,
} bg_json_type_t;

/* Errors returned by bg_json_next (the tokenizer stays in the error state afterwards). */
#define BG_JSON_EINVAL (-1) /* not JSON (bad token, bad escape, control char, bad UTF-8, trailing data) */
#define BG_JSON_ETRUNC (-2) /* the input ends inside a value */
#define BG_JSON_EDEPTH (-3) /* nesting deeper than max_depth */

typedef struct {
    bg_json_type_t type;
    uint32_t start; /* offset in the buffer (strings/keys: first byte after the quote) */
    uint32_t len;
    bool escaped;   /* strings/keys: contains a backslash escape */
} bg_json_token_t;

typedef struct {
    const unsigned char *p; /* private */
    size_t n, pos;
    unsigned depth, max_depth;
    uint8_t stack[BG_JSON_MAX_DEPTH]; /* 1 = object, 2 = array */
    int state;  /* private: what may come next */
    int error;  /* 0 or the sticky BG_JSON_E* */
} bg_json_t;

/** Start tokenizing p[0..n) (n < 4 GiB); max_depth 0 or > BG_JSON_MAX_DEPTH means BG_JSON_MAX_DEPTH. */
void bg_json_init(bg_json_t *j, const char *p, size_t n, unsigned max_depth);
/** Next token into *tok: returns 1, 0 at the end of a complete document, or a BG_JSON_E* error. */
int bg_json_next(bg_json_t *j, bg_json_token_t *tok);
/** Current nesting depth (objects/arrays open). */
static inline unsigned bg_json_depth(const bg_json_t *j) { return j->depth; }
/** Decode string contents s[0..n) (already validated by the tokenizer) into out (room for n bytes:
 *  decoding never grows). When map is not NULL (room for n + 1 entries), map[k] is the offset in s
 *  of the escape or byte that produced out[k], and map[result] = n. Lone surrogates become U+FFFD.
 *  Returns the decoded length. */
size_t bg_json_unescape(const char *s, size_t n, char *out, uint32_t *map);

#endif
