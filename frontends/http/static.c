/*
 * frontends/http/static.c - the chat page's files, and dev-mode sign-in.
 *
 * The page is a handful of small files, so each request opens the file, checks
 * it, and hands the descriptor to libevent; nothing is cached in memory. The
 * path checks are deliberately narrow (a short list of characters, no dot
 * segments, no percent escapes) so that no request can name anything outside
 * the web root, however it is encoded.
 */
#include "static.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <vartalap/token.h>

#include "../common/http_reply.h"
#include "../common/json_str.h"
#include "json.h"

/* The page is tiny; a larger file in the web root is a mistake, not a page. */
#define STATIC_MAX_BYTES (1024 * 1024)
#define STATIC_MAX_PATH 200
#define DEV_TOKEN_TTL_S 86400
#define DEV_BODY_MAX 1024

#ifndef VT_WEB_INSTALL_DIR
#define VT_WEB_INSTALL_DIR "/usr/local/share/vartalap/web"
#endif
#ifndef VT_WEB_SOURCE_DIR
#define VT_WEB_SOURCE_DIR "web"
#endif

struct ctype {
	const char *ext;
	const char *type;
};

static const struct ctype ctypes[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
};

/* The Content-Type of @path by its extension, or NULL: unknown types are not served. */
static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot != NULL && i < sizeof(ctypes) / sizeof(ctypes[0]); i++) {
		if (strcmp(dot, ctypes[i].ext) == 0) {
			return ctypes[i].type;
		}
	}
	return NULL;
}

/*
 * Is @path a name we may open under the root? Letters, digits, '-', '_',
 * '.' and '/' only; no empty segment and no segment starting with '.', which
 * rules out "..", hidden files and "//".
 */
static int path_ok(const char *path)
{
	size_t len = strlen(path);

	if (path[0] != '/' || len > STATIC_MAX_PATH) {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		char c = path[i];
		int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		            (c >= '0' && c <= '9') || c == '-' || c == '_';

		if (c == '.' && path[i - 1] == '/') {
			return 0;
		}
		if (c == '/' && path[i - 1] == '/') {
			return 0;
		}
		if (!plain && c != '.' && c != '/') {
			return 0;
		}
	}
	return 1;
}

static void add_page_headers(struct evhttp_request *req, const char *type, const char *etag)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	evhttp_add_header(out, "Content-Type", type);
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "Cache-Control", "no-cache");
	evhttp_add_header(out, "ETag", etag);
	evhttp_add_header(out, "Content-Security-Policy",
	                  "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
	                  "frame-ancestors 'none'");
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
}

/*
 * Open @rel ("/a/b.js", already checked: no dot segments, no "//") under
 * @root one segment at a time with O_NOFOLLOW, so a symlink anywhere on the
 * way, a directory as much as the file, is refused: nothing outside the root
 * can be named. A regular file of at most STATIC_MAX_BYTES, or -1.
 */
static int open_page_file(const char *root, const char *rel, struct stat *st)
{
	char path[4096];
	char *seg, *next;
	int dir, fd = -1;

	if ((size_t)snprintf(path, sizeof(path), "%s", rel + 1) >= sizeof(path)) {
		return -1;
	}
	dir = open(root, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
	for (seg = path; dir >= 0 && seg != NULL; seg = next) {
		next = strchr(seg, '/');
		if (next != NULL) {
			*next++ = '\0';
			fd = openat(dir, seg, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_DIRECTORY);
		} else {
			/* O_NONBLOCK: a FIFO planted in the root must not stall the loop. */
			fd = openat(dir, seg, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		}
		close(dir);
		dir = next != NULL ? fd : -1;
	}
	if (dir >= 0) {
		close(dir);
		return -1;
	}
	if (fd < 0) {
		return -1;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > STATIC_MAX_BYTES) {
		close(fd);
		return -1;
	}
	return fd;
}

static void serve_file(const char *root, struct evhttp_request *req, const char *rel)
{
	const char *type = content_type(rel);
	const char *inm;
	struct stat st;
	char etag[64];
	int fd;

	fd = type != NULL ? open_page_file(root, rel, &st) : -1;
	if (fd < 0) {
		vt_fe_reply_error(req, 404, "not_found", "no such file");
		return;
	}
	snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st.st_size,
	         (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec);
	add_page_headers(req, type, etag);
	inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
	if (inm != NULL && strcmp(inm, etag) == 0) {
		close(fd);
		evhttp_send_reply(req, 304, "Not Modified", NULL);
		return;
	}
	/* evbuffer_add_file owns @fd from here, on failure too. */
	if (evbuffer_add_file(evhttp_request_get_output_buffer(req), fd, 0, st.st_size) != 0) {
		vt_fe_reply_error(req, 500, "internal", "cannot read the file");
		return;
	}
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void serve_page(const struct vt_fe_config *cfg, struct evhttp_request *req,
                       const char *path)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		vt_fe_reply_error(req, 405, "method_not_allowed", "use GET");
		return;
	}
	if (strcmp(path, "/") == 0) {
		path = "/index.html";
	}
	if (!path_ok(path)) {
		vt_fe_reply_error(req, 404, "not_found", "no such file");
		return;
	}
	serve_file(cfg->web_root, req, path);
}

/* Read "user" and "device" (optional) of {"user":"alice","device":"web"}. */
static int dev_token_args(const char *s, size_t len, char *user, char *device, size_t cap)
{
	struct vt_json_val obj, key, val;
	size_t pos = 0;

	user[0] = device[0] = '\0';
	if (vt_json_validate_value(s, len, 2, &obj) != 0) {
		return -1;
	}
	while (vt_json_next_member(&obj, &pos, &key, &val)) {
		char *dst = vt_json_key_is(&key, "user")     ? user
		            : vt_json_key_is(&key, "device") ? device
		                                             : NULL;

		if (dst != NULL && vt_json_str_decode(&val, dst, cap) < 0) {
			return -1;
		}
	}
	if (!vt_user_id_valid(user, strlen(user)) ||
	    (device[0] != '\0' && !vt_user_id_valid(device, strlen(device)))) {
		return -1;
	}
	return 0;
}

static void reply_token(struct evhttp_request *req, const char *token, const char *user,
                        const char *device)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		vt_fe_reply_error(req, 500, "internal", "out of memory");
		return;
	}
	evbuffer_add_printf(b, "{\"token\":\"%s\",\"user\":", token);
	vt_fe_json_string(b, user);
	evbuffer_add_printf(b, ",\"device\":");
	vt_fe_json_string(b, device);
	evbuffer_add_printf(b, ",\"dev_only\":true}");
	vt_fe_reply_json(req, 200, (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
}

/*
 * POST /v1/dev/token: DEVELOPMENT ONLY. Anyone who can reach the port gets a
 * token for any user, so the route exists only under --dev, where the key is
 * a throwaway one the server made itself.
 */
static void serve_dev_token(const struct vt_fe_config *cfg, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char user[VT_TOKEN_MAX], device[VT_TOKEN_MAX], token[VT_TOKEN_MAX + 1];
	int64_t now = (int64_t)time(NULL);
	const char *body;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		vt_fe_reply_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	body = len > 0 && len <= DEV_BODY_MAX ? (const char *)evbuffer_pullup(in, -1) : NULL;
	if (body == NULL || dev_token_args(body, len, user, device, 65) != 0) {
		vt_fe_reply_error(req, 400, "bad_request",
		                  "expected {\"user\":\"alice\",\"device\":\"web\"}, ids of "
		                  "1 to 64 bytes of [A-Za-z0-9._@-]");
		return;
	}
	if (vt_token_sign(cfg->key, cfg->key_len, user, device, now, now + DEV_TOKEN_TTL_S, token,
	                  sizeof(token)) < 0) {
		vt_fe_reply_error(req, 500, "internal", "cannot sign a token");
		return;
	}
	reply_token(req, token, user, device);
}

int vt_http_static_serve(const struct vt_fe_config *cfg, struct evhttp_request *req,
                         const char *path)
{
	if (strcmp(path, "/v1/dev/token") == 0) {
		if (!cfg->dev_tokens) {
			return 0;
		}
		serve_dev_token(cfg, req);
		return 1;
	}
	/* The API's namespace answers JSON 404s, never a page. */
	if (cfg->web_root == NULL || strncmp(path, "/v1/", 4) == 0) {
		return 0;
	}
	serve_page(cfg, req, path);
	return 1;
}

static int has_index(const char *dir)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/index.html", dir);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *vt_http_static_default_root(void)
{
	static const char *const dirs[] = {VT_WEB_INSTALL_DIR, VT_WEB_SOURCE_DIR};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (has_index(dirs[i])) {
			return dirs[i];
		}
	}
	return NULL;
}
