/*
 * engine.c - the engine's lifetime, its write batches, routing and timers.
 *
 * Every write the engine needs (an accepted event, a receipt, an ack, an
 * event going offline) is added to the current batch. The host calls
 * vt_engine_flush() once per loop turn, so everything taken in a turn
 * commits as one storage transaction, and senders hear "accepted" only from
 * the batch's completion. One batch is with the storage at a time, which
 * keeps completions, and so deliveries, in id order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"
#include "json.h"

/* How often connected tokens are checked for expiry, and stored events for age. */
#define TOKEN_SWEEP_MS 1000
#define EXPIRE_SWEEP_MS 60000
#define EXPIRE_MAX_PER_SWEEP 10000
#define DEDUP_MEMORY_ENTRIES 65536

void vt_engine_config_init(struct vt_engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->durability = VT_DURABLE_ALWAYS;
	cfg->ack_timeout_ms = 10000;
	cfg->max_retries = 3;
	cfg->backoff_max_ms = 60000;
	cfg->window = 32;
	cfg->max_message_bytes = 65536;
	cfg->inbox_cap = 10000;
	cfg->offline_ttl_ms = UINT64_C(30) * 24 * 3600 * 1000;
	cfg->fetch_limit_max = 500;
}

static int config_valid(const struct vt_engine_config *c)
{
	return (c->durability == VT_DURABLE_ALWAYS || c->durability == VT_DURABLE_OFFLINE) &&
	       c->ack_timeout_ms > 0 && c->window > 0 && c->window <= 65536 &&
	       c->max_message_bytes >= 256 && c->offline_ttl_ms > 0 && c->fetch_limit_max > 0 &&
	       c->max_retries <= 100;
}

uint64_t vt__now(struct vt_engine *e)
{
	return e->host.mono_ms(e->host.arg);
}

int64_t vt__wall(struct vt_engine *e)
{
	return e->host.wall_ms(e->host.arg);
}

uint64_t vt__new_id(struct vt_engine *e)
{
	return e->next_id++;
}

void vt__timers_changed(struct vt_engine *e)
{
	if (e->host.timers_changed != NULL) {
		e->host.timers_changed(e->host.arg);
	}
}

int vt_engine_create(const struct vt_engine_config *cfg, const struct vt_host *host,
		     struct vt_storage storage, struct vt_engine **out)
{
	struct vt_engine *e;

	if (cfg == NULL || host == NULL || host->mono_ms == NULL || host->wall_ms == NULL ||
	    host->want_flush == NULL || storage.ops == NULL || !config_valid(cfg)) {
		if (storage.ops != NULL) {
			storage.ops->destroy(storage.self);
		}
		return VT_EINVAL;
	}

	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		storage.ops->destroy(storage.self);
		return VT_ENOMEM;
	}
	e->cfg = *cfg;
	e->host = *host;
	e->st = storage;
	e->healthy = 1;
	vt_map_init(&e->by_user);
	vt_buf_init(&e->out);

	if (cfg->durability == VT_DURABLE_OFFLINE) {
		e->dedup = vt_dedup_new(DEDUP_MEMORY_ENTRIES);
		if (e->dedup == NULL) {
			vt_engine_destroy(e);
			return VT_ENOMEM;
		}
	}

	/* Ids are never reused, also after their records are gone. */
	e->next_id = storage.ops->max_id(storage.self) + 1;
	e->next_sweep = vt__now(e) + TOKEN_SWEEP_MS;
	e->next_expire = vt__now(e);
	*out = e;
	return 0;
}

static void batch_free(struct vt_batch *b)
{
	free(b->pend);
	free(b->ops);
	free(b->inboxes);
	memset(b, 0, sizeof(*b));
}

void vt_engine_shutdown(struct vt_engine *e)
{
	if (e == NULL || e->shutting_down) {
		return;
	}
	e->shutting_down = 1;
	vt_engine_flush(e);

	for (struct vt_conn *c = e->conns; c != NULL; c = c->next) {
		vt__conn_kill(c, VT_CLOSE_GOING_AWAY, "server shutting down");
	}
}

int vt_engine_idle(const struct vt_engine *e)
{
	return e->pending_calls == 0 && e->cur.len == 0;
}

void vt_engine_destroy(struct vt_engine *e)
{
	if (e == NULL) {
		return;
	}
	vt_engine_shutdown(e);

	/* A synchronous backend has answered everything by now. */
	vt_engine_flush(e);
	if (e->pending_calls != 0) {
		vt_log(VT_LOG_ERROR, "engine destroyed with %u storage calls pending",
		       e->pending_calls);
	}

	while (e->conns != NULL) {
		struct vt_conn *c = e->conns;

		c->refs = 0;
		vt_conn_close(c);
	}
	vt_heap_free(&e->heap);
	batch_free(&e->cur);
	batch_free(&e->sent);
	vt_map_free(&e->by_user);
	vt_dedup_free(e->dedup);
	vt_buf_free(&e->out);
	e->st.ops->destroy(e->st.self);
	free(e);
}

struct vt_pend *vt__batch_add(struct vt_engine *e, enum vt_pend_kind kind)
{
	struct vt_batch *b = &e->cur;
	struct vt_pend *p;

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

	if (!e->flush_asked) {
		e->flush_asked = 1;
		e->host.want_flush(e->host.arg);
	}
	return p;
}

/* Lay out the storage ops of a batch; pointers are final only now. */
static int batch_prepare(struct vt_engine *e, struct vt_batch *b)
{
	b->ops = calloc(b->len, sizeof(*b->ops));
	b->inboxes = calloc(b->len, sizeof(*b->inboxes));
	if (b->ops == NULL || b->inboxes == NULL) {
		return VT_ENOMEM;
	}

	for (size_t i = 0; i < b->len; i++) {
		struct vt_pend *p = &b->pend[i];
		struct vt_op *op = &b->ops[i];

		b->inboxes[i].user = p->user;
		b->inboxes[i].device = "";
		if (p->kind == VT_PEND_ACK) {
			op->kind = VT_OP_ACK;
			op->inbox = b->inboxes[i];
			op->id = p->ack_id;
			continue;
		}
		op->kind = VT_OP_PUT;
		op->rec = &p->msg->rec;
		op->to = &b->inboxes[i];
		op->nto = 1;
		op->dedup = p->kind == VT_PEND_ACCEPT;
		op->inbox_cap = p->kind == VT_PEND_ACCEPT ? e->cfg.inbox_cap : 0;
	}
	return 0;
}

static void route(struct vt_engine *e, struct vt_msg *m)
{
	struct vt_conn *c = vt_map_get(&e->by_user, m->rec.to);

	if (c != NULL) {
		vt__conn_offer(c, m);
	}
}

void vt__origin_release(struct vt_origin *o)
{
	if (o->conn != NULL) {
		vt__conn_unref(o->conn);
		o->conn = NULL;
	}
}

void vt__reply(struct vt_engine *e, struct vt_origin *o, int status, const char *json,
	       size_t len)
{
	if (o->reply != NULL) {
		o->reply(o->arg, status, json, len);
		o->reply = NULL;
	} else if (o->conn != NULL) {
		vt__conn_send(o->conn, json, len);
	}
	vt__origin_release(o);
}

void vt__reply_error(struct vt_engine *e, struct vt_origin *o, int err, const char *reason,
		     const char *ref)
{
	vt_buf_reset(&e->out);
	vt_env_encode_error(&e->out, err, reason, ref);
	vt__reply(e, o, err, e->out.data, e->out.len);
}

static void reply_accepted(struct vt_engine *e, struct vt_origin *o, const struct vt_msg *m,
			   uint64_t id)
{
	vt_buf_reset(&e->out);
	vt_env_encode_accepted(&e->out, m->rec.cid, id, m->rec.ts);
	vt__reply(e, o, 0, e->out.data, e->out.len);
}

/* Make and take the "delivered" receipt for @sender's message @id. */
static void take_receipt(struct vt_engine *e, const char *acker, const char *sender,
			 const char *cid, uint64_t id)
{
	struct vt_buf body;
	struct vt_msg *m;
	struct vt_pend *p;

	vt_buf_init(&body);
	vt_buf_puts(&body, "{\"ref\":\"");
	vt_buf_u64(&body, id);
	vt_buf_puts(&body, "\",\"cid\":");
	vt_buf_json_str(&body, cid, strlen(cid));
	vt_buf_putc(&body, '}');
	m = vt_buf_failed(&body) ? NULL
				 : vt_msg_new(VT_KIND_DELIVERED, acker, sender, "", vt__wall(e),
					      body.data, body.len);
	vt_buf_free(&body);
	if (m == NULL) {
		vt_log(VT_LOG_ERROR, "receipt dropped: out of memory id=%llu",
		       (unsigned long long)id);
		return;
	}
	m->rec.id = vt__new_id(e);

	p = vt__batch_add(e, VT_PEND_RECEIPT);
	if (p == NULL) {
		vt_msg_unref(m);
		return;
	}
	p->msg = m;
	snprintf(p->user, sizeof(p->user), "%s", sender);
}

static void complete_accept(struct vt_engine *e, struct vt_pend *p, int status,
			    const struct vt_op *op)
{
	if (status == 0) {
		status = op->status;
	}
	if (status < 0) {
		vt__reply_error(e, &p->origin, status, vt_strerror(status), p->msg->rec.cid);
		return;
	}
	if (op->dup_of != 0) {
		e->stats.duplicates++;
		reply_accepted(e, &p->origin, p->msg, op->dup_of);
		return;
	}
	p->msg->stored = 1;
	e->stats.accepted++;
	reply_accepted(e, &p->origin, p->msg, p->msg->rec.id);
	route(e, p->msg);
}

static void complete_ack(struct vt_engine *e, struct vt_pend *p, int status,
			 const struct vt_op *op)
{
	int found = status == 0 && op->status == 0;

	if (found) {
		e->stats.acked++;
		if (op->acked_kind == VT_KIND_MESSAGE) {
			take_receipt(e, p->user, op->acked_from, op->acked_cid, p->ack_id);
		}
	}
	if (p->ackreq != NULL) {
		vt__ackreq_done(e, p->ackreq, p->ack_id, status < 0 ? status : found);
	} else if (!found && p->origin.conn != NULL && !p->origin.conn->closing) {
		char ref[24];

		snprintf(ref, sizeof(ref), "%llu", (unsigned long long)p->ack_id);
		vt_buf_reset(&e->out);
		vt_env_encode_error(&e->out, status < 0 ? status : VT_EUNKNOWNID,
				    "ack: no pending event with this id", ref);
		vt__conn_send(p->origin.conn, e->out.data, e->out.len);
	}
	vt__origin_release(&p->origin);
}

static void complete_one(struct vt_engine *e, struct vt_pend *p, int status,
			 const struct vt_op *op)
{
	switch (p->kind) {
	case VT_PEND_ACCEPT:
		complete_accept(e, p, status, op);
		break;
	case VT_PEND_RECEIPT:
		if (status == 0 && op->status == 0) {
			p->msg->stored = 1;
			route(e, p->msg);
		} else {
			vt_log(VT_LOG_WARN, "receipt not stored: %s", vt_strerror(status));
		}
		break;
	case VT_PEND_OFFLINE:
		if (status == 0 && op->status == 0) {
			p->msg->stored = 1;
		} else {
			/* Mode "offline" promised no more than this; say it loudly. */
			vt_log(VT_LOG_ERROR, "event lost going offline id=%llu: %s",
			       (unsigned long long)p->msg->rec.id, vt_strerror(status));
		}
		break;
	case VT_PEND_ACK:
		complete_ack(e, p, status, op);
		break;
	}
	vt_msg_unref(p->msg);
}

static void on_commit(void *arg, int status)
{
	struct vt_engine *e = arg;
	struct vt_batch b = e->sent;

	memset(&e->sent, 0, sizeof(e->sent));
	e->pending_calls--;
	e->committing = 0;
	e->stats.batches++;
	e->stats.batch_ops += b.len;
	if (status < 0) {
		e->stats.storage_errors++;
		vt_log(VT_LOG_ERROR, "storage batch of %zu failed: %s", b.len, vt_strerror(status));
	}
	e->healthy = status == 0;

	for (size_t i = 0; i < b.len; i++) {
		complete_one(e, &b.pend[i], status, &b.ops[i]);
	}
	batch_free(&b);

	/* What was taken meanwhile waits for the next flush. */
	if (e->cur.len > 0 && !e->flush_asked) {
		e->flush_asked = 1;
		e->host.want_flush(e->host.arg);
	}
}

void vt_engine_flush(struct vt_engine *e)
{
	e->flush_asked = 0;
	if (e->committing || e->cur.len == 0) {
		return;
	}

	e->sent = e->cur;
	memset(&e->cur, 0, sizeof(e->cur));
	if (batch_prepare(e, &e->sent) != 0) {
		e->committing = 1;
		e->pending_calls++;
		on_commit(e, VT_ENOMEM);
		return;
	}
	e->committing = 1;
	e->pending_calls++;
	e->st.ops->commit(e->st.self, e->sent.ops, e->sent.len, on_commit, e);
}

/* Mode "offline": can this event stay in memory with its connected recipient? */
static struct vt_conn *hold_in_memory(struct vt_engine *e, const char *to)
{
	struct vt_conn *c;

	if (e->cfg.durability != VT_DURABLE_OFFLINE) {
		return NULL;
	}
	c = vt_map_get(&e->by_user, to);
	if (c == NULL || c->closing || c->backlog || c->fetching ||
	    c->nqueued >= 2 * e->cfg.window) {
		if (c != NULL && !c->closing) {
			/* Later events must not overtake this one. */
			c->backlog = 1;
			c->backlog_gen++;
		}
		return NULL;
	}
	return c;
}

static void take_message(struct vt_engine *e, const struct vt_identity *from,
			 const struct vt_env *env, struct vt_origin origin)
{
	struct vt_msg *m;
	struct vt_conn *c;
	struct vt_pend *p;
	uint64_t dup;

	if (!vt_user_id_valid(env->to, strlen(env->to))) {
		vt__reply_error(e, &origin, VT_EBADENV, "to: not a user id", env->id);
		return;
	}
	if (e->dedup != NULL && (dup = vt_dedup_get(e->dedup, from->user, env->id)) != 0) {
		struct vt_msg tmp = {.rec = {.cid = env->id, .ts = vt__wall(e)}};

		e->stats.duplicates++;
		reply_accepted(e, &origin, &tmp, dup);
		return;
	}

	m = vt_msg_new(VT_KIND_MESSAGE, from->user, env->to, env->id, vt__wall(e), env->body,
		       env->body_len);
	if (m == NULL) {
		vt__reply_error(e, &origin, VT_ENOMEM, "out of memory", env->id);
		return;
	}
	m->rec.id = vt__new_id(e);

	c = hold_in_memory(e, env->to);
	if (c != NULL) {
		vt_dedup_put(e->dedup, from->user, env->id, m->rec.id);
		e->stats.accepted++;
		reply_accepted(e, &origin, m, m->rec.id);
		vt__conn_offer(c, m);
		vt_msg_unref(m);
		return;
	}

	p = vt__batch_add(e, VT_PEND_ACCEPT);
	if (p == NULL) {
		vt_msg_unref(m);
		vt__reply_error(e, &origin, VT_ENOMEM, "out of memory", env->id);
		return;
	}
	p->msg = m;
	p->origin = origin;
	snprintf(p->user, sizeof(p->user), "%s", env->to);
}

void vt__take_event(struct vt_engine *e, const struct vt_identity *from, const char *data,
		    size_t len, struct vt_origin origin)
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
	 * small embedded thread, so it lives on the heap for the call. */
	env = malloc(sizeof(*env));
	if (env == NULL) {
		vt__reply_error(e, &origin, VT_ENOMEM, "out of memory", NULL);
		return;
	}
	rc = vt_env_decode(data, len, env, &reason);
	if (rc < 0) {
		vt_log(VT_LOG_DEBUG, "bad envelope from user=%s: %s", from->user,
		       reason ? reason : vt_strerror(rc));
		vt__reply_error(e, &origin, rc, reason ? reason : vt_strerror(rc), env->id);
	} else if (env->type == VT_ENV_MESSAGE) {
		take_message(e, from, env, origin);
	} else {
		vt__ack_ids(e, origin.conn, from, env->ids, env->nids, NULL);
		if (origin.reply != NULL) {
			/* REST acks go through vt_engine_ack, which answers per id. */
			vt__reply_error(e, &origin, VT_EBADTYPE, "use POST /v1/ack for acks", NULL);
		} else {
			vt__origin_release(&origin);
		}
	}
	free(env);
}

void vt__ack_ids(struct vt_engine *e, struct vt_conn *origin_conn, const struct vt_identity *who,
		 const uint64_t *ids, uint32_t n, struct vt_ackreq *req)
{
	struct vt_conn *c = vt_map_get(&e->by_user, who->user);

	for (uint32_t i = 0; i < n; i++) {
		struct vt_msg *m = NULL;
		struct vt_pend *p;

		/* Held only in memory (mode "offline"): the ack ends it here. */
		if (c != NULL && vt__conn_ack(c, ids[i], &m) && !m->stored) {
			e->stats.acked++;
			if (m->rec.kind == VT_KIND_MESSAGE) {
				take_receipt(e, who->user, m->rec.from, m->rec.cid, ids[i]);
			}
			vt_msg_unref(m);
			if (req != NULL) {
				vt__ackreq_done(e, req, ids[i], 1);
			}
			continue;
		}
		vt_msg_unref(m);

		p = vt__batch_add(e, VT_PEND_ACK);
		if (p == NULL) {
			if (req != NULL) {
				vt__ackreq_done(e, req, ids[i], VT_ENOMEM);
			}
			continue;
		}
		snprintf(p->user, sizeof(p->user), "%s", who->user);
		p->ack_id = ids[i];
		p->ackreq = req;
		if (origin_conn != NULL && req == NULL) {
			origin_conn->refs++;
			p->origin.conn = origin_conn;
		}
	}
	if (c != NULL) {
		vt__conn_pump(c);
	}
}

int64_t vt_engine_next_timeout(const struct vt_engine *e)
{
	struct vt_engine *me = (struct vt_engine *)e;
	uint64_t now = vt__now(me);
	uint64_t next = e->next_sweep < e->next_expire ? e->next_sweep : e->next_expire;
	struct vt_item *top = vt_heap_top(&e->heap);

	if (top != NULL && top->deadline < next) {
		next = top->deadline;
	}
	return next <= now ? 0 : (int64_t)(next - now);
}

static void on_expired(void *arg, int status, uint64_t removed)
{
	struct vt_engine *e = arg;

	e->pending_calls--;
	e->expiring = 0;
	if (status < 0) {
		vt_log(VT_LOG_WARN, "offline expiry failed: %s", vt_strerror(status));
		return;
	}
	e->stats.expired += removed;
	if (removed > 0) {
		vt_log(VT_LOG_INFO, "expired stored events count=%llu",
		       (unsigned long long)removed);
	}
}

static void sweep(struct vt_engine *e, uint64_t now)
{
	if (now >= e->next_sweep) {
		e->next_sweep = now + TOKEN_SWEEP_MS;
		for (struct vt_conn *c = e->conns; c != NULL; c = c->next) {
			if (!c->closing && vt__conn_expired(c)) {
				vt__conn_kill(c, VT_CLOSE_TOKEN_EXPIRED, "token expired");
			}
		}
	}
	if (now >= e->next_expire && !e->expiring && !e->shutting_down) {
		int64_t wall = vt__wall(e);

		e->next_expire = now + EXPIRE_SWEEP_MS;
		e->expiring = 1;
		e->pending_calls++;
		e->st.ops->expire(e->st.self, wall, wall - (int64_t)e->cfg.offline_ttl_ms,
				  EXPIRE_MAX_PER_SWEEP, on_expired, e);
	}
}

void vt_engine_run_timers(struct vt_engine *e)
{
	uint64_t now = vt__now(e);
	struct vt_item *top;

	while ((top = vt_heap_top(&e->heap)) != NULL && top->deadline <= now) {
		vt__conn_retry(top->conn, top);
	}
	sweep(e, now);
	vt__timers_changed(e);
}

void vt_engine_stats(const struct vt_engine *e, struct vt_engine_stats *out)
{
	*out = e->stats;
}

int vt_engine_healthy(const struct vt_engine *e)
{
	return e->healthy;
}
