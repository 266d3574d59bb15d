/*
 * batch.c - write batches: taking ops, committing them, and completing them.
 *
 * Every write the engine needs (an accepted event, a receipt, an ack, a
 * device seen, a group's new state) is added to the current batch. The host
 * calls vt_engine_flush() once per loop turn, so everything taken in a turn
 * commits as one storage transaction, and senders hear "accepted" only from
 * the batch's completion. Up to commits_in_flight batches are with the
 * storage at a time; they are completed in the order they were handed over,
 * whatever order the storage answers in, which keeps completions, and so
 * deliveries, in id order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

void vt__want_flush(struct vt_engine *e)
{
	if (!e->flush_asked) {
		e->flush_asked = 1;
		e->host.want_flush(e->host.arg);
	}
}

struct vt_pend *vt__batch_add(struct vt_engine *e, enum vt_pend_kind kind)
{
	struct vt_batch *b = &e->cur;
	struct vt_pend *p;

	if (b->cap == 0 && e->spare_pend != NULL) {
		b->pend = e->spare_pend;
		b->cap = e->spare_pend_cap;
		e->spare_pend = NULL;
	}
	if (b->len == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 64;
		struct vt_pend *np = realloc(b->pend, ncap * sizeof(*np));

		if (np == NULL) {
			return NULL;
		}
		b->pend = np;
		b->cap = ncap;
	}
	p = &b->pend[b->len++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	b->ngroups += kind == VT_PEND_GROUP;
	vt__want_flush(e);
	return p;
}

/* A PUT of @m (a reference is taken). */
struct vt_pend *vt__batch_put(struct vt_engine *e, enum vt_pend_kind kind, struct vt_msg *m)
{
	struct vt_pend *p = vt__batch_add(e, kind);

	if (p != NULL) {
		p->msg = vt_msg_ref(m);
	}
	return p;
}

void vt__batch_touch(struct vt_engine *e, const struct vt_identity *id, struct vt_conn *c,
		     struct vt_fetchreq *f)
{
	struct vt_pend *p = vt__batch_add(e, VT_PEND_TOUCH);

	if (p == NULL) {
		/* A connection waits for its device's registration before it
		 * lists or holds anything: without one it would stay open and
		 * get nothing. The client is told to come back instead. */
		if (c != NULL) {
			vt_log(VT_LOG_WARN, "device not registered: out of memory user=%s device=%s",
			       id->user, id->device);
			vt__conn_kill(c, VT_CLOSE_TRY_AGAIN, "server out of memory");
		}
		if (f != NULL) {
			vt__fetch_start(f, VT_ENOMEM);
		}
		return;
	}
	vt__copy(p->user, sizeof(p->user), id->user);
	vt__copy(p->device, sizeof(p->device), id->device);
	if (c != NULL) {
		c->refs++;
		p->origin.conn = c;
	}
	p->fetchreq = f;
}

void vt__batch_notified(struct vt_engine *e, const char *user, const char *device, uint64_t id)
{
	struct vt_pend *p = vt__batch_add(e, VT_PEND_NOTIFIED);

	if (p != NULL) {
		vt__copy(p->user, sizeof(p->user), user);
		vt__copy(p->device, sizeof(p->device), device);
		p->id = id;
	}
}

static void pend_free(struct vt_engine *e, struct vt_pend *p)
{
	vt__acking_drop(e, p);
	vt__early_done(e, p);
	vt_msg_unref(p->msg);
	free(p->users);
	vt__journal_devices_free(e, p);
	free(p->blob);
	free(p->undo);
}

/* The most bytes an array kept for the next batch may take. */
#define SPARE_MAX (4u << 20)

/*
 * Keep array @v of @cap elements of @size in *@spare for the next batch,
 * unless one as large or larger is kept already, or it is past SPARE_MAX
 * (a burst's batch gives its memory back), or under AddressSanitizer
 * (pool.h). What is not kept is freed.
 */
static void keep_spare(void **spare, size_t *spare_cap, void *v, size_t cap, size_t size)
{
	if (v == NULL) {
		return;
	}
	if (!VT_KEEP_FREED || (*spare != NULL && *spare_cap >= cap) || cap > SPARE_MAX / size) {
		free(v);
		return;
	}
	free(*spare);
	*spare = v;
	*spare_cap = cap;
}

void vt__batch_spares_free(struct vt_engine *e)
{
	free(e->spare_pend);
	free(e->spare_ops);
	e->spare_pend = NULL;
	e->spare_ops = NULL;
	e->spare_pend_cap = e->spare_ops_cap = 0;
}

/* The batch's ops, zeroed: the array kept from a batch before if it has room. */
static struct vt_op *ops_for(struct vt_engine *e, struct vt_batch *b)
{
	struct vt_op *ops = e->spare_ops;

	if (ops == NULL || e->spare_ops_cap < b->len) {
		b->ops_cap = b->len;
		return calloc(b->len, sizeof(*ops));
	}
	e->spare_ops = NULL;
	b->ops_cap = e->spare_ops_cap;
	memset(ops, 0, b->len * sizeof(*ops));
	return ops;
}

void vt__batch_free(struct vt_engine *e, struct vt_batch *b)
{
	for (size_t i = 0; i < b->len; i++) {
		pend_free(e, &b->pend[i]);
	}
	for (size_t i = b->riders_done; i < b->nriders; i++) {
		if (!b->riders[i].park) {
			vt__early_behind(e, b->riders[i].msg->rec.to, -1);
		}
		vt_msg_unref(b->riders[i].msg);
	}
	free(b->riders);
	keep_spare((void **)&e->spare_pend, &e->spare_pend_cap, b->pend, b->cap,
		   sizeof(*b->pend));
	keep_spare((void **)&e->spare_ops, &e->spare_ops_cap, b->ops, b->ops_cap,
		   sizeof(*b->ops));
	free(b->inboxes);
	free(b->uptr);
	free(b->held);
	memset(b, 0, sizeof(*b));
}

/*
 * The devices of @p's journaled copies into @held, as inboxes; with
 * @unoffered, only those vt__hold() did not offer. How many.
 */
static uint32_t held_inboxes(const struct vt_pend *p, struct vt_inbox *held, int unoffered)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->nheld_to; i++) {
		if (p->held_to[i].settled) {
			continue; /* acked while its PUT waited (park.c) */
		}
		if (!unoffered || !p->held_to[i].offered) {
			held[n].user = p->held_to[i].user;
			held[n].device = p->held_to[i].device;
			n++;
		}
	}
	return n;
}

static void prepare_put(struct vt_engine *e, struct vt_pend *p, struct vt_op *op,
			struct vt_inbox *in, const char **uptr, struct vt_inbox *held)
{
	op->kind = VT_OP_PUT;
	op->rec = &p->msg->rec;
	op->dedup = p->dedup;
	op->cap_skip = p->cap_skip;
	op->inbox_cap = p->kind == VT_PEND_ACCEPT ? e->cfg.inbox_cap : 0;
	if (p->check_base) {
		op->group = p->msg->rec.to;
		op->check_base = 1;
		op->base = p->base;
	}

	if (p->kind == VT_PEND_OFFLINE) {
		/* One known inbox: the device the event was held for. */
		op->to = in;
		op->nto = 1;
		return;
	}
	if (p->release) {
		/* A late store of journaled copies (hold.c, store_late): those
		 * not offered, to the devices named when the event was taken,
		 * not to its users' devices of now, which may include one
		 * registered since. */
		op->to = held;
		op->nto = held_inboxes(p, held, 1);
		return;
	}
	/* Only the stored recipients: with none, and no own copies, a PUT
	 * writes the (from, cid) pair alone (mode "offline", see hold.c). */
	for (uint32_t i = 0; i < p->nusers; i++) {
		uptr[i] = vt__pend_user(p, i);
	}
	op->users = uptr;
	op->nusers = p->nusers;
	if (p->own_copies) {
		op->also_own = in;
	}
	/* Mode "always": the held copies, in the journal (journal.c). */
	if (p->journal) {
		op->held_to = held;
		op->nheld_to = held_inboxes(p, held, 0);
		op->journal = op->nheld_to > 0;
	}
}

/* Lay out the storage ops of a batch; pointers are final only now. */
static int batch_prepare(struct vt_engine *e, struct vt_batch *b)
{
	size_t nusers = 0, nheld = 0;

	for (size_t i = 0; i < b->len; i++) {
		nusers += b->pend[i].nusers;
		nheld += b->pend[i].nheld_to;
	}
	b->ops = ops_for(e, b);
	b->inboxes = calloc(b->len, sizeof(*b->inboxes));
	b->uptr = calloc(nusers + 1, sizeof(*b->uptr));
	b->held = calloc(nheld + 1, sizeof(*b->held));
	if (b->ops == NULL || b->inboxes == NULL || b->uptr == NULL || b->held == NULL) {
		return VT_ENOMEM;
	}

	nusers = 0;
	nheld = 0;
	for (size_t i = 0; i < b->len; i++) {
		struct vt_pend *p = &b->pend[i];
		struct vt_op *op = &b->ops[i];

		b->inboxes[i].user = p->user;
		b->inboxes[i].device = p->device;
		op->inbox = b->inboxes[i];
		op->id = p->id;
		switch (p->kind) {
		case VT_PEND_ACK:
			op->kind = VT_OP_ACK;
			op->receipt_id = p->receipt_id;
			op->ts = p->ts;
			break;
		case VT_PEND_TOUCH:
			op->kind = VT_OP_TOUCH;
			op->ts = vt__wall(e);
			break;
		case VT_PEND_ECHO:
			/* The sender was seen: a harmless write that orders the echo
			 * after the change it answers for. */
			op->kind = VT_OP_TOUCH;
			op->inbox.user = p->origin_user;
			op->inbox.device = p->device;
			op->ts = vt__wall(e);
			break;
		case VT_PEND_NOTIFIED:
			op->kind = VT_OP_NOTIFIED;
			break;
		case VT_PEND_REVOKE:
			op->kind = VT_OP_REVOKE;
			op->ts = p->ts;
			break;
		case VT_PEND_RELEASE:
			op->kind = VT_OP_RELEASE;
			break;
		case VT_PEND_GROUP:
			op->kind = VT_OP_GROUP;
			op->group = p->user;
			op->data = p->blob;
			op->len = p->blob_len;
			op->version = p->id;
			op->check_base = (uint32_t)p->check_base;
			op->base = p->base;
			break;
		default:
			prepare_put(e, p, op, &b->inboxes[i], b->uptr + nusers, b->held + nheld);
			nusers += p->nusers;
			nheld += p->nheld_to;
		}
	}
	return 0;
}

/*
 * The store holds a newer state of the group than the one @p was taken
 * from. A post waits for the fresh copy and is taken again, once; anything
 * else is answered with the conflict, and memory is refreshed for the next.
 */
static int conflict(struct vt_engine *e, struct vt_pend *p)
{
	const char *group = p->kind == VT_PEND_GROUP ? p->user : p->msg->rec.to;

	if (p->kind == VT_PEND_ACCEPT && p->msg->rec.kind != VT_KIND_MESSAGE) {
		return 0; /* a change's announcement: its state write asks */
	}
	if (p->kind == VT_PEND_ACCEPT && !p->retried) {
		vt__group_wait(e, p->msg, p->device, &p->origin, 1);
		return 1;
	}
	if (!vt__group_waited_on(e, group)) {
		vt__group_stale(e, group);
	}
	return 0;
}

static void complete_accept(struct vt_engine *e, struct vt_pend *p, int status,
			    const struct vt_op *op)
{
	vt__early_done(e, p);
	if (p->fell) {
		vt__park_fell_done(e, p);
	}
	if (status == 0) {
		status = op->status;
	}
	if (status == VT_ECONFLICT && conflict(e, p)) {
		return;
	}
	if (p->early && (status < 0 || op->dup_of != 0)) {
		/* Its recipients have it: a re-send will reach them again. */
		vt_log(VT_LOG_WARN, "event pushed before its commit was not accepted id=%llu: %s",
		       (unsigned long long)p->msg->rec.id,
		       status < 0 ? vt_strerror(status) : "a duplicate after all");
	}
	if (status < 0) {
		vt__reply_error(e, &p->origin, status, vt_strerror(status), p->msg->rec.cid);
		return;
	}
	if (op->dup_of != 0) {
		e->stats.duplicates++;
		vt__reply_accepted(e, &p->origin, p->msg->rec.cid, op->dup_of, p->msg->rec.ts);
		vt__route_dup(e, p->msg, op->dup_of, op->out_to, op->out_nto);
		return;
	}
	e->stats.accepted++;
	vt__early_committed(e, p->msg->rec.id);
	vt_log(VT_LOG_DEBUG, "accepted id=%llu type=%s from=%s to=%s cid=%s conn=%llu",
	       (unsigned long long)p->msg->rec.id, vt_env_kind_name(p->msg->rec.kind),
	       p->msg->rec.from, p->msg->rec.to, p->msg->rec.cid,
	       (unsigned long long)(p->origin.conn ? p->origin.conn->serial : 0));
	vt__reply_accepted(e, &p->origin, p->msg->rec.cid, p->msg->rec.id, p->msg->rec.ts);
	vt__route(e, p->msg, op->out_to, op->out_nto);
	if (p->nheld > 0 || p->hold_own) {
		vt__hold(e, p);
	}
}

/* Push the receipt that storage made with an ack, as any stored event. */
static void route_receipt(struct vt_engine *e, const struct vt_op *op)
{
	const struct vt_record *r = op->out_receipt;
	struct vt_msg *m = vt_msg_new(r->kind, r->from, r->to, r->cid, r->ts, r->body,
				      r->body_len);

	if (m == NULL) {
		/* Stored all the same: it is listed when the sender connects. */
		vt_log(VT_LOG_WARN, "receipt not pushed: out of memory id=%llu to=%s",
		       (unsigned long long)r->id, r->to);
		return;
	}
	m->rec.id = r->id;
	vt__route(e, m, op->out_to, op->out_nto);
	vt_msg_unref(m);
}

static void complete_ack(struct vt_engine *e, struct vt_pend *p, int status,
			 const struct vt_op *op)
{
	int found = status == 0 && op->status == 0;

	if (found) {
		e->stats.acked++;
		vt_log(VT_LOG_DEBUG, "acked id=%llu user=%s device=%s", (unsigned long long)p->id,
		       p->user, p->device);
	}
	if (found && !p->local) {
		/* Another node's connection may hold it, pushed and waiting. */
		vt__cluster_acked(e, p->user, p->device, p->id);
	}
	if (op->out_receipt != NULL) {
		route_receipt(e, op);
	}
	/* A receipt not in the ack's commit: held in mode "offline", or the
	 * storage makes none; the engine stores it with the next batch. */
	if (found && op->acked_kind == VT_KIND_MESSAGE && op->out_receipt_id == 0) {
		struct vt_identity by = {.exp = 0};

		snprintf(by.user, sizeof(by.user), "%.*s", VT_ID_MAX, p->user);
		vt__copy(by.device, sizeof(by.device), p->device);
		vt__take_delivered(e, &by, NULL, op->acked_from, p->id, op->acked_cid, 0);
	}

	if (p->ackreq != NULL) {
		vt__ackreq_done(e, p->ackreq, p->id, status < 0 ? status : found);
	} else if (!found && p->origin.conn != NULL && !p->origin.conn->closing) {
		char ref[24];

		snprintf(ref, sizeof(ref), "%llu", (unsigned long long)p->id);
		vt_buf_reset(&e->out);
		vt_env_encode_error(&e->out, status < 0 ? status : VT_EUNKNOWNID,
				    "ack: no pending event with this id", ref);
		vt__conn_send(p->origin.conn, e->out.data, e->out.len);
	}
}

static void complete_touch(struct vt_engine *e, struct vt_pend *p, int status,
			   const struct vt_op *op)
{
	int ok = status == 0 && op->status == 0;
	struct vt_user *u = vt__user(e, p->user);

	/* A device registered through REST counts too: mode "offline" holds
	 * nothing for a user while one of its devices is not connected. */
	if (ok && u != NULL && op->out_ndevices > 0) {
		u->ndevices = op->out_ndevices;
	}
	if (p->origin.conn != NULL) {
		vt__conn_touched(p->origin.conn, ok ? op->out_ndevices : 0);
	}
	if (p->fetchreq != NULL) {
		vt__fetch_start(p->fetchreq, ok ? 0 : (status < 0 ? status : op->status));
	}
}

/* A re-sent change: accepted if the first one is still in its group. */
static void complete_echo(struct vt_engine *e, struct vt_pend *p)
{
	struct vt_group *g = vt_groups_find(&e->groups, p->user);

	if (g != NULL && vt_group_recent_find(g, p->origin_user, p->cid) == p->id) {
		vt__reply_accepted(e, &p->origin, p->cid, p->id, vt__wall(e));
	} else {
		vt__reply_error(e, &p->origin, VT_ESTORAGE,
				"the change was not stored; send it again", p->cid);
	}
}

static void complete_one(struct vt_engine *e, struct vt_pend *p, int status,
			 const struct vt_op *op)
{
	int ok = status == 0 && op->status == 0;

	switch (p->kind) {
	case VT_PEND_ACCEPT:
		complete_accept(e, p, status, op);
		break;
	case VT_PEND_STORE:
		if (ok) {
			vt__route(e, p->msg, op->out_to, op->out_nto);
			if (p->journal) {
				vt__hold(e, p);
			}
		} else {
			vt_log(VT_LOG_WARN, "event not stored id=%llu type=%s: %s",
			       (unsigned long long)p->msg->rec.id,
			       vt_env_kind_name(p->msg->rec.kind),
			       vt_strerror(status ? status : op->status));
		}
		if (p->release) {
			vt__journal_written(e, p, ok);
		}
		if (p->late) {
			vt__hold_stored(e, p);
		}
		break;
	case VT_PEND_OFFLINE:
		if (p->release) {
			vt__journal_written(e, p, ok);
		} else if (!ok) {
			/* Mode "offline" promised no more than this; say it loudly. */
			vt_log(VT_LOG_ERROR, "event lost going offline id=%llu: %s",
			       (unsigned long long)p->msg->rec.id,
			       vt_strerror(status ? status : op->status));
		}
		break;
	case VT_PEND_ACK:
		complete_ack(e, p, status, op);
		break;
	case VT_PEND_TOUCH:
		complete_touch(e, p, status, op);
		break;
	case VT_PEND_ECHO:
		complete_echo(e, p);
		break;
	case VT_PEND_GROUP:
		if (ok && e->cluster.ops != NULL) {
			e->cluster.ops->group_changed(e->cluster.self, p->user, p->blob,
						      p->blob_len);
		} else if (status == 0 && op->status == VT_ECONFLICT) {
			conflict(e, p);
		}
		break;
	case VT_PEND_NOTIFIED:
		break;
	case VT_PEND_REVOKE:
		vt__revoke_done(e, p, status, op);
		break;
	case VT_PEND_RELEASE:
		vt__journal_release_done(e, p, status ? status : op->status);
		break;
	}
	vt__origin_release(&p->origin);
}

/*
 * A failed batch changed nothing in storage, nor did a group change the
 * store refused, so such changes are undone in memory too, newest first.
 * No later change to the same group was taken meanwhile: it waits for this
 * one to complete (group_queue.c), so nothing was built on the state undone.
 */
static void undo_groups(struct vt_engine *e, struct vt_batch *b, int status)
{
	for (size_t i = b->ngroups > 0 ? b->len : 0; i-- > 0;) {
		struct vt_pend *p = &b->pend[i];
		struct vt_group *g;

		if (p->kind != VT_PEND_GROUP || (status == 0 && b->ops[i].status == 0)) {
			/* status is nonzero whenever ops is NULL */
			continue;
		}
		if (p->undo != NULL) {
			vt_groups_load(&e->groups, p->user, p->undo, p->undo_len);
		} else if ((g = vt_groups_find(&e->groups, p->user)) != NULL) {
			vt_groups_delete(&e->groups, g);
		}
		vt_log(status == 0 ? VT_LOG_DEBUG : VT_LOG_WARN, "group %s: change undone: %s",
		       p->user, vt_error_name(status != 0 ? status : b->ops[i].status));

		/* A batch that failed as a whole (a timeout) may still have been
		 * applied by a shared store: read the group back, so this node
		 * and the others hold what the store holds. */
		if (status == VT_ESTORAGE && e->cluster.ops != NULL &&
		    e->cluster.ops->group_stale != NULL) {
			vt__group_stale(e, p->user);
		}
	}
}

/* One batch's commit time into the histogram of vt_engine_stats. */
static void count_latency(struct vt_engine *e, uint64_t ms)
{
	static const uint64_t bounds[] = VT_COMMIT_BOUNDS_MS;
	size_t i = 0;

	while (i + 1 < VT_COMMIT_BUCKETS && ms > bounds[i]) {
		i++;
	}
	e->stats.commit_ms_le[i]++;
	e->stats.commit_ms_sum += ms;
}

/*
 * The event of @b's @i-th record, if any, was last touched when it was
 * taken, a batch ago: fetched while the one before completes, its record
 * and strings are in the caches when its answer is written.
 */
static void prefetch_msg(const struct vt_batch *b, size_t i)
{
	if (i < b->len && b->pend[i].msg != NULL) {
		__builtin_prefetch(b->pend[i].msg);
		__builtin_prefetch(b->pend[i].msg->text);
	}
}

/* Complete the oldest batch in flight: its replies, routes and undos. */
static void complete_batch(struct vt_engine *e)
{
	static const struct vt_op none;
	struct vt_batch b = e->flight[e->flight_head];
	int status = b.status;

	memset(&e->flight[e->flight_head], 0, sizeof(b));
	e->flight_head = (e->flight_head + 1) % VT_COMMITS_MAX;
	e->nflight--;
	e->pending_calls--;
	count_latency(e, vt__now(e) - b.flushed_at);
	e->stats.batches++;
	e->stats.batch_ops += b.len;
	if (status < 0) {
		e->stats.storage_errors++;
		vt__log_limited(&e->batch_log, VT_LOG_ERROR, "storage batch of %zu failed: %s",
		                b.len, vt_strerror(status));
	}
	e->healthy = status == 0;
	e->health_err = status;
	if (status == 0) {
		e->committed_id = b.last_id;
	} else if (e->next_expire > vt__now(e) + 1000) {
		/* Probe storage soon (see on_expired in engine.c). */
		e->next_expire = vt__now(e) + 1000;
		vt__timers_changed(e);
	}

	undo_groups(e, &b, status);
	for (size_t i = 0; i < b.len; i++) {
		prefetch_msg(&b, i + 1);
		vt__hold_ride(e, &b, i);
		complete_one(e, &b.pend[i], status, b.ops != NULL ? &b.ops[i] : &none);
	}
	vt__hold_ride(e, &b, b.len);

	/* Only now, after the answers of the whole batch, what waited behind
	 * its group changes is taken. */
	for (size_t i = 0; b.ngroups > 0 && i < b.len; i++) {
		if (b.pend[i].kind == VT_PEND_GROUP) {
			vt__group_change_done(e, b.pend[i].user);
		}
	}
	vt__batch_free(e, &b);
}

static void on_commit(void *arg, int status)
{
	struct vt_batch *b = arg;
	struct vt_engine *e = b->e;

	b->done = 1;
	b->status = status;
	if (e->destroying) {
		return; /* vt_engine_destroy frees what is in flight */
	}
	/*
	 * A store that commits inside the call (the memory backend, an inline
	 * LMDB writer) answers within vt_engine_flush, whose reading is from
	 * before the commit: its latency and the deadlines of the pushes it
	 * completes start from now.
	 */
	vt__clock_hold(e);
	vt__clock_renew(e);
	while (e->nflight > 0 && e->flight[e->flight_head].done) {
		complete_batch(e);
	}
	vt__clock_release(e);

	/* What was taken meanwhile waits for the next flush. */
	if (e->cur.len > 0 && !e->flush_asked) {
		e->flush_asked = 1;
		e->host.want_flush(e->host.arg);
	}
}

/* Hand what was taken to storage, if it may have another batch. */
static void flush_batch(struct vt_engine *e)
{
	uint32_t most = e->cfg.commits_in_flight ? e->cfg.commits_in_flight : 1;
	struct vt_batch *b;

	if (e->nflight >= most || e->cur.len == 0 || e->destroying) {
		return;
	}

	b = &e->flight[(e->flight_head + e->nflight) % VT_COMMITS_MAX];
	*b = e->cur;
	memset(&e->cur, 0, sizeof(e->cur));
	e->nflight++;
	e->pending_calls++;
	b->e = e;
	b->flushed_at = vt__now(e);
	b->last_id = e->next_id - 1;
	if (batch_prepare(e, b) != 0) {
		on_commit(b, VT_ENOMEM);
		return;
	}
	e->st.ops->commit(e->st.self, b->ops, b->len, on_commit, b);
}

void vt_engine_flush(struct vt_engine *e)
{
	/* The receipts of the acks that ended since the last flush join the
	 * batch they would have joined one by one. */
	vt__clock_hold(e);
	vt__receipts_emit(e);
	e->flush_asked = 0;
	flush_batch(e);
	vt__clock_release(e);

	/* Storage applies calls in order: the sweep follows the touches. */
	if (e->expire_due && e->cur.len == 0 && !e->shutting_down && !e->destroying) {
		vt__expire_start(e);
	}
}

/*
 * A batch that will never commit, at vt_engine_destroy: requests waiting
 * on it are answered VT_EBUSY, connections let go.
 */
void vt__batch_abandon(struct vt_engine *e, struct vt_batch *b)
{
	for (size_t i = 0; i < b->len; i++) {
		struct vt_pend *p = &b->pend[i];

		if (p->origin.reply != NULL) {
			vt__reply_error(e, &p->origin, VT_EBUSY, "server shutting down",
					p->msg != NULL ? p->msg->rec.cid : p->cid);
		}
		if (p->ackreq != NULL) {
			vt__ackreq_done(e, p->ackreq, p->id, VT_EBUSY);
		}
		if (p->fetchreq != NULL) {
			vt__fetch_start(p->fetchreq, VT_EBUSY);
		}
		vt__origin_release(&p->origin);
	}
	vt__batch_free(e, b);
}
