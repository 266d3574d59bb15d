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
