/*
 * store_mem_int.h - what the files of the memory backend share.
 *
 * Internal. store_mem.c: the vtable, the commit driver, list, expire and
 * lifetime. store_mem_table.c and store_mem_heap.c: the containers.
 * store_mem_box.c: records, inboxes and their deliveries.
 * store_mem_prep.c: the first phase of a commit, which may fail.
 * store_mem_apply.c: the second, which cannot. See store_mem.c for why.
 * store_mem_revoke.c: logouts.
 * store_mem_rcpt.c: the receipts made with acks, planned in the first
 * phase and made in the second, with store_receipts.c (shared with LMDB).
 */
#ifndef VARTALAP_STORE_MEM_INT_H
#define VARTALAP_STORE_MEM_INT_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/storage.h>

#include "store_forgot.h"
#include "store_mem_heap.h"
#include "store_mem_table.h"
#include "store_receipts.h"
#include "store_targets.h"

/* ---- records, inboxes, deliveries, dedup entries ---- */

struct mrec;
struct mbox;

/* One delivery, linked into its record's list. */
struct mdlv {
	struct mrec *rec;
	struct mbox *box;
	struct mdlv *prev, *next;
	uint32_t flags; /* VT_REC_* */
};

struct mrec {
	struct vt_record r; /* strings point into data[] */
	uint32_t ndeliv;
	struct mdlv *dlv;
	uint8_t idkey[8];
	char data[];
};

/* An inbox slot; d == NULL marks a removed delivery awaiting compaction. */
struct mslot {
	uint64_t id;
	struct mdlv *d;
};

struct mbox {
	uint32_t count;   /* live deliveries */
	uint32_t pending; /* prepare: slots a batch may add */
	uint64_t mark;    /* the PUT that last reached it, against double visits */
	size_t len, cap, dead;
	struct mslot *v;
	size_t klen;
	uint8_t key[];
};

struct mdedup {
	uint64_t id;
	int64_t ts;
	int dead; /* replaced or swept; freed when its heap item pops */
	size_t klen;
	uint8_t key[];
};

struct muser;

/* A registered device; its key is the inbox key of (user, device). */
struct mdev {
	struct muser *user;
	struct mdev *prev, *next; /* the user's devices */
	int64_t seen;             /* last seen, wall ms */
	size_t klen;
	uint8_t key[];
};

/* A user with at least one registered device; keyed by vt__user_key. */
struct muser {
	struct mdev *devs;
	uint32_t ndev;
	size_t klen;
	uint8_t key[];
};

struct mgroup {
	size_t klen, len;
	char *data;
	char key[]; /* the group id and its NUL, then the data */
};

struct mrevuser;

/* A revoked scope (store_mem_revoke.c); its key is the scope's inbox key. */
struct mrevoke {
	int64_t ts; /* seconds */
	struct mrevuser *owner;         /* a single device: its user's list */
	struct mrevoke *prev, *next;    /* on that list */
	size_t klen;
	uint8_t key[];
};

struct mem {
	struct hmap recs, boxes, dedup, devs, users, groups;
	struct hmap revoked, revusers;
	struct heap rtime;  /* (ts, id): records, stale once deleted */
	struct heap dtime;  /* (ts, 0, mdedup*): owns every dedup entry */
	struct heap dvtime; /* (seen, serial, mdev*): one item per device */
	uint64_t max_id;
	uint64_t stamp, serial;
	int64_t window;
	struct vt__forgot forgot; /* pairs forgotten early, for the log */
	size_t dedup_max;      /* the most pairs kept: MEM_DEDUP_MAX */
};

/* The most (sender, client id) pairs kept: 100 to 250 MB, by the ids' lengths. */
#define MEM_DEDUP_MAX 1000000

/* Keep at most @max pairs in the memory backend @st instead (for tests). */
void vt__mem_set_dedup_max(struct vt_storage *st, size_t max);

/* ---- commit ---- */

/*
 * What prepare set aside for one op. A PUT's targets depend on devices
 * registered earlier in the same batch, so prepare reserves for a superset:
 * every inbox the PUT could reach whatever the batch's TOUCHes do.
 */
struct prep {
	struct mrec *rec;   /* PUT: a copy, used if the id is new */
	struct mdedup *dd;  /* PUT: used if the (from, cid) pair is recorded */
	struct mbox **cand; /* PUT: inboxes it may reach, each pending once */
	struct mdlv **pool; /* PUT: a spare delivery per candidate */
	uint32_t ncand, npool;
	size_t keybytes;     /* PUT: key bytes of the candidates */
	struct vt__out *out; /* PUT: out_to */
	struct mdev *dev;    /* TOUCH: the entry of a new device */
	struct muser *user;  /* TOUCH: the entry of a new user */
	struct mbox *claim;  /* TOUCH: the device's inbox, room for a claim */
	uint32_t nclaim;     /* TOUCH: pending slots taken on claim */
	struct mgroup *grp;  /* GROUP: the new state */
	struct mrevoke *rev; /* REVOKE: the entry of a new scope */
	struct mrevuser *revuser; /* REVOKE: its user's, if new too */
};

/*
 * What prepare knows of the whole batch: its @n ops, then @nmore PUTs the
 * backend adds after them (receipts), prepared with them, indexed after
 * them (n + i).
 */
struct batch {
	struct vt_op *ops;
	size_t n;
	struct vt_op *more;
	size_t nmore, nput;
	size_t *touch; /* indexes of the valid TOUCH ops */
	size_t ntouch, ngroup, nrevoke;
};

/* store_mem_box.c */
struct mrec *vt__mem_rec_find(struct mem *m, uint64_t id);
struct mbox *vt__mem_box_find(struct mem *m, const uint8_t *key, size_t klen);
struct mbox *vt__mem_box_of(struct mem *m, const struct vt_inbox *in);
struct muser *vt__mem_user_find(struct mem *m, const char *user);
size_t vt__mem_box_lower(const struct mbox *b, uint64_t id);
struct mdlv *vt__mem_box_get(const struct mbox *b, uint64_t id);
int vt__mem_box_reserve(struct mbox *b, size_t want);
void vt__mem_box_add(struct mbox *b, uint64_t id, struct mdlv *d);
void vt__mem_box_compact(struct mbox *b);
void vt__mem_box_clear(struct mbox *b, size_t i);
void vt__mem_box_free_if_empty(struct mem *m, struct mbox *b);
void vt__mem_dlv_detach(struct mem *m, struct mdlv *d);
void vt__mem_dlv_remove(struct mem *m, struct mdlv *d);
void vt__mem_dlv_link(struct mrec *r, struct mbox *b, struct mdlv *d);

/* store_mem_prep.c */
int vt__mem_put_valid(const struct vt_op *op);
/*
 * Copy @src into record @r, made by prepare for a record whose strings and
 * body were each at least as long; for a record known only after the ops ran.
 */
void vt__mem_rec_fill(struct mrec *r, const struct vt_record *src);
void vt__mem_prep_release(struct mem *m, struct prep *p);
/* Set aside all the ops of @bt could need, into @preps (one per op, those
 * of more included); 0, or VT_ENOMEM with nothing held. */
int vt__mem_prepare(struct mem *m, struct batch *bt, struct prep *preps);

/* store_mem_revoke.c */
int vt__mem_prep_revoke(struct vt_op *op, struct prep *p);
void vt__mem_apply_revoke(struct mem *m, struct vt_op *op, struct prep *p);
void vt__mem_revoked_expire(struct mem *m, int64_t before_ms);
int vt__mem_load_revoked(void *self,
			 void (*each)(void *arg, const struct vt_inbox *scope, int64_t ts),
			 void *arg);

/* store_mem_apply.c */
void vt__mem_apply_op(struct mem *m, struct vt_op *op, struct prep *p);

/* store_mem_rcpt.c: the receipts a batch's acks may owe, and their PUTs. */
struct mem_rcpts {
	struct vt__rcpts rs;
	struct vt_op *puts;         /* one per receipt set aside (rs.all) */
	struct vt_record *standins; /* what each PUT is prepared for */
	char *blanks;               /* the stand-ins' body */
};

/*
 * Plan the receipts the ACK ops of @ops, a batch of @n not yet applied, may
 * owe, and a PUT for each (mr->puts, rs.nall of them) to prepare with the
 * batch. 0, or VT_ENOMEM. Free @mr either way.
 */
int vt__mem_rcpts_plan(struct mem *m, const struct vt_op *ops, size_t n, struct mem_rcpts *mr);

/*
 * Once @ops ran: make the receipts they owe and store each with its PUT,
 * prepared in @preps (one per PUT). Cannot fail.
 */
void vt__mem_rcpts_store(struct mem *m, struct vt_op *ops, size_t n, struct mem_rcpts *mr,
			 struct prep *preps);

void vt__mem_rcpts_free(struct mem_rcpts *mr);

#endif
