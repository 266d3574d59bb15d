/*
 * receipts.h - "delivered" receipts, gathered over one loop turn.
 *
 * Internal. A device that acks a message owes its sender a receipt, and a
 * receipt costs storage as much as the message it reports. Clients ack in
 * bursts, so the receipts taken between two flushes that share the acking
 * device and the sender become one event listing their refs; the flush puts
 * them into the batch it commits (see receipts.c). The members of a group
 * ack a post over tens of milliseconds, so theirs gather for one sender for
 * up to VT_RECEIPT_GATHER_MS into one event listing the refs and who acked
 * each.
 */
#ifndef VARTALAP_RECEIPTS_H
#define VARTALAP_RECEIPTS_H

#include <stdint.h>

#include <vartalap/storage.h>
#include <vartalap/token.h>

#include "map.h"

struct vt_engine;
struct vt_receipt;

/*
 * A receipt of a group's members lists at most VT_RECEIPT_REFS_MAX refs, and
 * takes no more acks once its body reaches VT_RECEIPT_BODY_SOFT bytes: it
 * ends below 16.2 KiB when no id needs escaping in JSON, as none that a
 * token can carry does.
 */
#define VT_RECEIPT_BODY_SOFT 16384

/* How long a receipt of a group's members gathers acks, from its first one. */
#define VT_RECEIPT_GATHER_MS 50

/* The receipts taken since the last flush. */
struct vt_receipts {
	struct vt_map open;             /* (acker, device, sender) or (group, sender) ->
					   the one taking refs */
	struct vt_receipt *head, *tail; /* every one, in the order of its first ref */
	uint64_t first_due;             /* the earliest due of a group's; UINT64_MAX: none */
};

void vt_receipts_init(struct vt_receipts *r);

/* Free what is still gathered: nothing of it is sent. */
void vt_receipts_free(struct vt_receipts *r);

/* Nonzero when a receipt waits for the next flush. */
int vt_receipts_pending(const struct vt_receipts *r);

/* What vt__take_delivered does besides gathering the ref. */
enum {
	/* A group post's copy, journaled: its entry is released in the batch
	 * the receipt is put in, not before (journal.c). */
	VT_DELIVERED_RELEASE = 1 << 0,
	/* The receipt goes out at the next flush, gathered or not. */
	VT_DELIVERED_NOW = 1 << 1,
};

/*
 * @by acked message @id with client id @cid, from @sender: add the ref to
 * the receipt gathered for (@by's user and device, @sender), or, when
 * @group is not NULL (a post to that group), to the one gathered for
 * (@group, @sender); then ask for a flush. Nothing for one's own copies.
 * Out of memory drops this ref alone, logged. @flags: VT_DELIVERED_*; a
 * release that cannot wait for the receipt (no receipt is made) is queued
 * at once.
 */
void vt__take_delivered(struct vt_engine *e, const struct vt_identity *by, const char *group,
			const char *sender, uint64_t id, const char *cid, unsigned flags);

/*
 * Put every gathered receipt into the current batch, in order, but a group's
 * that is neither full nor due (and the engine is not shutting down): that
 * one gathers on. Called by the flush.
 */
void vt__receipts_emit(struct vt_engine *e);

/* When the first gathering receipt of a group is due (mono ms), or UINT64_MAX. */
uint64_t vt__receipts_next_due(const struct vt_receipts *rs);

#endif /* VARTALAP_RECEIPTS_H */
