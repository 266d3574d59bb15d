/*
 * acking.c - acks taken and not committed yet, by (inbox, id).
 *
 * A listing from the start of an inbox shows what a client acked a moment
 * ago, since the ack waits in a batch until it commits; the connection must
 * not push it again. Under load the batches in flight hold many thousands of
 * ops and such listings come often, so asking the batches one op at a time
 * for every listed record grew with the square of the load. The engine keeps
 * an index of the ACK ops of its batches instead: one entry per (inbox, id)
 * with the number of ops that name it, added when an ACK op is taken and
 * dropped when its batch is freed.
 *
 * An ACK op whose entry could not be added (out of memory) is counted; while
 * any is pending, lookups scan the batches as before, so the answer is never
 * wrong, only slower.
 */
#include <string.h>

#include "engine_internal.h"

/* The id, the user and the device (map.h: vt_key_str). */
#define KEY_MAX (22 + 2 * (VT_ID_MAX + 12))

static void key_of(char *key, const char *user, const char *device, uint64_t id)
{
	size_t len = vt_key_u64(key, KEY_MAX, 0, id);

	len = vt_key_str(key, KEY_MAX, len, user);
	vt_key_str(key, KEY_MAX, len, device);
}

void vt__acking_add(struct vt_engine *e, struct vt_pend *p)
{
	char key[KEY_MAX];

	key_of(key, p->user, p->device, p->id);
	if (vt_map_incr(&e->acking, key) == 0) {
		p->indexed = 1;
	} else {
		e->acking_unindexed++;
	}
}

void vt__acking_drop(struct vt_engine *e, const struct vt_pend *p)
{
	char key[KEY_MAX];

	if (p->kind != VT_PEND_ACK) {
		return;
	}
	if (!p->indexed) {
		e->acking_unindexed--;
		return;
	}
	key_of(key, p->user, p->device, p->id);
	vt_map_decr(&e->acking, key);
}

/* The slow way: every op of every batch not completed. */
static int scan_batches(const struct vt_engine *e, const struct vt_inbox *in, uint64_t id)
{
	for (uint32_t k = 0; k <= e->nflight; k++) {
		uint32_t slot = (e->flight_head + k) % VT_COMMITS_MAX;
		const struct vt_batch *b = k < e->nflight ? &e->flight[slot] : &e->cur;

		for (size_t i = 0; i < b->len; i++) {
			const struct vt_pend *p = &b->pend[i];

			if (p->kind == VT_PEND_ACK && p->id == id &&
			    strcmp(p->user, in->user) == 0 && strcmp(p->device, in->device) == 0) {
				return 1;
			}
		}
	}
	return 0;
}

int vt__batch_acking(const struct vt_engine *e, const struct vt_inbox *in, uint64_t id)
{
	char key[KEY_MAX];

	if (e->acking_unindexed > 0) {
		return scan_batches(e, in, id);
	}
	key_of(key, in->user, in->device, id);
	return vt_map_get(&e->acking, key) != NULL;
}
