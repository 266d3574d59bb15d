/*
 * frontends/server/token_cmd.c - "vartalapd token": sign a bearer token.
 *
 * The token is the only thing the program ever writes to stdout, so a
 * script can capture it with $(vartalapd token alice --dev).
 */
#include "commands.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <vartalap/error.h>
#include <vartalap/token.h>

#include "options.h"
#include "secret.h"

struct token_args {
	const char *user;
	const char *device;
	uint64_t ttl;
	const char *secret_file;
	const char *data_dir;
	int dev;
};

static const struct option token_options[] = {
        {"device", required_argument, NULL, 'd'},
        {"ttl", required_argument, NULL, 't'},
        {"secret-file", required_argument, NULL, 's'},
        {"data-dir", required_argument, NULL, 'D'},
        {"dev", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

static const char token_usage[] =
        "Usage: vartalapd token USER [--device D] [--ttl SECONDS]\n"
        "                 (--secret-file PATH | --dev [--data-dir DIR])\n"
        "\n"
        "Print a bearer token for USER on stdout. --ttl defaults to 86400.\n";

/* Returns 0 to go on, or an exit status. */
static int parse_token_args(int argc, char **argv, struct token_args *a)
{
	int opt;

	memset(a, 0, sizeof(*a));
	a->ttl = 86400;
	a->data_dir = "./vartalap-data";
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", token_options, NULL)) != -1) {
		switch (opt) {
		case 'd':
			a->device = optarg;
			break;
		case 's':
			a->secret_file = optarg;
			break;
		case 'D':
			a->data_dir = optarg;
			break;
		case 'v':
			a->dev = 1;
			break;
		case 'h':
			fputs(token_usage, stdout);
			return -1;
		case 't':
			if (vt_opt_number("ttl", optarg, 1, 10ull * 365 * 86400, &a->ttl) != 0) {
				return 2;
			}
			break;
		default:
			fprintf(stderr, "vartalapd token: unknown option or missing value: %s\n",
			        argv[optind - 1]);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fputs(token_usage, stderr);
		return 2;
	}
	a->user = argv[optind];
	return 0;
}

static int check_ids(const struct token_args *a)
{
	if (!vt_user_id_valid(a->user, strlen(a->user))) {
		fprintf(stderr, "vartalapd token: invalid user id '%s'\n", a->user);
		return 2;
	}
	if (a->device != NULL && !vt_user_id_valid(a->device, strlen(a->device))) {
		fprintf(stderr, "vartalapd token: invalid device id '%s'\n", a->device);
		return 2;
	}
	return 0;
}

int vt_cmd_token(int argc, char **argv)
{
	struct token_args a;
	struct vt_secret secret;
	char token[VT_TOKEN_MAX + 1];
	int64_t now = (int64_t)time(NULL);
	int rc = parse_token_args(argc, argv, &a);

	if (rc != 0) {
		return rc < 0 ? 0 : rc;
	}
	rc = check_ids(&a);
	if (rc != 0) {
		return rc;
	}
	if (vt_secret_from_options(a.secret_file, a.dev, 0, a.data_dir, &secret) != 0) {
		return 2;
	}

	rc = vt_token_sign(secret.key, secret.len, a.user, a.device, now, now + (int64_t)a.ttl,
	                   token, sizeof(token));
	vt_secret_clear(&secret);
	if (rc < 0) {
		fprintf(stderr, "vartalapd token: cannot sign: %s\n", vt_strerror(rc));
		return 1;
	}
	printf("%s\n", token);
	return 0;
}
