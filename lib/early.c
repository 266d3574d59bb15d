/*
 * early.c - mode "offline": a held event pushed before its commit.
 *
 * A held event (hold.c) writes only its sender's (from, cid) pair, and
 * waiting for that commit and its sync is most of the time it takes to
 * reach a recipient who keeps up at light load. With push_before_commit it
 * is pushed when it is taken, and "accepted" still goes to the sender once
 * the pair is durable, when three things hold:
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
 * The price, documented in docs/PROTOCOL.md: a recipient may read the
 * event before its sender hears "accepted"; if the node dies or the commit
 * fails before the pair is written, the sender's re-send is delivered a
 * second time, under another id. And CPU: a push no longer goes out in the
 * same write as the answers of its commit, so at the peak a message costs
 * about a fifth more (docs/PERFORMANCE.md); hence an option, off by default.
 */
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

/* Could any event be pushed before its commit here? */
static int early_possible(const struct vt_engine *e)
{
	return e->behind.count != NULL && e->st.ops->dedup_peek != NULL && e->cluster.ops == NULL;
}

static int dedups(const struct vt_pend *p)
{
	return p->dedup && p->msg->rec.cid != NULL && p->msg->rec.cid[0] != '\0';
}

static uint64_t pair_hash(const struct vt_record *rec)
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
	if (vt_tally_has(&e->sending, pair_hash(&p->msg->rec))) {
		return 0;
	}
	return e->st.ops->dedup_peek(e->st.self, &p->msg->rec, &id) == 0;
}

static int behind(const struct vt_engine *e, const char *user)
{
	return vt_tally_has(&e->behind, user_hash(user));
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

/* Offer @p's held copies now to every user nothing is ahead of. */
static void offer_now(struct vt_engine *e, struct vt_pend *p)
{
	for (uint32_t i = p->nusers + p->nheld; i-- > p->nusers;) {
		const char *user = vt__pend_user(p, i);

		if (!behind(e, user)) {
			vt__hold_offer(vt__user(e, user), NULL, p->msg);
			drop_held(p, i);
			p->early = 1;
		}
	}
	if (p->hold_own && !behind(e, p->user)) {
		const struct vt_conn *from = p->origin.conn;

		vt__hold_offer(from->user, from, p->msg);
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
		count(&e->sending, pair_hash(&p->msg->rec), delta);
	}
}

int vt__early_init(struct vt_engine *e)
{
	if (e->cfg.durability != VT_DURABLE_OFFLINE || !e->cfg.push_before_commit) {
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

void vt__early_take(struct vt_engine *e, struct vt_pend *p)
{
	if (!early_possible(e)) {
		return;
	}
	if ((p->nheld > 0 || p->hold_own) && fresh(e, p)) {
		offer_now(e, p);
	}
	note(e, p, 1);
	p->noted = 1;
}

void vt__early_done(struct vt_engine *e, struct vt_pend *p)
{
	if (p->noted) {
		note(e, p, -1);
		p->noted = 0;
	}
}
