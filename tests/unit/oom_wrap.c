/*
 * oom_wrap.c - allocations that fail on demand (oom_wrap.h).
 */
#include "oom_wrap.h"

#include <stddef.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static long fail_at = -1; /* the allocation to fail, counted from arming; -1: none */
static long allocs;       /* allocations since arming */

void oom_arm(long k)
{
	fail_at = k;
	allocs = 0;
}

int oom_disarm(void)
{
	int fired = fail_at >= 0 && allocs > fail_at;

	fail_at = -1;
	return fired;
}

static int fail_now(void)
{
	return fail_at >= 0 && allocs++ == fail_at;
}

void *__wrap_malloc(size_t size)
{
	return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return fail_now() ? NULL : __real_realloc(p, size);
}
