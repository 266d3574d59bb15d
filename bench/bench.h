/*
 * bench/bench.h - the load generator's shared state.
 *
 * One process, one libevent loop, one core: every client connection is a
 * bufferevent in that loop. The protocol layer (client.c with vt.c, ws.c,
 * mqtt.c) turns bytes into a few events (ready, accepted, delivered,
 * receipt) and calls the running scenario's hooks; the scenarios decide
 * what to send next. Times are nanoseconds of CLOCK_MONOTONIC.
 */
#ifndef VB_BENCH_H
#define VB_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "hist.h"

enum vb_proto { VB_VT, VB_RELAY, VB_MQTT };

struct vb_opts {
	const char *scenario;
	enum vb_proto proto;
	const char *host;
	int port;
	const char *data_dir;    /* where dev-secret is (vartalapd only) */
	const char *secret_file; /* the token key, instead of DATA_DIR/dev-secret */
	const char *prefix;      /* user names: PREFIX + index */
	const char *label;       /* the server's name in tables */
	const char *csv;         /* append one result line here */
	int pairs;               /* p2p and offline */
	int peer_port;           /* p2p: one side of every pair on this node */
	int half_port;           /* p2p: every other pair, both sides, on this node */
	int window;              /* closed loop: messages in flight per sender */
	double rate;             /* messages/s over all senders; 0: closed loop */
	int size;                /* bytes of one message envelope */
	int conns;               /* idle */
	int members;             /* fanout */
	int queued;              /* fanout: messages sent to a paused group */
	long count;              /* offline: stop after this many accepted */
	int drain;               /* offline: reconnect the recipients afterwards */
	double seconds;          /* measured part of a run */
	double warmup;
	double timeout;          /* hard limit of the whole run, seconds */
	int server_pid;
	char **spawn;            /* restart: the server command line */
};

struct vb_conn {
	struct vb_bench *b;
	struct bufferevent *bev;
	struct vb_conn *peer;    /* p2p: whom this one sends to */
	int idx;                 /* user index */
	int port;                /* the server it connects to; 0: --port */
	int ready;
	int paused;              /* does not ack what arrives */
	uint32_t inflight;       /* own messages not yet done */
	uint64_t seq;            /* messages sent */
	uint32_t rng;
	uint16_t mqtt_id;
	char user[24];
	char to[24];             /* destination user, topic or group */
};

struct vb_stats {
	uint64_t sent, accepted, delivered, acked, receipts;
	uint64_t frames_in, frames_out, errors, closed;
	struct vb_hist lat;
};

struct vb_bench;

struct vb_hooks {
	void (*start)(struct vb_bench *b);              /* every connection is ready */
	void (*accepted)(struct vb_conn *c);            /* the server took one of c's */
	void (*refused)(struct vb_conn *c);             /* ... or answered an error */
	void (*delivered)(struct vb_conn *c, uint64_t t, uint64_t seq); /* c got one */
	void (*event)(struct vb_conn *c, const char *type, const char *ref);
	void (*tick)(struct vb_bench *b);               /* every 100 us at a rate, else 1 ms */
	void (*progress)(struct vb_bench *b, char *out, size_t cap);
	void (*report)(struct vb_bench *b);
	void (*measured)(struct vb_bench *b);           /* instead of stopping */
};

struct vb_bench {
	struct event_base *base;
	struct vb_opts o;
	struct vb_hooks h;
	struct vb_conn *conns;
	int nconns, opened, connecting, nready, failed;
	int open_next, open_end;  /* connections still to open */
	struct vb_stats st;
	uint64_t t_begin;        /* the measured part began */
	uint64_t t_end;
	int measuring, done;
	unsigned char key[128];  /* token signing key */
	size_t key_len;
	char pad[65536];         /* filler of the right length for messages */
	void *scn;               /* the scenario's own state */
	struct event *tick_ev, *sec_ev, *phase_ev, *limit_ev;
	uint64_t t_start;        /* the process began */
	struct vb_stats last;    /* at the previous progress line */
};

uint64_t vb_now(void);

/* client.c: connections */
void vb_open(struct vb_bench *b, int first, int n, const char *path);
void vb_close_all(struct vb_bench *b, int first, int n);

/* vt.c and friends: what a connection sends */
int vb_send_msg(struct vb_conn *c, uint64_t t);
void vb_send_raw(struct vb_conn *c, const char *text, size_t n);
int vb_key_load(struct vb_bench *b);
int vb_token(struct vb_bench *b, const char *user, char *out, size_t cap);

/* run.c: the loop, warm-up, measurement, progress */
int vb_run(struct vb_bench *b);
void vb_begin_measure(struct vb_bench *b);
void vb_stop(struct vb_bench *b);

/* report.c */
void vb_row(struct vb_bench *b, const char *metric, const char *unit, double value);
void vb_print_rate_table(struct vb_bench *b, const char *mode);
double vb_secs(struct vb_bench *b);

/* procmem.c: a server's memory, in bytes, or -1 */
long vb_proc_rss(int pid);
long vb_proc_private_dirty(int pid);

/* scenarios */
void vb_p2p_setup(struct vb_bench *b);
void vb_offline_setup(struct vb_bench *b);
void vb_fanout_setup(struct vb_bench *b);
void vb_idle_setup(struct vb_bench *b);
void vb_restart_setup(struct vb_bench *b);

#endif
