/*
 * store_targets.c - inbox key sets and out lists for PUT expansion.
 *
 * A group message may reach thousands of devices, and the same device can
 * be named twice (directly and through its user), so membership is a hash
 * lookup rather than a scan of what was gathered so far.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>

#include "store_key.h"
#include "store_targets.h"

/* FNV-1a. Keys come from one PUT, so a flood of collisions costs its sender only. */
static uint32_t key_hash(const uint8_t *key, size_t klen)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < klen; i++) {
		h = (h ^ key[i]) * 16777619u;
	}
	return h ^ (h >> 15);
}

const uint8_t *vt__tset_key(const struct vt__tset *t, uint32_t i, size_t *klen)
{
	*klen = t->off[i + 1] - t->off[i];
	return t->buf + t->off[i];
}

/* Slot of @key: the one holding it, or the empty one where it would go. */
static uint32_t *tset_slot(const struct vt__tset *t, const uint8_t *key, size_t klen)
{
	uint32_t mask = t->nslot - 1;

	for (uint32_t i = key_hash(key, klen) & mask;; i = (i + 1) & mask) {
		size_t len;
		const uint8_t *k;

		if (t->slot[i] == 0) {
			return &t->slot[i];
		}
		k = vt__tset_key(t, t->slot[i] - 1, &len);
		if (len == klen && memcmp(k, key, klen) == 0) {
			return &t->slot[i];
		}
	}
}

/* Keep the hash table at most half full. */
static int tset_rehash(struct vt__tset *t)
{
	uint32_t want = t->nslot ? t->nslot : 16;
	uint32_t *old = t->slot, nold = t->nslot;

	while ((uint64_t)(t->n + 1) * 2 > want) {
		if (want > UINT32_MAX / 4) {
			return VT_ENOMEM;
		}
		want *= 2;
	}
	if (want == t->nslot) {
		return 0;
	}
	t->slot = calloc(want, sizeof(*t->slot));
	if (!t->slot) {
		t->slot = old;
		return VT_ENOMEM;
	}
	t->nslot = want;
	for (uint32_t i = 0; i < nold; i++) {
		if (old[i]) {
			size_t len;
			const uint8_t *k = vt__tset_key(t, old[i] - 1, &len);

			*tset_slot(t, k, len) = old[i];
		}
	}
	free(old);
	return 0;
}

/* Room for one more key of @klen bytes. */
static int tset_grow(struct vt__tset *t, size_t klen)
{
	if (t->n + 1 >= t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 16;
		uint32_t *off = cap > t->cap ? realloc(t->off, (size_t)cap * sizeof(*off)) : NULL;
		uint8_t *tag = off ? realloc(t->tag, cap) : NULL;
		uint32_t *val = tag ? realloc(t->val, (size_t)cap * sizeof(*val)) : NULL;

		if (off) {
			t->off = off;
		}
		if (tag) {
			t->tag = tag;
		}
		if (!val) {
			return VT_ENOMEM;
		}
		t->val = val;
		t->cap = cap;
	}
	if (t->used + klen > t->size) {
		size_t size = t->size ? t->size : 1024;
		uint8_t *buf;

		while (t->used + klen > size) {
			size *= 2;
		}
		buf = size <= UINT32_MAX ? realloc(t->buf, size) : NULL;
		if (!buf) {
			return VT_ENOMEM;
		}
		t->buf = buf;
		t->size = size;
	}
	return tset_rehash(t);
}

int vt__tset_add(struct vt__tset *t, const uint8_t *key, size_t klen, uint8_t tag)
{
	uint32_t *slot;

	if (tset_grow(t, klen) != 0) {
		return VT_ENOMEM;
	}
	if (t->n == 0) {
		t->off[0] = 0;
	}
	slot = tset_slot(t, key, klen);
	if (*slot) {
		return 0;
	}
	memcpy(t->buf + t->used, key, klen);
	t->used += klen;
	t->tag[t->n] = tag;
	t->val[t->n] = 0;
	t->off[++t->n] = (uint32_t)t->used;
	*slot = t->n;
	return 1;
}

/*
 * The table keeps the size of the largest set a PUT made, a group's
 * thousands of devices: the one or two keys of the PUTs after it are
 * cleared one by one, not with the whole table. Their slots are found
 * first and emptied after, as an emptied slot would end the probe of a key
 * placed past it.
 */
void vt__tset_clear(struct vt__tset *t)
{
	if (t->slot && (uint64_t)t->n * 16 < t->nslot) {
		for (uint32_t i = 0; i < t->n; i++) {
			size_t len;
			const uint8_t *k = vt__tset_key(t, i, &len);

			t->val[i] = (uint32_t)(tset_slot(t, k, len) - t->slot);
		}
		for (uint32_t i = 0; i < t->n; i++) {
			t->slot[t->val[i]] = 0;
		}
	} else if (t->slot) {
		memset(t->slot, 0, (size_t)t->nslot * sizeof(*t->slot));
	}
	t->n = 0;
	t->used = 0;
}

void vt__tset_free(struct vt__tset *t)
{
	free(t->buf);
	free(t->off);
	free(t->tag);
	free(t->val);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

struct vt__out *vt__out_new(struct vt__out **chain, uint32_t cap, size_t keybytes)
{
	struct vt__out *o;

	if (cap > (SIZE_MAX - sizeof(*o) - keybytes) / sizeof(o->v[0])) {
		return NULL;
	}
	o = malloc(sizeof(*o) + (size_t)cap * sizeof(o->v[0]) + keybytes);
	if (!o) {
		return NULL;
	}
	o->next = *chain;
	o->n = 0;
	o->cap = cap;
	o->str = (char *)&o->v[cap];
	*chain = o;
	return o;
}

/* A key of klen bytes holds two lengths (4 bytes): room for both NULs. */
void vt__out_push(struct vt__out *o, const uint8_t *key, size_t klen)
{
	size_t ul, dl;

	if (o->n >= o->cap || vt__inbox_key_parse(key, klen, &ul, &dl) != 0) {
		return;
	}
	memcpy(o->str, key + 2, ul);
	o->str[ul] = 0;
	o->v[o->n].user = o->str;
	o->str += ul + 1;
	memcpy(o->str, key + 4 + ul, dl);
	o->str[dl] = 0;
	o->v[o->n].device = o->str;
	o->str += dl + 1;
	o->n++;
}

void vt__out_free(struct vt__out *chain)
{
	while (chain) {
		struct vt__out *next = chain->next;

		free(chain);
		chain = next;
	}
}
