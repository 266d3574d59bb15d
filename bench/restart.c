/*
 * bench/restart.c - how long a server takes from exec to serving.
 *
 * vtbench starts the server itself (the command after "--"), so the clock
 * starts at the exec, then polls GET /healthz every millisecond until it
 * answers 200, then connects two users and times one WebSocket message
 * from one to the other. The server is stopped with SIGTERM at the end.
 */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bench.h"

extern char **environ;

static struct {
	pid_t pid;
	uint64_t t0, t_health, t_ws;
	int polls;
} S;

static void poll_health(evutil_socket_t fd, short what, void *arg);

static void retry(struct vb_bench *b, struct bufferevent *bev)
{
	struct timeval ms = {0, 1000};

	bufferevent_free(bev);
	event_base_once(b->base, -1, EV_TIMEOUT, poll_health, b, &ms);
}

static void health_read(struct bufferevent *bev, void *arg)
{
	struct vb_bench *b = arg;
	char head[13] = "";

	if (evbuffer_get_length(bufferevent_get_input(bev)) < 12) {
		return;
	}
	evbuffer_copyout(bufferevent_get_input(bev), head, 12);
	if (strncmp(head + 9, "200", 3) != 0) {
		retry(b, bev);
		return;
	}
	S.t_health = vb_now();
	bufferevent_free(bev);
	fprintf(stderr, "[restart %s] /healthz after %.1f ms (%d polls)\n", b->o.label,
	        (double)(S.t_health - S.t0) / 1e6, S.polls);
	if (vb_key_load(b) != 0) {
		fprintf(stderr, "vtbench: cannot read %s/dev-secret\n", b->o.data_dir);
		vb_stop(b);
		return;
	}
	vb_open(b, 0, 2, NULL);
}

static void health_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_CONNECTED) {
		evbuffer_add_printf(bufferevent_get_output(bev), "GET /healthz HTTP/1.1\r\n"
		                    "Host: x\r\nConnection: close\r\n\r\n");
		return;
	}
	retry(arg, bev);
}

static void poll_health(evutil_socket_t fd, short what, void *arg)
{
	struct vb_bench *b = arg;
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->o.port)};
	struct bufferevent *bev = bufferevent_socket_new(b->base, -1, BEV_OPT_CLOSE_ON_FREE);

	S.polls++;
	inet_pton(AF_INET, b->o.host, &dst.sin_addr);
	bufferevent_setcb(bev, health_read, NULL, health_event, b);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		retry(b, bev);
	}
}

static void start(struct vb_bench *b)
{
	vb_send_msg(&b->conns[0], vb_now());
}

static void delivered(struct vb_conn *c, uint64_t t, uint64_t seq)
{
	S.t_ws = vb_now();
	vb_stop(c->b);
}

static void nothing(struct vb_conn *c)
{
}

static void stop_server(void)
{
	int status;

	if (S.pid <= 0) {
		return;
	}
	kill(S.pid, SIGTERM);
	for (int i = 0; i < 1000 && waitpid(S.pid, &status, WNOHANG) == 0; i++) {
		usleep(10000);
	}
}

static void report(struct vb_bench *b)
{
	vb_row(b, "exec to first /healthz 200", "ms",
	       S.t_health ? (double)(S.t_health - S.t0) / 1e6 : -1);
	vb_row(b, "exec to first WebSocket message delivered", "ms",
	       S.t_ws ? (double)(S.t_ws - S.t0) / 1e6 : -1);
	vb_row(b, "server VmRSS when serving", "KiB", (double)vb_proc_rss(S.pid) / 1024);
	stop_server();
}

void vb_restart_setup(struct vb_bench *b)
{
	struct timeval now = {0, 0};

	if (b->o.spawn == NULL) {
		fprintf(stderr, "vtbench: restart needs the server command after --\n");
		return;
	}
	for (int i = 0; i < 2; i++) {
		b->conns[i].idx = i;
		b->conns[i].peer = &b->conns[i ^ 1];
		snprintf(b->conns[i].user, sizeof(b->conns[i].user), "%sx%d", b->o.prefix, i);
		snprintf(b->conns[i].to, sizeof(b->conns[i].to), "%sx%d", b->o.prefix, i ^ 1);
	}
	b->nconns = 2;
	b->h = (struct vb_hooks){.start = start, .accepted = nothing, .delivered = delivered,
	                         .report = report};
	S.t0 = vb_now();
	if (posix_spawnp(&S.pid, b->o.spawn[0], NULL, NULL, b->o.spawn, environ) != 0) {
		perror("vtbench: spawn");
		return;
	}
	b->o.server_pid = S.pid;
	event_base_once(b->base, -1, EV_TIMEOUT, poll_health, b, &now);
}
