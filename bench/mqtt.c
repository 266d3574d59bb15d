/*
 * bench/mqtt.c - the MQTT 3.1.1 packets the benchmark uses.
 */
#include "mqtt.h"

#include <string.h>

/* The remaining-length varint: 7 bits a byte, low bits first. */
static size_t put_len(unsigned char *p, size_t n)
{
	size_t i = 0;

	do {
		unsigned char b = n & 0x7f;

		n >>= 7;
		p[i++] = (unsigned char)(b | (n ? 0x80 : 0));
	} while (n != 0);
	return i;
}

static size_t put_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s);

	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

/* Emit fixed header @h0 and the @n bytes of @body. */
static void emit(struct evbuffer *out, unsigned char h0, const unsigned char *body, size_t n)
{
	unsigned char h[5];
	size_t hl;

	h[0] = h0;
	hl = 1 + put_len(h + 1, n);
	evbuffer_add(out, h, hl);
	evbuffer_add(out, body, n);
}

void vb_mqtt_connect(struct evbuffer *out, const char *client_id)
{
	unsigned char b[96];
	size_t n = put_str(b, "MQTT");

	b[n++] = 4;    /* protocol level 3.1.1 */
	b[n++] = 0x02; /* clean session */
	b[n++] = 0;    /* keep-alive 0: off, the run is short */
	b[n++] = 0;
	n += put_str(b + n, client_id);
	emit(out, 0x10, b, n);
}

void vb_mqtt_subscribe(struct evbuffer *out, uint16_t id, const char *topic)
{
	unsigned char b[96];
	size_t n = 0;

	b[n++] = (unsigned char)(id >> 8);
	b[n++] = (unsigned char)id;
	n += put_str(b + n, topic);
	b[n++] = 1; /* QoS 1 */
	emit(out, 0x82, b, n);
}

void vb_mqtt_publish(struct evbuffer *out, const char *topic, uint16_t id, const void *p,
                     size_t n)
{
	unsigned char h[96];
	size_t hl = 1, vl;

	vl = put_str(h + 16, topic);
	h[16 + vl++] = (unsigned char)(id >> 8);
	h[16 + vl++] = (unsigned char)id;
	h[0] = 0x32; /* PUBLISH, QoS 1 */
	hl += put_len(h + 1, vl + n);
	evbuffer_add(out, h, hl);
	evbuffer_add(out, h + 16, vl);
	evbuffer_add(out, p, n);
}

void vb_mqtt_puback(struct evbuffer *out, uint16_t id)
{
	unsigned char b[4] = {0x40, 2, (unsigned char)(id >> 8), (unsigned char)id};

	evbuffer_add(out, b, 4);
}

static void parse_publish(struct vb_mqtt_packet *p, const unsigned char *v, size_t n)
{
	size_t tl = n >= 2 ? ((size_t)v[0] << 8 | v[1]) : n, off = 2 + tl;

	if (p->qos > 0 && off + 2 <= n) {
		p->id = (uint16_t)(v[off] << 8 | v[off + 1]);
		off += 2;
	}
	off = off > n ? n : off;
	p->payload = (const char *)v + off;
	p->len = n - off;
}

int vb_mqtt_next(struct evbuffer *in, struct vb_mqtt_packet *p)
{
	size_t have = evbuffer_get_length(in), n = 0, hl = 1;
	unsigned char h[5], *v;
	int shift = 0;

	if (evbuffer_copyout(in, h, have < 5 ? have : 5) < 2) {
		return 0;
	}
	do {
		if (hl >= 5 || hl >= have) {
			return 0;
		}
		n |= (size_t)(h[hl] & 0x7f) << shift;
		shift += 7;
	} while (h[hl++] & 0x80);
	if (have < hl + n) {
		return 0;
	}
	v = evbuffer_pullup(in, (ev_ssize_t)(hl + n)) + hl;
	memset(p, 0, sizeof(*p));
	p->type = h[0] >> 4;
	p->qos = (h[0] >> 1) & 3;
	p->total = hl + n;
	if (p->type == MQTT_PUBLISH) {
		parse_publish(p, v, n);
	} else if (p->type == MQTT_PUBACK && n >= 2) {
		p->id = (uint16_t)(v[0] << 8 | v[1]);
	}
	return 1;
}
