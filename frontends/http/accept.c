/*
 * frontends/http/accept.c - keep accepting sane when descriptors run out.
 *
 * When the process is out of file descriptors, accept() fails while the
 * pending connection stays in the backlog, so the listening socket stays
 * readable and the loop would spin on it at full speed, logging each
 * failure. Instead, accepting pauses for a moment and resumes by timer; the
 * waiting clients stay in the kernel's backlog until descriptors free up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <vartalap/log.h>

#include "accept.h"

#define PAUSE_MS 200
#define WARN_EVERY_S 10

struct vt_accept_guard {
	struct evconnlistener *listener;
	struct event *resume;
	time_t warned;
	uint64_t pauses;
	struct vt_accept_guard *next;
};

/*
 * libevent hands the error callback the listener and evhttp's own context,
 * not ours, so guards are found by listener. A server has one or two.
 */
static struct vt_accept_guard *guards;

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct vt_accept_guard *g = arg;

	evconnlistener_enable(g->listener);
}

static void on_accept_error(struct evconnlistener *listener, void *ctx)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval pause = {0, PAUSE_MS * 1000};
	struct vt_accept_guard *g = guards;
	time_t now = time(NULL);

	while (g != NULL && g->listener != listener) {
		g = g->next;
	}
	if (g == NULL) {
		return;
	}
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		vt_log(VT_LOG_WARN, "http: accept failed error=\"%s\"", strerror(err));
		return;
	}

	g->pauses++;
	if (now - g->warned >= WARN_EVERY_S) {
		g->warned = now;
		vt_log(VT_LOG_WARN, "http: out of descriptors, accepting paused error=\"%s\" "
		       "pauses=%llu", strerror(err), (unsigned long long)g->pauses);
	}
	evconnlistener_disable(listener);
	evtimer_add(g->resume, &pause);
}

struct vt_accept_guard *vt_accept_guard_new(struct event_base *base,
					    struct evhttp_bound_socket *bound)
{
	struct vt_accept_guard *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		return NULL;
	}
	g->listener = evhttp_bound_socket_get_listener(bound);
	g->resume = evtimer_new(base, on_resume, g);
	if (g->resume == NULL) {
		free(g);
		return NULL;
	}
	evconnlistener_set_error_cb(g->listener, on_accept_error);
	g->next = guards;
	guards = g;
	return g;
}

void vt_accept_guard_free(struct vt_accept_guard *g)
{
	struct vt_accept_guard **pp = &guards;

	if (g == NULL) {
		return;
	}
	while (*pp != NULL && *pp != g) {
		pp = &(*pp)->next;
	}
	if (*pp == g) {
		*pp = g->next;
	}
	event_free(g->resume);
	free(g);
}
