/*
 * groups.c - group state, its rules, and its JSON forms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "groups.h"
#include "json.h"

void vt_groups_init(struct vt_groups *gs)
{
	vt_map_init(&gs->map);
	vt_group_index_init(&gs->by_user);
}

static void group_free(struct vt_group *g)
{
	if (g != NULL) {
		free(g->name);
		free(g->members);
		free(g);
	}
}

void vt_groups_free(struct vt_groups *gs)
{
	for (size_t i = 0; i < gs->map.cap; i++) {
		if (gs->map.slots[i].key != NULL) {
			group_free(gs->map.slots[i].value);
		}
	}
	vt_map_free(&gs->map);
	vt_group_index_clear(&gs->by_user);
}

struct vt_group *vt_groups_find(struct vt_groups *gs, const char *id)
{
	return vt_map_get(&gs->map, id);
}

void vt_groups_delete(struct vt_groups *gs, struct vt_group *g)
{
	vt_group_index_del_members(&gs->by_user, g);
	vt_map_del(&gs->map, g->id);
	group_free(g);
}

/* Index every member of every group anew. */
static void reindex(struct vt_groups *gs)
{
	vt_group_index_clear(&gs->by_user);
	for (size_t i = 0; i < gs->map.cap; i++) {
		if (gs->map.slots[i].key != NULL) {
			vt_group_index_add_members(&gs->by_user, gs->map.slots[i].value);
		}
	}
}

int vt_groups_of(struct vt_groups *gs, const char *user, struct vt_group *const **list,
		 uint32_t *n)
{
	const struct vt_user_groups *l;

	if (gs->by_user.incomplete) {
		reindex(gs);
	}
	if (gs->by_user.incomplete) {
		return VT_ENOMEM;
	}
	l = vt_group_index_get(&gs->by_user, user);
	*list = l != NULL ? l->groups : NULL;
	*n = l != NULL ? l->n : 0;
	return 0;
}

uint64_t vt_group_recent_find(const struct vt_group *g, const char *user, const char *cid)
{
	for (uint32_t i = 0; i < g->nrecent; i++) {
		const struct vt_group_op *op = &g->recent[i];

		if (strcmp(op->user, user) == 0 && strcmp(op->cid, cid) == 0) {
			return op->id;
		}
	}
	return 0;
}

void vt_group_recent_add(struct vt_group *g, const char *user, const char *cid, uint64_t id)
{
	struct vt_group_op *op = &g->recent[g->recent_next];

	snprintf(op->user, sizeof(op->user), "%s", user);
	snprintf(op->cid, sizeof(op->cid), "%s", cid);
	op->id = id;
	g->recent_next = (g->recent_next + 1) % VT_GROUP_RECENT;
	if (g->nrecent < VT_GROUP_RECENT) {
		g->nrecent++;
	}
}

struct vt_member *vt_group_member(struct vt_group *g, const char *user)
{
	for (uint32_t i = 0; i < g->n; i++) {
		if (strcmp(g->members[i].user, user) == 0) {
			return &g->members[i];
		}
	}
	return NULL;
}

static int member_add(struct vt_group *g, const char *user, uint32_t admin)
{
	if (g->n == g->cap) {
		uint32_t ncap = g->cap ? g->cap * 2 : 8;
		struct vt_member *m = realloc(g->members, ncap * sizeof(*m));

		if (m == NULL) {
			return VT_ENOMEM;
		}
		g->members = m;
		g->cap = ncap;
	}
	snprintf(g->members[g->n].user, sizeof(g->members[g->n].user), "%s", user);
	g->members[g->n].admin = admin;
	g->n++;
	return 0;
}

static void member_remove(struct vt_group *g, struct vt_member *m)
{
	size_t i = (size_t)(m - g->members);

	/* Keep joining order: the oldest member inherits the admin role. */
	memmove(&g->members[i], &g->members[i + 1], (g->n - i - 1) * sizeof(*m));
	g->n--;
}

static struct vt_group *group_new(const char *id)
{
	struct vt_group *g = calloc(1, sizeof(*g));

	if (g != NULL) {
		snprintf(g->id, sizeof(g->id), "%s", id);
	}
	return g;
}

/* ---- parsing ---------------------------------------------------------- */

/* Read an array of user ids into a fresh array; rejects duplicates. */
static int parse_users(const struct vt_json_val *arr, uint32_t max, char (**out)[VT_ID_MAX + 1],
		       uint32_t *n, const char **reason, const char *what)
{
	struct vt_json_val v;
	size_t pos = 0;
	char(*list)[VT_ID_MAX + 1];

	if (arr->type != VT_JSON_ARRAY) {
		*reason = what;
		return VT_EBADENV;
	}
	list = calloc(max ? max : 1, sizeof(*list));
	if (list == NULL) {
		return VT_ENOMEM;
	}
	*out = list;
	*n = 0;
	while (vt_json_next_elem(arr, &pos, &v)) {
		int len;

		if (*n == max) {
			*reason = "too many users in one change";
			return VT_ELIMIT;
		}
		if (v.type != VT_JSON_STRING ||
		    (len = vt_json_str_decode(&v, list[*n], sizeof(list[0]))) < 0 ||
		    !vt_user_id_valid(list[*n], (size_t)len)) {
			*reason = what;
			return VT_EBADENV;
		}
		for (uint32_t k = 0; k < *n; k++) {
			if (strcmp(list[k], list[*n]) == 0) {
				*reason = "a user is named twice";
				return VT_EBADENV;
			}
		}
		(*n)++;
	}
	return 0;
}

static int parse_name(const struct vt_json_val *v, const struct vt_group_limits *lim,
		      struct vt_group_change *ch, const char **reason)
{
	int len;

	if (v->type != VT_JSON_STRING) {
		*reason = "name: not a string";
		return VT_EBADENV;
	}
	len = vt_json_str_decode(v, ch->names, sizeof(ch->names));
	if (len == VT_ETOOBIG || (len >= 0 && (uint32_t)len > lim->max_name)) {
		*reason = "name: too long";
		return VT_ELIMIT;
	}
	if (len <= 0) {
		*reason = "name: empty or invalid";
		return VT_EBADENV;
	}
	ch->name = ch->names;
	return 0;
}

/* One member of a group envelope's body. */
static int parse_member(const struct vt_json_val *key, const struct vt_json_val *val,
			const struct vt_group_limits *lim, struct vt_group_change *ch,
			const char **reason)
{
	int create = ch->op == VT_ENV_GROUP_CREATE;

	if (vt_json_key_is(key, "name")) {
		return parse_name(val, lim, ch, reason);
	}
	if (vt_json_key_is(key, create ? "members" : "add")) {
		return parse_users(val, lim->max_per_update, &ch->add, &ch->nadd, reason,
				   create ? "members: not a list of user ids"
					  : "add: not a list of user ids");
	}
	if (!create && vt_json_key_is(key, "remove")) {
		return parse_users(val, lim->max_per_update, &ch->remove, &ch->nremove, reason,
				   "remove: not a list of user ids");
	}
	if (!create && vt_json_key_is(key, "admins")) {
		return parse_users(val, lim->max_per_update, &ch->admins, &ch->nadmins, reason,
				   "admins: not a list of user ids");
	}
	return 0;
}

int vt_group_change_parse(enum vt_env_type op, const char *body, size_t len,
			  const struct vt_group_limits *lim, struct vt_group_change *ch,
			  const char **reason)
{
	struct vt_json_val obj, key, val;
	size_t pos = 0;
	int rc;

	memset(ch, 0, sizeof(*ch));
	ch->op = op;
	if (op == VT_ENV_GROUP_LEAVE) {
		return 0;
	}
	if (vt_json_parse_value(body, len, &obj) != 0 || obj.type != VT_JSON_OBJECT) {
		*reason = "body: not an object";
		return VT_EBADENV;
	}
	while (vt_json_next_member(&obj, &pos, &key, &val)) {
		rc = parse_member(&key, &val, lim, ch, reason);
		if (rc != 0) {
			return rc;
		}
	}
	if (op == VT_ENV_GROUP_CREATE && ch->name == NULL) {
		*reason = "missing field: name";
		return VT_EBADENV;
	}
	return 0;
}

void vt_group_change_free(struct vt_group_change *ch)
{
	free(ch->add);
	free(ch->remove);
	free(ch->admins);
	memset(ch, 0, sizeof(*ch));
}

/* ---- rules ------------------------------------------------------------ */

static int set_name(struct vt_group *g, const char *name)
{
	char *copy = strdup(name);

	if (copy == NULL) {
		return VT_ENOMEM;
	}
	free(g->name);
	g->name = copy;
	return 0;
}

static int apply_create(struct vt_groups *gs, struct vt_group **gp, const char *id,
			const char *actor, const struct vt_group_change *ch,
			const struct vt_group_limits *lim, const char **reason)
{
	struct vt_group *g;
	int rc;

	if (ch->nadd + 1 > lim->max_members) {
		*reason = "too many members";
		return VT_ELIMIT;
	}
	g = group_new(id);
	if (g == NULL) {
		return VT_ENOMEM;
	}
	if (*gp != NULL) {
		/* A deleted group's id is taken again: keep what it remembers. */
		memcpy(g->recent, (*gp)->recent, sizeof(g->recent));
		g->nrecent = (*gp)->nrecent;
		g->recent_next = (*gp)->recent_next;
	}
	snprintf(g->creator, sizeof(g->creator), "%s", actor);
	rc = set_name(g, ch->name);
	if (rc == 0) {
		rc = member_add(g, actor, 1);
	}
	for (uint32_t i = 0; rc == 0 && i < ch->nadd; i++) {
		if (strcmp(ch->add[i], actor) != 0) {
			rc = member_add(g, ch->add[i], 0);
		}
	}
	if (rc == 0) {
		rc = vt_map_put(&gs->map, g->id, g);
	}
	if (rc != 0) {
		group_free(g);
		return rc;
	}
	if (*gp != NULL) {
		vt_group_index_del_members(&gs->by_user, *gp);
	}
	vt_group_index_add_members(&gs->by_user, g);
	group_free(*gp);
	*gp = g;
	return 0;
}

/* Would the change leave the group within its size limit? */
static int fits(const struct vt_group *g, const struct vt_group_change *ch,
		const struct vt_group_limits *lim)
{
	uint32_t n = g->n;

	for (uint32_t i = 0; i < ch->nadd; i++) {
		n += vt_group_member((struct vt_group *)g, ch->add[i]) == NULL;
	}
	return n <= lim->max_members;
}

static int check_update(struct vt_group *g, const char *actor, const struct vt_group_change *ch,
			const struct vt_group_limits *lim, const char **reason)
{
	struct vt_member *me = vt_group_member(g, actor);

	if (me == NULL) {
		*reason = "not a member of this group";
		return VT_EFORBIDDEN;
	}
	if (!me->admin) {
		*reason = "only admins change a group";
		return VT_EFORBIDDEN;
	}
	for (uint32_t i = 0; i < ch->nadmins; i++) {
		int named = vt_group_member(g, ch->admins[i]) != NULL;

		for (uint32_t k = 0; k < ch->nadd; k++) {
			named |= strcmp(ch->add[k], ch->admins[i]) == 0;
		}
		if (!named) {
			*reason = "admins: not a member";
			return VT_EBADENV;
		}
	}
	if (!fits(g, ch, lim)) {
		*reason = "too many members";
		return VT_ELIMIT;
	}
	return 0;
}

/* Remove @user if a member, noting it in @removed. */
static void drop(struct vt_groups *gs, struct vt_group *g, const char *user,
		 char (*removed)[VT_ID_MAX + 1], uint32_t *nremoved)
{
	struct vt_member *m = vt_group_member(g, user);

	if (m != NULL) {
		vt_group_index_del(&gs->by_user, user, g);
		member_remove(g, m);
		snprintf(removed[*nremoved], sizeof(removed[0]), "%s", user);
		(*nremoved)++;
	}
}

/* A group always has an admin while it has members. */
static void keep_an_admin(struct vt_group *g)
{
	for (uint32_t i = 0; i < g->n; i++) {
		if (g->members[i].admin) {
			return;
		}
	}
	if (g->n > 0) {
		g->members[0].admin = 1;
	}
}

static int apply_update(struct vt_groups *gs, struct vt_group *g, const char *actor,
			const struct vt_group_change *ch, const struct vt_group_limits *lim,
			char (*removed)[VT_ID_MAX + 1], uint32_t *nremoved, const char **reason)
{
	int rc = check_update(g, actor, ch, lim, reason);

	if (rc != 0) {
		return rc;
	}
	if (ch->name != NULL && (rc = set_name(g, ch->name)) != 0) {
		return rc;
	}
	for (uint32_t i = 0; i < ch->nadd; i++) {
		if (vt_group_member(g, ch->add[i]) != NULL) {
			continue;
		}
		if ((rc = member_add(g, ch->add[i], 0)) != 0) {
			return rc;
		}
		vt_group_index_add(&gs->by_user, ch->add[i], g);
	}
	for (uint32_t i = 0; i < ch->nadmins; i++) {
		vt_group_member(g, ch->admins[i])->admin = 1;
	}
	for (uint32_t i = 0; i < ch->nremove; i++) {
		drop(gs, g, ch->remove[i], removed, nremoved);
	}
	keep_an_admin(g);
	return 0;
}

int vt_group_apply(struct vt_groups *gs, struct vt_group **gp, const char *id,
		   const char *actor, const struct vt_group_change *ch,
		   const struct vt_group_limits *lim, char (*removed)[VT_ID_MAX + 1],
		   uint32_t *nremoved, const char **reason)
{
	*nremoved = 0;
	if (ch->op == VT_ENV_GROUP_CREATE) {
		return apply_create(gs, gp, id, actor, ch, lim, reason);
	}
	if (*gp == NULL || vt_group_member(*gp, actor) == NULL) {
		*reason = "not a member of this group";
		return VT_EFORBIDDEN;
	}
	if (ch->op == VT_ENV_GROUP_LEAVE) {
		drop(gs, *gp, actor, removed, nremoved);
		keep_an_admin(*gp);
		return 0;
	}
	return apply_update(gs, *gp, actor, ch, lim, removed, nremoved, reason);
}

/* ---- JSON forms ------------------------------------------------------- */

static void put_users(struct vt_buf *b, const struct vt_group *g, int admins_only)
{
	int first = 1;

	vt_buf_putc(b, '[');
	for (uint32_t i = 0; i < g->n; i++) {
		if (admins_only && !g->members[i].admin) {
			continue;
		}
		if (!first) {
			vt_buf_putc(b, ',');
		}
		first = 0;
		vt_buf_json_str(b, g->members[i].user, strlen(g->members[i].user));
	}
	vt_buf_putc(b, ']');
}

static void put_list(struct vt_buf *b, char (*list)[VT_ID_MAX + 1], uint32_t n)
{
	vt_buf_putc(b, '[');
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0) {
			vt_buf_putc(b, ',');
		}
		vt_buf_json_str(b, list[i], strlen(list[i]));
	}
	vt_buf_putc(b, ']');
}

void vt_group_encode_info(struct vt_buf *b, const struct vt_group *g)
{
	vt_buf_puts(b, "{\"id\":");
	vt_buf_json_str(b, g->id, strlen(g->id));
	vt_buf_puts(b, ",\"name\":");
	vt_buf_json_str(b, g->name, strlen(g->name));
	vt_buf_puts(b, ",\"members\":");
	put_users(b, g, 0);
	vt_buf_puts(b, ",\"admins\":");
	put_users(b, g, 1);
	vt_buf_putc(b, '}');
}

static const char *op_name(enum vt_env_type op)
{
	switch (op) {
	case VT_ENV_GROUP_CREATE:
		return "create";
	case VT_ENV_GROUP_LEAVE:
		return "leave";
	default:
		return "update";
	}
}

void vt_group_encode_event(struct vt_buf *b, const struct vt_group *g, const char *actor,
			   const struct vt_group_change *ch, char (*removed)[VT_ID_MAX + 1],
			   uint32_t nremoved)
{
	vt_buf_puts(b, "{\"op\":\"");
	vt_buf_puts(b, op_name(ch->op));
	vt_buf_puts(b, "\",\"by\":");
	vt_buf_json_str(b, actor, strlen(actor));
	vt_buf_puts(b, ",\"group\":");
	vt_group_encode_info(b, g);
	vt_buf_puts(b, ",\"added\":");
	put_list(b, ch->add, ch->add ? ch->nadd : 0);
	vt_buf_puts(b, ",\"removed\":");
	put_list(b, removed, nremoved);
	vt_buf_putc(b, '}');
}

void vt_group_encode_state(struct vt_buf *b, const struct vt_group *g)
{
	vt_buf_puts(b, "{\"name\":");
	vt_buf_json_str(b, g->name, strlen(g->name));
	vt_buf_puts(b, ",\"creator\":");
	vt_buf_json_str(b, g->creator, strlen(g->creator));
	vt_buf_puts(b, ",\"cid\":");
	vt_buf_json_str(b, g->create_cid, strlen(g->create_cid));
	vt_buf_puts(b, ",\"cid_id\":");
	vt_buf_u64(b, g->create_id);
	vt_buf_puts(b, ",\"ver\":");
	vt_buf_u64(b, g->version);
	vt_buf_puts(b, ",\"seq\":");
	vt_buf_u64(b, g->seq);
	vt_buf_puts(b, ",\"members\":[");
	for (uint32_t i = 0; i < g->n; i++) {
		if (i > 0) {
			vt_buf_putc(b, ',');
		}
		vt_buf_putc(b, '[');
		vt_buf_json_str(b, g->members[i].user, strlen(g->members[i].user));
		vt_buf_puts(b, g->members[i].admin ? ",1]" : ",0]");
	}
	vt_buf_puts(b, "],\"recent\":[");
	for (uint32_t i = 0; i < g->nrecent; i++) {
		/* Oldest first, so loading them in order rebuilds the ring. */
		uint32_t k = (g->recent_next + VT_GROUP_RECENT - g->nrecent + i) % VT_GROUP_RECENT;
		const struct vt_group_op *op = &g->recent[k];

		vt_buf_puts(b, i ? ",[" : "[");
		vt_buf_json_str(b, op->user, strlen(op->user));
		vt_buf_putc(b, ',');
		vt_buf_json_str(b, op->cid, strlen(op->cid));
		vt_buf_putc(b, ',');
		vt_buf_u64(b, op->id);
		vt_buf_putc(b, ']');
	}
	vt_buf_puts(b, g->deleted ? "],\"deleted\":1}" : "]}");
}

/* One [user, cid, id] triple of a stored blob's "recent". */
static int load_recent(struct vt_group *g, const struct vt_json_val *t)
{
	struct vt_json_val u, c, i;
	size_t pos = 0;
	char user[VT_ID_MAX + 1], cid[VT_ID_MAX + 1];
	uint64_t id;

	if (t->type != VT_JSON_ARRAY || !vt_json_next_elem(t, &pos, &u) ||
	    !vt_json_next_elem(t, &pos, &c) || !vt_json_next_elem(t, &pos, &i) ||
	    u.type != VT_JSON_STRING || c.type != VT_JSON_STRING ||
	    vt_json_str_decode(&u, user, sizeof(user)) < 0 ||
	    vt_json_str_decode(&c, cid, sizeof(cid)) < 0 ||
	    vt_json_u64(&i, VT_ID_LIMIT, &id) != 0) {
		return VT_EBADENV;
	}
	vt_group_recent_add(g, user, cid, id);
	return 0;
}

/* One [user, admin] pair of a stored blob. */
static int load_member(struct vt_group *g, const struct vt_json_val *pair)
{
	struct vt_json_val u, a;
	size_t pos = 0;
	char user[VT_ID_MAX + 1];
	uint64_t admin;
	int len;

	if (pair->type != VT_JSON_ARRAY || !vt_json_next_elem(pair, &pos, &u) ||
	    !vt_json_next_elem(pair, &pos, &a) || u.type != VT_JSON_STRING ||
	    (len = vt_json_str_decode(&u, user, sizeof(user))) < 0 ||
	    !vt_user_id_valid(user, (size_t)len) || vt_json_u64(&a, 1, &admin) != 0) {
		return VT_EBADENV;
	}
	return member_add(g, user, (uint32_t)admin);
}

static int load_field(struct vt_group *g, const struct vt_json_val *key,
		      const struct vt_json_val *val)
{
	char name[1024];
	struct vt_json_val m;
	size_t pos = 0;
	int rc = 0;

	if (vt_json_key_is(key, "name")) {
		rc = vt_json_str_decode(val, name, sizeof(name));
		return rc < 0 ? rc : set_name(g, name);
	}
	if (vt_json_key_is(key, "creator")) {
		return vt_json_str_decode(val, g->creator, sizeof(g->creator)) < 0 ? VT_EBADENV : 0;
	}
	if (vt_json_key_is(key, "cid")) {
		int n = vt_json_str_decode(val, g->create_cid, sizeof(g->create_cid));

		return n < 0 ? VT_EBADENV : 0;
	}
	if (vt_json_key_is(key, "cid_id")) {
		return vt_json_u64(val, VT_ID_LIMIT, &g->create_id);
	}
	if (vt_json_key_is(key, "ver")) {
		return vt_json_u64(val, VT_ID_LIMIT, &g->version);
	}
	if (vt_json_key_is(key, "seq")) {
		return vt_json_u64(val, VT_ID_LIMIT, &g->seq);
	}
	if (vt_json_key_is(key, "members")) {
		while (rc == 0 && vt_json_next_elem(val, &pos, &m)) {
			rc = load_member(g, &m);
		}
	}
	if (vt_json_key_is(key, "recent")) {
		while (rc == 0 && vt_json_next_elem(val, &pos, &m)) {
			rc = load_recent(g, &m);
		}
	}
	if (vt_json_key_is(key, "deleted")) {
		uint64_t d;

		rc = vt_json_u64(val, 1, &d);
		g->deleted = (int)d;
	}
	return rc;
}

/*
 * A blob stored before groups had versions: its newest remembered change
 * made it (every change is remembered), and 1 stands for none. A store
 * that checks versions takes any version for a group it has none for.
 */
static uint64_t version_of_old_blob(const struct vt_group *g)
{
	if (g->nrecent == 0) {
		return 1;
	}
	return g->recent[(g->recent_next + VT_GROUP_RECENT - 1) % VT_GROUP_RECENT].id;
}

/* A group from its stored state, or NULL (logged) when unreadable. */
static struct vt_group *parse_state(const char *id, const char *data, size_t len, int *err)
{
	struct vt_json_val obj, key, val;
	struct vt_group *g;
	size_t pos = 0;
	int rc = 0;

	if (strlen(id) >= sizeof(g->id)) {
		vt_log(VT_LOG_ERROR, "group %.*s...: stored id too long, skipped", 16, id);
		*err = VT_EINVAL;
		return NULL;
	}
	if (vt_json_validate_value(data, len, 8, &obj) != 0 ||
	    obj.type != VT_JSON_OBJECT || (g = group_new(id)) == NULL) {
		vt_log(VT_LOG_ERROR, "group %s: stored state unreadable, skipped", id);
		*err = VT_EBADJSON;
		return NULL;
	}
	while (rc == 0 && vt_json_next_member(&obj, &pos, &key, &val)) {
		rc = load_field(g, &key, &val);
	}
	if (rc == 0 && g->name == NULL) {
		rc = set_name(g, "");
	}
	if (rc == 0 && g->version == 0) {
		g->version = version_of_old_blob(g);
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "group %s: stored state invalid, skipped", id);
		group_free(g);
		*err = rc;
		return NULL;
	}
	return g;
}

/* Put @g in place of what memory held under its id. */
static int install(struct vt_groups *gs, struct vt_group *g)
{
	struct vt_group *old = vt_map_get(&gs->map, g->id);

	if (vt_map_put(&gs->map, g->id, g) != 0) {
		group_free(g);
		return VT_ENOMEM;
	}
	if (old != NULL) {
		vt_group_index_del_members(&gs->by_user, old);
	}
	vt_group_index_add_members(&gs->by_user, g);
	group_free(old);
	return 0;
}

int vt_groups_load(struct vt_groups *gs, const char *id, const char *data, size_t len)
{
	int err = 0;
	struct vt_group *g = parse_state(id, data, len, &err);

	/* A reload replaces what memory held (used to undo a failed change). */
	return g != NULL ? install(gs, g) : err;
}

int vt_groups_load_newer(struct vt_groups *gs, const char *id, const char *data, size_t len)
{
	int err = 0;
	struct vt_group *g = parse_state(id, data, len, &err);
	const struct vt_group *old;

	if (g == NULL) {
		return err;
	}
	old = vt_map_get(&gs->map, id);
	if (old != NULL && g->seq != 0 && old->seq >= g->seq) {
		group_free(g);
		return 0;
	}
	err = install(gs, g);
	return err == 0 ? 1 : err;
}
