/*
 * frontends/server/secret.c - loading or generating the token key.
 */
#include "secret.h"

#include "dirs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <vartalap/log.h>

/* Read at most @cap bytes of @fd into @buf; returns the count or -1. */
static ssize_t read_all(int fd, unsigned char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -1;
		}
		if (n == 0) {
			break;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Anyone who can read the key can sign tokens for any user: say so. */
static void warn_if_open(int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		vt_log(VT_LOG_WARN,
		       "secret file %s can be read by others (mode %03o): chmod 600 it", path,
		       (unsigned)(st.st_mode & 0777));
	}
}

int vt_secret_load(const char *path, struct vt_secret *s)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		vt_log(VT_LOG_ERROR, "cannot open secret file %s: %s", path, strerror(errno));
		return -1;
	}
	warn_if_open(fd, path);
	n = read_all(fd, s->key, sizeof(s->key));
	close(fd);
	if (n < 0) {
		vt_log(VT_LOG_ERROR, "cannot read secret file %s: %s", path, strerror(errno));
		return -1;
	}

	/* A key written with echo ends in a newline that is not meant as key. */
	s->len = (size_t)n;
	while (n > 0 && (s->key[n - 1] == '\n' || s->key[n - 1] == '\r')) {
		n--;
	}
	if ((size_t)n < VT_SECRET_MIN) {
		/* 32 random bytes may end in one: a key of text, such as base64, does not */
		const char *why = (size_t)n < s->len
					  ? " (line breaks at its end are not part of the key)"
					  : "";

		vt_log(VT_LOG_ERROR, "secret file %s holds %zd bytes%s; at least %d are needed",
		       path, n, why, VT_SECRET_MIN);
		vt_secret_clear(s);
		return -1;
	}
	s->len = (size_t)n;
	return 0;
}

/* Room for the path of the development key. */
#define DEV_PATH_MAX 4096

/*
 * The key is 32 random bytes written as 64 hex digits, so the file is
 * printable and no byte of it can be taken for a trailing line break.
 *
 * It is written whole to a file of this process first and then linked to
 * @path, so that @path never holds part of a key: several processes that
 * start on one new data directory at once (servers, vartalapd token) all
 * read the key of the one whose link came first.
 */
static int create_dev_secret(const char *path)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[VT_SECRET_MIN];
	char key[2 * VT_SECRET_MIN];
	char tmp[DEV_PATH_MAX + 24]; /* @path, a dot and a process id */
	int fd, rc = 0;
	ssize_t n;
	size_t i;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid()) >= sizeof(tmp)) {
		vt_log(VT_LOG_ERROR, "data directory path too long");
		return -1;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		vt_log(VT_LOG_ERROR, "no randomness for a development secret");
		return -1;
	}
	for (i = 0; i < sizeof(raw); i++) {
		key[2 * i] = hex[raw[i] >> 4];
		key[2 * i + 1] = hex[raw[i] & 15];
	}
	OPENSSL_cleanse(raw, sizeof(raw));

	unlink(tmp); /* left by a process of this id that died while writing */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		vt_log(VT_LOG_ERROR, "cannot create %s: %s", tmp, strerror(errno));
		OPENSSL_cleanse(key, sizeof(key));
		return -1;
	}
	n = write(fd, key, sizeof(key));
	OPENSSL_cleanse(key, sizeof(key));
	if (n != (ssize_t)sizeof(key) || fsync(fd) != 0) {
		vt_log(VT_LOG_ERROR, "cannot write %s: %s", tmp, strerror(errno));
		rc = -1;
	} else if (link(tmp, path) != 0 && errno != EEXIST) {
		/* EEXIST: another process made the key first; that one is read */
		vt_log(VT_LOG_ERROR, "cannot create %s: %s", path, strerror(errno));
		rc = -1;
	}
	close(fd);
	unlink(tmp);
	return rc;
}

int vt_secret_dev(const char *data_dir, int warn, struct vt_secret *s)
{
	char path[DEV_PATH_MAX];
	int created = 0;

	if (vt_make_dirs(data_dir) != 0) {
		return -1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/dev-secret", data_dir) >= sizeof(path)) {
		vt_log(VT_LOG_ERROR, "data directory path too long");
		return -1;
	}
	if (access(path, F_OK) != 0) {
		if (create_dev_secret(path) != 0) {
			return -1;
		}
		created = 1;
	}
	if (vt_secret_load(path, s) != 0) {
		return -1;
	}
	if (!warn && !created) {
		return 0;
	}

	vt_log(VT_LOG_WARN,
	       "*** DEVELOPMENT SECRET in use (%s): anyone who can read it can "
	       "sign tokens; never run --dev in production ***",
	       path);
	return 0;
}

int vt_secret_from_options(const char *secret_file, int dev, int warn, const char *data_dir,
                           struct vt_secret *s)
{
	if (secret_file != NULL) {
		return vt_secret_load(secret_file, s);
	}
	if (dev) {
		return vt_secret_dev(data_dir, warn, s);
	}
	vt_log(VT_LOG_ERROR, "no token secret: pass --secret-file PATH (or --dev for "
	                     "development)");
	return -1;
}

void vt_secret_clear(struct vt_secret *s)
{
	OPENSSL_cleanse(s->key, sizeof(s->key));
	s->len = 0;
}
