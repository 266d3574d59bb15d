/*
 * bench/p2p.c - pairs of online users sending to each other.
 *
 * Closed loop: each user keeps a window of W messages that its peer has
 * not received yet, and sends the next one when one arrives. Fixed rate:
 * messages leave on a schedule (rate R over all users, round robin) no
 * matter how the server keeps up, and latency is counted from the time
 * each message was due, not from when it finally left; a stalled server
 * then shows up in the percentiles instead of quietly slowing the
 * schedule down (coordinated omission).
 *
 * Two nodes sharing a store: with --peer-port, user 2k stays on --port and
 * user 2k+1 connects to the other node, so every message is accepted by
 * one node and pushed by the other. With --half-port, pair k connects to
 * the other node when k is odd, and every message stays on one node.
 */
#include <stdio.h>

#include "bench.h"

struct p2p {
	uint64_t t0;        /* the schedule's origin */
	uint64_t scheduled; /* messages the schedule has sent */
};

static void fill_window(struct vb_conn *c)
{
	while (c->inflight < (uint32_t)c->b->o.window && c->bev != NULL) {
		vb_send_msg(c, vb_now());
	}
}

static void start(struct vb_bench *b)
{
	struct p2p *p = b->scn;

	fprintf(stderr, "[p2p %s] %d connections ready\n", b->o.label, b->nready);
	p->t0 = vb_now();
	if (b->o.rate <= 0) {
		for (int i = 0; i < b->nconns; i++) {
			fill_window(&b->conns[i]);
		}
	}
	vb_begin_measure(b);
}

static void delivered(struct vb_conn *c, uint64_t t, uint64_t seq)
{
	struct vb_conn *from = c->peer;

	if (from->inflight > 0) {
		from->inflight--;
	}
	if (c->b->o.rate <= 0) {
		fill_window(from);
	}
}

static void accepted(struct vb_conn *c)
{
}

static void refused(struct vb_conn *c)
{
	if (c->b->o.rate <= 0) {
		fill_window(c);
	}
}

static void tick(struct vb_bench *b)
{
	struct p2p *p = b->scn;
	uint64_t now = vb_now(), due;
	double per = 1e9 / b->o.rate;

	if (b->o.rate <= 0 || p->t0 == 0) {
		return;
	}
	/* Message k is due at t0 + k * per: message 0 at once, not a period late. */
	due = (uint64_t)((double)(now - p->t0) / per) + 1;
	while (p->scheduled < due) {
		struct vb_conn *c = &b->conns[p->scheduled % (uint64_t)b->nconns];

		/* Stamp the intended time, however late this tick runs. */
		vb_send_msg(c, p->t0 + (uint64_t)((double)p->scheduled * per));
		p->scheduled++;
	}
}

static void report(struct vb_bench *b)
{
	vb_print_rate_table(b, b->o.rate > 0 ? "rate" : "window");
}

void vb_p2p_setup(struct vb_bench *b)
{
	static struct p2p p;

	b->scn = &p;
	b->nconns = 2 * b->o.pairs;
	for (int i = 0; i < b->nconns; i++) {
		struct vb_conn *c = &b->conns[i];

		c->idx = i;
		c->peer = &b->conns[i ^ 1];
		snprintf(c->user, sizeof(c->user), "%s%d", b->o.prefix, i);
		snprintf(c->to, sizeof(c->to), "%s%d", b->o.prefix, i ^ 1);
		if (b->o.peer_port > 0 && (i & 1)) {
			c->port = b->o.peer_port;
		} else if (b->o.half_port > 0 && ((i / 2) & 1)) {
			c->port = b->o.half_port;
		}
	}
	b->h = (struct vb_hooks){.start = start, .accepted = accepted, .refused = refused,
	                         .delivered = delivered,
	                         .tick = tick, .report = report};
	vb_open(b, 0, b->nconns, NULL);
}
