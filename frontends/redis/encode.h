/*
 * frontends/redis/encode.h - storage calls to script arguments, and script
 * replies back to op outputs and records.
 *
 * The batch encoding (ARGV after prefix and window), one op after another:
 *   P id kind from to cid ts body dedup cap skip NTO (user device)*NTO
 *     NUSERS user*NUSERS OWN [user device] CHECK [group base]
 *   A user device id RCPT [rid ts ref]      T user device ts
 *   N user device id      G group data version CHECK [group base]
 *   R user device ts
 * (data "" deletes; R's ts is in seconds, its device "*" for every one).
 * RCPT asks for the sender's receipt (VT_OP_ACK): the id and time it may
 * take, and the acked id in decimal. OWN, CHECK and RCPT are 1 or 0, and
 * the fields in brackets follow only a 1. Ids and versions are 16 hex
 * digits, other numbers decimal, flags "0" or "1".
 * Ops the backend cannot store are answered here and never sent.
 */
#ifndef VARTALAP_REDIS_ENCODE_H
#define VARTALAP_REDIS_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <vartalap/storage.h>

#include "conn.h"

/*
 * Check and reset @ops, answer those that cannot be stored, and encode the
 * rest after @prefix and @window (a decimal string). Sets *@nsent to how
 * many were encoded. Returns the arguments, or NULL when out of memory.
 */
struct vt__rargs *vt__encode_batch(struct vt_op *ops, size_t n, const char *prefix,
                                   const char *window, size_t *nsent);

/* What the outputs of a decoded commit point into, besides its reply. */
struct vt__rout {
	struct vt_inbox *inboxes;   /* every out_to entry */
	struct vt_record *receipts; /* every out_receipt */
};

/*
 * Fill the outputs of the encoded ops of @ops from a commit reply. out_to
 * entries and out_receipt records point into @r and into @out (allocated
 * here, freed with vt__rout_free() after the done callback). Returns 0,
 * VT_ENOMEM, or VT_ESTORAGE for a reply of the wrong shape.
 */
int vt__decode_batch(struct vt_op *ops, size_t n, const redisReply *r, struct vt__rout *out);

/* Free what vt__decode_batch() allocated; @out is empty again. */
void vt__rout_free(struct vt__rout *out);

/*
 * A record of a list reply that cannot be read: the inbox entry it was
 * listed under (NULL when not even that is a string), and why.
 */
typedef void (*vt__rbad_cb)(void *arg, const redisReply *entry, const char *why);

/*
 * Records of a list reply into *@recs (allocated here, also when none is
 * kept; strings point into @r). A record that cannot be read is passed
 * over and handed to @bad. Returns the count kept, or a negative error:
 * VT_ENOMEM, or VT_ESTORAGE for a reply that is not a list.
 */
long vt__decode_list(const redisReply *r, struct vt_record **recs, vt__rbad_cb bad, void *arg);

/* What load_revoked hands each revocation to (vartalap/storage.h). */
typedef void (*vt__revoked_cb)(void *arg, const struct vt_inbox *scope, int64_t ts);

/*
 * One page of the revoked script (scripts.h): its next cursor into @cursor
 * (@cap bytes), and each revocation on it to @each. One that cannot be
 * read (not written by this backend) is logged and passed over. Returns 0,
 * or VT_ESTORAGE for a reply of another shape.
 */
int vt__decode_revoked(const redisReply *r, char *cursor, size_t cap, vt__revoked_cb each,
                       void *arg);

/* An id as the scripts write it, 16 lowercase hex digits; 0 when not one. */
uint64_t vt__decode_id(const char *s, size_t len);

#endif /* VARTALAP_REDIS_ENCODE_H */
