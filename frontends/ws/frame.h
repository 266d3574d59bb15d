/*
 * frontends/ws/frame.h - the WebSocket frame format (RFC 6455, section 5.2).
 *
 * Pure functions over bytes: header parsing and writing, unmasking, close
 * codes. The reader (reader.h) and the output queue (outq.h) are built on
 * them.
 */
#ifndef VARTALAP_WS_FRAME_H
#define VARTALAP_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Opcodes. */
enum {
	VT_WS_CONT = 0x0,
	VT_WS_TEXT = 0x1,
	VT_WS_BINARY = 0x2,
	VT_WS_CLOSE = 0x8,
	VT_WS_PING = 0x9,
	VT_WS_PONG = 0xa,
};

/* The longest header a client sends (14 bytes) and a server sends (10). */
#define VT_WS_HDR_MAX        14
#define VT_WS_SERVER_HDR_MAX 10

/* The most payload a control frame carries, and a close reason after its code. */
#define VT_WS_CONTROL_MAX 125
#define VT_WS_REASON_MAX  123

/* One frame header as it came. */
struct vt_ws_hdr {
	uint64_t len; /* payload bytes */
	uint8_t size; /* header bytes */
	uint8_t fin;
	uint8_t rsv; /* the three reserved bits, 0 unless an extension */
	uint8_t opcode;
	uint8_t masked;
	uint8_t mask[4];
};

/*
 * Parse the header at the start of @p (@n bytes). Returns its size, or 0
 * while the bytes stop short of a whole header.
 */
size_t vt_ws_hdr_parse(const uint8_t *p, size_t n, struct vt_ws_hdr *h);

/*
 * Write the header of an unmasked (server) frame with FIN set: @opcode,
 * @len payload bytes. @out holds VT_WS_SERVER_HDR_MAX bytes; returns how many
 * were written (2, 4 or 10).
 */
size_t vt_ws_hdr_write(uint8_t *out, unsigned opcode, uint64_t len);

/*
 * Unmask @n payload bytes in place; @pos is the offset of @p in the payload
 * (the mask repeats every 4 bytes).
 */
void vt_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t pos);

/*
 * True for a close code a peer may send (section 7.4): 1000 to 1014 but
 * for 1004, 1005 and 1006 (reserved or never on the wire), and 3000 to
 * 4999 (registered and private use).
 */
int vt_ws_close_code_valid(unsigned code);

#endif /* VARTALAP_WS_FRAME_H */
