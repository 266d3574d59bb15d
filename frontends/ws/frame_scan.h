/*
 * frontends/ws/frame_scan.h - watch frame headers on their way to wslay.
 *
 * wslay compares a frame's claimed length with its limit only when the first
 * payload byte arrives, so a peer that claims gigabytes and stalls would be
 * noticed late. The scanner reads every header as the bytes pass, before
 * wslay sees them, and says at once when a data frame, or the message it
 * belongs to, claims more than the limit.
 */
#ifndef VARTALAP_WS_FRAME_SCAN_H
#define VARTALAP_WS_FRAME_SCAN_H

#include <stddef.h>
#include <stdint.h>

struct vt_ws_frame_scan {
	uint64_t limit;        /* largest message, in payload bytes */
	uint64_t payload_left; /* bytes of the current frame still to pass */
	uint64_t msg_len;      /* payload of the data message so far */
	uint8_t hdr[14];       /* the header being read */
	uint8_t hdr_len;       /* bytes of @hdr so far */
	uint8_t hdr_need;      /* its full length, once the second byte is known */
};

/* Start scanning a new connection's input, with messages up to @limit bytes. */
void vt_ws_frame_scan_init(struct vt_ws_frame_scan *s, uint64_t limit);

/*
 * Pass @len bytes of the stream through the scanner. Returns 0, or -1 when
 * a frame header just read claims a data frame or message over the limit
 * (the stream is then of no further use). Framing errors that are not about
 * size (a length with the top bit set, a bad opcode) are left to wslay.
 */
int vt_ws_frame_scan_feed(struct vt_ws_frame_scan *s, const uint8_t *data, size_t len);

#endif /* VARTALAP_WS_FRAME_SCAN_H */
