/*
 * frontends/server/config.h - vartalapd's configuration file.
 *
 * One setting a line, "key = value", where a key is a long option without its
 * dashes ("listen = 127.0.0.1:8080"); '_' may stand for '-'. Blank lines and
 * lines starting with '#' are ignored, and so is the rest of a line from a '#'
 * that follows a space or tab, unless the value is in double quotes. A flag
 * (an option without a value, such as "dev") takes yes/no, true/false, on/off
 * or 1/0. A key given twice keeps its last value. The file is applied before
 * the command line, so options given there win.
 */
#ifndef VARTALAP_SERVER_CONFIG_H
#define VARTALAP_SERVER_CONFIG_H

#include "options.h"

/* Largest configuration file read, in bytes. */
#define VT_CONFIG_MAX_BYTES (1024 * 1024)

/*
 * Read @path and apply each setting to @o. Values stay in memory for the life
 * of the process, since @o keeps pointers into them. Returns 0, or -1 after
 * printing "vartalapd: PATH:LINE: why" (and the option's own complaint for a
 * bad value) to stderr.
 */
int vt_config_load(const char *path, struct vt_server_options *o);

/*
 * What --check-config adds to parsing: the files the settings name must be
 * usable (the secret file readable and long enough). Prints "ok" on stdout and
 * returns VT_OPT_EXIT_OK, or prints the problem and returns VT_OPT_EXIT_BAD.
 */
enum vt_opt_result vt_config_check(const struct vt_server_options *o);

/* Free the text of a loaded config file, once nothing points into it. */
void vt_config_release(void);

#endif /* VARTALAP_SERVER_CONFIG_H */
