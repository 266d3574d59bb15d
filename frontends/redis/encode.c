/*
 * frontends/redis/encode.c - batches to script arguments and replies back.
 *
 * Replies are read defensively: a reply of an unexpected shape (another
 * program on the server, a version mismatch) fails its call with
 * VT_ESTORAGE instead of being trusted.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "encode.h"
#include "json.h"
#include "scripts.h"
#include "store_key.h"

/* ---- encoding ---- */

static int put_valid(const struct vt_op *op)
{
	if (!op->rec || op->rec->id == 0 || (op->rec->body_len > 0 && !op->rec->body)) {
		return 0;
	}
	return vt__put_inboxes_valid(op);
}

/* Nonzero unless a precondition names no group id a backend accepts. */
static int check_valid(const struct vt_op *op)
{
	size_t gl = op->group ? strlen(op->group) : 0;

	return !op->check_base || (gl > 0 && gl <= VT__GROUP_KEY_MAX);
}

/* Nonzero when a PUT asks for dedup and has a (from, cid) that can be kept. */
static int put_dedups(const struct vt_op *op)
{
	uint8_t key[VT__DEDUP_KEY_MAX];

	return op->dedup && op->rec->cid && op->rec->cid[0] && vt__dedup_key(op->rec, key) != 0;
}

/*
 * Answer an op that cannot be stored, as the other backends do: bad input
 * is VT_EINVAL, an ACK or NOTIFIED of an inbox that cannot exist finds
 * nothing. Returns nonzero when the op is to be sent.
 */
static int triage(struct vt_op *op)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen;

	switch (op->kind) {
	case VT_OP_PUT:
		op->status = put_valid(op) && check_valid(op) ? 0 : VT_EINVAL;
		break;
	case VT_OP_ACK:
	case VT_OP_NOTIFIED:
		op->status = vt__inbox_key(&op->inbox, key) ? 0 : VT_EUNKNOWNID;
		break;
	case VT_OP_TOUCH:
		op->status = vt__touch_valid(op) ? 0 : VT_EINVAL;
		break;
	case VT_OP_GROUP:
		op->status = vt__group_valid(op) && check_valid(op) ? 0 : VT_EINVAL;
		break;
	case VT_OP_REVOKE:
		op->status = vt__revoke_valid(op, key, &klen) ? 0 : VT_EINVAL;
		break;
	default:
		op->status = VT_EINVAL;
	}
	return op->status == 0;
}

/* Arguments and numbers one valid op takes. */
static void op_size(const struct vt_op *op, size_t *nargs, size_t *nnums)
{
	if (op->kind == VT_OP_PUT) {
		*nargs += 19 + 2 * (size_t)op->nto + op->nusers;
		*nnums += 7;
	} else {
		*nargs += 8; /* the most any other op takes: an ACK asking for a receipt */
		*nnums += 4;
	}
}

/* The precondition: CHECK, then the group and its base version. */
static void add_check(struct vt__rargs *a, const struct vt_op *op)
{
	vt__rargs_str(a, op->check_base ? "1" : "0");
	if (op->check_base) {
		vt__rargs_str(a, op->group);
		vt__rargs_id(a, op->base);
	}
}

static void add_inbox(struct vt__rargs *a, const struct vt_inbox *in)
{
	vt__rargs_str(a, in->user);
	vt__rargs_str(a, vt__inbox_device(in));
}

/*
 * The receipt an ACK asks for: RCPT, then the id and time the receipt may
 * take, and the acked id in decimal for its body (Lua has no exact 64-bit
 * numbers to write it with).
 */
static void add_receipt(struct vt__rargs *a, const struct vt_op *op)
{
	vt__rargs_str(a, op->receipt_id ? "1" : "0");
	if (op->receipt_id) {
		vt__rargs_id(a, op->receipt_id);
		vt__rargs_i64(a, op->ts);
		vt__rargs_u64(a, op->id);
	}
}

static void encode_put(struct vt__rargs *a, const struct vt_op *op)
{
	const struct vt_record *r = op->rec;

	vt__rargs_add(a, "P", 1);
	vt__rargs_id(a, r->id);
	vt__rargs_u64(a, r->kind);
	vt__rargs_str(a, r->from);
	vt__rargs_str(a, r->to);
	vt__rargs_str(a, r->cid);
	vt__rargs_i64(a, r->ts);
	vt__rargs_add(a, r->body, r->body_len);
	vt__rargs_str(a, put_dedups(op) ? "1" : "0");
	vt__rargs_u64(a, op->inbox_cap);
	vt__rargs_str(a, op->cap_skip ? "1" : "0");
	vt__rargs_u64(a, op->nto);
	for (uint32_t i = 0; i < op->nto; i++) {
		add_inbox(a, &op->to[i]);
	}
	vt__rargs_u64(a, op->nusers);
	for (uint32_t i = 0; i < op->nusers; i++) {
		vt__rargs_str(a, op->users[i]);
	}
	vt__rargs_str(a, op->also_own ? "1" : "0");
	if (op->also_own) {
		add_inbox(a, op->also_own);
	}
	add_check(a, op);
}

static void encode_op(struct vt__rargs *a, const struct vt_op *op)
{
	switch (op->kind) {
	case VT_OP_PUT:
		encode_put(a, op);
		break;
	case VT_OP_ACK:
		vt__rargs_str(a, "A");
		add_inbox(a, &op->inbox);
		vt__rargs_id(a, op->id);
		add_receipt(a, op);
		break;
	case VT_OP_NOTIFIED:
		vt__rargs_str(a, "N");
		add_inbox(a, &op->inbox);
		vt__rargs_id(a, op->id);
		break;
	case VT_OP_TOUCH:
		vt__rargs_str(a, "T");
		add_inbox(a, &op->inbox);
		vt__rargs_i64(a, op->ts);
		break;
	case VT_OP_REVOKE:
		vt__rargs_str(a, "R");
		add_inbox(a, &op->inbox);
		vt__rargs_i64(a, op->ts);
		break;
	default: /* VT_OP_GROUP */
		vt__rargs_str(a, "G");
		vt__rargs_str(a, op->group);
		vt__rargs_add(a, op->len ? op->data : "", op->len);
		vt__rargs_id(a, op->version);
		add_check(a, op);
		break;
	}
}

struct vt__rargs *vt__encode_batch(struct vt_op *ops, size_t n, const char *prefix,
                                   const char *window, size_t *nsent)
{
	size_t nargs = 2, nnums = 0;
	struct vt__rargs *a;

	*nsent = 0;
	for (size_t i = 0; i < n; i++) {
		vt__op_reset(&ops[i]);
		if (triage(&ops[i])) {
			op_size(&ops[i], &nargs, &nnums);
			(*nsent)++;
		}
	}
	a = vt__rargs_new(nargs, nnums);
	if (!a) {
		return NULL;
	}
	vt__rargs_str(a, prefix);
	vt__rargs_str(a, window);
	for (size_t i = 0; i < n; i++) {
		if (ops[i].status == 0) {
			encode_op(a, &ops[i]);
		}
	}
	return a;
}

/* ---- decoding ---- */

/* Where the inboxes a PUT's reply routes to start: after status, dup, skipped. */
#define PUT_ROUTED 3
/* An ACK's reply: status, kind, from, cid, receipt id; a receipt reported on
 * the op adds its sender, its body and the inboxes it reached. */
#define ACK_FIXED  5
#define ACK_ROUTED 7

uint64_t vt__decode_id(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t v = 0;

	if (len != 16) {
		return 0;
	}
	for (size_t i = 0; i < 16; i++) {
		const char *p = s[i] ? strchr(hex, s[i]) : NULL;

		if (!p) {
			return 0;
		}
		v = v << 4 | (uint64_t)(p - hex);
	}
	return v;
}

/* The op status of a script status; -1 for none the scripts give. */
static int op_status(long long st, int *out)
{
	static const int map[] = {
	        [VT__RS_OK] = 0,
	        [VT__RS_UNKNOWN] = VT_EUNKNOWNID,
	        [VT__RS_FULL] = VT_EINBOXFULL,
	        [VT__RS_STALE] = VT_ECONFLICT,
	        [VT__RS_NOSPACE] = VT_ENOSPC,
	        [VT__RS_TAKEN] = VT_ESTORAGE,
	};

	if (st < 0 || st >= (long long)(sizeof(map) / sizeof(map[0]))) {
		return -1;
	}
	*out = map[st];
	return 0;
}

/* Element @i of array @e when it is a string, else NULL. */
static const redisReply *str_at(const redisReply *e, size_t i)
{
	const redisReply *s = i < e->elements ? e->element[i] : NULL;

	return s && (s->type == REDIS_REPLY_STRING || s->type == REDIS_REPLY_STATUS) ? s : NULL;
}

/* Element @i of array @e as an integer; 0 when it is one. */
static int int_at(const redisReply *e, size_t i, long long *v)
{
	const redisReply *s = i < e->elements ? e->element[i] : NULL;

	if (!s || s->type != REDIS_REPLY_INTEGER) {
		return -1;
	}
	*v = s->integer;
	return 0;
}

/* A string element parsed as an unsigned number in @base; 0 when it is one. */
static int num_at(const redisReply *e, size_t i, int base, unsigned long long *v)
{
	const redisReply *s = str_at(e, i);
	char *end;

	if (!s || s->len == 0 || s->len > 20) {
		return -1;
	}
	*v = strtoull(s->str, &end, base);
	return end == s->str + s->len ? 0 : -1;
}

/* String element @i of @e when it holds @min to @max bytes and no NUL. */
static const char *text_at(const redisReply *e, size_t i, size_t min, size_t max)
{
	const redisReply *s = str_at(e, i);

	if (!s || s->len < min || s->len > max || memchr(s->str, 0, s->len)) {
		return NULL;
	}
	return s->str;
}

/* Elements @at on of @e, user and device pairs, as the op's out_to. */
static int decode_inboxes(struct vt_op *op, const redisReply *e, size_t at, struct vt_inbox *out)
{
	op->out_nto = (uint32_t)((e->elements - at) / 2);
	op->out_to = op->out_nto ? out : NULL;
	for (uint32_t i = 0; i < op->out_nto; i++) {
		const redisReply *u = str_at(e, at + 2 * i), *v = str_at(e, at + 1 + 2 * i);

		if (!u || !v) {
			return VT_ESTORAGE;
		}
		out[i].user = u->str; /* hiredis ends every string with a NUL */
		out[i].device = v->str;
	}
	return 0;
}

static int decode_put(struct vt_op *op, const redisReply *e, struct vt_inbox *out)
{
	long long st, skipped;
	unsigned long long dup = 0;
	const redisReply *d = str_at(e, 1);

	if (int_at(e, 0, &st) || int_at(e, 2, &skipped) || !d ||
	    (d->len && !(dup = vt__decode_id(d->str, d->len))) || op_status(st, &op->status)) {
		return VT_ESTORAGE;
	}
	if (st == VT__RS_TAKEN) {
		/* TODO: the engine keeps handing out ids of the block it shares
		 * with another; a fresh block would need a way to give the
		 * engine a new id base while it runs. */
		vt_log(VT_LOG_ERROR, "redis: id %016" PRIx64 " already used by another record: "
		       "id blocks were lost in Redis? (see docs/CLUSTER.md); not stored",
		       op->rec->id);
	}
	if (op->status != 0) {
		return 0;
	}
	op->dup_of = dup;
	op->out_skipped = (uint32_t)skipped;
	return decode_inboxes(op, e, PUT_ROUTED, out);
}

/*
 * The receipt reported on an ACK: its sender and body, then the inboxes it
 * reached. It took the op's receipt id and time; checked as a listed
 * record would be, since it is pushed as it is.
 */
static int decode_receipt(struct vt_op *op, const redisReply *e, struct vt_inbox *out,
                          struct vt_record *rcpt)
{
	const redisReply *body = str_at(e, 6);
	const char *to = text_at(e, 5, 1, VT_ID_MAX);

	if (!rcpt || !to || !body || op->receipt_id == 0 ||
	    vt_json_validate(body->str, body->len, VT_JSON_MAX_DEPTH) != 0) {
		return VT_ESTORAGE;
	}
	*rcpt = (struct vt_record){.id = op->receipt_id,
	                           .kind = VT_KIND_DELIVERED,
	                           .from = op->inbox.user,
	                           .to = to,
	                           .cid = "",
	                           .ts = op->ts,
	                           .body = body->str,
	                           .body_len = body->len};
	op->out_receipt = rcpt;
	return decode_inboxes(op, e, ACK_ROUTED, out);
}

/*
 * An ACK, found or not: kind, from and cid of what it removed, the receipt
 * its ref went into ("" for none), and the receipt reported on it, if any.
 */
static int decode_ack(struct vt_op *op, const redisReply *e, struct vt_inbox *out,
                      struct vt_record *rcpt)
{
	unsigned long long kind;
	const redisReply *from = str_at(e, 2), *cid = str_at(e, 3), *rid = str_at(e, 4);
	struct vt_record rec = {0};

	if (num_at(e, 1, 10, &kind) || !from || !cid || !rid) {
		return VT_ESTORAGE;
	}
	op->out_receipt_id = rid->len ? vt__decode_id(rid->str, rid->len) : 0;
	if (rid->len && op->out_receipt_id == 0) {
		return VT_ESTORAGE;
	}
	if (op->status == 0) {
		rec.kind = (uint32_t)kind;
		rec.from = from->str;
		rec.cid = cid->str;
		vt__ack_report(op, &rec);
	}
	return e->elements > ACK_FIXED ? decode_receipt(op, e, out, rcpt) : 0;
}

static int decode_op(struct vt_op *op, const redisReply *e, struct vt_inbox *out,
                     struct vt_record *rcpt)
{
	long long st, ndev;

	if (!e || e->type != REDIS_REPLY_ARRAY || int_at(e, 0, &st)) {
		return VT_ESTORAGE;
	}
	if (op->kind == VT_OP_PUT) {
		return decode_put(op, e, out);
	}
	if (op_status(st, &op->status)) {
		return VT_ESTORAGE;
	}
	if (op->kind == VT_OP_ACK) {
		return decode_ack(op, e, out, rcpt); /* found or not, it may report a receipt */
	}
	if (op->status != 0) {
		return 0;
	}
	if (op->kind == VT_OP_TOUCH) {
		if (int_at(e, 1, &ndev)) {
			return VT_ESTORAGE;
		}
		op->out_ndevices = (uint32_t)ndev;
	}
	return 0;
}

/* Elements of op reply @e past @fixed, when it is an array that has them. */
static size_t past(const redisReply *e, size_t fixed)
{
	return e && e->type == REDIS_REPLY_ARRAY && e->elements > fixed ? e->elements - fixed : 0;
}

/* Room for every out_to entry and every receipt of the reply. */
static int out_alloc(const struct vt_op *ops, size_t n, const redisReply *r, struct vt__rout *out)
{
	size_t ninboxes = 0, nreceipts = 0, j = 0;

	for (size_t i = 0; i < n; i++) {
		const redisReply *e;

		if (ops[i].status != 0) {
			continue;
		}
		e = r->element[j++];
		if (ops[i].kind == VT_OP_PUT) {
			ninboxes += past(e, PUT_ROUTED) / 2;
		} else if (ops[i].kind == VT_OP_ACK) {
			ninboxes += past(e, ACK_ROUTED) / 2;
			nreceipts += past(e, ACK_FIXED) > 0;
		}
	}
	out->inboxes = ninboxes ? calloc(ninboxes, sizeof(*out->inboxes)) : NULL;
	out->receipts = nreceipts ? calloc(nreceipts, sizeof(*out->receipts)) : NULL;
	if ((ninboxes && !out->inboxes) || (nreceipts && !out->receipts)) {
		vt__rout_free(out);
		return VT_ENOMEM;
	}
	return 0;
}

int vt__decode_batch(struct vt_op *ops, size_t n, const redisReply *r, struct vt__rout *out)
{
	size_t sent = 0, j = 0, ni = 0, nr = 0;
	int rc;

	*out = (struct vt__rout){NULL, NULL};
	for (size_t i = 0; i < n; i++) {
		sent += ops[i].status == 0;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != sent) {
		return VT_ESTORAGE;
	}
	rc = out_alloc(ops, n, r, out);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (ops[i].status != 0) {
			continue; /* answered before sending */
		}
		rc = decode_op(&ops[i], r->element[j++], out->inboxes ? out->inboxes + ni : NULL,
		               out->receipts ? out->receipts + nr : NULL);
		ni += ops[i].out_nto;
		nr += ops[i].out_receipt != NULL;
	}
	return rc;
}

void vt__rout_free(struct vt__rout *out)
{
	free(out->inboxes);
	free(out->receipts);
	*out = (struct vt__rout){NULL, NULL};
}

/* A decimal time in milliseconds; 0 when it is one. */
static int ts_at(const redisReply *e, size_t i, int64_t *ts)
{
	const redisReply *s = str_at(e, i);
	char *end;

	if (!s || s->len == 0 || s->len > 20 ||
	    (s->str[0] != '-' && !isdigit((unsigned char)s->str[0]))) {
		return -1; /* strtoll would take white space and a '+' too */
	}
	errno = 0;
	*ts = strtoll(s->str, &end, 10);
	return errno == 0 && end == s->str + s->len ? 0 : -1;
}

/*
 * One record of a list reply: id flags kind from to cid ts body. Redis is
 * trusted no more than a client: every field is checked as the engine
 * would check it coming in. Returns NULL, or why the record is refused.
 */
static const char *decode_record(const redisReply *e, struct vt_record *rec)
{
	unsigned long long flags, kind;
	const redisReply *id = str_at(e, 0), *body = str_at(e, 7);

	if (e->elements != 8 || !id || !body) {
		return "not a record";
	}
	rec->id = vt__decode_id(id->str, id->len);
	if (rec->id == 0 || num_at(e, 1, 10, &flags)) {
		return "an id or flags that are not numbers";
	}
	if (num_at(e, 2, 10, &kind) || kind < VT_KIND_MESSAGE || kind > VT_KIND_GROUP) {
		return "an unknown kind";
	}
	/* A group's receipt is from the group: as long as a "to" may be. */
	rec->from = text_at(e, 3, 1, VT__GROUP_KEY_MAX);
	rec->to = text_at(e, 4, 1, VT__GROUP_KEY_MAX);
	rec->cid = text_at(e, 5, 0, VT_ID_MAX);
	if (!rec->from || !rec->to || !rec->cid || ts_at(e, 6, &rec->ts)) {
		return "a bad sender, recipient, client id or time";
	}
	if (vt_json_validate(body->str, body->len, VT_JSON_MAX_DEPTH) != 0) {
		return "a body that is not JSON";
	}
	rec->flags = (uint32_t)flags;
	rec->kind = (uint32_t)kind;
	rec->body = body->str;
	rec->body_len = body->len;
	return NULL;
}

long vt__decode_list(const redisReply *r, struct vt_record **recs, vt__rbad_cb bad, void *arg)
{
	size_t n = 0;

	*recs = NULL;
	if (r->type != REDIS_REPLY_ARRAY) {
		return VT_ESTORAGE;
	}
	if (r->elements == 0) {
		return 0;
	}
	*recs = calloc(r->elements, sizeof(**recs));
	if (!*recs) {
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		const char *why = "not a record";

		if (e && e->type == REDIS_REPLY_ARRAY) {
			why = decode_record(e, &(*recs)[n]);
		}
		if (why) {
			bad(arg, e && e->type == REDIS_REPLY_ARRAY ? str_at(e, 0) : NULL, why);
		} else {
			n++;
		}
	}
	return (long)n;
}

/* Elements @i to @i + 2 of @e as a revocation; 0 when they are one. */
static int revocation_at(const redisReply *e, size_t i, struct vt_inbox *scope, int64_t *ts)
{
	uint8_t key[VT__INBOX_KEY_MAX];

	scope->user = text_at(e, i, 1, VT__INBOX_KEY_MAX);
	scope->device = text_at(e, i + 1, 0, VT__INBOX_KEY_MAX);
	if (!scope->user || !scope->device || vt__inbox_key(scope, key) == 0 ||
	    ts_at(e, i + 2, ts) || *ts <= 0) {
		return -1;
	}
	return 0;
}

int vt__decode_revoked(const redisReply *r, char *cursor, size_t cap, vt__revoked_cb each,
                       void *arg)
{
	const redisReply *next;

	if (r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 1 || !(next = str_at(r, 0)) ||
	    next->len == 0 || next->len >= cap) {
		return VT_ESTORAGE;
	}
	memcpy(cursor, next->str, next->len + 1);
	for (size_t i = 1; i < r->elements; i += 3) {
		struct vt_inbox scope;
		int64_t ts;

		if (revocation_at(r, i, &scope, &ts) == 0) {
			each(arg, &scope, ts);
		} else {
			vt_log(VT_LOG_ERROR, "redis: a stored revocation cannot be read (not "
			       "written by vartalap?); skipped");
		}
	}
	return 0;
}
