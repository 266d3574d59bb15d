/*
 * bench/relay.c - vtrelay, the physical-limit reference.
 *
 * It accepts WebSocket upgrades on GET /pair/K, joins the two connections
 * that asked for the same K, and from then on moves bytes from one to the
 * other without looking at them: no frame parsing, no JSON, no storage.
 * Whatever a chat server does beyond this is what its throughput pays for.
 * Frames reach the far client still masked; the benchmark's client reads
 * masked frames, so nothing needs rewriting on the way.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define MAX_PAIRS 65536
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct rconn {
	struct bufferevent *bev;
	struct rconn *peer;
	int pair;
};

static struct rconn *waiting[MAX_PAIRS];

static void on_data(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg;

	if (c->peer != NULL) {
		/* evbuffer_add_buffer moves the chain: the bytes are not copied. */
		evbuffer_add_buffer(bufferevent_get_output(c->peer->bev),
		                    bufferevent_get_input(bev));
	}
}

static void drop(struct rconn *c)
{
	if (c->peer != NULL) {
		c->peer->peer = NULL;
	}
	if (c->pair >= 0 && waiting[c->pair] == c) {
		waiting[c->pair] = NULL;
	}
	bufferevent_free(c->bev);
	free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	drop(arg);
}

/* The header value of @name in the request @req, copied into @out. */
static int header(const char *req, const char *name, char *out, size_t cap)
{
	const char *p = strcasestr(req, name);
	size_t n = 0;

	if (p == NULL) {
		return -1;
	}
	p += strlen(name);
	while (*p == ' ') {
		p++;
	}
	while (p[n] != '\r' && p[n] != '\0' && n + 1 < cap) {
		n++;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static void answer(struct rconn *c, const char *key)
{
	unsigned char sha[SHA_DIGEST_LENGTH];
	char cat[128], acc[64];

	snprintf(cat, sizeof(cat), "%s" WS_GUID, key);
	SHA1((const unsigned char *)cat, strlen(cat), sha);
	EVP_EncodeBlock((unsigned char *)acc, sha, sizeof(sha));
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	                    acc);
}

static void join(struct rconn *c)
{
	struct rconn *w = waiting[c->pair];

	if (w == NULL) {
		waiting[c->pair] = c;
		return;
	}
	waiting[c->pair] = NULL;
	c->peer = w;
	w->peer = c;
	bufferevent_setcb(w->bev, on_data, NULL, on_event, w);
	bufferevent_setcb(c->bev, on_data, NULL, on_event, c);
	on_data(w->bev, w);
	on_data(c->bev, c);
}

static void on_upgrade(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char req[4096], key[64];
	size_t n;

	if (end.pos < 0) {
		return;
	}
	n = (size_t)end.pos + 4 < sizeof(req) - 1 ? (size_t)end.pos + 4 : sizeof(req) - 1;
	evbuffer_remove(in, req, n);
	req[n] = '\0';
	if (sscanf(req, "GET /pair/%d", &c->pair) != 1 || c->pair < 0 || c->pair >= MAX_PAIRS ||
	    header(req, "Sec-WebSocket-Key:", key, sizeof(key)) != 0) {
		c->pair = -1;
		drop(c);
		return;
	}
	answer(c, key);
	join(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int len, void *arg)
{
	struct rconn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->pair = -1;
	c->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, on_upgrade, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

/* A port number, all digits, 1 to 65535: anything else is not taken for 0. */
static int parse_port(const char *s, uint16_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s < '0' || *s > '9' || *end != 0 || v == 0 || v > 65535) {
		return -1;
	}
	*out = (uint16_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct event_base *base = event_base_new();
	struct evconnlistener *l;
	struct rlimit r;
	struct event *sig;
	uint16_t port;

	if (argc != 2 || parse_port(argv[1], &port) != 0) {
		fprintf(stderr, "Usage: vtrelay PORT (1-65535; listens on 127.0.0.1)\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(base, on_accept, NULL,
	                            LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
	                            (struct sockaddr *)&sa, sizeof(sa));
	if (l == NULL) {
		perror("vtrelay: listen");
		return 1;
	}
	sig = evsignal_new(base, SIGTERM, on_signal, base);
	event_add(sig, NULL);
	event_base_dispatch(base);
	event_free(sig);
	evconnlistener_free(l);
	event_base_free(base);
	return 0;
}
