/*
 * siphash.c - SipHash-2-4 (Aumasson and Bernstein, 2012): two rounds per
 * eight-byte word of input, four to finish.
 */
#include "siphash.h"

static inline uint64_t rotl(uint64_t x, unsigned b)
{
	return x << b | x >> (64 - b);
}

/* A little-endian word from @n (at most 8) bytes at @p. */
static inline uint64_t le_word(const uint8_t *p, size_t n)
{
	uint64_t w = 0;

	for (size_t i = n; i > 0; i--) {
		w = w << 8 | p[i - 1];
	}
	return w;
}

struct sip {
	uint64_t v0, v1, v2, v3;
};

static void rounds(struct sip *s, int n)
{
	for (int i = 0; i < n; i++) {
		s->v0 += s->v1;
		s->v1 = rotl(s->v1, 13) ^ s->v0;
		s->v0 = rotl(s->v0, 32);
		s->v2 += s->v3;
		s->v3 = rotl(s->v3, 16) ^ s->v2;
		s->v0 += s->v3;
		s->v3 = rotl(s->v3, 21) ^ s->v0;
		s->v2 += s->v1;
		s->v1 = rotl(s->v1, 17) ^ s->v2;
		s->v2 = rotl(s->v2, 32);
	}
}

static void absorb(struct sip *s, uint64_t m)
{
	s->v3 ^= m;
	rounds(s, 2);
	s->v0 ^= m;
}

uint64_t vt__siphash(const uint64_t k[2], const void *p, size_t len)
{
	const uint8_t *b = p;
	struct sip s = {
	        k[0] ^ 0x736f6d6570736575ull,
	        k[1] ^ 0x646f72616e646f6dull,
	        k[0] ^ 0x6c7967656e657261ull,
	        k[1] ^ 0x7465646279746573ull,
	};
	size_t whole = len & ~(size_t)7;

	for (size_t i = 0; i < whole; i += 8) {
		absorb(&s, le_word(b + i, 8));
	}

	/* the last bytes, with the length's low byte on top */
	absorb(&s, le_word(b + whole, len - whole) | (uint64_t)(len & 0xff) << 56);

	s.v2 ^= 0xff;
	rounds(&s, 4);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}
