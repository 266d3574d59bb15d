/*
 * examples/two_users.c - two users chatting through one engine, in one process.
 *
 * No sockets and no event loop: each user's "client" is a queue of frames the
 * engine sent it, and the program plays both clients in turn. Storage is the
 * memory backend; the clocks are a fake that moves only when asked, so the run
 * is the same every time.
 *
 * Alice sends bob a message. The engine answers alice "accepted" and pushes
 * the message to bob. Bob acks it; the engine then owes alice a "delivered"
 * receipt naming it, which she acks in turn. The program exits 0 only when it
 * saw each of those frames, in that order, and nothing is left owed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/vartalap.h>

#define MAX_FRAMES 16

/* What the engine sent to one user's client, oldest first. */
struct client {
	const char *user;
	struct vt_conn *conn;
	char *frames[MAX_FRAMES];
	size_t nframes;
	size_t next; /* first frame not yet read by the client */
};

/* The host: clocks that move only when the program moves them. */
struct fake_clock {
	uint64_t mono_ms;
	int64_t wall_ms;
	int flush_wanted;
};

static uint64_t clock_mono(void *arg)
{
	return ((struct fake_clock *)arg)->mono_ms;
}

static int64_t clock_wall(void *arg)
{
	return ((struct fake_clock *)arg)->wall_ms;
}

/* The engine holds writes until the host says the loop turn is over. */
static void clock_want_flush(void *arg)
{
	((struct fake_clock *)arg)->flush_wanted = 1;
}

/*
 * The transport's send: copy the frame, it is not ours after the call. A
 * client must not call into the engine from here, so frames are only queued.
 */
static int mem_send(void *ctx, const char *data, size_t len)
{
	struct client *c = ctx;
	char *copy;

	if (c->nframes == MAX_FRAMES) {
		return VT_EAGAIN;
	}
	copy = malloc(len + 1);
	if (copy == NULL) {
		return VT_ENOMEM;
	}
	memcpy(copy, data, len);
	copy[len] = '\0';
	c->frames[c->nframes++] = copy;
	return 0;
}

static void mem_close(void *ctx, int code, const char *reason)
{
	struct client *c = ctx;

	printf("%s: closed %d %s\n", c->user, code, reason);
}

static const struct vt_transport_ops mem_transport = {
        .send = mem_send,
        .close = mem_close,
};

/* End of a loop turn: commit what the engine took, as the host promises. */
static void end_turn(struct vt_engine *e, struct fake_clock *clk)
{
	while (clk->flush_wanted) {
		clk->flush_wanted = 0;
		vt_engine_flush(e);
	}
}

/* Copy the string member @key of a flat frame into @out; -1 when absent. */
static int frame_field(const char *frame, const char *key, char *out, size_t cap)
{
	char pat[32];
	const char *p;
	size_t n;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(frame, pat);
	if (p == NULL) {
		return -1;
	}
	p += strlen(pat);
	n = strcspn(p, "\"");
	if (n >= cap) {
		return -1;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/*
 * The client reads its next frame; it must be of @type. The server id of
 * the event goes into @id. Returns 0, or -1 after saying what was wrong.
 */
static int expect(struct client *c, const char *type, char *id, size_t cap)
{
	const char *f;
	char got[32];

	if (c->next == c->nframes) {
		fprintf(stderr, "%s: expected a %s frame, got nothing\n", c->user, type);
		return -1;
	}
	f = c->frames[c->next++];
	printf("%s <- %s\n", c->user, f);
	if (frame_field(f, "type", got, sizeof(got)) != 0 || strcmp(got, type) != 0 ||
	    frame_field(f, "id", id, cap) != 0) {
		fprintf(stderr, "%s: expected a %s frame\n", c->user, type);
		return -1;
	}
	return 0;
}

/*
 * Does the receipt @frame name the message @id? Its body lists what one
 * device of the recipient acked together, up to 64 messages:
 * {"device":"","refs":[{"ref":"42","cid":"c-1"},...]}. A quote inside a JSON
 * string is escaped, so the quoted pattern can only be a member of a ref.
 */
static int receipt_names(const char *frame, const char *id)
{
	const char *refs = strstr(frame, "\"refs\":[");
	char pat[48];

	snprintf(pat, sizeof(pat), "\"ref\":\"%s\"", id);
	return id[0] != '\0' && refs != NULL && strstr(refs, pat) != NULL;
}

/* The client sends a raw envelope, as if it came off the wire. */
static void client_send(struct client *c, const char *json)
{
	printf("%s -> %s\n", c->user, json);
	vt_conn_receive(c->conn, json, strlen(json));
}

static void client_ack(struct client *c, const char *id)
{
	char json[96];

	snprintf(json, sizeof(json), "{\"type\":\"ack\",\"ids\":[\"%s\"]}", id);
	client_send(c, json);
}

static int client_open(struct vt_engine *e, struct fake_clock *clk, struct client *c)
{
	struct vt_identity id;
	int rc;

	/* A real frontend fills this from a verified token (vt_token_verify). */
	memset(&id, 0, sizeof(id));
	snprintf(id.user, sizeof(id.user), "%s", c->user);
	id.exp = clk->wall_ms / 1000 + 3600;

	rc = vt_conn_open(e, &id, &mem_transport, c, &c->conn);
	if (rc != 0) {
		fprintf(stderr, "vt_conn_open(%s): %s\n", c->user, vt_strerror(rc));
	}
	return rc;
}

static void client_free(struct client *c)
{
	for (size_t i = 0; i < c->nframes; i++) {
		free(c->frames[i]);
	}
}

/* The conversation itself; each step is one loop turn of a real host. */
static int converse(struct vt_engine *e, struct fake_clock *clk, struct client *alice,
                    struct client *bob)
{
	char msg_id[32], ack_id[32], rcpt_id[32];

	client_send(alice,
	            "{\"type\":\"message\",\"id\":\"c-1\",\"to\":\"bob\",\"body\":\"hi bob\"}");
	end_turn(e, clk);
	if (expect(alice, "accepted", ack_id, sizeof(ack_id)) != 0 ||
	    expect(bob, "message", msg_id, sizeof(msg_id)) != 0 || strcmp(ack_id, msg_id) != 0) {
		return -1;
	}

	client_ack(bob, msg_id);
	end_turn(e, clk);
	if (expect(alice, "delivered", rcpt_id, sizeof(rcpt_id)) != 0) {
		return -1;
	}
	if (!receipt_names(alice->frames[alice->next - 1], msg_id)) {
		fprintf(stderr, "alice: the receipt does not name message %s\n", msg_id);
		return -1;
	}

	client_ack(alice, rcpt_id);
	end_turn(e, clk);
	return 0;
}

/* Nothing may be owed once both acked: no timer left, no frame unread. */
static int check_quiet(struct vt_engine *e, const struct client *alice, const struct client *bob)
{
	struct vt_engine_stats st;

	vt_engine_stats(e, &st);
	printf("accepted=%llu pushed=%llu acked=%llu next_timeout=%lld\n",
	       (unsigned long long)st.accepted, (unsigned long long)st.pushed,
	       (unsigned long long)st.acked, (long long)vt_engine_next_timeout(e));
	if (st.acked != 2 || alice->next != alice->nframes || bob->next != bob->nframes) {
		fprintf(stderr, "something is still owed\n");
		return -1;
	}
	return 0;
}

int main(void)
{
	struct fake_clock clk = {.mono_ms = 1, .wall_ms = INT64_C(1700000000000)};
	struct vt_host host = {
	        .mono_ms = clock_mono,          /* monotonic ms: retries, deadlines */
	        .wall_ms = clock_wall,          /* ms since the epoch: timestamps, token expiry */
	        .want_flush = clock_want_flush, /* "call vt_engine_flush() before you sleep" */
	        .timers_changed = NULL,         /* this host polls vt_engine_next_timeout() */
	        .arg = &clk,
	};
	struct client alice = {.user = "alice"};
	struct client bob = {.user = "bob"};
	struct vt_engine_config cfg;
	struct vt_storage st;
	struct vt_engine *e;
	int ok;

	vt_engine_config_init(&cfg);
	if (vt_storage_memory_create(INT64_C(86400000), &st) != 0 ||
	    vt_engine_create(&cfg, &host, st, &e) != 0) {
		fprintf(stderr, "cannot start the engine\n");
		return 1;
	}
	end_turn(e, &clk);

	ok = client_open(e, &clk, &alice) == 0 && client_open(e, &clk, &bob) == 0;
	end_turn(e, &clk);
	ok = ok && converse(e, &clk, &alice, &bob) == 0 && check_quiet(e, &alice, &bob) == 0;

	/* Closing a connection is the transport's news; the engine frees it. */
	vt_conn_close(alice.conn);
	vt_conn_close(bob.conn);
	vt_engine_destroy(e);
	client_free(&alice);
	client_free(&bob);

	puts(ok ? "two_users: ok" : "two_users: FAILED");
	return ok ? 0 : 1;
}
