/*
 * store_key.h - byte encodings shared by the storage backends.
 *
 * Internal. Inbox keys and big-endian integers, so that byte order equals
 * numeric order and an ordered store can scan a range with a cursor. These
 * are static inline helpers because both backends use them and neither owns
 * the other.
 */
#ifndef VARTALAP_STORE_KEY_H
#define VARTALAP_STORE_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vartalap/storage.h>

/*
 * Longest inbox key a backend accepts. LMDB keys stop at 511 bytes and a
 * delivery key adds 8 bytes of id, so a user and device of about 200 bytes
 * each still fit with room to spare.
 */
#define VT__INBOX_KEY_MAX 400

/* Longest dedup key (from, NUL, cid); the same LMDB limit applies. */
#define VT__DEDUP_KEY_MAX 500

/* Write @v big-endian into the 8 bytes at @p. */
static inline void vt__put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

/* Read a big-endian u64 from the 8 bytes at @p. */
static inline uint64_t vt__get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++) {
		v = (v << 8) | p[i];
	}
	return v;
}

/*
 * A signed time as 8 bytes that sort like the number: big-endian with the
 * sign bit flipped, so negative times come before positive ones.
 */
static inline void vt__put_ts(uint8_t *p, int64_t ts)
{
	vt__put_be64(p, (uint64_t)ts ^ ((uint64_t)1 << 63));
}

/* Inverse of vt__put_ts. */
static inline int64_t vt__get_ts(const uint8_t *p)
{
	uint64_t u = vt__get_be64(p) ^ ((uint64_t)1 << 63);
	int64_t v;

	memcpy(&v, &u, sizeof(v));
	return v;
}

/*
 * Encode @in as u16 length + user + u16 length + device into @out (at least
 * VT__INBOX_KEY_MAX bytes). The lengths make the key unambiguous and no key
 * a prefix of another, so "key + id" ranges of two inboxes never mix. A NULL
 * device is the default device (""). Returns the length, or 0 when the user
 * is missing or the key would exceed VT__INBOX_KEY_MAX.
 */
static inline size_t vt__inbox_key(const struct vt_inbox *in, uint8_t *out)
{
	const char *dev = in->device ? in->device : "";
	size_t ul, dl;

	if (!in->user) {
		return 0;
	}
	ul = strlen(in->user);
	dl = strlen(dev);
	if (ul + dl + 4 > VT__INBOX_KEY_MAX) {
		return 0;
	}
	out[0] = (uint8_t)(ul >> 8);
	out[1] = (uint8_t)ul;
	memcpy(out + 2, in->user, ul);
	out[2 + ul] = (uint8_t)(dl >> 8);
	out[3 + ul] = (uint8_t)dl;
	memcpy(out + 4 + ul, dev, dl);
	return ul + dl + 4;
}

/* The device of @in, NULL read as the default device "". */
static inline const char *vt__inbox_device(const struct vt_inbox *in)
{
	return in->device ? in->device : "";
}

/* Nonzero when @in names a user's holding inbox. */
static inline int vt__is_holding(const struct vt_inbox *in)
{
	return strcmp(vt__inbox_device(in), VT_HOLDING_DEVICE) == 0;
}

/*
 * Encode the user part of an inbox key (u16 length + user) into @out: every
 * inbox key of that user, and only those, starts with it. Returns the
 * length, or 0 when the user is missing or too long.
 */
static inline size_t vt__user_key(const char *user, uint8_t *out)
{
	size_t ul = user ? strlen(user) : 0;

	if (!user || ul + 4 > VT__INBOX_KEY_MAX) {
		return 0;
	}
	out[0] = (uint8_t)(ul >> 8);
	out[1] = (uint8_t)ul;
	memcpy(out + 2, user, ul);
	return ul + 2;
}

/*
 * Check that @key (@klen bytes) is a well-formed inbox key and return the
 * lengths of its user and device. Keys read back from disk go through this,
 * so damage cannot lead a reader past the end. Returns 0 or -1.
 */
static inline int vt__inbox_key_parse(const uint8_t *key, size_t klen, size_t *ul, size_t *dl)
{
	if (klen < 4 || klen > VT__INBOX_KEY_MAX) {
		return -1;
	}
	*ul = (size_t)key[0] << 8 | key[1];
	if (*ul + 4 > klen) {
		return -1;
	}
	*dl = (size_t)key[2 + *ul] << 8 | key[3 + *ul];
	return *ul + *dl + 4 == klen ? 0 : -1;
}

/*
 * Whether the well-formed inbox key @key (@klen bytes) names a user of one
 * byte or more and holds no NUL, as every key this library writes does:
 * read back from a damaged store, one that does not would name another.
 */
static inline int vt__inbox_key_clean(const uint8_t *key, size_t klen)
{
	size_t ul, dl;

	return vt__inbox_key_parse(key, klen, &ul, &dl) == 0 && ul > 0 &&
	       memchr(key + 2, 0, ul) == NULL && memchr(key + 4 + ul, 0, dl) == NULL;
}

/*
 * Decode the inbox key @key (@klen bytes) into @user and @device, each of
 * VT__INBOX_KEY_MAX bytes, NUL-terminated. Returns 0, or -1 for a key that
 * is not well-formed (vt__inbox_key_parse).
 */
static inline int vt__inbox_key_split(const uint8_t *key, size_t klen, char *user, char *device)
{
	size_t ul, dl;

	if (vt__inbox_key_parse(key, klen, &ul, &dl) != 0) {
		return -1;
	}
	memcpy(user, key + 2, ul);
	user[ul] = 0;
	memcpy(device, key + 4 + ul, dl);
	device[dl] = 0;
	return 0;
}

/* The inbox key of @user's holding inbox into @out; its length, or 0. */
static inline size_t vt__holding_key(const char *user, uint8_t *out)
{
	struct vt_inbox h = {user, VT_HOLDING_DEVICE};

	return vt__inbox_key(&h, out);
}

/*
 * Nonzero when every inbox a PUT names can be stored: each of @to, the
 * holding inbox of each of @users (the longest key a user can need, as
 * devices were checked when registered), and @also_own.
 */
static inline int vt__put_inboxes_valid(const struct vt_op *op)
{
	uint8_t key[VT__INBOX_KEY_MAX];

	if ((op->nto > 0 && !op->to) || (op->nusers > 0 && !op->users)) {
		return 0;
	}
	for (uint32_t i = 0; i < op->nto; i++) {
		if (vt__inbox_key(&op->to[i], key) == 0) {
			return 0;
		}
	}
	for (uint32_t i = 0; i < op->nusers; i++) {
		if (vt__holding_key(op->users[i], key) == 0) {
			return 0;
		}
	}
	return !op->also_own || vt__inbox_key(op->also_own, key) != 0;
}

/* Nonzero when a TOUCH names a device that can be registered. */
static inline int vt__touch_valid(const struct vt_op *op)
{
	uint8_t key[VT__INBOX_KEY_MAX];

	return vt__inbox_key(&op->inbox, key) != 0 && !vt__is_holding(&op->inbox);
}

/*
 * Nonzero when a REVOKE names a scope that can be stored: a user, a device
 * (VT_ALL_DEVICES for all of them) and a time after the epoch. Its key
 * into @key (VT__INBOX_KEY_MAX bytes), *@klen its length.
 */
static inline int vt__revoke_valid(const struct vt_op *op, uint8_t *key, size_t *klen)
{
	if (!op->inbox.user || !op->inbox.user[0] || !op->inbox.device || op->ts <= 0) {
		return 0;
	}
	*klen = vt__inbox_key(&op->inbox, key);
	return *klen != 0;
}

/* Nonzero when @in is a revocation of every device of its user. */
static inline int vt__revoke_all(const struct vt_inbox *in)
{
	return strcmp(vt__inbox_device(in), VT_ALL_DEVICES) == 0;
}

/*
 * Nonzero when @key (@klen bytes), the inbox key of a revoked scope, is a
 * single device of the user whose key (vt__user_key) is @uk: a scope that
 * a revocation of all of that user's devices covers.
 */
static inline int vt__revoke_covers(const uint8_t *key, size_t klen, const uint8_t *uk,
				    size_t uklen)
{
	size_t ul, dl;

	if (klen < uklen || memcmp(key, uk, uklen) != 0 ||
	    vt__inbox_key_parse(key, klen, &ul, &dl) != 0 || ul + 2 != uklen) {
		return 0;
	}
	return dl != strlen(VT_ALL_DEVICES) ||
	       memcmp(key + 4 + ul, VT_ALL_DEVICES, dl) != 0;
}

/* Longest group id a backend accepts (LMDB keys stop at 511 bytes). */
#define VT__GROUP_KEY_MAX 400

/* Nonzero when a GROUP op can be stored: a group id and data to match len. */
static inline int vt__group_valid(const struct vt_op *op)
{
	size_t gl = op->group ? strlen(op->group) : 0;

	return gl > 0 && gl <= VT__GROUP_KEY_MAX && (op->len == 0 || op->data);
}

/*
 * Encode the dedup key "from NUL cid" into @out (VT__DEDUP_KEY_MAX bytes).
 * Returns the length, or 0 when a field is missing or too long.
 */
static inline size_t vt__dedup_key(const struct vt_record *rec, uint8_t *out)
{
	size_t fl, cl;

	if (!rec->from || !rec->cid) {
		return 0;
	}
	fl = strlen(rec->from);
	cl = strlen(rec->cid);
	if (fl + cl + 1 > VT__DEDUP_KEY_MAX) {
		return 0;
	}
	memcpy(out, rec->from, fl);
	out[fl] = 0;
	memcpy(out + fl + 1, rec->cid, cl);
	return fl + cl + 1;
}

/*
 * Nonzero when time @ts lies within @window ms before @now (or after it: a
 * clock that went back must not make a fresh entry look stale). Written
 * without signed subtraction so hostile timestamps cannot overflow.
 */
static inline int vt__within_window(int64_t now, int64_t ts, int64_t window)
{
	if (window <= 0) {
		return 0;
	}
	if (now <= ts) {
		return 1;
	}
	return (uint64_t)now - (uint64_t)ts < (uint64_t)window;
}

/*
 * Fill the "acked" outputs of an ACK op from the record it removed. Ids
 * longer than the fields are cut (the engine's ids never are).
 */
static inline void vt__ack_report(struct vt_op *op, const struct vt_record *r)
{
	size_t f = r->from ? strlen(r->from) : 0, c = r->cid ? strlen(r->cid) : 0;

	f = f < sizeof(op->acked_from) ? f : sizeof(op->acked_from) - 1;
	c = c < sizeof(op->acked_cid) ? c : sizeof(op->acked_cid) - 1;
	op->acked_kind = r->kind;
	memcpy(op->acked_from, r->from ? r->from : "", f);
	op->acked_from[f] = 0;
	memcpy(op->acked_cid, r->cid ? r->cid : "", c);
	op->acked_cid[c] = 0;
}

/* Clear the outputs of @op before a backend applies it. */
static inline void vt__op_reset(struct vt_op *op)
{
	op->status = 0;
	op->dup_of = 0;
	op->acked_kind = 0;
	op->acked_from[0] = 0;
	op->acked_cid[0] = 0;
	op->out_to = NULL;
	op->out_nto = 0;
	op->out_skipped = 0;
	op->out_ndevices = 0;
	op->out_receipt_id = 0;
	op->out_receipt = NULL;
}

#endif /* VARTALAP_STORE_KEY_H */
