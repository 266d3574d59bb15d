/*
 * frontends/redis/args.c - argument vectors for script calls.
 *
 * Strings are referenced, not copied: the storage contract keeps a batch's
 * ops valid until its callback, which outlives the call. Only numbers are
 * written, into room sized when the vector is made.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

#define NUM_MAX 24 /* "-9223372036854775808" and a NUL fit */

struct vt__rargs *vt__rargs_new(size_t nargs, size_t nnums)
{
	struct vt__rargs *a = calloc(1, sizeof(*a));

	if (!a || nargs > (size_t)INT32_MAX - 3 || nnums > SIZE_MAX / NUM_MAX) {
		free(a);
		return NULL;
	}
	a->cap = (int)nargs + 3;
	a->argc = 3;
	a->argv = calloc((size_t)a->cap, sizeof(*a->argv));
	a->lens = calloc((size_t)a->cap, sizeof(*a->lens));
	a->num_cap = nnums * NUM_MAX;
	a->num = malloc(a->num_cap ? a->num_cap : 1);
	if (!a->argv || !a->lens || !a->num) {
		vt__rargs_free(a);
		return NULL;
	}
	return a;
}

void vt__rargs_add(struct vt__rargs *a, const char *s, size_t len)
{
	if (a->argc >= a->cap) {
		return; /* sized by the caller: cannot happen */
	}
	a->argv[a->argc] = s ? s : "";
	a->lens[a->argc] = s ? len : 0;
	a->argc++;
}

void vt__rargs_str(struct vt__rargs *a, const char *s)
{
	vt__rargs_add(a, s, s ? strlen(s) : 0);
}

/* Room for one number, or NULL (sized by the caller: cannot happen). */
static char *num_room(struct vt__rargs *a)
{
	char *p = a->num + a->num_used;

	if (a->num_cap - a->num_used < NUM_MAX) {
		return NULL;
	}
	a->num_used += NUM_MAX;
	return p;
}

void vt__rargs_i64(struct vt__rargs *a, int64_t v)
{
	char *p = num_room(a);

	if (p) {
		vt__rargs_add(a, p, (size_t)snprintf(p, NUM_MAX, "%" PRId64, v));
	}
}

void vt__rargs_u64(struct vt__rargs *a, uint64_t v)
{
	char *p = num_room(a);

	if (p) {
		vt__rargs_add(a, p, (size_t)snprintf(p, NUM_MAX, "%" PRIu64, v));
	}
}

void vt__rargs_id(struct vt__rargs *a, uint64_t id)
{
	char *p = num_room(a);

	if (p) {
		vt__rargs_add(a, p, (size_t)snprintf(p, NUM_MAX, "%016" PRIx64, id));
	}
}

void vt__rargs_free(struct vt__rargs *a)
{
	if (!a) {
		return;
	}
	free(a->argv);
	free(a->lens);
	free(a->num);
	free(a);
}
