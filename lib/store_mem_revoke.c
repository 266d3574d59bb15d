/*
 * store_mem_revoke.c - logouts in the memory backend.
 *
 * One table from a scope's inbox key (user and device, VT_ALL_DEVICES for
 * all of them) to the second up to which its tokens are revoked. A logout
 * of every device, and expiry, walk the whole table: logouts are rare, and
 * this backend serves tests and embedding, not a large user base.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>

#include "store_key.h"
#include "store_mem_int.h"

int vt__mem_prep_revoke(struct vt_op *op, struct prep *p)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen;

	/* Set aside even for a scope in the table now: a logout of every
	 * device earlier in the batch may remove it before this op runs. */
	if (!vt__revoke_valid(op, key, &klen)) {
		return 0; /* refused at apply */
	}
	p->rev = malloc(sizeof(*p->rev) + klen);
	if (!p->rev) {
		return VT_ENOMEM;
	}
	p->rev->klen = klen;
	memcpy(p->rev->key, key, klen);
	return 0;
}

/* Remove every entry for which @drop(entry, @arg) is nonzero. */
static void revoked_filter(struct mem *m, int (*drop)(const struct mrevoke *, const void *),
			   const void *arg)
{
	size_t i = 0;

	while (i < m->revoked.cap) {
		struct mrevoke *r = m->revoked.slots[i].val;

		if (r && drop(r, arg)) {
			/* a later entry may shift into slot i: look at it again */
			vt__mem_hm_remove(&m->revoked, &m->revoked.slots[i]);
			free(r);
			continue;
		}
		i++;
	}
}

struct covered {
	const uint8_t *uk;
	size_t uklen;
	int64_t ts;
};

static int drop_covered(const struct mrevoke *r, const void *arg)
{
	const struct covered *c = arg;

	return r->ts <= c->ts && vt__revoke_covers(r->key, r->klen, c->uk, c->uklen);
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
		struct covered c = {key, 2 + strlen(op->inbox.user), op->ts};

		revoked_filter(m, drop_covered, &c);
	}
	r = vt__mem_map_get(&m->revoked, key, klen);
	if (!r) {
		r = p->rev;
		p->rev = NULL;
		r->ts = op->ts;
		vt__mem_hm_insert(&m->revoked, r->key, r->klen, r);
	} else if (r->ts < op->ts) {
		r->ts = op->ts;
	}
}

static int drop_old(const struct mrevoke *r, const void *arg)
{
	int64_t keep = *(const int64_t *)arg;

	return r->ts < keep;
}

void vt__mem_revoked_expire(struct mem *m, int64_t before_ms)
{
	/* The first second whose scopes stay: a time in ms is not before it. */
	int64_t keep = before_ms / 1000 + (before_ms % 1000 > 0);

	revoked_filter(m, drop_old, &keep);
}

int vt__mem_load_revoked(void *self,
			 void (*each)(void *arg, const struct vt_inbox *scope, int64_t ts),
			 void *arg)
{
	struct mem *m = self;
	char user[VT__INBOX_KEY_MAX], device[VT__INBOX_KEY_MAX];

	for (size_t i = 0; i < m->revoked.cap; i++) {
		const struct mrevoke *r = m->revoked.slots[i].val;
		struct vt_inbox scope = {user, device};
		size_t ul, dl;

		if (!r || vt__inbox_key_parse(r->key, r->klen, &ul, &dl) != 0) {
			continue;
		}
		memcpy(user, r->key + 2, ul);
		user[ul] = 0;
		memcpy(device, r->key + 4 + ul, dl);
		device[dl] = 0;
		each(arg, &scope, r->ts);
	}
	return 0;
}
