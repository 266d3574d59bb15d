/*
 * journal_store.h - the fixture of the mode "always" suites over LMDB
 * (test_journal.c, test_park.c).
 */
#ifndef VT_TEST_JOURNAL_STORE_H
#define VT_TEST_JOURNAL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine_internal.h"
#include "util.h"

extern struct fake_host H;
extern struct vt_engine *E;
extern struct cap_conn A, A2, B, C;

/* Read by journal_engine_open(): the map size (0: the default) and the
 * engine's ack_wait_ms; both 0 after journal_setup(). */
extern uint64_t map_size;
extern uint32_t ack_wait;

/* While set, every PUT to one of this user's inboxes is refused (VT_ENOSPC). */
extern const char *refuse_to;

/* A new engine on the fixture's directory. */
struct vt_engine *journal_engine_open(void);

/* Check fixtures: a fresh directory and engine; the engine and clients gone. */
void journal_setup(void);
void journal_teardown(void);

/* kill -9: the store as its last commit left it, and a new engine on it. */
void crash(void);

/* Deliveries stored for (@user, @device): listed by REST, not held. */
size_t stored(const char *user, const char *device);

/* alice's phone and laptop, and bob, connected; bob's device registered. */
void online(void);

/* alice sends @cid to bob and hears "accepted"; the id it was accepted under. */
uint64_t send_one(const char *cid);

#endif /* VT_TEST_JOURNAL_STORE_H */
