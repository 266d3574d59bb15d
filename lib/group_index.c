/*
 * group_index.c - the groups each user belongs to, sorted by group id.
 */
#include <stdlib.h>
#include <string.h>

#include "group_index.h"
#include "groups.h"

void vt_group_index_init(struct vt_group_index *idx)
{
	vt_map_init(&idx->users);
	idx->incomplete = 0;
}

void vt_group_index_clear(struct vt_group_index *idx)
{
	vt_map_free_all(&idx->users);
	idx->incomplete = 0;
}

/* Where @id is in @l, or where it would go: the first slot not before it. */
static uint32_t find(const struct vt_user_groups *l, const char *id, int *found)
{
	uint32_t lo = 0, hi = l->n;

	*found = 0;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->groups[mid]->id, id);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

/* Room in a user's first list: two pointers fit the smallest malloc chunk. */
#define FIRST_CAP 2

/*
 * A copy of @l (NULL: none yet) with twice the room. A copy, not a
 * realloc: the map keeps @l until it takes the copy, which may fail.
 */
static struct vt_user_groups *grown(const struct vt_user_groups *l)
{
	uint32_t cap = l != NULL ? l->cap * 2 : FIRST_CAP;
	struct vt_user_groups *nl = malloc(sizeof(*nl) + (size_t)cap * sizeof(nl->groups[0]));

	if (nl == NULL) {
		return NULL;
	}
	nl->n = l != NULL ? l->n : 0;
	nl->cap = cap;
	if (l != NULL) {
		memcpy(nl->groups, l->groups, l->n * sizeof(l->groups[0]));
	}
	return nl;
}

void vt_group_index_add(struct vt_group_index *idx, const char *user, struct vt_group *g)
{
	struct vt_user_groups *l = vt_map_get(&idx->users, user);
	uint32_t at = 0;
	int found = 0;

	if (l != NULL) {
		at = find(l, g->id, &found);
	}
	if (found) {
		l->groups[at] = g;
		return;
	}
	if (l == NULL || l->n == l->cap) {
		struct vt_user_groups *nl = grown(l);

		if (nl == NULL || vt_map_put(&idx->users, user, nl) != 0) {
			free(nl);
			idx->incomplete = 1;
			return;
		}
		free(l);
		l = nl;
	}
	memmove(&l->groups[at + 1], &l->groups[at], (l->n - at) * sizeof(l->groups[0]));
	l->groups[at] = g;
	l->n++;
}

void vt_group_index_del(struct vt_group_index *idx, const char *user, const struct vt_group *g)
{
	struct vt_user_groups *l = vt_map_get(&idx->users, user);
	uint32_t at;
	int found;

	if (l == NULL) {
		return;
	}
	at = find(l, g->id, &found);
	if (!found || l->groups[at] != g) {
		return;
	}
	l->n--;
	memmove(&l->groups[at], &l->groups[at + 1], (l->n - at) * sizeof(l->groups[0]));
	if (l->n == 0) {
		free(vt_map_del(&idx->users, user));
	}
}

void vt_group_index_add_members(struct vt_group_index *idx, struct vt_group *g)
{
	for (uint32_t i = 0; i < g->n; i++) {
		vt_group_index_add(idx, g->members[i].user, g);
	}
}

void vt_group_index_del_members(struct vt_group_index *idx, const struct vt_group *g)
{
	for (uint32_t i = 0; i < g->n; i++) {
		vt_group_index_del(idx, g->members[i].user, g);
	}
}

const struct vt_user_groups *vt_group_index_get(const struct vt_group_index *idx,
						const char *user)
{
	return vt_map_get(&idx->users, user);
}
