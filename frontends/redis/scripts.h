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
	/* run instead when the server refuses this one for being over
	 * maxmemory (it is not run then); NULL: the call fails */
	struct vt__rscript *oom;
};

/*
 * ARGV: prefix, dedup window (ms), then the ops (encode.c). Returns one
 * array per op, whose first element is a status (VT__RS_*). Refused over
 * maxmemory, it is run again as vt__rscript_commit_full.
 */
extern struct vt__rscript vt__rscript_commit;

/*
 * The commit script as Redis runs it over maxmemory: what would grow the
 * store (a PUT that writes, a user's second or later device, a group
 * state) gets VT__RS_NOSPACE, the rest is applied.
 */
extern struct vt__rscript vt__rscript_commit_full;

/*
 * ARGV: prefix, window, user, device, after (an inbox entry: 16 hex digits,
 * or whatever an entry listed last held), limit. Read-only. Returns up to
 * limit records, each id flags kind from to cid ts body; fewer only when
 * the inbox has no more.
 */
extern struct vt__rscript vt__rscript_list;

/*
 * ARGV: prefix, window, now, before, device before, max, and the time in
 * seconds before which revocations are forgotten (exclusive). Returns a
 * count. It only deletes, so it runs over maxmemory too.
 */
extern struct vt__rscript vt__rscript_expire;

/*
 * ARGV: prefix, window (unused), a ZSCAN cursor ("0" to start). Read-only.
 * Returns the next cursor ("0": done), then user device time triples, one
 * per revocation of that page; a page may hold none, and a revocation may
 * come twice (as ZSCAN may). A triple that cannot be read has an empty
 * user or time.
 */
extern struct vt__rscript vt__rscript_revoked;

/* Statuses in a commit reply. */
#define VT__RS_OK 0
#define VT__RS_UNKNOWN 1 /* VT_EUNKNOWNID */
#define VT__RS_FULL 2    /* VT_EINBOXFULL */
#define VT__RS_STALE 3   /* VT_ECONFLICT: the group is at another version */
#define VT__RS_NOSPACE 4 /* VT_ENOSPC: over maxmemory, and the op would grow */
#define VT__RS_TAKEN 5   /* VT_ESTORAGE: another record holds the PUT's id */

#endif /* VARTALAP_REDIS_SCRIPTS_H */
