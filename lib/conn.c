/*
 * conn.c - connected devices: their push queues, acks, retries and close.
 *
 * A connection's queue holds what is owed to its device, in id order: up to
 * twice the window of stored events, and in mode "offline" up to hold_queue
 * held ones (hold.c). At most `window` of them are pushed and un-acked at a
 * time. What does not fit stays in storage (the backlog) and is listed from
 * there as acks make room, so a device with a long backlog costs a bounded
 * amount of memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

/* A held copy's cost beyond twice its body: the queue entry, the message's
 * struct and ids, the push frame's envelope, the allocator's headers. */
#define HELD_FIXED 384

static uint32_t queue_cap(const struct vt_conn *c)
{
	return 2 * c->e->cfg.window;
}

/*
 * What a held copy counts against --hold-memory: its queue entry, the
 * message (ids and body) and the frame that pushes it, which repeats the
 * body inside the envelope. Estimated, not measured: the allocator's own
 * overhead varies, and a group post's message is shared by every member's
 * copy yet counted for each, so the bound errs on the safe side.
 */
uint32_t vt__held_cost(size_t body_len)
{
	return (uint32_t)(HELD_FIXED + 2 * body_len);
}

/*
 * Give an unlinked item back to the pool, and its bytes to the hold budget.
 * A held copy is done with: acked, or stored (item_offline) already.
 */
static void item_free(struct vt_engine *e, struct vt_item *it)
{
	if (it->journaled) {
		vt__park_out(e, it->msg);
		vt__journal_release(e, it->msg->rec.id, it->conn->id.user, it->conn->id.device);
	}
	e->stats.held_bytes -= it->held;
	vt_pool_put(&e->items, it);
}

int vt__conn_expired(struct vt_conn *c)
{
	return vt__wall(c->e) / 1000 >= c->id.exp;
}

static void conn_free(struct vt_conn *c)
{
	vt_slab_free(&c->e->conn_slab, c);
}

void vt__conn_unref(struct vt_conn *c)
{
	if (--c->refs == 0 && c->gone) {
		conn_free(c);
	}
}

void vt__conn_send(struct vt_conn *c, const char *data, size_t len)
{
	int rc;

	if (c->closing || c->gone) {
		return;
	}
	rc = c->ops->send(c->ctx, data, len);
	if (rc == VT_EAGAIN) {
		/* A control answer (accepted, error) is not queued past the
		 * bound: the client re-sends, and dedup answers it again. */
		vt_log(VT_LOG_DEBUG, "answer dropped, queue full user=%s", c->id.user);
	}
}

/*
 * Write @m, held so far, for @c's device; with @journaled, release that
 * copy's journal entry once it is written (journal.c).
 */
static void store_for(struct vt_conn *c, struct vt_msg *m, int journaled)
{
	struct vt_pend *p;

	if (journaled) {
		vt__park_out(c->e, m); /* its entry is written before this copy */
	}
	p = vt__batch_put(c->e, VT_PEND_OFFLINE, m);

	if (p != NULL) {
		vt__copy(p->user, sizeof(p->user), c->id.user);
		vt__copy(p->device, sizeof(p->device), c->id.device);
		p->release = journaled != 0;
	} else {
		vt_log(VT_LOG_ERROR, "held event lost: out of memory id=%llu user=%s device=%s",
		       (unsigned long long)m->rec.id, c->id.user, c->id.device);
	}
}

/*
 * An item leaves its connection un-acked: it is offline for that device now.
 * One held in memory (hold.c) is written to storage; the push
 * hook hears of it once, unless it heard already.
 */
static void item_offline(struct vt_conn *c, struct vt_item *it)
{
	struct vt_engine *e = c->e;

	if (it->held) {
		/* The entry goes once the copy is written, not with the item:
		 * a full store refuses the write but takes a release. */
		store_for(c, it->msg, (int)it->journaled);
		it->journaled = 0;
	}
	/* A server going down, or a device connecting again, is no news to
	 * push: the device is back, or will be soon. */
	if (!it->notified && !e->shutting_down && !c->replaced) {
		it->notified = vt__notify(e, &it->msg->rec, c->id.user, c->id.device);
	}
	e->stats.offline++;
}

/* Take every queued item off the connection; pushed ones go offline. */
static void drop_queue(struct vt_conn *c)
{
	struct vt_engine *e = c->e;
	struct vt_item *it = c->head;

	while (it != NULL) {
		struct vt_item *next = it->next;
		struct vt_msg *m = it->msg;

		vt_timers_remove(&e->timers, it);
		if (it->attempts > 0 || it->held) {
			item_offline(c, it);
		}
		item_free(e, it);
		vt_msg_unref(m);
		it = next;
	}
	c->head = c->tail = c->unpushed = NULL;
	c->nqueued = c->npushed = 0;
}

struct vt_user *vt__user(const struct vt_engine *e, const char *user)
{
	return vt_map_get(&e->users, user);
}

struct vt_conn *vt__conn_find(const struct vt_engine *e, const char *user, const char *device)
{
	struct vt_user *u = vt__user(e, user);

	for (struct vt_conn *c = u ? u->conns : NULL; c != NULL; c = c->sib) {
		if (strcmp(c->id.device, device) == 0) {
			return c;
		}
	}
	return NULL;
}

/* Link @c under its user, making the user if it is the first connection. */
static int attach(struct vt_conn *c)
{
	struct vt_engine *e = c->e;
	struct vt_user *u = vt__user(e, c->id.user);

	if (u == NULL) {
		u = calloc(1, sizeof(*u));
		if (u == NULL) {
			return VT_ENOMEM;
		}
		if (vt_map_put(&e->users, c->id.user, u) != 0) {
			free(u);
			return VT_ENOMEM;
		}
	}
	c->sib = u->conns;
	u->conns = c;
	u->nconns++;
	c->user = u;
	return 0;
}

static void detach(struct vt_conn *c)
{
	struct vt_engine *e = c->e;
	struct vt_user *u = c->user;

	if (u != NULL) {
		vt__sender_keep(e, c->id.user, &c->events);
		struct vt_conn **pp = &u->conns;

		while (*pp != NULL && *pp != c) {
			pp = &(*pp)->sib;
		}
		if (*pp == c) {
			*pp = c->sib;
			u->nconns--;
		}
		if (u->conns == NULL) {
			vt_map_del(&e->users, c->id.user);
			free(u);
		}
		c->user = NULL;
		vt__cluster_attach(e, c, 0);
	}
	drop_queue(c);
}

void vt__conn_kill(struct vt_conn *c, int code, const char *reason)
{
	if (c->closing) {
		return;
	}
	c->closing = 1;
	detach(c);
	vt_log(VT_LOG_INFO, "closing conn=%llu user=%s code=%d reason=\"%s\"",
	       (unsigned long long)c->serial, c->id.user, code, reason);
	c->ops->close(c->ctx, code, reason);
}

/*
 * A newer connection of the same device took over, on this node or another:
 * the device is back, so what @c leaves un-acked wakes nobody.
 */
void vt__conn_replace(struct vt_conn *c)
{
	c->replaced = 1;
	vt__conn_kill(c, VT_CLOSE_REPLACED, "replaced by a newer connection");
}

int vt_conn_open(struct vt_engine *e, const struct vt_identity *id,
		 const struct vt_transport_ops *ops, void *ctx, struct vt_conn **out)
{
	struct vt_conn *c, *old;

	if (e->shutting_down) {
		return VT_EBUSY;
	}
	if (vt__wall(e) / 1000 >= id->exp) {
		return VT_EEXPIRED;
	}
	if (vt_engine_revoked(e, id) != 0) {
		return VT_EREVOKED;
	}
	c = vt_slab_zalloc(&e->conn_slab);
	if (c == NULL) {
		return VT_ENOMEM;
	}
	c->e = e;
	c->serial = ++e->conn_serial;
	c->ops = ops;
	c->ctx = ctx;
	c->since_ms = vt__wall(e);
	c->id = *id;
	c->inbox.user = c->id.user;
	c->inbox.device = c->id.device;
	c->backlog = 1;
	c->touching = 1;

	/*
	 * One live connection per device. A newer one replaces an older one,
	 * which a client that lost its network without a FIN leaves behind.
	 * One on another node is closed there, once the cluster tells it of
	 * this one (vt_engine_replace).
	 */
	old = vt__conn_find(e, id->user, id->device);
	if (old != NULL) {
		c->events = old->events; /* a new connection is no new budget */
		vt__conn_replace(old);
	} else {
		vt__sender_resume(e, id->user, &c->events);
	}
	if (attach(c) != 0) {
		conn_free(c);
		return VT_ENOMEM;
	}
	c->next = e->conns;
	if (e->conns != NULL) {
		e->conns->prev = c;
	}
	e->conns = c;
	e->stats.connections++;
	*out = c;

	vt_log(VT_LOG_INFO, "connected conn=%llu user=%s device=%s", (unsigned long long)c->serial,
	       id->user, id->device);
	vt__cluster_attach(e, c, 1);

	/* Listing waits for the registration: a first device claims what was
	 * held for its user before it existed. */
	vt__batch_touch(e, &c->id, c, NULL);
	return 0;
}

void vt__conn_touched(struct vt_conn *c, uint32_t ndevices)
{
	c->touching = 0;
	if (c->user != NULL && ndevices > 0) {
		c->user->ndevices = ndevices;
	}
	vt__conn_pump(c);
}

void vt_conn_close(struct vt_conn *c)
{
	struct vt_engine *e;

	if (c == NULL || c->gone) {
		return;
	}
	e = c->e;
	if (!c->closing) {
		c->closing = 1;
		detach(c);
	}
	if (!e->shutting_down) {
		/* Last seen: a device unused for long is forgotten. */
		vt__batch_touch(e, &c->id, NULL, NULL);
	}
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		e->conns = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	e->stats.connections--;
	vt_log(VT_LOG_INFO, "disconnected conn=%llu user=%s device=%s",
	       (unsigned long long)c->serial, c->id.user, c->id.device);

	c->gone = 1;
	if (c->refs == 0) {
		conn_free(c);
	}
}

void vt_conn_receive(struct vt_conn *c, const char *data, size_t len)
{
	struct vt_origin o = {.conn = c, .owed = 1};

	if (c->closing) {
		return;
	}
	if (vt__conn_expired(c)) {
		vt__conn_kill(c, VT_CLOSE_TOKEN_EXPIRED, "token expired");
		return;
	}
	c->refs++;
	c->owed++;

	/* Most frames a device sends ack the oldest of what it was pushed:
	 * the queue's head, pushed long enough ago to have left the caches,
	 * is fetched while the frame is parsed. */
	if (c->head != NULL) {
		__builtin_prefetch(c->head);
	}
	vt__clock_hold(c->e);
	vt__take_event(c->e, &c->id, data, len, o);
	vt__clock_release(c->e);
}

int vt_conn_busy(const struct vt_conn *c)
{
	return c->owed >= (c->npushed > 0 ? VT_CONN_OWED_ACKING_MAX : VT_CONN_OWED_MAX);
}

void vt_conn_writable(struct vt_conn *c)
{
	struct vt_engine *e = c->e;

	c->blocked = 0;
	vt__clock_hold(e);
	vt__conn_pump(c);
	vt__clock_release(e);
}

/* Queue @m; 0, or VT_ENOMEM with the connection marked as having a backlog. */
static int append(struct vt_conn *c, struct vt_msg *m, uint32_t notified, uint32_t held,
		  uint32_t journaled)
{
	struct vt_item *it = vt_pool_zget(&c->e->items);

	if (it == NULL) {
		/* It stays in storage (or goes there) and comes on reconnect. */
		c->backlog = 1;
		c->backlog_gen++;
		return VT_ENOMEM;
	}
	it->msg = vt_msg_ref(m);
	it->conn = c;
	it->notified = notified;
	it->held = held ? vt__held_cost(m->rec.body_len) : 0;
	it->journaled = journaled;
	c->e->stats.held_bytes += it->held;
	if (c->tail != NULL) {
		c->tail->next = it;
	} else {
		c->head = it;
	}
	c->tail = it;
	if (c->unpushed == NULL) {
		c->unpushed = it;
	}
	c->nqueued++;
	if (c->nqueued > c->e->stats.queue_high_water) {
		c->e->stats.queue_high_water = c->nqueued;
	}
	if (m->rec.id > c->cursor) {
		c->cursor = m->rec.id;
	}
	return 0;
}

void vt__conn_rewind(struct vt_conn *c, uint64_t after)
{
	/* From just below the lowest id that may have been passed over: a
	 * listing from the very start would page through the whole backlog
	 * every time the queue drains, which under load is most of the time. */
	if (!c->rewind || after < c->rewind_after) {
		c->rewind_after = after;
	}
	c->rewind = 1;
}

/* Is event @id in the connection's queue now? */
static int queued(const struct vt_conn *c, uint64_t id)
{
	for (const struct vt_item *it = c->head; it != NULL; it = it->next) {
		if (it->msg->rec.id == id) {
			return 1;
		}
	}
	return 0;
}

void vt__conn_offer(struct vt_conn *c, struct vt_msg *m)
{
	if (c->closing) {
		return;
	}
	/* A listing may have taken it already: a device registered in the same
	 * batch lists its inbox, which holds the whole batch, before the
	 * batch's later events are routed. */
	if (m->rec.id <= c->cursor && queued(c, m->rec.id)) {
		return;
	}
	if (c->backlog || c->fetching || c->blocked || c->nqueued >= queue_cap(c) ||
	    vt__hold_late(c->e, c->id.user)) {
		/* Stored already: it is listed in order when the queue drains. A
		 * client that stopped reading holds no more than it was pushed.
		 * An older event, held at its take, may still be on its way to
		 * storage: this one waits there behind it (hold.c, store_late).
		 * With several nodes its id may sit below what was listed. */
		if (m->rec.id <= c->cursor) {
			vt__conn_rewind(c, m->rec.id - 1);
		}
		c->backlog = 1;
		c->backlog_gen++;
		return;
	}
	append(c, m, 0, 0, 0);
	vt__conn_pump(c);
}

int vt__conn_hold(struct vt_conn *c, struct vt_msg *m, int journaled)
{
	if (c->closing || (m->rec.id <= c->cursor && queued(c, m->rec.id))) {
		return 0;
	}
	if (append(c, m, 0, 1, (uint32_t)journaled) != 0) {
		/* Nothing else holds it for this device: it is written, and
		 * comes from storage, by a later listing or on reconnect. */
		store_for(c, m, journaled);
		return journaled;
	}
	vt__conn_pump(c);
	return 1;
}

static uint64_t backoff(const struct vt_engine *e, uint32_t attempts)
{
	uint64_t t = e->cfg.ack_timeout_ms;

	for (uint32_t i = 1; i < attempts && t < e->cfg.backoff_max_ms; i++) {
		t *= 2;
	}
	if (e->cfg.backoff_max_ms > 0 && t > e->cfg.backoff_max_ms) {
		t = e->cfg.backoff_max_ms;
	}
	return t;
}

/* Write one item; 0, or VT_EAGAIN when the transport is full. */
static int push(struct vt_conn *c, struct vt_item *it)
{
	struct vt_engine *e = c->e;
	const char *frame;
	size_t len;
	int rc;

	frame = vt_msg_frame(it->msg, &len);
	if (frame == NULL) {
		return VT_ENOMEM;
	}
	if (c->ops->send_frame != NULL) {
		rc = c->ops->send_frame(c->ctx, (struct vt_frame *)(void *)it->msg);
	} else {
		rc = c->ops->send(c->ctx, frame, len);
	}
	if (rc == VT_EAGAIN) {
		c->blocked = 1;
	}
	if (rc != 0) {
		return rc;
	}
	if (it->attempts > 0) {
		e->stats.retried++;
	}
	it->attempts++;
	e->stats.pushed++;
	vt_log(VT_LOG_DEBUG, "pushed id=%llu conn=%llu attempt=%u",
	       (unsigned long long)it->msg->rec.id, (unsigned long long)c->serial, it->attempts);
	it->deadline = vt__now(e) + backoff(e, it->attempts);
	vt_timers_remove(&e->timers, it);
	vt_timers_add(&e->timers, it);
	return 0;
}

static void on_list(void *arg, int status, const struct vt_record *recs, size_t n);

static void fetch(struct vt_conn *c)
{
	struct vt_engine *e = c->e;
	uint32_t want = queue_cap(c) - c->nqueued;

	c->fetching = 1;
	c->refs++;
	c->e->pending_calls++;
	c->fetch_gen = c->backlog_gen;
	c->fetch_want = want;
	c->remote_acks = 0;
	c->rewinding = c->rewind;
	c->rewind = 0;
	c->fetch_after = c->rewinding ? c->rewind_after : c->cursor;
	e->st.ops->list(e->st.self, &c->inbox, c->fetch_after, want,
			on_list, c);
}

static void on_list(void *arg, int status, const struct vt_record *recs, size_t n)
{
	struct vt_conn *c = arg;
	struct vt_engine *e = c->e;

	e->pending_calls--;
	c->fetching = 0;
	if (c->gone || c->closing) {
		vt__conn_unref(c);
		return;
	}
	if (status < 0) {
		/* Retried by the once-a-second sweep, not at once: a store that
		 * keeps failing (a restarting Redis) would otherwise be asked
		 * again on every turn, and the log would say so every time. */
		c->list_failed = 1;
		if (c->rewinding) {
			/* What it was to find below the cursor is still owed. */
			vt__conn_rewind(c, c->fetch_after);
		}
		if (!c->list_warned) {
			vt_log(VT_LOG_WARN, "listing inbox of user=%s failed: %s", c->id.user,
			       vt_error_name(status));
		}
		c->list_warned = 1;
	} else if (c->list_warned) {
		vt_log(VT_LOG_INFO, "listing inbox of user=%s works again", c->id.user);
		c->list_warned = 0;
	}

	if (c->remote_acks > 1) {
		/* Several were acked elsewhere meanwhile: this listing may hold
		 * any of them. Ask again, as this one asked. */
		n = 0;
		if (c->rewinding) {
			vt__conn_rewind(c, c->fetch_after);
		}
		c->backlog_gen++;
	}
	for (size_t i = 0; i < n; i++) {
		struct vt_msg *m;

		if (recs[i].id <= c->cursor && (!c->rewinding || queued(c, recs[i].id))) {
			continue;
		}
		/* Listed from the start: what the client acked a moment ago is
		 * still stored until its batch commits. */
		if (c->rewinding && recs[i].id <= c->cursor &&
		    vt__batch_acking(e, &c->inbox, recs[i].id)) {
			continue;
		}
		if (c->remote_acks == 1 && recs[i].id == c->remote_id) {
			continue;
		}
		m = vt_msg_new(recs[i].kind, recs[i].from, recs[i].to, recs[i].cid, recs[i].ts,
			       recs[i].body, recs[i].body_len);
		if (m == NULL) {
			break;
		}
		m->rec.id = recs[i].id;
		append(c, m, (recs[i].flags & VT_REC_NOTIFIED) != 0, 0, 0);
		vt_msg_unref(m);
	}

	/* A full page from the start that did not reach the cursor: what was
	 * owed below it may sit on the next page. */
	if (status == 0 && c->rewinding && n > 0 && n == c->fetch_want &&
	    recs[n - 1].id < c->cursor) {
		vt__conn_rewind(c, recs[n - 1].id);
	}

	/* Drained, unless something was left in storage while we listed. */
	if (status == 0 && n < c->fetch_want && c->fetch_gen == c->backlog_gen) {
		c->backlog = 0;
	}
	c->refs--;
	vt__conn_pump(c);
	if (c->refs == 0 && c->gone) {
		conn_free(c);
	}
}

void vt__conn_pump(struct vt_conn *c)
{
	struct vt_engine *e = c->e;
	int earliest = 0; /* a push holds the earliest deadline now */

	if (c->closing || c->gone) {
		return;
	}
	if (vt__conn_expired(c)) {
		vt__conn_kill(c, VT_CLOSE_TOKEN_EXPIRED, "token expired");
		return;
	}

	/*
	 * In queue order, stopping at the first push that fails: a later event
	 * must not overtake one that could not be written (out of memory, say).
	 */
	for (; c->unpushed != NULL && !c->blocked; c->unpushed = c->unpushed->next) {
		if (c->npushed >= e->cfg.window || push(c, c->unpushed) != 0) {
			break;
		}
		c->npushed++;
		earliest |= vt_timers_is_first(&e->timers, c->unpushed);
	}

	/* Only a deadline earlier than every other moves the host's timer. */
	if (earliest) {
		vt__timers_changed(e);
	}
	if (c->backlog && !c->fetching && !c->touching && !c->blocked && !c->list_failed &&
	    c->nqueued < e->cfg.window && !vt__hold_late(e, c->id.user)) {
		fetch(c);
	}
}

static void unlink_item(struct vt_conn *c, struct vt_item *it, struct vt_item *prev)
{
	if (prev != NULL) {
		prev->next = it->next;
	} else {
		c->head = it->next;
	}
	if (c->tail == it) {
		c->tail = prev;
	}
	if (c->unpushed == it) {
		c->unpushed = it->next;
	}
	c->nqueued--;
	if (it->attempts > 0) {
		c->npushed--;
	}
	vt_timers_remove(&c->e->timers, it);
}

/*
 * Past twice the window a queue holds only held events never pushed: one
 * from storage is queued only into a shallower queue, pushes go in queue
 * order, and nothing moves back. No client has seen their ids, so an ack
 * does not look there; else an ack of an unknown id would walk up to
 * --hold-queue items, 256 times per envelope.
 */
int vt__conn_ack(struct vt_conn *c, uint64_t id, struct vt_msg **msg, int *held, int *entry)
{
	struct vt_item *prev = NULL;
	uint32_t left = queue_cap(c);

	for (struct vt_item *it = c->head; it != NULL && left-- > 0; prev = it, it = it->next) {
		if (it->msg->rec.id != id) {
			continue;
		}

		/* An ack of several ids names them in the order they came. */
		if (it->next != NULL) {
			__builtin_prefetch(it->next);
		}
		unlink_item(c, it, prev);
		*msg = it->msg;
		*held = it->held != 0;
		if (entry != NULL) {
			*entry = it->journaled != 0;
			it->journaled = 0;
		}
		item_free(c->e, it);
		return 1;
	}
	return 0;
}

/* The retries ran out: the item goes offline, for the next connect or REST. */
static void give_up(struct vt_conn *c, struct vt_item *it)
{
	struct vt_item *prev = NULL;
	struct vt_msg *m = it->msg;

	for (struct vt_item *p = c->head; p != it; p = p->next) {
		prev = p;
	}
	unlink_item(c, it, prev);
	vt_log(VT_LOG_INFO, "offline after retries conn=%llu user=%s device=%s id=%llu",
	       (unsigned long long)c->serial, c->id.user,
	       c->id.device, (unsigned long long)m->rec.id);
	item_offline(c, it);
	item_free(c->e, it);
	vt_msg_unref(m);
}

void vt__conn_retry(struct vt_conn *c, struct vt_item *it)
{
	struct vt_engine *e = c->e;

	vt_timers_remove(&e->timers, it);
	if (it->attempts > e->cfg.max_retries) {
		give_up(c, it);
		vt__conn_pump(c);
		return;
	}
	if (vt__conn_expired(c)) {
		/* Nothing more goes out on a token that ran out: closing takes
		 * the queue, @it with it, offline. */
		vt__conn_kill(c, VT_CLOSE_TOKEN_EXPIRED, "token expired");
		return;
	}
	if (c->blocked || push(c, it) != 0) {
		/* The client is not reading: try again later, same attempt. */
		it->deadline = vt__now(e) + backoff(e, it->attempts);
		vt_timers_add(&e->timers, it);
	}
}
