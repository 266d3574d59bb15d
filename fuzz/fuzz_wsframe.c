/*
 * fuzz/fuzz_wsframe.c - the gateway's WebSocket framing, both ways.
 *
 * Input: the reader (frontends/ws/reader.c) takes the client's byte stream
 * twice, once whole and once in reads of a chosen size, with the gateway's
 * message limit. Output: every message it delivers is answered through the
 * output queue (frontends/ws/outq.c) as the gateway answers, a text message
 * with an envelope the engine would send and a ping with its pong, next to
 * a shared event envelope; the queue is written through a socket pair that
 * takes a few bytes at a time, and also moved into an evbuffer as for TLS.
 *
 * Checked: both reads deliver the same messages and end the same way; no
 * message over the limit and no control frame over 125 bytes is delivered;
 * a delivered text message is UTF-8 to the JSON scanner too, and a close
 * payload has a valid code or none; what the reader keeps between reads
 * stays bounded; both output paths produce the same bytes, which parse back
 * into the frames queued, unmasked and final.
 *
 * Input layout: byte 0 chooses the read size (low 6 bits, 0 = everything at
 * once), a small message limit of 100 bytes (bit 6, to reach 1009), and the
 * form of the rest (bit 7). Clear: the rest is the byte stream as received.
 * Set: the rest is a list of frames the driver encodes, so mutations keep
 * the framing mostly well formed: [b0: FIN, RSV, opcode][flags: bit 0
 * unmasked, bits 1-2 length form][len][payload, len bytes or what is left].
 */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <vartalap/error.h>

#include "../frontends/common/frontend.h"
#include "../frontends/ws/frame.h"
#include "../frontends/ws/outq.h"
#include "../frontends/ws/reader.h"
#include "buf.h"
#include "engine_internal.h"
#include "envelope.h"

#include "fuzz.h"

struct run {
	uint64_t limit;
	uint64_t digest; /* of every delivery, in order */
	size_t delivered;
	int answer; /* queue answers (the whole-stream pass only) */
	struct vt_ws_outq *out[2];
	struct vt_ws_outq_pools pools; /* the nodes of queued frames (outq.h) */
	size_t frames;  /* frames queued on each */
	size_t payload; /* their payload bytes */
	struct vt_buf reply;
};

static void mix(struct run *r, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		r->digest = (r->digest ^ p[i]) * 1099511628211ull;
	}
}

static void queue_both(struct run *r, unsigned opcode, const void *data, size_t len)
{
	for (int i = 0; i < 2; i++) {
		FUZZ_CHECK(vt_ws_outq_copy(r->out[i], &r->pools, opcode, data, len) == 0, "out of memory");
	}
	r->frames++;
	r->payload += len;
}

/* What the engine does with a text message: decode, answer one envelope. */
static void answer(struct run *r, const uint8_t *msg, size_t len)
{
	static struct vt_env env;
	const char *reason = NULL;
	int rc = vt_env_decode((const char *)msg, len, &env, &reason);

	FUZZ_CHECK(rc != VT_EUTF8, "the reader passed text the JSON scanner calls bad UTF-8");
	if (!r->answer) {
		return;
	}
	vt_buf_reset(&r->reply);
	if (rc == 0) {
		vt_env_encode_accepted(&r->reply, env.id, 1, 0);
	} else {
		vt_env_encode_error(&r->reply, rc, reason, env.id);
	}
	FUZZ_CHECK(!vt_buf_failed(&r->reply), "reply buffer failed");
	queue_both(r, VT_WS_TEXT, r->reply.data, r->reply.len);
}

static int on_frame(void *ctx, unsigned opcode, uint8_t *data, size_t len)
{
	struct run *r = ctx;
	uint8_t tag[2] = {(uint8_t)opcode, (uint8_t)len};

	r->delivered++;
	mix(r, tag, sizeof(tag));
	mix(r, data, len);
	switch (opcode) {
	case VT_WS_TEXT:
		FUZZ_CHECK(len <= r->limit, "a message over the limit was delivered");
		answer(r, data, len);
		return 0;
	case VT_WS_BINARY:
		FUZZ_CHECK(len <= r->limit, "a message over the limit was delivered");
		return 0;
	case VT_WS_PING:
	case VT_WS_PONG:
		FUZZ_CHECK(len <= VT_WS_CONTROL_MAX, "a control frame over 125 bytes");
		if (opcode == VT_WS_PING && r->answer) {
			queue_both(r, VT_WS_PONG, data, len);
		}
		return 0;
	case VT_WS_CLOSE:
		FUZZ_CHECK(len <= VT_WS_CONTROL_MAX, "a control frame over 125 bytes");
		FUZZ_CHECK(len == 0 || (len >= 2 &&
		                        vt_ws_close_code_valid(((unsigned)data[0] << 8) | data[1])),
		           "a close payload without a valid code");
		return 1;
	default:
		FUZZ_CHECK(0, "an opcode that is no message or control frame");
		return 1;
	}
}

/* Feed @n bytes in reads of @chunk (0: all at once); the reader's result. */
static int read_stream(struct run *r, const uint8_t *in, size_t n, size_t chunk)
{
	struct vt_ws_rx *rx = NULL;
	size_t pos = 0;
	int rc = VT_WS_READ_OK;

	while (pos < n && rc == VT_WS_READ_OK) {
		size_t len = chunk != 0 && n - pos > chunk ? chunk : n - pos;
		uint8_t *buf = malloc(len); /* exactly the read: overreads show */

		FUZZ_CHECK(buf != NULL, "out of memory");
		memcpy(buf, in + pos, len);
		rc = vt_ws_read(&rx, buf, len, r->limit, on_frame, r);
		free(buf);
		pos += len;
		FUZZ_CHECK(rc != VT_ENOMEM, "the reader ran out of memory");
		FUZZ_CHECK(vt_ws_rx_size(rx) <= 4 * (r->limit + VT_WS_HDR_MAX) + 2 * len + 64,
		           "the reader kept more than a frame and a read");
	}
	FUZZ_CHECK(rc == VT_WS_READ_OK || rc == VT_WS_READ_STOPPED || rc == 1002 || rc == 1007 ||
	                   rc == 1009,
	           "an unexpected result from the reader");
	vt_ws_rx_free(rx);
	return rc;
}

/* Write @q through a socket pair that takes little at a time; the bytes. */
static void write_through_socket(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools,
				 struct evbuffer *got)
{
	int sv[2];
	int small = 1;
	uint8_t buf[512];

	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair failed");
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	for (int turns = 0; q->head != NULL || turns == 0; turns++) {
		ssize_t n;

		FUZZ_CHECK(turns < 1000000, "writing made no progress");
		FUZZ_CHECK(vt_ws_outq_write(q, pools, sv[0]) == 0, "writing to the socket failed");
		while ((n = read(sv[1], buf, sizeof(buf))) > 0) {
			evbuffer_add(got, buf, (size_t)n);
		}
	}
	FUZZ_CHECK(q->bytes == 0, "an empty queue still counts bytes");
	close(sv[0]);
	close(sv[1]);
}

/* The bytes must be exactly the queued frames: final, unmasked, whole. */
static void parse_back(struct run *r, struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	const uint8_t *p = evbuffer_pullup(b, -1);
	size_t pos = 0, frames = 0, payload = 0;

	while (pos < n) {
		struct vt_ws_hdr h;
		size_t size = vt_ws_hdr_parse(p + pos, n - pos, &h);

		FUZZ_CHECK(size > 0 && h.fin && !h.masked && h.rsv == 0, "a malformed frame out");
		FUZZ_CHECK(h.len <= n - pos - size, "a frame out cut short");
		pos += size + (size_t)h.len;
		payload += (size_t)h.len;
		frames++;
	}
	FUZZ_CHECK(frames == r->frames && payload == r->payload, "frames out differ from queued");
}

/* Answer through both output paths and compare what each produced. */
static void check_output(struct run *r)
{
	static const char body[] = "{\"k\":\"shared\"}";
	struct vt_msg *m = vt_msg_new(1, "a", "b", "c1", 0, body, sizeof(body) - 1);
	struct evbuffer *written = evbuffer_new();
	struct evbuffer *moved = evbuffer_new();
	size_t len;

	FUZZ_CHECK(m != NULL && written != NULL && moved != NULL, "out of memory");
	FUZZ_CHECK(vt_msg_frame(m, &len) != NULL, "encoding failed");
	for (int i = 0; i < 2; i++) {
		struct vt_frame *f = (struct vt_frame *)(void *)m;

		FUZZ_CHECK(vt_ws_outq_shared(r->out[i], &r->pools, f) == 0, "out of memory");
	}
	r->frames++;
	r->payload += len;
	vt_msg_unref(m); /* the queues hold it now */

	write_through_socket(r->out[0], &r->pools, written);
	FUZZ_CHECK(vt_ws_outq_move(r->out[1], &r->pools, moved) == 0, "moving the queue failed");
	FUZZ_CHECK(r->out[1]->head == NULL && r->out[1]->bytes == 0, "moving left frames");
	FUZZ_CHECK(evbuffer_get_length(written) == evbuffer_get_length(moved) &&
	                   memcmp(evbuffer_pullup(written, -1), evbuffer_pullup(moved, -1),
	                          evbuffer_get_length(moved)) == 0,
	           "writev and the TLS path produced different bytes");
	parse_back(r, moved);
	evbuffer_free(written);
	evbuffer_free(moved); /* releases the shared envelope */
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
	struct vt_ws_outq q0 = {0}, q1 = {0};
	struct run whole = {0}, split = {0};
	struct vt_fe_config cfg;
	uint8_t *stream = NULL;
	const uint8_t *in;
	size_t in_len;
	int rc_whole, rc_split;

	if (size == 0) {
		return 0;
	}
	vt_fe_config_init(&cfg);
	whole.limit = split.limit = (data[0] & 0x40) ? 100 : cfg.max_message;
	if (data[0] & 0x80) {
		/* Each frame of 3 input bytes and a payload grows by at most 14. */
		stream = malloc(size / 3 * 14 + size + 1);
		FUZZ_CHECK(stream != NULL, "out of memory");
		in = stream;
		in_len = build_frames(data + 1, size - 1, stream);
	} else {
		in = data + 1;
		in_len = size - 1;
	}

	whole.answer = 1;
	whole.out[0] = &q0;
	whole.out[1] = &q1;
	vt_ws_outq_pools_init(&whole.pools);
	vt_buf_init(&whole.reply);
	rc_whole = read_stream(&whole, in, in_len, 0);
	rc_split = read_stream(&split, in, in_len, data[0] & 0x3f);
	FUZZ_CHECK(rc_whole == rc_split, "split reads ended otherwise than one read");
	FUZZ_CHECK(whole.delivered == split.delivered && whole.digest == split.digest,
	           "split reads delivered otherwise than one read");

	check_output(&whole);
	vt_ws_outq_pools_drain(&whole.pools);
	vt_buf_free(&whole.reply);
	free(stream);
	return 0;
}
