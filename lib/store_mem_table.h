/*
 * store_mem_table.h - the hash table of the memory backend.
 *
 * Internal. Byte keys owned by the values, open addressing; the caller
 * zero-initializes a table and sets its seed.
 */
#ifndef VARTALAP_STORE_MEM_TABLE_H
#define VARTALAP_STORE_MEM_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct hslot {
	uint64_t hash;
	const void *key;
	size_t klen;
	void *val; /* NULL: empty slot */
};

struct hmap {
	struct hslot *slots;
	size_t cap; /* power of two, or 0 */
	size_t len;
	uint64_t seed;
};

struct hslot *vt__mem_hm_find(const struct hmap *m, const void *key, size_t klen);
int vt__mem_hm_reserve(struct hmap *m, size_t extra);
void vt__mem_hm_insert(struct hmap *m, const void *key, size_t klen, void *val);
void vt__mem_hm_remove(struct hmap *m, struct hslot *s);
void *vt__mem_map_get(const struct hmap *h, const void *key, size_t klen);

#endif
