/*
 * map.c - string-keyed hash map with linear probing.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>

#include "map.h"

/* FNV-1a: short keys (user ids), good enough spread, no setup. */
static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

void vt_map_init(struct vt_map *m)
{
	m->slots = NULL;
	m->cap = 0;
	m->len = 0;
}

void vt_map_free(struct vt_map *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->slots[i].key);
	}
	free(m->slots);
	vt_map_init(m);
}

void vt_map_free_all(struct vt_map *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key != NULL) {
			free(m->slots[i].value);
		}
	}
	vt_map_free(m);
}

static size_t find_slot(const struct vt_map *m, const char *key, uint32_t h)
{
	size_t mask = m->cap - 1;
	size_t i = h & mask;

	while (m->slots[i].key != NULL) {
		if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0) {
			break;
		}
		i = (i + 1) & mask;
	}
	return i;
}

void *vt_map_get(const struct vt_map *m, const char *key)
{
	size_t i;

	if (m->cap == 0) {
		return NULL;
	}
	i = find_slot(m, key, hash_str(key));
	return m->slots[i].key != NULL ? m->slots[i].value : NULL;
}

static int grow(struct vt_map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16;
	struct vt_map_slot *old = m->slots;
	size_t ocap = m->cap;

	m->slots = calloc(ncap, sizeof(*m->slots));
	if (m->slots == NULL) {
		m->slots = old;
		return VT_ENOMEM;
	}
	m->cap = ncap;

	/* Keys move, not copied again. */
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].key != NULL) {
			m->slots[find_slot(m, old[i].key, old[i].hash)] = old[i];
		}
	}
	free(old);
	return 0;
}

int vt_map_put(struct vt_map *m, const char *key, void *value)
{
	uint32_t h = hash_str(key);
	size_t i;

	/* Keep the load under 3/4 so probes stay short. */
	if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0) {
		return VT_ENOMEM;
	}

	i = find_slot(m, key, h);
	if (m->slots[i].key == NULL) {
		m->slots[i].key = strdup(key);
		if (m->slots[i].key == NULL) {
			return VT_ENOMEM;
		}
		m->slots[i].hash = h;
		m->len++;
	}
	m->slots[i].value = value;
	return 0;
}

/* Empty slot @i and close the gap its entry leaves. */
static void remove_at(struct vt_map *m, size_t i)
{
	size_t mask = m->cap - 1;
	size_t j;

	free(m->slots[i].key);
	m->slots[i].key = NULL;
	m->slots[i].value = NULL;
	m->len--;

	/*
	 * Backward shift: pull later entries of the probe run into the hole
	 * when their home slot allows it, so no tombstones are needed.
	 */
	for (j = (i + 1) & mask; m->slots[j].key != NULL; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			m->slots[j].key = NULL;
			m->slots[j].value = NULL;
			i = j;
		}
	}
}

void *vt_map_del(struct vt_map *m, const char *key)
{
	size_t i;
	void *value;

	if (m->cap == 0) {
		return NULL;
	}
	i = find_slot(m, key, hash_str(key));
	if (m->slots[i].key == NULL) {
		return NULL;
	}
	value = m->slots[i].value;
	remove_at(m, i);
	return value;
}

void vt_map_filter(struct vt_map *m, int (*keep)(void *value, void *arg), void *arg)
{
	size_t i = 0;

	/* A removal may pull a later entry into slot i: look at it again. */
	while (i < m->cap) {
		if (m->slots[i].key != NULL && !keep(m->slots[i].value, arg)) {
			remove_at(m, i);
		} else {
			i++;
		}
	}
}

int vt_map_incr(struct vt_map *m, const char *key)
{
	uintptr_t n = (uintptr_t)vt_map_get(m, key);

	return vt_map_put(m, key, (void *)(n + 1));
}

void vt_map_decr(struct vt_map *m, const char *key)
{
	size_t i;
	uintptr_t n;

	if (m->cap == 0) {
		return;
	}
	i = find_slot(m, key, hash_str(key));
	if (m->slots[i].key == NULL) {
		return;
	}
	n = (uintptr_t)m->slots[i].value;
	if (n > 1) {
		m->slots[i].value = (void *)(n - 1); /* in place: a put could fail to grow */
	} else {
		vt_map_del(m, key);
	}
}

/* Append the @n bytes at @src, cut to fit, and the NUL. */
static size_t key_put(char *key, size_t cap, size_t len, const char *src, size_t n)
{
	if (len + n >= cap) {
		n = len < cap ? cap - 1 - len : 0;
	}
	memcpy(key + len, src, n);
	len += n;
	key[len] = '\0';
	return len;
}

/* The decimal digits of @v, then @end, into @out; their count. */
static size_t decimal(char *out, uint64_t v, char end)
{
	char tmp[21];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (size_t i = 0; i < n; i++) {
		out[i] = tmp[n - 1 - i];
	}
	out[n] = end;
	return n + 1;
}

size_t vt_key_u64(char *key, size_t cap, size_t len, uint64_t v)
{
	char num[22];

	return key_put(key, cap, len, num, decimal(num, v, ' '));
}

size_t vt_key_str(char *key, size_t cap, size_t len, const char *s)
{
	char num[22];
	size_t n = strlen(s);

	len = key_put(key, cap, len, num, decimal(num, n, ':'));
	return key_put(key, cap, len, s, n);
}
