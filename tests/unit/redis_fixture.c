/*
 * redis_fixture.c - a redis-server of the suite's own, and the Redis backend
 * opened on it, for the Redis storage test executables (redis_fixture.h).
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "redis_fixture.h"
#include "storage_cases.h"
#include "store.h"

#define SKIP 77

/* The suite's own server, started by redis_fixture_main(). */
int server_port;
pid_t server_pid;

/* The event base of the current test, made inside the test's fork. */
struct event_base *base;

/* ---- servers ---- */

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
		port = ntohs(a.sin_port);
	}
	if (fd >= 0) {
		close(fd);
	}
	return port;
}

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nonzero once a server answers PING on @port. */
static int server_answers(int port)
{
	struct timeval tv = {0, 200000};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
	int ok = r && r->type == REDIS_REPLY_STATUS;

	if (r) {
		freeReplyObject(r);
	}
	if (c) {
		redisFree(c);
	}
	return ok;
}

/*
 * Start redis-server on 127.0.0.1:@port, persisting to @dir with an
 * append-only file when @dir is set. It is killed when the process that
 * started it dies. Returns its pid once it answers, or -1.
 */
pid_t server_start(int port, const char *dir)
{
	char p[16];
	pid_t pid;
	long long deadline = now_ms() + 10000;

	snprintf(p, sizeof(p), "%d", port);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		freopen("/dev/null", "w", stdout);
		execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", p,
		       "--save", "", "--appendonly", dir ? "yes" : "no", "--appendfsync",
		       "always", "--dir", dir ? dir : "/tmp", "--daemonize", "no", (char *)NULL);
		_exit(SKIP);
	}
	while (pid > 0 && now_ms() < deadline) {
		int st;

		if (server_answers(port)) {
			return pid;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			return -1; /* exited: not installed, or the port was taken */
		}
		usleep(20000);
	}
	return -1;
}

void server_kill(pid_t pid, int sig)
{
	kill(pid, sig);
	if (sig == SIGKILL || sig == SIGTERM) {
		waitpid(pid, NULL, 0);
	}
}

/*
 * Run one command on the server at @port, a hiredis format (%s, %b);
 * nonzero when it answered.
 */
int server_cmd(int port, const char *fmt, ...)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *r = NULL;
	va_list ap;
	int ok;

	if (c && !c->err) {
		va_start(ap, fmt);
		r = redisvCommand(c, fmt, ap);
		va_end(ap);
	}
	ok = r && r->type != REDIS_REPLY_ERROR;

	if (r) {
		freeReplyObject(r);
	}
	if (c) {
		redisFree(c);
	}
	return ok;
}

/*
 * Nonzero when one command on the suite's server (a hiredis format) answers
 * @want: a string, or an integer written in decimal.
 */
int server_answers_with(const char *want, const char *fmt, ...)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", server_port, tv);
	redisReply *r = NULL;
	char num[32];
	va_list ap;
	int ok = 0;

	if (c && !c->err) {
		va_start(ap, fmt);
		r = redisvCommand(c, fmt, ap);
		va_end(ap);
	}
	if (r && r->type == REDIS_REPLY_INTEGER) {
		snprintf(num, sizeof(num), "%lld", r->integer);
		ok = strcmp(num, want) == 0;
	} else if (r && r->type == REDIS_REPLY_STRING) {
		ok = strcmp(r->str, want) == 0;
	}
	if (r) {
		freeReplyObject(r);
	}
	if (c) {
		redisFree(c);
	}
	return ok;
}

/* ---- the backend under the contract ---- */

int open_on(int port, uint32_t timeout_ms)
{
	struct vt_redis_options o = {"127.0.0.1", port, "vt:", 500, timeout_ms, WINDOW_MS, 0};

	if (!base) {
		base = event_base_new();
		ck_assert_ptr_nonnull(base);
	}
	return vt_storage_redis_open(base, &o, &fx.st);
}

int open_redis(void)
{
	ck_assert(server_cmd(server_port, "FLUSHALL"));
	ck_assert(server_cmd(server_port, "CONFIG SET maxmemory 0"));
	return open_on(server_port, 2000);
}

/* Over maxmemory from here on, as a server left at noeviction gets. */
static void fill_redis(void)
{
	ck_assert(server_cmd(server_port, "CONFIG SET maxmemory 1"));
}

const struct storage_backend storage_backends[] = {
        {"redis", open_redis, 0, 1, fill_redis},
};

const int storage_nbackends = 1;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Run the loop, a tick at a time, until *@calls is set; at most @ms. */
int wait_ms(int *calls, long long ms)
{
	long long deadline = now_ms() + ms;
	struct timeval tick = {0, 20000};
	struct event *t = evtimer_new(base, on_tick, NULL);

	while (!*calls && now_ms() < deadline) {
		evtimer_add(t, &tick);
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(t);
	return *calls;
}

void storage_wait(int *calls)
{
	ck_assert_msg(wait_ms(calls, 10000), "no callback within 10 s");
}

void redis_teardown(void)
{
	teardown();
	if (base) {
		event_base_free(base);
		base = NULL;
	}
}

int redis_fixture_main(Suite *s, const char *name)
{
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	server_port = free_port();
	server_pid = server_start(server_port, NULL);
	if (server_pid < 0) {
		fprintf(stderr, "%s: no redis-server could start: skipped\n", name);
		return SKIP;
	}
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	server_kill(server_pid, SIGTERM);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
