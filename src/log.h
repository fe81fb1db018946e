/*
 * log.h — one line per event on stderr, logfmt (default) or JSON. Callers pass key/value
 * string pairs; values are quoted/escaped here. Never pass a personal-data value.
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef BG_LOG_H
#define BG_LOG_H

typedef enum { BG_LOG_DEBUG = 0, BG_LOG_INFO, BG_LOG_WARN, BG_LOG_ERROR } bg_log_level_t;
typedef enum { BG_LOG_LOGFMT = 0, BG_LOG_JSON } bg_log_format_t;

/** Set the process-wide level and format (call before threads start). */
void bg_log_setup(bg_log_level_t level, bg_log_format_t format);
/** Parse "debug|info|warn|error" into *out; 0 or -1. */
int bg_log_level_parse(const char *s, bg_log_level_t *out);
/** Whether lines at this level are written. */
int bg_log_enabled(bg_log_level_t level);
/** Log msg with NULL-terminated key, value, key, value, ... string pairs. */
void bg_log(bg_log_level_t level, const char *msg, ...);
/** Log a line that reads on its own, such as a config problem "FILE:LINE:COL: message" as
 *  `check` prints it: under logfmt the line as it is (control characters as '?'), under JSON
 *  a line like bg_log's, {"ts":…,"level":…,"msg":msg,key:line}. */
void bg_log_line(bg_log_level_t level, const char *msg, const char *key, const char *line);

#define bg_log_info(msg, ...) bg_log(BG_LOG_INFO, msg, ##__VA_ARGS__, (const char *)0)
#define bg_log_warn(msg, ...) bg_log(BG_LOG_WARN, msg, ##__VA_ARGS__, (const char *)0)
#define bg_log_error(msg, ...) bg_log(BG_LOG_ERROR, msg, ##__VA_ARGS__, (const char *)0)
#define bg_log_debug(msg, ...) do { if (bg_log_enabled(BG_LOG_DEBUG)) bg_log(BG_LOG_DEBUG, msg, ##__VA_ARGS__, (const char *)0); } while (0)

#endif
