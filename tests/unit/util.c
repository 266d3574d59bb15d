/*
 * util.c - helpers shared by the unit tests.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "util.h"

static uint64_t fake_mono(void *arg)
{
	return ((struct fake_host *)arg)->mono;
}

static int64_t fake_wall(void *arg)
{
	return ((struct fake_host *)arg)->wall;
}

static void fake_want_flush(void *arg)
{
	((struct fake_host *)arg)->flush_wanted = 1;
}

void fake_host_init(struct fake_host *h)
{
	memset(h, 0, sizeof(*h));
	h->mono = 1000;
	h->wall = INT64_C(1700000000000);
	h->host.mono_ms = fake_mono;
	h->host.wall_ms = fake_wall;
	h->host.want_flush = fake_want_flush;
	h->host.timers_changed = NULL;
	h->host.arg = h;
}

static int cap_send(void *ctx, const char *data, size_t len)
{
	struct cap_conn *c = ctx;
	char *copy;

	if (c->closed) {
		return VT_ECLOSED;
	}
	if (c->full) {
		return VT_EAGAIN;
	}
	copy = malloc(len + 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, data, len);
	copy[len] = '\0';
	c->frames = realloc(c->frames, (c->nframes + 1) * sizeof(*c->frames));
	ck_assert_ptr_nonnull(c->frames);
	c->frames[c->nframes++] = copy;
	return 0;
}

static void cap_close(void *ctx, int code, const char *reason)
{
	struct cap_conn *c = ctx;

	c->closed = 1;
	c->close_code = code;
}

const struct vt_transport_ops cap_ops = {.send = cap_send, .close = cap_close};

void cap_clear(struct cap_conn *c)
{
	for (size_t i = 0; i < c->nframes; i++) {
		free(c->frames[i]);
	}
	free(c->frames);
	c->frames = NULL;
	c->nframes = 0;
}

void cap_free(struct cap_conn *c)
{
	cap_clear(c);
}

static int is_type(const char *frame, const char *type)
{
	char t[32];

	return json_field(frame, "type", t, sizeof(t)) == 0 && strcmp(t, type) == 0;
}

size_t cap_count(const struct cap_conn *c, const char *type)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nframes; i++) {
		n += is_type(c->frames[i], type);
	}
	return n;
}

const char *cap_nth(const struct cap_conn *c, const char *type, size_t i)
{
	for (size_t k = 0; k < c->nframes; k++) {
		if (is_type(c->frames[k], type) && i-- == 0) {
			return c->frames[k];
		}
	}
	return NULL;
}

uint64_t cap_nth_id(const struct cap_conn *c, const char *type, size_t i)
{
	const char *f = cap_nth(c, type, i);
	uint64_t id;

	ck_assert_msg(f != NULL, "no frame %zu of type %s", i, type);
	id = json_id(f, "id");
	ck_assert_uint_ne(id, 0);
	return id;
}

int json_field(const char *frame, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p, *end;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(frame, pat);
	if (p == NULL) {
		return -1;
	}
	p += strlen(pat);
	end = strchr(p, '"');
	if (end == NULL || (size_t)(end - p) >= cap) {
		return -1;
	}
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return 0;
}

uint64_t json_id(const char *frame, const char *key)
{
	char v[32];

	if (frame == NULL || json_field(frame, key, v, sizeof(v)) != 0) {
		return 0;
	}
	return strtoull(v, NULL, 10);
}

size_t frame_refs(const char *frame, uint64_t *ids, size_t cap)
{
	const char *p = frame != NULL ? strstr(frame, "\"refs\":[") : NULL;
	size_t n = 0;

	while (p != NULL && (p = strstr(p, "{\"ref\":\"")) != NULL) {
		p += strlen("{\"ref\":\"");
		if (n < cap) {
			ids[n] = strtoull(p, NULL, 10);
		}
		n++;
	}
	return n;
}

size_t delivered_refs(const struct cap_conn *c, uint64_t *ids, size_t cap)
{
	const char *f;
	size_t n = 0;

	for (size_t i = 0; (f = cap_nth(c, "delivered", i)) != NULL; i++) {
		size_t room = n < cap ? cap - n : 0;

		n += frame_refs(f, room > 0 ? ids + n : NULL, room);
	}
	return n;
}

struct vt_storage wrap_inner;

static void wrap_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	wrap_inner.ops->commit(wrap_inner.self, ops, n, done, arg);
}

static void wrap_list(void *self, const struct vt_inbox *in, uint64_t after, uint32_t limit,
		      vt_list_cb done, void *arg)
{
	wrap_inner.ops->list(wrap_inner.self, in, after, limit, done, arg);
}

static void wrap_expire(void *self, int64_t now, int64_t before, int64_t dev_before,
			uint64_t max, vt_expire_cb done, void *arg)
{
	wrap_inner.ops->expire(wrap_inner.self, now, before, dev_before, max, done, arg);
}

static int wrap_load_groups(void *self,
			    void (*each)(void *arg, const char *g, const char *d, size_t n),
			    void *arg)
{
	return wrap_inner.ops->load_groups(wrap_inner.self, each, arg);
}

static uint64_t wrap_max_id(void *self)
{
	return wrap_inner.ops->max_id(wrap_inner.self);
}

int wrap_dedup_peek(void *self, const struct vt_record *rec, uint64_t *id)
{
	return wrap_inner.ops->dedup_peek(wrap_inner.self, rec, id);
}

static void wrap_destroy(void *self)
{
	wrap_inner.ops->destroy(wrap_inner.self);
}

void wrap_ops_init(struct vt_storage_ops *ops, int64_t dedup_window_ms)
{
	ck_assert_int_eq(vt_storage_memory_create(dedup_window_ms, &wrap_inner), 0);
	memset(ops, 0, sizeof(*ops));
	ops->commit = wrap_commit;
	ops->list = wrap_list;
	ops->expire = wrap_expire;
	ops->load_groups = wrap_load_groups;
	ops->max_id = wrap_max_id;
	ops->destroy = wrap_destroy;
}

struct vt_engine *engine_new(struct fake_host *h, const struct vt_engine_config *cfg,
			     const struct vt_storage *storage)
{
	struct vt_engine_config def;
	struct vt_storage st;
	struct vt_engine *e = NULL;

	/* Tests read frames, not logs: keep the output to what went wrong. */
	vt_log_set(NULL, NULL, VT_LOG_WARN);
	if (cfg == NULL) {
		vt_engine_config_init(&def);
		cfg = &def;
	}
	if (storage != NULL) {
		st = *storage;
	} else {
		ck_assert_int_eq(vt_storage_memory_create(INT64_C(7) * 86400000, &st), 0);
	}
	ck_assert_int_eq(vt_engine_create(cfg, &h->host, st, &e), 0);
	return e;
}

void turn(struct vt_engine *e, struct fake_host *h)
{
	while (h->flush_wanted) {
		h->flush_wanted = 0;
		vt_engine_flush(e);
	}
}

void advance(struct vt_engine *e, struct fake_host *h, uint64_t ms)
{
	uint64_t end = h->mono + ms;

	turn(e, h);
	for (;;) {
		int64_t t = vt_engine_next_timeout(e);
		uint64_t step = end - h->mono;

		if (t >= 0 && h->mono + (uint64_t)t <= end) {
			step = (uint64_t)t;
		}

		h->mono += step;
		h->wall += (int64_t)step;
		vt_engine_run_timers(e);
		turn(e, h);
		if (h->mono >= end) {
			break;
		}
	}
}

struct vt_identity ident(struct fake_host *h, const char *user)
{
	struct vt_identity id;

	memset(&id, 0, sizeof(id));
	snprintf(id.user, sizeof(id.user), "%s", user);
	id.exp = h->wall / 1000 + 3600;
	return id;
}

void connect_user(struct vt_engine *e, struct fake_host *h, const char *user,
		  struct cap_conn *out)
{
	struct vt_identity id = ident(h, user);

	memset(out, 0, sizeof(*out));
	ck_assert_int_eq(vt_conn_open(e, &id, &cap_ops, out, &out->conn), 0);
	turn(e, h);
}

void connect_device(struct vt_engine *e, struct fake_host *h, const char *user,
		    const char *device, struct cap_conn *out)
{
	struct vt_identity id = ident(h, user);

	snprintf(id.device, sizeof(id.device), "%s", device);
	memset(out, 0, sizeof(*out));
	ck_assert_int_eq(vt_conn_open(e, &id, &cap_ops, out, &out->conn), 0);
	turn(e, h);
}

void fill_batch_but_one(struct vt_engine *e, struct cap_conn *c, const char *to)
{
	char cid[32];
	int i = 0;

	do {
		snprintf(cid, sizeof(cid), "fill-%d", i++);
		send_msg(c, cid, to, "\"filler\"");
	} while (e->cur.len + 1 < e->cur.cap);
}

void send_raw(struct cap_conn *c, const char *json)
{
	vt_conn_receive(c->conn, json, strlen(json));
}

void send_msg(struct cap_conn *c, const char *cid, const char *to, const char *body)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf),
			 "{\"v\":1,\"type\":\"message\",\"id\":\"%s\",\"to\":\"%s\",\"body\":%s}",
			 cid, to, body);

	ck_assert_msg(n > 0 && (size_t)n < sizeof(buf), "envelope over %zu bytes", sizeof(buf));
	vt_conn_receive(c->conn, buf, (size_t)n);
}

void send_ack(struct cap_conn *c, uint64_t id)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "{\"type\":\"ack\",\"ids\":[\"%llu\"]}",
			 (unsigned long long)id);

	vt_conn_receive(c->conn, buf, (size_t)n);
}

void on_reply(void *arg, int status, const char *json, size_t len)
{
	struct reply *r = arg;

	r->calls++;
	r->status = status;
	snprintf(r->body, sizeof(r->body), "%.*s", (int)len, json);
}

size_t senders_count(const struct vt_engine *e)
{
	return e->senders.len;
}

void senders_fill(struct vt_engine *e, size_t n)
{
	char user[32];

	for (size_t i = 0; i < n; i++) {
		snprintf(user, sizeof(user), "s%zu", i);
		ck_assert_int_eq(vt__sender_take(e, user), 1);
	}
}

/* Each ACK op of @b leaves the index and is counted as not indexed. */
static void unindex_batch(struct vt_engine *e, struct vt_batch *b)
{
	for (size_t i = 0; i < b->len; i++) {
		struct vt_pend *p = &b->pend[i];

		if (p->kind == VT_PEND_ACK && p->indexed) {
			p->indexed = 0;
			e->acking_unindexed++;
		}
	}
}

void acking_unindex(struct vt_engine *e)
{
	for (uint32_t k = 0; k < e->nflight; k++) {
		unindex_batch(e, &e->flight[(e->flight_head + k) % VT_COMMITS_MAX]);
	}
	unindex_batch(e, &e->cur);
	vt_map_free(&e->acking);
	vt_map_init(&e->acking);
}

size_t acking_count(const struct vt_engine *e)
{
	return e->acking.len + (size_t)e->acking_unindexed;
}

int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
