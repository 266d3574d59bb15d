/*
 * bench/vt.c - building and reading Vartalap envelopes, and tokens.
 *
 * The load generator never parses JSON in full: it looks for the few
 * members it needs with fixed patterns. That is safe because the server's
 * output is compact and machine-made, and it keeps the load core free for
 * sending.
 */
#include "vt.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <vartalap/token.h>

#include "mqtt.h"
#include "ws.h"

static char ack_ids[8192];
static size_t ack_len;
static int ack_count;

int vb_key_load(struct vb_bench *b)
{
	char path[1024];
	ssize_t n;
	int fd;

	if (b->o.secret_file != NULL) {
		snprintf(path, sizeof(path), "%s", b->o.secret_file);
	} else {
		snprintf(path, sizeof(path), "%s/dev-secret", b->o.data_dir);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	n = read(fd, b->key, sizeof(b->key));
	close(fd);
	/* The key is the file's bytes (hex text), as the server reads it. */
	while (n > 0 && (b->key[n - 1] == '\n' || b->key[n - 1] == '\r')) {
		n--;
	}
	b->key_len = n > 0 ? (size_t)n : 0;
	return n >= 32 ? 0 : -1;
}

int vb_token(struct vb_bench *b, const char *user, char *out, size_t cap)
{
	int64_t now = (int64_t)time(NULL);

	return vt_token_sign(b->key, b->key_len, user, NULL, now, now + 86400, out, cap);
}

void vb_send_raw(struct vb_conn *c, const char *text, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	vb_ws_send(out, WS_TEXT, text, n, &c->rng);
	c->b->st.frames_in++;
}

int vb_send_msg(struct vb_conn *c, uint64_t t)
{
	struct vb_bench *b = c->b;
	char env[66000];
	int n, pad;

	if (c->bev == NULL) {
		return -1;
	}
	n = snprintf(env, sizeof(env),
	             "{\"type\":\"message\",\"id\":\"%llu\",\"to\":\"%s\",\"body\":"
	             "{\"t\":%llu,\"s\":%llu,\"p\":\"\"}}",
	             (unsigned long long)c->seq, c->to, (unsigned long long)t,
	             (unsigned long long)c->seq);
	pad = b->o.size - n;
	if (pad > 0 && n + pad < (int)sizeof(env)) {
		/* Slide the closing '"}}' right and fill the gap with padding. */
		memmove(env + n - 3 + pad, env + n - 3, 4);
		memset(env + n - 3, 'x', (size_t)pad);
		n += pad;
	}
	c->seq++;
	c->inflight++;
	b->st.sent++;
	if (b->o.proto == VB_MQTT) {
		c->mqtt_id = c->mqtt_id == 0xffff ? 1 : c->mqtt_id + 1; /* 0 is no packet id */
		vb_mqtt_publish(bufferevent_get_output(c->bev), c->to, c->mqtt_id, env, (size_t)n);
		b->st.frames_in++;
		return 0;
	}
	vb_send_raw(c, env, (size_t)n);
	return 0;
}

void vb_ack_begin(struct vb_conn *c)
{
	ack_len = 0;
	ack_count = 0;
}

void vb_ack_flush(struct vb_conn *c)
{
	char frame[sizeof(ack_ids) + 32];
	int n;

	if (ack_count == 0) {
		return;
	}
	n = snprintf(frame, sizeof(frame), "{\"type\":\"ack\",\"ids\":[%.*s]}", (int)ack_len,
	             ack_ids);
	vb_send_raw(c, frame, (size_t)n);
	ack_len = 0;
	ack_count = 0;
}

/* Queue server id @id (@n bytes) for the next ack; 256 ids at most per ack. */
static void ack_add(struct vb_conn *c, const char *id, size_t n)
{
	if (c->paused) {
		return;
	}
	if (ack_count == 256 || ack_len + n + 4 > sizeof(ack_ids)) {
		vb_ack_flush(c);
	}
	/* By hand: at a million acks a second, snprintf is much of the load's own time. */
	if (ack_count > 0) {
		ack_ids[ack_len++] = ',';
	}
	ack_ids[ack_len++] = '"';
	memcpy(ack_ids + ack_len, id, n);
	ack_len += n;
	ack_ids[ack_len++] = '"';
	ack_count++;
}

/* The string value of member @key ("\"name\":\"") in @p; its length in @len. */
static const char *str_member(const char *p, size_t n, const char *key, size_t *len)
{
	const char *v = memmem(p, n, key, strlen(key)), *e;

	if (v == NULL) {
		return NULL;
	}
	v += strlen(key);
	e = memchr(v, '"', n - (size_t)(v - p));
	if (e == NULL) {
		return NULL;
	}
	*len = (size_t)(e - v);
	return v;
}

void vb_vt_body(struct vb_conn *c, const char *p, size_t n)
{
	const char *t = memmem(p, n, "{\"t\":", 5), *s;
	unsigned long long tv, sv = 0;

	if (t == NULL) {
		return;
	}
	tv = strtoull(t + 5, NULL, 10);
	s = memmem(t, n - (size_t)(t - p), ",\"s\":", 5);
	if (s != NULL) {
		sv = strtoull(s + 5, NULL, 10);
	}
	c->b->st.delivered++;
	if (c->b->measuring && tv != 0) {
		uint64_t now = vb_now();

		vb_hist_add(&c->b->st.lat, now > tv ? now - tv : 0);
	}
	c->b->h.delivered(c, tv, sv);
}

/* How many times @key occurs in the @n bytes at @p. */
static uint64_t count_keys(const char *p, size_t n, const char *key)
{
	const char *end = p + n;
	size_t len = strlen(key);
	uint64_t count = 0;

	while ((p = memmem(p, (size_t)(end - p), key, len)) != NULL) {
		count++;
		p += len;
	}
	return count;
}

/*
 * The acks a `delivered` receipt reports: one per ref of a device's receipt,
 * one per device listed under its refs in a group's. Its strings are
 * JSON-escaped, so a quoted key cannot appear inside one.
 */
static uint64_t count_acks(const char *p, size_t n)
{
	uint64_t devices = count_keys(p, n, "\"user\":\"");

	return devices > 0 ? devices : count_keys(p, n, "\"ref\":\"");
}

static int count_ids(const char *p, size_t n)
{
	int q = 0;

	for (size_t i = 0; i < n; i++) {
		q += p[i] == '"';
	}
	return (q - 6) / 2; /* minus "type", "ack" and "ids" */
}

static void on_error(struct vb_conn *c, const char *p, size_t n)
{
	if (c->b->st.errors++ < 5) {
		fprintf(stderr, "vtbench: %s got %.*s\n", c->user, (int)(n > 200 ? 200 : n), p);
	}
	/* A refused message is done with: its window slot must not stay taken. */
	if (c->inflight > 0) {
		c->inflight--;
	}
	if (c->b->h.refused != NULL) {
		c->b->h.refused(c);
	}
}

void vb_vt_text(struct vb_conn *c, char *p, size_t n)
{
	size_t tl = 0, il = 0, rl = 0;
	const char *type = str_member(p, n, "\"type\":\"", &tl);
	const char *id = str_member(p, n, "\"id\":\"", &il);
	const char *ref;
	char rbuf[72];

	if (type == NULL) {
		return;
	}
	/* A message names no ref: its frames, most of all, are not searched for one. */
	if (tl == 7 && memcmp(type, "message", 7) == 0) {
		if (id != NULL) {
			ack_add(c, id, il);
		}
		vb_vt_body(c, p, n);
		if (c->b->h.event != NULL) {
			c->b->h.event(c, "other", "");
		}
		return;
	}
	ref = str_member(p, n, "\"ref\":\"", &rl);
	snprintf(rbuf, sizeof(rbuf), "%.*s", (int)(ref ? rl : 0), ref ? ref : "");
	if (tl == 8 && memcmp(type, "accepted", 8) == 0) {
		c->b->st.accepted++;
		c->b->h.accepted(c);
	} else if (tl == 9 && memcmp(type, "delivered", 9) == 0) {
		c->b->st.acked += count_acks(p, n);
		if (id != NULL) {
			ack_add(c, id, il);
		}
	} else if (tl == 3 && memcmp(type, "ack", 3) == 0) {
		c->b->st.acked += (uint64_t)count_ids(p, n); /* through the relay */
	} else if (tl == 5 && memcmp(type, "error", 5) == 0) {
		on_error(c, p, n);
	} else if (id != NULL) {
		ack_add(c, id, il); /* group changes and whatever else is owed */
	}
	if (c->b->h.event != NULL) {
		int acc = tl == 8 && memcmp(type, "accepted", 8) == 0;

		c->b->h.event(c, acc ? "accepted" : "other", rbuf);
	}
}
