/*
 * frontends/cli/seen.h - the server ids of the events printed lately.
 *
 * The server pushes an event again, under the same id, when it did not get
 * the ack (a connection that dropped, a server that restarted). The client
 * acks such a copy again but shows it only once.
 */
#ifndef VARTALAP_CLI_SEEN_H
#define VARTALAP_CLI_SEEN_H

#include <stddef.h>
#include <stdint.h>

/*
 * How many ids are remembered. Copies come back after a reconnect, with
 * at most one push window (32 by default) or one stored inbox backlog in
 * between, so a few thousand is wide enough.
 */
#define VT_SEEN_MAX 4096

/* The last VT_SEEN_MAX ids, oldest overwritten first. Zeroed means empty. */
struct vt_seen {
	uint64_t ids[VT_SEEN_MAX];
	size_t count; /* slots in use */
	size_t next;  /* the slot the next id goes to */
};

/*
 * 1 when the server id @id was added before (and is still remembered);
 * else 0, and @id is remembered from now on. An id that is not a server id
 * (not a decimal number) is never remembered: 0.
 */
int vt_seen_check(struct vt_seen *s, const char *id);

#endif /* VARTALAP_CLI_SEEN_H */
