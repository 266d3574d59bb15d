/*
 * log_limit.h - log lines that a flood of requests could repeat without end
 * (every send refused by a full store, say), at most one a second.
 */
#ifndef VARTALAP_LOG_LIMIT_H
#define VARTALAP_LOG_LIMIT_H

#include <stdint.h>

#include <vartalap/log.h>

/* One kind of line: when it was last written, and how many were held back since. */
struct vt__log_limit {
	int64_t last_ms; /* monotonic; 0: never */
	uint64_t held;
};

/*
 * vt_log(), unless a line of this kind went out less than a second ago:
 * then it is only counted, and the next line that goes out says how many
 * were held back. Use one limit from one thread.
 */
void vt__log_limited(struct vt__log_limit *l, enum vt_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
