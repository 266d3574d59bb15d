/*
 * bench/fanout.c - one group of M online members, one of them posting.
 *
 * Member 0 creates the group with everyone in it, then keeps W group
 * messages in flight; a message is done when all M - 1 other members got
 * it. Afterwards, with --server-pid, the members stop acking and member 0
 * posts Q more messages: the server now holds Q x (M - 1) copies it cannot
 * hand over, and the growth of its memory divided by that count is the
 * cost of one queued copy.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "bench.h"

#define RING 4096

static struct {
	int phase;           /* 0 creating, 1 measuring throughput, 2 queuing */
	uint32_t got[RING];  /* deliveries of message seq, by seq % RING */
	uint64_t q_accepted;
	int chunk;           /* group changes done */
	long rss0, pd0, rss1, pd1;
} S;

static void fill(struct vb_bench *b)
{
	struct vb_conn *c = &b->conns[0];

	while (S.phase == 1 && c->inflight < (uint32_t)b->o.window && c->bev != NULL) {
		S.got[c->seq % RING] = 0;
		vb_send_msg(c, vb_now());
	}
}

/*
 * The server takes at most 100 users in one group change (its default
 * --max-group-update, and never more than 256), so the group is created
 * with the first ones and the rest are added 100 at a time.
 */
#define CHUNK 100

static void change_group(struct vb_bench *b)
{
	static char env[16384];
	int first = 1 + S.chunk * CHUNK;
	size_t n;

	n = (size_t)snprintf(env, sizeof(env),
	                     "{\"type\":\"%s\",\"id\":\"g%d\",\"to\":\"%s\",\"body\":"
	                     "{\"name\":\"bench\",\"%s\":[",
	                     S.chunk ? "group_update" : "group_create", S.chunk,
	                     b->conns[0].to, S.chunk ? "add" : "members");
	for (int i = first; i < b->nconns && i < first + CHUNK; i++) {
		n += (size_t)snprintf(env + n, sizeof(env) - n, "%s\"%s\"", i > first ? "," : "",
		                      b->conns[i].user);
	}
	n += (size_t)snprintf(env + n, sizeof(env) - n, "]}}");
	vb_send_raw(&b->conns[0], env, n);
}

static void start(struct vb_bench *b)
{
	fprintf(stderr, "[fanout %s] %d members online; creating the group\n", b->o.label,
	        b->nready);
	change_group(b);
}

static void event(struct vb_conn *c, const char *type, const char *ref)
{
	char want[16];

	snprintf(want, sizeof(want), "g%d", S.chunk);
	if (S.phase == 0 && c->idx == 0 && strcmp(ref, want) == 0) {
		if (strcmp(type, "accepted") != 0) {
			fprintf(stderr, "vtbench: the group was not created\n");
			vb_stop(c->b);
			return;
		}
		if (1 + ++S.chunk * CHUNK < c->b->nconns) {
			change_group(c->b);
			return;
		}
		fprintf(stderr, "[fanout %s] group of %d ready\n", c->b->o.label, c->b->nconns);
		S.phase = 1;
		c->inflight = 0;
		fill(c->b);
		vb_begin_measure(c->b);
	}
}

static void accepted(struct vb_conn *c)
{
	if (S.phase == 2 && c->idx == 0) {
		S.q_accepted++;
	}
}

static void delivered(struct vb_conn *c, uint64_t t, uint64_t seq)
{
	struct vb_conn *s = &c->b->conns[0];

	if (++S.got[seq % RING] == (uint32_t)(c->b->nconns - 1) && s->inflight > 0) {
		s->inflight--;
		fill(c->b);
	}
}

static void after_queue(evutil_socket_t fd, short what, void *arg)
{
	struct vb_bench *b = arg;

	S.rss1 = vb_proc_rss(b->o.server_pid);
	S.pd1 = vb_proc_private_dirty(b->o.server_pid);
	vb_stop(b);
}

static void queue_up(evutil_socket_t fd, short what, void *arg)
{
	struct vb_bench *b = arg;
	struct timeval settle = {2, 0};

	S.rss0 = vb_proc_rss(b->o.server_pid);
	S.pd0 = vb_proc_private_dirty(b->o.server_pid);
	for (int i = 1; i < b->nconns; i++) {
		b->conns[i].paused = 1;
	}
	for (int i = 0; i < b->o.queued; i++) {
		vb_send_msg(&b->conns[0], vb_now());
	}
	event_base_once(b->base, -1, EV_TIMEOUT, after_queue, b, &settle);
}

/* Throughput is measured; now the memory of copies nobody takes. */
static void measured(struct vb_bench *b)
{
	struct timeval quiet = {0, 500000};
	struct vb_stats keep = b->st;

	if (b->o.server_pid <= 0 || b->o.queued <= 0) {
		vb_stop(b);
		return;
	}
	S.phase = 2;
	b->st = keep;
	event_base_once(b->base, -1, EV_TIMEOUT, queue_up, b, &quiet);
}

static void report(struct vb_bench *b)
{
	double copies = (double)b->o.queued * (b->nconns - 1);
	double secs = vb_secs(b);

	vb_row(b, "members online", "count", b->nready);
	vb_row(b, "group messages", "messages/s", secs > 0 ? (double)b->st.accepted / secs : 0);
	vb_row(b, "deliveries", "deliveries/s", secs > 0 ? (double)b->st.delivered / secs : 0);
	vb_row(b, "delivery p99", "ms", (double)vb_hist_quantile(&b->st.lat, 0.99) / 1e6);
	if (S.rss1 > 0) {
		vb_row(b, "queued copies", "count", copies);
		vb_row(b, "VmRSS per queued copy", "bytes", (double)(S.rss1 - S.rss0) / copies);
		vb_row(b, "Private_Dirty per queued copy", "bytes",
		       (double)(S.pd1 - S.pd0) / copies);
	}
	vb_row(b, "errors", "count", (double)(b->st.errors + b->st.closed + (uint64_t)b->failed));
}

void vb_fanout_setup(struct vb_bench *b)
{
	b->nconns = b->o.members;
	for (int i = 0; i < b->nconns; i++) {
		struct vb_conn *c = &b->conns[i];

		c->idx = i;
		snprintf(c->user, sizeof(c->user), "%s%d", b->o.prefix, i);
		snprintf(c->to, sizeof(c->to), "g:%sgrp", b->o.prefix);
	}
	b->h = (struct vb_hooks){.start = start, .accepted = accepted, .delivered = delivered,
	                         .event = event, .measured = measured, .report = report};
	vb_open(b, 0, b->nconns, NULL);
}
