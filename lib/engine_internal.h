/*
 * engine_internal.h - the engine's own structures, shared by its files.
 *
 * Internal. engine.c: lifetime, config, timers. batch.c: write batches and
 * what happens when they complete. route.c: taking client events (messages,
 * reads, typing, group changes). conn.c: connected devices and their push
 * queues. inflight.c: the retry deadlines. msg.c: shared, reference-counted
 * events. requests.c: REST send, sync, ack and group reads. notify.c: the
 * push hook. stale.c: group posts waiting for a fresh copy of their group.
 * receipts.c: "delivered" receipts, gathered over a turn. hold.c: mode
 * "offline", events held in memory for devices keeping up. senders.c:
 * the rate of REST senders, per user. revoke.c: logouts, the tokens they
 * revoked.
 */
#ifndef VARTALAP_ENGINE_INTERNAL_H
#define VARTALAP_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vartalap/engine.h>
#include <vartalap/notifier.h>

#include "buf.h"
#include "envelope.h"
#include "groups.h"
#include "log_limit.h"
#include "map.h"
#include "pool.h"
#include "slab.h"
#include "tally.h"
#include "receipts.h"

/*
 * An event in memory. Its body is held once, however many queues refer to
 * it. rec.id is 0 until the event has an id.
 */
struct vt_msg {
	uint32_t refs;
	struct vt_record rec;
	char *frame;      /* the envelope as pushed, made once for every recipient:
			     in the room after the text, unless it outgrew it */
	size_t frame_len;
	size_t text_len;  /* of text[], which the frame's room follows */
	struct vt_park *park; /* its PUT, waiting for acks (park.c); else NULL */
	char text[];      /* from, to, cid (NUL-terminated), then the body; then
			     room for the frame, as long as the text and 128 */
};

struct vt_msg *vt_msg_new(uint32_t kind, const char *from, const char *to, const char *cid,
			  int64_t ts, const char *body, size_t body_len);
struct vt_msg *vt_msg_ref(struct vt_msg *m);

/* The envelope that pushes @m, encoded on first use; NULL when out of memory. */
const char *vt_msg_frame(struct vt_msg *m, size_t *len);
void vt_msg_unref(struct vt_msg *m);

/* One event owed to a connected device, in its queue. */
struct vt_item {
	struct vt_msg *msg;
	struct vt_conn *conn;
	struct vt_item *next;  /* queue order: increasing id */
	uint64_t deadline;     /* monotonic ms of the next retry, while pushed */
	uint32_t attempts;     /* pushes so far; 0 = waiting */
	uint32_t notified;     /* the push hook was called for this delivery */
	uint32_t held;         /* in memory only, nothing stored for this device,
				  written if it goes offline (hold.c); the bytes
				  it counts in stats.held_bytes (0: not held) */
	uint32_t journaled;    /* held with a journal entry to release (journal.c) */
	uint32_t timer;        /* 1 + its list in struct vt_timers; 0: on none */
	struct vt_item *tprev, *tnext; /* on that list */
};

/* The most retries a configuration may ask for. */
#define VT_RETRIES_MAX 100

/* An item's attempt is 1 to VT_RETRIES_MAX + 1 while it waits for its ack. */
#define VT_TIMER_LISTS (VT_RETRIES_MAX + 1)

/*
 * The pushed, un-acked items by deadline (inflight.c): one list per attempt
 * number, since each attempt waits a fixed delay (the backoff) from a clock
 * that never goes back, so appending keeps every list in deadline order.
 * Adding and removing take O(1); the earliest is the earliest list head.
 */
struct vt_timers {
	struct vt_item *head[VT_TIMER_LISTS];
	struct vt_item *tail[VT_TIMER_LISTS];
	uint64_t busy[(VT_TIMER_LISTS + 63) / 64]; /* a bit per list not empty */
};

/* Put @it, its deadline and attempts set, on its list. */
void vt_timers_add(struct vt_timers *t, struct vt_item *it);
/* Take @it off its list, if it is on one. */
void vt_timers_remove(struct vt_timers *t, struct vt_item *it);
/* The item of the earliest deadline, or NULL. */
struct vt_item *vt_timers_first(const struct vt_timers *t);
/* Is @it the item of the earliest deadline? Cheap unless it heads its list. */
int vt_timers_is_first(const struct vt_timers *t, const struct vt_item *it);

/* A token bucket: @rate a second, as a burst of as many. */
struct vt_bucket {
	double tokens;
	uint64_t at;   /* monotonic ms of the last refill; 0: never used */
};

/* Take one token; 0 when the bucket is empty. A rate of 0 means no limit. */
int vt_bucket_take(struct vt_bucket *b, uint32_t rate, uint64_t now);

/* The tokens @b holds at @now, refilled at @rate (at most @rate); @b is used. */
double vt_bucket_level(const struct vt_bucket *b, uint32_t rate, uint64_t now);

/* A user with at least one connection; its name is the key in e->users. */
struct vt_user {
	struct vt_conn *conns;  /* one per device, linked by sib */
	uint32_t nconns;
	uint32_t ndevices;      /* registered devices, as the last TOUCH said */
};

/*
 * A connection: one device of one user, with the queue of what is owed to
 * it. The queue holds at most 2 * window items; what does not fit stays in
 * storage (backlog) and is fetched as acks make room.
 */
struct vt_conn {
	struct vt_engine *e;
	uint64_t serial;              /* names the connection in logs */
	const struct vt_transport_ops *ops;
	void *ctx;
	struct vt_identity id;
	struct vt_inbox inbox;
	struct vt_user *user;         /* NULL once detached */
	struct vt_conn *sib;          /* next connection of the same user */
	struct vt_conn *prev, *next;  /* all connections */
	int64_t since_ms;             /* host->wall_ms at open: of two nodes' connections
					 of one device, the newer stays */

	struct vt_item *head, *tail;
	struct vt_item *unpushed; /* the first never pushed: every item before it
				     was, as pushes go in queue order */
	uint32_t nqueued, npushed;
	uint64_t cursor;      /* highest id taken into the queue */
	uint64_t backlog_gen; /* bumped whenever an event is left in storage */
	uint64_t fetch_gen;   /* backlog_gen when the list call started */
	uint64_t fetch_after; /* the id it listed after */
	uint64_t rewind_after; /* the next listing from below the cursor goes on after this id */
	uint32_t fetch_want;  /* how many it asked for */
	uint32_t remote_acks; /* acks another node took while a listing was pending */
	uint32_t owed;        /* events taken from it and not answered yet */
	uint64_t remote_id;   /* the last of them */
	uint32_t refs;        /* pending storage calls that will come back here */
	unsigned backlog : 1;   /* storage may hold owed events above cursor */
	unsigned fetching : 1;  /* a list call is pending */
	unsigned list_failed : 1; /* the last listing failed: the next waits for the sweep */
	unsigned list_warned : 1; /* that failure was logged; cleared by one that works */
	unsigned touching : 1;  /* the device's registration is not committed yet */
	unsigned rewind : 1;    /* the next listing starts below the cursor */
	unsigned rewinding : 1; /* the pending listing did */
	unsigned blocked : 1;   /* the transport said VT_EAGAIN */
	unsigned closing : 1;   /* ops->close was called: send nothing more */
	unsigned replaced : 1;  /* closed because the same device connected again */
	unsigned gone : 1;      /* vt_conn_close was called: free once refs is 0 */

	struct vt_bucket typing; /* rate limit of typing events */
	struct vt_bucket events; /* rate limit of everything but acks */
};

/* Where the answer to a taken event goes: a connection, or a callback. */
struct vt_origin {
	struct vt_conn *conn;  /* holds a reference */
	int owed;              /* counted in conn->owed: an event it sent */
	vt_reply_fn reply;
	void *arg;
};

/* A REST ack in progress: its ids are answered together. */
struct vt_ackreq {
	uint32_t left;
	int failed;          /* a storage error, answered instead of the lists */
	struct vt_buf acked, unknown;
	vt_reply_fn reply;
	void *arg;
};

/* A REST listing waiting for its device's registration to commit. */
struct vt_fetchreq {
	struct vt_engine *e;
	struct vt_identity id;
	uint64_t after;
	uint32_t limit;
	vt_reply_fn reply;
	void *arg;
};

enum vt_pend_kind {
	VT_PEND_ACCEPT,   /* a client's event: answer, then route */
	VT_PEND_STORE,    /* an event already answered (a receipt): store, route */
	VT_PEND_OFFLINE,  /* an event held in memory goes to storage */
	VT_PEND_ACK,      /* a delivery acked */
	VT_PEND_TOUCH,    /* a device seen */
	VT_PEND_NOTIFIED, /* the push hook was called for a delivery */
	VT_PEND_GROUP,    /* a group's new state */
	VT_PEND_ECHO,     /* a re-sent group change, answered once the first commits */
	VT_PEND_REVOKE,   /* a logout: user and device name its scope */
	VT_PEND_RELEASE,  /* a journal entry forgotten: id names it */
};

/*
 * The bytes of a journaled PUT's devices and their names that a block of
 * the engine's pool holds: one device with the longest names, or two with
 * shorter ones. More take an allocation of their own.
 */
#define VT_HELD_BLOCK 256

/*
 * A device given a journaled copy of a held event (mode "always", journal.c).
 * Its names lie in the same allocation as the op's array of devices.
 */
struct vt_dev {
	const char *user;
	const char *device;
	uint8_t offered; /* vt__hold() queued the copy on its connection */
	uint8_t settled; /* acked, or never offered, while its PUT waited for
			    acks (park.c): it takes no entry */
};

/* One op of a batch, with what the engine does when it completes. */
struct vt_pend {
	enum vt_pend_kind kind;
	struct vt_msg *msg;
	struct vt_origin origin;
	struct vt_ackreq *ackreq;
	struct vt_fetchreq *fetchreq;
	char user[VT_TO_MAX + 1];    /* the inbox, the acker, or the group id */
	char device[VT_ID_MAX + 1];
	uint64_t id;                 /* ACK, NOTIFIED; GROUP: the new state's version */
	uint64_t receipt_id;         /* ACK: storage makes the receipt, with this id */
	int64_t ts;                  /* ACK: when it was taken, the receipt's time;
					REVOKE: seconds, the last revoked iat */

	/* GROUP, and a PUT to a group: with a cluster (check_base), the group
	 * version the op was derived from, which the shared store checks */
	uint64_t base;

	/* PUT: recipients, and the sender's inbox for its own copies. The
	 * first nusers are stored, the nheld after them held in memory (mode
	 * "offline", see hold.c). users NULL: the one recipient is the
	 * message's own "to" (its text holds it). */
	char (*users)[VT_ID_MAX + 1];
	uint32_t nusers;
	uint32_t nheld;

	/* PUT with journal: the devices of the held copies, one entry each,
	 * their names after them in one allocation; next_dev: where
	 * vt__journal_dev looks first */
	struct vt_dev *held_to;
	uint32_t nheld_to;
	uint32_t next_dev;

	/* ECHO: the client id of the re-sent change (user is the group id), and
	 * its sender. ACK: origin_user is the user its receipt goes to, when
	 * known (early.c) */
	char cid[VT_ID_MAX + 1];
	char origin_user[VT_ID_MAX + 1];

	/* GROUP: the new state, and the old one to restore if the batch fails */
	char *blob;
	size_t blob_len;
	char *undo;                  /* NULL: the group did not exist */
	size_t undo_len;

	/* Flags, packed: a batch holds thousands of these. */
	unsigned local : 1;      /* ACK: a connection here held the delivery */
	unsigned indexed : 1;    /* ACK: in the engine's acking index */
	unsigned check_base : 1; /* GROUP, PUT to a group: the store checks base */
	unsigned retried : 1;    /* a group post taken again after a conflict */
	unsigned own_copies : 1; /* PUT: user/device name the sender's inbox */
	unsigned hold_own : 1;   /* PUT: the sender's other devices' copies are held */
	unsigned late : 1;       /* STORE: counted in e->late until it completes */
	unsigned noted : 1;      /* PUT: counted in e->behind and e->sending (early.c) */
	unsigned early : 1;      /* PUT: held copies were pushed before the commit */
	unsigned cap_skip : 1;   /* PUT: a full inbox is skipped, not an error */
	unsigned journal : 1;    /* PUT: its held copies are journaled (journal.c) */
	unsigned release : 1;    /* OFFLINE, STORE: written held copies whose journal
				    entries are released once it commits */
	unsigned rewrite : 1;    /* OFFLINE: a refused write tried again (journal.c) */
	unsigned dedup : 1;      /* PUT: storage checks (from, cid) */
	unsigned fell : 1;       /* PUT: sent back to the batch from its ride; its
				    users count as late until it completes (park.c) */
	unsigned held_pooled : 1; /* PUT: held_to is a block of e->held_blocks */
};

/*
 * A held copy whose write was refused (journal.c): its entry is kept, and
 * the write is tried again.
 */
struct vt_unwritten {
	struct vt_unwritten *next;
	struct vt_msg *msg;
	char user[VT_ID_MAX + 1];
	char device[VT_ID_MAX + 1];
};

/*
 * Mode "always": a held one-to-one event pushed at its take, whose PUT
 * waits out of the batches for the acks of its copies (park.c).
 */
struct vt_park {
	struct vt_pend pend;          /* the PUT, as taken */
	uint64_t due;                 /* monotonic ms: it goes to a batch then */
	uint64_t pair;                /* hash of its (from, cid) */
	uint32_t left;                /* copies offered and not acked */
	int riding;                   /* its copies wait for a batch (a rider) */
	struct vt_park *prev, *next;  /* every waiting PUT: offered by due, or riding */
	struct vt_park *same;         /* the next in its bucket of e->park_by */
	struct vt_park *older, *newer; /* in its bucket of e->park_from, by id */
};

/* Buckets of the waiting PUTs by (from, cid): a power of two. */
#define VT_PARK_BUCKETS 4096

/*
 * A group post that met a newer state of its group in the store, or that
 * came while such a post waited: it waits for the fresh copy of the group,
 * then is taken again (see stale.c).
 */
struct vt_waiting_post {
	struct vt_waiting_post *next;
	struct vt_msg *msg;          /* as first taken; holds from, to (the group), cid */
	struct vt_origin origin;
	char device[VT_ID_MAX + 1];  /* the sender's */
	int retried;                 /* it met a conflict already: once is all */
};

/*
 * An event offered when the batch it rides on completes, right after its
 * first @at ops: after everything taken before it, so it keeps its place in
 * id order. Mode "offline": a receipt held without any write. Mode
 * "always": a parked PUT's copies (@park), whose users had events ahead.
 */
struct vt_rider {
	struct vt_msg *msg;
	size_t at;
	int park;
};

struct vt_batch {
	struct vt_pend *pend;
	struct vt_op *ops;
	struct vt_inbox *inboxes;    /* one per op: its inbox, also its own-copies inbox */
	const char **uptr;           /* user pointers of every PUT, back to back */
	struct vt_inbox *held;       /* the journaled copies of every PUT, back to back */
	size_t len, cap;
	size_t ops_cap;              /* ops has room for this many */
	struct vt_rider *riders;     /* in the order they were taken */
	size_t nriders, riders_cap, riders_done;
	uint32_t ngroups;            /* GROUP pends: 0 skips their walks at completion */

	/* once handed to storage */
	struct vt_engine *e;
	uint64_t flushed_at;         /* monotonic ms it went to storage */
	uint64_t last_id;            /* the last id taken when it went */
	int done;                    /* storage completed it; status is its answer */
	int status;
};

struct vt_engine {
	struct vt_engine_config cfg;
	struct vt_host host;
	struct vt_storage st;
	struct vt_notifier notifier; /* ops NULL: none */
	struct vt_cluster cluster;   /* ops NULL: a single node */

	struct vt_map users;     /* user id -> struct vt_user * (connected users) */
	struct vt_map acking;    /* ACK ops not completed: "<id> <user> <device>" -> count */
	uint64_t acking_unindexed; /* ACK ops the index could not take (out of memory) */
	struct vt_map late;      /* user id -> held events being stored after all
				    (hold.c), a count in the pointer */
	struct vt_tally behind;  /* by user: events it gets when their batch completes */
	struct vt_tally sending; /* by (from, cid): events taken, not committed (early.c) */
	uint32_t behind_all;     /* ACKs whose receipt goes to a user not known yet */
	uint64_t id_durable;     /* an id no higher than the highest stored (early.c) */
	int ids_skipped;         /* this start skipped ids for those (early.c) */
	struct vt_map changing;  /* group id -> its changes not yet committed, a count */
	struct vt_parked *parked; /* changes waiting for those (group_queue.c) */
	uint32_t nparked;
	struct vt_map parked_by;  /* sender user id -> its events waiting, a count */
	struct vt_map senders;   /* user id -> struct vt_bucket *: REST sends of
				    about the last second (senders.c) */
	struct vt_map revoked;   /* scope -> struct vt_revoked *: logouts (revoke.c) */
	struct vt_map revoked_devices; /* user id -> its single-device scopes (revoke.c) */
	struct vt_map revoking;  /* user id -> its single-device logouts being written */
	struct vt_conn *conns;   /* every open connection */
	struct vt_timers timers;
	struct vt_pool items;    /* of struct vt_item: one per delivery queued */
	struct vt_pool held_blocks; /* of VT_HELD_BLOCK bytes: a journaled PUT's
				       devices (journal.c) */
	struct vt_slab conn_slab; /* of struct vt_conn */
	struct vt_groups groups;
	struct vt_waiting_post *waiting; /* in the order they were taken */
	uint32_t nwaiting;
	struct vt_unwritten *unwritten; /* held copies to write again (journal.c) */
	struct vt_park *park_head, *park_tail; /* PUTs waiting for acks, by due (park.c) */
	struct vt_park *ride_head, *ride_tail; /* PUTs whose copies wait for a batch */
	struct vt_park **park_by;     /* the same by (from, cid): VT_PARK_BUCKETS */
	struct vt_park **park_from;   /* the newest of them by sender: VT_PARK_BUCKETS */
	uint32_t nunwritten;
	struct vt__log_limit unwritten_log; /* refused writes: one line a second */

	struct vt_batch cur;     /* taking ops this turn */
	/* The arrays of a completed batch, for the next (batch.c): a batch of
	 * thousands of ops would otherwise grow and fault in a megabyte anew. */
	struct vt_pend *spare_pend;
	size_t spare_pend_cap;
	struct vt_op *spare_ops;
	size_t spare_ops_cap;
	struct vt_receipts receipts; /* gathered this turn, put into cur by the flush */
	/* handed to storage, oldest first, completed in that order: a ring
	 * of nflight batches from flight[head] */
	struct vt_batch flight[VT_COMMITS_MAX];
	uint32_t flight_head, nflight;
	int flush_asked;
	int destroying;          /* completions still coming are dropped */
	uint64_t committed_id;   /* every id up to this one is committed */

	uint64_t next_id;
	uint64_t conn_serial;    /* the last connection's serial */
	uint64_t next_sweep;     /* monotonic ms: token expiry check */
	uint64_t next_expire;    /* monotonic ms: offline expiry sweep */
	int expire_due;          /* the sweep waits for its touches to go to storage */
	int expiring;
	uint32_t pending_calls;  /* storage calls not yet completed */

	/* The clocks read once per call from the host (vt__clock_hold). */
	uint64_t clock_ms;
	int64_t clock_wall_ms;
	uint32_t clock_holds;    /* calls into the engine now running, nested */
	unsigned clock_read : 1; /* clock_ms holds this outermost call's reading */
	unsigned clock_wall_read : 1; /* clock_wall_ms too */

	int shutting_down;
	int healthy;
	int health_err;          /* the last batch's status */
	struct vt__log_limit batch_log; /* failed batches: one line a second */
	struct vt__log_limit revoke_log; /* logouts not written: one line a second */
	struct vt_engine_stats stats;
	struct vt_buf out;       /* scratch for encoding */
	struct vt_env *spare_env; /* for the next envelope decoded: one is over 2 KiB */
};

/*
 * Copy @src into @dst of @size bytes, cut to fit: snprintf "%s" without its
 * cost. Returns the length copied.
 */
static inline size_t vt__copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

/* engine.c */
/*
 * The monotonic clock and the wall clock in ms. Between vt__clock_hold()
 * and its vt__clock_release() each is read once and then stands still.
 */
uint64_t vt__now(struct vt_engine *e);
int64_t vt__wall(struct vt_engine *e);
void vt__clock_hold(struct vt_engine *e);
void vt__clock_release(struct vt_engine *e);
/* Held clocks are read again at their next use: what follows came later. */
void vt__clock_renew(struct vt_engine *e);
uint64_t vt__new_id(struct vt_engine *e);
void vt__timers_changed(struct vt_engine *e);
void vt__expire_start(struct vt_engine *e);
void vt__reply(struct vt_engine *e, struct vt_origin *o, int status, const char *json,
	       size_t len);
void vt__reply_error(struct vt_engine *e, struct vt_origin *o, int err, const char *reason,
		     const char *ref);
void vt__reply_accepted(struct vt_engine *e, struct vt_origin *o, const char *cid, uint64_t id,
			int64_t ts);
void vt__origin_release(struct vt_origin *o);

/* acking.c: the ACK ops of the batches not completed, by (inbox, id). */
/* Index the ACK op @p, taken into the current batch. */
void vt__acking_add(struct vt_engine *e, struct vt_pend *p);
/* Forget @p, its batch being freed; any other kind of op is ignored. */
void vt__acking_drop(struct vt_engine *e, const struct vt_pend *p);
/* Is an ack of (@in, @id) taken but not committed yet (in any batch)? */
int vt__batch_acking(const struct vt_engine *e, const struct vt_inbox *in, uint64_t id);

/* batch.c */
/* Ask the host for a flush, once until it comes. */
void vt__want_flush(struct vt_engine *e);
struct vt_pend *vt__batch_add(struct vt_engine *e, enum vt_pend_kind kind);
struct vt_pend *vt__batch_put(struct vt_engine *e, enum vt_pend_kind kind, struct vt_msg *m);
void vt__batch_touch(struct vt_engine *e, const struct vt_identity *id, struct vt_conn *c,
		     struct vt_fetchreq *f);
void vt__batch_notified(struct vt_engine *e, const char *user, const char *device, uint64_t id);
void vt__batch_free(struct vt_engine *e, struct vt_batch *b);
/* Free the arrays kept for the next batch. */
void vt__batch_spares_free(struct vt_engine *e);
void vt__batch_abandon(struct vt_engine *e, struct vt_batch *b);

/* requests.c: refuse a request that cannot be served now (answered); 0 to go on */
int vt__request_refused(struct vt_engine *e, const struct vt_identity *id, vt_reply_fn reply,
			void *arg);

/* revoke.c */
/* Read the stored logouts, at start; 0 or a storage error. */
int vt__revoked_load(struct vt_engine *e);
/* Forget logouts older than @device_before_ms, as storage forgets them. */
void vt__revoked_expire(struct vt_engine *e, int64_t device_before_ms);
void vt__revoked_free(struct vt_engine *e);
/* A logout's op completed: keep it, close what it revoked, answer. */
void vt__revoke_done(struct vt_engine *e, struct vt_pend *p, int status, const struct vt_op *op);

/* route.c */
void vt__take_event(struct vt_engine *e, const struct vt_identity *from, const char *data,
		    size_t len, struct vt_origin origin);
/* A group change that waited (group_queue.c), taken now without a rate check. */
void vt__take_parked(struct vt_engine *e, const struct vt_identity *from, const char *data,
		     size_t len, struct vt_origin origin);
void vt__ack_ids(struct vt_engine *e, struct vt_conn *origin_conn, const struct vt_identity *who,
		 const uint64_t *ids, uint32_t n, struct vt_ackreq *req);
void vt__route(struct vt_engine *e, struct vt_msg *m, const struct vt_inbox *to, uint32_t n);

/*
 * @m was a duplicate of record @id, and storage reported @to, the inboxes
 * that still owe @id unnotified: the commit that stored it may have been
 * reported failed (a timeout after which a shared store applied it), and
 * so never routed. Wake them as vt__route() would, listing @id from the
 * store where a connection here holds the inbox.
 */
void vt__route_dup(struct vt_engine *e, const struct vt_msg *m, uint64_t id,
		   const struct vt_inbox *to, uint32_t n);

/* The @i-th recipient of PUT @p (stored ones first, then held ones). */
static inline const char *vt__pend_user(const struct vt_pend *p, uint32_t i)
{
	return p->users != NULL ? p->users[i] : p->msg->rec.to;
}

/* route.c: copy @n recipients into PUT @p; 0 or VT_ENOMEM. */
int vt__pend_set_users(struct vt_pend *p, const char *const *users, uint32_t n);

/* hold.c */
/* Mode "offline": may what @from sends be held in memory at all? */
int vt__hold_possible(const struct vt_engine *e, const struct vt_conn *from);

/*
 * Split the recipients of PUT @p, sent from connection @from: those whose
 * devices all keep up are held, the others stored; so are the copies to
 * the sender's other devices.
 */
void vt__hold_split(struct vt_engine *e, struct vt_pend *p, const struct vt_conn *from);

/* Do the users @p holds copies for all keep up still, its sender's other
 * devices too (its origin connection still open)? */
int vt__hold_still_clear(const struct vt_engine *e, const struct vt_pend *p);

/* The PUT @p, with held recipients, committed: offer them, or store them now. */
void vt__hold(struct vt_engine *e, struct vt_pend *p);

/*
 * Offer @m, held, to every device of @u but @skip.
 *
 * An offer may end a connection (its token expired, its output stalled),
 * and the copies it held are then written by ops added to the current
 * batch, whose array may move, and its user may go: a caller that offers
 * an op of the current batch finds it again by its index after each offer,
 * and its users by name.
 */
void vt__hold_offer(struct vt_user *u, const struct vt_conn *skip, struct vt_msg *m);

/* Offer the held event of op @at of the array *@ops to the devices of @u
 * but @skip; when it is journaled, only to those named in it, each marked
 * offered or not. */
void vt__hold_offer_copies(struct vt_pend *const *ops, size_t at, struct vt_user *u,
			   const struct vt_conn *skip);

/* A STORE that vt__hold() queued completed: its users may be held for again,
 * and their devices list what was stored behind it. */
void vt__hold_stored(struct vt_engine *e, struct vt_pend *p);

/* Is an event held for @user on its way to storage after all (vt__hold)?
 * Nothing later reaches @user's devices before it does. */
int vt__hold_late(const struct vt_engine *e, const char *user);

/* An older event of @user's is on its way to storage after all, as a late
 * store is (journal.c: a copy the store refused); vt__hold_late_done() once
 * it is stored or given up. */
void vt__hold_late_begin(struct vt_engine *e, const char *user);
void vt__hold_late_done(struct vt_engine *e, const char *user);

/*
 * Hold receipt @m (with its id) for its recipient, whose devices all keep
 * up. Mode "offline": it has no client id, so nothing is written first; it
 * is offered once what was taken before it completes. Mode "always": it is
 * journaled, and offered once that commits. Returns 1 when held; 0 when
 * the caller stores it.
 */
int vt__hold_receipt(struct vt_engine *e, struct vt_msg *m);

/*
 * Mode "offline": would a receipt to @user be held rather than written, its
 * devices all keeping up? Then an ack owing one asks storage for none.
 */
int vt__hold_receipt_likely(const struct vt_engine *e, const char *user);

/* Ride @m on the last batch (@park: a parked PUT's copies): 1; 0 when no
 * batch is pending; VT_ENOMEM. */
int vt__hold_rider(struct vt_engine *e, struct vt_msg *m, int park);

/* Offer the riders of @b taken before its first @done ops; @b completed that far. */
void vt__hold_ride(struct vt_engine *e, struct vt_batch *b, size_t done);

/* journal.c */
/* Does mode "always" hold events, journaled, on this engine's store? */
int vt__journal_on(const struct vt_engine *e);
/*
 * PUT @p holds copies (vt__hold_split): name in it the devices that get
 * them, the connected ones of its held users and of its sender but @from's
 * (NULL: none). 0, or VT_ENOMEM with nothing held after all.
 */
int vt__journal_devices(struct vt_engine *e, struct vt_pend *p, const struct vt_conn *from);

/* Free what vt__journal_devices() gave @p, if anything; none are left. */
void vt__journal_devices_free(struct vt_engine *e, struct vt_pend *p);
/* The device of @p's journaled copies that @c stands for, or NULL. */
struct vt_dev *vt__journal_dev(struct vt_pend *p, const struct vt_conn *c);
/* Queue the release of the entry of record @id for (@user, @device). */
void vt__journal_release(struct vt_engine *e, uint64_t id, const char *user, const char *device);
/* Release the entries of @p's copies that vt__hold() did not offer. */
void vt__journal_unoffered(struct vt_engine *e, struct vt_pend *p);
/* OFFLINE or STORE @p, with release, completed (@ok: written): release the
 * entries of the held copies it wrote, or keep them to write again. */
void vt__journal_written(struct vt_engine *e, struct vt_pend *p, int ok);
/* Try again the writes of held copies that were refused; each sweep calls it. */
void vt__journal_rewrite(struct vt_engine *e);
/* Forget the copies still to write again; their entries stay for the next start. */
void vt__journal_unwritten_free(struct vt_engine *e);
/* The release of @id's entry for @who's device when it is the op taken
 * last (an ack just queued it), with no request waiting on it yet; NULL
 * otherwise. Valid until the next op is taken. */
struct vt_pend *vt__journal_queued(struct vt_engine *e, uint64_t id,
				   const struct vt_identity *who);
/* A release completed: the entry is gone, unless @status is an error. */
void vt__journal_release_done(struct vt_engine *e, const struct vt_pend *p, int status);
/* At start: deliver what the last run left journaled; 0 or a storage error. */
int vt__journal_replay(struct vt_engine *e);

/* early.c */
/*
 * PUT @p was just taken (after vt__hold_split), the last op of the current
 * batch: push its held copies now if that is safe (mode "offline" with
 * push_before_commit; mode "always" with ack_wait_ms, which then parks the
 * PUT), and count what it still owes until vt__early_done(), which its
 * completion and its release both call. Returns the op, where it lives now.
 */
struct vt_pend *vt__early_take(struct vt_engine *e, struct vt_pend *p);
/* At start, next_id read from storage: leave room for ids pushed early. */
void vt__early_ids(struct vt_engine *e);
/* Event @id committed. */
void vt__early_committed(struct vt_engine *e, uint64_t id);
/*
 * @p, taken without vt__early_take (a receipt), delivers to its users when
 * its batch completes: count them behind until vt__early_done(). An ACK
 * asking storage for a receipt counts the user it goes to, named in
 * origin_user, or, when the acked event is not known here, every user.
 */
void vt__early_note(struct vt_engine *e, struct vt_pend *p);
/* An event for @user rides on a batch (@delta 1), or was offered (-1). */
void vt__early_behind(struct vt_engine *e, const char *user, int delta);
/* Parked @p's copies ride no longer: uncount its users, and push its copies. */
void vt__early_ride(struct vt_engine *e, struct vt_pend *p);
/* Hash of @rec's (from, cid), as the tallies and the parked PUTs know it. */
uint64_t vt__early_pair(const struct vt_record *rec);
/* The tallies early.c needs: 0 or VT_ENOMEM. */
int vt__early_init(struct vt_engine *e);
void vt__early_free(struct vt_engine *e);
void vt__early_done(struct vt_engine *e, struct vt_pend *p);

/* park.c */
/* Buckets for the parked PUTs, with ack_wait_ms in mode "always": 0 or VT_ENOMEM. */
int vt__park_init(struct vt_engine *e);
/* Free the buckets; nothing may be parked (vt__park_all_out). */
void vt__park_free(struct vt_engine *e);
/*
 * Park PUT @p, the last op of the current batch: it leaves the batch, to
 * come back when its copies are acked or at its due time. Its copies were
 * pushed (early.c), or with @ride they are pushed when the last batch
 * completes, after the events ahead of them. Returns where @p lives now: in
 * its park, or still in the batch if it could not be parked.
 */
struct vt_pend *vt__park(struct vt_engine *e, struct vt_pend *p, int ride);
/* The batch that parked @m's copies rode on completed (vt__hold_ride). */
void vt__park_ride(struct vt_engine *e, struct vt_msg *m);
/* @who acked its copy of parked @m over a WebSocket: 1 when that settles the
 * copy (no entry, no release); 0 when @m is not parked. */
int vt__park_acked(struct vt_engine *e, struct vt_msg *m, const struct vt_identity *who);
/* Anything else about @m's copies (a release, a write): its PUT, if parked,
 * goes to the current batch first, entries and all. */
void vt__park_out(struct vt_engine *e, struct vt_msg *m);
/* An event with @rec's (from, cid) is about to be taken: a parked PUT with
 * the same pair goes to the batch first, so that storage sees it first. */
void vt__park_resent(struct vt_engine *e, const struct vt_record *rec);
/* PUT @p, sent back to the batch from its ride (fell), completes: its users
 * are no longer late on its account. */
void vt__park_fell_done(struct vt_engine *e, struct vt_pend *p);
/*
 * PUT @p, the op at @at of the current batch and the last but those that
 * followed from it, stays in the batch: the PUTs its sender parked before
 * it go ahead of it, so that "accepted" answers keep the order of ids.
 * Returns where @p lives now.
 */
struct vt_pend *vt__park_before(struct vt_engine *e, size_t at);
/* Send the PUTs due by @now to the batch. */
void vt__park_due(struct vt_engine *e, uint64_t now);
/* Monotonic ms of the next due PUT, or UINT64_MAX. */
uint64_t vt__park_next_due(const struct vt_engine *e);
/* Send every parked PUT to the batch (a clean stop). */
void vt__park_all_out(struct vt_engine *e);

/* conn.c */
struct vt_user *vt__user(const struct vt_engine *e, const char *user);
struct vt_conn *vt__conn_find(const struct vt_engine *e, const char *user, const char *device);
void vt__conn_offer(struct vt_conn *c, struct vt_msg *m);

/* Queue @m, stored nowhere, on @c, which has room (see hold.c), @journaled
 * or not; 1 when queued, or written for @c's device with its entry released
 * once written (@journaled); 0 when stored for @c's device or already there. */
int vt__conn_hold(struct vt_conn *c, struct vt_msg *m, int journaled);
void vt__conn_pump(struct vt_conn *c);
void vt__conn_retry(struct vt_conn *c, struct vt_item *it);
/* Something owed may sit above @after, below the cursor: list the inbox from there. */
void vt__conn_rewind(struct vt_conn *c, uint64_t after);
/* Take @id off @c's queue: 1 and its event in *@msg (a reference), and in
 * *@held whether it was held in memory only; 0 when @c does not hold it. A
 * journaled copy's entry is released here, unless @entry is not NULL: then
 * *@entry tells whether the copy had one, for the caller to release. */
int vt__conn_ack(struct vt_conn *c, uint64_t id, struct vt_msg **msg, int *held, int *entry);

/* Bytes a held copy of an event with a body of @body_len counts in
 * stats.held_bytes, against hold_memory. */
uint32_t vt__held_cost(size_t body_len);

void vt__conn_unref(struct vt_conn *c);
void vt__conn_send(struct vt_conn *c, const char *data, size_t len);
void vt__conn_kill(struct vt_conn *c, int code, const char *reason);
void vt__conn_replace(struct vt_conn *c);
int vt__conn_expired(struct vt_conn *c);
void vt__conn_touched(struct vt_conn *c, uint32_t ndevices);

/* requests.c */
void vt__ackreq_done(struct vt_engine *e, struct vt_ackreq *req, uint64_t id, int found);
void vt__fetch_start(struct vt_fetchreq *f, int status);

/* cluster.c: tell the cluster a device connected here (1) or left (0). */
void vt__cluster_attach(struct vt_engine *e, const struct vt_conn *c, int attached);

/* cluster.c: an ack committed here for a delivery no connection here held. */
void vt__cluster_acked(struct vt_engine *e, const char *user, const char *device, uint64_t id);
/* route.c: a post to a group, taken again once its group is fresh. */
void vt__take_group_post(struct vt_engine *e, const struct vt_identity *from, struct vt_msg *m,
			 struct vt_origin *o, int retried);

/* stale.c */
int vt__group_waited_on(const struct vt_engine *e, const char *group);
void vt__group_wait(struct vt_engine *e, struct vt_msg *m, const char *device,
		    struct vt_origin *o, int retried);
void vt__group_stale(struct vt_engine *e, const char *group);
void vt__group_waiting_fail(struct vt_engine *e, int err, const char *reason);
int vt__group_may_reread(const struct vt_engine *e);

/* group_queue.c: a group change waits for the one before it to commit. */
struct vt_parked;
int vt__group_changing(const struct vt_engine *e, const char *group);
/* Does anything sent to @group wait? */
int vt__group_parked(const struct vt_engine *e, const char *group);
/* Keep an event to @group (@change: a group change) for later, taking @o's
 * reference: 0, or VT_EBUSY or VT_ENOMEM, and @o is left to the caller. */
int vt__group_park(struct vt_engine *e, const struct vt_identity *from, const char *group,
		   const char *cid, int change, const char *data, size_t len,
		   struct vt_origin *o);
/* A GROUP op for @group was queued; it completed (waiting changes are taken). */
void vt__group_change_started(struct vt_engine *e, const char *group);
void vt__group_change_done(struct vt_engine *e, const char *group);
/* Refuse every waiting change with @err (shutdown). */
void vt__group_parked_fail(struct vt_engine *e, int err, const char *reason);

/* senders.c */
/* Users a REST sender's rate is kept for at most: a bucket is 16 bytes. */
#define VT_SENDERS_MAX 65536

/*
 * Take one event of @user's, sent without a connection, from its bucket:
 * 1 when within the rate (or the rate is 0, no limit), 0 when over it;
 * VT_EBUSY when VT_SENDERS_MAX other users have sent in the last second,
 * VT_ENOMEM when the table cannot grow.
 */
int vt__sender_take(struct vt_engine *e, const char *user);
/* A closing connection's bucket, kept for its user's next one; and taken up. */
void vt__sender_keep(struct vt_engine *e, const char *user, const struct vt_bucket *b);
void vt__sender_resume(struct vt_engine *e, const char *user, struct vt_bucket *b);

/* Forget the buckets that are full again at @now: they hold nothing. */
void vt__senders_sweep(struct vt_engine *e, uint64_t now);
void vt__senders_free(struct vt_engine *e);

/* notify.c */
int vt__notify(struct vt_engine *e, const struct vt_record *rec, const char *user,
		const char *device);

#endif /* VARTALAP_ENGINE_INTERNAL_H */
