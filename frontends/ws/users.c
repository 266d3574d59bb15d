/*
 * frontends/ws/users.c - a small chained hash of per-user socket counts.
 *
 * An entry lives while its user has a socket, so the table's size follows
 * the connected users, not every user ever seen.
 */
#include "users.h"

#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>

struct vt_ws_user {
	struct vt_ws_user *next;
	uint32_t sockets;
	char name[]; /* NUL-terminated */
};

/* FNV-1a: user names are short and come from verified tokens. */
static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	}
	return (size_t)h;
}

int vt_ws_users_init(struct vt_ws_users *u)
{
	u->nslots = 64;
	u->count = 0;
	u->slots = calloc(u->nslots, sizeof(*u->slots));
	return u->slots != NULL ? 0 : VT_ENOMEM;
}

void vt_ws_users_finish(struct vt_ws_users *u)
{
	size_t i;

	for (i = 0; i < u->nslots; i++) {
		while (u->slots[i] != NULL) {
			struct vt_ws_user *e = u->slots[i];

			u->slots[i] = e->next;
			free(e);
		}
	}
	free(u->slots);
	u->slots = NULL;
}

/* Double the slots once there are more users than slots. */
static void grow(struct vt_ws_users *u)
{
	size_t n = u->nslots * 2;
	struct vt_ws_user **slots = calloc(n, sizeof(*slots));
	size_t i;

	if (slots == NULL) {
		return; /* longer chains, still correct */
	}
	for (i = 0; i < u->nslots; i++) {
		while (u->slots[i] != NULL) {
			struct vt_ws_user *e = u->slots[i];
			size_t s = hash(e->name) & (n - 1);

			u->slots[i] = e->next;
			e->next = slots[s];
			slots[s] = e;
		}
	}
	free(u->slots);
	u->slots = slots;
	u->nslots = n;
}

static struct vt_ws_user *find(const struct vt_ws_users *u, const char *user)
{
	struct vt_ws_user *e = u->slots[hash(user) & (u->nslots - 1)];

	while (e != NULL && strcmp(e->name, user) != 0) {
		e = e->next;
	}
	return e;
}

static struct vt_ws_user *add(struct vt_ws_users *u, const char *user)
{
	size_t len = strlen(user);
	struct vt_ws_user *e = malloc(sizeof(*e) + len + 1);
	size_t s;

	if (e == NULL) {
		return NULL;
	}
	if (u->count >= u->nslots) {
		grow(u);
	}
	memcpy(e->name, user, len + 1);
	e->sockets = 0;
	s = hash(user) & (u->nslots - 1);
	e->next = u->slots[s];
	u->slots[s] = e;
	u->count++;
	return e;
}

int vt_ws_users_acquire(struct vt_ws_users *u, const char *user, uint32_t cap,
                        struct vt_ws_user **out)
{
	struct vt_ws_user *e = find(u, user);

	if (e != NULL && e->sockets >= cap) {
		return VT_ELIMIT;
	}
	if (e == NULL && (e = add(u, user)) == NULL) {
		return VT_ENOMEM;
	}
	e->sockets++;
	*out = e;
	return 0;
}

void vt_ws_users_release(struct vt_ws_users *u, struct vt_ws_user *e)
{
	struct vt_ws_user **pp;

	if (--e->sockets > 0) {
		return;
	}
	pp = &u->slots[hash(e->name) & (u->nslots - 1)];
	while (*pp != NULL && *pp != e) {
		pp = &(*pp)->next;
	}
	if (*pp == e) {
		*pp = e->next;
		u->count--;
	}
	free(e);
}
