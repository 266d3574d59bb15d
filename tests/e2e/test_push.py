#!/usr/bin/python3
"""The push hook (field case B27): one notice per event and device that
goes offline, none for a device that is online and acks; a slow, failing
or dead receiver never holds up delivery."""

import asyncio
import http.server
import json
import re
import threading
import time

from harness import (check, eq, connect, send_http, fetch, fetch_all, http_request, run,
                     server, await_until, ChildClient)


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every POST. @mode:
    "ok" answers 204, "fail" answers 500, "hang" holds each request until
    release() (or 10 s)."""

    def __init__(self, mode="ok"):
        self.mode = mode
        self.posts = []
        self.lock = threading.Lock()
        self.release_ev = threading.Event()
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with rx.lock:
                    rx.posts.append({"path": self.path, "body": body, "t": time.monotonic(),
                                     "ctype": self.headers.get("Content-Type")})
                if rx.mode == "hang":
                    rx.release_ev.wait(10)
                code = 500 if rx.mode == "fail" else 204
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def bodies(self):
        with self.lock:
            return [p["body"] for p in self.posts]

    def count(self):
        with self.lock:
            return len(self.posts)

    def close(self):
        self.release_ev.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def hook_server(rx, *args):
    return server("--notify", "webhook", "--webhook-url", rx.url, *args)


async def register(srv, *users):
    """Connect each user once and leave: a registered device ("") that is
    offline."""
    for u in users:
        c = await connect(srv, u)
        fetch(srv, srv.token(u))
        await c.close()
    fetch(srv, srv.token("zz-barrier"))


async def quiet_count(rx, want, duration, what):
    """The receiver's count is @want now and stays so for @duration."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        eq(rx.count(), want, what)
        await asyncio.sleep(0.05)
    eq(rx.count(), want, what)


async def test_a_online_acking_recipient_no_call():
    rx = Receiver()
    try:
        srv = hook_server(rx, "--ack-timeout", "2000")
        bob = await connect(srv, "bob")
        alice = await connect(srv, "alice")
        for i in range(5):
            await alice.message("bob", "a-%d" % i, i)
            acc = await alice.expect_type("accepted", ref="a-%d" % i)
            m = await bob.expect_type("message", id=acc["id"])
            await bob.ack(m["id"])
            d = await alice.expect_type("delivered")
            await alice.ack(d["id"])
        await quiet_count(rx, 0, 1.0, "webhook calls for an online, acking recipient")
        await alice.close()
        await bob.close()
    finally:
        rx.close()


async def test_b_offline_recipient_one_call():
    rx = Receiver()
    try:
        srv = hook_server(rx, "--ack-timeout", "300", "--retries", "1")
        await register(srv, "bob")
        st, acc = send_http(srv, srv.token("alice"), "bob", "b-1", {"text": "secret"})
        await await_until(lambda: rx.count() >= 1, 5, "a webhook call for offline bob")
        await quiet_count(rx, 1, 0.8, "webhook calls for one offline message")
        body = rx.bodies()[0]
        eq(body, {"user": "bob", "device": "", "id": acc["id"], "from": "alice", "group": None,
                  "kind": "message"}, "webhook JSON")
        check("body" not in body, "the message body is not sent without --webhook-body")
        eq(rx.posts[0]["path"], "/hook", "webhook path")
        # Pushed from storage and dropped again, un-acked: no second call.
        bob = await connect(srv, "bob")
        await bob.expect_type("message", id=acc["id"])
        bob.abort()
        bob = await connect(srv, "bob", name="bob#2")
        m = await bob.expect_type("message", id=acc["id"])
        await bob.expect_type("message", id=acc["id"], timeout=3)  # a retry
        await bob.ack(m["id"])
        await bob.close()
        await quiet_count(rx, 1, 0.8, "webhook calls after re-push, retry and ack")
    finally:
        rx.close()


async def test_b_webhook_body_option():
    rx = Receiver()
    try:
        srv = hook_server(rx, "--webhook-body")
        await register(srv, "bob")
        st, acc = send_http(srv, srv.token("alice"), "bob", "b-2", {"text": "hi", "n": [1, 2]})
        await await_until(lambda: rx.count() >= 1, 5, "a webhook call")
        eq(rx.bodies()[0].get("body"), {"text": "hi", "n": [1, 2]}, "body with --webhook-body")
    finally:
        rx.close()


async def test_c_half_open_recipient_one_call():
    rx = Receiver()
    child = None
    try:
        srv = hook_server(rx, "--ack-timeout", "300", "--retries", "2",
                          "--ping-interval", "1", "--ping-timeout", "1")
        await register(srv, "bob")
        child = ChildClient(srv, "bob")
        await await_until(lambda: srv.conn_sockets() == 1, 5, "bob's socket")
        child.stop()
        t0 = time.monotonic()
        st, acc = send_http(srv, srv.token("alice"), "bob", "c-1", "into the void")
        # Pushes at 0, 0.3 and 0.9 s; offline at 2.1 s, or earlier when
        # the ping deadline drops the connection first.
        await await_until(lambda: rx.count() >= 1, 8, "a webhook call for half-open bob")
        check(time.monotonic() - t0 > 0.25, "notice before the first retry: %.2fs"
              % (time.monotonic() - t0))
        await await_until(lambda: srv.conn_sockets() == 0, 8, "the half-open socket reaped")
        await quiet_count(rx, 1, 1.5, "webhook calls through retries, timeout and reaping")
        eq(rx.bodies()[0].get("id"), acc["id"], "notice id")
        eq([e["id"] for e in fetch(srv, srv.token("bob"))["messages"]], [acc["id"]], "stored once")
    finally:
        if child is not None:
            child.kill()
        rx.close()


async def test_d_group_to_three_offline_members():
    rx = Receiver()
    try:
        srv = hook_server(rx)
        await register(srv, "bob", "carol", "dave")
        st, r = http_request(srv, "POST", "/v1/send", srv.token("alice"),
                             {"v": 1, "type": "group_create", "id": "gc", "to": "g:three",
                              "body": {"name": "Three", "members": ["bob", "carol", "dave"]}})
        eq(st, 200, "create")
        await await_until(lambda: rx.count() >= 3, 5, "3 calls for the create event")
        await quiet_count(rx, 3, 0.5, "calls for the create event")
        st, acc = send_http(srv, srv.token("alice"), "g:three", "g-1", "hello all")
        await await_until(lambda: rx.count() >= 6, 5, "3 calls for the group message")
        await quiet_count(rx, 6, 1.0, "calls for create and one group message")
        b = rx.bodies()
        eq(sorted((x["user"], x["kind"], x["group"]) for x in b[:3]),
           [(u, "group", "g:three") for u in ("bob", "carol", "dave")], "notices of the create")
        eq(sorted((x["user"], x["id"], x["kind"], x["group"], x["from"]) for x in b[3:]),
           [(u, acc["id"], "message", "g:three", "alice") for u in ("bob", "carol", "dave")],
           "notices of the group message")
    finally:
        rx.close()


async def slow_receiver_case(mode, *extra):
    rx = Receiver(mode)
    try:
        srv = hook_server(rx, "--webhook-timeout", "500", *extra)
        await register(srv, "bob")
        worst, sent = 0.0, []
        for i in range(20):
            t0 = time.monotonic()
            st, acc = send_http(srv, srv.token("alice"), "bob", "s-%d" % i, i)
            worst = max(worst, time.monotonic() - t0)
            sent.append(acc["id"])
        check(worst < 0.5, "slowest /v1/send with a %s receiver: %.3fs" % (mode, worst))
        await await_until(lambda: rx.count() >= 1, 5, "the receiver to be called")
        eq([e["id"] for e in fetch_all(srv, srv.token("bob"))], sent, "all stored")
        bob = await connect(srv, "bob")
        got = [await bob.expect_type("message", timeout=5) for _ in sent]
        eq([m["id"] for m in got], sent, "all delivered on connect")
        await bob.ack(*sent)
        await bob.close()
        return srv, rx
    except BaseException:
        rx.close()
        raise


async def test_e_hanging_receiver_does_not_block():
    srv, rx = await slow_receiver_case("hang", "--webhook-queue", "4", "--webhook-retries", "0")
    try:
        # 20 notices, a queue of 4: the rest are dropped, counted and logged.
        await await_until(lambda: re.search(r"webhook: dropped", open(srv.log_path).read()),
                           5, "a log line about dropped notices")
    finally:
        rx.close()


async def test_e_failing_receiver_retried_then_dropped():
    srv, rx = await slow_receiver_case("fail", "--webhook-retries", "2")
    try:
        # Each notice is tried 1 + 2 times, then dropped and logged.
        await await_until(lambda: rx.count() >= 60, 15, "three attempts per notice")
        await await_until(lambda: "retries exhausted" in open(srv.log_path).read()
                          or "retries ran out" in open(srv.log_path).read(), 5,
                          "a log line about notices given up")
        await quiet_count(rx, 60, 1.0, "attempts beyond 1 + --webhook-retries")
    finally:
        rx.close()


async def test_dead_receiver_does_not_block():
    rx = Receiver()
    url = rx.url
    rx.close()  # nothing listens there now
    srv = server("--notify", "webhook", "--webhook-url", url, "--webhook-retries", "1")
    await register(srv, "bob")
    t0 = time.monotonic()
    st, acc = send_http(srv, srv.token("alice"), "bob", "x-1", "x")
    check(time.monotonic() - t0 < 0.5, "/v1/send with a dead receiver took %.3fs"
          % (time.monotonic() - t0))
    eq([e["id"] for e in fetch(srv, srv.token("bob"))["messages"]], [acc["id"]], "stored")
    await await_until(lambda: "webhook: dropped" in open(srv.log_path).read(), 5,
                      "the dropped notice logged")


def push_lines(srv):
    with open(srv.log_path) as f:
        return [l for l in f if re.search(r"\bpush user=", l)]


async def test_log_notifier_once_and_not_at_shutdown():
    srv = server("--notify", "log", "--ack-timeout", "5000")
    await register(srv, "bob", "carol")
    st, acc = send_http(srv, srv.token("alice"), "bob", "l-1", 1)
    await await_until(lambda: len(push_lines(srv)) >= 1, 5, "a push log line")
    check("user=bob" in push_lines(srv)[0] and ("id=%s" % acc["id"]) in push_lines(srv)[0],
          "push log line: %r" % push_lines(srv)[0])
    # carol is online and holds an un-acked push when the server stops.
    carol = await connect(srv, "carol")
    st, acc2 = send_http(srv, srv.token("alice"), "carol", "l-2", 2)
    await carol.expect_type("message", id=acc2["id"])
    srv.stop()
    lines = push_lines(srv)
    eq(len(lines), 1, "push log lines, none at shutdown: %r" % lines)
    await carol.close()


if __name__ == "__main__":
    run([test_a_online_acking_recipient_no_call, test_b_offline_recipient_one_call,
         test_b_webhook_body_option, test_c_half_open_recipient_one_call,
         test_d_group_to_three_offline_members, test_e_hanging_receiver_does_not_block,
         test_e_failing_receiver_retried_then_dropped, test_dead_receiver_does_not_block,
         test_log_notifier_once_and_not_at_shutdown])
