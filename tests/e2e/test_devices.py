#!/usr/bin/python3
"""Several devices per user: one inbox each, copies to the sender's other
devices, delivered and read receipts per device, typing to connected
devices only, device expiry."""

import asyncio
import time

from harness import (all_refs, check, eq, is_server_id, connect, send_http, fetch, fetch_all,
                     ack_http, http_request, run, server)


def is_msg(cid=None, sid=None):
    return lambda e: (e.get("type") == "message" and (cid is None or e.get("cid") == cid)
                      and (sid is None or e.get("id") == sid))


def barrier(srv):
    """A REST listing is answered after every write queued before it, so
    device registrations of earlier connects are done when it returns."""
    fetch(srv, srv.token("zz-barrier"))


async def devices(srv):
    """bob on "phone" (token claim) and "laptop" (?device=), alice on "a1"
    (token claim) and "a2" (?device=)."""
    c = {
        "phone": await connect(srv, "bob", token=srv.token("bob", "phone"), name="bob/phone"),
        "laptop": await connect(srv, "bob", device="laptop", name="bob/laptop"),
        "a1": await connect(srv, "alice", token=srv.token("alice", "a1"), name="alice/a1"),
        "a2": await connect(srv, "alice", device="a2", name="alice/a2"),
    }
    barrier(srv)
    return c


async def close_all(cs):
    for c in cs.values():
        await c.close()


async def test_each_device_gets_each_message_once():
    srv = server("--ack-timeout", "5000")
    c = await devices(srv)

    # Over WebSocket from a1, then over REST as a1 (?device=a1).
    await c["a1"].message("bob", "w-1", {"t": "ws"})
    acc1 = await c["a1"].expect_type("accepted", ref="w-1")
    st, acc2 = send_http(srv, srv.token("alice"), "bob", "h-1", {"t": "rest"}, device="a1")
    for acc, cid in ((acc1, "w-1"), (acc2, "h-1")):
        for name in ("phone", "laptop", "a2"):
            m = await c[name].expect(is_msg(cid), 5, "%s on %s" % (cid, name))
            eq(m.get("id"), acc["id"], "%s: id on %s" % (cid, name))
            eq(m.get("from"), "alice", "%s: from on %s" % (cid, name))
            eq(m.get("to"), "bob", "%s: to on %s" % (cid, name))
    # The sending device gets no copy of its own message.
    await c["a1"].quiet(0.5, is_msg(), "a copy of a1's own message on a1")

    # Each device acks on its own; the sender's devices hear per device.
    for name in ("phone", "laptop"):
        await c[name].ack(acc1["id"], acc2["id"])
    await c["a2"].ack(acc1["id"], acc2["id"])
    for name in ("a1", "a2"):
        got = set()
        receipts = await c[name].expect_refs(4)
        for r in all_refs(receipts):
            check(r["from"] == "bob", "delivered.from on %s: %r" % (name, r))
            got.add((r["ref"], r["device"]))
            eq(r["cid"], {acc1["id"]: "w-1", acc2["id"]: "h-1"}.get(r["ref"]),
               "delivered.cid on " + name)
        await c[name].ack(*[d["id"] for d in receipts])
        eq(got, {(acc1["id"], "phone"), (acc1["id"], "laptop"),
                 (acc2["id"], "phone"), (acc2["id"], "laptop")}, "delivered set on " + name)
        # a2 acked its own copies: that is no news for anyone.
        await c[name].quiet(0.5, lambda e: e.get("type") == "delivered",
                            "a delivered beyond one per recipient device")
    for name in ("phone", "laptop", "a2"):
        await c[name].quiet(0.2, is_msg(), "a second copy on " + name)
    for dev in ("phone", "laptop"):
        eq(fetch(srv, srv.token("bob"), device=dev)["messages"], [], "bob/%s listing" % dev)
    await close_all(c)


async def test_offline_device_gets_its_copies_later():
    srv = server("--ack-timeout", "5000")
    c = await devices(srv)
    await c["laptop"].close()
    barrier(srv)

    accs = []
    for i in range(3):
        st, acc = send_http(srv, srv.token("alice", "a1"), "bob", "o-%d" % i, i)
        accs.append(acc["id"])
    for sid in accs:
        m = await c["phone"].expect(is_msg(sid=sid), 5, "message %s on phone" % sid)
        await c["phone"].ack(m["id"])
        m = await c["a2"].expect(is_msg(sid=sid), 5, "message %s on a2" % sid)
        await c["a2"].ack(m["id"])
    # phone's acks do not take laptop's copies away.
    listed = fetch_all(srv, srv.token("bob"), device="laptop")
    eq([e["id"] for e in listed if e["type"] == "message"], accs, "laptop's listing over REST")
    eq(fetch(srv, srv.token("bob", "phone"))["messages"], [], "phone's listing after its acks")

    laptop = await connect(srv, "bob", device="laptop", name="bob/laptop#2")
    got = [await laptop.expect(is_msg(), 5, "stored copy %d on laptop" % i) for i in range(3)]
    eq([m["id"] for m in got], accs, "laptop's copies, in order")
    eq([m["body"] for m in got], [0, 1, 2], "laptop's bodies")
    await laptop.ack(*accs)
    # Two devices acked each message: alice hears twice per message.
    receipts = await c["a1"].expect_refs(6)
    await c["a1"].ack(*[d["id"] for d in receipts])
    refs = [(r["ref"], r["device"]) for r in all_refs(receipts)]
    eq(sorted(refs), sorted([(s, "phone") for s in accs] + [(s, "laptop") for s in accs]),
       "delivered per device")
    # laptop acked all three in one envelope: one receipt carries them.
    eq([[r["ref"] for r in all_refs([d])] for d in receipts if d["body"]["device"] == "laptop"],
       [accs], "laptop's receipt")
    await laptop.quiet(0.3, is_msg(), "a copy after laptop's ack")
    eq(fetch(srv, srv.token("bob"), device="laptop")["messages"], [], "laptop's listing after ack")
    await laptop.close()
    await close_all(c)


async def test_rest_ack_per_device():
    """GET and POST /v1/ack with ?device= act on that device's inbox only."""
    srv = server("--ack-timeout", "5000")
    bob_x = await connect(srv, "bob", device="x", name="bob/x")
    bob_y = await connect(srv, "bob", device="y", name="bob/y")
    barrier(srv)
    await bob_x.close()
    await bob_y.close()
    barrier(srv)
    st, acc = send_http(srv, srv.token("alice"), "bob", "r-1", "both")
    r = ack_http(srv, srv.token("bob"), [acc["id"]], device="x")
    eq(r.get("acked"), [acc["id"]], "ack on x")
    eq(fetch(srv, srv.token("bob"), device="x")["messages"], [], "x after its ack")
    eq([e["id"] for e in fetch(srv, srv.token("bob"), device="y")["messages"]], [acc["id"]],
       "y keeps its copy")
    # The default device "" is a device of its own, not registered here.
    st, r = http_request(srv, "GET", "/v1/messages?device=bad%20id", srv.token("bob"))
    eq(st, 400, "an invalid ?device= status")
    # A token's claim wins over ?device=.
    r = fetch(srv, srv.token("bob", "y"), device="x")
    eq([e["id"] for e in r["messages"]], [acc["id"]], "token claim y over ?device=x")


async def test_first_device_claims_held_messages():
    srv = server("--ack-timeout", "5000")
    st, a1 = send_http(srv, srv.token("alice"), "erin", "n-1", "before any device")
    st, a2 = send_http(srv, srv.token("alice"), "erin", "n-2", "still none")
    first = await connect(srv, "erin", device="first", name="erin/first")
    got = [await first.expect(is_msg(), 5, "held message %d" % i) for i in range(2)]
    eq([m["id"] for m in got], [a1["id"], a2["id"]], "first device claims the held messages")
    barrier(srv)
    second = await connect(srv, "erin", device="second", name="erin/second")
    await second.quiet(0.6, is_msg(), "a held message on the second device")
    eq(fetch(srv, srv.token("erin"), device="second")["messages"], [], "second's listing")
    await first.ack(a1["id"], a2["id"])
    await first.close()
    await second.close()


async def test_newer_connection_of_a_device_replaces_older():
    srv = server()
    old = await connect(srv, "bob", device="phone", name="bob/phone#1")
    other = await connect(srv, "bob", device="laptop", name="bob/laptop")
    new = await connect(srv, "bob", token=srv.token("bob", "phone"), name="bob/phone#2")
    eq(await old.wait_closed(5), 4002, "close code of the replaced phone connection")
    st, acc = send_http(srv, srv.token("alice"), "bob", "p-1", 1)
    m = await new.expect(is_msg(sid=acc["id"]), 5, "message on the new phone connection")
    m2 = await other.expect(is_msg(sid=acc["id"]), 5, "message on laptop (not replaced)")
    await new.ack(m["id"])
    await other.ack(m2["id"])
    await new.close()
    await other.close()


async def test_read_receipt_reaches_every_device():
    srv = server("--ack-timeout", "5000")
    c = await devices(srv)
    await c["a1"].message("bob", "rd-1", "read me")
    acc = await c["a1"].expect_type("accepted", ref="rd-1")
    for name in ("phone", "laptop", "a2"):
        await c[name].ack((await c[name].expect(is_msg("rd-1"), 5, "rd-1 on " + name))["id"])
    for name in ("a1", "a2"):
        await c[name].ack(*[d["id"] for d in await c[name].expect_refs(2)])

    await c["phone"].send({"v": 1, "type": "read", "id": "r-1", "to": "alice",
                           "ids": [acc["id"]]})
    racc = await c["phone"].expect_type("accepted", ref="r-1")
    check(is_server_id(racc.get("id")), "accepted of a read: %r" % racc)
    for name in ("a1", "a2", "laptop"):
        r = await c[name].expect_type("read", timeout=5)
        eq(r.get("from"), "bob", "read.from on " + name)
        eq(r.get("to"), "alice", "read.to on " + name)
        eq(r.get("body"), {"ids": [acc["id"]]}, "read.body on " + name)
        eq(r.get("id"), racc["id"], "read.id on " + name)
        await c[name].ack(r["id"])
    await c["phone"].quiet(0.3, lambda e: e.get("type") == "read", "bob's own read on phone")
    # A receipt is never receipted.
    for name in ("phone", "laptop"):
        await c[name].quiet(0.8, lambda e: e.get("type") == "delivered", "a delivered for a read")
    for name in ("a1", "a2", "laptop"):
        await c[name].quiet(0.1, lambda e: e.get("type") == "read", "a second read")
    await close_all(c)


async def test_unacked_read_is_stored_and_retried():
    srv = server("--ack-timeout", "300", "--retries", "1")
    alice = await connect(srv, "alice", device="a1")
    barrier(srv)
    await alice.close()
    barrier(srv)
    st, r = http_request(srv, "POST", "/v1/send?device=d", srv.token("bob"),
                         {"v": 1, "type": "read", "id": "r-9", "to": "alice", "ids": ["1", "2"]})
    eq(st, 200, "POST read status")
    eq(r.get("type"), "accepted", "POST read answer")
    listed = fetch(srv, srv.token("alice"), device="a1")["messages"]
    eq([(e["type"], e["id"]) for e in listed], [("read", r["id"])], "stored read for a1")
    alice = await connect(srv, "alice", device="a1", name="alice/a1#2")
    r1 = await alice.expect_type("read")
    r2 = await alice.expect_type("read", timeout=3)
    eq(r2["id"], r1["id"], "a retried read keeps its id")
    await alice.ack(r1["id"])
    await alice.quiet(0.8, lambda e: e.get("type") == "read", "a read after its ack")
    await alice.close()


async def test_typing_to_connected_devices_only():
    srv = server("--ack-timeout", "5000", "--typing-rate", "5")
    c = await devices(srv)
    await c["laptop"].close()
    barrier(srv)
    await c["a1"].send({"v": 1, "type": "typing", "to": "bob"})
    t = await c["phone"].expect_type("typing", timeout=5)
    eq({k: v for k, v in t.items() if not k.startswith("_")},
       {"v": 1, "type": "typing", "from": "alice", "to": "bob"}, "typing frame")
    # No accepted, no copy to the typist's other devices, nothing stored.
    await c["a1"].quiet(0.4, lambda e: e.get("type") in ("accepted", "error"),
                        "an answer to typing")
    await c["a2"].quiet(0.1, lambda e: e.get("type") == "typing", "typing on a2")
    laptop = await connect(srv, "bob", device="laptop", name="bob/laptop#2")
    await laptop.quiet(0.5, lambda e: e.get("type") == "typing", "stored typing on laptop")
    eq(fetch(srv, srv.token("bob"), device="laptop")["messages"], [], "laptop's listing")
    # Not retried: phone never acked it.
    await c["phone"].quiet(0.3, lambda e: e.get("type") == "typing", "a repeated typing")
    # Over REST it is not a thing.
    st, r = http_request(srv, "POST", "/v1/send", srv.token("alice"),
                         {"v": 1, "type": "typing", "to": "bob"})
    eq((st, r.get("code")), (400, "unknown_type"), "typing over REST")
    await laptop.close()
    await close_all(c)


async def test_typing_burst_is_rate_limited():
    srv = server("--typing-rate", "5")
    bob = await connect(srv, "bob")
    alice = await connect(srv, "alice")
    n = 12
    for i in range(n):
        await alice.send({"v": 1, "type": "typing", "to": "bob", "id": "t-%d" % i})
    errors = []
    deadline = time.monotonic() + 5
    while len(errors) < n - 7 and time.monotonic() < deadline:
        errors.append(await alice.expect_type("error", timeout=5))
    for e in errors:
        eq(e.get("code"), "rate_limited", "error code for a typing burst")
    more = await alice.drain(0.5)
    errors += [e for e in more if e.get("type") == "error"]
    relayed = [e for e in await bob.drain(0.3) if e.get("type") == "typing"]
    check(5 <= len(relayed) <= 7, "burst of %d: %d relayed (burst 5)" % (n, len(relayed)))
    eq(len(relayed) + len(errors), n, "every typing either relayed or refused")
    # Tokens come back at 5 a second.
    await asyncio.sleep(0.5)
    await alice.send({"v": 1, "type": "typing", "to": "bob"})
    await bob.expect_type("typing", timeout=3)
    await alice.close()
    await bob.close()


async def test_unused_device_is_forgotten():
    srv = server("--device-ttl", "2")
    old = await connect(srv, "bob", device="old", name="bob/old")
    keep = await connect(srv, "bob", device="keep", name="bob/keep")
    barrier(srv)
    await old.close()
    await keep.close()
    barrier(srv)
    st, acc = send_http(srv, srv.token("alice"), "bob", "f-1", "for old and keep")
    # The rule is about elapsed time: let both go unseen past the TTL,
    # then show "keep" again (it gets f-1 and leaves it un-acked).
    await asyncio.sleep(2.6)
    keep = await connect(srv, "bob", device="keep", name="bob/keep#2")
    await keep.expect(is_msg(sid=acc["id"]), 5, "f-1 on keep")
    await keep.close()
    barrier(srv)
    # Expiry sweeps run at start: restart to get one now.
    srv.restart()
    eq([e["id"] for e in fetch(srv, srv.token("bob"), device="keep")["messages"]], [acc["id"]],
       "a device seen recently keeps its copy")
    eq(fetch(srv, srv.token("bob"), device="old")["messages"], [],
       "a device unseen for longer than --device-ttl lost its copy")


if __name__ == "__main__":
    run([test_each_device_gets_each_message_once, test_offline_device_gets_its_copies_later,
         test_rest_ack_per_device, test_first_device_claims_held_messages,
         test_newer_connection_of_a_device_replaces_older,
         test_read_receipt_reaches_every_device, test_unacked_read_is_stored_and_retried,
         test_typing_to_connected_devices_only, test_typing_burst_is_rate_limited,
         test_unused_device_is_forgotten])
