/*
 * frontends/server/dirs.c - mkdir -p for the data directory.
 */
#include "dirs.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <vartalap/log.h>

static int make_one(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST) {
		return 0;
	}
	vt_log(VT_LOG_ERROR, "cannot create %s: %s", path, strerror(errno));
	return -1;
}

int vt_make_dirs(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);
	size_t i;

	if (len == 0 || len >= sizeof(buf)) {
		vt_log(VT_LOG_ERROR, "bad directory path");
		return -1;
	}
	memcpy(buf, path, len + 1);

	/* Each parent in turn; a leading slash is not a component. */
	for (i = 1; i < len; i++) {
		if (buf[i] != '/') {
			continue;
		}
		buf[i] = '\0';
		if (make_one(buf) != 0) {
			return -1;
		}
		buf[i] = '/';
	}
	return make_one(buf);
}
