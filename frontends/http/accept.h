/*
 * frontends/http/accept.h - pause accepting while descriptors run out.
 */
#ifndef VARTALAP_HTTP_ACCEPT_H
#define VARTALAP_HTTP_ACCEPT_H

#include <event2/event.h>
#include <event2/http.h>

struct vt_accept_guard;

/*
 * Watch the listener of @bound: when accept() fails for want of descriptors
 * or memory, stop accepting for a moment instead of spinning. Returns NULL
 * when out of memory (the listener then works unguarded).
 */
struct vt_accept_guard *vt_accept_guard_new(struct event_base *base,
					    struct evhttp_bound_socket *bound);

/* Free the guard; call before the listener goes. Accepts NULL. */
void vt_accept_guard_free(struct vt_accept_guard *g);

#endif /* VARTALAP_HTTP_ACCEPT_H */
