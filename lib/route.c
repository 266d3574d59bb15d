/*
 * route.c - taking what clients send: messages, reads, typing, group
 * changes and acks, and routing what storage accepted to connected devices.
 *
 * A message names a user or a group as "to". Storage expands users to their
 * registered devices inside the commit, so the engine never needs to know a
 * user's devices to store for them; it only routes the new deliveries the
 * commit reports to the devices that are connected, and calls the push hook
 * for the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

static int is_group(const char *to)
{
	return strncmp(to, "g:", 2) == 0;
}

/* @rec is owed to @in, which no connection here holds. */
static void route_away(struct vt_engine *e, const struct vt_inbox *in, const struct vt_record *rec)
{
	if (e->cluster.ops != NULL) {
		/* Another node may hold it; the cluster wakes it or says none. */
		e->cluster.ops->deliver(e->cluster.self, in, rec);
	} else {
		e->stats.offline++;
		vt__notify(e, rec, in->user, in->device);
	}
}

void vt__route(struct vt_engine *e, struct vt_msg *m, const struct vt_inbox *to, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct vt_conn *c = vt__conn_find(e, to[i].user, to[i].device);

		if (c != NULL) {
			vt__conn_offer(c, m);
		} else {
			route_away(e, &to[i], &m->rec);
		}
	}
}

/*
 * The stored record is the original, not @m: a re-send may carry another
 * body or recipient. So a connection here lists it from storage, and what
 * goes away names only the id, the sender (the same: dedup is per sender)
 * and the recipient, never @m's body or group.
 */
void vt__route_dup(struct vt_engine *e, const struct vt_msg *m, uint64_t id,
		   const struct vt_inbox *to, uint32_t n)
{
	struct vt_record rec = m->rec;

	rec.id = id;
	rec.body = NULL;
	rec.body_len = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (vt__conn_find(e, to[i].user, to[i].device) != NULL) {
			vt_engine_wake(e, &to[i], id);
		} else {
			rec.to = to[i].user;
			route_away(e, &to[i], &rec);
		}
	}
}

/*
 * Recipients of a PUT: a copied list, so later group changes cannot move it.
 * The message's own recipient needs no copy: its text holds it for as long
 * as the batch holds the message.
 */
int vt__pend_set_users(struct vt_pend *p, const char *const *users, uint32_t n)
{
	if (n == 1 && strcmp(users[0], p->msg->rec.to) == 0) {
		p->nusers = 1;
		return 0;
	}
	p->users = calloc(n ? n : 1, sizeof(*p->users));
	if (p->users == NULL) {
		return VT_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		vt__copy(p->users[i], sizeof(p->users[0]), users[i]);
	}
	p->nusers = n;
	return 0;
}

/*
 * Queue @m for storage to @users, with copies to the sender's other devices.
 * The sender hears "accepted" when it commits. With @hold, mode "offline"
 * may keep it in memory for the recipients who keep up (see hold.c). Takes
 * no reference from @m's caller: the batch holds its own. Returns the
 * batch's op, or NULL when out of memory (@m's caller keeps its reference
 * meanwhile). A one-to-one event may be parked out of the batch instead
 * (park.c): then the op returned lives in its park.
 */
static struct vt_pend *put_event(struct vt_engine *e, struct vt_msg *m,
				 const struct vt_identity *from, const char *const *users,
				 uint32_t n, int cap_skip, int dedup, int hold, struct vt_origin *o)
{
	struct vt_pend *p;

	if (dedup) {
		vt__park_resent(e, &m->rec);
	}
	p = vt__batch_put(e, VT_PEND_ACCEPT, m);
	if (p == NULL || vt__pend_set_users(p, users, n) != 0) {
		return NULL;
	}
	vt__copy(p->user, sizeof(p->user), from->user);
	vt__copy(p->device, sizeof(p->device), from->device);
	p->own_copies = 1;
	p->cap_skip = cap_skip;
	p->dedup = dedup;
	p->origin = *o;
	o->conn = NULL;
	if (hold && vt__hold_possible(e, p->origin.conn)) {
		vt__hold_split(e, p, p->origin.conn);
	}
	return vt__early_take(e, p);
}

/*
 * With a cluster, the shared store writes @p only while its group is still
 * at version @base, the one it was derived from (see vartalap/storage.h).
 * A single node's memory is its store's state: nothing to check.
 */
static void check_version(struct vt_engine *e, struct vt_pend *p, uint64_t base)
{
	p->check_base = e->cluster.ops != NULL;
	p->base = base;
}

/* ---- messages and reads --------------------------------------------- */

void vt__take_group_post(struct vt_engine *e, const struct vt_identity *from, struct vt_msg *m,
			 struct vt_origin *o, int retried)
{
	struct vt_group *g = vt_groups_find(&e->groups, m->rec.to);
	struct vt_pend *p = NULL;
	const char **list;
	uint32_t n = 0;

	if (g == NULL || vt_group_member(g, from->user) == NULL) {
		/* With a cluster the sender may have been added through
		 * another node a moment ago: read the group once before
		 * refusing (stale.c bounds how many wait for that). */
		if (!retried && vt__group_may_reread(e)) {
			vt__group_wait(e, m, from->device, o, 1);
			return;
		}
		vt__reply_error(e, o, VT_EFORBIDDEN, "not a member of this group", m->rec.cid);
		return;
	}
	if (vt__group_waited_on(e, g->id)) {
		/* An earlier post found the group stale: keep behind it. */
		vt__group_wait(e, m, from->device, o, retried);
		return;
	}

	/* Everyone but the sender, as the group is now. */
	list = calloc(g->n, sizeof(*list));
	for (uint32_t i = 0; list != NULL && i < g->n; i++) {
		if (strcmp(g->members[i].user, from->user) != 0) {
			list[n++] = g->members[i].user;
		}
	}
	if (list != NULL) {
		p = put_event(e, m, from, list, n, 1, 1, 1, o);
	}
	free((void *)list);
	if (p == NULL) {
		vt__reply_error(e, o, VT_ENOMEM, "out of memory", m->rec.cid);
		return;
	}
	check_version(e, p, g->version);
	p->retried = retried;
}

static void take_message(struct vt_engine *e, const struct vt_identity *from,
			 const struct vt_env *env, struct vt_origin *o)
{
	const char *to = env->to;
	struct vt_msg *m;

	if (!is_group(to) && !vt_user_id_valid(to, strlen(to))) {
		vt__reply_error(e, o, VT_EBADENV, "to: not a user or group id", env->id);
		return;
	}
	m = vt_msg_new(VT_KIND_MESSAGE, from->user, to, env->id, vt__wall(e), env->body,
		       env->body_len);
	if (m == NULL) {
		vt__reply_error(e, o, VT_ENOMEM, "out of memory", env->id);
		return;
	}
	m->rec.id = vt__new_id(e);

	if (is_group(to)) {
		vt__take_group_post(e, from, m, o, 0);
	} else if (put_event(e, m, from, &to, 1, 0, 1, 1, o) == NULL) {
		vt__reply_error(e, o, VT_ENOMEM, "out of memory", env->id);
	}
	vt_msg_unref(m);
}

/* {"ids":["1","2"]}: the body of a read receipt. */
static void read_body(struct vt_buf *b, const uint64_t *ids, uint32_t n)
{
	vt_buf_puts(b, "{\"ids\":[");
	for (uint32_t i = 0; i < n; i++) {
		vt_buf_puts(b, i ? ",\"" : "\"");
		vt_buf_u64(b, ids[i]);
		vt_buf_putc(b, '"');
	}
	vt_buf_puts(b, "]}");
}

static void take_read(struct vt_engine *e, const struct vt_identity *from,
		      const struct vt_env *env, struct vt_origin *o)
{
	const char *to = env->to;
	struct vt_buf body;
	struct vt_msg *m = NULL;

	if (!vt_user_id_valid(to, strlen(to))) {
		vt__reply_error(e, o, VT_EBADENV, "to: a read receipt goes to a user", env->id);
		return;
	}
	vt_buf_init(&body);
	read_body(&body, env->ids, env->nids);
	if (!vt_buf_failed(&body)) {
		m = vt_msg_new(VT_KIND_READ, from->user, to, env->id, vt__wall(e), body.data,
			       body.len);
	}
	vt_buf_free(&body);
	if (m == NULL) {
		vt__reply_error(e, o, VT_ENOMEM, "out of memory", env->id);
		return;
	}
	m->rec.id = vt__new_id(e);
	if (put_event(e, m, from, &to, 1, 0, 1, 1, o) == NULL) {
		vt__reply_error(e, o, VT_ENOMEM, "out of memory", env->id);
	}
	vt_msg_unref(m);
}

/* ---- typing: ephemeral, to connected devices only ---------------------- */

double vt_bucket_level(const struct vt_bucket *b, uint32_t rate, uint64_t now)
{
	double level = b->tokens + (double)(now - b->at) * rate / 1000.0;

	return level < rate ? level : rate;
}

int vt_bucket_take(struct vt_bucket *b, uint32_t rate, uint64_t now)
{
	if (rate == 0) {
		return 1;
	}
	b->tokens = b->at == 0 ? rate : vt_bucket_level(b, rate, now);
	b->at = now;
	if (b->tokens < 1.0) {
		return 0;
	}
	b->tokens -= 1.0;
	return 1;
}

static void typing_to_user(struct vt_engine *e, const char *user, const char *frame, size_t len)
{
	struct vt_user *u = vt__user(e, user);

	for (struct vt_conn *c = u ? u->conns : NULL; c != NULL; c = c->sib) {
		vt__conn_send(c, frame, len);
		e->stats.typing++;
	}
}

static void take_typing(struct vt_engine *e, const struct vt_identity *from,
			const struct vt_env *env, struct vt_origin *o)
{
	struct vt_group *g = NULL;
	struct vt_buf frame;

	if (o->conn == NULL) {
		vt__reply_error(e, o, VT_EBADTYPE, "typing is for WebSocket connections", env->id);
		return;
	}
	if (e->cfg.typing_per_sec == 0 ||
	    !vt_bucket_take(&o->conn->typing, e->cfg.typing_per_sec, vt__now(e))) {
		vt__reply_error(e, o, VT_ERATE, "typing: too many, slow down", env->id);
		return;
	}
	if (is_group(env->to) && ((g = vt_groups_find(&e->groups, env->to)) == NULL ||
				  vt_group_member(g, from->user) == NULL)) {
		vt__reply_error(e, o, VT_EFORBIDDEN, "not a member of this group", env->id);
		return;
	}
	if (g != NULL && vt__group_changing(e, g->id)) {
		/* Its members are not known until the change commits; typing is
		 * not worth the wait, nor worth telling one it may never add. */
		vt__origin_release(o);
		return;
	}

	vt_buf_init(&frame);
	vt_buf_puts(&frame, "{\"v\":1,\"type\":\"typing\",\"from\":");
	vt_buf_json_str(&frame, from->user, strlen(from->user));
	vt_buf_puts(&frame, ",\"to\":");
	vt_buf_json_str(&frame, env->to, strlen(env->to));
	vt_buf_putc(&frame, '}');
	if (g == NULL) {
		typing_to_user(e, env->to, frame.data, frame.len);
	}
	for (uint32_t i = 0; g != NULL && i < g->n; i++) {
		if (strcmp(g->members[i].user, from->user) != 0) {
			typing_to_user(e, g->members[i].user, frame.data, frame.len);
		}
	}
	vt_buf_free(&frame);
	vt__origin_release(o);
}

/* ---- group changes ---------------------------------------------------- */

static void group_limits(const struct vt_engine *e, struct vt_group_limits *lim)
{
	lim->max_members = e->cfg.max_group_members;
	lim->max_name = e->cfg.max_group_name;
	lim->max_per_update = e->cfg.max_group_update;
}

/*
 * A re-sent change is answered with the first one's id; if the first is not
 * committed yet, the answer waits for its batch, which may still fail.
 */
static void answer_resent(struct vt_engine *e, struct vt_group *g,
			  const struct vt_identity *from, const char *cid, uint64_t id,
			  struct vt_origin *o)
{
	struct vt_pend *p;

	if (id <= e->committed_id) {
		vt__reply_accepted(e, o, cid, id, vt__wall(e));
		return;
	}
	p = vt__batch_add(e, VT_PEND_ECHO);
	if (p == NULL) {
		vt__reply_error(e, o, VT_ENOMEM, "out of memory", cid);
		return;
	}
	vt__copy(p->user, sizeof(p->user), g->id);
	vt__copy(p->origin_user, sizeof(p->origin_user), from->user);
	vt__copy(p->device, sizeof(p->device), from->device);
	vt__copy(p->cid, sizeof(p->cid), cid);
	p->id = id;
	p->origin = *o;
	o->conn = NULL;
}

/* A retried create (same creator, same client id) is answered again. */
static int create_retried(struct vt_engine *e, struct vt_group *g, const struct vt_identity *from,
			  const struct vt_env *env, struct vt_origin *o)
{
	if (strcmp(g->creator, from->user) == 0 && strcmp(g->create_cid, env->id) == 0) {
		e->stats.duplicates++;
		vt__reply_accepted(e, o, env->id, g->create_id, vt__wall(e));
		return 1;
	}
	vt__reply_error(e, o, VT_EEXISTS, "a group with this id exists", env->id);
	return 1;
}

/*
 * Queue the group's new state, derived from version @base, keeping @undo to
 * restore. A group left with no members stays stored as deleted, so a
 * re-sent change is still recognised.
 */
static int put_state(struct vt_engine *e, struct vt_group *g, uint64_t base, char *undo,
		     size_t undo_len)
{
	struct vt_pend *p = vt__batch_add(e, VT_PEND_GROUP);
	struct vt_buf b;

	if (p == NULL) {
		free(undo);
		return VT_ENOMEM;
	}
	vt__copy(p->user, sizeof(p->user), g->id);
	p->id = g->version;
	check_version(e, p, base);
	vt__group_change_started(e, g->id);
	p->undo = undo;
	p->undo_len = undo_len;
	vt_buf_init(&b);
	vt_group_encode_state(&b, g);
	if (vt_buf_failed(&b)) {
		vt_buf_free(&b);
		return VT_ENOMEM;
	}
	p->blob = b.data;
	p->blob_len = b.len;
	return 0;
}

/* Members now, and those just removed: who hears of the change. */
static const char **audience(struct vt_group *g, const char *actor,
			     char (*removed)[VT_ID_MAX + 1], uint32_t nremoved, uint32_t *n)
{
	const char **list = calloc(g->n + nremoved + 1, sizeof(*list));

	*n = 0;
	for (uint32_t i = 0; list != NULL && i < g->n; i++) {
		if (strcmp(g->members[i].user, actor) != 0) {
			list[(*n)++] = g->members[i].user;
		}
	}
	for (uint32_t i = 0; list != NULL && i < nremoved; i++) {
		if (strcmp(removed[i], actor) != 0) {
			list[(*n)++] = removed[i];
		}
	}
	return list;
}

/*
 * The announcing event, its state write, and its PUT, all in one batch. The
 * change's id is the new state's version; the PUT checks for that version,
 * so a state write refused as stale takes its announcement with it.
 */
static int announce(struct vt_engine *e, struct vt_group *g, const struct vt_identity *from,
		    const struct vt_env *env, const struct vt_group_change *ch,
		    char (*removed)[VT_ID_MAX + 1], uint32_t nremoved, struct vt_origin *o,
		    uint64_t base, char *undo, size_t undo_len)
{
	struct vt_buf body;
	struct vt_msg *m = NULL;
	struct vt_pend *p = NULL;
	const char **list;
	uint32_t n;
	int rc;

	vt_buf_init(&body);
	vt_group_encode_event(&body, g, from->user, ch, removed, nremoved);
	if (!vt_buf_failed(&body)) {
		m = vt_msg_new(VT_KIND_GROUP, from->user, g->id, env->id, vt__wall(e), body.data,
			       body.len);
	}
	vt_buf_free(&body);
	if (m == NULL) {
		free(undo);
		return VT_ENOMEM;
	}
	m->rec.id = vt__new_id(e);
	if (ch->op == VT_ENV_GROUP_CREATE) {
		vt__copy(g->create_cid, sizeof(g->create_cid), env->id);
		g->create_id = m->rec.id;
	}
	vt_group_recent_add(g, from->user, env->id, m->rec.id);
	g->deleted = g->n == 0;
	g->version = m->rec.id;
	g->seq++;

	rc = put_state(e, g, base, undo, undo_len);
	list = audience(g, from->user, removed, nremoved, &n);
	if (rc == 0 && list != NULL) {
		/* Group changes are deduplicated by the group itself (its recent
		 * changes), so storage does not see their client ids. */
		p = put_event(e, m, from, list, n, 1, 0, 0, o);
	}
	if (rc == 0 && p == NULL) {
		rc = VT_ENOMEM;
	}
	if (p != NULL) {
		check_version(e, p, g->version);
	}
	free((void *)list);
	vt_msg_unref(m);
	return rc;
}

/* The group's state before a change, to restore if storage refuses it. */
static char *snapshot(struct vt_group *g, size_t *len)
{
	struct vt_buf b;

	*len = 0;
	if (g == NULL) {
		return NULL;
	}
	vt_buf_init(&b);
	vt_group_encode_state(&b, g);
	*len = b.len;
	return b.data;
}

static void take_group(struct vt_engine *e, const struct vt_identity *from,
		       const struct vt_env *env, struct vt_origin *o)
{
	struct vt_group_limits lim;
	struct vt_group_change ch;
	struct vt_group *g = vt_groups_find(&e->groups, env->to);
	char(*removed)[VT_ID_MAX + 1] = NULL;
	const char *reason = "invalid group change";
	uint32_t nremoved = 0;
	uint64_t dup, base = g != NULL ? g->version : 0;
	size_t undo_len;
	char *undo;
	int rc;

	if (!is_group(env->to)) {
		vt__reply_error(e, o, VT_EBADENV, "to: a group id starts with g:", env->id);
		return;
	}
	if (g != NULL && (dup = vt_group_recent_find(g, from->user, env->id)) != 0) {
		e->stats.duplicates++;
		answer_resent(e, g, from, env->id, dup, o);
		return;
	}
	if (env->type == VT_ENV_GROUP_CREATE && g != NULL && !g->deleted &&
	    create_retried(e, g, from, env, o)) {
		return;
	}

	group_limits(e, &lim);
	rc = vt_group_change_parse(env->type, env->body, env->body_len, &lim, &ch, &reason);

	/* Those removed: the users named, or the one who leaves. */
	if (rc == 0 && (removed = calloc(ch.nremove + 1, sizeof(*removed))) == NULL) {
		rc = VT_ENOMEM;
	}
	undo = rc == 0 ? snapshot(g, &undo_len) : NULL;
	if (rc == 0) {
		rc = vt_group_apply(&e->groups, &g, env->to, from->user, &ch, &lim, removed,
				    &nremoved, &reason);
	}
	if (rc != 0) {
		free(undo);
		free(removed);
		vt_group_change_free(&ch);
		vt__reply_error(e, o, rc, reason, env->id);
		return;
	}

	rc = announce(e, g, from, env, &ch, removed, nremoved, o, base, undo, undo_len);
	free(removed);
	vt_group_change_free(&ch);
	if (rc != 0) {
		vt__reply_error(e, o, rc, "could not record the change", env->id);
	}
}

/* ---- the door --------------------------------------------------------- */

static void take_ack(struct vt_engine *e, const struct vt_identity *from,
		     const struct vt_env *env, struct vt_origin *o)
{
	if (o->reply != NULL) {
		/* REST acks go through vt_engine_ack, which answers per id;
		 * refused here, nothing of it is done. */
		vt__reply_error(e, o, VT_EBADTYPE, "use POST /v1/ack for acks", NULL);
		return;
	}
	vt__ack_ids(e, o->conn, from, env->ids, env->nids, NULL);
	vt__origin_release(o);
}

/*
 * Should @env wait behind the group changes before it (group_queue.c)? A
 * change waits while another to its group is being written; a post or read
 * sent to the group waits only behind changes that wait, to keep its place
 * (typing never waits: take_typing drops it while the group changes).
 * Answers 1 when it waits or was refused for want of room.
 */
static int parked(struct vt_engine *e, const struct vt_identity *from, const struct vt_env *env,
		  const char *raw, size_t raw_len, struct vt_origin *o)
{
	int change = env->type != VT_ENV_MESSAGE && env->type != VT_ENV_READ;
	int rc;

	if (!is_group(env->to) || env->type == VT_ENV_ACK || env->type == VT_ENV_TYPING) {
		return 0;
	}
	if (!vt__group_parked(e, env->to) && !(change && vt__group_changing(e, env->to))) {
		return 0;
	}
	rc = vt__group_park(e, from, env->to, env->id, change, raw, raw_len, o);
	if (rc != 0) {
		vt__reply_error(e, o, rc, "group busy with other changes; send again", env->id);
	}
	return 1;
}

static void dispatch(struct vt_engine *e, const struct vt_identity *from,
		     const struct vt_env *env, const char *raw, size_t raw_len, int arrived,
		     struct vt_origin *o)
{
	if (arrived && parked(e, from, env, raw, raw_len, o)) {
		vt__origin_release(o);
		return;
	}
	switch (env->type) {
	case VT_ENV_MESSAGE:
		take_message(e, from, env, o);
		break;
	case VT_ENV_ACK:
		take_ack(e, from, env, o);
		break;
	case VT_ENV_READ:
		take_read(e, from, env, o);
		break;
	case VT_ENV_TYPING:
		take_typing(e, from, env, o);
		break;
	default:
		take_group(e, from, env, o);
		break;
	}
	vt__origin_release(o);
}

/*
 * Is @from past its rate of events (acks are free)? A connection has its own
 * bucket; an event sent over REST draws on its user's (senders.c). Answers
 * the refusal and returns 1; the client may wait, then re-send the same id.
 */
static int over_rate(struct vt_engine *e, const struct vt_identity *from,
		     const struct vt_env *env, struct vt_origin *o)
{
	int rc;

	if (env->type == VT_ENV_ACK) {
		return 0;
	}
	if (o->conn != NULL) {
		rc = vt_bucket_take(&o->conn->events, e->cfg.msgs_per_sec, vt__now(e));
	} else {
		rc = vt__sender_take(e, from->user);
	}
	if (rc == 1) {
		return 0;
	}
	if (rc == 0) {
		vt__reply_error(e, o, VT_ERATE, "too many events; slow down and re-send", env->id);
	} else if (rc == VT_EBUSY) {
		vt__reply_error(e, o, rc, "too many users sending at once; re-send later", env->id);
	} else {
		vt__reply_error(e, o, rc, "out of memory", env->id);
	}
	return 1;
}

/*
 * Decode and take one envelope. @arrived: it has just come, so it counts
 * against its sender's rate and may have to wait; else it waited already.
 */
static void take_event(struct vt_engine *e, const struct vt_identity *from, const char *data,
		       size_t len, struct vt_origin origin, int arrived)
{
	struct vt_env *env;
	const char *reason = NULL;
	int rc;

	if (e->shutting_down) {
		vt__reply_error(e, &origin, VT_EBUSY, "server shutting down", NULL);
		return;
	}
	if (len > e->cfg.max_message_bytes) {
		vt__reply_error(e, &origin, VT_ETOOBIG, "envelope over the size limit", NULL);
		return;
	}

	/* The envelope holds up to VT_ACK_MAX ids: too big for the stack of a
	 * small embedded thread, so it lives on the heap for the call: the
	 * engine's spare one, unless an outer call is using that. */
	env = e->spare_env != NULL ? e->spare_env : malloc(sizeof(*env));
	e->spare_env = NULL;
	if (env == NULL) {
		vt__reply_error(e, &origin, VT_ENOMEM, "out of memory", NULL);
		return;
	}
	rc = vt_env_decode(data, len, env, &reason);
	if (rc < 0) {
		vt_log(VT_LOG_DEBUG, "bad envelope from user=%s: %s", from->user,
		       reason ? reason : vt_strerror(rc));
		vt__reply_error(e, &origin, rc, reason ? reason : vt_strerror(rc), env->id);
	} else if (!arrived || !over_rate(e, from, env, &origin)) {
		dispatch(e, from, env, data, len, arrived, &origin);
	}
	if (e->spare_env == NULL) {
		e->spare_env = env;
	} else {
		free(env);
	}
}

void vt__take_event(struct vt_engine *e, const struct vt_identity *from, const char *data,
		    size_t len, struct vt_origin origin)
{
	take_event(e, from, data, len, origin, 1);
}

void vt__take_parked(struct vt_engine *e, const struct vt_identity *from, const char *data,
		     size_t len, struct vt_origin origin)
{
	take_event(e, from, data, len, origin, 0);
}

/*
 * Does ACK @p ask storage for the sender's receipt, in the ack's own commit?
 * @m is the acked event when a connection here held it. Storage makes the
 * receipt from the record it deletes, so an ack of a delivery already gone
 * (acked twice, or by another node) makes none. Nothing is asked when the
 * event owes no receipt, nor when mode "offline" would hold it unwritten.
 */
static void ack_receipt(struct vt_engine *e, struct vt_pend *p, const struct vt_msg *m)
{
	if (m != NULL && (m->rec.kind != VT_KIND_MESSAGE || strcmp(m->rec.from, p->user) == 0 ||
			  vt__hold_receipt_likely(e, m->rec.from))) {
		return;
	}
	p->receipt_id = vt__new_id(e);
	p->ts = vt__wall(e);
}

/*
 * The journal entry of held copy @m that @who acked (@entry: it has one),
 * as vt__take_delivered is to treat it. A group's receipt gathers for a
 * while (receipts.c), so a group post's entry is released with it, in its
 * batch: a crash before that delivers the copy once more rather than lose
 * the receipt. A request (@req) is answered only once the release commits,
 * so that one is released now, and the receipt goes at the same flush.
 * Anything else is released now, its receipt (if any) gathered for this
 * flush alone.
 */
static unsigned ack_release(struct vt_engine *e, struct vt_msg *m,
			    const struct vt_identity *who, int entry, const struct vt_ackreq *req)
{
	int group = m->rec.kind == VT_KIND_MESSAGE && is_group(m->rec.to);

	if (!entry) {
		return 0;
	}
	if (group && req == NULL) {
		return VT_DELIVERED_RELEASE;
	}
	/* Its PUT still waits for acks: this copy takes no entry (park.c). */
	if (req == NULL && vt__park_acked(e, m, who)) {
		return 0;
	}
	vt__park_out(e, m);
	vt__journal_release(e, m->rec.id, who->user, who->device);
	return group ? VT_DELIVERED_NOW : 0;
}

void vt__ack_ids(struct vt_engine *e, struct vt_conn *origin_conn, const struct vt_identity *who,
		 const uint64_t *ids, uint32_t n, struct vt_ackreq *req)
{
	struct vt_conn *c = vt__conn_find(e, who->user, who->device);

	for (uint32_t i = 0; i < n; i++) {
		struct vt_msg *m = NULL;
		int in_memory = 0, entry = 0;
		int held = c != NULL && vt__conn_ack(c, ids[i], &m, &in_memory, &entry);
		struct vt_pend *p;

		/* Held only in memory: the ack ends it here. */
		if (held && in_memory) {
			unsigned how = ack_release(e, m, who, entry, req);
			/* Mode "always": a request is answered once the entry's
			 * release commits, with the receipt (journal.c). */
			int waits = req != NULL && (p = vt__journal_queued(e, ids[i], who)) != NULL;

			if (waits) {
				p->ackreq = req;
			}
			e->stats.acked++;
			if (m->rec.kind == VT_KIND_MESSAGE) {
				const char *g = is_group(m->rec.to) ? m->rec.to : NULL;

				vt__take_delivered(e, who, g, m->rec.from, ids[i], m->rec.cid, how);
			}
			vt_msg_unref(m);
			if (req != NULL && !waits) {
				vt__ackreq_done(e, req, ids[i], 1);
			}
			continue;
		}
		p = vt__batch_add(e, VT_PEND_ACK);
		if (p == NULL) {
			vt_msg_unref(m);
			if (req != NULL) {
				vt__ackreq_done(e, req, ids[i], VT_ENOMEM);
			}
			continue;
		}
		vt__copy(p->user, sizeof(p->user), who->user);
		vt__copy(p->device, sizeof(p->device), who->device);
		p->id = ids[i];
		ack_receipt(e, p, held ? m : NULL);
		if (p->receipt_id != 0) {
			/* Its receipt reaches the sender when it commits: nothing
			 * is pushed to the sender early past it (early.c). */
			if (held) {
				vt__copy(p->origin_user, sizeof(p->origin_user), m->rec.from);
			}
			vt__early_note(e, p);
		}
		vt__acking_add(e, p);
		p->local = held;
		p->ackreq = req;
		if (origin_conn != NULL && req == NULL) {
			origin_conn->refs++;
			p->origin.conn = origin_conn;
		}
		vt_msg_unref(m);
	}
	if (c != NULL) {
		vt__conn_pump(c);
	}
}
