/*
 * log.c — see log.h. Level and format are set once at start; lines are assembled in a
 * local buffer and written whole so concurrent workers never interleave.
 */
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static bg_log_level_t log_level = BG_LOG_INFO;
static bg_log_format_t log_format = BG_LOG_LOGFMT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void bg_log_setup(bg_log_level_t level, bg_log_format_t format)
{
    log_level = level;
    log_format = format;
}

int bg_log_level_parse(const char *s, bg_log_level_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) {
            *out = (bg_log_level_t)i;
            return 0;
        }
    return -1;
}

int bg_log_enabled(bg_log_level_t level) { return level >= log_level; }

static void put_logfmt_value(bg_buf_t *b, const char *v)
{
    bool quote = *v == 0;
    for (const char *p = v; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20 || *p == '\\')
            quote = true;
    if (!quote) {
        bg_buf_puts(b, v);
        return;
    }
    bg_buf_append(b, "\"", 1);
    bg_buf_json_escape(b, v, strlen(v));
    bg_buf_append(b, "\"", 1);
}

void bg_log(bg_log_level_t level, const char *msg, ...)
{
    if (level < log_level)
        return;
    char ts[32];
    bg_format_rfc3339_ms(bg_now_ms(), ts);
    bg_buf_t b;
    bg_buf_init(&b);
    if (log_format == BG_LOG_JSON)
        bg_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
    else
        bg_buf_printf(&b, "ts=%s level=%s msg=", ts, level_names[level]);
    if (log_format == BG_LOG_JSON) {
        bg_buf_json_escape(&b, msg, strlen(msg));
        bg_buf_append(&b, "\"", 1);
    } else {
        put_logfmt_value(&b, msg);
    }
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (!v)
            v = "";
        if (log_format == BG_LOG_JSON) {
            bg_buf_append(&b, ",\"", 2);
            bg_buf_json_escape(&b, k, strlen(k));
            bg_buf_append(&b, "\":\"", 3);
            bg_buf_json_escape(&b, v, strlen(v));
            bg_buf_append(&b, "\"", 1);
        } else {
            bg_buf_printf(&b, " %s=", k);
            put_logfmt_value(&b, v);
        }
    }
    va_end(ap);
    bg_buf_puts(&b, log_format == BG_LOG_JSON ? "}\n" : "\n");
    ssize_t r = write(2, b.data, b.len);
    (void)r;
    bg_buf_dispose(&b);
}

void bg_log_line(bg_log_level_t level, const char *msg, const char *key, const char *line)
{
    if (level < log_level)
        return;
    if (log_format == BG_LOG_JSON) {
        bg_log(level, msg, key, line, (const char *)0);
        return;
    }
    /* The documented logfmt form of a config problem is the bare line, as `check` prints it. */
    bg_buf_t b;
    bg_buf_init(&b);
    for (const char *p = line; *p; p++) {
        char ch = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
        bg_buf_append(&b, &ch, 1);
    }
    bg_buf_append(&b, "\n", 1);
    ssize_t r = write(2, b.data, b.len);
    (void)r;
    bg_buf_dispose(&b);
}
