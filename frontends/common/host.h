/*
 * frontends/common/host.h - struct vt_host on a libevent loop.
 *
 * The engine asks for a flush once per batch and tells when its earliest
 * deadline moved; this glue turns both into libevent events on one base.
 */
#ifndef VARTALAP_FE_HOST_H
#define VARTALAP_FE_HOST_H

#include <stdint.h>

#include <event2/event.h>
#include <vartalap/engine.h>

struct vt_evhost {
	struct event_base *base;
	struct vt_engine *engine; /* set by vt_evhost_attach() */
	struct event *flush_ev;   /* no fd: activated by want_flush */
	struct event *timer_ev;   /* the engine's earliest deadline */
};

/* Monotonic milliseconds (CLOCK_MONOTONIC). */
uint64_t vt_evhost_mono_ms(void);

/*
 * Monotonic milliseconds that advance a few at a time (once per kernel
 * tick: CLOCK_MONOTONIC_COARSE), read several times faster: for timers of
 * seconds, read on every message. Never compare with vt_evhost_mono_ms().
 */
uint64_t vt_evhost_coarse_ms(void);

/* Wall-clock milliseconds since the epoch (CLOCK_REALTIME). */
int64_t vt_evhost_wall_ms(void);

/*
 * Prepare @h on @base and fill @out with hooks that point at @h. Returns 0
 * or VT_ENOMEM. @h must not move until vt_evhost_finish().
 */
int vt_evhost_init(struct vt_evhost *h, struct event_base *base, struct vt_host *out);

/*
 * Start driving @e: arm the timer from its first deadline. NULL stops
 * driving the engine; do that before vt_engine_destroy(), whose last hook
 * calls are then ignored.
 */
void vt_evhost_attach(struct vt_evhost *h, struct vt_engine *e);

/* Free the events; call after vt_engine_destroy(). Safe on a zeroed @h. */
void vt_evhost_finish(struct vt_evhost *h);

#endif /* VARTALAP_FE_HOST_H */
