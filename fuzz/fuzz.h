/*
 * fuzz/fuzz.h - what every libFuzzer driver here shares.
 *
 * A driver checks properties the code promises, not just the absence of a
 * crash. A broken promise aborts with a message naming it, so libFuzzer
 * saves the input like any other crash.
 */
#ifndef VARTALAP_FUZZ_H
#define VARTALAP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The entry point libFuzzer calls once per input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with @what when @cond is false. */
#define FUZZ_CHECK(cond, what)                                                   \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: broken invariant: %s\n", __FILE__, \
			        __LINE__, (what));                               \
			abort();                                                 \
		}                                                                \
	} while (0)

/* The key every token seed under fuzz/corpus/token/ is signed with. */
#define FUZZ_TOKEN_KEY "vartalap-fuzz-key"

/* A fixed "now" for token checks: 2023-11-14, before every seed's expiry. */
#define FUZZ_NOW 1700000000

#endif /* VARTALAP_FUZZ_H */
