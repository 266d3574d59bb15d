/*
 * bench/run.c - the event loop, its timers and the measured interval.
 *
 * A run has a warm-up (connections settle, caches fill, the server's
 * allocator reaches its working size) whose counts are thrown away, then
 * the measured interval. A hard time limit ends every run, whatever the
 * scenario is waiting for, so that a stuck server cannot hold a benchmark
 * forever.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"

uint64_t vb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timeval tv_of(double s)
{
	struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};

	return tv;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct vb_bench *b = arg;

	if (b->h.tick != NULL && !b->done) {
		b->h.tick(b);
	}
}

static void on_second(evutil_socket_t fd, short what, void *arg)
{
	struct vb_bench *b = arg;
	struct vb_stats *s = &b->st, *l = &b->last;
	char extra[160] = "";

	if (b->h.progress != NULL) {
		b->h.progress(b, extra, sizeof(extra));
	}
	fprintf(stderr,
	        "[%s %s] %5.1fs conns %d/%d%s | sent %llu acc %llu dlv %llu ack %llu /s"
	        " | p99 %.3f ms%s%s\n",
	        b->o.scenario, b->o.label, (double)(vb_now() - b->t_start) / 1e9, b->nready,
	        b->nconns, b->failed ? " (failures)" : "",
	        (unsigned long long)(s->sent - l->sent),
	        (unsigned long long)(s->accepted - l->accepted),
	        (unsigned long long)(s->delivered - l->delivered),
	        (unsigned long long)(s->acked - l->acked),
	        (double)vb_hist_quantile(&s->lat, 0.99) / 1e6, b->measuring ? " measuring" : "",
	        extra);
	*l = *s;
}

static void on_limit(evutil_socket_t fd, short what, void *arg)
{
	struct vb_bench *b = arg;

	fprintf(stderr, "vtbench: %s: time limit of %.0f s reached\n", b->o.scenario, b->o.timeout);
	vb_stop(b);
}

int vb_run(struct vb_bench *b)
{
	/* At a fixed rate, messages leave at most 100 us after they are due:
	 * a coarser schedule would add its own wait to every latency. */
	struct timeval tick = tv_of(b->o.rate > 0 ? 0.0001 : 0.001);
	struct timeval sec = tv_of(1.0), lim = tv_of(b->o.timeout);

	b->t_start = vb_now();
	b->tick_ev = event_new(b->base, -1, EV_PERSIST, on_tick, b);
	b->sec_ev = event_new(b->base, -1, EV_PERSIST, on_second, b);
	b->limit_ev = evtimer_new(b->base, on_limit, b);
	event_add(b->tick_ev, &tick);
	event_add(b->sec_ev, &sec);
	event_add(b->limit_ev, &lim);
	event_base_dispatch(b->base);
	if (b->t_end == 0) {
		b->t_end = vb_now();
	}
	return 0;
}

static void on_phase(evutil_socket_t fd, short what, void *arg)
{
	struct vb_bench *b = arg;

	if (!b->measuring) {
		struct timeval tv = tv_of(b->o.seconds);

		/* The warm-up is over: forget its counts, keep the traffic going. */
		memset(&b->st, 0, sizeof(b->st));
		b->last = b->st;
		b->measuring = 1;
		b->t_begin = vb_now();
		evtimer_add(b->phase_ev, &tv);
		return;
	}
	b->t_end = vb_now();
	b->measuring = 0;
	if (b->h.measured != NULL) {
		b->h.measured(b);
		return;
	}
	vb_stop(b);
}

void vb_begin_measure(struct vb_bench *b)
{
	struct timeval tv = tv_of(b->o.warmup);

	b->phase_ev = evtimer_new(b->base, on_phase, b);
	evtimer_add(b->phase_ev, &tv);
}

void vb_stop(struct vb_bench *b)
{
	if (b->t_end == 0) {
		b->t_end = vb_now();
	}
	b->done = 1;
	event_base_loopexit(b->base, NULL);
}

double vb_secs(struct vb_bench *b)
{
	uint64_t end = b->t_end ? b->t_end : vb_now();

	return b->t_begin && end > b->t_begin ? (double)(end - b->t_begin) / 1e9 : 0.0;
}
