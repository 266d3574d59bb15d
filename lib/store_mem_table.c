/*
 * store_mem_table.c - the hash table of the memory backend.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>

#include "store_mem_table.h"

/* FNV-1a, seeded per table so colliding keys cannot be prepared offline. */
static uint64_t hm_hash(const struct hmap *m, const void *key, size_t klen)
{
	const uint8_t *p = key;
	uint64_t h = 14695981039346656037ULL ^ m->seed;

	for (size_t i = 0; i < klen; i++) {
		h = (h ^ p[i]) * 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

struct hslot *vt__mem_hm_find(const struct hmap *m, const void *key, size_t klen)
{
	uint64_t h;
	size_t mask, i;

	if (m->cap == 0) {
		return NULL;
	}
	h = hm_hash(m, key, klen);
	mask = m->cap - 1;
	for (i = h & mask; m->slots[i].val; i = (i + 1) & mask) {
		struct hslot *s = &m->slots[i];

		if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0) {
			return s;
		}
	}
	return NULL;
}

static void hm_place(struct hslot *slots, size_t cap, const struct hslot *e)
{
	size_t i = e->hash & (cap - 1);

	while (slots[i].val) {
		i = (i + 1) & (cap - 1);
	}
	slots[i] = *e;
}

/* Make room for @extra more keys at a load of at most 3/4. */
int vt__mem_hm_reserve(struct hmap *m, size_t extra)
{
	size_t want = m->cap ? m->cap : 16;
	struct hslot *slots;

	while ((m->len + extra) * 4 > want * 3) {
		if (want > SIZE_MAX / 2 / sizeof(*slots)) {
			return VT_ENOMEM;
		}
		want *= 2;
	}
	if (want == m->cap) {
		return 0;
	}
	slots = calloc(want, sizeof(*slots));
	if (!slots) {
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].val) {
			hm_place(slots, want, &m->slots[i]);
		}
	}
	free(m->slots);
	m->slots = slots;
	m->cap = want;
	return 0;
}

/* Insert a key known to be absent; room was made by hm_reserve. */
void vt__mem_hm_insert(struct hmap *m, const void *key, size_t klen, void *val)
{
	struct hslot e = {hm_hash(m, key, klen), key, klen, val};

	hm_place(m->slots, m->cap, &e);
	m->len++;
}

/* Remove a slot, shifting later members of its run back so lookups hold. */
void vt__mem_hm_remove(struct hmap *m, struct hslot *s)
{
	size_t mask = m->cap - 1;
	size_t i = (size_t)(s - m->slots);
	size_t j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (!m->slots[j].val) {
			break;
		}
		k = m->slots[j].hash & mask;
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].val = NULL;
	m->len--;
}

void *vt__mem_map_get(const struct hmap *h, const void *key, size_t klen)
{
	struct hslot *s = vt__mem_hm_find(h, key, klen);

	return s ? s->val : NULL;
}
