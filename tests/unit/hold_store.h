/*
 * hold_store.h - the fixture of the mode "offline" suites (test_hold.c,
 * test_hold_queue.c): an engine with --durability offline on the memory
 * backend behind a recording store, and alice (A, A2), bob (B, B2), carol
 * (C) and dave (D) as clients.
 */
#ifndef VT_TEST_HOLD_STORE_H
#define VT_TEST_HOLD_STORE_H

#include <check.h>
#include <stdint.h>

#include "util.h"

extern struct fake_host H;
extern struct vt_engine *E;
extern struct cap_conn A, A2, B, B2, C, D;

/* Commits wait for release() while set; how many wait now. */
extern int defer;
extern int ndeferred;

/* Read by start_engine(): push_before_commit on a store that can peek at
 * dedup, and when nonzero the engine's hold_queue and hold_memory. */
extern int early;
extern uint32_t hold_queue;
extern uint64_t hold_memory;

/* Apply and complete the oldest commit kept back; later ones stay back. */
void release_one(void);

/* Apply and complete every commit kept back, oldest first; stop deferring. */
void release(void);

/* Deliveries of record @id written for @inbox ("user/device"), or for any (NULL). */
int written(const char *inbox, uint64_t id);

/* Deliveries of @kind written since the test began. */
int written_kind(uint32_t kind);

/* A new engine E on the recording store, with the settings above. */
void start_engine(void);

/*
 * A suite @name of two test cases, each test with a fresh store, engine and
 * clients: "offline", with @add's tests, and "early" (push_before_commit on
 * a store that can peek at dedup), with @add's and @add_early's (or NULL).
 */
Suite *hold_suite_new(const char *name, void (*add)(TCase *t), void (*add_early)(TCase *t));

/* Ack every event pushed to @c so far. */
void ack_all(struct cap_conn *c);

/* How many frames of @c carry @needle. */
int count_with(const struct cap_conn *c, const char *needle);

/* The position of the first frame on @c that carries @needle, or -1. */
int first_with(const struct cap_conn *c, const char *needle);

#endif
