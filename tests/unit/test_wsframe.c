/*
 * test_wsframe.c - the WebSocket gateway's framing: the frame format, the
 * reader that turns a client's byte stream into messages, and the output
 * queue (frontends/ws/frame.c, reader.c, outq.c).
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <vartalap/error.h>

#include "../../frontends/ws/frame.h"
#include "../../frontends/ws/outq.h"
#include "../../frontends/ws/reader.h"
#include "engine_internal.h"
#include "util.h"

#define LIMIT 1000

/* What the reader delivered, in order: "T:text P:ping C:" and so on. */
struct got {
	char log[4096];
	size_t len;
	int stop_at_close;
};

static int record(void *ctx, unsigned opcode, uint8_t *data, size_t len)
{
	struct got *g = ctx;
	char tag = opcode == VT_WS_TEXT     ? 'T'
	           : opcode == VT_WS_BINARY ? 'B'
	           : opcode == VT_WS_PING   ? 'P'
	           : opcode == VT_WS_PONG   ? 'O'
	           : opcode == VT_WS_CLOSE  ? 'C'
	                                    : '?';

	ck_assert_uint_lt(g->len + len + 3, sizeof(g->log));
	g->log[g->len++] = tag;
	g->log[g->len++] = ':';
	memcpy(g->log + g->len, data, len);
	g->len += len;
	g->log[g->len++] = ' ';
	g->log[g->len] = '\0';
	return opcode == VT_WS_CLOSE && g->stop_at_close;
}

/* A client frame: @b0 (FIN, RSV, opcode) and @len bytes of @payload, masked. */
static size_t client_frame(uint8_t *out, uint8_t b0, const void *payload, size_t len)
{
	static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
	size_t n = 0;

	out[n++] = b0;
	if (len < 126) {
		out[n++] = (uint8_t)(0x80 | len);
	} else {
		out[n++] = 0x80 | 126;
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
	}
	memcpy(out + n, mask, 4);
	n += 4;
	for (size_t i = 0; i < len; i++) {
		out[n + i] = ((const uint8_t *)payload)[i] ^ mask[i & 3];
	}
	return n + len;
}

/* Feed @n bytes in reads of @chunk; the last result. Leaves *rx as it is. */
static int feed(struct vt_ws_rx **rx, const uint8_t *in, size_t n, size_t chunk, struct got *g)
{
	int rc = VT_WS_READ_OK;

	for (size_t pos = 0; pos < n && rc == VT_WS_READ_OK; pos += chunk) {
		size_t len = n - pos < chunk ? n - pos : chunk;
		uint8_t *buf = malloc(len);

		ck_assert_ptr_nonnull(buf);
		memcpy(buf, in + pos, len);
		rc = vt_ws_read(rx, buf, len, LIMIT, record, g);
		free(buf);
	}
	return rc;
}

/* The result of reading @n bytes whole, after checking reads of 1 and 3 agree. */
static int read_all_ways(const uint8_t *in, size_t n, struct got *g)
{
	static const size_t chunks[] = {1, 3};
	struct vt_ws_rx *rx = NULL;
	int rc = feed(&rx, in, n, n > 0 ? n : 1, g);

	vt_ws_rx_free(rx);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct got other = {.stop_at_close = g->stop_at_close};

		rx = NULL;
		ck_assert_int_eq(feed(&rx, in, n, chunks[i], &other), rc);
		ck_assert_str_eq(other.log, g->log);
		vt_ws_rx_free(rx);
	}
	return rc;
}

START_TEST(test_header_round_trip)
{
	static const uint64_t lens[] = {0, 1, 125, 126, 65535, 65536, 1ull << 40};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t out[VT_WS_SERVER_HDR_MAX];
		struct vt_ws_hdr h;
		size_t n = vt_ws_hdr_write(out, VT_WS_TEXT, lens[i]);

		ck_assert_uint_eq(n, lens[i] < 126 ? 2 : lens[i] <= 0xffff ? 4 : 10);
		ck_assert_uint_eq(vt_ws_hdr_parse(out, n - 1, &h), 0);
		ck_assert_uint_eq(vt_ws_hdr_parse(out, n, &h), n);
		ck_assert(h.fin && !h.masked && h.rsv == 0 && h.opcode == VT_WS_TEXT);
		ck_assert_uint_eq(h.len, lens[i]);
	}
}
END_TEST

START_TEST(test_unmask_at_any_offset)
{
	static const uint8_t mask[4] = {1, 2, 3, 4};
	uint8_t p[40];

	for (size_t start = 0; start < 8; start++) {
		for (size_t i = 0; i < sizeof(p); i++) {
			p[i] = (uint8_t)(i ^ mask[(start + i) & 3]);
		}
		vt_ws_unmask(p, sizeof(p), mask, start);
		for (size_t i = 0; i < sizeof(p); i++) {
			ck_assert_uint_eq(p[i], i);
		}
	}
}
END_TEST

START_TEST(test_text_in_any_split_keeps_nothing)
{
	uint8_t in[256];
	struct got g = {0};
	size_t n = client_frame(in, 0x81, "hello", 5);

	n += client_frame(in + n, 0x81, "", 0);
	n += client_frame(in + n, 0x8a, "pong", 4);
	ck_assert_int_eq(read_all_ways(in, n, &g), VT_WS_READ_OK);
	ck_assert_str_eq(g.log, "T:hello T: O:pong ");
}
END_TEST

START_TEST(test_fragments_with_a_ping_between)
{
	uint8_t in[256];
	struct got g = {0};
	struct vt_ws_rx *rx = NULL;
	size_t n = client_frame(in, 0x01, "ab\xe2", 3);

	/* A euro sign (E2 82 AC) split between fragments is valid UTF-8. */
	n += client_frame(in + n, 0x89, "are you there", 13);
	n += client_frame(in + n, 0x00, "\x82", 1);
	n += client_frame(in + n, 0x80, "\xac!", 2);
	ck_assert_int_eq(read_all_ways(in, n, &g), VT_WS_READ_OK);
	ck_assert_str_eq(g.log, "P:are you there T:ab\xe2\x82\xac! ");

	/* In the middle of the message, the fragments so far are kept. */
	memset(&g, 0, sizeof(g));
	ck_assert_int_eq(feed(&rx, in, 9, 9, &g), VT_WS_READ_OK);
	ck_assert_ptr_nonnull(rx);
	ck_assert_uint_gt(vt_ws_rx_size(rx), 0);
	ck_assert_int_eq(feed(&rx, in + 9, n - 9, n - 9, &g), VT_WS_READ_OK);
	ck_assert_ptr_null(rx);
}
END_TEST

START_TEST(test_partial_frame_is_kept_then_freed)
{
	uint8_t in[256];
	struct got g = {0};
	struct vt_ws_rx *rx = NULL;
	size_t n = client_frame(in, 0x81, "0123456789", 10);

	for (size_t i = 0; i + 1 < n; i++) {
		ck_assert_int_eq(feed(&rx, in + i, 1, 1, &g), VT_WS_READ_OK);
		ck_assert_ptr_nonnull(rx);
		ck_assert_uint_eq(g.len, 0);
	}
	ck_assert_int_eq(feed(&rx, in + n - 1, 1, 1, &g), VT_WS_READ_OK);
	ck_assert_ptr_null(rx);
	ck_assert_str_eq(g.log, "T:0123456789 ");
}
END_TEST

START_TEST(test_too_big_at_the_header)
{
	uint8_t hdr[] = {0x81, 0xfe, 0x03, 0xe9, 1, 2, 3, 4}; /* 1001 bytes, masked */
	uint8_t frag[64];
	struct got g = {0};
	struct vt_ws_rx *rx = NULL;
	char big[LIMIT];
	size_t n;

	ck_assert_int_eq(feed(&rx, hdr, sizeof(hdr), sizeof(hdr), &g), VT_CLOSE_TOO_BIG);
	vt_ws_rx_free(rx);

	/* Fragments: the message as a whole is what counts. */
	memset(big, 'x', sizeof(big));
	rx = NULL;
	n = client_frame(frag, 0x01, big, 40);
	ck_assert_int_eq(feed(&rx, frag, n, n, &g), VT_WS_READ_OK);
	hdr[0] = 0x80;
	hdr[2] = 0x03;
	hdr[3] = 0xc1; /* 961: 40 + 961 is one over */
	ck_assert_int_eq(feed(&rx, hdr, sizeof(hdr), sizeof(hdr), &g), VT_CLOSE_TOO_BIG);
	vt_ws_rx_free(rx);
}
END_TEST

/* The result of reading @in (@n bytes), in any split. */
static int verdict(const uint8_t *in, size_t n)
{
	struct got g = {0};

	return read_all_ways(in, n, &g);
}

START_TEST(test_protocol_errors)
{
	static const uint8_t unmasked[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
	static const uint8_t top_bit[] = {0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 'x'};
	uint8_t in[512];
	char p126[126];
	size_t n;

	memset(p126, 'p', sizeof(p126));
	ck_assert_int_eq(verdict(unmasked, sizeof(unmasked)), VT_CLOSE_PROTOCOL);
	ck_assert_int_eq(verdict(top_bit, sizeof(top_bit)), VT_CLOSE_PROTOCOL);
	for (uint8_t rsv = 1; rsv < 8; rsv++) {
		ck_assert_int_eq(verdict(in, client_frame(in, (uint8_t)(0x81 | rsv << 4), "x", 1)),
		                 VT_CLOSE_PROTOCOL);
	}
	for (uint8_t op = 3; op < 16; op++) {
		if (op < 8 || op > 10) {
			ck_assert_int_eq(verdict(in, client_frame(in, 0x80 | op, "x", 1)),
			                 VT_CLOSE_PROTOCOL);
		}
	}
	ck_assert_int_eq(verdict(in, client_frame(in, 0x89, p126, 126)), VT_CLOSE_PROTOCOL);
	ck_assert_int_eq(verdict(in, client_frame(in, 0x09, "p", 1)), VT_CLOSE_PROTOCOL);
	ck_assert_int_eq(verdict(in, client_frame(in, 0x80, "x", 1)), VT_CLOSE_PROTOCOL);
	n = client_frame(in, 0x01, "ab", 2);
	n += client_frame(in + n, 0x81, "cd", 2);
	ck_assert_int_eq(verdict(in, n), VT_CLOSE_PROTOCOL);
}
END_TEST

START_TEST(test_bad_utf8_is_1007)
{
	static const char *bad[] = {"a\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "ab\xe2\x82"};
	uint8_t in[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(verdict(in, client_frame(in, 0x81, bad[i], strlen(bad[i]))),
		                 VT_CLOSE_BAD_DATA);
	}
	/* A binary message is not text: any bytes pass. */
	ck_assert_int_eq(verdict(in, client_frame(in, 0x82, "\xff\xfe", 2)), VT_WS_READ_OK);
}
END_TEST

START_TEST(test_close_payloads)
{
	static const struct {
		const char *payload;
		size_t len;
		int rc;
	} cases[] = {
	        {"", 0, VT_WS_READ_STOPPED},
	        {"\x03\xe8"
	         "bye",
	         5, VT_WS_READ_STOPPED},
	        {"\x0f\xa0", 2, VT_WS_READ_STOPPED}, /* 4000 */
	        {"\x03", 1, VT_CLOSE_PROTOCOL},
	        {"\x03\xed", 2, VT_CLOSE_PROTOCOL}, /* 1005 */
	        {"\x03\xe7", 2, VT_CLOSE_PROTOCOL}, /* 999 */
	        {"\x13\x88", 2, VT_CLOSE_PROTOCOL}, /* 5000 */
	        {"\x03\xe8\xff\xfe", 4, VT_CLOSE_BAD_DATA},
	};
	uint8_t in[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct got g = {.stop_at_close = 1};
		size_t n = client_frame(in, 0x88, cases[i].payload, cases[i].len);

		/* Nothing after a close is read. */
		n += client_frame(in + n, 0x81, "late", 4);
		ck_assert_int_eq(read_all_ways(in, n, &g), cases[i].rc);
		ck_assert_ptr_null(strstr(g.log, "late"));
	}
}
END_TEST

/* --- output --- */

/* An event of about 1 KB, so that 70 of them overflow a socket's buffer. */
static struct vt_msg *shared_msg(void)
{
	char body[1000];
	struct vt_msg *m;
	size_t len;

	memset(body, 'x', sizeof(body));
	memcpy(body, "{\"k\":\"", 6);
	memcpy(body + sizeof(body) - 2, "\"}", 2);
	m = vt_msg_new(1, "a", "b", "c", 0, body, sizeof(body));

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(vt_msg_frame(m, &len));
	return m;
}

/* A payload too long for the small nodes' pool: its node is malloc'd. */
#define LONG_COPY 300

/*
 * Queue a 101-like head, two short copies, a shared envelope 70 times over,
 * a long copy and a close: single pieces, then pairs, cross a writev batch
 * oddly, and nodes come from both pools and from malloc.
 */
static void fill(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, struct vt_msg *m)
{
	char long_copy[LONG_COPY];

	memset(long_copy, 'x', sizeof(long_copy));
	ck_assert_int_eq(vt_ws_outq_bytes(q, "HTTP/1.1 101\r\n\r\n", 16), 0);
	ck_assert_int_eq(vt_ws_outq_copy(q, pools, VT_WS_TEXT, "answer", 6), 0);
	ck_assert_int_eq(vt_ws_outq_copy(q, pools, VT_WS_PONG, "p", 1), 0);
	for (int i = 0; i < 70; i++) {
		ck_assert_int_eq(vt_ws_outq_shared(q, pools, (struct vt_frame *)(void *)m), 0);
	}
	ck_assert_int_eq(vt_ws_outq_copy(q, pools, VT_WS_TEXT, long_copy, sizeof(long_copy)), 0);
	ck_assert_int_eq(vt_ws_outq_copy(q, pools, VT_WS_CLOSE, "\x03\xe8", 2), 0);
}

/* The frames of @b after the 16-byte head: opcodes, payload lengths and the long copy. */
static void check_frames(struct evbuffer *b, size_t env_len)
{
	size_t n = evbuffer_get_length(b);
	const uint8_t *p = evbuffer_pullup(b, -1);
	size_t pos = 16, frames = 0;

	ck_assert_mem_eq(p, "HTTP/1.1 101\r\n\r\n", 16);
	while (pos < n) {
		struct vt_ws_hdr h;
		size_t size = vt_ws_hdr_parse(p + pos, n - pos, &h);

		ck_assert_uint_gt(size, 0);
		ck_assert(h.fin && !h.masked);
		if (frames < 2) {
			ck_assert_uint_eq(h.len, frames == 0 ? 6 : 1);
		} else if (frames <= 71) {
			ck_assert_uint_eq(h.opcode, VT_WS_TEXT);
			ck_assert_uint_eq(h.len, env_len);
		} else if (frames == 72) {
			ck_assert_uint_eq(h.opcode, VT_WS_TEXT);
			ck_assert_uint_eq(h.len, LONG_COPY);
			ck_assert(p[pos + size] == 'x' && p[pos + size + LONG_COPY - 1] == 'x');
		} else {
			ck_assert_uint_eq(h.opcode, VT_WS_CLOSE);
		}
		pos += size + h.len;
		frames++;
	}
	ck_assert_uint_eq(pos, n);
	ck_assert_uint_eq(frames, 74);
}

START_TEST(test_writev_through_a_small_socket)
{
	struct vt_ws_outq q = {0};
	struct vt_ws_outq_pools pools;
	struct vt_msg *m = shared_msg();
	struct evbuffer *got = evbuffer_new();
	int sv[2];
	int small = 1;
	uint8_t buf[300];
	size_t env_len;
	int writes = 0;

	vt_ws_outq_pools_init(&pools);
	vt_frame_data((struct vt_frame *)(void *)m, &env_len);
	fill(&q, &pools, m);
	ck_assert_uint_eq(m->refs, 71);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);

	/* Every write stops short: the queue resumes mid-frame each time. */
	while (q.head != NULL) {
		ssize_t n;

		ck_assert_int_eq(vt_ws_outq_write(&q, &pools, sv[0]), 0);
		writes++;
		while ((n = read(sv[1], buf, sizeof(buf))) > 0) {
			evbuffer_add(got, buf, (size_t)n);
		}
	}
	ck_assert_int_gt(writes, 2);
	ck_assert_uint_eq(q.bytes, 0);
	ck_assert_uint_eq(m->refs, 1);
	check_frames(got, env_len);

	/* A closed peer is an error, not a full socket (vartalapd ignores SIGPIPE). */
	signal(SIGPIPE, SIG_IGN);
	close(sv[1]);
	fill(&q, &pools, m);
	ck_assert_int_eq(vt_ws_outq_write(&q, &pools, sv[0]), -1);
	vt_ws_outq_clear(&q, &pools);
	ck_assert_uint_eq(m->refs, 1);
	vt_ws_outq_pools_drain(&pools);
	close(sv[0]);
	evbuffer_free(got);
	vt_msg_unref(m);
}
END_TEST

START_TEST(test_move_to_evbuffer_by_reference)
{
	struct vt_ws_outq q = {0};
	struct vt_ws_outq_pools pools;
	struct vt_msg *m = shared_msg();
	struct evbuffer *b = evbuffer_new();
	size_t env_len;

	vt_ws_outq_pools_init(&pools);
	vt_frame_data((struct vt_frame *)(void *)m, &env_len);
	fill(&q, &pools, m);
	ck_assert_int_eq(vt_ws_outq_move(&q, &pools, b), 0);
	ck_assert_ptr_null(q.head);
	ck_assert_uint_eq(q.bytes, 0);
	ck_assert_uint_eq(m->refs, 71); /* the evbuffer holds them now */
	check_frames(b, env_len);
	evbuffer_free(b);
	ck_assert_uint_eq(m->refs, 1);
	vt_msg_unref(m);
	vt_ws_outq_pools_drain(&pools);
}
END_TEST

/* The frame of @m equals its record's envelope built on its own. */
static void check_msg_frame(struct vt_msg *m)
{
	struct vt_buf want;
	const char *got;
	size_t len;

	vt_buf_init(&want);
	vt_env_encode_record(&want, &m->rec);
	got = vt_msg_frame(m, &len);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, want.len);
	ck_assert_mem_eq(got, want.data, len);
	ck_assert_ptr_eq(vt_msg_frame(m, &len), got); /* made once */
	vt_buf_free(&want);
}

/*
 * A frame is made in the room its message keeps for it; one whose strings
 * escape to more than that room moves to memory of its own (freed with the
 * message: the leak check of the sanitizer build tells).
 */
START_TEST(test_msg_frame_in_room_and_outgrown)
{
	char cid[65];
	struct vt_msg *m = vt_msg_new(1, "alice", "bob", "c-1", 7, "{\"t\":1}", 7);

	ck_assert_ptr_nonnull(m);
	m->rec.id = 42;
	check_msg_frame(m);
	vt_msg_unref(m);

	memset(cid, 0x01, sizeof(cid) - 1); /* each escapes to \u0001 */
	cid[sizeof(cid) - 1] = '\0';
	m = vt_msg_new(1, "alice", "bob", cid, 7, "{}", 2);
	ck_assert_ptr_nonnull(m);
	m->rec.id = 43;
	check_msg_frame(m);
	vt_msg_unref(m);
}
END_TEST

static Suite *wsframe_suite(void)
{
	Suite *s = suite_create("wsframe");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_header_round_trip);
	tcase_add_test(tc, test_unmask_at_any_offset);
	tcase_add_test(tc, test_text_in_any_split_keeps_nothing);
	tcase_add_test(tc, test_fragments_with_a_ping_between);
	tcase_add_test(tc, test_partial_frame_is_kept_then_freed);
	tcase_add_test(tc, test_too_big_at_the_header);
	tcase_add_test(tc, test_protocol_errors);
	tcase_add_test(tc, test_bad_utf8_is_1007);
	tcase_add_test(tc, test_close_payloads);
	tcase_add_test(tc, test_writev_through_a_small_socket);
	tcase_add_test(tc, test_move_to_evbuffer_by_reference);
	tcase_add_test(tc, test_msg_frame_in_room_and_outgrown);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(wsframe_suite());
}
