/*
 * bench/offline.c - messages to users who are not connected, then the
 * drain when they come back.
 *
 * Senders P0..: "<prefix>s<i>" each write to "<prefix>r<i>", who is
 * offline, keeping a window of W messages not yet accepted. With
 * --durability always an "accepted" means the message is committed, so the
 * accepted rate is the durable write rate (group commit included). Then
 * the recipients connect and everything stored is pushed to them; the
 * drain rate is what a reconnecting crowd sees.
 */
#include <stdio.h>

#include "bench.h"

struct offline {
	int phase;             /* 0 writing, 1 draining */
	uint64_t t_fill, t_drain, t_done;
	uint64_t stored;       /* accepted in phase 0 */
	int stop_sending;
};

static struct offline S;

static void fill(struct vb_conn *c)
{
	struct vb_bench *b = c->b;

	while (!S.stop_sending && c->inflight < (uint32_t)b->o.window && c->bev != NULL &&
	       b->st.sent < (uint64_t)b->o.count) {
		vb_send_msg(c, vb_now());
	}
}

static void start_drain(struct vb_bench *b)
{
	S.phase = 1;
	S.t_fill = vb_now();
	S.stored = b->st.accepted;
	fprintf(stderr, "[offline %s] %llu stored in %.2f s\n", b->o.label,
	        (unsigned long long)S.stored, (double)(S.t_fill - b->t_begin) / 1e9);
	if (!b->o.drain) {
		vb_stop(b);
		return;
	}
	vb_open(b, b->o.pairs, b->o.pairs, NULL);
}

static void start(struct vb_bench *b)
{
	if (S.phase == 1) {
		S.t_drain = vb_now();
		fprintf(stderr, "[offline %s] recipients online\n", b->o.label);
		return;
	}
	b->t_begin = vb_now();
	for (int i = 0; i < b->o.pairs; i++) {
		fill(&b->conns[i]);
	}
}

static void settle(struct vb_conn *c)
{
	struct vb_bench *b = c->b;

	fill(c);
	if (S.phase == 0 && b->st.accepted + b->st.errors >= b->st.sent &&
	    (S.stop_sending || b->st.sent >= (uint64_t)b->o.count)) {
		start_drain(b);
	}
}

static void accepted(struct vb_conn *c)
{
	if (c->inflight > 0) {
		c->inflight--;
	}
	settle(c);
}

static void delivered(struct vb_conn *c, uint64_t t, uint64_t seq)
{
	struct vb_bench *b = c->b;

	if (S.phase == 1 && b->st.delivered >= S.stored && S.t_done == 0) {
		S.t_done = vb_now();
		vb_stop(b);
	}
}

static void tick(struct vb_bench *b)
{
	/* Writing is bounded by time as well as by count. */
	if (S.phase == 0 && b->t_begin && !S.stop_sending &&
	    (double)(vb_now() - b->t_begin) / 1e9 > b->o.seconds) {
		S.stop_sending = 1;
		if (b->nready > 0) {
			settle(&b->conns[0]);
		}
	}
}

static void report(struct vb_bench *b)
{
	double fill_s = (double)(S.t_fill - b->t_begin) / 1e9;
	double drain_s = S.t_done ? (double)(S.t_done - S.t_drain) / 1e9 : 0;

	vb_row(b, "messages stored", "messages", (double)S.stored);
	vb_row(b, "durable writes", "messages/s", fill_s > 0 ? (double)S.stored / fill_s : 0);
	vb_row(b, "senders x window", "messages", (double)b->o.pairs * b->o.window);
	if (b->o.drain) {
		vb_row(b, "drain time", "s", drain_s);
		vb_row(b, "drain", "messages/s",
		       drain_s > 0 ? (double)b->st.delivered / drain_s : 0);
	}
	vb_row(b, "errors", "count", (double)(b->st.errors + b->st.closed + (uint64_t)b->failed));
}

void vb_offline_setup(struct vb_bench *b)
{
	int p = b->o.pairs;

	b->nconns = 2 * p;
	for (int i = 0; i < 2 * p; i++) {
		struct vb_conn *c = &b->conns[i];

		c->idx = i;
		snprintf(c->user, sizeof(c->user), "%s%c%d", b->o.prefix, i < p ? 's' : 'r', i % p);
		snprintf(c->to, sizeof(c->to), "%sr%d", b->o.prefix, i % p);
	}
	b->h = (struct vb_hooks){.start = start, .accepted = accepted, .refused = settle,
	                         .delivered = delivered, .tick = tick, .report = report};
	vb_open(b, 0, p, NULL);
}
