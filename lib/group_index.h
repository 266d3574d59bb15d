/*
 * group_index.h - the groups each user belongs to.
 *
 * Internal. For every user who is a member of at least one group, the
 * groups it belongs to, sorted by group id: a user's groups are found at the
 * cost of those groups alone, however many groups the node holds. Entries
 * point at the struct vt_group the group table holds; groups.c keeps them in
 * step with every change of membership, and takes a group's entries out
 * before it frees the group.
 *
 * Memory: a user's first group costs about 110 bytes on glibc (the copied
 * user id, its list, its slot in the map); each further group a pointer.
 * A group of 1,000 members none of whom is in another group takes about
 * 190 KB with its entries, 80 KB without.
 *
 * Taking an entry out never allocates. Putting one in may fail for want of
 * memory: the index is then marked incomplete, and must be rebuilt whole
 * before it is read again (see vt_groups_of).
 */
#ifndef VARTALAP_GROUP_INDEX_H
#define VARTALAP_GROUP_INDEX_H

#include <stdint.h>

#include "map.h"

struct vt_group;

struct vt_group_index {
	struct vt_map users;  /* user id -> struct vt_user_groups * */
	int incomplete;       /* an entry could not be put in */
};

/* One user's groups, in one allocation. */
struct vt_user_groups {
	uint32_t n, cap;
	struct vt_group *groups[]; /* sorted by id */
};

void vt_group_index_init(struct vt_group_index *idx);

/* Forget every entry (the groups are not touched); the index is complete. */
void vt_group_index_clear(struct vt_group_index *idx);

/* Note that @user belongs to @g; once only. Out of memory: incomplete. */
void vt_group_index_add(struct vt_group_index *idx, const char *user, struct vt_group *g);

/* Note that @user no longer belongs to @g (nothing when not noted). */
void vt_group_index_del(struct vt_group_index *idx, const char *user, const struct vt_group *g);

/* vt_group_index_add, then vt_group_index_del, for every member of @g. */
void vt_group_index_add_members(struct vt_group_index *idx, struct vt_group *g);
void vt_group_index_del_members(struct vt_group_index *idx, const struct vt_group *g);

/* @user's groups as noted, or NULL for none. Valid until the next change. */
const struct vt_user_groups *vt_group_index_get(const struct vt_group_index *idx,
						const char *user);

#endif /* VARTALAP_GROUP_INDEX_H */
