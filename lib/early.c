/*
 * early.c - a held event pushed before its commit.
 *
 * Mode "offline": a held event (hold.c) writes only its sender's (from, cid)
 * pair, and waiting for that commit and its sync is most of the time it
 * takes to reach a recipient who keeps up at light load. With
 * push_before_commit it is pushed when it is taken, and "accepted" still
 * goes to the sender once the pair is durable.
 *
 * Mode "always": a held one-to-one event is pushed when it is taken too, and
 * its PUT waits for the acks of its copies (park.c): a copy acked meanwhile
 * takes no journal entry, and none is deleted again. Only then, or at its
 * due time, does the PUT go to a batch; "accepted" follows its commit.
 *
 * Either way an event is pushed early only when three things hold:
 *
 * - It is no re-send. The store's dedup_peek finds no record under its
 *   (from, cid) among what has committed, and no event taken but not
 *   committed carries the same pair (e->sending). Else the commit decides,
 *   as for any event, and the held copies wait for it.
 * - It passes nothing. An event taken earlier that reaches a user only
 *   when its batch completes (a stored copy, or held copies that waited)
 *   counts that user in e->behind until then; nothing is pushed early to
 *   a user counted there, so each user's events keep their order.
 * - A single node. With a cluster, other nodes write pairs the peek cannot
 *   see in time; the storage backend says so by offering no peek.
 *
 * Its id must not come back either. A crash before its commit leaves the
 * store's highest id below it, and the next start would hand it out again,
 * for another event, to a device that has seen it. So a start over a store
 * that keeps its records (one with a journal) skips EARLY_IDS ids, and an
 * event is pushed early only while its id is less than EARLY_IDS above the
 * highest id known committed (e->id_durable): the store holds that one or
 * a higher one, so every id pushed before a crash lies below what the next
 * start hands out. The first event after a start waits for its commit.
 *
 * The price, documented in docs/PROTOCOL.md: a recipient may read the
 * event before its sender hears "accepted"; if the node dies or the commit
 * fails before the pair is written, the sender's re-send is delivered a
 * second time, under another id. Nothing accepted is lost: in mode "always"
 * "accepted" waits until every copy is acked or journaled. In mode
 * "offline" it costs CPU: a push no longer goes out in the same write as
 * the answers of its commit, so at the peak a message costs about a fifth
 * more (docs/PERFORMANCE.md); hence an option, off by default. In mode
 * "always" the entries it saves weigh more.
 */
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

/* Ids a start skips, and so the most pushed early ahead of a commit. */
#define EARLY_IDS (UINT64_C(1) << 20)

/* Could any event be pushed before its commit here? */
static int early_possible(const struct vt_engine *e)
{
	return e->behind.count != NULL && e->st.ops->dedup_peek != NULL && e->cluster.ops == NULL;
}

void vt__early_ids(struct vt_engine *e)
{
	/* A store that keeps nothing across a restart starts its ids over. */
	e->id_durable = e->next_id - 1;
	e->ids_skipped = e->behind.count != NULL && e->st.ops->replay != NULL;
	if (e->ids_skipped) {
		e->next_id += EARLY_IDS;
	}
}

void vt__early_committed(struct vt_engine *e, uint64_t id)
{
	if (id > e->id_durable) {
		e->id_durable = id;
	}
}

static int dedups(const struct vt_pend *p)
{
	return p->dedup && p->msg->rec.cid != NULL && p->msg->rec.cid[0] != '\0';
}

uint64_t vt__early_pair(const struct vt_record *rec)
{
	uint64_t h = vt_tally_hash(VT_TALLY_SEED, rec->from);

	return vt_tally_hash(vt_tally_hash(h, "\n"), rec->cid);
}

static uint64_t user_hash(const char *user)
{
	return vt_tally_hash(VT_TALLY_SEED, user);
}

/* Is @p, by its (from, cid), surely not a re-send of an event taken before? */
static int fresh(struct vt_engine *e, const struct vt_pend *p)
{
	uint64_t id = 0;

	if (!dedups(p)) {
		return 1;
	}
	if (vt_tally_has(&e->sending, vt__early_pair(&p->msg->rec))) {
		return 0;
	}
	return e->st.ops->dedup_peek(e->st.self, &p->msg->rec, &id) == 0;
}

/* Is anything for @user on its way through a batch? An ACK whose receipt
 * goes to a user storage alone knows (behind_all) counts for every user. */
static int behind(const struct vt_engine *e, const char *user)
{
	return e->behind_all > 0 || vt_tally_has(&e->behind, user_hash(user));
}

/* Held user @i of @p was offered: it leaves the held ones (order does not matter). */
static void drop_held(struct vt_pend *p, uint32_t i)
{
	uint32_t last = p->nusers + p->nheld - 1;

	if (i != last && p->users != NULL) {
		memcpy(p->users[i], p->users[last], sizeof(p->users[i]));
	}
	p->nheld--;
}

/* Offer op @at's held copies now to every user nothing is ahead of. */
static void offer_now(struct vt_engine *e, size_t at)
{
	struct vt_pend *p = &e->cur.pend[at];

	for (uint32_t i = p->nusers + p->nheld; i-- > p->nusers;) {
		const char *user = vt__pend_user(p, i);
		struct vt_user *u = vt__user(e, user);

		if (!behind(e, user)) {
			if (u != NULL) {
				vt__hold_offer(u, NULL, p->msg);
			}
			p = &e->cur.pend[at]; /* see vt__hold_offer */
			drop_held(p, i);
			p->early = 1;
		}
	}
	if (p->hold_own && !behind(e, p->user)) {
		const struct vt_conn *from = p->origin.conn;

		if (from->user != NULL) {
			vt__hold_offer(from->user, from, p->msg);
		}
		p = &e->cur.pend[at];
		p->hold_own = 0;
		p->early = 1;
	}
}

static void count(struct vt_tally *t, uint64_t h, int delta)
{
	if (delta > 0) {
		vt_tally_add(t, h);
	} else {
		vt_tally_sub(t, h);
	}
}

/* Count what @p delivers when it completes, and its pair (@delta 1), or uncount (-1). */
static void note(struct vt_engine *e, struct vt_pend *p, int delta)
{
	for (uint32_t i = 0; i < p->nusers + p->nheld; i++) {
		count(&e->behind, user_hash(vt__pend_user(p, i)), delta);
	}
	if (p->own_copies || p->hold_own) {
		count(&e->behind, user_hash(p->user), delta);
	}
	if (dedups(p)) {
		count(&e->sending, vt__early_pair(&p->msg->rec), delta);
	}
	if (p->kind == VT_PEND_ACK && p->receipt_id != 0) {
		if (p->origin_user[0] != '\0') {
			count(&e->behind, user_hash(p->origin_user), delta); /* its receipt's */
		} else {
			e->behind_all += (uint32_t)delta;
		}
	}
}

/* Mode "always": may @p wait for its acks out of the batches (park.c)? */
static int parkable(const struct vt_engine *e, const struct vt_pend *p)
{
	return e->cfg.durability == VT_DURABLE_ALWAYS && e->cfg.ack_wait_ms > 0 && p->journal &&
	       p->users == NULL && p->nusers == 0 && !p->own_copies && e->healthy &&
	       !e->shutting_down;
}

/* Is any user @p holds copies for counted behind? */
static int any_behind(const struct vt_engine *e, const struct vt_pend *p)
{
	for (uint32_t i = p->nusers; i < p->nusers + p->nheld; i++) {
		if (behind(e, vt__pend_user(p, i))) {
			return 1;
		}
	}
	return p->hold_own && behind(e, p->user);
}

/*
 * Offer every held copy of journaled op @at of *@ops now; none is behind.
 * The op is read again after each offer (see vt__hold_offer).
 */
static void offer_all(struct vt_engine *e, struct vt_pend *const *ops, size_t at)
{
	const struct vt_pend *p = &(*ops)[at];
	struct vt_conn *from = p->origin.conn;
	uint32_t first = p->nusers, end = p->nusers + p->nheld;
	int own = p->hold_own;

	for (uint32_t i = first; i < end; i++) {
		struct vt_user *u = vt__user(e, vt__pend_user(&(*ops)[at], i));

		if (u != NULL) {
			vt__hold_offer_copies(ops, at, u, NULL);
		}
	}
	if (own && from != NULL && from->user != NULL) {
		vt__hold_offer_copies(ops, at, from->user, from);
	}
	(*ops)[at].nheld = 0;
	(*ops)[at].hold_own = 0;
	(*ops)[at].early = 1;
}

/* What vt__early_take does with a PUT. */
enum early_way {
	EARLY_NOT,  /* nothing: its batch decides */
	EARLY_PARK, /* its copies were pushed; it waits for their acks */
	EARLY_RIDE, /* it waits for their acks too, its copies for the last batch */
};

/* Push the held copies of op @at now, if that is safe; how it is to go on. */
static enum early_way push_early(struct vt_engine *e, size_t at)
{
	struct vt_pend *p = &e->cur.pend[at];

	if (e->ids_skipped && p->msg->rec.id - e->id_durable >= EARLY_IDS) {
		return EARLY_NOT; /* too far ahead of what is committed */
	}
	if (e->cfg.durability == VT_DURABLE_OFFLINE) {
		if ((p->nheld > 0 || p->hold_own) && fresh(e, p)) {
			offer_now(e, at);
		}
		return EARLY_NOT;
	}
	if (!parkable(e, p) || !fresh(e, p)) {
		return EARLY_NOT;
	}
	/* Events ahead for its users reach them when their batches complete:
	 * its copies follow them there, and it still writes no entry for a
	 * copy acked in time. Else each such event would make the next one
	 * wait for its batch too, and under steady load never stop. */
	if (any_behind(e, p)) {
		return EARLY_RIDE;
	}
	offer_all(e, &e->cur.pend, at);
	return EARLY_PARK;
}

int vt__early_init(struct vt_engine *e)
{
	int offline = e->cfg.durability == VT_DURABLE_OFFLINE && e->cfg.push_before_commit;
	int always = e->cfg.durability == VT_DURABLE_ALWAYS && e->cfg.ack_wait_ms > 0 &&
		     e->st.ops->replay != NULL;

	if (!offline && !always) {
		return 0;
	}
	if (vt_tally_init(&e->sending) != 0 || vt_tally_init(&e->behind) != 0) {
		vt_tally_free(&e->sending);
		return VT_ENOMEM;
	}
	return 0;
}

void vt__early_free(struct vt_engine *e)
{
	vt_tally_free(&e->behind);
	vt_tally_free(&e->sending);
}

struct vt_pend *vt__early_take(struct vt_engine *e, struct vt_pend *p)
{
	size_t at = (size_t)(p - e->cur.pend);
	enum early_way way;

	if (!early_possible(e)) {
		return p;
	}
	way = push_early(e, at);

	/* An offer may have written copies by ops taken since, which may have
	 * moved the batch's array (see vt__hold_offer). */
	p = &e->cur.pend[at];
	note(e, p, 1);
	p->noted = 1;
	return way == EARLY_NOT ? vt__park_before(e, at) : vt__park(e, p, way == EARLY_RIDE);
}

void vt__early_note(struct vt_engine *e, struct vt_pend *p)
{
	if (early_possible(e) && !p->noted) {
		note(e, p, 1);
		p->noted = 1;
	}
}

void vt__early_behind(struct vt_engine *e, const char *user, int delta)
{
	if (early_possible(e)) {
		count(&e->behind, user_hash(user), delta);
	}
}

void vt__early_ride(struct vt_engine *e, struct vt_pend *p)
{
	for (uint32_t i = p->nusers; i < p->nusers + p->nheld; i++) {
		count(&e->behind, user_hash(vt__pend_user(p, i)), -1);
	}
	if (p->hold_own) {
		count(&e->behind, user_hash(p->user), -1);
	}
	offer_all(e, &p, 0); /* parked: it does not move */
}

void vt__early_done(struct vt_engine *e, struct vt_pend *p)
{
	if (p->noted) {
		note(e, p, -1);
		p->noted = 0;
	}
}
