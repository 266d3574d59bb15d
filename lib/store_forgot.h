/*
 * store_forgot.h - the warning a store writes when it forgot (sender,
 * client id) pairs before their dedup window ended, to make room: at most
 * one line a minute, each counting every such pair since the last one.
 * Shared by the LMDB and memory backends.
 */
#ifndef VARTALAP_STORE_FORGOT_H
#define VARTALAP_STORE_FORGOT_H

#include <stdatomic.h>
#include <stdint.h>

struct vt__forgot {
	const char *who; /* the backend, first in the line */
	int64_t window;  /* its dedup window, ms */
	int64_t warned;  /* wall ms of the last line */
	uint64_t n;      /* pairs forgotten inside their window since then */
	int64_t young;   /* the time of the youngest of them */
	atomic_uint_fast64_t total; /* all of them since open, read from any thread */
};

/*
 * Count @n pairs forgotten, the youngest of them from @ts, if that one was
 * still inside the window (else the expiry sweep would have taken them),
 * and write the line when a minute has passed since the last.
 */
void vt__forgot_add(struct vt__forgot *f, uint64_t n, int64_t ts);

/* Write the line for what is counted: when a minute has passed, or now with @force. */
void vt__forgot_report(struct vt__forgot *f, int force);

/* The pairs counted since open; safe from another thread than the one counting. */
uint64_t vt__forgot_total(const struct vt__forgot *f);

#endif
