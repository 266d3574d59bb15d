/*
 * storage_cases.h - the storage contract suite, shared by every backend's
 * test executable.
 *
 * An executable defines its backend table (storage_backends) and, for an
 * asynchronous backend, storage_wait; then adds the contract cases to a
 * TCase with storage_cases_add, each run once per backend (a loop test).
 * The helpers below make calls synchronous: they start a call, wait for its
 * callback and check it ran once.
 */
#ifndef VARTALAP_TEST_STORAGE_CASES_H
#define VARTALAP_TEST_STORAGE_CASES_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include <vartalap/storage.h>

#define WINDOW_MS 60000

/* One backend under test. */
struct storage_backend {
	const char *name;
	int (*open)(void); /* opens fx.st; 0 or an error */
	int durable;       /* gets a fresh directory in fx.dir */
	/* serves several engines: reports a duplicate's owed inboxes */
	int shared;
	/* fill the open store, so that a PUT of FULL_BODY to two users is
	 * refused from then on; NULL for a store without a limit. Records
	 * it writes are at time FILL_TS, to users not named elsewhere. */
	void (*fill)(void);
};

/* The PUT body a full store refuses (JSON, FULL_BODY_LEN bytes). */
#define FULL_BODY_LEN 4000
extern char full_body[FULL_BODY_LEN + 1];
#define FILL_TS 5000

/* Defined by each executable. */
extern const struct storage_backend storage_backends[];
extern const int storage_nbackends;

/*
 * Run the backend's event loop until *@calls is nonzero (or fail the test
 * after a while). Each executable defines it; a synchronous backend's
 * returns at once.
 */
void storage_wait(int *calls);

struct fixture {
	struct vt_storage st;
	char dir[64];
	uint64_t map_size;
	int backend;
	int sync; /* LMDB: fsync each commit (tests skip it for speed) */
};

extern struct fixture fx;

/* Add every contract case to @tc, each looping over the backends. */
void storage_cases_add(TCase *tc);

/* Add the cases of devices, flags and groups (storage_cases_add adds them too). */
void storage_device_cases_add(TCase *tc);

/* Add the cases of logouts (VT_OP_REVOKE; storage_cases_add adds them too). */
void storage_revoke_cases_add(TCase *tc);

/* Add the cases of the journal (replay(); storage_cases_add adds them too). */
void storage_journal_cases_add(TCase *tc);
void storage_posts_cases_add(TCase *tc);

/* Of the journal's cases: open backend @i, 0 when it keeps no journal (skip the case). */
int jopen(int i);

/* The same on a map of 1 MiB; 0 too when the backend cannot be filled. */
int jopen_full(int i);

/* Close and open again, as after a crash; returns what replay() delivered. */
uint64_t reopen_replay(void);

/* How many deliveries inbox (@user, @device) lists. */
size_t count_in(const char *user, const char *device);

/* Add the cases of receipts made with acks (VT_OP_ACK), for a backend that makes them. */
void storage_receipt_cases_add(TCase *tc);

/* Open backend @backend into fx.st (a fresh directory when durable). */
void st_open(int backend);
void st_close(void);

/* Close the backend and remove its directory: a checked teardown. */
void teardown(void);

/* What a callback reported. */
struct done {
	int calls;
	int status;
	uint64_t removed;
	size_t n;
	struct vt_record recs[64];
	char bodies[64][32];
};

void on_commit(void *arg, int status);
void on_list(void *arg, int status, const struct vt_record *recs, size_t n);
void on_expire(void *arg, int status, uint64_t removed);

/* Commit @n ops; returns the batch status. */
int commit(struct vt_op *ops, size_t n);

/* List @user's default inbox; returns the count, ids in @ids. */
size_t list(const char *user, uint64_t after, uint32_t limit, uint64_t *ids, struct done *out);

/* A sweep that also removes devices last seen before @dev_before. */
uint64_t expire_dev(int64_t now, int64_t before, int64_t dev_before, uint64_t max);

/* A sweep by age only: no device is that old. */
uint64_t expire(int64_t now, int64_t before, uint64_t max);

struct put {
	struct vt_record rec;
	struct vt_inbox to[4];
	struct vt_op op;
};

/* A PUT of message @id from alice to the users of @to (NULL-terminated). */
void put_init(struct put *p, uint64_t id, const char *cid, int64_t ts, const char *body,
              const char *const *to);

/* PUT alone in a batch; returns the op's status, dup_of in *dup. */
int put1(uint64_t id, const char *cid, int64_t ts, const char *body, const char *const *to,
         uint32_t dedup, uint32_t cap, uint64_t *dup);
int put(uint64_t id, int64_t ts, const char *body, const char *const *to);
size_t put_pairs(uint64_t first, int n, int64_t ts);
void ack_init(struct vt_op *op, const char *user, uint64_t id);
int ack(const char *user, uint64_t id);

#define TO(...) ((const char *const[]){__VA_ARGS__, NULL})

/* List inbox (@user, @device); returns the count, ids in @ids. */
size_t list_in(const char *user, const char *device, uint64_t *ids, struct done *out);

/* TOUCH (@user, @device) at @ts alone; status, device count in *ndev. */
int touch(const char *user, const char *device, int64_t ts, uint32_t *ndev);
int notified(const char *user, const char *device, uint64_t id);
int ack_in(const char *user, const char *device, uint64_t id);

/* A PUT of message @id to the users @users (NULL-terminated). */
void uput_init(struct put *p, uint64_t id, const char *const *users);

/* Where the out_to of a PUT pointed, copied while it is valid. */
struct routed {
	int calls;
	uint32_t n;
	char inbox[16][48];
	const struct vt_op *op;
};

void on_commit_routed(void *arg, int status);

/* Commit a PUT alone and note its out_to; returns its status. */
int put_routed(struct put *p, struct routed *r);

/* Nonzero when @r routed to "user/device" @want. */
int routed_to(const struct routed *r, const char *want);
int set_group(const char *group, const char *data);

struct groups {
	int n;
	char text[8][64];
};

void on_group(void *arg, const char *group, const char *data, size_t len);

/* Sort @n NUL-terminated rows of @width bytes at @rows; join them by spaces into @out. */
const char *rows_joined(char *rows, size_t n, size_t width, char *out, size_t cap);

/* Every stored group as "id=data", sorted, joined by spaces. */
const char *load_groups(void);

/* A REVOKE op of (@user, @device) up to @ts seconds. */
void revoke_init(struct vt_op *op, const char *user, const char *device, int64_t ts);

/* REVOKE (@user, @device) up to @ts seconds, alone in a batch; the op's status. */
int commit_revoke(const char *user, const char *device, int64_t ts);

/* Every stored revocation as "user/device=ts", sorted, joined by spaces. */
const char *load_revoked(void);

#endif /* VARTALAP_TEST_STORAGE_CASES_H */
