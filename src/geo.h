/*
 * geo.h — destination geolocation: the country of an IP address, from the config's CIDR
 * overrides (most specific wins) and then a MaxMind-format database (libmaxminddb, mmap'd).
 * Schemas: GeoIP2/GeoLite2/DB-IP MMDB (`country.iso_code`, optional `registered_country`
 * fallback) and ip-location-db (`country_code`). An address with no country is "" (unknown):
 * the policy treats it as a third country with no basis (fail closed).
 * A bg_geo_t is opened on the main thread and then read-only, shared by every worker; a
 * bg_geo_cache_t belongs to one worker loop.
 */
#ifndef BG_GEO_H
#define BG_GEO_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct bg_geo bg_geo_t; /* an open database, read-only, shared by all workers */

/** Open PATH (MMDB_MODE_MMAP) and settle the schema: AUTO reads the metadata database_type
 *  (GeoIP2-*, GeoLite2-* → country.iso_code; ip-location-db "country ipv4|ipv6|ipvAll" →
 *  country_code; anything else, DB-IP's own "DBIP-Country-Lite" included, tries both,
 *  iso_code first). registered_fallback: use registered_country.iso_code when country is
 *  absent (MaxMind layout only).
 *  Returns 0 and a handle in *out (free with bg_geo_close), or -1 with *out NULL and a one-line
 *  message in err (missing, empty, corrupt or unsupported file); never crashes on a bad file.
 *  Replace a database by rename, never in place: a mapped file truncated under us can SIGBUS. */
int bg_geo_open(const char *path, bg_geo_schema_t schema, bool registered_fallback, bg_geo_t **out,
                char *err, size_t errlen);
/** Drop a reference (bg_geo_open returns one); the last one unmaps and frees. NULL is ignored.
 *  Thread-safe; no lookup may still be running on the handle when its last reference goes. */
void bg_geo_close(bg_geo_t *geo);
/** Take another reference (e.g. one per config snapshot or worker across a SIGHUP reopen).
 *  Returns geo. Thread-safe. */
bg_geo_t *bg_geo_retain(bg_geo_t *geo);

/** Country of an address (AF_INET, AF_INET6; IPv4-mapped IPv6 is treated as IPv4): overrides
 *  first (the most specific matching CIDR wins), then the database. Writes "XX\0" (upper case)
 *  or "" (unknown) into country[3]. Returns 0 (known) or 1 (unknown; also for a NULL or
 *  unsupported sockaddr and for database errors). geo may be NULL (overrides only).
 *  Thread-safe; allocates nothing. */
int bg_geo_lookup(const bg_geo_t *geo, const bg_geo_override_t *ov, size_t nov,
                  const struct sockaddr *sa, char country[3]);

/** The metadata build_epoch (Unix seconds); 0 when geo is NULL. */
int64_t bg_geo_build_epoch(const bg_geo_t *geo);
/** The metadata database_type (owned by geo, valid until bg_geo_close); "" when geo is NULL. */
const char *bg_geo_database_type(const bg_geo_t *geo);
/** The schema in use after detection: MAXMIND, DBIP, or AUTO (unrecognised type: both tried). */
bg_geo_schema_t bg_geo_schema(const bg_geo_t *geo);
/** Metadata ip_version (4 or 6); 0 when geo is NULL. */
int bg_geo_ip_version(const bg_geo_t *geo);
/** Metadata node_count; 0 when geo is NULL. */
uint32_t bg_geo_node_count(const bg_geo_t *geo);
/** Whole days from the build epoch to now_s (floor; negative when built in the future);
 *  -1 when geo is NULL. `check` warns when this exceeds 60. */
int bg_geo_age_days(const bg_geo_t *geo, int64_t now_s);

/** Parse an IPv4 or IPv6 literal (no port, no brackets) into *out. 0, or -1 when not an address.
 *  For `explain --address` and tools. */
int bg_geo_parse_addr(const char *text, struct sockaddr_storage *out);

/* A small per-worker cache in front of bg_geo_lookup: two-way set associative; results (known
 * and unknown) stay until a colliding address evicts them (the least recently used of the set)
 * or the cache is cleared. Not thread-safe: one per worker loop. It remembers the (geo, ov,
 * nov) it was filled with and flushes itself when a call passes others; still call
 * bg_geo_cache_clear after a reload (a freed handle's address can be reused). Size it at
 * several times the number of distinct vendor addresses (e.g. 4096). */
typedef struct bg_geo_cache bg_geo_cache_t;

/** Create a cache of at least `entries` slots (rounded up to a power of two, 16..2^24).
 *  Returns NULL only when entries is 0; allocation failure aborts (data-plane rule). */
bg_geo_cache_t *bg_geo_cache_create(size_t entries);
/** Free the cache. NULL is ignored. */
void bg_geo_cache_destroy(bg_geo_cache_t *c);
/** Forget every entry (after a config or database reload). */
void bg_geo_cache_clear(bg_geo_cache_t *c);
/** bg_geo_lookup through the cache: same arguments, results and return values. c may be NULL
 *  (no caching). */
int bg_geo_cache_lookup(bg_geo_cache_t *c, const bg_geo_t *geo, const bg_geo_override_t *ov, size_t nov,
                        const struct sockaddr *sa, char country[3]);
/** Hit and miss counters since creation (either pointer may be NULL), for /metrics. */
void bg_geo_cache_stats(const bg_geo_cache_t *c, uint64_t *hits, uint64_t *misses);

#endif
