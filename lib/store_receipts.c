/*
 * store_receipts.c - "delivered" receipts made from the acks of a batch.
 *
 * Two maps live from plan to free: an inbox's ACK ops with a receipt_id,
 * in order (the k-th receipt of the inbox takes the k-th one's id, and is
 * reported there), and a group per (inbox, sender): how many refs may come
 * and how long the longest is, then the receipts set aside for them. A
 * group sets aside one receipt per VT_RECEIPT_REFS_MAX refs expected, each
 * with room for as many refs as one can hold, all of the longest size. The
 * refs that come are some of those expected, in op order, so a group never
 * needs more receipts, nor a receipt more room, than it has.
 *
 * Every ACK op adds at most one ref and every receipt has one, so an inbox
 * never starts more receipts than it has ops with an id to give.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "store_key.h"
#include "store_receipts.h"

/*
 * An inbox, then the sender, each part as "<length>:<bytes>" (map.h), so
 * no id can pass for another. Room for the whole of any inbox a store
 * takes (user and device within VT__INBOX_KEY_MAX - 4 bytes) and a sender
 * (a user id), each with up to 4 bytes of length, and the NUL: a key cut
 * short would make two long devices of one user one receipt.
 */
#define KEY_MAX (VT__INBOX_KEY_MAX + VT_ID_MAX + 3 * 4 + 1)

/* The ACK ops of one inbox that carry a receipt_id, and how many it used. */
struct inbox_ops {
	size_t *v;
	size_t n, cap;
	size_t used;
};

/* The refs one inbox may owe one sender, and the receipts set aside. */
struct group {
	struct vt_inbox inbox;    /* the batch's strings */
	char to[VT_ID_MAX + 1];   /* the sender */
	size_t nrefs;             /* refs expected */
	size_t refmax;            /* body bytes of the longest */
	struct vt__rcpt *first;   /* set aside, linked by next */
	struct vt__rcpt *cur;     /* fill: the one taking refs */
};

void vt__rcpt_body_open(struct vt_buf *b, const char *device)
{
	vt_buf_puts(b, "{\"device\":");
	vt_buf_json_str(b, device, strlen(device));
	vt_buf_puts(b, ",\"refs\":[");
}

void vt__rcpt_body_ref(struct vt_buf *b, int first, uint64_t id, const char *cid)
{
	vt_buf_puts(b, first ? "{\"ref\":\"" : ",{\"ref\":\"");
	vt_buf_u64(b, id);
	vt_buf_puts(b, "\",\"cid\":");
	vt_buf_json_str(b, cid, strlen(cid));
	vt_buf_putc(b, '}');
}

void vt__rcpt_body_close(struct vt_buf *b)
{
	vt_buf_puts(b, "]}");
}

void vt__rcpts_init(struct vt__rcpts *rs)
{
	memset(rs, 0, sizeof(*rs));
	vt_map_init(&rs->inboxes);
	vt_map_init(&rs->groups);
	vt_buf_init(&rs->scratch);
}

/* The inbox's key in inboxes (map.h: vt_key_str); its length. */
static size_t inbox_key(char *key, const struct vt_inbox *in)
{
	size_t len = vt_key_str(key, KEY_MAX, 0, in->user);

	return vt_key_str(key, KEY_MAX, len, in->device);
}

/* The key of the group of inbox @in and sender @to. */
static void group_key(char *key, const struct vt_inbox *in, const char *to)
{
	vt_key_str(key, KEY_MAX, inbox_key(key, in), to);
}

/* Does ACK @op, applied or as expected, owe its sender a receipt? */
static int owes(const struct vt_op *op)
{
	return op->kind == VT_OP_ACK && op->receipt_id != 0 && op->status == 0 &&
	       op->acked_kind == VT_KIND_MESSAGE && op->acked_from[0] != '\0' &&
	       strcmp(op->acked_from, op->inbox.user) != 0;
}

/* ---- plan ---- */

/* Count the ref that ACK @op, out fields set, would owe; 0 or VT_ENOMEM. */
static int expect(struct vt__rcpts *rs, const struct vt_op *op)
{
	char key[KEY_MAX];
	struct group *g;

	if (!owes(op)) {
		return 0;
	}
	group_key(key, &op->inbox, op->acked_from);
	g = vt_map_get(&rs->groups, key);
	if (g == NULL) {
		g = calloc(1, sizeof(*g));
		if (g == NULL || vt_map_put(&rs->groups, key, g) != 0) {
			free(g);
			return VT_ENOMEM;
		}
		g->inbox = op->inbox;
		snprintf(g->to, sizeof(g->to), "%s", op->acked_from);
	}
	vt_buf_reset(&rs->scratch);
	vt__rcpt_body_ref(&rs->scratch, 0, op->id, op->acked_cid);
	if (vt_buf_failed(&rs->scratch)) {
		return VT_ENOMEM;
	}
	g->nrefs++;
	g->refmax = rs->scratch.len > g->refmax ? rs->scratch.len : g->refmax;
	return 0;
}

int vt__rcpts_expect(struct vt__rcpts *rs, const struct vt_op *ack, const struct vt_record *rec)
{
	struct vt_op op = *ack;

	vt__op_reset(&op);
	vt__ack_report(&op, rec);
	return expect(rs, &op);
}

/* Remember ACK op @i in its inbox's list; 0 or VT_ENOMEM. */
static int note_op(struct vt__rcpts *rs, const struct vt_op *op, size_t i)
{
	char key[KEY_MAX];
	struct inbox_ops *io;

	inbox_key(key, &op->inbox);
	io = vt_map_get(&rs->inboxes, key);
	if (io == NULL) {
		io = calloc(1, sizeof(*io));
		if (io == NULL || vt_map_put(&rs->inboxes, key, io) != 0) {
			free(io);
			return VT_ENOMEM;
		}
	}
	if (io->n == io->cap) {
		size_t ncap = io->cap ? 2 * io->cap : 8;
		size_t *v = realloc(io->v, ncap * sizeof(*v));

		if (v == NULL) {
			return VT_ENOMEM;
		}
		io->v = v;
		io->cap = ncap;
	}
	io->v[io->n++] = i;
	return 0;
}

/* A receipt of group @g set aside, with room for @nrefs refs; NULL when out of memory. */
static struct vt__rcpt *rcpt_new(struct vt__rcpts *rs, const struct group *g, size_t nrefs)
{
	struct vt__rcpt *r;

	if (rs->nall == rs->cap) {
		size_t ncap = rs->cap ? 2 * rs->cap : 8;
		struct vt__rcpt **all = realloc(rs->all, ncap * sizeof(*all));

		if (all == NULL) {
			return NULL;
		}
		rs->all = all;
		rs->cap = ncap;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return NULL;
	}
	r->slot = rs->nall;
	rs->all[rs->nall++] = r;
	snprintf(r->from, sizeof(r->from), "%s", g->inbox.user);
	snprintf(r->to, sizeof(r->to), "%s", g->to);
	r->users[0] = r->to;
	r->rec.kind = VT_KIND_DELIVERED;
	r->rec.from = r->from;
	r->rec.to = r->to;
	r->rec.cid = "";
	vt_buf_init(&r->body);
	vt__rcpt_body_open(&r->body, g->inbox.device);
	r->room = r->body.len + nrefs * g->refmax + strlen("]}");
	if (vt_buf_reserve(&r->body, r->room - r->body.len) != 0) {
		return NULL;
	}
	return r;
}

/* Set aside the receipts of group @g, linked in order; 0 or VT_ENOMEM. */
static int reserve_group(struct vt__rcpts *rs, struct group *g)
{
	size_t per = g->nrefs < VT_RECEIPT_REFS_MAX ? g->nrefs : VT_RECEIPT_REFS_MAX;
	struct vt__rcpt **link = &g->first;

	for (size_t left = g->nrefs; left > 0; left -= left < per ? left : per) {
		*link = rcpt_new(rs, g, per);
		if (*link == NULL) {
			return VT_ENOMEM;
		}
		link = &(*link)->next;
	}
	return 0;
}

int vt__rcpts_reserve(struct vt__rcpts *rs, const struct vt_op *ops, size_t n)
{
	int rc = 0;

	if (rs->groups.len == 0) {
		return 0; /* no ack can owe a receipt */
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (ops[i].kind == VT_OP_ACK && ops[i].receipt_id != 0) {
			rc = note_op(rs, &ops[i], i);
		}
	}
	for (size_t i = 0; i < rs->groups.cap && rc == 0; i++) {
		if (rs->groups.slots[i].key != NULL) {
			rc = reserve_group(rs, rs->groups.slots[i].value);
		}
	}
	if (rc == 0) {
		rs->v = calloc(rs->nall ? rs->nall : 1, sizeof(*rs->v));
		rc = rs->v ? 0 : VT_ENOMEM;
	}
	return rc;
}

/* ---- fill ---- */

/* The receipt of group @g to take the next ref, started if new; or NULL. */
static struct vt__rcpt *take(struct vt__rcpts *rs, struct vt_op *ops, struct group *g)
{
	struct vt__rcpt *r = g->cur;
	char key[KEY_MAX];
	struct inbox_ops *io;

	if (r != NULL && r->nrefs < VT_RECEIPT_REFS_MAX) {
		return r;
	}
	r = r != NULL ? r->next : g->first;
	inbox_key(key, &g->inbox);
	io = vt_map_get(&rs->inboxes, key);
	if (r == NULL || io == NULL || io->used == io->n) {
		return NULL;
	}
	r->op = io->v[io->used++];
	r->rec.id = ops[r->op].receipt_id;
	r->rec.ts = ops[r->op].ts;
	rs->v[rs->n++] = r;
	g->cur = r;
	return r;
}

/* Put the ref of applied ACK op @i into its receipt. */
static void put_ref(struct vt__rcpts *rs, struct vt_op *ops, size_t i)
{
	struct vt_op *op = &ops[i];
	char key[KEY_MAX];
	struct group *g;
	struct vt__rcpt *r;

	group_key(key, &op->inbox, op->acked_from);
	g = vt_map_get(&rs->groups, key);
	r = g != NULL ? take(rs, ops, g) : NULL;
	if (r == NULL) {
		vt_log(VT_LOG_ERROR,
		       "receipt of id=%llu for %s was not planned; left to the engine",
		       (unsigned long long)op->id, op->acked_from);
		return;
	}
	vt__rcpt_body_ref(&r->body, r->nrefs == 0, op->id, op->acked_cid);
	r->nrefs++;
	op->out_receipt_id = r->rec.id;
}

void vt__rcpts_fill(struct vt__rcpts *rs, struct vt_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (owes(&ops[i])) {
			put_ref(rs, ops, i);
		}
	}
	for (size_t i = 0; i < rs->n; i++) {
		struct vt__rcpt *r = rs->v[i];

		vt__rcpt_body_close(&r->body);
		r->rec.body = r->body.data;
		r->rec.body_len = r->body.len;
	}
}

int vt__rcpts_build(struct vt_op *ops, size_t n, struct vt__rcpts *out)
{
	int rc = 0;

	vt__rcpts_init(out);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = expect(out, &ops[i]);
	}
	if (rc == 0) {
		rc = vt__rcpts_reserve(out, ops, n);
	}
	if (rc != 0) {
		vt__rcpts_free(out);
		return rc;
	}
	vt__rcpts_fill(out, ops, n);
	return 0;
}

void vt__rcpt_put_op(const struct vt__rcpt *r, struct vt_op *put)
{
	memset(put, 0, sizeof(*put));
	put->kind = VT_OP_PUT;
	put->rec = &r->rec;
	put->users = r->users;
	put->nusers = 1;
}

void vt__rcpt_report(struct vt_op *ops, const struct vt__rcpt *r, const struct vt_op *put)
{
	struct vt_op *op = &ops[r->op];

	op->out_receipt = &r->rec;
	op->out_to = put->out_to;
	op->out_nto = put->out_nto;
}

void vt__rcpts_free(struct vt__rcpts *rs)
{
	for (size_t i = 0; i < rs->nall; i++) {
		vt_buf_free(&rs->all[i]->body);
		free(rs->all[i]);
	}
	free(rs->all);
	free(rs->v);
	for (size_t i = 0; i < rs->inboxes.cap; i++) {
		if (rs->inboxes.slots[i].key != NULL) {
			free(((struct inbox_ops *)rs->inboxes.slots[i].value)->v);
		}
	}
	vt_map_free_all(&rs->inboxes);
	vt_map_free_all(&rs->groups);
	vt_buf_free(&rs->scratch);
	vt__rcpts_init(rs);
}
