/*
 * seal.h — the encrypt action's crypto: a keyring of exporter-held keys, deterministic tokens
 * "bgtok:v1:<kid>:<base64url(SIV tag || ciphertext)>" (AES-256-SIV, RFC 5297, kid as associated
 * data), whole-body JWE (alg "dir", enc "A256GCM"), and rewriting / revealing tokens in a buffer.
 * A keyring is immutable after load: share it read-only between worker threads (every call makes
 * its own cipher context). Keys never leave this module and are wiped when the keyring dies.
 * Plaintexts are personal data: callers wipe their buffers (bg_buf_dispose_secure).
 */
#ifndef BG_SEAL_H
#define BG_SEAL_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BG_SEAL_KEY_LEN 64       /* AES-256-SIV: 32 bytes CMAC key || 32 bytes CTR key */
#define BG_SEAL_KID_MAX 32       /* key ids: 1..32 of [A-Za-z0-9_-] */
#define BG_SEAL_MAX_KEYS 64
#define BG_SEAL_MAX_PLAIN (64u << 20) /* larger inputs are refused (-1) */

typedef struct bg_keyring bg_keyring_t;

/** Load every <kid>.key in dir (base64 of 64 bytes = AES-256-SIV key; files must be regular, mode
 *  0600 or stricter, else error), active_kid must exist. 0 and a new keyring in *out (the caller
 *  destroys it), or -1 with a message in err (never key bytes). */
int bg_keyring_load(const char *dir, const char *active_kid, bg_keyring_t **out, char *err, size_t errlen);
/** Wipe the keys (OPENSSL_cleanse) and free the keyring. NULL is ignored. */
void bg_keyring_destroy(bg_keyring_t *k);
/** An empty keyring, for tests and tools; add keys with bg_keyring_add. 0 or -1. */
int bg_keyring_create(bg_keyring_t **out);
/** Add a key (copied; the caller wipes its copy). active: new tokens use it. 0, or -1 (bad kid,
 *  duplicate kid, keyring full). */
int bg_keyring_add(bg_keyring_t *k, const char *kid, const uint8_t key[BG_SEAL_KEY_LEN], bool active);
/** The active key id (borrowed from the keyring), or NULL when none. */
const char *bg_keyring_active(const bg_keyring_t *k);
/** Number of keys loaded. */
size_t bg_keyring_count(const bg_keyring_t *k);

/** Append the token "bgtok:v1:<kid>:<base64url(SIV tag||ciphertext)>" for plain[0..n) to out:
 *  deterministic AES-256-SIV (RFC 5297, OpenSSL 3 "AES-256-SIV") under the active key with the kid
 *  as the one associated-data component. 0, or -1 (no active key, n too large, cipher failure; out
 *  unchanged). */
int bg_seal_token(const bg_keyring_t *k, const void *plain, size_t n, bg_buf_t *out);
/** Open one token (any loaded kid) and append its plaintext to out. 0, or -1 (malformed, unknown
 *  kid, bad base64, authentication failure; out unchanged). */
int bg_seal_open_token(const bg_keyring_t *k, const char *tok, size_t n, bg_buf_t *out);

/** Append the JWE compact serialisation of plain[0..n): protected header
 *  {"alg":"dir","enc":"A256GCM","kid":"<kid>"[,"cty":"<cty>"]} (cty NULL: none), empty encrypted
 *  key, random 96-bit IV, AES-256-GCM with the encoded header as AAD. The GCM key is
 *  HKDF-SHA256(ikm = the kid's 64-byte key, salt = none, info = "bordergate jwe A256GCM v1"),
 *  32 bytes: separate from the SIV use of the same key. 0 or -1 (out unchanged). */
int bg_seal_jwe(const bg_keyring_t *k, const void *plain, size_t n, const char *cty, bg_buf_t *out);
/** Open a JWE made by bg_seal_jwe (any loaded kid) and append the plaintext to out. Rejects any
 *  other alg/enc, "zip", "crit", duplicate header names, a non-empty encrypted key, an IV that is
 *  not 12 bytes or a tag that is not 16. 0 or -1 (out unchanged). */
int bg_seal_open_jwe(const bg_keyring_t *k, const char *jwe, size_t n, bg_buf_t *out);

/* bg_seal_span_t.quote flags */
#define BG_SEAL_QUOTE 1u       /* wrap the token in "" (a JSON number/literal becomes a string) */
#define BG_SEAL_JSON_STRING 2u /* the span is the inside of a JSON string: unescape before sealing, so
                                  "a\u0040b" and "a@b" give the same token */
#define BG_SEAL_PERCENT 4u     /* the span is percent-encoded (query, form): decode %XX and '+' first */
#define BG_SEAL_NOPLUS 8u      /* with BG_SEAL_PERCENT: a path segment, where '+' is a '+', not a space */

typedef struct {
    uint32_t offset, length;
    uint8_t quote; /* BG_SEAL_* flags; 1 alone = wrap the token in "" */
} bg_seal_span_t;

/** Copy in[0..n) to out with each span (sorted, non-overlapping, inside in) replaced by its
 *  token. 0, or -1 (bad spans, malformed escapes, sealing failed; out restored to its length on
 *  entry). The caller wipes `in`; out holds no plaintext of a span. */
int bg_seal_rewrite(const bg_keyring_t *k, const char *in, size_t n, const bg_seal_span_t *spans,
                    size_t nspans, bg_buf_t *out);
/** Copy in[0..n) to out with every well-formed "bgtok:v1:<kid>:<base64url>" token that opens
 *  replaced by its plaintext (JSON-escaped when json is true, for tokens inside JSON strings);
 *  *opened (may be NULL) counts them. Tokens that do not open stay as they are. 0 (always, unless
 *  n is too large: -1). out then holds personal data: dispose it with bg_buf_dispose_secure. */
int bg_seal_reveal(const bg_keyring_t *k, const char *in, size_t n, bool json, bg_buf_t *out, size_t *opened);

#endif
