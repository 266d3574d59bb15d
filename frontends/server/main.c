/*
 * frontends/server/main.c - vartalapd: the reference chat delivery server.
 */
#include <string.h>

#include "commands.h"
#include "config.h"

int main(int argc, char **argv)
{
	int rc;

	if (argc > 1 && strcmp(argv[1], "token") == 0) {
		return vt_cmd_token(argc - 1, argv + 1);
	}
	rc = vt_cmd_serve(argc, argv);

	/* Options may point into the config file's text until here. */
	vt_config_release();
	return rc;
}
