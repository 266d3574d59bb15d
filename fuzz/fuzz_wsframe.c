/*
 * fuzz/fuzz_wsframe.c - WebSocket framing as the gateway drives it.
 *
 * A wslay server context set up as frontends/ws/conn.c sets it up: the
 * gateway's default message limit, a receive callback that hands over what
 * the socket gave and then reports "would block", a send callback that
 * takes everything, and a message callback with the gateway's rules (a
 * 1-byte close payload is a protocol error, a binary message starts a close
 * with 1003, a text message goes to the envelope decoder and is answered as
 * the engine would). The loop alternates reads and writes like the service
 * event, and fails the connection with 1002 on a framing error.
 *
 * The callbacks of conn.c are static and bound to a bufferevent, so they
 * are mirrored here rather than reused; keep the two in step.
 *
 * Input: byte 0 chooses the read size (low 6 bits, 0 = everything at once),
 * whether every read is followed by an empty socket (bit 6), and the form
 * of the rest (bit 7). Clear: the rest is the byte stream as received. Set:
 * the rest is a list of frames the driver encodes, so mutations keep the
 * framing mostly well formed: [b0: FIN, RSV, opcode][flags: bit 0 unmasked,
 * bits 1-2 length form][len][payload, len bytes or what is left].
 */
#include <string.h>

#include <wslay/wslay.h>

#include <vartalap/error.h>

#include "../frontends/common/frontend.h"
#include "buf.h"
#include "envelope.h"
#include "json.h"

#include "fuzz.h"

/* Close codes the gateway uses (RFC 6455, section 7.4.1). */
#define CLOSE_UNSUPPORTED 1003

struct peer {
	const uint8_t *in;
	size_t in_len;
	size_t in_pos;
	size_t chunk;       /* most bytes one read hands over; 0 for all */
	int empty_between;  /* report "would block" after every read */
	int starved;        /* the last read was followed by an empty socket */
	size_t sent;        /* bytes the server wrote */
	int open;
	int proto_error;
	int close_pending;
	uint16_t close_code;
	struct vt_fe_config cfg;
	struct vt_buf reply;
};

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
	struct peer *p = user;
	size_t n = p->in_len - p->in_pos;

	if (n == 0 || p->starved) {
		p->starved = 0;
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (p->chunk != 0 && n > p->chunk) {
		n = p->chunk;
	}
	if (n > len) {
		n = len;
	}
	memcpy(buf, p->in + p->in_pos, n);
	p->in_pos += n;
	p->starved = p->empty_between;
	return (ssize_t)n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
	struct peer *p = user;

	FUZZ_CHECK(len > 0, "empty write");
	p->sent += len;
	return (ssize_t)len;
}

/* What the engine does with a text message: decode, answer one envelope. */
static void answer(wslay_event_context_ptr ctx, struct peer *p, const uint8_t *msg, size_t len)
{
	static struct vt_env env;
	struct wslay_event_msg out;
	const char *reason = NULL;
	int rc = vt_env_decode((const char *)msg, len, &env, &reason);

	/* wslay checked the UTF-8 of a text message; the scanner must agree. */
	FUZZ_CHECK(rc != VT_EUTF8, "wslay passed text the JSON scanner calls bad UTF-8");

	vt_buf_reset(&p->reply);
	if (rc == 0) {
		vt_env_encode_accepted(&p->reply, env.id, 1, 0);
	} else {
		vt_env_encode_error(&p->reply, rc, reason, env.id);
	}
	FUZZ_CHECK(!vt_buf_failed(&p->reply), "reply buffer failed");

	/* As the transport's send op: refuse over the output limit. */
	if (wslay_event_get_queued_msg_length(ctx) > p->cfg.out_limit) {
		return;
	}
	out.opcode = WSLAY_TEXT_FRAME;
	out.msg = (const uint8_t *)p->reply.data;
	out.msg_length = p->reply.len;
	rc = wslay_event_queue_msg(ctx, &out);
	FUZZ_CHECK(rc == 0 || rc == WSLAY_ERR_NO_MORE_MSG, "queueing a reply failed");
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
	struct peer *p = user;

	FUZZ_CHECK(arg->msg_length <= p->cfg.max_message, "message over the configured limit");
	if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->msg_length == 1) {
		p->proto_error = 1;
		return;
	}
	if (arg->opcode == WSLAY_BINARY_FRAME) {
		if (p->open) {
			p->open = 0;
			p->close_pending = 1;
			p->close_code = CLOSE_UNSUPPORTED;
		}
		return;
	}
	if (arg->opcode != WSLAY_TEXT_FRAME || !p->open) {
		return;
	}
	answer(ctx, p, arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks callbacks = {
        .recv_callback = on_recv,
        .send_callback = on_send,
        .on_msg_recv_callback = on_msg,
};

/* Queued messages first, then the close frame a binary message asked for. */
static int pump_out(wslay_event_context_ptr ctx, struct peer *p)
{
	static const char reason[] = "binary frames are not supported";

	if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0) {
		return -1;
	}
	if (!p->close_pending) {
		return 0;
	}
	p->close_pending = 0;
	wslay_event_queue_close(ctx, p->close_code, (const uint8_t *)reason, sizeof(reason) - 1);
	return wslay_event_want_write(ctx) ? wslay_event_send(ctx) : 0;
}

/* Encode the frame list of the structured form into @out; its length. */
static size_t build_frames(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t i = 0;
	size_t o = 0;

	while (i + 3 <= n) {
		uint8_t b0 = in[i];
		uint8_t flags = in[i + 1];
		size_t len = in[i + 2];
		uint8_t mask[4] = {in[i + 2], 0x5a, (uint8_t)(b0 ^ 0xa5), 0x3c};
		int masked = !(flags & 1);
		uint64_t declared;
		size_t len_at;

		i += 3;
		if (len > n - i) {
			len = n - i;
		}
		declared = len;
		out[o++] = b0;
		len_at = o;
		switch ((flags >> 1) & 3) {
		case 0: /* the shortest form the length allows */
			if (len < 126) {
				out[o++] = (uint8_t)len;
				break;
			}
			/* fall through */
		case 1: /* 16-bit form, even for short payloads */
			out[o++] = 126;
			out[o++] = (uint8_t)(len >> 8);
			out[o++] = (uint8_t)len;
			break;
		case 3: /* a length far beyond the payload that follows */
			declared = (uint64_t)flags << 56 | (uint64_t)len << 8 | 0xff;
			/* fall through */
		default: /* 64-bit form */
			out[o++] = 127;
			for (int k = 7; k >= 0; k--) {
				out[o++] = (uint8_t)(declared >> (8 * k));
			}
			break;
		}
		if (masked) {
			out[len_at] |= 0x80;
			memcpy(out + o, mask, 4);
			o += 4;
		}
		for (size_t k = 0; k < len; k++) {
			out[o++] = masked ? (uint8_t)(in[i + k] ^ mask[k & 3]) : in[i + k];
		}
		i += len;
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wslay_event_context_ptr ctx;
	uint8_t *stream = NULL;
	struct peer p;
	int rounds = 0;

	if (size == 0) {
		return 0;
	}
	memset(&p, 0, sizeof(p));
	vt_fe_config_init(&p.cfg);
	vt_buf_init(&p.reply);
	p.chunk = data[0] & 0x3f;
	p.empty_between = (data[0] >> 6) & 1;
	p.open = 1;
	if (data[0] & 0x80) {
		/* Each frame of 3 input bytes and a payload grows by at most 14. */
		stream = malloc(size / 3 * 14 + size + 1);
		FUZZ_CHECK(stream != NULL, "out of memory");
		p.in = stream;
		p.in_len = build_frames(data + 1, size - 1, stream);
	} else {
		p.in = data + 1;
		p.in_len = size - 1;
	}

	FUZZ_CHECK(wslay_event_context_server_init(&ctx, &callbacks, &p) == 0, "wslay init failed");
	wslay_event_config_set_max_recv_msg_length(ctx, p.cfg.max_message);

	/* One turn of the service event per round: read, then write. */
	for (;;) {
		int readable = p.in_pos < p.in_len || p.starved;

		FUZZ_CHECK(++rounds <= 4 * (int)size + 16, "no progress");
		if (wslay_event_want_read(ctx) && readable) {
			int r = wslay_event_recv(ctx);

			FUZZ_CHECK(r != WSLAY_ERR_NOMEM, "wslay ran out of memory");
			if (r != 0 || p.proto_error) {
				/* The gateway writes a 1002 close itself, then stops. */
				if (!wslay_event_get_close_sent(ctx)) {
					p.sent += 4;
				}
				wslay_event_shutdown_read(ctx);
				wslay_event_shutdown_write(ctx);
				p.proto_error = 0;
			}
		} else if (!wslay_event_want_read(ctx)) {
			/* After the close handshake the gateway drops what comes. */
			p.in_pos = p.in_len;
			p.starved = 0;
		}
		if (pump_out(ctx, &p) != 0) {
			break;
		}

		/* Memory stays bounded: what waits to go out is capped. */
		FUZZ_CHECK(wslay_event_get_queued_msg_length(ctx) <=
		                   p.cfg.out_limit + p.cfg.max_message + 4096,
		           "output queue grew without bound");

		readable = p.in_pos < p.in_len || p.starved;
		if (!(wslay_event_want_read(ctx) && readable) && !wslay_event_want_write(ctx)) {
			break; /* the peer sent everything and waits, or both sides closed */
		}
	}

	wslay_event_context_free(ctx);
	vt_buf_free(&p.reply);
	free(stream);
	return 0;
}
