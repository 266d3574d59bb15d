/*
 * tests/install/outer.c - a program written against the installed headers.
 *
 * It uses only what an outside program gets (the public headers and the
 * shared or static library), and checks a little of each area: version,
 * errors, tokens, and one message through an engine on the memory backend.
 * Prints "outer: ok" and exits 0 only when everything answered as expected.
 */
#include <stdio.h>
#include <string.h>

#include <vartalap/vartalap.h>

static int flushes;

static uint64_t mono(void *arg)
{
	return 1;
}

static int64_t wall(void *arg)
{
	return INT64_C(1700000000000);
}

static void want_flush(void *arg)
{
	flushes++;
}

static int sent;

/* Frames are not NUL-terminated: search within @len bytes. */
static int contains(const char *data, size_t len, const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(data + i, word, n) == 0) {
			return 1;
		}
	}
	return 0;
}

static int on_send(void *ctx, const char *data, size_t len)
{
	sent += contains(data, len, "\"accepted\"");
	return 0;
}

static void on_close(void *ctx, int code, const char *reason)
{
}

static int engine_round_trip(void)
{
	static const struct vt_transport_ops ops = {on_send, on_close};
	static const char msg[] = "{\"type\":\"message\",\"id\":\"c-1\",\"to\":\"bob\",\"body\":1}";
	struct vt_host host = {mono, wall, want_flush, NULL, NULL};
	struct vt_identity id = {.user = "alice", .exp = 1700000000 + 60};
	struct vt_engine_config cfg;
	struct vt_storage st;
	struct vt_engine *e;
	struct vt_conn *c;

	vt_engine_config_init(&cfg);
	if (vt_storage_memory_create(1000, &st) != 0 ||
	    vt_engine_create(&cfg, &host, st, &e) != 0 ||
	    vt_conn_open(e, &id, &ops, NULL, &c) != 0) {
		return -1;
	}
	vt_conn_receive(c, msg, sizeof(msg) - 1);
	vt_engine_flush(e);
	vt_conn_close(c);
	vt_engine_destroy(e);
	return sent == 1 ? 0 : -1;
}

static int token_round_trip(void)
{
	static const unsigned char key[32] = "a key for the outside program!!";
	struct vt_identity id;
	char tok[VT_TOKEN_MAX];

	if (vt_token_sign(key, sizeof(key), "alice", NULL, 1000, 2000, tok, sizeof(tok)) < 0 ||
	    vt_token_verify(key, sizeof(key), tok, strlen(tok), 1500, &id) != 0) {
		return -1;
	}
	return strcmp(id.user, "alice") == 0 ? 0 : -1;
}

int main(void)
{
	vt_log_set(NULL, NULL, VT_LOG_ERROR);
	printf("outer: built against vartalap %s\n", VT_VERSION);
	if (strcmp(vt_error_name(VT_EBADJSON), "bad_json") != 0 ||
	    vt_error_http_status(VT_ETOOBIG) != 413 || token_round_trip() != 0 ||
	    engine_round_trip() != 0) {
		puts("outer: FAILED");
		return 1;
	}
	puts("outer: ok");
	return 0;
}
