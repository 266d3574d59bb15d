/*
 * frontends/server/dirs.h - creating the data directory.
 */
#ifndef VARTALAP_SERVER_DIRS_H
#define VARTALAP_SERVER_DIRS_H

/*
 * Create @path and any missing parent (mode 0700 for the ones made here).
 * Returns 0, or -1 with the reason logged.
 */
int vt_make_dirs(const char *path);

#endif /* VARTALAP_SERVER_DIRS_H */
