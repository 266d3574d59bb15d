/*
 * frontends/server/commands.h - what vartalapd can be asked to do.
 */
#ifndef VARTALAP_SERVER_COMMANDS_H
#define VARTALAP_SERVER_COMMANDS_H

/* "vartalapd token ...": @argv[0] is "token". Returns the exit status. */
int vt_cmd_token(int argc, char **argv);

/* "vartalapd [OPTIONS]": serve until SIGTERM or SIGINT. Returns the exit status. */
int vt_cmd_serve(int argc, char **argv);

#endif /* VARTALAP_SERVER_COMMANDS_H */
