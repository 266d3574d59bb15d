/*
 * engine.c - the engine's lifetime, configuration, timers and answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

/* How often connected tokens are checked for expiry, and stored events for age. */
#define TOKEN_SWEEP_MS 1000
#define EXPIRE_SWEEP_MS 60000
#define EXPIRE_MAX_PER_SWEEP 10000
/* Queue entries kept for reuse: a 1,000-member group's window of 16 each
 * (about 1 MiB at most). */
#define ITEMS_KEPT 16384
/* Journaled PUTs' device blocks kept: a window of 16 for each of 256 pairs
 * (1 MiB). */
#define HELD_BLOCKS_KEPT 4096

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
	cfg->device_ttl_ms = UINT64_C(90) * 24 * 3600 * 1000;
	cfg->fetch_limit_max = 500;
	cfg->max_group_members = 1000;
	cfg->max_group_name = 128;
	cfg->max_group_update = 100;
	cfg->typing_per_sec = 5;
	cfg->msgs_per_sec = 100;
	cfg->commits_in_flight = 1;
	cfg->hold_queue = 1024;
	cfg->hold_memory = UINT64_C(256) << 20;
}

static int config_valid(const struct vt_engine_config *c)
{
	return (c->durability == VT_DURABLE_ALWAYS || c->durability == VT_DURABLE_OFFLINE) &&
	       c->ack_timeout_ms > 0 && c->window > 0 && c->window <= 65536 &&
	       c->max_message_bytes >= 256 && c->offline_ttl_ms > 0 && c->device_ttl_ms > 0 &&
	       c->fetch_limit_max > 0 && c->max_retries <= VT_RETRIES_MAX &&
	       c->max_group_members >= 2 && c->max_group_name > 0 && c->max_group_name < 512 &&
	       c->max_group_update > 0 && c->commits_in_flight <= VT_COMMITS_MAX &&
	       c->hold_queue > 0 && c->hold_memory >= 65536 && c->ack_wait_ms <= 60000;
}

/*
 * A call from the host (a frame received, a flush, a commit completed, the
 * timers) holds the clocks: what it does happens at one instant, read once.
 * A post to a thousand members then reads the clock once, not a thousand
 * times, and its pushes share one deadline. Such calls last microseconds to
 * a few milliseconds, well within what the clocks are for (retry deadlines,
 * rate buckets, sweeps, message times, token expiry in seconds), so a held
 * reading never lags by anything they notice.
 */
void vt__clock_renew(struct vt_engine *e)
{
	e->clock_read = 0;
	e->clock_wall_read = 0;
}

void vt__clock_hold(struct vt_engine *e)
{
	if (e->clock_holds++ == 0) {
		vt__clock_renew(e);
	}
}

void vt__clock_release(struct vt_engine *e)
{
	e->clock_holds--;
}

uint64_t vt__now(struct vt_engine *e)
{
	if (e->clock_holds == 0) {
		return e->host.mono_ms(e->host.arg);
	}
	if (!e->clock_read) {
		e->clock_ms = e->host.mono_ms(e->host.arg);
		e->clock_read = 1;
	}
	return e->clock_ms;
}

int64_t vt__wall(struct vt_engine *e)
{
	if (e->clock_holds == 0) {
		return e->host.wall_ms(e->host.arg);
	}
	if (!e->clock_wall_read) {
		e->clock_wall_ms = e->host.wall_ms(e->host.arg);
		e->clock_wall_read = 1;
	}
	return e->clock_wall_ms;
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

static void on_group(void *arg, const char *group, const char *data, size_t len)
{
	vt_groups_load(arg, group, data, len);
}

/* Read what storage holds that the engine keeps in memory. */
static int engine_load(struct vt_engine *e)
{
	int rc = 0;

	/* What the last run held, journaled, is stored before anything else. */
	rc = vt__journal_replay(e);
	if (rc != 0) {
		return rc;
	}
	/* Ids are never reused, also after their records are gone, nor those
	 * pushed before a commit that a crash prevented (early.c). */
	e->next_id = e->st.ops->max_id(e->st.self) + 1;
	vt__early_ids(e);
	if (e->st.ops->load_groups != NULL) {
		rc = e->st.ops->load_groups(e->st.self, on_group, &e->groups);
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "loading groups failed: %s", vt_strerror(rc));
		return rc;
	}
	rc = vt__revoked_load(e);
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "loading logouts failed: %s", vt_strerror(rc));
	}
	return rc;
}

int vt_engine_create(const struct vt_engine_config *cfg, const struct vt_host *host,
		     struct vt_storage storage, struct vt_engine **out)
{
	struct vt_engine *e;
	int rc;

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
	vt_map_init(&e->users);
	vt_pool_init(&e->items, sizeof(struct vt_item), ITEMS_KEPT);
	vt_pool_init(&e->held_blocks, VT_HELD_BLOCK, HELD_BLOCKS_KEPT);
	vt_slab_init(&e->conn_slab, sizeof(struct vt_conn));
	vt_map_init(&e->acking);
	vt_map_init(&e->late);
	vt_map_init(&e->changing);
	vt_map_init(&e->parked_by);
	vt_map_init(&e->senders);
	vt_map_init(&e->revoked);
	vt_map_init(&e->revoked_devices);
	vt_map_init(&e->revoking);
	vt_groups_init(&e->groups);
	vt_receipts_init(&e->receipts);
	vt_buf_init(&e->out);

	rc = vt__early_init(e);
	if (rc == 0) {
		rc = vt__park_init(e);
	}
	if (rc == 0) {
		rc = engine_load(e);
	}
	if (rc != 0) {
		vt_engine_destroy(e);
		return rc;
	}
	e->next_sweep = vt__now(e) + TOKEN_SWEEP_MS;
	e->next_expire = vt__now(e);
	*out = e;
	return 0;
}

void vt_engine_set_notifier(struct vt_engine *e, struct vt_notifier notifier)
{
	if (e->notifier.ops != NULL) {
		e->notifier.ops->destroy(e->notifier.self);
	}
	e->notifier = notifier;
}

/* Events queued in memory only, one per device: what closing writes to storage. */
static uint64_t held_items(const struct vt_engine *e)
{
	uint64_t n = 0;

	for (const struct vt_conn *c = e->conns; c != NULL; c = c->next) {
		for (const struct vt_item *it = c->head; it != NULL; it = it->next) {
			n += it->held != 0;
		}
	}
	return n;
}

void vt_engine_shutdown(struct vt_engine *e)
{
	uint64_t held;

	if (e == NULL || e->shutting_down) {
		return;
	}
	e->shutting_down = 1;

	held = held_items(e);
	if (held > 0) {
		vt_log(VT_LOG_INFO, "shutting down: writing %llu held %s to storage",
		       (unsigned long long)held, held == 1 ? "copy" : "copies");
	}
	for (struct vt_conn *c = e->conns; c != NULL; c = c->next) {
		vt__conn_kill(c, VT_CLOSE_GOING_AWAY, "server shutting down");
	}
	vt__park_all_out(e);    /* what waited for acks: its pairs and entries */
	vt__journal_rewrite(e); /* a last try; what is refused is replayed at start */
	/* After the kills: what they sent offline is in this batch. */
	vt_engine_flush(e);
}

int vt_engine_idle(const struct vt_engine *e)
{
	return e->pending_calls == 0 && e->cur.len == 0 && !vt_receipts_pending(&e->receipts) &&
	       e->waiting == NULL && e->parked == NULL && e->park_head == NULL &&
	       e->ride_head == NULL;
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
	vt__group_waiting_fail(e, VT_EBUSY, "server shutting down");
	vt__group_parked_fail(e, VT_EBUSY, "server shutting down");

	/*
	 * Storage goes first: a backend may still be reading a batch in flight
	 * (or answer it while it stops), so the batch outlives it. What it
	 * answers from now on is dropped; who waits for it hears VT_EBUSY.
	 */
	e->destroying = 1;
	e->st.ops->destroy(e->st.self);
	while (e->nflight > 0) {
		vt__batch_abandon(e, &e->flight[e->flight_head]);
		e->flight_head = (e->flight_head + 1) % VT_COMMITS_MAX;
		e->nflight--;
	}
	vt__batch_abandon(e, &e->cur);

	while (e->conns != NULL) {
		struct vt_conn *c = e->conns;

		c->refs = 0;
		vt_conn_close(c);
	}
	vt_pool_drain(&e->items);
	vt_slab_destroy(&e->conn_slab);
	free(e->spare_env);
	vt__batch_free(e, &e->cur); /* what closing the connections sent offline */
	vt__batch_spares_free(e);
	vt_pool_drain(&e->held_blocks); /* after the batch, which gives its blocks back */
	vt_receipts_free(&e->receipts); /* of acks the last flush committed: no batch follows */
	vt_map_free(&e->users);
	vt_map_free(&e->acking);
	vt_map_free(&e->late);
	vt__journal_unwritten_free(e);
	vt__early_free(e);
	vt__park_free(e);
	vt__senders_free(e);
	vt__revoked_free(e);
	vt_map_free(&e->changing);
	vt_map_free(&e->parked_by);
	vt_groups_free(&e->groups);
	vt_buf_free(&e->out);
	vt_engine_set_notifier(e, (struct vt_notifier){0});
	vt_engine_set_cluster(e, (struct vt_cluster){0});
	free(e);
}

void vt__origin_release(struct vt_origin *o)
{
	if (o->conn != NULL) {
		if (o->owed) {
			o->conn->owed--;
		}
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
	if (err < 0 && -err < VT_ERROR_SLOTS) {
		e->stats.errors[-err]++;
	}
	vt_buf_reset(&e->out);
	vt_env_encode_error(&e->out, err, reason, ref);
	vt__reply(e, o, err, e->out.data, e->out.len);
}

void vt__reply_accepted(struct vt_engine *e, struct vt_origin *o, const char *cid, uint64_t id,
			int64_t ts)
{
	vt_buf_reset(&e->out);
	vt_env_encode_accepted(&e->out, cid, id, ts);
	vt__reply(e, o, 0, e->out.data, e->out.len);
}

int64_t vt_engine_next_timeout(const struct vt_engine *e)
{
	struct vt_engine *me = (struct vt_engine *)e;
	uint64_t now = vt__now(me);
	uint64_t next = e->next_sweep < e->next_expire ? e->next_sweep : e->next_expire;
	uint64_t receipts = vt__receipts_next_due(&e->receipts);
	uint64_t parked = vt__park_next_due(e);
	struct vt_item *top = vt_timers_first(&e->timers);

	if (top != NULL && top->deadline < next) {
		next = top->deadline;
	}
	if (receipts < next) {
		next = receipts;
	}
	if (parked < next) {
		next = parked;
	}
	return next <= now ? 0 : (int64_t)(next - now);
}

static void on_expired(void *arg, int status, uint64_t removed)
{
	struct vt_engine *e = arg;

	e->pending_calls--;
	e->expiring = 0;

	/*
	 * While storage is unreachable the sweep runs every second: it is also
	 * the probe that tells when it answers again, without waiting for
	 * traffic. A full store stays unhealthy until a batch commits.
	 */
	if (e->health_err != VT_ENOSPC) {
		e->healthy = status == 0;
	}
	if (status < 0) {
		vt_log(VT_LOG_WARN, "offline expiry failed: %s", vt_error_name(status));
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
		vt__senders_sweep(e, now);
		vt__journal_rewrite(e);
		for (struct vt_conn *c = e->conns, *next; c != NULL; c = next) {
			next = c->next;
			if (c->closing) {
				continue;
			}
			if (vt__conn_expired(c)) {
				vt__conn_kill(c, VT_CLOSE_TOKEN_EXPIRED, "token expired");
			} else if (c->list_failed) {
				c->list_failed = 0;
				vt__conn_pump(c);
			}
		}
	}
	if (now >= e->next_expire && !e->expiring && !e->expire_due && !e->shutting_down) {
		/* A device connected all along is in use: see it again, and
		 * hand that to storage before it looks for devices to forget
		 * (vt_engine_flush starts the sweep once it has). */
		for (struct vt_conn *c = e->conns; c != NULL; c = c->next) {
			if (!c->closing) {
				vt__batch_touch(e, &c->id, NULL, NULL);
			}
		}
		e->next_expire = now + (e->healthy ? EXPIRE_SWEEP_MS : TOKEN_SWEEP_MS);
		e->expire_due = 1;
		vt_engine_flush(e);
	}
}

void vt__expire_start(struct vt_engine *e)
{
	int64_t wall = vt__wall(e);

	e->expire_due = 0;
	e->expiring = 1;
	e->pending_calls++;
	vt__revoked_expire(e, wall - (int64_t)e->cfg.device_ttl_ms);
	e->st.ops->expire(e->st.self, wall, wall - (int64_t)e->cfg.offline_ttl_ms,
			  wall - (int64_t)e->cfg.device_ttl_ms, EXPIRE_MAX_PER_SWEEP,
			  on_expired, e);
}

void vt_engine_run_timers(struct vt_engine *e)
{
	uint64_t now;
	struct vt_item *top;

	vt__clock_hold(e);
	now = vt__now(e);
	while ((top = vt_timers_first(&e->timers)) != NULL && top->deadline <= now) {
		vt__conn_retry(top->conn, top);
	}
	if (vt__receipts_next_due(&e->receipts) <= now) {
		vt__want_flush(e); /* a group's receipt has gathered long enough */
	}
	vt__park_due(e, now);
	sweep(e, now);
	vt__timers_changed(e);
	vt__clock_release(e);
}

void vt_engine_stats(const struct vt_engine *e, struct vt_engine_stats *out)
{
	struct vt_storage_pairs p = {0, 0};

	*out = e->stats;
	out->revoked_scopes = e->revoked.len;
	if (e->st.ops->pairs != NULL) {
		e->st.ops->pairs(e->st.self, &p);
		out->pairs_known = 1;
		out->pairs_kept = p.kept;
		out->pairs_forgotten = p.forgotten;
	}
}

int vt_engine_healthy(const struct vt_engine *e)
{
	return e->healthy;
}
