/*
 * store_mem_revoke.c - logouts in the memory backend.
 *
 * One table from a scope's inbox key (user and device, VT_ALL_DEVICES for
 * all of them) to the second up to which its tokens are revoked, and one
 * from a user's key to the list of that user's single-device scopes: a
 * logout of every device forgets those it covers through the list, so it
 * costs what its user has, whatever the others have. Expiry, once a
 * minute, walks the whole table.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>

#include "store_key.h"
#include "store_mem_int.h"

/* A user with single-device scopes: the value of its user key in revusers. */
struct mrevuser {
	struct mrevoke *devs;
	size_t klen;
	uint8_t key[];
};

/*
 * Set aside a scope's entry, and its user's, even when they are in the
 * tables now: a logout of every device earlier in the batch may remove
 * them before this op runs.
 */
int vt__mem_prep_revoke(struct vt_op *op, struct prep *p)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen, uklen;

	if (!vt__revoke_valid(op, key, &klen)) {
		return 0; /* refused at apply */
	}
	uklen = 2 + strlen(op->inbox.user);
	p->rev = calloc(1, sizeof(*p->rev) + klen);
	p->revuser = calloc(1, sizeof(*p->revuser) + uklen);
	if (!p->rev || !p->revuser) {
		return VT_ENOMEM; /* prep_release frees what was had */
	}
	p->rev->klen = klen;
	memcpy(p->rev->key, key, klen);
	p->revuser->klen = uklen;
	memcpy(p->revuser->key, key, uklen);
	return 0;
}

/* Take @r out of both tables and free it; and its user's entry once empty. */
static void scope_drop(struct mem *m, struct mrevoke *r)
{
	struct mrevuser *u = r->owner;

	if (u != NULL) {
		if (r->prev) {
			r->prev->next = r->next;
		} else {
			u->devs = r->next;
		}
		if (r->next) {
			r->next->prev = r->prev;
		}
		if (!u->devs) {
			struct hslot *us = vt__mem_hm_find(&m->revusers, u->key, u->klen);

			vt__mem_hm_remove(&m->revusers, us);
			free(u);
		}
	}
	vt__mem_hm_remove(&m->revoked, vt__mem_hm_find(&m->revoked, r->key, r->klen));
	free(r);
}

/* Forget @user's single-device scopes revoked up to @ts, which @ts covers. */
static void forget_covered(struct mem *m, const uint8_t *uk, size_t uklen, int64_t ts)
{
	struct mrevuser *u = vt__mem_map_get(&m->revusers, uk, uklen);
	struct mrevoke *r = u ? u->devs : NULL, *next;

	for (; r; r = next) {
		next = r->next; /* the last one frees u too */
		if (r->ts <= ts) {
			scope_drop(m, r);
		}
	}
}

/* Link the new single-device scope @r into its user's list. */
static void scope_link(struct mem *m, struct mrevoke *r, struct prep *p)
{
	struct mrevuser *u = vt__mem_map_get(&m->revusers, p->revuser->key, p->revuser->klen);

	if (!u) {
		u = p->revuser;
		p->revuser = NULL;
		vt__mem_hm_insert(&m->revusers, u->key, u->klen, u);
	}
	r->owner = u;
	r->next = u->devs;
	if (u->devs) {
		u->devs->prev = r;
	}
	u->devs = r;
}

void vt__mem_apply_revoke(struct mem *m, struct vt_op *op, struct prep *p)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	struct mrevoke *r;
	size_t klen;

	if (!vt__revoke_valid(op, key, &klen)) {
		op->status = VT_EINVAL;
		return;
	}
	if (vt__revoke_all(&op->inbox)) {
		forget_covered(m, key, 2 + strlen(op->inbox.user), op->ts);
	}
	r = vt__mem_map_get(&m->revoked, key, klen);
	if (r) {
		r->ts = r->ts > op->ts ? r->ts : op->ts;
		return;
	}
	r = p->rev;
	p->rev = NULL;
	r->ts = op->ts;
	vt__mem_hm_insert(&m->revoked, r->key, r->klen, r);
	if (!vt__revoke_all(&op->inbox)) {
		scope_link(m, r, p);
	}
}

void vt__mem_revoked_expire(struct mem *m, int64_t before_ms)
{
	/* The first second whose scopes stay: a time in ms is not before it. */
	int64_t keep = before_ms / 1000 + (before_ms % 1000 > 0);
	size_t i = 0;

	while (i < m->revoked.cap) {
		struct mrevoke *r = m->revoked.slots[i].val;

		if (r && r->ts < keep) {
			/* a later entry may shift into slot i: look at it again */
			scope_drop(m, r);
			continue;
		}
		i++;
	}
}

int vt__mem_load_revoked(void *self,
			 void (*each)(void *arg, const struct vt_inbox *scope, int64_t ts),
			 void *arg)
{
	struct mem *m = self;
	char user[VT__INBOX_KEY_MAX], device[VT__INBOX_KEY_MAX];
	struct vt_inbox scope = {user, device};

	for (size_t i = 0; i < m->revoked.cap; i++) {
		const struct mrevoke *r = m->revoked.slots[i].val;

		if (r && vt__inbox_key_split(r->key, r->klen, user, device) == 0) {
			each(arg, &scope, r->ts);
		}
	}
	return 0;
}
