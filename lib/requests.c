/*
 * requests.c - what clients ask without a connection: REST send, sync
 * (listing what is owed) and ack.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

int vt__request_refused(struct vt_engine *e, const struct vt_identity *id, vt_reply_fn reply,
			void *arg)
{
	struct vt_origin o = {.reply = reply, .arg = arg};

	if (e->shutting_down) {
		vt__reply_error(e, &o, VT_EBUSY, "server shutting down", NULL);
		return 1;
	}
	if (vt__wall(e) / 1000 >= id->exp) {
		vt__reply_error(e, &o, VT_EEXPIRED, "token expired", NULL);
		return 1;
	}
	if (vt_engine_revoked(e, id) != 0) {
		vt__reply_error(e, &o, VT_EREVOKED, "token revoked by a logout", NULL);
		return 1;
	}
	return 0;
}

void vt_engine_submit(struct vt_engine *e, const struct vt_identity *id, const char *data,
		      size_t len, vt_reply_fn reply, void *arg)
{
	struct vt_origin o = {.reply = reply, .arg = arg};

	if (vt__request_refused(e, id, reply, arg)) {
		return;
	}
	vt__take_event(e, id, data, len, o);
}

static void on_fetch(void *arg, int status, const struct vt_record *recs, size_t n)
{
	struct vt_fetchreq *f = arg;
	struct vt_engine *e = f->e;
	struct vt_origin o = {.reply = f->reply, .arg = f->arg};
	size_t shown = n > f->limit ? f->limit : n;
	struct vt_buf *b = &e->out;
	uint64_t after = f->after;

	e->pending_calls--;
	free(f);
	if (status < 0) {
		vt__reply_error(e, &o, status, "listing failed", NULL);
		return;
	}

	vt_buf_reset(b);
	vt_buf_puts(b, "{\"messages\":[");
	for (size_t i = 0; i < shown; i++) {
		if (i > 0) {
			vt_buf_putc(b, ',');
		}
		vt_env_encode_record(b, &recs[i]);
	}
	vt_buf_puts(b, "],\"next\":\"");
	/* An empty page keeps the cursor where the client had it. */
	vt_buf_u64(b, shown > 0 ? recs[shown - 1].id : after);
	vt_buf_puts(b, n > shown ? "\",\"more\":true}" : "\",\"more\":false}");
	if (vt_buf_failed(b)) {
		vt__reply_error(e, &o, VT_ENOMEM, "out of memory", NULL);
		return;
	}
	vt__reply(e, &o, 0, b->data, b->len);
}

/* The device's registration committed (or failed): list its inbox now. */
void vt__fetch_start(struct vt_fetchreq *f, int status)
{
	struct vt_engine *e = f->e;
	struct vt_inbox inbox = {.user = f->id.user, .device = f->id.device};

	/* A full store may refuse a new device; what it owes is listed anyway. */
	if (status < 0 && status != VT_ENOSPC) {
		struct vt_origin o = {.reply = f->reply, .arg = f->arg};

		free(f);
		vt__reply_error(e, &o, status, vt_strerror(status), NULL);
		return;
	}

	/* One more than shown tells whether there is more. */
	e->pending_calls++;
	e->st.ops->list(e->st.self, &inbox, f->after, f->limit + 1, on_fetch, f);
}

void vt_engine_fetch(struct vt_engine *e, const struct vt_identity *id, uint64_t after,
		     uint32_t limit, vt_reply_fn reply, void *arg)
{
	struct vt_fetchreq *f;

	if (vt__request_refused(e, id, reply, arg)) {
		return;
	}
	if (limit == 0 || limit > e->cfg.fetch_limit_max) {
		limit = e->cfg.fetch_limit_max;
	}
	f = malloc(sizeof(*f));
	if (f == NULL) {
		struct vt_origin o = {.reply = reply, .arg = arg};

		vt__reply_error(e, &o, VT_ENOMEM, "out of memory", NULL);
		return;
	}
	f->e = e;
	f->id = *id;
	f->after = after;
	f->limit = limit;
	f->reply = reply;
	f->arg = arg;

	/* A REST client is a device too: seen now, and first to claim. */
	vt__batch_touch(e, id, NULL, f);
}

static void ackreq_reply(struct vt_engine *e, struct vt_ackreq *req)
{
	struct vt_origin o = {.reply = req->reply, .arg = req->arg};
	struct vt_buf *b = &e->out;

	if (req->failed < 0) {
		vt__reply_error(e, &o, req->failed, vt_strerror(req->failed), NULL);
		goto out;
	}
	vt_buf_reset(b);
	vt_buf_puts(b, "{\"acked\":[");
	vt_buf_append(b, req->acked.data, req->acked.len);
	vt_buf_puts(b, "],\"unknown\":[");
	vt_buf_append(b, req->unknown.data, req->unknown.len);
	vt_buf_puts(b, "]}");
	vt__reply(e, &o, vt_buf_failed(b) ? VT_ENOMEM : 0, b->data, b->len);
out:
	vt_buf_free(&req->acked);
	vt_buf_free(&req->unknown);
	free(req);
}

void vt__ackreq_done(struct vt_engine *e, struct vt_ackreq *req, uint64_t id, int found)
{
	struct vt_buf *list = found > 0 ? &req->acked : &req->unknown;

	if (found < 0) {
		req->failed = found;
	} else {
		if (list->len > 0) {
			vt_buf_putc(list, ',');
		}
		vt_buf_putc(list, '"');
		vt_buf_u64(list, id);
		vt_buf_putc(list, '"');
	}
	if (--req->left == 0) {
		ackreq_reply(e, req);
	}
}

void vt_engine_ack(struct vt_engine *e, const struct vt_identity *id, const char *json,
		   size_t len, vt_reply_fn reply, void *arg)
{
	struct vt_origin o = {.reply = reply, .arg = arg};
	const char *reason = NULL;
	uint64_t *ids;
	struct vt_ackreq *req;
	int n;

	if (vt__request_refused(e, id, reply, arg)) {
		return;
	}
	ids = malloc(VT_ACK_MAX * sizeof(*ids));
	req = calloc(1, sizeof(*req));
	if (ids == NULL || req == NULL) {
		free(ids);
		free(req);
		vt__reply_error(e, &o, VT_ENOMEM, "out of memory", NULL);
		return;
	}
	n = vt_env_decode_ids(json, len, ids, &reason);
	if (n < 0) {
		free(ids);
		free(req);
		vt__reply_error(e, &o, n, reason ? reason : vt_strerror(n), NULL);
		return;
	}

	req->left = (uint32_t)n;
	req->reply = reply;
	req->arg = arg;
	vt_buf_init(&req->acked);
	vt_buf_init(&req->unknown);
	vt__ack_ids(e, NULL, id, ids, (uint32_t)n, req);
	free(ids);
}

void vt_engine_group_info(struct vt_engine *e, const struct vt_identity *id, const char *group,
			  vt_reply_fn reply, void *arg)
{
	struct vt_origin o = {.reply = reply, .arg = arg};
	struct vt_group *g;

	if (vt__request_refused(e, id, reply, arg)) {
		return;
	}
	g = vt_groups_find(&e->groups, group);

	/* Not a member and no such group look the same from outside. */
	if (g == NULL || vt_group_member(g, id->user) == NULL) {
		vt__reply_error(e, &o, VT_ENOTFOUND, "no such group for this user", NULL);
		return;
	}
	vt_buf_reset(&e->out);
	vt_group_encode_info(&e->out, g);
	vt__reply(e, &o, vt_buf_failed(&e->out) ? VT_ENOMEM : 0, e->out.data, e->out.len);
}

void vt_engine_groups(struct vt_engine *e, const struct vt_identity *id, vt_reply_fn reply,
		      void *arg)
{
	struct vt_origin o = {.reply = reply, .arg = arg};
	struct vt_buf *b = &e->out;
	struct vt_group *const *list;
	uint32_t n;
	int rc;

	if (vt__request_refused(e, id, reply, arg)) {
		return;
	}
	rc = vt_groups_of(&e->groups, id->user, &list, &n);
	if (rc != 0) {
		vt__reply_error(e, &o, rc, "out of memory", NULL);
		return;
	}

	vt_buf_reset(b);
	vt_buf_puts(b, "{\"groups\":[");
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0) {
			vt_buf_putc(b, ',');
		}
		vt_group_encode_info(b, list[i]);
	}
	vt_buf_puts(b, "]}");
	vt__reply(e, &o, vt_buf_failed(b) ? VT_ENOMEM : 0, b->data, b->len);
}
