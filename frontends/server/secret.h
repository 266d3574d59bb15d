/*
 * frontends/server/secret.h - the HMAC key that signs bearer tokens.
 */
#ifndef VARTALAP_SERVER_SECRET_H
#define VARTALAP_SERVER_SECRET_H

#include <stddef.h>

/* Shortest key accepted, in bytes. */
#define VT_SECRET_MIN 32

/* Longest key read from a file, in bytes. */
#define VT_SECRET_MAX 4096

struct vt_secret {
	unsigned char key[VT_SECRET_MAX];
	size_t len;
};

/*
 * Read the key from @path (trailing line breaks are not part of it).
 * Returns 0, or -1 with the reason logged (missing, unreadable, too short).
 */
int vt_secret_load(const char *path, struct vt_secret *s);

/*
 * Development key: reuse DATA_DIR/dev-secret, or create it (mode 0600) with
 * 32 random bytes, creating @data_dir as needed. Logs a warning that it is
 * in use when @warn is set or the key is new. Returns 0 or -1 with the
 * reason logged.
 */
int vt_secret_dev(const char *data_dir, int warn, struct vt_secret *s);

/*
 * Pick the key the options ask for: --secret-file wins, else --dev; neither
 * is an error. @warn as for vt_secret_dev(): the server warns at every
 * start, a command that only signs tokens when it made the key. Returns 0
 * or -1 with the reason logged.
 */
int vt_secret_from_options(const char *secret_file, int dev, int warn, const char *data_dir,
                           struct vt_secret *s);

/* Wipe the key from memory. */
void vt_secret_clear(struct vt_secret *s);

#endif /* VARTALAP_SERVER_SECRET_H */
