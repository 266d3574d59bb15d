/*
 * store_mem_rcpt.c - the receipts a batch's acks owe, in the memory backend.
 *
 * The backend has no undo: once it applies an op, the batch must complete.
 * So what the receipts need (storage.h, VT_OP_ACK) is allocated with the
 * rest of the batch, before any op runs, for every receipt its acks could
 * owe. Which record an ACK removes is known only once it ran, but not much
 * is left open: the record of the acked id, stored now or by a PUT of the
 * batch that comes before the ACK (several in a batch that removes a record
 * and stores its id again). Each is expected (store_receipts.c), and each
 * receipt set aside gets a PUT, prepared with the batch's ops, of a
 * stand-in record as large as the receipt can grow. Once the ops ran, the
 * receipts made take their stand-ins' place; the others are released
 * unused.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "store_mem_int.h"
#include "store_receipts.h"

/* A PUT of the batch: the id of its record and its index. */
struct put_at {
	uint64_t id;
	size_t i;
};

static int by_id(const void *a, const void *b)
{
	const struct put_at *x = a, *y = b;

	if (x->id != y->id) {
		return x->id < y->id ? -1 : 1;
	}
	return x->i < y->i ? -1 : x->i > y->i;
}

/* The batch's PUTs that may store a record, by record id; 0 or VT_ENOMEM. */
static int puts_by_id(const struct vt_op *ops, size_t n, struct put_at **out, size_t *nout)
{
	*nout = 0;
	*out = calloc(n ? n : 1, sizeof(**out));
	if (*out == NULL) {
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == VT_OP_PUT && vt__mem_put_valid(&ops[i])) {
			(*out)[(*nout)++] = (struct put_at){ops[i].rec->id, i};
		}
	}
	qsort(*out, *nout, sizeof(**out), by_id);
	return 0;
}

/* The first of @v (@nv, sorted) with record id @id or above. */
static size_t first_of(const struct put_at *v, size_t nv, uint64_t id)
{
	size_t lo = 0, hi = nv;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].id < id) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

/* Expect every record ACK op @i may remove; 0 or VT_ENOMEM. */
static int expect_ack(struct mem *m, struct vt__rcpts *rs, const struct vt_op *ops, size_t i,
		      const struct put_at *pv, size_t npv)
{
	const struct vt_op *op = &ops[i];
	const struct mrec *r = vt__mem_rec_find(m, op->id);
	int rc = r != NULL ? vt__rcpts_expect(rs, op, &r->r) : 0;

	for (size_t k = first_of(pv, npv, op->id); k < npv && pv[k].id == op->id; k++) {
		if (pv[k].i < i && rc == 0) {
			rc = vt__rcpts_expect(rs, op, ops[pv[k].i].rec);
		}
	}
	return rc;
}

static int wants_receipt(const struct vt_op *op)
{
	return op->kind == VT_OP_ACK && op->receipt_id != 0;
}

/*
 * A PUT per receipt set aside, of a stand-in as large as the receipt can
 * grow: its from and to, and a body of blanks as long as its room. Prepare
 * looks at sizes and recipients only, so any id will do.
 */
static int standins(struct mem_rcpts *mr)
{
	size_t nall = mr->rs.nall, room = 1;

	if (nall == 0) {
		return 0;
	}
	for (size_t k = 0; k < nall; k++) {
		room = mr->rs.all[k]->room > room ? mr->rs.all[k]->room : room;
	}
	mr->puts = calloc(nall, sizeof(*mr->puts));
	mr->standins = calloc(nall, sizeof(*mr->standins));
	mr->blanks = malloc(room);
	if (mr->puts == NULL || mr->standins == NULL || mr->blanks == NULL) {
		return VT_ENOMEM;
	}
	memset(mr->blanks, ' ', room);
	for (size_t k = 0; k < nall; k++) {
		const struct vt__rcpt *r = mr->rs.all[k];

		mr->standins[k] = r->rec;
		mr->standins[k].id = UINT64_MAX;
		mr->standins[k].body = mr->blanks;
		mr->standins[k].body_len = r->room;
		vt__rcpt_put_op(r, &mr->puts[k]);
		mr->puts[k].rec = &mr->standins[k];
	}
	return 0;
}

int vt__mem_rcpts_plan(struct mem *m, const struct vt_op *ops, size_t n, struct mem_rcpts *mr)
{
	struct put_at *pv = NULL;
	size_t npv = 0, i = 0;
	int rc;

	memset(mr, 0, sizeof(*mr));
	vt__rcpts_init(&mr->rs);
	while (i < n && !wants_receipt(&ops[i])) {
		i++;
	}
	if (i == n) {
		return 0; /* no ack asks for a receipt */
	}
	rc = puts_by_id(ops, n, &pv, &npv);
	for (; i < n && rc == 0; i++) {
		if (wants_receipt(&ops[i])) {
			rc = expect_ack(m, &mr->rs, ops, i, pv, npv);
		}
	}
	free(pv);
	if (rc == 0) {
		rc = vt__rcpts_reserve(&mr->rs, ops, n);
	}
	return rc == 0 ? standins(mr) : rc;
}

/* Receipt @r cannot be stored: its acks' receipts are left to the engine. */
static void disown(struct vt_op *ops, size_t n, const struct vt__rcpt *r)
{
	vt_log(VT_LOG_ERROR, "memory store: receipt id=%llu outgrew its room; left to the engine",
	       (unsigned long long)r->rec.id);
	for (size_t i = 0; i < n; i++) {
		if (ops[i].out_receipt_id == r->rec.id) {
			ops[i].out_receipt_id = 0;
		}
	}
}

void vt__mem_rcpts_store(struct mem *m, struct vt_op *ops, size_t n, struct mem_rcpts *mr,
			 struct prep *preps)
{
	vt__rcpts_fill(&mr->rs, ops, n);
	for (size_t i = 0; i < mr->rs.n; i++) {
		struct vt__rcpt *r = mr->rs.v[i];
		struct vt_op *put = &mr->puts[r->slot];
		struct prep *p = &preps[r->slot];

		/* cannot happen: each ref that came was expected */
		if (r->rec.body_len > mr->standins[r->slot].body_len) {
			disown(ops, n, r);
			continue;
		}
		if (p->rec != NULL) {
			vt__mem_rec_fill(p->rec, &r->rec);
		}
		put->rec = &r->rec;
		vt__mem_apply_op(m, put, p);
		if (put->status == 0) {
			vt__rcpt_report(ops, r, put);
		} else {
			vt_log(VT_LOG_ERROR, "memory store: receipt id=%llu to=%s not storable: %s",
			       (unsigned long long)r->rec.id, r->rec.to, vt_strerror(put->status));
		}
	}
}

void vt__mem_rcpts_free(struct mem_rcpts *mr)
{
	vt__rcpts_free(&mr->rs);
	free(mr->puts);
	free(mr->standins);
	free(mr->blanks);
	memset(mr, 0, sizeof(*mr));
	vt__rcpts_init(&mr->rs);
}
