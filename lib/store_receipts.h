/*
 * store_receipts.h - "delivered" receipts made from the acks of a batch.
 *
 * Internal. An ACK op with a receipt_id asks the backend to store the
 * sender's receipt in the ack's own transaction (vartalap/storage.h,
 * VT_OP_ACK). Once a backend has applied a batch's ops, the ACK ops' out
 * fields say what each removed; vt__rcpts_build() turns them into the
 * receipts to store, coalesced as the contract says, and the backend
 * writes each with its own PUT before the transaction commits. The body
 * encoding is the engine's too (receipts.c), so a receipt reads the same
 * whoever made it.
 */
#ifndef VARTALAP_STORE_RECEIPTS_H
#define VARTALAP_STORE_RECEIPTS_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/storage.h>

#include "buf.h"

/* One receipt to store: its record, and the op it is reported on. */
struct vt__rcpt {
	struct vt_record rec;        /* from, to and body point into this */
	char from[VT_ID_MAX + 1];    /* who acked */
	char to[VT_ID_MAX + 1];      /* the sender, who hears of it */
	const char *users[1];        /* {to}: the PUT's one user */
	size_t op;                   /* index of the ACK op it is reported on */
	uint32_t nrefs;
	struct vt_buf body;          /* open until vt__rcpts_build() closes it */
};

/* The receipts of one batch, in the order they were started. */
struct vt__rcpts {
	struct vt__rcpt **v;
	size_t n, cap;
};

/*
 * The receipts owed by the applied ACK ops of @ops, a batch of @n: sets
 * each op's out_receipt_id, and fills @out (empty before). 0, or VT_ENOMEM
 * with @out freed and out_receipt_id cleared again.
 */
int vt__rcpts_build(struct vt_op *ops, size_t n, struct vt__rcpts *out);

/* A PUT of receipt @r into @put: to its sender's devices, no cap, no dedup. */
void vt__rcpt_put_op(const struct vt__rcpt *r, struct vt_op *put);

/* Report receipt @r, stored by @put, on its op of @ops. */
void vt__rcpt_report(struct vt_op *ops, const struct vt__rcpt *r, const struct vt_op *put);

/* Free what vt__rcpts_build() made; @r is empty and usable again. */
void vt__rcpts_free(struct vt__rcpts *r);

/* The body of a receipt, as three steps: open, each ref, close. */
void vt__rcpt_body_open(struct vt_buf *b, const char *device);
void vt__rcpt_body_ref(struct vt_buf *b, int first, uint64_t id, const char *cid);
void vt__rcpt_body_close(struct vt_buf *b);

#endif /* VARTALAP_STORE_RECEIPTS_H */
