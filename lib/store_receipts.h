/*
 * store_receipts.h - "delivered" receipts made from the acks of a batch.
 *
 * Internal. An ACK op with a receipt_id asks the backend to store the
 * sender's receipt in the ack's own transaction (vartalap/storage.h,
 * VT_OP_ACK). Receipts are made in two steps, so that a backend without an
 * undo (memory) can set aside all they need before it applies a batch:
 *
 * - plan, before the ops run: vt__rcpts_expect() for each record an ACK op
 *   may remove, then vt__rcpts_reserve(), which sets aside, for each inbox
 *   and sender, receipts enough for every ref expected, each with room for
 *   its body. It may fail (VT_ENOMEM) while nothing is applied yet.
 * - fill, once the ops ran and their out fields say what each removed:
 *   vt__rcpts_fill() puts the refs owed into the receipts set aside,
 *   coalesced as the contract says. It allocates nothing: the refs that
 *   come are among those expected, so they fit.
 *
 * A backend that can abort its transaction (LMDB) plans from what the ops
 * did, after applying them: vt__rcpts_build(). Either way it then writes
 * each receipt made with a PUT of its own before the transaction commits.
 * The body encoding is the engine's too (receipts.c), so a receipt reads
 * the same whoever made it.
 */
#ifndef VARTALAP_STORE_RECEIPTS_H
#define VARTALAP_STORE_RECEIPTS_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/storage.h>

#include "buf.h"
#include "map.h"

/*
 * One receipt set aside. Once reserved, rec has its kind, from, to and cid;
 * fill gives it its id, time and body when it makes the receipt.
 */
struct vt__rcpt {
	struct vt_record rec;        /* from, to and body point into this */
	char from[VT_ID_MAX + 1];    /* who acked */
	char to[VT_ID_MAX + 1];      /* the sender, who hears of it */
	const char *users[1];        /* {to}: the PUT's one user */
	size_t op;                   /* index of the ACK op it is reported on */
	size_t slot;                 /* its index in vt__rcpts.all */
	size_t room;                 /* the most body bytes it can take */
	uint32_t nrefs;
	struct vt__rcpt *next;       /* the next one for the same inbox and sender */
	struct vt_buf body;
};

/* The receipts of one batch. Zero-initialized, or vt__rcpts_init(), is empty. */
struct vt__rcpts {
	struct vt__rcpt **v;    /* the receipts made, in the order they were started */
	size_t n;
	struct vt__rcpt **all;  /* every receipt set aside, those of v among them */
	size_t nall, cap;
	struct vt_map inboxes;  /* inbox key -> its ACK ops with a receipt_id */
	struct vt_map groups;   /* inbox key and sender -> the refs expected */
	struct vt_buf scratch;  /* where a ref is measured */
};

void vt__rcpts_init(struct vt__rcpts *rs);

/*
 * Plan: ACK op @ack (with a receipt_id) may remove record @rec. When that
 * would owe a receipt, count the ref it would add. Call it for every record
 * an ACK op may remove, several if it cannot be told which. 0 or VT_ENOMEM.
 */
int vt__rcpts_expect(struct vt__rcpts *rs, const struct vt_op *ack, const struct vt_record *rec);

/*
 * Plan: set aside the receipts of what was expected, for the batch @ops of
 * @n, and fill rs->all. 0, or VT_ENOMEM (free @rs then).
 */
int vt__rcpts_reserve(struct vt__rcpts *rs, const struct vt_op *ops, size_t n);

/*
 * Fill: the receipts owed by the applied ACK ops of @ops, the batch that
 * was planned for, into rs->v; sets each op's out_receipt_id. Allocates
 * nothing. An owed ref that was not expected (a wrong plan) is left out,
 * logged, with out_receipt_id 0: the engine then stores it itself.
 */
void vt__rcpts_fill(struct vt__rcpts *rs, struct vt_op *ops, size_t n);

/*
 * Plan and fill at once, from the applied ACK ops of @ops, a batch of @n:
 * fills @out (empty before). 0, or VT_ENOMEM with @out freed and no
 * out_receipt_id set.
 */
int vt__rcpts_build(struct vt_op *ops, size_t n, struct vt__rcpts *out);

/* A PUT of receipt @r into @put: to its sender's devices, no cap, no dedup. */
void vt__rcpt_put_op(const struct vt__rcpt *r, struct vt_op *put);

/* Report receipt @r, stored by @put, on its op of @ops. */
void vt__rcpt_report(struct vt_op *ops, const struct vt__rcpt *r, const struct vt_op *put);

/* Free what was planned and made; @rs is empty and usable again. */
void vt__rcpts_free(struct vt__rcpts *rs);

/* The body of a receipt, as three steps: open, each ref, close. */
void vt__rcpt_body_open(struct vt_buf *b, const char *device);
void vt__rcpt_body_ref(struct vt_buf *b, int first, uint64_t id, const char *cid);
void vt__rcpt_body_close(struct vt_buf *b);

#endif /* VARTALAP_STORE_RECEIPTS_H */
