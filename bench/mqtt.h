/*
 * bench/mqtt.h - a minimal MQTT 3.1.1 client codec: CONNECT, SUBSCRIBE,
 * PUBLISH at QoS 1 and PUBACK, written against an evbuffer so it runs in
 * the same libevent loop as the WebSocket clients. libmosquitto would bring
 * its own socket handling and a thread per loop; in a load generator that
 * shares one core with thousands of clients that overhead would be
 * measured as the broker's.
 */
#ifndef VB_MQTT_H
#define VB_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

enum {
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_SUBACK = 9,
};

struct vb_mqtt_packet {
	int type;
	int qos;
	uint16_t id;         /* packet id of PUBLISH (QoS 1) and PUBACK */
	const char *payload; /* PUBLISH only */
	size_t len;
	size_t total;        /* bytes to drain afterwards */
};

void vb_mqtt_connect(struct evbuffer *out, const char *client_id);
void vb_mqtt_subscribe(struct evbuffer *out, uint16_t id, const char *topic);
void vb_mqtt_publish(struct evbuffer *out, const char *topic, uint16_t id, const void *p,
                     size_t n);
void vb_mqtt_puback(struct evbuffer *out, uint16_t id);

/* Read the next whole packet of @in into @p: 1 when one is there, else 0. */
int vb_mqtt_next(struct evbuffer *in, struct vb_mqtt_packet *p);

#endif
