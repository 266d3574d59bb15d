/*
 * frontends/redis/scripts.h - the Lua scripts that apply storage calls.
 *
 * Each vtable call that touches more than one key runs as one script, so
 * Redis applies it whole, with no other client's command in between. The
 * scripts take no KEYS: every key is built inside from the prefix in
 * ARGV[1] (docs/CLUSTER.md says what that means for Redis Cluster).
 *
 * Ids travel as 16 lowercase hex digits, so that byte order is numeric
 * order and no id is ever turned into a Lua number (a double, exact only up
 * to 2^53). Inbox ZSETs keep every score at 0 and are read by member range.
 */
#ifndef VARTALAP_REDIS_SCRIPTS_H
#define VARTALAP_REDIS_SCRIPTS_H

/* What a script is: its source, and its SHA1 once the server loaded it. */
struct vt__rscript {
	const char *name; /* for log lines */
	const char *src;
	char sha[41];     /* "" until SCRIPT LOAD answered */
};

/*
 * ARGV: prefix, dedup window (ms), then the ops (encode.c). Returns one
 * array per op, whose first element is a status (VT__RS_*).
 */
extern struct vt__rscript vt__rscript_commit;

/* ARGV: prefix, window, user, device, after (hex), limit. Read-only. */
extern struct vt__rscript vt__rscript_list;

/* ARGV: prefix, window, now, before, device before, max. Returns a count. */
extern struct vt__rscript vt__rscript_expire;

/* Statuses in a commit reply. */
#define VT__RS_OK 0
#define VT__RS_UNKNOWN 1 /* VT_EUNKNOWNID */
#define VT__RS_FULL 2    /* VT_EINBOXFULL */
#define VT__RS_STALE 3   /* VT_ECONFLICT: the group is at another version */

#endif /* VARTALAP_REDIS_SCRIPTS_H */
