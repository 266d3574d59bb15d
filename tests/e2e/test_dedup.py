#!/usr/bin/python3
"""A client id re-sent by the same sender is answered again with the same
server id and delivered once (field case B05)."""

import json
import socket

from harness import (check, eq, connect, send_http, fetch, run, server)


def message_events(evs, cid):
    return [e for e in evs if e.get("type") == "message" and e.get("cid") == cid]


async def test_resend_ws_and_http_pending():
    srv = server("--ack-timeout", "5000")
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    await alice.message("bob", "c-1", "once")
    a1 = await alice.expect_type("accepted", ref="c-1")
    await alice.message("bob", "c-1", "once")
    a2 = await alice.expect_type("accepted", ref="c-1")
    eq(a2["id"], a1["id"], "server id of a WS resend")
    st, a3 = send_http(srv, srv.token("alice"), "bob", "c-1", "once")
    eq(a3["id"], a1["id"], "server id of a POST resend")
    m = await bob.expect_type("message", cid="c-1")
    eq(m["id"], a1["id"], "delivered id")
    await bob.quiet(1.0, lambda e: e.get("cid") == "c-1", "a second copy of c-1")
    await bob.ack(m["id"])
    await alice.expect_type("delivered")
    await alice.quiet(0.3, lambda e: e.get("type") == "delivered", "a second delivered")
    await alice.close()
    await bob.close()


async def test_resend_after_ack():
    srv = server()
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    st, a1 = send_http(srv, srv.token("alice"), "bob", "c-2", "done")
    m = await bob.expect_type("message", cid="c-2")
    await bob.ack(m["id"])
    d = await alice.expect_type("delivered")
    await alice.ack(d["id"])
    st, a2 = send_http(srv, srv.token("alice"), "bob", "c-2", "done")
    eq(a2["id"], a1["id"], "server id of a POST resend after the ack")
    await alice.message("bob", "c-2", "done")
    a3 = await alice.expect_type("accepted", ref="c-2")
    eq(a3["id"], a1["id"], "server id of a WS resend after the ack")
    await bob.quiet(0.8, lambda e: e.get("type") == "message", "a copy of an acked message")
    await alice.quiet(0.0, lambda e: e.get("type") == "delivered", "a second delivered")
    await alice.close()
    await bob.close()


async def test_dedup_is_per_sender():
    srv = server()
    bob = await connect(srv, "bob")
    st, a = send_http(srv, srv.token("alice"), "bob", "same", "from alice")
    st, c = send_http(srv, srv.token("carol"), "bob", "same", "from carol")
    check(a["id"] != c["id"], "two senders' equal client ids got one server id %s" % a["id"])
    m1 = await bob.expect_type("message", id=a["id"])
    m2 = await bob.expect_type("message", id=c["id"])
    eq((m1["from"], m2["from"]), ("alice", "carol"), "senders")
    await bob.ack(m1["id"], m2["id"])
    await bob.close()


async def test_b05_close_before_response_then_resend():
    srv = server()
    tok = srv.token("alice")
    env = {"v": 1, "type": "message", "id": "c-b05", "to": "bob", "body": "hi"}
    body = json.dumps(env).encode()
    req = ("POST /v1/send HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
           % (tok, len(body))).encode() + body
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(req)
    s.close()  # never read the answer
    st, a1 = send_http(srv, tok, "bob", "c-b05", "hi")
    st, a2 = send_http(srv, tok, "bob", "c-b05", "hi")
    eq(a2["id"], a1["id"], "server id of the second resend")
    check(srv.alive(), "server alive after a client vanished mid-request")

    # Over WS: send, drop the socket unread, reconnect, send the same.
    alice = await connect(srv, "alice")
    await alice.message("bob", "c-b05w", "hi ws")
    alice.abort()
    alice = await connect(srv, "alice", name="alice#2")
    await alice.message("bob", "c-b05w", "hi ws")
    w1 = await alice.expect_type("accepted", ref="c-b05w")
    await alice.message("bob", "c-b05w", "hi ws")
    w2 = await alice.expect_type("accepted", ref="c-b05w")
    eq(w2["id"], w1["id"], "server id of a WS resend after a dropped socket")

    bob = await connect(srv, "bob")
    m = await bob.expect_type("message", cid="c-b05")
    eq(m["id"], a1["id"], "delivered id of c-b05")
    mw = await bob.expect_type("message", cid="c-b05w")
    eq(mw["id"], w1["id"], "delivered id of c-b05w")
    await bob.quiet(0.8, lambda e: e.get("cid") in ("c-b05", "c-b05w"), "a second copy")
    listed = fetch(srv, srv.token("bob"))["messages"]
    eq(sorted(e["cid"] for e in listed), ["c-b05", "c-b05w"], "bob's listing holds one of each")
    await bob.ack(m["id"], mw["id"])
    await bob.close()
    await alice.close()


if __name__ == "__main__":
    run([test_resend_ws_and_http_pending, test_resend_after_ack, test_dedup_is_per_sender,
         test_b05_close_before_response_then_resend])
