#!/usr/bin/python3
"""Both users online: message, ack, accepted, delivered; one receipt for a
burst of acks; auth variants; "from" is always the authenticated user."""

import time

from harness import (check, eq, is_server_id, connect, send_http, fetch, run, server,
                     handshake_status, http_request)


async def test_round_trip():
    srv = server("--ack-timeout", "400", "--retries", "3")
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    body = {"text": "hello", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    t0 = int(time.time() * 1000)
    await alice.message("bob", "c-1", body)
    acc = await alice.expect_type("accepted", ref="c-1")
    eq(acc.get("v"), 1, "accepted.v")
    check(is_server_id(acc.get("id")), "accepted.id is a decimal string: %r" % acc.get("id"))
    check(isinstance(acc.get("ts"), int) and abs(acc["ts"] - t0) < 60000,
          "accepted.ts is epoch milliseconds: %r" % acc.get("ts"))

    m = await bob.expect_type("message")
    eq(m.get("id"), acc["id"], "message.id is the accepted server id")
    eq(m.get("from"), "alice", "message.from")
    eq(m.get("to"), "bob", "message.to")
    eq(m.get("cid"), "c-1", "message.cid")
    eq(m.get("body"), body, "message.body")
    eq(m.get("v"), 1, "message.v")
    check(isinstance(m.get("ts"), int), "message.ts is an integer")

    await bob.ack(m["id"])
    d = await alice.expect_type("delivered")
    eq(d.get("from"), "bob", "delivered.from")
    eq(d.get("to"), "alice", "delivered.to")
    eq(d.get("body"), {"device": "", "refs": [{"ref": acc["id"], "cid": "c-1"}]},
       "delivered.body")
    check(is_server_id(d.get("id")), "delivered.id is a server id: %r" % d.get("id"))
    check(int(d["id"]) > int(acc["id"]), "delivered id %s after message id %s"
          % (d["id"], acc["id"]))

    # Acked delivered is not sent again, bob's acked message is not sent
    # again, and a delivered is never itself receipted (bob hears nothing).
    await alice.ack(d["id"])
    await alice.quiet(1.5, lambda e: e.get("type") == "delivered", "delivered re-sent after ack")
    await bob.quiet(0.1, None, "event for bob after his ack")
    eq(fetch(srv, srv.token("alice"))["messages"], [], "alice's listing after acking delivered")
    eq(fetch(srv, srv.token("bob"))["messages"], [], "bob's listing after acking")
    await alice.close()
    await bob.close()


async def test_unacked_delivered_is_retried():
    """The counterpart of the previous check: a delivered that the sender
    does not ack comes again with the same id."""
    srv = server("--ack-timeout", "300", "--retries", "3")
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    await alice.message("bob", "c-2", "x")
    acc = await alice.expect_type("accepted", ref="c-2")
    m = await bob.expect_type("message", id=acc["id"])
    await bob.ack(m["id"])
    d1 = await alice.expect_type("delivered")
    d2 = await alice.expect_type("delivered", timeout=3)
    eq(d2["id"], d1["id"], "retried delivered keeps its id")
    eq(d2.get("body"), d1.get("body"), "retried delivered body")
    await alice.ack(d1["id"])
    await alice.close()
    await bob.close()


async def test_ack_burst_gives_one_receipt():
    """Three messages acked in one envelope, out of order: alice hears one
    delivered listing the three, in the order bob acked them."""
    srv = server()
    alice = await connect(srv, "alice")
    sids = {}
    for cid in ("b-1", "b-2", "b-3"):
        await alice.message("bob", cid, cid)
        sids[cid] = (await alice.expect_type("accepted", ref=cid))["id"]
    # Stored while bob is away, and acked through storage: one receipt. (One
    # ack envelope naming both held and stored events may bring two.)
    bob = await connect(srv, "bob")
    for cid in sids:
        await bob.expect_type("message", id=sids[cid])
    order = ["b-3", "b-1", "b-2"]
    await bob.ack(*[sids[c] for c in order])
    d = await alice.expect_type("delivered")
    eq(d.get("body"), {"device": "", "refs": [{"ref": sids[c], "cid": c} for c in order]},
       "the receipt of the burst")
    await alice.ack(d["id"])
    await alice.quiet(0.3, lambda e: e.get("type") == "delivered", "a second receipt")
    await alice.close()
    await bob.close()


async def test_from_is_forced():
    srv = server()
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    await alice.message("bob", "c-3", "spoof ws", **{"from": "mallory"})
    acc = await alice.expect_type("accepted", ref="c-3")
    m = await bob.expect_type("message", id=acc["id"])
    eq(m.get("from"), "alice", "from of a WS message that claimed mallory")
    await bob.ack(m["id"])

    st, r = send_http(srv, srv.token("alice"), "bob", "c-4", "spoof http")
    m = await bob.expect_type("message", cid="c-4")
    eq(m.get("from"), "alice", "from of a POSTed message")
    # The same over HTTP with an explicit "from".
    st, r = http_request(srv, "POST", "/v1/send", srv.token("alice"),
                                 {"v": 1, "type": "message", "id": "c-5", "to": "bob",
                                  "from": "mallory", "body": 1})
    eq(st, 200, "POST with from=mallory status")
    m2 = await bob.expect_type("message", cid="c-5")
    eq(m2.get("from"), "alice", "from of a POSTed message that claimed mallory")
    await bob.ack(m["id"], m2["id"])
    await alice.close()
    await bob.close()


async def test_auth_variants():
    """Token in the Authorization header, in ?token= and as a bearer.
    subprotocol offered next to vartalap.v1; all reach the same user."""
    srv = server()
    bob = await connect(srv, "bob")
    for i, how in enumerate(("header", "query", "subprotocol")):
        a = await connect(srv, "alice", how=how, name="alice/" + how)
        if how == "subprotocol":
            eq(a.ws.subprotocol, "vartalap.v1", "negotiated subprotocol")
        cid = "auth-%d" % i
        await a.message("bob", cid, how)
        await a.expect_type("accepted", ref=cid)
        m = await bob.expect_type("message", cid=cid)
        eq(m.get("from"), "alice", "from with auth by " + how)
        await bob.ack(m["id"])
        await a.close()
    eq(await handshake_status(srv, None), 401, "handshake without a token")
    await bob.close()


async def test_sender_offline_then_delivered_on_connect():
    """alice sends over HTTP and is offline when bob acks: the delivered
    receipt waits for her and arrives when she connects."""
    srv = server()
    bob = await connect(srv, "bob")
    st, acc = send_http(srv, srv.token("alice"), "bob", "c-6", "later")
    m = await bob.expect_type("message", id=acc["id"])
    await bob.ack(m["id"])
    alice = await connect(srv, "alice")
    d = await alice.expect_type("delivered")
    eq(d.get("body"), {"device": "", "refs": [{"ref": acc["id"], "cid": "c-6"}]},
       "delivered body")
    await alice.ack(d["id"])
    await alice.close()
    await bob.close()


if __name__ == "__main__":
    run([test_round_trip, test_unacked_delivered_is_retried, test_ack_burst_gives_one_receipt,
         test_from_is_forced, test_auth_variants, test_sender_offline_then_delivered_on_connect])
