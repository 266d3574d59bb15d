/*
 * util.h - helpers shared by the unit tests: a fake clock host, a transport
 * that captures what the engine sends, and small JSON field readers.
 */
#ifndef VARTALAP_TEST_UTIL_H
#define VARTALAP_TEST_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include <vartalap/vartalap.h>

/* A host whose clocks move only when a test says so. */
struct fake_host {
	uint64_t mono;     /* ms */
	int64_t wall;      /* ms since the epoch */
	int flush_wanted;
	struct vt_host host;
};

void fake_host_init(struct fake_host *h);

/* A captured connection: every frame sent, and how it was closed. */
struct cap_conn {
	struct vt_conn *conn;
	char **frames;
	size_t nframes;
	int closed;
	int close_code;
	int full;          /* nonzero: send answers VT_EAGAIN */
};

extern const struct vt_transport_ops cap_ops;

void cap_free(struct cap_conn *c);
void cap_clear(struct cap_conn *c);

/* Frames of @type ("message", "accepted", ...) in order; returns how many. */
size_t cap_count(const struct cap_conn *c, const char *type);

/* The @i-th frame (0-based) of @type, or NULL. */
const char *cap_nth(const struct cap_conn *c, const char *type, size_t i);

/* The server id of the @i-th frame of @type on @c; fails the test if there is none. */
uint64_t cap_nth_id(const struct cap_conn *c, const char *type, size_t i);

/* The string value of "@key" in a frame (first match), copied into @out. */
int json_field(const char *frame, const char *key, char *out, size_t cap);

/* The numeric value of the server id string field "@key", or 0. */
uint64_t json_id(const char *frame, const char *key);

/*
 * The refs of a "delivered" frame, in order: stores up to @cap of them in
 * @ids and returns how many there are.
 */
size_t frame_refs(const char *frame, uint64_t *ids, size_t cap);

/* The refs of every "delivered" frame on @c, flattened in order, as frame_refs(). */
size_t delivered_refs(const struct cap_conn *c, uint64_t *ids, size_t cap);

/* The memory backend behind a wrapped store (see wrap_ops_init). */
extern struct vt_storage wrap_inner;

/*
 * Create wrap_inner (memory backend, deduplicating over @dedup_window_ms)
 * and fill @ops with calls passed on to it; a test then replaces the ones
 * it stands in for.
 */
void wrap_ops_init(struct vt_storage_ops *ops, int64_t dedup_window_ms);

/* wrap_inner's dedup_peek; left out by wrap_ops_init, for a test to opt in. */
int wrap_dedup_peek(void *self, const struct vt_record *rec, uint64_t *id);

/* An engine on the memory backend, or on @storage when it is non-NULL. */
struct vt_engine *engine_new(struct fake_host *h, const struct vt_engine_config *cfg,
			     const struct vt_storage *storage);

/* Run one loop turn: flush if the engine asked. */
void turn(struct vt_engine *e, struct fake_host *h);

/* Move both clocks by @ms, running due timers and flushes on the way. */
void advance(struct vt_engine *e, struct fake_host *h, uint64_t ms);

/* An identity for @user valid for an hour of fake wall time. */
struct vt_identity ident(struct fake_host *h, const char *user);

/* Open a captured connection for @user. */
void connect_user(struct vt_engine *e, struct fake_host *h, const char *user,
		  struct cap_conn *out);

/* Open a captured connection for @user's @device. */
void connect_device(struct vt_engine *e, struct fake_host *h, const char *user,
		    const char *device, struct cap_conn *out);

/* Send a raw envelope (NUL-terminated) on @c. */
void send_raw(struct cap_conn *c, const char *json);

/* Send {"type":"message","id":@cid,"to":@to,"body":@body} on @c. */
void send_msg(struct cap_conn *c, const char *cid, const char *to, const char *body);

/* Messages from @c to @to (not connected) until one more op fills the array
 * of @e's current batch: the next write then moves it. */
void fill_batch_but_one(struct vt_engine *e, struct cap_conn *c, const char *to);

/* Ack server id @id on @c. */
void send_ack(struct cap_conn *c, uint64_t id);

/* The answer to a request (vt_reply_fn): how many, and the last one. */
struct reply {
	int calls;
	int status;
	char body[8192];
};

/* A vt_reply_fn that fills the struct reply at @arg. */
void on_reply(void *arg, int status, const char *json, size_t len);

/*
 * Empty @e's index of the acks in flight, as if none of them could be
 * indexed (out of memory): lookups scan the batches until they complete.
 */
void acking_unindex(struct vt_engine *e);

/* Acks in flight @e knows of: the index's entries and the ops not in it. */
size_t acking_count(const struct vt_engine *e);

/* Users whose REST sends @e keeps a rate for. */
size_t senders_count(const struct vt_engine *e);

/* Take one REST send from each of @n users named "s<i>", as if each sent. */
void senders_fill(struct vt_engine *e, size_t n);

/* Run @s (Check forks each test) and return the process exit status. */
int run_suite(Suite *s);

#endif /* VARTALAP_TEST_UTIL_H */
