/*
 * frontends/cli/commands.c - what each line typed into vartalap-cli does.
 *
 * "/to bob" and "/to g:team" pick the target, "/group create ...",
 * "/read" and "/typing" send the envelopes of their names, "/quit" ends,
 * and any other line is a message to the target. Client ids are
 * "cli-PID-TIME-SEQ": unique for the user, and kept on every re-send.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/json_str.h"
#include "cli.h"

/* A new envelope {"v":1,"type":T,"id":ID,"to":TO with the object left open; its id in @id. */
static struct evbuffer *env_start(struct cli *c, const char *type, const char *to, char *id,
                                  size_t id_cap)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		return NULL;
	}
	c->seq++;
	snprintf(id, id_cap, "cli-%ld-%ld-%lu", (long)getpid(), (long)time(NULL), c->seq);
	evbuffer_add_printf(b, "{\"v\":1,\"type\":\"%s\",\"id\":\"%s\",\"to\":", type, id);
	vt_fe_json_string(b, to);
	return b;
}

static void submit(struct cli *c, const char *id, struct evbuffer *b)
{
	if (cli_submit(c, id, b) != 0) {
		printf("error out_of_memory: %s was not sent\n", id);
	}
}

/*
 * Make @to the target. One that does not fit is no id the server takes: it
 * is refused whole, and the target cleared, rather than cut to another id.
 */
static void set_target(struct cli *c, const char *to)
{
	if (strlen(to) >= sizeof(c->target)) {
		printf("error bad_target: a user or group id has at most %zu bytes\n",
		       sizeof(c->target) - 1);
		c->target[0] = '\0';
		return;
	}
	snprintf(c->target, sizeof(c->target), "%s", to);
}

static void send_message(struct cli *c, const char *line, size_t len)
{
	struct evbuffer *b;
	char id[64];

	if (c->target[0] == '\0') {
		printf("error no_target: pick one first with /to USER or /to g:GROUP\n");
		return;
	}
	b = env_start(c, "message", c->target, id, sizeof(id));
	if (b != NULL) {
		evbuffer_add_printf(b, ",\"body\":{\"text\":\"");
		vt_fe_json_escape_n(b, line, len);
		evbuffer_add_printf(b, "\"}}");
		submit(c, id, b);
	}
}

/* /group create g:team Team bob carol */
static void group_create(struct cli *c, char *args)
{
	char *save = NULL;
	char *group = strtok_r(args, " \t", &save);
	char *name = strtok_r(NULL, " \t", &save);
	struct evbuffer *b;
	char id[64];
	int n = 0;

	if (group == NULL || name == NULL) {
		printf("error usage: /group create g:ID NAME [MEMBER...]\n");
		return;
	}
	b = env_start(c, "group_create", group, id, sizeof(id));
	if (b == NULL) {
		return;
	}
	evbuffer_add_printf(b, ",\"body\":{\"name\":");
	vt_fe_json_string(b, name);
	evbuffer_add_printf(b, ",\"members\":[");
	for (char *m; (m = strtok_r(NULL, " \t", &save)) != NULL; n++) {
		evbuffer_add_printf(b, n ? "," : "");
		vt_fe_json_string(b, m);
	}
	evbuffer_add_printf(b, "]}}");
	submit(c, id, b);
	set_target(c, group);
}

static void send_read(struct cli *c)
{
	struct evbuffer *b;
	char id[64];

	if (c->last_id[0] == '\0') {
		printf("error nothing_to_read: no message received yet\n");
		return;
	}
	b = env_start(c, "read", c->last_from, id, sizeof(id));
	if (b != NULL) {
		evbuffer_add_printf(b, ",\"ids\":[\"%s\"]}", c->last_id);
		submit(c, id, b);
	}
}

/* Typing is never answered, stored or retried: it is sent once or not at all. */
static void send_typing(struct cli *c)
{
	struct evbuffer *b = evbuffer_new();

	if (b != NULL && c->target[0] != '\0') {
		evbuffer_add_printf(b, "{\"v\":1,\"type\":\"typing\",\"to\":");
		vt_fe_json_string(b, c->target);
		evbuffer_add_printf(b, "}");
		cli_send_once(c, b);
	} else if (b != NULL) {
		evbuffer_free(b);
	}
}

void cli_command(struct cli *c, char *line, size_t len)
{
	if (line[0] == '/' && strlen(line) != len) {
		/* read as a string, it would be another command, or another target */
		printf("error unknown_command: a command holds a NUL byte\n");
	} else if (strncmp(line, "/to ", 4) == 0) {
		set_target(c, line + 4 + strspn(line + 4, " "));
	} else if (strncmp(line, "/group create ", 14) == 0) {
		group_create(c, line + 14);
	} else if (strcmp(line, "/read") == 0) {
		send_read(c);
	} else if (strcmp(line, "/typing") == 0) {
		send_typing(c);
	} else if (strcmp(line, "/quit") == 0) {
		cli_start_close(c);
	} else if (line[0] == '/') {
		printf("error unknown_command: %s\n", line);
	} else if (len > 0) {
		send_message(c, line, len);
	}
	fflush(stdout);
}
