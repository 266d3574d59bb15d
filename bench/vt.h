/*
 * bench/vt.h - Vartalap envelopes as the load generator speaks them.
 *
 * A message body is {"t":T,"s":S,"p":"..."}: T is the time the message was
 * meant to be sent (ns since an arbitrary origin), S the sender's sequence
 * number, and "p" pads the envelope to the size asked for. The same bytes
 * go to the relay and, as the PUBLISH payload, to the MQTT broker, so all
 * three carry the same payload.
 */
#ifndef VB_VT_H
#define VB_VT_H

#include <stddef.h>

#include "bench.h"

/* Ack batching: the ids owed an ack are gathered over one read callback. */
void vb_ack_begin(struct vb_conn *c);
void vb_ack_flush(struct vb_conn *c);

/* A text frame from the server (or a relayed envelope) arrived on @c. */
void vb_vt_text(struct vb_conn *c, char *p, size_t n);

/* A message body (or MQTT payload) arrived on @c: record the delivery. */
void vb_vt_body(struct vb_conn *c, const char *p, size_t n);

#endif
