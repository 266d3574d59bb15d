/*
 * bench/idle.c - N authenticated WebSocket connections that send nothing,
 * and what they cost the server: the growth of its VmRSS and of its
 * private dirty pages (smaps_rollup) divided by N.
 */
#include <stdio.h>

#include <event2/event.h>

#include "bench.h"

static long rss0, pd0, rss1, pd1;

static void measure(evutil_socket_t fd, short what, void *arg)
{
	struct vb_bench *b = arg;

	rss1 = vb_proc_rss(b->o.server_pid);
	pd1 = vb_proc_private_dirty(b->o.server_pid);
	vb_stop(b);
}

static void start(struct vb_bench *b)
{
	struct timeval settle = {2, 0};

	fprintf(stderr, "[idle %s] %d connections open; settling\n", b->o.label, b->nready);
	event_base_once(b->base, -1, EV_TIMEOUT, measure, b, &settle);
}

static void nothing(struct vb_conn *c)
{
}

static void nothing_dlv(struct vb_conn *c, uint64_t t, uint64_t s)
{
}

static void report(struct vb_bench *b)
{
	int n = b->nready > 0 ? b->nready : 1;
	double per_rss = (double)(rss1 - rss0) / n, per_pd = (double)(pd1 - pd0) / n;

	vb_row(b, "connections", "count", b->nready);
	vb_row(b, "VmRSS before", "KiB", (double)rss0 / 1024);
	vb_row(b, "VmRSS after", "KiB", (double)rss1 / 1024);
	vb_row(b, "VmRSS per connection", "bytes", per_rss);
	vb_row(b, "Private_Dirty per connection", "bytes", per_pd);
	/* On paper: user space as measured, plus about 4.5 KB of kernel slab a socket. */
	vb_row(b, "user space at 1M connections", "GiB", per_pd * 1e6 / (1 << 30));
	vb_row(b, "with kernel sockets at 1M connections", "GiB",
	       (per_pd + 4500) * 1e6 / (1 << 30));
	vb_row(b, "failed connections", "count", b->failed + (double)b->st.closed);
}

void vb_idle_setup(struct vb_bench *b)
{
	b->nconns = b->o.conns;
	for (int i = 0; i < b->nconns; i++) {
		b->conns[i].idx = i;
		snprintf(b->conns[i].user, sizeof(b->conns[i].user), "%s%d", b->o.prefix, i);
	}
	b->h = (struct vb_hooks){.start = start, .accepted = nothing, .delivered = nothing_dlv,
	                         .report = report};
	rss0 = vb_proc_rss(b->o.server_pid);
	pd0 = vb_proc_private_dirty(b->o.server_pid);
	if (rss0 < 0) {
		fprintf(stderr, "vtbench: idle needs --server-pid of a running server\n");
	}
	vb_open(b, 0, b->nconns, NULL);
}
