/*
 * vartalap/log.h - logging hook of libvartalap.
 *
 * Stable API. The library never writes to stdout or stderr by itself: it hands
 * each log line to a sink. The default sink writes to stderr with the time and
 * level. Lines carry key=value fields; message bodies and tokens are logged only
 * at VT_LOG_DEBUG.
 */
#ifndef VARTALAP_LOG_H
#define VARTALAP_LOG_H

#include <vartalap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vt_log_level {
	VT_LOG_ERROR = 0,
	VT_LOG_WARN = 1,
	VT_LOG_INFO = 2,
	VT_LOG_DEBUG = 3,
};

/*
 * A log sink. @line is NUL-terminated, without a trailing newline, and valid
 * only during the call.
 */
typedef void (*vt_log_fn)(enum vt_log_level level, const char *line, void *arg);

/*
 * Set the process-wide sink and the most verbose level it receives. A NULL
 * @fn restores the default stderr sink. Not thread-safe: call it before any
 * other thread uses the library.
 */
VT_EXPORT void vt_log_set(vt_log_fn fn, void *arg, enum vt_log_level max_level);

/* The current most verbose level. */
VT_EXPORT enum vt_log_level vt_log_level(void);

/* Parse "error", "warn", "info" or "debug"; returns 0 or VT_EINVAL. */
VT_EXPORT int vt_log_level_parse(const char *s, enum vt_log_level *out);

/*
 * Log a printf-style line at @level. Lines longer than 1 KiB are truncated.
 * The sink runs in the calling thread, inside this call; it may be called
 * from any thread that uses the library, so a sink shared by threads locks.
 */
VT_EXPORT void vt_log(enum vt_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif /* VARTALAP_LOG_H */
