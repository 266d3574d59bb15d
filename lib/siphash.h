/*
 * siphash.h - SipHash-2-4, a keyed 64-bit hash of a byte string.
 *
 * Internal. For tables whose keys come from clients: without the key, which
 * stays in the process, nobody can choose keys that fall into one chain.
 */
#ifndef VARTALAP_SIPHASH_H
#define VARTALAP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The hash of the @len bytes at @p under the 128-bit key @k (two words). */
uint64_t vt__siphash(const uint64_t k[2], const void *p, size_t len);

#endif
