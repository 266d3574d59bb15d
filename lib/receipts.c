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
 * stored one when its batch commits. A post to a group is acked by every
 * member's devices at about the same time, so the acks of held group copies
 * gather per (group, sender) instead: one receipt of up to
 * VT_RECEIPT_REFS_MAX refs and VT_RECEIPT_BODY_SOFT bytes, listing under each
 * ref the devices that acked it. Without that a post to 1,000 members sent
 * its sender 1,000 receipts. Members ack over tens of milliseconds, mostly
 * in loop turns of their own, so such a receipt gathers across flushes for
 * VT_RECEIPT_GATHER_MS from its first ack (the engine's timers wake a flush
 * for it), unless it fills first. It only reports held copies, whose acks
 * commit nothing of their own: in mode "offline" nothing at all, in mode
 * "always" the release of their journal entries, which waits to join the
 * receipt's batch (release_ackers; journal.c).
 * vt_engine_flush() puts every other gathered
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

/*
 * A receipt's key: its form, then user (or group), device and sender, each
 * with its length, so no id can fake another.
 */
#define KEY_MAX (4 * (VT_TO_MAX + 12))

/* What a ref and an acker add to a group's body, besides their strings. */
#define REF_BYTES   (sizeof("{\"ref\":\"18446744073709551615\",\"cid\":\"\",\"by\":[]},") - 1)
#define ACKER_BYTES (sizeof("{\"user\":\"\",\"device\":\"\"},") - 1)

/*
 * The most acking devices the byte limit lets in: one-byte users, no device
 * names. A bound for the arrays, checked too; the byte limit comes first.
 */
#define ACKERS_MAX (VT_RECEIPT_BODY_SOFT / (ACKER_BYTES + 1) + 1)

struct vt_ref {
	uint64_t id;
	char cid[VT_ID_MAX + 1];
};

/*
 * One device that acked a ref of a group's receipt. Its names are in the
 * receipt's names, user and device each ending in a NUL: a receipt takes
 * hundreds of ackers, and short names in arrays sized for the longest
 * would be most of what it copies as it grows.
 */
struct vt_acker {
	uint32_t ref;    /* its index in refs */
	uint32_t at;     /* where its user starts in names; its device follows */
	uint8_t release; /* its copy's journal entry goes with the receipt */
	uint8_t user_len, device_len;
};

/* Most bytes an acker adds to names. */
#define ACKER_NAMES_MAX (2 * (VT_ID_MAX + 1))

_Static_assert(VT_ID_MAX <= UINT8_MAX, "an acker's lengths fit a byte");

struct vt_receipt {
	struct vt_receipt *next;    /* the next gathered, in order */
	char user[VT_TO_MAX + 1];   /* who acked; in a group's receipt, the group */
	char device[VT_ID_MAX + 1]; /* with which device; "" in a group's receipt */
	char sender[VT_ID_MAX + 1]; /* who hears of it */
	char key[KEY_MAX];          /* the three together: its key in open */
	/* A device's receipt: in the order the acks were taken. A group's:
	 * each ref once, in the order of its first ack. */
	struct vt_ref *refs;
	uint32_t nrefs, cap;
	/* A group's receipt: every acking device, in ack order; else NULL. */
	struct vt_acker *by;
	uint32_t nby, bycap;
	char *names; /* the ackers' user and device names */
	uint32_t names_len, names_cap;
	size_t bytes; /* a group's receipt: its body's length, without escapes */
	uint64_t due; /* a group's receipt: when it goes out, full or not (mono ms) */
};

void vt_receipts_init(struct vt_receipts *rs)
{
	vt_map_init(&rs->open);
	rs->head = NULL;
	rs->tail = NULL;
	rs->first_due = UINT64_MAX;
}

static void receipt_free(struct vt_receipt *r)
{
	free(r->refs);
	free(r->by);
	free(r->names);
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

/* A device's receipt is (user, device, sender); a group's is (group, sender). */
static void make_key(char *key, const char *user, const char *device, const char *sender,
		     int group)
{
	size_t len = vt_key_str(key, KEY_MAX, 0, group ? "g" : "d");

	len = vt_key_str(key, KEY_MAX, len, user);
	len = vt_key_str(key, KEY_MAX, len, device);
	vt_key_str(key, KEY_MAX, len, sender);
}

/* Put @r last in the list. */
static void append(struct vt_receipts *rs, struct vt_receipt *r)
{
	r->next = NULL;
	if (rs->tail != NULL) {
		rs->tail->next = r;
	} else {
		rs->head = r;
	}
	rs->tail = r;
}

/*
 * A new receipt, last in the list and the one taking refs for its key:
 * from @by's device, or, when @group is not NULL, from the members of
 * @group, gathering until VT_RECEIPT_GATHER_MS from now (the timers are
 * told when that is the first due).
 */
static struct vt_receipt *receipt_new(struct vt_engine *e, const struct vt_identity *by,
				      const char *group, const char *sender)
{
	struct vt_receipts *rs = &e->receipts;
	struct vt_receipt *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		return NULL;
	}
	vt__copy(r->user, sizeof(r->user), group != NULL ? group : by->user);
	vt__copy(r->device, sizeof(r->device), group != NULL ? "" : by->device);
	vt__copy(r->sender, sizeof(r->sender), sender);
	make_key(r->key, r->user, r->device, r->sender, group != NULL);
	r->refs = malloc(REFS_FIRST * sizeof(*r->refs));
	r->cap = REFS_FIRST;
	if (group != NULL) {
		r->by = malloc(REFS_FIRST * sizeof(*r->by));
		r->bycap = REFS_FIRST;
		r->names = malloc(REFS_FIRST * ACKER_NAMES_MAX);
		r->names_cap = REFS_FIRST * ACKER_NAMES_MAX;
	}
	if (r->refs == NULL || (group != NULL && (r->by == NULL || r->names == NULL)) ||
	    vt_map_put(&rs->open, r->key, r) != 0) {
		receipt_free(r);
		return NULL;
	}

	append(rs, r);
	if (group != NULL) {
		r->due = vt__now(e) + VT_RECEIPT_GATHER_MS;
		if (r->due < rs->first_due) {
			rs->first_due = r->due;
			vt__timers_changed(e);
		}
	}
	return r;
}

/* Is @r the receipt for this key? */
static int receipt_is(const struct vt_receipt *r, const struct vt_identity *by,
		      const char *group, const char *sender)
{
	if (strcmp(r->sender, sender) != 0 || (group != NULL) != (r->by != NULL)) {
		return 0;
	}
	if (group != NULL) {
		return strcmp(r->user, group) == 0;
	}
	return strcmp(r->user, by->user) == 0 && strcmp(r->device, by->device) == 0;
}

/*
 * Can @r take one more ack? A group's receipt also ends once its body
 * reaches VT_RECEIPT_BODY_SOFT bytes, so that one event stays a fraction of
 * what a client takes.
 */
static int receipt_full(const struct vt_receipt *r)
{
	return r->nrefs == VT_RECEIPT_REFS_MAX || r->bytes >= VT_RECEIPT_BODY_SOFT ||
	       r->nby == ACKERS_MAX;
}

/*
 * The receipt taking refs for its key: a new one if there is none or it is
 * full. Acks come in runs for one key (one device's ack envelope, a group's
 * members acking one post), so the newest one is tried first: it is the one
 * taking refs for its key, since a newer one for that key would be newest.
 */
static struct vt_receipt *receipt_for(struct vt_engine *e, const struct vt_identity *by,
				      const char *group, const char *sender)
{
	struct vt_receipts *rs = &e->receipts;
	char key[KEY_MAX];
	struct vt_receipt *r = rs->tail;

	if (r != NULL && !receipt_full(r) && receipt_is(r, by, group, sender)) {
		return r;
	}
	if (group != NULL) {
		make_key(key, group, "", sender, 1);
	} else {
		make_key(key, by->user, by->device, sender, 0);
	}
	r = vt_map_get(&rs->open, key);
	if (r != NULL && !receipt_full(r)) {
		return r;
	}
	return receipt_new(e, by, group, sender);
}

/*
 * Array @v of *@cap elements of @size, with room for element @n: @v itself,
 * or grown 4 times (up to @max) and *@cap updated. NULL, @v untouched, when
 * out of memory or @n is not below @max.
 */
static void *room_for(void *v, uint32_t *cap, uint32_t n, size_t size, uint32_t max)
{
	uint32_t ncap = *cap * 4 < max ? *cap * 4 : max;

	if (n < *cap) {
		return v;
	}
	if (n >= max) {
		return NULL;
	}
	v = realloc(v, ncap * size);
	if (v != NULL) {
		*cap = ncap;
	}
	return v;
}

/* Append ref @id to @r; 0 or VT_ENOMEM. */
static int add_ref(struct vt_receipt *r, uint64_t id, const char *cid)
{
	struct vt_ref *refs = room_for(r->refs, &r->cap, r->nrefs, sizeof(*refs),
				       VT_RECEIPT_REFS_MAX);

	if (refs == NULL) {
		return VT_ENOMEM;
	}
	r->refs = refs;
	r->refs[r->nrefs].id = id;
	r->bytes += REF_BYTES + vt__copy(r->refs[r->nrefs].cid, sizeof(r->refs[0].cid), cid);
	r->nrefs++;
	return 0;
}

/*
 * Add @by's ack of @id to group receipt @r: under the ref if @r has it (a
 * short look back: the acks of a turn name few posts), else a new ref.
 */
static int add_acker(struct vt_receipt *r, const struct vt_identity *by, uint64_t id,
		     const char *cid, int release)
{
	uint32_t i = r->nrefs;
	struct vt_acker *a = room_for(r->by, &r->bycap, r->nby, sizeof(*a), ACKERS_MAX);
	char *names;

	if (a == NULL) {
		return VT_ENOMEM;
	}
	r->by = a;
	names = room_for(r->names, &r->names_cap, r->names_len + ACKER_NAMES_MAX - 1, 1,
			 ACKERS_MAX * ACKER_NAMES_MAX);
	if (names == NULL) {
		return VT_ENOMEM;
	}
	r->names = names;
	while (i > 0 && r->refs[i - 1].id != id) {
		i--;
	}
	if (i == 0 && add_ref(r, id, cid) != 0) {
		return VT_ENOMEM;
	}

	a = &r->by[r->nby++];
	a->ref = i > 0 ? i - 1 : r->nrefs - 1;
	a->at = r->names_len;
	a->release = (uint8_t)release;
	a->user_len = (uint8_t)vt__copy(names + a->at, VT_ID_MAX + 1, by->user);
	a->device_len = (uint8_t)vt__copy(names + a->at + a->user_len + 1, VT_ID_MAX + 1,
					  by->device);
	r->names_len += a->user_len + a->device_len + 2u;
	r->bytes += ACKER_BYTES + a->user_len + a->device_len;
	return 0;
}

/* The user of acker @a of @r. */
static const char *acker_user(const struct vt_receipt *r, const struct vt_acker *a)
{
	return r->names + a->at;
}

/* The device of acker @a of @r. */
static const char *acker_device(const struct vt_receipt *r, const struct vt_acker *a)
{
	return r->names + a->at + a->user_len + 1;
}

void vt__take_delivered(struct vt_engine *e, const struct vt_identity *by, const char *group,
			const char *sender, uint64_t id, const char *cid, unsigned flags)
{
	int release = group != NULL && (flags & VT_DELIVERED_RELEASE);
	struct vt_receipt *r;

	/* A copy of one's own message, acked by another device, is no news. */
	if (strcmp(sender, by->user) == 0) {
		r = NULL;
	} else if ((r = receipt_for(e, by, group, sender)) == NULL ||
		   (group != NULL ? add_acker(r, by, id, cid, release) : add_ref(r, id, cid)) != 0) {
		vt_log(VT_LOG_ERROR, "receipt dropped: out of memory to=%s ref=%llu", sender,
		       (unsigned long long)id);
		r = NULL;
	}
	if (r == NULL) {
		if (flags & VT_DELIVERED_RELEASE) {
			vt__journal_release(e, id, by->user, by->device);
		}
		return;
	}

	/* A group's receipt that can take more waits for its due time. */
	if (flags & VT_DELIVERED_NOW) {
		r->due = 0;
	}
	if (group == NULL || r->due == 0 || receipt_full(r)) {
		vt__want_flush(e);
	}
}

/* {"device":"phone","refs":[{"ref":"42","cid":"c-1"},...]}, as storage makes it too */
static void encode_device_body(struct vt_buf *b, const struct vt_receipt *r)
{
	vt__rcpt_body_open(b, r->device);
	for (uint32_t i = 0; i < r->nrefs; i++) {
		vt__rcpt_body_ref(b, i == 0, r->refs[i].id, r->refs[i].cid);
	}
	vt__rcpt_body_close(b);
}

static void encode_acker(struct vt_buf *b, int first, const struct vt_receipt *r,
			 const struct vt_acker *a)
{
	vt_buf_puts(b, first ? "{\"user\":" : ",{\"user\":");
	vt_buf_json_str(b, acker_user(r, a), a->user_len);
	vt_buf_puts(b, ",\"device\":");
	vt_buf_json_str(b, acker_device(r, a), a->device_len);
	vt_buf_putc(b, '}');
}

/*
 * {"refs":[{"ref":"42","cid":"c-1","by":[{"user":"bob","device":"phone"},...]},...]}:
 * each ref once, in the order of its first ack, with every device that
 * acked it in the order they did. The ackers are put in ref order first
 * (counting them per ref), so the body is written in one pass.
 */
static void encode_group_body(struct vt_buf *b, const struct vt_receipt *r)
{
	uint32_t start[VT_RECEIPT_REFS_MAX + 1] = {0};
	uint16_t order[ACKERS_MAX];

	for (uint32_t j = 0; j < r->nby; j++) {
		start[r->by[j].ref + 1]++;
	}
	for (uint32_t i = 0; i < r->nrefs; i++) {
		start[i + 1] += start[i];
	}
	for (uint32_t j = 0; j < r->nby; j++) {
		order[start[r->by[j].ref]++] = (uint16_t)j;
	}

	/* Each start[i] now ends ref i's ackers in order. */
	vt_buf_puts(b, "{\"refs\":[");
	for (uint32_t i = 0, j = 0; i < r->nrefs; i++) {
		vt_buf_puts(b, i == 0 ? "{\"ref\":\"" : ",{\"ref\":\"");
		vt_buf_u64(b, r->refs[i].id);
		vt_buf_puts(b, "\",\"cid\":");
		vt_buf_json_str(b, r->refs[i].cid, strlen(r->refs[i].cid));
		vt_buf_puts(b, ",\"by\":[");
		for (uint32_t first = j; j < start[i]; j++) {
			encode_acker(b, j == first, r, &r->by[order[j]]);
		}
		vt_buf_puts(b, "]}");
	}
	vt_buf_puts(b, "]}");
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
	if (r->by != NULL) {
		encode_group_body(&e->out, r);
	} else {
		encode_device_body(&e->out, r);
	}
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

/*
 * The journal entries of the held group copies whose acks @r reports: their
 * releases join the batch that @r was just put in, so a crash never keeps
 * a release and loses its receipt. Released as well when @r was dropped:
 * the acks were taken.
 */
static void release_ackers(struct vt_engine *e, const struct vt_receipt *r)
{
	for (uint32_t j = 0; j < r->nby; j++) {
		const struct vt_acker *a = &r->by[j];

		if (a->release) {
			vt__journal_release(e, r->refs[a->ref].id, acker_user(r, a),
					    acker_device(r, a));
		}
	}
}

/* Append @r to the list again: it gathers on. */
static void keep(struct vt_receipts *rs, struct vt_receipt *r)
{
	append(rs, r);
	if (r->due < rs->first_due) {
		rs->first_due = r->due;
	}
}

void vt__receipts_emit(struct vt_engine *e)
{
	struct vt_receipts *rs = &e->receipts;
	struct vt_receipt *r = rs->head;
	uint64_t now = vt__now(e);

	rs->head = NULL;
	rs->tail = NULL;
	rs->first_due = UINT64_MAX;
	while (r != NULL) {
		struct vt_receipt *next = r->next;

		if (r->by != NULL && r->due > now && !receipt_full(r) && !e->shutting_down) {
			keep(rs, r);
		} else {
			/* Its key may name a later receipt of the same three (this
			 * one filled up), which goes on taking refs. */
			if (vt_map_get(&rs->open, r->key) == r) {
				vt_map_del(&rs->open, r->key);
			}
			put_receipt(e, r);
			release_ackers(e, r);
			receipt_free(r);
		}
		r = next;
	}
}

uint64_t vt__receipts_next_due(const struct vt_receipts *rs)
{
	return rs->first_due;
}
