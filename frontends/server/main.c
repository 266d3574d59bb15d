/*
 * frontends/server/main.c - vartalapd: the reference chat delivery server.
 */
#include <string.h>

#include "commands.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "token") == 0) {
		return vt_cmd_token(argc - 1, argv + 1);
	}
	return vt_cmd_serve(argc, argv);
}
