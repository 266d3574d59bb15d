/*
 * frontends/cli/outbox.h - the envelopes sent and not answered yet.
 *
 * Every envelope the server answers (a message, a read receipt, a group
 * change) stays here, in the order it was made, until its answer comes:
 * `accepted`, or an error after which sending it again cannot help. Until
 * then it is sent again, as it was, with the same client id: after a
 * retryable error, and on every new connection.
 *
 * Envelopes over the server's size limit. The server answers one with
 * `too_large` and no ref (it reads no field of it), or closes the
 * connection with 1009 (a WebSocket message over --max-frame). Its limit is
 * not told, but an envelope the server answered by its client id was read
 * whole, so none as long is over it; nor is one of VT_OUTBOX_FITS_MIN
 * bytes. So only an envelope longer than any read whole on the connection
 * may be over the limit, and the outbox has one such in flight at a time:
 * the next waits for the answer to the one before, and so, to keep their
 * order, do the envelopes made after it. A too_large without a ref, or a
 * close 1009, is then about the one in flight, whatever else is.
 */
#ifndef VARTALAP_CLI_OUTBOX_H
#define VARTALAP_CLI_OUTBOX_H

#include <stddef.h>
#include <sys/queue.h>

struct vt_outbox_item {
	TAILQ_ENTRY(vt_outbox_item) link;
	char id[65]; /* the client id its answer names in "ref" */
	int sent;    /* sent on the current connection, its answer not in yet */
	size_t len;
	char text[]; /* the envelope, as sent the first time */
};

/*
 * The smallest limit a server sets on one envelope and on one WebSocket
 * message: vartalapd takes no --max-message or --max-frame below it.
 */
#define VT_OUTBOX_FITS_MIN 256

struct vt_outbox {
	TAILQ_HEAD(, vt_outbox_item) items; /* oldest first */
	size_t count;
	size_t bytes; /* of all the envelopes' texts */
	size_t fits; /* bytes no envelope is refused for on this connection */
	/* sent, longer than fits and not answered: the one envelope in flight
	 * that may be over the server's limit, or NULL */
	struct vt_outbox_item *unsure;
};

/* Start @o empty. */
void vt_outbox_init(struct vt_outbox *o);

/*
 * Keep a copy of the envelope @text (@len bytes) with client id @id, not
 * sent yet. Returns 0, or -1 when out of memory.
 */
int vt_outbox_add(struct vt_outbox *o, const char *id, const char *text, size_t len);

/* The envelope with client id @id, or NULL. */
struct vt_outbox_item *vt_outbox_find(struct vt_outbox *o, const char *id);

/* Forget @it: it was answered. */
void vt_outbox_remove(struct vt_outbox *o, struct vt_outbox_item *it);

/*
 * An answer named @it by its client id: the server read it whole, so no
 * envelope as long is over its limit. Call it before acting on the answer.
 */
void vt_outbox_read(struct vt_outbox *o, struct vt_outbox_item *it);

/*
 * Send every envelope not sent yet, oldest first, through @send (which
 * returns 0 once the text is queued on the connection); stops at the first
 * that @send refuses, and at one that may be over the server's limit while
 * another such waits for its answer. Returns how many were sent.
 */
size_t vt_outbox_flush(struct vt_outbox *o, int (*send)(void *arg, const char *text, size_t len),
                       void *arg);

/*
 * The connection is gone: no answer will come for what was sent on it, and
 * the next may reach a server with another limit.
 */
void vt_outbox_unsend_all(struct vt_outbox *o);

/* Free every envelope. */
void vt_outbox_clear(struct vt_outbox *o);

#endif /* VARTALAP_CLI_OUTBOX_H */
