/*
 * store_receipts.c - "delivered" receipts made from the acks of a batch.
 *
 * Two maps live for one build: an inbox's ACK ops with a receipt_id, in
 * order (the k-th receipt of the inbox takes the k-th one's id, and is
 * reported there), and the receipt taking refs for each (inbox, sender).
 * Every ACK op adds at most one ref and every receipt has one, so an inbox
 * never starts more receipts than it has ops with an id to give.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>

#include "map.h"
#include "store_receipts.h"

/* "LEN:USER LEN:DEVICE SENDER": no id can pass for another. */
#define KEY_MAX (3 * (VT_ID_MAX + 24))

/* The ACK ops of one inbox that carry a receipt_id, and how many it used. */
struct inbox_ops {
	size_t *v;
	size_t n, cap;
	size_t used;
};

struct build {
	struct vt_map inboxes;  /* inbox key -> struct inbox_ops */
	struct vt_map open;     /* inbox and sender -> the vt__rcpt taking refs */
	struct inbox_ops **all; /* every inbox_ops, to free */
	size_t nall, capall;
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

/* The inbox's key in inboxes; its length. */
static size_t inbox_key(char *key, const struct vt_inbox *in)
{
	size_t len = vt_key_str(key, KEY_MAX, 0, in->user);

	return vt_key_str(key, KEY_MAX, len, in->device);
}

/* Remember op @i of its inbox; its inbox's list, or NULL when out of memory. */
static struct inbox_ops *note_op(struct build *bd, const char *key, size_t i)
{
	struct inbox_ops *io = vt_map_get(&bd->inboxes, key);

	if (io == NULL) {
		struct inbox_ops **all = bd->all;

		if (bd->nall == bd->capall) {
			bd->capall = bd->capall ? 2 * bd->capall : 16;
			all = realloc(bd->all, bd->capall * sizeof(*all));
			if (all == NULL) {
				return NULL;
			}
			bd->all = all;
		}
		io = calloc(1, sizeof(*io));
		if (io == NULL || vt_map_put(&bd->inboxes, key, io) != 0) {
			free(io);
			return NULL;
		}
		bd->all[bd->nall++] = io;
	}
	if (io->n == io->cap) {
		size_t ncap = io->cap ? 2 * io->cap : 8;
		size_t *v = realloc(io->v, ncap * sizeof(*v));

		if (v == NULL) {
			return NULL;
		}
		io->v = v;
		io->cap = ncap;
	}
	io->v[io->n++] = i;
	return io;
}

/* A new receipt for the sender of ACK @op, reported on @at. */
static struct vt__rcpt *rcpt_new(struct vt__rcpts *out, const struct vt_op *ops, size_t at,
				 const struct vt_op *op)
{
	struct vt__rcpt *r;

	if (out->n == out->cap) {
		size_t ncap = out->cap ? 2 * out->cap : 8;
		struct vt__rcpt **v = realloc(out->v, ncap * sizeof(*v));

		if (v == NULL) {
			return NULL;
		}
		out->v = v;
		out->cap = ncap;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return NULL;
	}
	snprintf(r->from, sizeof(r->from), "%s", op->inbox.user);
	snprintf(r->to, sizeof(r->to), "%s", op->acked_from);
	r->users[0] = r->to;
	r->op = at;
	r->rec.id = ops[at].receipt_id;
	r->rec.kind = VT_KIND_DELIVERED;
	r->rec.from = r->from;
	r->rec.to = r->to;
	r->rec.cid = "";
	r->rec.ts = ops[at].ts;
	vt_buf_init(&r->body);
	vt__rcpt_body_open(&r->body, op->inbox.device);
	out->v[out->n++] = r;
	return r;
}

/* Does ACK @op owe its sender a receipt? */
static int owes(const struct vt_op *op)
{
	return op->kind == VT_OP_ACK && op->receipt_id != 0 && op->status == 0 &&
	       op->acked_kind == VT_KIND_MESSAGE && op->acked_from[0] != '\0' &&
	       strcmp(op->acked_from, op->inbox.user) != 0;
}

/* Add the ref of ACK op @i; 0 or VT_ENOMEM. */
static int add(struct build *bd, struct vt__rcpts *out, struct vt_op *ops, size_t i)
{
	struct vt_op *op = &ops[i];
	char key[KEY_MAX];
	struct inbox_ops *io;
	struct vt__rcpt *r;
	size_t klen;

	klen = inbox_key(key, &op->inbox);
	io = note_op(bd, key, i);
	if (io == NULL) {
		return VT_ENOMEM;
	}
	if (!owes(op)) {
		return 0;
	}
	vt_key_str(key, sizeof(key), klen, op->acked_from);
	r = vt_map_get(&bd->open, key);
	if (r == NULL || r->nrefs == VT_RECEIPT_REFS_MAX) {
		/* io->used < io->n: each receipt before used an op of its own */
		r = rcpt_new(out, ops, io->v[io->used], op);
		if (r == NULL || vt_map_put(&bd->open, key, r) != 0) {
			return VT_ENOMEM;
		}
		io->used++;
	}
	vt__rcpt_body_ref(&r->body, r->nrefs == 0, op->id, op->acked_cid);
	r->nrefs++;
	op->out_receipt_id = r->rec.id;
	return 0;
}

static void build_free(struct build *bd)
{
	for (size_t i = 0; i < bd->nall; i++) {
		free(bd->all[i]->v);
		free(bd->all[i]);
	}
	free(bd->all);
	vt_map_free(&bd->inboxes);
	vt_map_free(&bd->open);
}

int vt__rcpts_build(struct vt_op *ops, size_t n, struct vt__rcpts *out)
{
	struct build bd = {.nall = 0};
	int rc = 0;

	vt_map_init(&bd.inboxes);
	vt_map_init(&bd.open);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (ops[i].kind == VT_OP_ACK && ops[i].receipt_id != 0) {
			rc = add(&bd, out, ops, i);
		}
	}
	build_free(&bd);

	for (size_t i = 0; i < out->n && rc == 0; i++) {
		struct vt__rcpt *r = out->v[i];

		vt__rcpt_body_close(&r->body);
		rc = vt_buf_failed(&r->body) ? VT_ENOMEM : 0;
		r->rec.body = r->body.data;
		r->rec.body_len = r->body.len;
	}
	if (rc != 0) {
		for (size_t i = 0; i < n; i++) {
			ops[i].out_receipt_id = 0;
		}
		vt__rcpts_free(out);
	}
	return rc;
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

void vt__rcpts_free(struct vt__rcpts *r)
{
	for (size_t i = 0; i < r->n; i++) {
		vt_buf_free(&r->v[i]->body);
		free(r->v[i]);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}
