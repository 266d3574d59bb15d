/*
 * receipts.c - "delivered" receipts, gathered over one loop turn.
 *
 * An ack that ends a delivery of a message owes the sender a receipt. A
 * stored ack has storage make it, in the ack's own commit (VT_OP_ACK in
 * vartalap/storage.h), coalesced there the same way. The engine makes it
 * here when an ack ends a message held in memory in mode "offline"
 * (vt__ack_ids in route.c); when a stored ack commits without one, the
 * receipt being one mode "offline" would hold, or the storage making none
 * (complete_ack in batch.c). One ack envelope names up to VT_ACK_MAX ids,
 * so a turn often has many for the same pair of users.
 *
 * Here each (acking user, acking device, sender) gathers its refs into one
 * receipt of up to VT_RECEIPT_REFS_MAX refs, in the order the acks ended:
 * the order they were taken, but that a held ack ends as it is taken and a
 * stored one when its batch commits. vt_engine_flush() puts every gathered
 * receipt into the batch it is about to hand to storage: the batch each ref
 * would have joined as a receipt of its own. vt_engine_flush() is the only
 * way a batch reaches storage, and shutdown flushes too (vt_engine_idle()
 * stays 0 while a receipt is gathered), so nothing gathered is passed by.
 * In mode "offline" a receipt for a sender whose devices all keep up is
 * held in memory instead, riding on that batch (hold.c).
 *
 * The set is bounded by the acks that end in one turn, each adding one ref:
 * the acks of the batches storage answered (each batch holds what one turn
 * took) and the held acks of the turn's ack envelopes. The flush empties it.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"
#include "store_receipts.h"

/* Room for the first refs of a receipt: most bursts are short. */
#define REFS_FIRST 4

/* A receipt's key: the lengths of user and device, so no id can fake another. */
#define KEY_MAX (3 * (VT_ID_MAX + 12))

struct vt_ref {
	uint64_t id;
	char cid[VT_ID_MAX + 1];
};

struct vt_receipt {
	struct vt_receipt *next;    /* the next gathered, in order */
	char user[VT_ID_MAX + 1];   /* who acked */
	char device[VT_ID_MAX + 1]; /* with which device */
	char sender[VT_ID_MAX + 1]; /* who hears of it */
	char key[KEY_MAX];          /* the three together: its key in open */
	struct vt_ref *refs;        /* in the order the acks were taken */
	uint32_t nrefs, cap;
};

void vt_receipts_init(struct vt_receipts *rs)
{
	vt_map_init(&rs->open);
	rs->head = NULL;
	rs->tail = NULL;
}

static void receipt_free(struct vt_receipt *r)
{
	free(r->refs);
	free(r);
}

void vt_receipts_free(struct vt_receipts *rs)
{
	while (rs->head != NULL) {
		struct vt_receipt *r = rs->head;

		rs->head = r->next;
		receipt_free(r);
	}
	rs->tail = NULL;
	vt_map_free(&rs->open);
}

int vt_receipts_pending(const struct vt_receipts *rs)
{
	return rs->head != NULL;
}

static void make_key(char *key, const char *user, const char *device, const char *sender)
{
	size_t len = vt_key_str(key, KEY_MAX, 0, user);

	len = vt_key_str(key, KEY_MAX, len, device);
	vt_key_str(key, KEY_MAX, len, sender);
}

/* A new receipt, last in the list and the one taking refs for its key. */
static struct vt_receipt *receipt_new(struct vt_receipts *rs, const struct vt_identity *by,
				      const char *sender)
{
	struct vt_receipt *r = malloc(sizeof(*r));

	if (r == NULL) {
		return NULL;
	}
	r->next = NULL;
	vt__copy(r->user, sizeof(r->user), by->user);
	vt__copy(r->device, sizeof(r->device), by->device);
	vt__copy(r->sender, sizeof(r->sender), sender);
	make_key(r->key, r->user, r->device, r->sender);
	r->refs = malloc(REFS_FIRST * sizeof(*r->refs));
	r->nrefs = 0;
	r->cap = REFS_FIRST;
	if (r->refs == NULL || vt_map_put(&rs->open, r->key, r) != 0) {
		receipt_free(r);
		return NULL;
	}

	if (rs->tail != NULL) {
		rs->tail->next = r;
	} else {
		rs->head = r;
	}
	rs->tail = r;
	return r;
}

/* The receipt taking refs for (@by, @sender): a new one if there is none or it is full. */
static struct vt_receipt *receipt_for(struct vt_receipts *rs, const struct vt_identity *by,
				      const char *sender)
{
	char key[KEY_MAX];
	struct vt_receipt *r;

	make_key(key, by->user, by->device, sender);
	r = vt_map_get(&rs->open, key);
	if (r != NULL && r->nrefs < VT_RECEIPT_REFS_MAX) {
		return r;
	}
	return receipt_new(rs, by, sender);
}

static int add_ref(struct vt_receipt *r, uint64_t id, const char *cid)
{
	if (r->nrefs == r->cap) {
		uint32_t ncap = r->cap * 4 < VT_RECEIPT_REFS_MAX ? r->cap * 4 : VT_RECEIPT_REFS_MAX;
		struct vt_ref *refs = realloc(r->refs, ncap * sizeof(*refs));

		if (refs == NULL) {
			return VT_ENOMEM;
		}
		r->refs = refs;
		r->cap = ncap;
	}
	r->refs[r->nrefs].id = id;
	vt__copy(r->refs[r->nrefs].cid, sizeof(r->refs[0].cid), cid);
	r->nrefs++;
	return 0;
}

void vt__take_delivered(struct vt_engine *e, const struct vt_identity *by, const char *sender,
			uint64_t id, const char *cid)
{
	struct vt_receipt *r;

	/* A copy of one's own message, acked by another device, is no news. */
	if (strcmp(sender, by->user) == 0) {
		return;
	}
	r = receipt_for(&e->receipts, by, sender);
	if (r == NULL || add_ref(r, id, cid) != 0) {
		vt_log(VT_LOG_ERROR, "receipt dropped: out of memory to=%s ref=%llu", sender,
		       (unsigned long long)id);
		return;
	}
	vt__want_flush(e);
}

/* {"device":"phone","refs":[{"ref":"42","cid":"c-1"},...]}, as storage makes it too */
static void encode_body(struct vt_buf *b, const struct vt_receipt *r)
{
	vt__rcpt_body_open(b, r->device);
	for (uint32_t i = 0; i < r->nrefs; i++) {
		vt__rcpt_body_ref(b, i == 0, r->refs[i].id, r->refs[i].cid);
	}
	vt__rcpt_body_close(b);
}

/*
 * Store @r for its sender and push it once committed, like any receipt; or,
 * in mode "offline", hold it for a sender whose devices all keep up.
 */
static void put_receipt(struct vt_engine *e, const struct vt_receipt *r)
{
	struct vt_msg *m = NULL;
	struct vt_pend *p = NULL;

	vt_buf_reset(&e->out);
	encode_body(&e->out, r);
	if (!vt_buf_failed(&e->out)) {
		m = vt_msg_new(VT_KIND_DELIVERED, r->user, r->sender, "", vt__wall(e), e->out.data,
			       e->out.len);
	}
	if (m != NULL) {
		m->rec.id = vt__new_id(e);
		if (vt__hold_receipt(e, m)) {
			vt_msg_unref(m);
			return;
		}
		p = vt__batch_put(e, VT_PEND_STORE, m);
		vt_msg_unref(m);
	}
	if (p == NULL) {
		vt_log(VT_LOG_ERROR, "receipt dropped: out of memory to=%s refs=%u", r->sender,
		       r->nrefs);
		return;
	}
	p->nusers = 1; /* no list: the receipt's own "to" */
}

void vt__receipts_emit(struct vt_engine *e)
{
	struct vt_receipts *rs = &e->receipts;

	while (rs->head != NULL) {
		struct vt_receipt *r = rs->head;

		rs->head = r->next;
		/* Its key may name a later receipt of the same three (this one
		 * filled up): that one finds the key gone, as all end so. */
		vt_map_del(&rs->open, r->key);
		put_receipt(e, r);
		receipt_free(r);
	}
	rs->tail = NULL;
}
