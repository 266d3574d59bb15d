/*
 * groups.h - group state and the rules of changing it.
 *
 * Internal. Every group lives in memory (loaded whole at start) and in
 * storage as a blob the engine writes in the same batch as the event that
 * announces each change. The rules live here, once, for every backend:
 * only members post, only admins add, remove, rename or promote; any member
 * may leave; when the last admin leaves, the longest-standing member
 * becomes admin; a group with no members is deleted.
 */
#ifndef VARTALAP_GROUPS_H
#define VARTALAP_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/token.h>

#include "buf.h"
#include "envelope.h"
#include "group_index.h"
#include "map.h"

struct vt_member {
	char user[VT_ID_MAX + 1];
	uint32_t admin;
};

/*
 * How many recent changes a group remembers, so a re-sent change is answered
 * again rather than applied twice, also after a restart.
 */
#define VT_GROUP_RECENT 32

/* A change that was accepted: who sent it, its client id, its server id. */
struct vt_group_op {
	char user[VT_ID_MAX + 1];
	char cid[VT_ID_MAX + 1];
	uint64_t id;
};

struct vt_group {
	char id[VT_TO_MAX + 1];        /* "g:<id>" */
	char *name;
	char creator[VT_ID_MAX + 1];
	char create_cid[VT_ID_MAX + 1]; /* so a retried create is answered again */
	uint64_t create_id;
	/* The id of the change that made this state; a store shared by
	 * several nodes refuses a write derived from another version. */
	uint64_t version;
	/* Changes made so far, 1 for the creation. The version check makes the
	 * committed changes one line, so of two states the higher seq is the
	 * later one (versions are ids, which are not ordered across nodes). 0
	 * in a state stored before it was kept. */
	uint64_t seq;
	struct vt_member *members;     /* in joining order */
	uint32_t n, cap;
	struct vt_group_op recent[VT_GROUP_RECENT]; /* a ring, oldest overwritten */
	uint32_t nrecent, recent_next;
	int deleted;                   /* no members left: kept to answer re-sends */
};

struct vt_group_limits {
	uint32_t max_members;
	uint32_t max_name;       /* bytes */
	uint32_t max_per_update; /* users named in one create or update */
};

/* A change asked for by a group envelope, parsed and checked. */
struct vt_group_change {
	enum vt_env_type op;
	const char *name;        /* new name, or NULL (points into @names) */
	char (*add)[VT_ID_MAX + 1];
	uint32_t nadd;
	char (*remove)[VT_ID_MAX + 1];
	uint32_t nremove;
	char (*admins)[VT_ID_MAX + 1];
	uint32_t nadmins;
	char names[512];         /* storage for the decoded name */
};

/* The group table: id -> struct vt_group *, and who belongs to which. */
struct vt_groups {
	struct vt_map map;
	struct vt_group_index by_user;
};

void vt_groups_init(struct vt_groups *gs);
void vt_groups_free(struct vt_groups *gs);
struct vt_group *vt_groups_find(struct vt_groups *gs, const char *id);

/*
 * The groups @user belongs to, sorted by id, in *@list (n in *@n; *@list
 * NULL when none), valid until the next change. 0, or VT_ENOMEM when the
 * index missed an entry for want of memory and cannot be rebuilt yet.
 */
int vt_groups_of(struct vt_groups *gs, const char *user, struct vt_group *const **list,
		 uint32_t *n);

/* Load one stored blob (from storage's load_groups); 0 or a vt_error. */
int vt_groups_load(struct vt_groups *gs, const char *id, const char *data, size_t len);

/*
 * As vt_groups_load, but not over a later state (a higher seq) than
 * @data: news from other nodes may arrive out of order, and an older state
 * must not replace a newer one. A state without a seq always loads.
 * Returns 1 when @data was loaded, 0 when memory kept its own, or a
 * vt_error.
 */
int vt_groups_load_newer(struct vt_groups *gs, const char *id, const char *data, size_t len);

/* The server id of @user's change @cid if @g remembers it, else 0. */
uint64_t vt_group_recent_find(const struct vt_group *g, const char *user, const char *cid);

/* Remember @user's change @cid, accepted as @id. */
void vt_group_recent_add(struct vt_group *g, const char *user, const char *cid, uint64_t id);

/* The member record of @user, or NULL. */
struct vt_member *vt_group_member(struct vt_group *g, const char *user);

/*
 * Parse the body of a group envelope of type @op into @ch (freed with
 * vt_group_change_free). Checks shape and limits, not permissions.
 */
int vt_group_change_parse(enum vt_env_type op, const char *body, size_t len,
			  const struct vt_group_limits *lim, struct vt_group_change *ch,
			  const char **reason);
void vt_group_change_free(struct vt_group_change *ch);

/*
 * Apply @ch by @actor to @g (NULL or a deleted group for a create: the
 * group is made and added to @gs, keeping what a deleted one remembered;
 * *@gp receives it). Checks permissions and limits; on error
 * nothing changed. @removed receives users who were members and no longer
 * are (room for ch->nremove + 1). Returns 0 or a vt_error.
 */
int vt_group_apply(struct vt_groups *gs, struct vt_group **gp, const char *id,
		   const char *actor, const struct vt_group_change *ch,
		   const struct vt_group_limits *lim, char (*removed)[VT_ID_MAX + 1],
		   uint32_t *nremoved, const char **reason);

/* Remove @g from @gs and free it. */
void vt_groups_delete(struct vt_groups *gs, struct vt_group *g);

/* The blob stored for @g: its whole state as JSON. */
void vt_group_encode_state(struct vt_buf *b, const struct vt_group *g);

/*
 * The body of the event that announces a change: the op, who made it, the
 * whole new state (name, members, admins) and who was added and removed.
 */
void vt_group_encode_event(struct vt_buf *b, const struct vt_group *g, const char *actor,
			   const struct vt_group_change *ch, char (*removed)[VT_ID_MAX + 1],
			   uint32_t nremoved);

/* {"id":"g:..","name":..,"members":[..],"admins":[..]} for the REST read. */
void vt_group_encode_info(struct vt_buf *b, const struct vt_group *g);

#endif /* VARTALAP_GROUPS_H */
