/*
 * frontends/redis/startup.c - blocking calls made before the loop runs.
 *
 * The connection opened for loading the scripts stays open for max_id and
 * load_groups; if it broke meanwhile, each call connects once more.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "encode.h"
#include "scripts.h"
#include "startup.h"

static struct timeval tv_ms(uint32_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	return tv;
}

static void reply_free(redisReply *r)
{
	if (r) {
		freeReplyObject(r);
	}
}

static void sync_drop(struct vt__rsync *s)
{
	if (s->rc) {
		redisFree(s->rc);
		s->rc = NULL;
	}
}

/* Connect unless connected; returns 0 or VT_EIO (logged). */
static int sync_connect(struct vt__rsync *s)
{
	if (s->rc) {
		return 0;
	}
	s->rc = redisConnectWithTimeout(s->host, s->cfg.port, tv_ms(s->cfg.connect_timeout_ms));
	if (!s->rc || s->rc->err ||
	    redisSetTimeout(s->rc, tv_ms(s->cfg.command_timeout_ms)) != REDIS_OK) {
		vt_log(VT_LOG_ERROR, "redis: %s:%d: cannot connect: %s", s->host, s->cfg.port,
		       s->rc ? s->rc->errstr : "out of memory");
		sync_drop(s);
		return VT_EIO;
	}
	return 0;
}

/*
 * Run a command given as an argument vector. Returns the reply, or NULL
 * after logging why (an error reply counts as a failure).
 */
static redisReply *sync_cmd(struct vt__rsync *s, int argc, const char **argv,
                            const size_t *lens)
{
	redisReply *r;

	if (sync_connect(s) != 0) {
		return NULL;
	}
	r = redisCommandArgv(s->rc, argc, argv, lens);
	if (!r) {
		vt_log(VT_LOG_ERROR, "redis: %s: %s", argv[0], s->rc->errstr);
		sync_drop(s);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		vt_log(VT_LOG_ERROR, "redis: %s: %.*s", argv[0], (int)r->len, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static int load_script(struct vt__rsync *s, struct vt__rscript *sc)
{
	const char *argv[] = {"SCRIPT", "LOAD", sc->src};
	size_t lens[] = {6, 4, strlen(sc->src)};
	redisReply *r = sync_cmd(s, 3, argv, lens);
	int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;

	if (ok) {
		memcpy(sc->sha, r->str, 40);
		sc->sha[40] = 0;
	} else if (r) {
		vt_log(VT_LOG_ERROR, "redis: SCRIPT LOAD %s: unexpected reply", sc->name);
	}
	reply_free(r);
	return ok ? 0 : VT_EIO;
}

int vt__rsync_open(struct vt__rsync *s, const struct vt__rconn_config *cfg)
{
	int rc = 0;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->host = strdup(cfg->host);
	if (!s->host) {
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < cfg->nscripts && rc == 0; i++) {
		rc = load_script(s, cfg->scripts[i]);
	}
	if (rc != 0) {
		vt__rsync_close(s);
	}
	return rc;
}

/* A 16-digit hex id, as the commit script stores it; 0 otherwise. */
static uint64_t parse_id(const redisReply *r)
{
	return r->type == REDIS_REPLY_STRING ? vt__decode_id(r->str, r->len) : 0;
}

uint64_t vt__rsync_max_id(struct vt__rsync *s, const char *prefix)
{
	size_t plen = strlen(prefix);
	char *key = malloc(plen + 6);
	const char *argv[] = {"GET", key};
	size_t lens[] = {3, plen + 5};
	redisReply *r;
	uint64_t id = 0;

	if (!key) {
		return 0;
	}
	memcpy(key, prefix, plen);
	memcpy(key + plen, "maxid", 6);
	r = sync_cmd(s, 2, argv, lens);
	if (r && r->type != REDIS_REPLY_NIL && (id = parse_id(r)) == 0) {
		vt_log(VT_LOG_ERROR, "redis: %smaxid holds no id", prefix);
	}
	reply_free(r);
	free(key);
	return id;
}

/*
 * Blocks are counted in Pidblock. A store that held ids before any block was
 * taken (or was written by a single engine) has its maxid above the counter:
 * the counter then jumps past the block maxid lies in. Only the top 8 hex
 * digits become a Lua number, so no id is rounded. It writes a few bytes,
 * so it runs over maxmemory too: a full store must not keep a node from
 * starting, as the node is what can drain it.
 */
static const char lease_src[] =
        "#!lua flags=allow-oom\n"
        "local P = ARGV[1]\n"
        "local b = redis.call('INCR', P .. 'idblock')\n"
        "local m = redis.call('GET', P .. 'maxid')\n"
        "local top = m and tonumber(string.sub(m, 1, 8), 16) or 0\n"
        "if b <= top then\n"
        "  b = top + 1\n"
        "  redis.call('SET', P .. 'idblock', b)\n"
        "end\n"
        "return b\n";

/* Ids are served to clients as numbers, which must stay exact in a double. */
#define ID_BLOCK_LIMIT ((uint64_t)1 << (53 - VT__ID_BLOCK_BITS))

int vt__rsync_lease_ids(struct vt__rsync *s, const char *prefix, uint64_t *base)
{
	const char *argv[] = {"EVAL", lease_src, "0", prefix};
	size_t lens[] = {4, sizeof(lease_src) - 1, 1, strlen(prefix)};
	redisReply *r = sync_cmd(s, 4, argv, lens);
	int rc = VT_EIO;

	if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 &&
	    (uint64_t)r->integer < ID_BLOCK_LIMIT) {
		*base = (uint64_t)r->integer << VT__ID_BLOCK_BITS;
		rc = 0;
	} else if (r) {
		vt_log(VT_LOG_ERROR, "redis: %sidblock: no block of ids left", prefix);
	}
	reply_free(r);
	return rc;
}

int vt__rsync_subscribers(struct vt__rsync *s, const char *chan, long long *n)
{
	const char *argv[] = {"PUBSUB", "NUMSUB", chan};
	size_t lens[] = {6, 6, strlen(chan)};
	redisReply *r = sync_cmd(s, 3, argv, lens);
	int rc = VT_EIO;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_INTEGER) {
		*n = r->element[1]->integer;
		rc = 0;
	} else if (r) {
		vt_log(VT_LOG_ERROR, "redis: PUBSUB NUMSUB: unexpected reply");
	}
	reply_free(r);
	return rc;
}

/* The value of "@key:" in an INFO reply, copied into @out; 0 when found. */
static int info_field(const redisReply *r, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);

	for (const char *p = r->str; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		size_t n = 0;

		p += *p == '\n';
		if (strncmp(p, key, klen) != 0 || p[klen] != ':') {
			continue;
		}
		p += klen + 1;
		while (p[n] != '\0' && p[n] != '\r' && p[n] != '\n' && n + 1 < cap) {
			n++;
		}
		memcpy(out, p, n);
		out[n] = '\0';
		return 0;
	}
	return -1;
}

void vt__rsync_check_durability(struct vt__rsync *s)
{
	const char *info[] = {"INFO", "persistence"};
	const char *conf[] = {"CONFIG", "GET", "appendfsync"};
	size_t ilens[] = {4, 11}, clens[] = {6, 3, 11};
	redisReply *r = sync_cmd(s, 2, info, ilens);
	char aof[8] = "";

	if (r && r->type == REDIS_REPLY_STRING &&
	    info_field(r, "aof_enabled", aof, sizeof(aof)) == 0 && strcmp(aof, "1") != 0) {
		vt_log(VT_LOG_WARN, "redis: appendonly is off: what was answered accepted is "
		       "lost if Redis stops (see docs/CLUSTER.md, durability)");
	}
	reply_free(r);

	/* CONFIG may be renamed away on a managed server: then say nothing. */
	if (sync_connect(s) != 0) {
		return;
	}
	r = redisCommandArgv(s->rc, 3, conf, clens);
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[1]->str, "always") != 0) {
		vt_log(VT_LOG_WARN, "redis: appendfsync is %s, not always: a crash of the "
		       "machine may lose what was answered accepted in the last second",
		       r->element[1]->str);
	}
	if (r) {
		freeReplyObject(r);
	} else {
		sync_drop(s);
	}
}

/* Hand the field/value pairs of one HSCAN page to @each. */
static int groups_page(const redisReply *page,
                       void (*each)(void *arg, const char *group, const char *data, size_t len),
                       void *arg)
{
	if (page->type != REDIS_REPLY_ARRAY || page->elements % 2) {
		return VT_EIO;
	}
	for (size_t i = 0; i < page->elements; i += 2) {
		const redisReply *g = page->element[i], *d = page->element[i + 1];

		if (g->type != REDIS_REPLY_STRING || d->type != REDIS_REPLY_STRING) {
			return VT_EIO;
		}
		each(arg, g->str, d->str, d->len);
	}
	return 0;
}

int vt__rsync_groups(struct vt__rsync *s, const char *prefix,
                     void (*each)(void *arg, const char *group, const char *data, size_t len),
                     void *arg)
{
	size_t plen = strlen(prefix);
	char *key = malloc(plen + 7), cursor[32] = "0";
	const char *argv[] = {"HSCAN", key, cursor, "COUNT", "256"};
	size_t lens[] = {5, plen + 6, 1, 5, 3};
	int rc = key ? 0 : VT_ENOMEM;

	if (key) {
		memcpy(key, prefix, plen);
		memcpy(key + plen, "groups", 7);
	}
	do {
		redisReply *r = rc == 0 ? sync_cmd(s, 5, argv, lens) : NULL;

		if (rc == 0 && (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		                r->element[0]->type != REDIS_REPLY_STRING ||
		                r->element[0]->len >= sizeof(cursor))) {
			rc = VT_EIO;
		}
		if (rc == 0) {
			rc = groups_page(r->element[1], each, arg);
			memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
			lens[2] = strlen(cursor);
		}
		reply_free(r);
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	free(key);
	return rc;
}

/*
 * Page through the index of revocations with the revoked script, sent in
 * full (EVAL): this connection may have come back to a server that forgot
 * the scripts it loaded at open.
 */
int vt__rsync_revoked(struct vt__rsync *s, const char *prefix, vt__revoked_cb each, void *arg)
{
	const struct vt__rscript *sc = &vt__rscript_revoked;
	char cursor[32] = "0";
	const char *argv[] = {"EVAL", sc->src, "0", prefix, "0", cursor};
	size_t lens[] = {4, strlen(sc->src), 1, strlen(prefix), 1, 1};
	int rc = 0;

	do {
		redisReply *r = sync_cmd(s, 6, argv, lens);

		rc = r ? vt__decode_revoked(r, cursor, sizeof(cursor), each, arg) : VT_EIO;
		if (r && rc != 0) {
			vt_log(VT_LOG_ERROR, "redis: %srvts: reply of an unexpected shape", prefix);
			rc = VT_EIO;
		}
		lens[5] = strlen(cursor);
		reply_free(r);
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	return rc;
}

void vt__rsync_close(struct vt__rsync *s)
{
	sync_drop(s);
	free(s->host);
	s->host = NULL;
}
