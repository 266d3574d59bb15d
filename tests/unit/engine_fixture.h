/*
 * engine_fixture.h - the engine under test in the engine suites: the
 * memory backend, a fake host with a fake clock, and two captured
 * connections.
 */
#ifndef VARTALAP_TEST_ENGINE_FIXTURE_H
#define VARTALAP_TEST_ENGINE_FIXTURE_H

#include "engine_internal.h"
#include "util.h"

extern struct fake_host H;
extern struct vt_engine *E;
extern struct cap_conn A, B;

/* The engine's defaults with a 1 s ack timeout, 2 retries and a window of 4. */
struct vt_engine_config cfg_short(void);

/* A checked fixture: a fresh engine on cfg_short(), and A and B empty. */
void setup(void);
void teardown(void);

#endif
