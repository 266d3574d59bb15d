/*
 * frontends/server/config.c - reading vartalapd's configuration file.
 *
 * The file knows no keys of its own: each key is looked up in the command
 * line's option table (vt_server_option_set), so an option added there is a
 * valid key here at once, checked by the same code.
 */
#include "config.h"
#include "../tls/tls.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"

/* Longest key, in bytes; longer ones are no option's name. */
#define KEY_MAX 64

/*
 * Every file read stays here for the life of the process: the options keep
 * pointers into it (paths, the webhook URL). One file is read per process.
 */
static char *kept_text;

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t') {
		s++;
	}
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1])) {
		end--;
	}
	*end = '\0';
	return s;
}

/* The whole file, NUL-terminated, or NULL after saying why. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "vartalapd: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(VT_CONFIG_MAX_BYTES + 1);
	n = buf != NULL ? fread(buf, 1, VT_CONFIG_MAX_BYTES + 1, f) : 0;
	if (buf == NULL || ferror(f) || n > VT_CONFIG_MAX_BYTES) {
		fprintf(stderr, "vartalapd: %s: %s\n", path,
		        buf == NULL ? "out of memory"
		        : ferror(f) ? "cannot read"
		                    : "larger than 1 MiB");
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (memchr(buf, '\0', n) != NULL) {
		fprintf(stderr, "vartalapd: %s: not a text file\n", path);
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * Cut @value at a comment, or strip its double quotes. Returns the value, or
 * NULL for an a quoted value must end the line.
 */
static char *unquote(char *value)
{
	char *p, *rest;

	if (value[0] == '"') {
		p = strchr(value + 1, '"');
		if (p == NULL) {
			return NULL;
		}
		rest = trim(p + 1);
		if (*rest != '\0' && *rest != '#') {
			return NULL;
		}
		*p = '\0';
		return value + 1;
	}
	for (p = value; *p != '\0'; p++) {
		if (*p == '#' && p > value && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	}
	return trim(value);
}

/* yes/no and its synonyms; -1 for anything else. */
static int parse_bool(const char *s)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			return 1;
		}
		if (strcmp(s, no[i]) == 0) {
			return 0;
		}
	}
	return -1;
}

/* Copy @key into @out with '_' spelled '-'; -1 when it cannot be a name. */
static int normalize_key(const char *key, char *out)
{
	size_t n = strlen(key);

	if (n == 0 || n >= KEY_MAX) {
		return -1;
	}
	for (size_t i = 0; i <= n; i++) {
		out[i] = key[i] == '_' ? '-' : key[i];
	}
	return 0;
}

/* Apply one "key = value" line; returns 0, or -1 after saying why. */
static int apply_line(const char *where, char *line, struct vt_server_options *o)
{
	char *eq = strchr(line, '=');
	char name[KEY_MAX];
	char *value;
	int kind, flag;

	if (eq == NULL) {
		fprintf(stderr, "vartalapd: %s: expected key = value\n", where);
		return -1;
	}
	*eq = '\0';
	value = unquote(trim(eq + 1));
	kind = normalize_key(trim(line), name) == 0 ? vt_server_option_kind(name) : -1;
	if (kind < 0) {
		fprintf(stderr, "vartalapd: %s: unknown key '%s'\n", where, trim(line));
		return -1;
	}
	if (value == NULL) {
		fprintf(stderr, "vartalapd: %s: a quoted value must end the line\n", where);
		return -1;
	}
	if (kind == 0) {
		flag = parse_bool(value);
		if (flag < 0) {
			fprintf(stderr, "vartalapd: %s: %s takes yes or no, got '%s'\n", where,
			        name, value);
			return -1;
		}

		/* A flag cannot be unset once set; "no" leaves the default. */
		return flag ? vt_server_option_set(name, NULL, o) : 0;
	}
	if (vt_server_option_set(name, value, o) != 0) {
		fprintf(stderr, "vartalapd: %s: bad value for %s (above)\n", where, name);
		return -1;
	}
	return 0;
}

int vt_config_load(const char *path, struct vt_server_options *o)
{
	char *text = read_file(path);
	char *line, *next;
	unsigned lineno = 0;

	if (text == NULL) {
		return -1;
	}

	/* Kept even when a line fails: earlier lines already point into it. */
	kept_text = text;

	for (line = text; line != NULL; line = next) {
		char where[512];
		char *s;

		next = strchr(line, '\n');
		if (next != NULL) {
			*next++ = '\0';
		}
		lineno++;
		s = trim(line);
		if (*s == '\0' || *s == '#') {
			continue;
		}
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (apply_line(where, s, o) != 0) {
			return -1;
		}
	}
	return 0;
}

void vt_config_release(void)
{
	free(kept_text);
	kept_text = NULL;
}

/* The certificate and key load and belong together, as start-up needs. */
static int check_tls(const struct vt_server_options *o)
{
	struct ssl_ctx_st *ctx = NULL;
	char why[512];

	if (vt_tls_ctx_new(o->tls_cert, o->tls_key, &ctx, why, sizeof(why)) != 0) {
		fprintf(stderr, "vartalapd: TLS: %s\n", why);
		return -1;
	}
	vt_tls_ctx_free(ctx);
	return 0;
}

enum vt_opt_result vt_config_check(const struct vt_server_options *o)
{
	struct vt_secret *s;

	if (o->secret_file == NULL && !o->dev) {
		fprintf(stderr, "vartalapd: secret-file is required (or dev for development)\n");
		return VT_OPT_EXIT_BAD;
	}
	if (o->secret_file != NULL) {
		/* The key is large: keep it off the stack, and wipe it after. */
		s = malloc(sizeof(*s));
		if (s == NULL || vt_secret_load(o->secret_file, s) != 0) {
			free(s);
			return VT_OPT_EXIT_BAD;
		}
		vt_secret_clear(s);
		free(s);
	}
	if (o->tls_cert != NULL && check_tls(o) != 0) {
		return VT_OPT_EXIT_BAD;
	}
	puts("ok");
	return VT_OPT_EXIT_OK;
}
