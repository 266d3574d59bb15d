/*
 * frontends/cli/seen.c - the server ids of the events printed lately.
 *
 * A ring searched from end to end: a few thousand integer compares per event
 * cost nothing next to printing it, and need no hashing of hostile ids.
 */
#include "seen.h"

/* Server ids are decimal, 1 to 2^53 - 1: anything else gives 0. */
static uint64_t id_value(const char *id)
{
	uint64_t v = 0;
	size_t n = 0;

	for (; id[n] >= '0' && id[n] <= '9'; n++) {
		if (n == 16) {
			return 0;
		}
		v = v * 10 + (uint64_t)(id[n] - '0');
	}
	return id[n] == '\0' ? v : 0;
}

int vt_seen_check(struct vt_seen *s, const char *id)
{
	uint64_t v = id_value(id);

	if (v == 0) {
		return 0;
	}
	for (size_t i = 0; i < s->count; i++) {
		if (s->ids[i] == v) {
			return 1;
		}
	}
	s->ids[s->next] = v;
	s->next = (s->next + 1) % VT_SEEN_MAX;
	if (s->count < VT_SEEN_MAX) {
		s->count++;
	}
	return 0;
}
