/*
 * oom_wrap.h - allocations that fail on demand, for tests of running out
 * of memory.
 *
 * A test executable linked with oom_wrap.c and ld's --wrap for malloc,
 * calloc and realloc sends every allocation (its library's included)
 * through wrappers that fail the k-th one after oom_arm(k).
 */
#ifndef VARTALAP_TEST_OOM_WRAP_H
#define VARTALAP_TEST_OOM_WRAP_H

/* Fail the @k-th allocation from now (0: the next one), once. */
void oom_arm(long k);

/*
 * Disarm; nonzero when the armed allocation came and failed. Check's own
 * assertions allocate too, so none may run while armed.
 */
int oom_disarm(void);

#endif
