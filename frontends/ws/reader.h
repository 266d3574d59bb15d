/*
 * frontends/ws/reader.h - turn a client's byte stream into whole messages.
 *
 * No I/O and no state while nothing is partial: a connection between
 * messages holds a NULL pointer. Bytes come in as the socket gives them, in
 * any split; whole messages (text or binary, fragments joined) and control
 * frames go out through a callback. Everything RFC 6455 asks of a server's
 * reader is checked here: masking, reserved bits and opcodes, control
 * frame rules, fragmentation order, the message size limit (as soon as a
 * header claims too much, before its payload), UTF-8 of text messages and
 * of close reasons, and close codes.
 */
#ifndef VARTALAP_WS_READER_H
#define VARTALAP_WS_READER_H

#include <stddef.h>
#include <stdint.h>

/* What is partial: a frame cut short, a message still in fragments. */
struct vt_ws_rx;

/*
 * A whole message (VT_WS_TEXT or VT_WS_BINARY) or a control frame
 * (VT_WS_CLOSE, VT_WS_PING, VT_WS_PONG) with its payload, valid during the
 * call. A close frame's payload is empty or a valid code and a UTF-8
 * reason. Return 0 to go on, nonzero to stop reading for good.
 */
typedef int (*vt_ws_frame_fn)(void *ctx, unsigned opcode, uint8_t *data, size_t len);

/* vt_ws_read() results besides the close codes. */
#define VT_WS_READ_OK      0
#define VT_WS_READ_STOPPED 1

/*
 * Take @len bytes from the peer (@data, which is unmasked in place, so it
 * must be writable). *@rx keeps what is
 * partial between calls; it is allocated when needed and freed (set to
 * NULL) when nothing is partial. Messages are at most @limit bytes.
 *
 * Returns VT_WS_READ_OK; VT_WS_READ_STOPPED when @fn asked to stop; a
 * close code (1002 protocol error, 1007 bad UTF-8, 1009 too big) when the
 * peer broke the rules; or VT_ENOMEM. After anything but VT_WS_READ_OK the
 * stream is of no further use: free *@rx.
 */
int vt_ws_read(struct vt_ws_rx **rx, uint8_t *data, size_t len, uint64_t limit, vt_ws_frame_fn fn,
               void *ctx);

/* Free what vt_ws_read() kept. Accepts NULL. */
void vt_ws_rx_free(struct vt_ws_rx *rx);

/* Bytes of buffer *@rx holds (a partial frame, a message's fragments). */
size_t vt_ws_rx_size(const struct vt_ws_rx *rx);

#endif /* VARTALAP_WS_READER_H */
