/*
 * frontends/ws/users.h - open WebSockets per user, for the per-user cap.
 */
#ifndef VARTALAP_WS_USERS_H
#define VARTALAP_WS_USERS_H

#include <stddef.h>
#include <stdint.h>

struct vt_ws_user;

/* Users with at least one WebSocket, by name. */
struct vt_ws_users {
	struct vt_ws_user **slots; /* chains; a power of two of them */
	size_t nslots;
	size_t count; /* users in the table */
};

/* Prepare an empty table. Returns 0 or VT_ENOMEM. */
int vt_ws_users_init(struct vt_ws_users *u);

/* Free the table; every acquired entry must have been released. */
void vt_ws_users_finish(struct vt_ws_users *u);

/*
 * Count one more WebSocket for @user, unless it has @cap already. Returns 0
 * with the entry in @out (to release later), VT_ELIMIT at the cap, or
 * VT_ENOMEM.
 */
int vt_ws_users_acquire(struct vt_ws_users *u, const char *user, uint32_t cap,
                        struct vt_ws_user **out);

/* One WebSocket of @e's user closed. */
void vt_ws_users_release(struct vt_ws_users *u, struct vt_ws_user *e);

#endif /* VARTALAP_WS_USERS_H */
