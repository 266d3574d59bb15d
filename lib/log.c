/*
 * log.c - the logging sink of the library.
 *
 * One line per event, handed whole to the sink, so lines from different
 * places never interleave mid-line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "log_limit.h"

static void stderr_sink(enum vt_log_level level, const char *line, void *arg);

static vt_log_fn sink = stderr_sink;
static void *sink_arg;
static enum vt_log_level max_level = VT_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Writes "2026-01-02T03:04:05.678Z level line" to stderr. */
static void stderr_sink(enum vt_log_level level, const char *line, void *arg)
{
	struct timespec ts;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000L, level_names[level],
		line);
}

void vt_log_set(vt_log_fn fn, void *arg, enum vt_log_level level)
{
	sink = fn ? fn : stderr_sink;
	sink_arg = fn ? arg : NULL;
	max_level = level;
}

enum vt_log_level vt_log_level(void)
{
	return max_level;
}

int vt_log_level_parse(const char *s, enum vt_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum vt_log_level)i;
			return 0;
		}
	}
	return VT_EINVAL;
}

void vt_log(enum vt_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level > max_level) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sink(level, line, sink_arg);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vt__log_limited(struct vt__log_limit *l, enum vt_log_level level, const char *fmt, ...)
{
	int64_t now = mono_ms();
	char line[1024];
	va_list ap;
	int n;

	if (level > max_level) {
		return;
	}
	if (l->last_ms != 0 && now - l->last_ms < 1000) {
		l->held++;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (l->held > 0 && n >= 0 && (size_t)n < sizeof(line)) {
		snprintf(line + n, sizeof(line) - (size_t)n,
		         " (and %llu more like it since the last)", (unsigned long long)l->held);
	}
	l->last_ms = now;
	l->held = 0;
	sink(level, line, sink_arg);
}
