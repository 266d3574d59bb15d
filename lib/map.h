/*
 * map.h - a hash map from strings to pointers.
 *
 * Internal. Keys are copied into the entry; values are owned by the caller.
 * Open addressing with linear probing and tombstone-free deletion (backward
 * shift), so lookups stay short however many deletions happen.
 */
#ifndef VARTALAP_MAP_H
#define VARTALAP_MAP_H

#include <stddef.h>
#include <stdint.h>

struct vt_map_slot {
	char *key;   /* NULL: empty */
	uint32_t hash;
	void *value;
};

struct vt_map {
	struct vt_map_slot *slots;
	size_t cap;  /* a power of two, or 0 */
	size_t len;
};

void vt_map_init(struct vt_map *m);

/* Free the table and the copied keys (not the values). */
void vt_map_free(struct vt_map *m);

/* As vt_map_free, and free() every value too: for values of one malloc each. */
void vt_map_free_all(struct vt_map *m);

/* The value stored under @key, or NULL. */
void *vt_map_get(const struct vt_map *m, const char *key);

/*
 * A counted set: the value under @key is a count in the pointer, absent
 * when 0. vt_map_incr adds one (0, or VT_ENOMEM and nothing changed);
 * vt_map_decr takes one away, never allocating, and removes the key at 0.
 */
int vt_map_incr(struct vt_map *m, const char *key);
void vt_map_decr(struct vt_map *m, const char *key);

/* Store @value under @key, replacing any older value. 0 or VT_ENOMEM. */
int vt_map_put(struct vt_map *m, const char *key, void *value);

/* Remove @key; returns its value, or NULL when absent. */
void *vt_map_del(struct vt_map *m, const char *key);

/*
 * Remove every entry for which @keep(value, @arg) returns 0; @keep frees
 * what the value owns. Never allocates. An entry moved by a removal may be
 * shown to @keep twice, so it must answer the same for the same entry.
 */
void vt_map_filter(struct vt_map *m, int (*keep)(void *value, void *arg), void *arg);

/*
 * Keys of several parts. Each appends to the NUL-terminated key of @len
 * bytes in @key (room for @cap with its NUL) and returns the new length,
 * cut to fit. A string goes in as "<length>:<bytes>", so no two lists of
 * parts make the same key whatever bytes they hold; a number as its
 * decimal digits and a space.
 */
size_t vt_key_str(char *key, size_t cap, size_t len, const char *s);
size_t vt_key_u64(char *key, size_t cap, size_t len, uint64_t v);

#endif /* VARTALAP_MAP_H */
