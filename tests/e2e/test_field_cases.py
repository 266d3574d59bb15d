#!/usr/bin/python3
"""Field cases B02 (half-open recipient) and B09 (abrupt reconnects)."""

from harness import (eq, connect, send_http, fetch, receipt_refs, run, server, await_until,
                     ChildClient)


async def test_b02_half_open_recipient():
    srv = server("--ack-timeout", "300", "--retries", "1",
                 "--ping-interval", "1", "--ping-timeout", "1")
    await await_until(lambda: srv.conn_sockets() == 0, 5, "an idle server")
    bob = await connect(srv, "bob")
    await await_until(lambda: srv.conn_sockets() == 1, 5, "bob's socket")
    child = ChildClient(srv, "alice")
    try:
        await await_until(lambda: srv.conn_sockets() == 2, 5, "alice's socket")
        child.stop()  # no FIN, no RST: the socket just goes silent
        st, acc = send_http(srv, srv.token("bob"), "alice", "m1", "to a dead socket")
        # The server notices the silence (no pong) and drops alice.
        await await_until(lambda: srv.conn_sockets() == 1, 8,
                          "the half-open socket to be reaped")
        listed = fetch(srv, srv.token("alice"))["messages"]
        eq([m["id"] for m in listed], [acc["id"]], "m1 stored offline, once")
        await bob.quiet(0.0, lambda e: e.get("type") == "delivered", "delivered for m1")

        alice = await connect(srv, "alice", name="alice#2")
        m = await alice.expect_type("message", id=acc["id"])
        eq(m.get("body"), "to a dead socket", "m1 body")
        await bob.quiet(0.0, lambda e: e.get("type") == "delivered", "delivered before the ack")
        # Ack at once: an un-acked push is retried every 0.3s by design.
        await alice.ack(m["id"])
        d = await bob.expect_type("delivered")
        eq([r["ref"] for r in receipt_refs(d)], [acc["id"]], "delivered after the real ack")
        await bob.ack(d["id"])
        await alice.quiet(0.8, lambda e: e.get("id") == acc["id"], "a second copy of m1")
        await bob.quiet(0.2, lambda e: e.get("type") == "delivered", "a second delivered")
        await alice.close()
    finally:
        child.kill()
    await bob.close()


async def test_b09_abrupt_reconnects():
    srv = server("--ack-timeout", "3000")
    await await_until(lambda: srv.conn_sockets() == 0, 5, "an idle server")
    base_fds = srv.fd_count()
    for i in range(10):
        c = await connect(srv, "alice", name="alice#%d" % i)
        c.abort()
    alice = await connect(srv, "alice", name="alice-live")
    st, acc = send_http(srv, srv.token("bob"), "alice", "m1", "once")
    m = await alice.expect_type("message", id=acc["id"])
    await alice.quiet(1.0, lambda e: e.get("id") == acc["id"], "a second copy of m1")
    await alice.ack(m["id"])
    await await_until(lambda: srv.conn_sockets() == 1, 5, "only the live socket left")
    await alice.close()
    await await_until(lambda: srv.fd_count() == base_fds, 5,
                      "fd count back to baseline %d" % base_fds)
    eq(fetch(srv, srv.token("alice"))["messages"], [], "nothing left for alice")


async def test_same_device_replaced():
    srv = server()
    first = await connect(srv, "alice", name="alice#1")
    second = await connect(srv, "alice", name="alice#2")
    eq(await first.wait_closed(5), 4002, "close code of a replaced connection")
    st, acc = send_http(srv, srv.token("bob"), "alice", "r1", 1)
    m = await second.expect_type("message", id=acc["id"])
    await second.ack(m["id"])
    await first.quiet(0.0, lambda e: e.get("id") == acc["id"], "a push to the replaced socket")
    await second.close()


if __name__ == "__main__":
    run([test_b02_half_open_recipient, test_b09_abrupt_reconnects, test_same_device_replaced])
