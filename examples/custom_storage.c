/*
 * examples/custom_storage.c - a storage backend of one's own.
 *
 * The backend here is a wrapper: it keeps the data in the memory backend and
 * adds what an operator might want around any store, counting the operations
 * by kind, changing nothing. It shows the whole contract
 * of struct vt_storage_ops from the backend's side: the engine gives each
 * call a completion callback that must run exactly once, on the engine's
 * thread, and may run before the call returns (as here) or later from the
 * backend's own loop. The wrapper interposes on each completion to check
 * that promise of the inner backend, and to count what completed.
 *
 * The program sends a message between two users and acks it, then checks the
 * receipt and the counters: exit 0 only when the receipt names the message
 * and the counters add up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/vartalap.h>

/* The backend's own state: the store it wraps, and its counters. */
struct counting_store {
	struct vt_storage inner;
	uint64_t commits;    /* batches asked for */
	uint64_t completed;  /* batches whose done callback ran */
	uint64_t failed;     /* of them, failed as a whole */
	uint64_t by_kind[8]; /* ops, indexed by enum vt_op_kind */
	uint64_t lists;
	uint64_t expires;
	uint64_t *destroyed; /* set to 1 on destroy: the engine owns us */
};

/* What a pending commit needs to finish: the engine's callback, and us. */
struct commit_call {
	struct counting_store *cs;
	vt_commit_cb done;
	void *arg;
};

static void on_inner_commit(void *arg, int status)
{
	struct commit_call *call = arg;
	struct counting_store *cs = call->cs;
	vt_commit_cb done = call->done;
	void *done_arg = call->arg;

	cs->completed++;
	if (status != 0) {
		cs->failed++;
	}

	/* Free first: the engine may start a new batch from inside done. */
	free(call);
	done(done_arg, status);
}

static void cs_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct counting_store *cs = self;
	struct commit_call *call = malloc(sizeof(*call));

	/* The contract has no other way to fail: say so through done. */
	if (call == NULL) {
		done(arg, VT_ESTORAGE);
		return;
	}
	call->cs = cs;
	call->done = done;
	call->arg = arg;

	cs->commits++;
	for (size_t i = 0; i < n; i++) {
		cs->by_kind[(unsigned)ops[i].kind % 8]++;
	}
	cs->inner.ops->commit(cs->inner.self, ops, n, on_inner_commit, call);
}

static void cs_list(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
                    vt_list_cb done, void *arg)
{
	struct counting_store *cs = self;

	cs->lists++;
	cs->inner.ops->list(cs->inner.self, inbox, after, limit, done, arg);
}

static void cs_expire(void *self, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                      uint64_t max, vt_expire_cb done, void *arg)
{
	struct counting_store *cs = self;

	cs->expires++;
	cs->inner.ops->expire(cs->inner.self, now_ts, before_ts, device_before_ts, max, done, arg);
}

/* Optional in the contract; pass it on only when the inner store has it. */
static int cs_load_groups(void *self,
                          void (*each)(void *arg, const char *group, const char *data, size_t len),
                          void *arg)
{
	struct counting_store *cs = self;

	if (cs->inner.ops->load_groups == NULL) {
		return 0;
	}
	return cs->inner.ops->load_groups(cs->inner.self, each, arg);
}

static uint64_t cs_max_id(void *self)
{
	struct counting_store *cs = self;

	return cs->inner.ops->max_id(cs->inner.self);
}

/* Optional too: without it mode "offline" pushes nothing before its commit,
 * and a negative answer ("cannot tell") has the same effect for one event. */
static int cs_dedup_peek(void *self, const struct vt_record *rec, uint64_t *id)
{
	struct counting_store *cs = self;

	if (cs->inner.ops->dedup_peek == NULL) {
		return VT_ESTORAGE;
	}
	return cs->inner.ops->dedup_peek(cs->inner.self, rec, id);
}

/* Optional: a store without it cannot keep logouts (VT_OP_REVOKE), and the
 * engine refuses them. The inner memory store keeps them. */
static int cs_load_revoked(void *self,
                           void (*each)(void *arg, const struct vt_inbox *scope, int64_t ts),
                           void *arg)
{
	struct counting_store *cs = self;

	return cs->inner.ops->load_revoked(cs->inner.self, each, arg);
}

static void cs_destroy(void *self)
{
	struct counting_store *cs = self;

	cs->inner.ops->destroy(cs->inner.self);
	*cs->destroyed = 1;
}

static const struct vt_storage_ops counting_ops = {
        .commit = cs_commit,
        .list = cs_list,
        .expire = cs_expire,
        .load_groups = cs_load_groups,
        .max_id = cs_max_id,
        .destroy = cs_destroy,
        .dedup_peek = cs_dedup_peek,
        .load_revoked = cs_load_revoked,
};

/* ---- a minimal host and transport, as in two_users.c ---- */

static uint64_t mono_now = 1;
static int flush_wanted;

static uint64_t host_mono(void *arg)
{
	return mono_now;
}

static int64_t host_wall(void *arg)
{
	return INT64_C(1700000000000) + (int64_t)mono_now;
}

static void host_want_flush(void *arg)
{
	flush_wanted = 1;
}

static void end_turn(struct vt_engine *e)
{
	while (flush_wanted) {
		flush_wanted = 0;
		vt_engine_flush(e);
	}
}

/* Remembers the server id of the last event (message or receipt) it was sent. */
struct peer {
	struct vt_conn *conn;
	char event_id[32];
	char accepted_id[32]; /* server id of the last message it sent */
	int receipt_named;    /* a receipt named accepted_id */
};

/* Copy the string member @key of a flat frame into @out, or "" when absent. */
static void field(const char *frame, const char *key, char *out, size_t cap)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(frame, pat);
	out[0] = '\0';
	if (p != NULL) {
		p += strlen(pat);
		snprintf(out, cap, "%.*s", (int)strcspn(p, "\""), p);
	}
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

static int peer_send(void *ctx, const char *data, size_t len)
{
	struct peer *p = ctx;
	char buf[512], type[32];

	printf("frame: %.*s\n", (int)len, data);

	/* Frames are not NUL-terminated, and not ours after the call: copy. */
	if (len >= sizeof(buf)) {
		return 0;
	}
	memcpy(buf, data, len);
	buf[len] = '\0';
	field(buf, "type", type, sizeof(type));
	if (strcmp(type, "message") == 0 || strcmp(type, "delivered") == 0) {
		field(buf, "id", p->event_id, sizeof(p->event_id));
	}
	if (strcmp(type, "accepted") == 0) {
		field(buf, "id", p->accepted_id, sizeof(p->accepted_id));
	} else if (strcmp(type, "delivered") == 0) {
		p->receipt_named = receipt_names(buf, p->accepted_id);
	}
	return 0;
}

static void peer_close(void *ctx, int code, const char *reason)
{
}

static const struct vt_transport_ops peer_ops = {.send = peer_send, .close = peer_close};

static int open_peer(struct vt_engine *e, const char *user, struct peer *p)
{
	struct vt_identity id;

	memset(&id, 0, sizeof(id));
	snprintf(id.user, sizeof(id.user), "%s", user);
	id.exp = host_wall(NULL) / 1000 + 3600;
	return vt_conn_open(e, &id, &peer_ops, p, &p->conn);
}

static void say(struct peer *p, const char *json)
{
	vt_conn_receive(p->conn, json, strlen(json));
}

/* Ack the last event @p was sent; 0 when there was none. */
static int ack_last(struct vt_engine *e, struct peer *p)
{
	char ack[96];

	if (p->event_id[0] == '\0') {
		return 0;
	}
	snprintf(ack, sizeof(ack), "{\"type\":\"ack\",\"ids\":[\"%s\"]}", p->event_id);
	p->event_id[0] = '\0';
	say(p, ack);
	end_turn(e);
	return 1;
}

/* The counters the exchange must have produced. */
static int check(const struct counting_store *cs)
{
	printf("commits=%llu completed=%llu failed=%llu put=%llu ack=%llu touch=%llu lists=%llu\n",
	       (unsigned long long)cs->commits, (unsigned long long)cs->completed,
	       (unsigned long long)cs->failed, (unsigned long long)cs->by_kind[VT_OP_PUT],
	       (unsigned long long)cs->by_kind[VT_OP_ACK],
	       (unsigned long long)cs->by_kind[VT_OP_TOUCH], (unsigned long long)cs->lists);

	/* The message is a PUT; bob's ack, which also has the inner store make
	 * the receipt in its own transaction, and alice's are two ACKs. */
	return cs->commits > 0 && cs->completed == cs->commits && cs->failed == 0 &&
	       cs->by_kind[VT_OP_PUT] >= 1 && cs->by_kind[VT_OP_ACK] >= 2;
}

/* Alice writes to bob; bob acks; alice acks the receipt that follows. */
static int exchange(struct vt_engine *e, struct peer *alice, struct peer *bob)
{
	say(alice,
	    "{\"type\":\"message\",\"id\":\"c-1\",\"to\":\"bob\",\"body\":{\"text\":\"hi\"}}");
	end_turn(e);
	if (!ack_last(e, bob)) {
		fprintf(stderr, "bob got no message\n");
		return 0;
	}
	if (!ack_last(e, alice)) {
		fprintf(stderr, "alice got no receipt\n");
		return 0;
	}
	if (!alice->receipt_named) {
		fprintf(stderr, "alice's receipt does not name message %s\n", alice->accepted_id);
		return 0;
	}
	return 1;
}

int main(void)
{
	struct vt_host host = {host_mono, host_wall, host_want_flush, NULL, NULL};
	struct counting_store *cs = calloc(1, sizeof(*cs));
	uint64_t destroyed = 0;
	struct peer alice = {0}, bob = {0};
	struct vt_engine_config cfg;
	struct vt_engine *e;
	int ok;

	if (cs == NULL || vt_storage_memory_create(INT64_C(86400000), &cs->inner) != 0) {
		return 1;
	}
	cs->destroyed = &destroyed;

	vt_engine_config_init(&cfg);
	if (vt_engine_create(&cfg, &host, (struct vt_storage){&counting_ops, cs}, &e) != 0) {
		fprintf(stderr, "cannot start the engine\n");
		return 1;
	}
	ok = open_peer(e, "alice", &alice) == 0 && open_peer(e, "bob", &bob) == 0;
	end_turn(e);
	ok = ok && exchange(e, &alice, &bob) && check(cs);

	vt_conn_close(alice.conn);
	vt_conn_close(bob.conn);
	vt_engine_destroy(e);
	ok = ok && destroyed == 1;
	free(cs);

	puts(ok ? "custom_storage: ok" : "custom_storage: FAILED");
	return ok ? 0 : 1;
}
