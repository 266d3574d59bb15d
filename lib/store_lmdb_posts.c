/*
 * store_lmdb_posts.c - the journal of events held for several devices.
 *
 * A group post held in mode "always" is one event held for every member's
 * device. With an entry a copy (store_lmdb_journal.c) its PUT wrote as many
 * entries as devices, each holding the record, and the releases of its
 * copies deleted as many again: two B-tree writes per delivery, a third of
 * the server's time in a fan-out. A PUT that holds copies for more than
 * one device writes two entries instead: the record once, in the tree
 * "journal" under its bare id (8 bytes, where an entry a copy's key also
 * has an inbox key), and in the tree "journal_posts" under the same id the
 * inbox keys of the devices whose copies are not released yet. The
 * releases of a batch come grouped by id; those of one id take their keys
 * out of its entry in one pass, which is then written back once, or
 * deleted with the record once no key is left. Replay makes the record's
 * deliveries to the devices left.
 *
 * The record apart, a rewrite copies only the keys, and the room a full
 * store keeps for replay (store_lmdb_space.c) counts the record as an
 * entry a copy's, once, and the keys by the deliveries they make.
 *
 * Value in "journal_posts": the inbox keys (store_key.h), one after
 * another, each once.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "store_key.h"
#include "store_lmdb_int.h"

/* An entry of the tree, read. */
struct post {
	const uint8_t *iks; /* the inbox keys left, one after another */
	size_t iks_len;
};

/* Scratch of at least @n bytes, kept for the next use; NULL when out of memory. */
static uint8_t *scratch(struct lmdb *s, size_t n)
{
	if (vt__lmdb_grow((void **)&s->post_scratch, &s->post_scratch_cap, n, 1) != 0) {
		return NULL;
	}
	return s->post_scratch;
}

void vt__lmdb_posts_free(struct lmdb *s)
{
	free(s->post_scratch);
	free(s->post_set);
	s->post_scratch = NULL;
	s->post_scratch_cap = 0;
	s->post_set = NULL;
	s->post_set_cap = 0;
}

int vt__lmdb_posts_put(struct lmdb *s, MDB_txn *txn, const struct vt_op *op)
{
	size_t len = 0;
	uint8_t idk[8], *iks;
	MDB_val k = val(idk, sizeof(idk)), v;
	int rc;

	/* The keys first, into scratch of their size: the value's must be known to reserve it. */
	for (uint32_t i = 0; i < op->nheld_to; i++) {
		const struct vt_inbox *in = &op->held_to[i];

		len += strlen(in->user) + strlen(vt__inbox_device(in)) + 4;
	}
	iks = scratch(s, len);
	if (iks == NULL) {
		return VT_ENOMEM;
	}
	len = 0;
	for (uint32_t i = 0; i < op->nheld_to; i++) {
		size_t n = vt__inbox_key(&op->held_to[i], iks + len);

		if (n == 0) {
			return VT_EINVAL; /* vt__journal_valid let it through */
		}
		len += n;
	}

	vt__put_be64(idk, op->rec->id);
	v = val(NULL, vt__lmdb_rec_size(op->rec));
	rc = vt__lmdb_put_last(txn, s->journal, &k, &v, MDB_RESERVE);
	if (rc == 0) {
		vt__lmdb_rec_encode(op->rec, v.mv_data);
		v = val(iks, len);
		rc = vt__lmdb_put_last(txn, s->posts, &k, &v, 0);
	}
	return rc;
}

/* The length of the inbox key at @k, of the @left bytes there; 0 when it is cut short. */
static size_t ik_len(const uint8_t *k, size_t left)
{
	size_t ul, dl;

	if (left < 4) {
		return 0;
	}
	ul = (size_t)k[0] << 8 | k[1];
	if (ul + 4 > left) {
		return 0;
	}
	dl = (size_t)k[2 + ul] << 8 | k[3 + ul];
	return ul + dl + 4 <= left ? ul + dl + 4 : 0;
}

/* The entry of @id into @p: 0, MDB_NOTFOUND or an LMDB error. */
static int post_get(struct lmdb *s, MDB_txn *txn, uint64_t id, struct post *p)
{
	uint8_t idk[8];
	MDB_val k = val(idk, sizeof(idk)), v;
	int rc;

	vt__put_be64(idk, id);
	rc = mdb_get(txn, s->posts, &k, &v);
	if (rc == 0) {
		p->iks = v.mv_data;
		p->iks_len = v.mv_size;
	}
	return rc;
}

/* Delete the entry of @id and its record. */
static int post_del(struct lmdb *s, MDB_txn *txn, uint64_t id)
{
	uint8_t idk[8];
	MDB_val k = val(idk, sizeof(idk));
	int rc;

	vt__put_be64(idk, id);
	rc = mdb_del(txn, s->posts, &k, NULL);
	return rc == 0 ? vt__lmdb_del_quiet(txn, s->journal, idk, sizeof(idk)) : rc;
}

/*
 * The released keys of one event, by hash: an entry lists a thousand
 * devices, and a post's releases come in a few dozen batches, each of
 * which looks up every key of the entry. The hash is seeded with the pair
 * index's random key, since device names are the clients'; a chain they
 * made collide anyway would cost at most a batch's releases of one event
 * a key, not more.
 */
struct ik_set {
	struct vt__ik_slot {
		uint64_t hash;
		const struct vt__jkey *key; /* NULL: a free slot */
	} *slots;
	size_t mask;
};

static uint64_t ik_hash(const struct lmdb *s, const uint8_t *ik, size_t len)
{
	const uint64_t mul = 0x9e3779b97f4a7c15ull;
	uint64_t h = s->pairs.key[0] ^ len, w;

	for (; len >= 8; ik += 8, len -= 8) {
		memcpy(&w, ik, 8);
		h = (h ^ w) * mul;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, ik, len);
	h = (h ^ w ^ s->pairs.key[1]) * mul;
	return h ^ h >> 29;
}

/* @set of the @n keys at @keys, in scratch of @s; 0 or VT_ENOMEM. */
static int set_make(struct lmdb *s, struct ik_set *set, const struct vt__jkey *keys, size_t n)
{
	size_t cap = 4;

	while (cap < 2 * n) {
		cap *= 2;
	}
	if (vt__lmdb_grow((void **)&s->post_set, &s->post_set_cap, cap, sizeof(*set->slots)) != 0) {
		return VT_ENOMEM;
	}
	set->slots = s->post_set;
	set->mask = cap - 1;
	memset(set->slots, 0, cap * sizeof(*set->slots));
	for (size_t i = 0; i < n; i++) {
		uint64_t h = ik_hash(s, keys[i].key + 8, keys[i].len - 8);
		size_t at = h & set->mask;

		while (set->slots[at].key != NULL) {
			at = (at + 1) & set->mask;
		}
		set->slots[at] = (struct vt__ik_slot){h, &keys[i]};
	}
	return 0;
}

/* Whether inbox key @ik (@len bytes) is in @set. */
static int set_has(const struct lmdb *s, const struct ik_set *set, const uint8_t *ik, size_t len)
{
	uint64_t h = ik_hash(s, ik, len);

	for (size_t at = h & set->mask; set->slots[at].key != NULL; at = (at + 1) & set->mask) {
		const struct vt__jkey *k = set->slots[at].key;

		if (set->slots[at].hash == h && k->len - 8 == len &&
		    memcmp(k->key + 8, ik, len) == 0) {
			return 1;
		}
	}
	return 0;
}

/*
 * Write back the entry of @id, @p less the keys among @keys; delete it and
 * its record when none is left. The new value is made in scratch first:
 * @p points into the map's page, which the write may move.
 */
static int post_rewrite(struct lmdb *s, MDB_txn *txn, uint64_t id, const struct post *p,
			const struct vt__jkey *keys, size_t n)
{
	size_t len = 0, kept = 0, gone = 0;
	uint8_t idk[8], *out = scratch(s, p->iks_len);
	MDB_val k = val(idk, sizeof(idk)), v;
	struct ik_set set;

	if (out == NULL || set_make(s, &set, keys, n) != 0) {
		return VT_ENOMEM;
	}
	for (size_t at = 0, l; at < p->iks_len; at += l) {
		l = ik_len(p->iks + at, p->iks_len - at);
		if (l == 0) {
			break; /* cut short: what follows cannot be read, now or at replay */
		}
		if (set_has(s, &set, p->iks + at, l)) {
			gone++;
			continue;
		}
		memcpy(out + len, p->iks + at, l);
		len += l;
		kept++;
	}

	if (kept == 0) {
		return post_del(s, txn, id);
	}
	if (gone == 0) {
		return 0;
	}
	vt__put_be64(idk, id);
	v = val(out, len);
	return mdb_put(txn, s->posts, &k, &v, 0);
}

int vt__lmdb_posts_release(struct lmdb *s, MDB_txn *txn, const struct vt__jkey *keys, size_t n,
			   int *held)
{
	uint64_t id = keys[0].id;
	struct post p;
	int rc = post_get(s, txn, id, &p);

	*held = rc != MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND) {
		return 0;
	}
	return rc != 0 ? rc : post_rewrite(s, txn, id, &p, keys, n);
}

int vt__lmdb_posts_holds(struct lmdb *s, MDB_txn *txn, uint64_t id, const uint8_t *ik, size_t len,
			 int *holds)
{
	struct post p;
	int rc = post_get(s, txn, id, &p);

	*holds = 0;
	if (rc != 0) {
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	for (size_t at = 0, l; at < p.iks_len && !*holds; at += l) {
		l = ik_len(p.iks + at, p.iks_len - at);
		if (l == 0) {
			break;
		}
		*holds = l == len && memcmp(p.iks + at, ik, len) == 0;
	}
	return 0;
}

/* ---- replay ---- */

/* The inboxes of @p's keys into a new array, their names in @names; NULL when out of memory. */
static struct vt_inbox *post_inboxes(const struct post *p, char **names, uint32_t *n)
{
	struct vt_inbox *in = malloc(p->iks_len / 4 * sizeof(*in) + 1);
	char *at = *names = malloc(p->iks_len + 1);
	size_t ul, dl;

	*n = 0;
	if (in == NULL || at == NULL) {
		free(in);
		free(*names);
		return NULL;
	}
	for (size_t off = 0, l; off < p->iks_len; off += l) {
		l = ik_len(p->iks + off, p->iks_len - off);
		if (l == 0 || vt__inbox_key_parse(p->iks + off, l, &ul, &dl) != 0) {
			vt_log(VT_LOG_ERROR, "lmdb: journal: damaged device list; %u devices read",
			       (unsigned)*n);
			break;
		}
		if (!vt__inbox_key_clean(p->iks + off, l)) {
			vt_log(VT_LOG_ERROR, "lmdb: journal: damaged device name skipped");
			continue;
		}
		vt__inbox_key_split(p->iks + off, l, at, at + ul + 1);
		in[*n] = (struct vt_inbox){at, at + ul + 1};
		at += ul + dl + 2;
		(*n)++;
	}
	return in;
}

/* The record of entry @k into @rec: 0, or -1 (logged) when it is missing or damaged. */
static int post_record(struct lmdb *s, MDB_txn *txn, const MDB_val *k, struct vt_record *rec)
{
	MDB_val rk = *k, rv;

	if (k->mv_size != 8 || mdb_get(txn, s->journal, &rk, &rv) != 0 ||
	    vt__lmdb_rec_decode(&rv, vt__get_be64(k->mv_data), rec) != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: journal: entry of several devices of event id=%llu "
		       "without its record dropped",
		       (unsigned long long)(k->mv_size == 8 ? vt__get_be64(k->mv_data) : 0));
		return -1;
	}
	return 0;
}

int vt__lmdb_posts_replay_one(struct lmdb *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v,
			      uint64_t *copies)
{
	struct vt_record rec;
	struct post p = {v->mv_data, v->mv_size};
	struct vt_op op = {.kind = VT_OP_PUT, .rec = &rec};
	struct vt_inbox *in = NULL;
	struct batch b = {0};
	char *names = NULL;
	int rc = 0;

	*copies = 0;
	if (post_record(s, txn, k, &rec) != 0) {
		return 0;
	}
	in = post_inboxes(&p, &names, &op.nto);
	if (in == NULL) {
		return VT_ENOMEM;
	}
	op.to = in;
	if (op.nto > 0) {
		rc = vt__lmdb_apply_put(s, txn, &op, &b);
	} else {
		vt_log(VT_LOG_ERROR, "lmdb: journal: event id=%llu held for no device: dropped",
		       (unsigned long long)rec.id);
	}
	if (rc == 0 && op.status != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: journal: event id=%llu not delivered to %u devices: %s",
		       (unsigned long long)rec.id, (unsigned)op.nto, vt_strerror(op.status));
	}
	*copies = rc == 0 && op.status == 0 ? op.nto : 0;
	vt__lmdb_batch_free(&b);
	free(in);
	free(names);
	return rc == 0 ? vt__lmdb_del_quiet(txn, s->journal, k->mv_data, 8) : rc;
}
