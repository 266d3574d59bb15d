/*
 * vartalap/storage.h - the storage vtable: where un-acked events live.
 *
 * Stable API. The engine keeps every event it must still deliver behind this
 * vtable. Two backends ship with the library: LMDB (durable, the default of
 * vartalapd) and memory (tests and embedding). A backend may complete each
 * call at once, inside the call (LMDB, memory), or later from its own event
 * loop (a network store, or LMDB with its writer thread); the engine handles
 * both.
 *
 * Model. An event is stored once as a record (its body is never copied per
 * recipient). Each (record, recipient device) pair that is still owed is a
 * delivery. Deliveries of one inbox (user, device) are listed in record id
 * order. A record disappears with its last delivery.
 *
 * Devices. A backend keeps a registry of each user's devices (TOUCH). A PUT
 * names recipient users, and the backend expands each to its registered
 * devices inside the same transaction, so no device registered before the
 * commit is missed. A user with no registered device gets the delivery in a
 * holding inbox (device VT_HOLDING_DEVICE); the first device that registers
 * for such a user claims what the holding inbox holds.
 *
 * Groups. The engine owns group logic and keeps group state as an opaque
 * blob per group id, written by GROUP ops in the same batches as the events
 * that announce a change, and read back whole at start (load_groups). Each
 * state has a version: the record id of the change that made it.
 *
 * Group versions. When several engines share one store, each keeps the
 * groups in memory and hears of the others' changes only after they
 * committed. So a GROUP op, and a PUT to a group's members, may carry a
 * precondition (check_base): the version of the group the op was derived
 * from. A backend shared by several engines must check it inside the
 * commit, atomically with the op: when the group's stored version is
 * another (or the group exists where base is 0), that op alone gets the
 * status VT_ECONFLICT and writes nothing; the rest of the batch goes on.
 * A backend that only ever serves one engine (memory, LMDB) may ignore the
 * precondition: that engine's memory is the store's state. The engine sets
 * it only when it has a cluster (vt_engine_set_cluster).
 *
 * Logouts. A REVOKE op remembers that the tokens of one device, or of all
 * of a user's devices, issued up to a time are revoked; the engine reads
 * them back whole at start (load_revoked) and keeps them in memory, and
 * expiry forgets those older than an unused device (device_before_ts).
 *
 * Order. The engine may hand over a commit before the one before it has
 * completed (vt_engine_config.commits_in_flight). A backend applies commits,
 * and expiry sweeps, in the order it was given them, so a later one sees
 * what an earlier one wrote. A listing shows the commits completed before
 * the listing completes, and none whose completion has not begun: the
 * engine routes those itself when they complete.
 *
 * Ids in a shared store. Each engine hands out ids from a range it was
 * given (max_id); a store that lost writes (a crash, a restore) can give
 * two engines the same range. A backend shared by several engines must
 * therefore refuse a PUT whose id is stored with another record (another
 * kind, from, to, cid or body): that op gets VT_ESTORAGE, is logged, and
 * writes nothing, so one user's record never reaches another's recipients.
 * A PUT sent again (the same record) only adds what it lacks.
 *
 * Threads: the engine calls a backend from one thread only, and a backend
 * calls its callbacks on that same thread.
 */
#ifndef VARTALAP_STORAGE_H
#define VARTALAP_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/token.h>

#include <vartalap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a record is. Values are stored on disk: never renumber. */
enum vt_kind {
	VT_KIND_MESSAGE = 1,   /* a user's message; acked, then receipted */
	VT_KIND_DELIVERED = 2, /* receipt to a sender: a recipient acked */
	VT_KIND_READ = 3,      /* receipt to a sender: a recipient read */
	VT_KIND_GROUP = 4,     /* a group was created or changed */
};

/* The device of a user's holding inbox; never a valid device id. */
#define VT_HOLDING_DEVICE "*"

/*
 * The device of a REVOKE that covers every device of its user. The same
 * string as the holding device, and never a valid device id either.
 */
#define VT_ALL_DEVICES "*"

/* The most refs one "delivered" receipt carries (see VT_OP_ACK). */
#define VT_RECEIPT_REFS_MAX 64

/* Bits of vt_record.flags in a listing. */
#define VT_REC_NOTIFIED 0x1u /* the push hook was called for this delivery */

/*
 * One stored event. Strings are NUL-terminated; @body is raw, validated JSON
 * text of @body_len bytes (not NUL-terminated). In a callback, a record and
 * everything it points to is valid only until the callback returns.
 */
struct vt_record {
	uint64_t id;      /* server id: > 0, unique, increasing */
	uint32_t kind;    /* enum vt_kind */
	const char *from; /* sender's user id; a group's receipt: the group id */
	const char *to;   /* the recipient's view: a user id or group id */
	const char *cid;  /* sender's client id; "" for server events */
	int64_t ts;       /* wall time of acceptance, ms since the epoch */
	const char *body; /* raw JSON value */
	size_t body_len;
	uint32_t flags;   /* list only: VT_REC_* bits of this delivery */
};

/* An inbox: one device of one user. device is "" for the user's default. */
struct vt_inbox {
	const char *user;
	const char *device;
};

enum vt_op_kind {
	/*
	 * Store @rec (once, if no record with its id exists yet) and add one
	 * delivery per inbox in @to. With @dedup set, first look up (rec->from,
	 * rec->cid): when a record was accepted under that pair within the
	 * dedup window, write nothing and set dup_of to its id. A backend with
	 * a bounded store may forget the oldest pairs before their window
	 * ends to make room for messages; it must then say so in its log.
	 * When an inbox
	 * in @to already holds @inbox_cap deliveries, write nothing and set
	 * status to VT_EINBOXFULL.
	 *
	 * A PUT of an id already stored adds only the deliveries it lacks; it
	 * is never a duplicate of itself, and an inbox that already holds its
	 * delivery does not count as full. Dedup needs a non-empty cid. An op
	 * the backend cannot store (id 0, a missing user, an inbox key over a
	 * few hundred bytes) gets VT_EINVAL and writes nothing; one that does
	 * not fit a full store gets VT_ENOSPC (see vt_commit_cb). A PUT that
	 * names no inbox and no user writes only its dedup entry (mode
	 * "offline" records a held event's (from, cid) that way), never a
	 * record without deliveries. With @check_base, a PUT that is not a
	 * duplicate writes only while @group is at version @base (see "Group
	 * versions" above): its recipients were taken from that version.
	 *
	 * Journal. With @journal set, a PUT that is not a duplicate also keeps
	 * one journal entry per inbox of @held_to, each holding @rec: copies
	 * the engine holds in memory for devices that keep up, durable all the
	 * same. An entry stays until a RELEASE of its (id, inbox); replay()
	 * turns whatever is left into deliveries to exactly those inboxes. A
	 * journaled PUT grows the store: a full one refuses it (VT_ENOSPC). A
	 * backend keeps the room each entry's replay takes, so a full store
	 * takes a PUT whose every inbox in @to holds an entry of that id (a
	 * held copy written as its device goes): replay would write it too.
	 *
	 * A full store takes a PUT of a VT_KIND_DELIVERED record as well, as
	 * it takes the receipts of ACKs (below): the engine makes one only
	 * for acks of copies it held, and nothing would ever make it again.
	 * With a journal, the RELEASEs of those copies commit with it and
	 * free more than it takes.
	 */
	VT_OP_PUT = 1,
	/*
	 * Remove the delivery (inbox, id). status VT_EUNKNOWNID if absent.
	 * One removed takes a journal entry of (id, inbox) with it (see
	 * VT_OP_PUT): the copy was acked, and a replay must not bring it back.
	 *
	 * Receipts. With @receipt_id set, an ACK that removes a delivery of a
	 * VT_KIND_MESSAGE record sent by another user than inbox.user owes the
	 * sender a "delivered" receipt, and the backend stores it in the same
	 * transaction, after the batch's other ops: a VT_KIND_DELIVERED record
	 * from inbox.user to the sender, cid "", time @ts, with the body
	 * {"device":DEVICE,"refs":[{"ref":"ID","cid":"CID"},...]} (DEVICE is
	 * inbox.device, ID the acked id in decimal, CID the acked record's),
	 * delivered as a PUT to users {sender} without cap or dedup would be.
	 * A full store takes it all the same: it comes with the ack that frees
	 * a delivery, and nothing else would ever make it.
	 *
	 * The refs of one batch's ACKs from one inbox to one sender share
	 * receipts, in op order, VT_RECEIPT_REFS_MAX refs at most each. The
	 * k-th receipt made for an inbox (from 0) takes the receipt_id of the
	 * k-th ACK op of that inbox with a receipt_id, and is reported on that
	 * op: out_receipt, with its new deliveries in out_to. Every ACK whose
	 * ref went into a receipt sets out_receipt_id to the receipt's id. A
	 * backend that makes no receipts leaves out_receipt_id 0; the engine
	 * then stores the receipt itself, in a later commit.
	 */
	VT_OP_ACK = 2,
	/*
	 * Register @inbox as a device of its user, or refresh it, with
	 * last-seen time @ts. A device registered for a user who had none
	 * claims the deliveries of the holding inbox. The holding device
	 * itself is never registered (VT_EINVAL).
	 */
	VT_OP_TOUCH = 3,
	/* Set VT_REC_NOTIFIED on the delivery (inbox, id); VT_EUNKNOWNID if absent. */
	VT_OP_NOTIFIED = 4,
	/*
	 * Store @data (@len bytes) as the state of group @group, at version
	 * @version; len 0 deletes it. With @check_base, only if the group is
	 * at version @base now (see "Group versions" above).
	 */
	VT_OP_GROUP = 5,
	/*
	 * Revoke the tokens of device @inbox issued at or before @ts (seconds
	 * since the epoch, not ms), or of every device of inbox.user when
	 * inbox.device is VT_ALL_DEVICES; the latter also forgets that user's
	 * single-device revocations up to @ts, which it covers. A scope keeps
	 * the latest @ts it was given. A revocation of every device, or a
	 * later @ts for a stored scope, is written on a full store too: a
	 * logout must not wait for acks to make room. A new single-device
	 * scope may be refused there (VT_ENOSPC), since users could add those
	 * without end and take the room acks need.
	 */
	VT_OP_REVOKE = 6,
	/*
	 * Forget the journal entry of record @id for @inbox (see VT_OP_PUT):
	 * its copy was acked or stored. One that does not exist is no error.
	 * A full store takes it: it frees room, as an ACK does.
	 */
	VT_OP_RELEASE = 7,
};

/* One operation of a batch. The backend fills the fields marked "out". */
struct vt_op {
	enum vt_op_kind kind;
	const struct vt_record *rec; /* PUT */
	const struct vt_inbox *to;   /* PUT: @nto inboxes, taken as they are */
	uint32_t nto;
	const char *const *users;    /* PUT: @nusers users, expanded to devices */
	uint32_t nusers;
	/* PUT: when set, also every other registered device of also_own->user
	 * (not also_own->device): a sender's copies of what it sent. */
	const struct vt_inbox *also_own;
	uint32_t dedup;        /* PUT: nonzero to check (from, cid) */
	/* PUT with @journal: an entry for each of these inboxes (see VT_OP_PUT) */
	uint32_t journal;
	const struct vt_inbox *held_to;
	uint32_t nheld_to;
	uint32_t inbox_cap;    /* PUT: 0 for no cap */
	/* PUT: nonzero: a full inbox is skipped (counted in out_skipped)
	 * rather than failing the op. Copies to also_own devices are always
	 * skipped when full. */
	uint32_t cap_skip;
	struct vt_inbox inbox; /* ACK, TOUCH, NOTIFIED, RELEASE */
	uint64_t id;           /* ACK, NOTIFIED, RELEASE */
	int64_t ts;            /* TOUCH; ACK with receipt_id: the receipt's time;
				  REVOKE: seconds */
	const char *group;     /* GROUP; PUT with check_base: the group posted to */
	const char *data;      /* GROUP */
	size_t len;            /* GROUP */
	uint64_t version;      /* GROUP: the new state's version, the change's id */
	/* GROUP, PUT: nonzero to apply the op only while @group is at version
	 * @base (0: the group does not exist); else status VT_ECONFLICT. */
	uint32_t check_base;
	uint64_t base;
	int status;            /* out: 0 or a negative vt_error */
	uint64_t dup_of;       /* out: PUT with dedup */

	/* out, PUT: every inbox that got a new delivery, for routing. Owned by
	 * the backend, valid until the batch's done callback returns. For a
	 * duplicate (dup_of set), a backend shared by several engines reports
	 * instead the inboxes that still owe record dup_of and were never
	 * notified: the commit that stored it may have timed out for its
	 * engine and been applied all the same, so nobody routed it (none when
	 * dup_of was stored by this batch, whose own op routes it). A backend
	 * that serves one engine leaves it empty: a commit it reports failed
	 * was not applied. */
	const struct vt_inbox *out_to;
	uint32_t out_nto;
	uint32_t out_skipped;
	uint32_t out_ndevices; /* out, TOUCH: the user's registered devices after it */

	/* out, for an ACK that found its delivery: what the record was, so
	 * the engine can tell its sender (a "delivered" receipt). */
	uint32_t acked_kind;
	char acked_from[VT_ID_MAX + 1];
	char acked_cid[VT_ID_MAX + 1];

	/* ACK: nonzero asks for the sender's receipt, made in the same
	 * transaction (see VT_OP_ACK): an id the receipt may take. */
	uint64_t receipt_id;
	/* out, ACK with receipt_id: the id of the receipt its ref went into;
	 * 0 for none (nothing removed, not a message, one's own message). */
	uint64_t out_receipt_id;
	/* out, ACK: the receipt reported on this op, with its deliveries in
	 * out_to; valid as out_to is. NULL for none. */
	const struct vt_record *out_receipt;
};

/*
 * Completion of a batch. @status is 0 when the batch is durable as the
 * backend promises (each op then has its own status), or a negative error
 * (VT_ENOSPC, VT_ESTORAGE) when nothing of the batch was written.
 *
 * A full store. A backend with a space limit must still take the ops that
 * free space. So when a batch would not fit, the ops that would grow the
 * store (a PUT that writes, a TOUCH registering a user's second or later
 * device, a GROUP) get the op status VT_ENOSPC and write nothing, and the
 * rest of the batch (ACK, NOTIFIED, refreshes, a user's first device with
 * its claim, duplicates found by dedup, a PUT of journaled copies: see
 * VT_OP_PUT) is committed with status 0. Only
 * when every op was refused does the batch fail as a whole (VT_ENOSPC).
 */
typedef void (*vt_commit_cb)(void *arg, int status);

/*
 * Completion of a listing: @n records in increasing id order, and 0, or a
 * negative error with n == 0.
 */
typedef void (*vt_list_cb)(void *arg, int status, const struct vt_record *recs, size_t n);

/* Completion of an expiry sweep: how many deliveries were removed. */
typedef void (*vt_expire_cb)(void *arg, int status, uint64_t removed);

/* What a backend tells of the (sender, client id) pairs it remembers. */
struct vt_storage_pairs {
	uint64_t kept;      /* pairs remembered now */
	uint64_t forgotten; /* pairs forgotten inside their window to make room, since open */
};

struct vt_storage_ops {
	/*
	 * Apply @n ops atomically, in order (a later op sees the effect of an
	 * earlier one, so two PUTs with the same (from, cid) in one batch
	 * dedup), then call @done exactly once. The ops array must stay valid
	 * until @done; the backend copies what it keeps.
	 */
	void (*commit)(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg);

	/*
	 * List up to @limit deliveries of @inbox with record id > @after, in id
	 * order, and call @done exactly once.
	 */
	void (*list)(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
	             vt_list_cb done, void *arg);

	/*
	 * Remove every delivery whose record was accepted before @before_ts
	 * (wall ms), at most @max of them; dedup entries older than the
	 * backend's dedup window at wall time @now_ts; and every device last
	 * seen before @device_before_ts, with all its deliveries, and every
	 * revocation (REVOKE) older than it. Call @done exactly once with the
	 * number of deliveries removed.
	 */
	void (*expire)(void *self, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
	               uint64_t max, vt_expire_cb done, void *arg);

	/*
	 * Call @each once per stored group with its state blob, then return 0
	 * or a negative error. Called once when an engine starts, before its
	 * loop runs, so it may block. May be NULL for a backend without groups.
	 */
	int (*load_groups)(void *self,
	                   void (*each)(void *arg, const char *group, const char *data, size_t len),
	                   void *arg);

	/*
	 * The largest record id ever stored, or 0. Called once when an engine
	 * starts, before its loop runs, so it may block.
	 */
	uint64_t (*max_id)(void *self);

	/* Release the backend. No call is pending when the engine calls it. */
	void (*destroy)(void *self);

	/*
	 * Optional (NULL: not offered). Answer at once, on the engine's
	 * thread, what a PUT of @rec with dedup would find among the commits
	 * whose callbacks have run (seeing later ones too does no harm): 1
	 * with *@id set when (rec->from, rec->cid) names another record
	 * within the dedup window, 0 when it names none, or a negative error
	 * when it cannot tell. Mode "offline" uses it to push a held event
	 * before its (from, cid) pair commits; a backend shared by several
	 * engines, whose pairs other engines write, must leave it NULL.
	 */
	int (*dedup_peek)(void *self, const struct vt_record *rec, uint64_t *id);

	/*
	 * Optional (NULL: not offered). Fill @out with the pairs kept now and
	 * those forgotten early since the backend opened. Called on the
	 * engine's thread at any time (a metrics page reads it), so it answers
	 * at once, without I/O.
	 */
	void (*pairs)(void *self, struct vt_storage_pairs *out);

	/*
	 * Call @each once per revocation stored by REVOKE ops (@scope's device
	 * is VT_ALL_DEVICES for one of every device; @ts in seconds), then
	 * return 0 or a negative error. Called once when an engine starts,
	 * before its loop runs, so it may block. Optional: an engine on a
	 * backend without it answers a logout with an error and revokes
	 * nothing; a backend that has it must take REVOKE ops.
	 */
	int (*load_revoked)(void *self,
	                    void (*each)(void *arg, const struct vt_inbox *scope, int64_t ts),
	                    void *arg);

	/*
	 * Optional (NULL: not offered). Turn every journal entry left (see
	 * VT_OP_PUT) into the delivery of its record to its inbox that a PUT
	 * without cap or dedup would make, forget the entry, and set *@events
	 * to how many there were; return 0 or a negative error. Called once when an engine
	 * starts, before its loop runs, so it may block. An engine holds
	 * events in memory in mode "always" only over a backend that has it;
	 * such a backend must take journaled PUTs and RELEASE ops.
	 */
	int (*replay)(void *self, uint64_t *events);
};

/* A storage backend: its ops and its own state. */
struct vt_storage {
	const struct vt_storage_ops *ops;
	void *self;
};

/*
 * Create the in-memory backend. Records and dedup entries live as long as the
 * backend; @dedup_window_ms bounds how long a (from, cid) pair is remembered,
 * measured on record timestamps, and at most 1,000,000 pairs are kept (the
 * oldest go first, with a warning in the log). Returns 0 and fills *@out, or VT_ENOMEM.
 * The caller owns *@out until it hands it to vt_engine_create(); to drop it
 * unused, call out->ops->destroy(out->self). Completes every call inside it.
 */
VT_EXPORT int vt_storage_memory_create(int64_t dedup_window_ms, struct vt_storage *out);

/*
 * The layout of the LMDB stores this library writes. It opens a store of an
 * older layout and converts it at open; it refuses one of a newer layout.
 */
#define VT_LMDB_FORMAT 7

/* Options of the LMDB backend; zero fields take the documented defaults. */
struct vt_lmdb_options {
	const char *path;        /* directory, created if missing (required) */
	uint64_t map_size;       /* bytes of the memory map; default 1 GiB,
	                            at least 1 MiB. What would grow the store
	                            is refused (VT_ENOSPC) once less than a
	                            sixteenth (at least 256 KiB) is free, so
	                            acks can always run. The data file's disk
	                            blocks are reserved ahead of use, so a full
	                            disk limits the store the same way */
	int64_t dedup_window_ms; /* default 7 days */
	int no_sync;             /* nonzero: skip fsync (survives a crash of the
	                            process, not of the machine) */
	int writer_thread;       /* nonzero: commit on a thread of the backend's
	                            own (see vt_storage_lmdb_fd) */
};

/*
 * Open (or create) the LMDB backend at @opts->path. @opts is read during the
 * call only. Returns 0 and fills *@out (owned as for the memory backend),
 * VT_EINVAL, VT_EBUSY when another open store (of this process or another)
 * holds the directory, or VT_EIO, with the reason logged. One store at a
 * time may use a directory: it holds an exclusive flock(2) on the directory
 * itself until destroyed (a process that forks hands the lock on to the
 * child too, until the child closes its descriptors or exits). Completes
 * every call inside it, after fsync unless @opts->no_sync, unless
 * @opts->writer_thread (below). The (sender, client id) pairs are found
 * through an index in memory, 16 to 32 bytes a pair kept, read from the
 * store at open; they hold at most half of the map, each counted at 64
 * bytes or more, so the index stays under about a quarter of the map size.
 */
VT_EXPORT int vt_storage_lmdb_open(const struct vt_lmdb_options *opts, struct vt_storage *out);

/*
 * The writer thread. With @opts->writer_thread, commit and expire return at
 * once and a thread of the backend writes them, in the order they came:
 * the commits it finds waiting are written as one transaction, with one
 * fsync, while the caller's loop goes on taking the next batch. Give the
 * engine more than one commit in flight (commits_in_flight) to let a batch
 * go while the one before it syncs. Listings still run inside the call,
 * and show exactly the commits whose callbacks have run.
 *
 * Callbacks never run on the writer thread: the host watches the
 * descriptor vt_storage_lmdb_fd() for reading and, when it is readable,
 * calls vt_storage_lmdb_dispatch() on the engine's thread, which runs the
 * callbacks of everything finished, in order. A log sink (log.h) is then
 * called from the writer thread too. As with any asynchronous storage,
 * let the loop run after vt_engine_shutdown() until vt_engine_idle()
 * before vt_engine_destroy(); destroying the backend waits for the thread
 * to finish what it was given.
 */

/* The eventfd to watch, for @st opened with a writer thread; otherwise -1. */
VT_EXPORT int vt_storage_lmdb_fd(const struct vt_storage *st);

/*
 * Run the callbacks of every commit and sweep the writer has finished, in
 * order, and return how many ran. Call it on the engine's thread, never
 * from inside a callback. Harmless when nothing is ready, and for a
 * storage without a writer thread (0).
 */
VT_EXPORT int vt_storage_lmdb_dispatch(const struct vt_storage *st);

#ifdef __cplusplus
}
#endif

#endif /* VARTALAP_STORAGE_H */
