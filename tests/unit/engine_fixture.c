/*
 * engine_fixture.c - the engine under test in the engine suites (see
 * engine_fixture.h).
 */
#include "engine_fixture.h"

#include <string.h>

struct fake_host H;
struct vt_engine *E;
struct cap_conn A, B;

struct vt_engine_config cfg_short(void)
{
	struct vt_engine_config c;

	vt_engine_config_init(&c);
	c.ack_timeout_ms = 1000;
	c.max_retries = 2;
	c.window = 4;
	return c;
}

void setup(void)
{
	struct vt_engine_config c = cfg_short();

	fake_host_init(&H);
	E = engine_new(&H, &c, NULL);
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
}

void teardown(void)
{
	vt_engine_destroy(E);
	cap_free(&A);
	cap_free(&B);
}
