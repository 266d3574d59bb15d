/*
 * vmem.c - memory mapped straight from the kernel (vmem.h).
 */
#include "vmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "pool.h" /* VT_KEEP_FREED: 0 under AddressSanitizer */

#define HUGE_PAGE ((size_t)2 << 20)

void *vt__map_aligned(size_t size, size_t align)
{
	size_t span = size + align;
	char *p, *a;

	if (span < size) {
		return NULL;
	}
	p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		return NULL;
	}

	/* Keep the aligned part inside the span; unmap what is before and after. */
	a = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (a > p) {
		munmap(p, (size_t)(a - p));
	}
	if (a + size < p + span) {
		munmap(a + size, (size_t)(p + span - (a + size)));
	}
	return a;
}

/* Whether a table of @size bytes is mapped (else it is calloc's). */
static int mapped(size_t size)
{
	return VT_KEEP_FREED && size >= HUGE_PAGE;
}

/* @size rounded up to whole huge pages, so that the last one can be huge too. */
static size_t huge_round(size_t size)
{
	return (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

void *vt__table_alloc(size_t size)
{
	void *p;

	if (!mapped(size)) {
		return calloc(1, size);
	}
	if (huge_round(size) < size) {
		return NULL;
	}
	p = vt__map_aligned(huge_round(size), HUGE_PAGE);

#ifdef MADV_HUGEPAGE
	/* Only advice: a kernel without transparent huge pages refuses it. */
	if (p != NULL) {
		(void)madvise(p, huge_round(size), MADV_HUGEPAGE);
	}
#endif
	return p;
}

void vt__table_free(void *p, size_t size)
{
	if (p == NULL) {
		return;
	}
	if (mapped(size)) {
		munmap(p, huge_round(size));
	} else {
		free(p);
	}
}
