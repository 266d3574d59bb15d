/*
 * frontends/common/host.c - the engine's clocks, flush and timer on libevent.
 */
#include "host.h"

#include <time.h>

static uint64_t ts_ms(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000u + (uint64_t)(ts->tv_nsec / 1000000);
}

uint64_t vt_evhost_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_ms(&ts);
}

uint64_t vt_evhost_coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts_ms(&ts);
}

int64_t vt_evhost_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts_ms(&ts);
}

static uint64_t hook_mono(void *arg)
{
	return vt_evhost_mono_ms();
}

static int64_t hook_wall(void *arg)
{
	return vt_evhost_wall_ms();
}

/*
 * The flush event has no fd and the default priority, so activating it puts
 * it behind the I/O callbacks already queued for this loop turn: every write
 * those callbacks took lands in one batch.
 */
static void hook_want_flush(void *arg)
{
	struct vt_evhost *h = arg;

	if (h->flush_ev != NULL) {
		event_active(h->flush_ev, EV_TIMEOUT, 0);
	}
}

static void rearm(struct vt_evhost *h)
{
	int64_t ms;
	struct timeval tv;

	if (h->engine == NULL) {
		return;
	}

	ms = vt_engine_next_timeout(h->engine);
	if (ms < 0) {
		evtimer_del(h->timer_ev);
		return;
	}

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(h->timer_ev, &tv);
}

static void hook_timers_changed(void *arg)
{
	rearm(arg);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct vt_evhost *h = arg;

	if (h->engine != NULL) {
		vt_engine_flush(h->engine);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct vt_evhost *h = arg;

	if (h->engine == NULL) {
		return;
	}

	vt_engine_run_timers(h->engine);
	rearm(h);
}

int vt_evhost_init(struct vt_evhost *h, struct event_base *base, struct vt_host *out)
{
	h->base = base;
	h->engine = NULL;
	h->flush_ev = event_new(base, -1, 0, on_flush, h);
	h->timer_ev = evtimer_new(base, on_timer, h);
	if (h->flush_ev == NULL || h->timer_ev == NULL) {
		vt_evhost_finish(h);
		return VT_ENOMEM;
	}

	out->mono_ms = hook_mono;
	out->wall_ms = hook_wall;
	out->want_flush = hook_want_flush;
	out->timers_changed = hook_timers_changed;
	out->arg = h;
	return 0;
}

void vt_evhost_attach(struct vt_evhost *h, struct vt_engine *e)
{
	h->engine = e;
	if (e == NULL) {
		if (h->timer_ev != NULL) {
			evtimer_del(h->timer_ev);
		}
		return;
	}

	/* A flush asked for while the engine was being created was dropped. */
	event_active(h->flush_ev, EV_TIMEOUT, 0);
	rearm(h);
}

void vt_evhost_finish(struct vt_evhost *h)
{
	h->engine = NULL;
	if (h->flush_ev != NULL) {
		event_free(h->flush_ev);
		h->flush_ev = NULL;
	}
	if (h->timer_ev != NULL) {
		event_free(h->timer_ev);
		h->timer_ev = NULL;
	}
}
