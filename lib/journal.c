/*
 * journal.c - mode "always" holds events in memory too, journaled.
 *
 * Mode "offline" holds an event for recipients whose devices keep up
 * (hold.c) and writes nothing of it but its (from, cid) pair, so a crash
 * loses it. Mode "always" holds it the same way over a store that keeps a
 * journal (the storage contract's replay()): its PUT writes, in the commit
 * that answers "accepted", a journal entry per held copy instead of a
 * stored delivery, with its indexes, per device. A crash leaves the
 * entries, and replay makes their deliveries at the next start. Once a
 * copy was acked, or its write committed (its device went offline: conn.c,
 * item_offline), a RELEASE forgets its entry.
 *
 * Each copy has an entry of its own, for its device: a crash delivers again
 * only the copies not acked yet, and only to the devices that held them.
 * The devices are named when the event is taken (all of a held user's
 * registered devices are connected then); vt__hold() offers copies to those
 * only: a device registered since gets none, as it would get none stored.
 *
 * An ack's receipt joins the batch of its release, or one before it
 * (receipts.c), so a crash never keeps the release and loses the receipt. A
 * receipt for a sender who keeps up is itself journaled and held (hold.c,
 * journal_receipt), by a PUT in the same batch. A POST /v1/ack is answered
 * once the releases of its copies commit, as a stored ack is once its
 * delete does: an answered ack does not come back after a crash.
 *
 * A group post is held and journaled the same way, a copy and an entry per
 * member's device. Its members' receipts gather for a while (receipts.c),
 * so an ack of its copy over a WebSocket does not release the entry at
 * once: the release joins the batch the group's receipt is put in. A crash
 * before that delivers the acked copy once more, as it would after any ack
 * whose release had not committed yet, and its ack then makes the receipt
 * again. A POST /v1/ack of such a copy releases at once and sends the
 * group's receipt at the same flush, without gathering, since it is
 * answered once its release commits.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

int vt__journal_on(const struct vt_engine *e)
{
	return e->cfg.durability == VT_DURABLE_ALWAYS && e->st.ops->replay != NULL &&
	       e->cluster.ops == NULL;
}

/* How many devices of @u but @skip are connected; their names' bytes added to *@bytes. */
static uint32_t conns_of(const struct vt_user *u, const struct vt_conn *skip, size_t *bytes)
{
	uint32_t n = 0;

	for (const struct vt_conn *c = u != NULL ? u->conns : NULL; c != NULL; c = c->sib) {
		if (c != skip) {
			*bytes += strlen(c->id.user) + strlen(c->id.device) + 2;
			n++;
		}
	}
	return n;
}

/* Copy @s to *@at, moving *@at past it and its NUL; the copy. */
static const char *put_name(char **at, const char *s)
{
	size_t n = strlen(s) + 1;
	char *copy = memcpy(*at, s, n);

	*at += n;
	return copy;
}

static void add_devices(struct vt_pend *p, const struct vt_user *u, const struct vt_conn *skip,
			char **names)
{
	for (const struct vt_conn *c = u != NULL ? u->conns : NULL; c != NULL; c = c->sib) {
		struct vt_dev *d = &p->held_to[p->nheld_to];

		if (c == skip) {
			continue;
		}
		d->user = put_name(names, c->id.user);
		d->device = put_name(names, c->id.device);
		d->offered = 0;
		d->settled = 0;
		p->nheld_to++;
	}
}

/* Nothing is held after all: every recipient is stored. */
static void store_all(struct vt_pend *p)
{
	p->nusers += p->nheld;
	p->nheld = 0;
	if (p->hold_own) {
		p->hold_own = 0;
		p->own_copies = 1;
	}
}

/*
 * Room for @size bytes of devices and names: a block of the engine's pool
 * when they fit one (most users have a device or two), else an allocation.
 */
static struct vt_dev *held_alloc(struct vt_engine *e, struct vt_pend *p, size_t size)
{
	p->held_pooled = size <= VT_HELD_BLOCK;
	return p->held_pooled ? vt_pool_get(&e->held_blocks) : malloc(size);
}

void vt__journal_devices_free(struct vt_engine *e, struct vt_pend *p)
{
	if (p->held_pooled) {
		vt_pool_put(&e->held_blocks, p->held_to);
	} else {
		free(p->held_to);
	}
	p->held_to = NULL;
	p->nheld_to = 0;
	p->held_pooled = 0;
}

int vt__journal_devices(struct vt_engine *e, struct vt_pend *p, const struct vt_conn *from)
{
	uint32_t n = 0;
	size_t bytes = 0;
	char *names;

	for (uint32_t i = p->nusers; i < p->nusers + p->nheld; i++) {
		n += conns_of(vt__user(e, vt__pend_user(p, i)), NULL, &bytes);
	}
	if (p->hold_own && from != NULL) {
		n += conns_of(from->user, from, &bytes);
	}
	p->held_to = n > 0 ? held_alloc(e, p, n * sizeof(*p->held_to) + bytes) : NULL;
	if (p->held_to == NULL) {
		store_all(p);
		return n > 0 ? VT_ENOMEM : 0;
	}

	/* A member's device takes 24 bytes and its names, not two whole ids. */
	names = (char *)(p->held_to + n);
	for (uint32_t i = p->nusers; i < p->nusers + p->nheld; i++) {
		add_devices(p, vt__user(e, vt__pend_user(p, i)), NULL, &names);
	}
	if (p->hold_own && from != NULL) {
		add_devices(p, from->user, from, &names);
	}
	p->journal = 1;
	return 0;
}

/*
 * Copies are offered in the order their devices were named (hold.c walks
 * the users in the same order), so the look starts where the last one
 * ended: a post to a thousand members finds each device at once, not after
 * a walk of the ones before it.
 */
struct vt_dev *vt__journal_dev(struct vt_pend *p, const struct vt_conn *c)
{
	for (uint32_t k = 0; k < p->nheld_to; k++) {
		uint32_t i = (p->next_dev + k) % p->nheld_to;
		struct vt_dev *d = &p->held_to[i];

		if (strcmp(d->user, c->id.user) == 0 && strcmp(d->device, c->id.device) == 0) {
			p->next_dev = i + 1;
			return d;
		}
	}
	return NULL;
}

void vt__journal_release(struct vt_engine *e, uint64_t id, const char *user, const char *device)
{
	struct vt_pend *p = vt__batch_add(e, VT_PEND_RELEASE);

	if (p == NULL) {
		/* The entry stays: the next start delivers it once more. */
		vt_log(VT_LOG_WARN, "journal entry kept: out of memory id=%llu user=%s device=%s",
		       (unsigned long long)id, user, device);
		return;
	}
	p->id = id;
	vt__copy(p->user, sizeof(p->user), user);
	vt__copy(p->device, sizeof(p->device), device);
}

typedef void copy_fn(struct vt_engine *e, struct vt_msg *m, const char *user,
		     const char *device);

/* @fn for each copy of @p's event that vt__hold() did not offer. */
static void each_unoffered(struct vt_engine *e, struct vt_pend *p, copy_fn *fn)
{
	for (uint32_t i = 0; i < p->nheld_to; i++) {
		if (!p->held_to[i].offered) {
			fn(e, p->msg, p->held_to[i].user, p->held_to[i].device);
		}
	}
}

/* @fn for each held copy the write @p (OFFLINE or a late STORE) is for. */
static void each_written(struct vt_engine *e, struct vt_pend *p, copy_fn *fn)
{
	if (p->kind == VT_PEND_OFFLINE) {
		fn(e, p->msg, p->user, p->device);
	} else {
		each_unoffered(e, p, fn);
	}
}

static void release_copy(struct vt_engine *e, struct vt_msg *m, const char *user,
			 const char *device)
{
	vt__park_out(e, m);
	vt__journal_release(e, m->rec.id, user, device);
}

void vt__journal_unoffered(struct vt_engine *e, struct vt_pend *p)
{
	each_unoffered(e, p, release_copy);
}

/*
 * Copies to write again, at most: each holds its event in memory. Past
 * this many, a refused copy waits in its entry for the next start alone.
 */
#define UNWRITTEN_MAX 65536

/* Put @u back on the copies to write again. */
static void unwritten_push(struct vt_engine *e, struct vt_unwritten *u)
{
	u->next = e->unwritten;
	e->unwritten = u;
	e->nunwritten++;
}

/*
 * Keep @m's copy for (@user, @device) to write again; its entry stays
 * meanwhile. Until it is written @user counts as late (hold.c): what comes
 * for it later is stored and listed behind this copy, not pushed ahead of it.
 */
static void keep_unwritten(struct vt_engine *e, struct vt_msg *m, const char *user,
			   const char *device)
{
	struct vt_unwritten *u = NULL;

	if (e->nunwritten < UNWRITTEN_MAX && !e->destroying) {
		u = malloc(sizeof(*u));
	}
	if (u == NULL) {
		vt_log(VT_LOG_WARN, "held event not written id=%llu user=%s device=%s: its "
		       "journal entry is kept, delivered at the next start",
		       (unsigned long long)m->rec.id, user, device);
		return;
	}
	u->msg = vt_msg_ref(m);
	vt__copy(u->user, sizeof(u->user), user);
	vt__copy(u->device, sizeof(u->device), device);
	unwritten_push(e, u);
	vt__hold_late_begin(e, user);
}

/*
 * A copy written again is in storage now: offered to its device if connected,
 * which, its user still late, lists it with what was stored behind it.
 */
static void rewritten(struct vt_engine *e, struct vt_pend *p)
{
	struct vt_conn *c = vt__conn_find(e, p->user, p->device);

	if (c != NULL) {
		vt__conn_offer(c, p->msg);
	}
}

/*
 * A copy written because its device went offline, or its user stopped
 * keeping up, is released only once the write commits: storage may refuse
 * the write op by op but take the release, which would lose the event. (A
 * full store takes the write: the journal keeps its room; a failing disk
 * may not.) A refused write keeps its entry, and the copy is written again
 * until storage takes it (vt__journal_rewrite), so that its device gets it
 * then, not only after the next start replays the entry.
 */
void vt__journal_written(struct vt_engine *e, struct vt_pend *p, int ok)
{
	if (ok) {
		each_written(e, p, release_copy);
		if (p->rewrite) {
			rewritten(e, p);
		}
	} else {
		vt__log_limited(&e->unwritten_log, VT_LOG_WARN, "held event not written id=%llu: "
				"its journal entries are kept, and it is written again once "
				"storage takes it", (unsigned long long)p->msg->rec.id);
		each_written(e, p, keep_unwritten);
	}
	if (p->rewrite) {
		vt__hold_late_done(e, p->user); /* kept again, or written */
	}
}

void vt__journal_rewrite(struct vt_engine *e)
{
	struct vt_unwritten *u = e->unwritten;

	e->unwritten = NULL;
	e->nunwritten = 0;
	while (u != NULL) {
		struct vt_unwritten *next = u->next;
		struct vt_pend *p = vt__batch_put(e, VT_PEND_OFFLINE, u->msg);

		if (p == NULL) {
			unwritten_push(e, u); /* still late: the next sweep tries again */
			u = next;
			continue;
		}
		vt__copy(p->user, sizeof(p->user), u->user);
		vt__copy(p->device, sizeof(p->device), u->device);
		p->release = 1;
		p->rewrite = 1;
		vt_msg_unref(u->msg);
		free(u);
		u = next;
	}
}

void vt__journal_unwritten_free(struct vt_engine *e)
{
	while (e->unwritten != NULL) {
		struct vt_unwritten *u = e->unwritten;

		e->unwritten = u->next;
		vt_msg_unref(u->msg);
		free(u);
	}
	e->nunwritten = 0;
}

struct vt_pend *vt__journal_queued(struct vt_engine *e, uint64_t id,
				   const struct vt_identity *who)
{
	struct vt_pend *p;

	if (e->cur.len == 0) {
		return NULL;
	}
	/* Its device too: another device's release of the same id, queued
	 * just before, must not carry this request's answer. */
	p = &e->cur.pend[e->cur.len - 1];
	if (p->kind != VT_PEND_RELEASE || p->id != id || p->ackreq != NULL) {
		return NULL;
	}
	return strcmp(p->user, who->user) == 0 && strcmp(p->device, who->device) == 0 ? p : NULL;
}

/*
 * The gauge counts an entry until its release commits: one that reads 0
 * tells that a crash now would deliver nothing held again.
 */
void vt__journal_release_done(struct vt_engine *e, const struct vt_pend *p, int status)
{
	if (status != 0) {
		vt_log(VT_LOG_WARN, "journal entry kept id=%llu: %s; delivered again at the next "
		       "start", (unsigned long long)p->id, vt_strerror(status));
	} else {
		e->stats.journal_open--;
	}
	if (p->ackreq != NULL) {
		vt__ackreq_done(e, p->ackreq, p->id, status < 0 ? status : 1);
	}
}

int vt__journal_replay(struct vt_engine *e)
{
	uint64_t n = 0;
	int rc;

	if (e->st.ops->replay == NULL) {
		return 0;
	}
	rc = e->st.ops->replay(e->st.self, &n);
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "replaying the journal failed: %s", vt_strerror(rc));
		return rc;
	}
	/* The store logs how many it delivered. */
	return 0;
}
