/*
 * redis_fixture.h - a redis-server of the suite's own, on 127.0.0.1 and a
 * free port, without persistence, and the Redis backend opened on it, for
 * the Redis storage test executables. Check runs each test in a fork, so
 * the backend, its event base and its connections are made inside the
 * test; a test that kills or restarts a server starts one of its own,
 * which dies with the test process. It defines storage_backends and
 * storage_wait for the contract cases (storage_cases.h).
 */
#ifndef VARTALAP_TEST_REDIS_FIXTURE_H
#define VARTALAP_TEST_REDIS_FIXTURE_H

#include <check.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;

/* The suite's own server, started by redis_fixture_main(). */
extern int server_port;
extern pid_t server_pid;

/* The event base of the current test, made inside the test's fork. */
extern struct event_base *base;

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int free_port(void);
long long now_ms(void);

/* A redis-server on @port (with its data in @dir, or none); its pid, or -1. */
pid_t server_start(int port, const char *dir);
void server_kill(pid_t pid, int sig);

/*
 * Send a command (hiredis's format: %s, %b with a length) to the server on
 * @port; nonzero when it answered without an error.
 */
int server_cmd(int port, const char *fmt, ...);

/* Nonzero when the suite's server answers the command with the string or number @want. */
int server_answers_with(const char *want, const char *fmt, ...);

/* Open the backend on @port into fx.st; 0 or an error. */
int open_on(int port, uint32_t timeout_ms);

/* The backend on the suite's server, flushed and without a memory limit. */
int open_redis(void);

/* Run the test's event loop until *@calls is set, at most @ms; *@calls. */
int wait_ms(int *calls, long long ms);

/* The contract's teardown, and the test's event base freed. */
void redis_teardown(void);

/* Start the suite's server, run @s, stop the server: the exit status (77: no server). */
int redis_fixture_main(Suite *s, const char *name);

#endif
