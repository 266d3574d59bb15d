#!/usr/bin/python3
"""Mode offline (--durability offline): group posts and receipts held in
memory for devices that are connected and keeping up, stored for the
others; written when a device drops or the server stops (SIGTERM).

Each test checks, through GET /v1/messages (which lists only what is
stored), that what should be held was not written."""

import signal

from harness import (all_refs, await_until, check, eq, connect, fetch, metric,
                     run, server)


def env(typ, cid, to, body=None):
    e = {"v": 1, "type": typ, "id": cid, "to": to}
    if body is not None:
        e["body"] = body
    return e


def listed(srv, user, device=None):
    """The ids stored for @user's device."""
    return [m["id"] for m in fetch(srv, srv.token(user), device=device)["messages"]]


def connections(srv):
    """Connections the server holds open now (GET /metrics)."""
    return metric(srv, "vartalap_connections")


def held_bytes(srv):
    """The server's vartalap_held_bytes gauge (GET /metrics)."""
    return metric(srv, "vartalap_held_bytes")


def is_msg(sid):
    return lambda e: e.get("type") == "message" and e.get("id") == sid


async def ws_ok(c, e):
    await c.send(e)
    ev = await c.expect(lambda x: x.get("ref") == e["id"], 5, "answer to " + e["id"])
    check(ev.get("type") == "accepted", "%s %s: %r" % (e["type"], e["id"], ev))
    return ev


async def team(srv, alice, members, online):
    """alice makes g:team with @members; the @online clients take the news."""
    await ws_ok(alice, env("group_create", "g-1", "g:team", {"name": "T", "members": members}))
    for c in online:
        ev = await c.expect_type("group")
        await c.ack(ev["id"])


async def online_team(srv):
    """alice, bob and carol connected, in g:team together."""
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    carol = await connect(srv, "carol")
    await team(srv, alice, ["bob", "carol"], [bob, carol])
    return alice, bob, carol


async def three_posts(alice):
    """alice posts three messages to g:team; their ids."""
    return [(await ws_ok(alice, env("message", "p-%d" % i, "g:team", i)))["id"]
            for i in range(3)]


def offline_server(*args):
    return server("--durability", "offline", "--ack-timeout", "10000", *args)


async def test_group_post_held_for_online_stored_for_offline():
    srv = offline_server()
    dave = await connect(srv, "dave")      # registers dave's device, then goes
    await dave.close()
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    carol = await connect(srv, "carol")
    await team(srv, alice, ["bob", "carol", "dave"], [bob, carol])

    acc = await ws_ok(alice, env("message", "p-1", "g:team", "hello"))
    for c in (bob, carol):
        m = await c.expect(is_msg(acc["id"]), 5, "the post on " + c.name)
        eq((m["from"], m["to"], m["body"]), ("alice", "g:team", "hello"), "the post")
    for user in ("bob", "carol"):
        check(acc["id"] not in listed(srv, user), "the post is stored for " + user)
    check(acc["id"] in listed(srv, "dave"), "the post is stored for dave, who is away")

    dave = await connect(srv, "dave", name="dave#2")
    await dave.expect(is_msg(acc["id"]), 5, "the post on dave's return")
    for c in (bob, carol, dave):
        await c.ack(acc["id"])
    got = all_refs(await alice.expect_refs(3))
    eq(sorted((r["ref"], r["from"], r["device"]) for r in got),
       [(acc["id"], u, "") for u in ("bob", "carol", "dave")], "one ack of each member")
    # dave's copy was stored: his own receipt; the held ones come from the group.
    eq(sorted((r["from"], r["group"]) for r in got),
       [("bob", "g:team"), ("carol", "g:team"), ("dave", None)], "who reported each ack")
    for c in (alice, bob, carol, dave):
        await c.close()


async def test_members_acks_reach_the_sender_in_receipts_from_the_group():
    """40 members each ack three posts in one envelope: alice hears of all
    120 acks, each once, in receipts from g:team that list the devices, at
    most one per member's envelope."""
    srv = offline_server()
    alice = await connect(srv, "alice")
    members = [await connect(srv, "m%02d" % i) for i in range(40)]
    await team(srv, alice, [m.name for m in members], members)
    ids = await three_posts(alice)
    for m in members:
        for sid in ids:
            await m.expect(is_msg(sid), 5, "post %s on %s" % (sid, m.name))
        await m.ack(*ids)

    # Acked as they come, as a client does: alice's window is 32 events.
    evs = []
    while len(all_refs(evs)) < 120:
        evs.append(await alice.expect_type("delivered", 10))
        await alice.ack(evs[-1]["id"])
    got = all_refs(evs)
    eq(sorted((r["ref"], r["from"], r["device"]) for r in got),
       sorted((sid, m.name, "") for sid in ids for m in members), "every ack once")
    check(all(r["group"] == "g:team" for r in got), "receipts from the group: %r" % got[:3])
    check(len(evs) <= len(members), "%d receipts for %d ack envelopes" % (len(evs), len(members)))
    check(not listed(srv, "alice"), "alice's receipts are held while she keeps up")
    await alice.quiet(0.5, lambda e: e.get("type") == "delivered", "a receipt again")
    for c in [alice] + members:
        await c.close()


async def test_member_drop_writes_held_posts():
    srv = offline_server()
    alice, bob, carol = await online_team(srv)
    ids = await three_posts(alice)
    for sid in ids:
        await bob.expect(is_msg(sid), 5, "post %s on bob" % sid)
    await bob.ack(ids[0])
    check(not set(ids) & set(listed(srv, "bob")), "posts stored for bob while he is connected")

    bob.abort()
    await await_until(lambda: [i for i in listed(srv, "bob") if i in ids] == ids[1:], 5,
                      "bob's two un-acked posts written when he dropped")
    check(not set(ids) & set(listed(srv, "carol")), "posts stored for carol (still held)")
    bob = await connect(srv, "bob", name="bob#2")
    again = [await bob.expect_type("message") for _ in range(2)]
    eq([m["id"] for m in again], ids[1:], "bob's posts after he reconnects, in order")
    await bob.quiet(0.3, lambda e: e.get("type") == "message", "the post bob acked")
    for c in (alice, bob, carol):
        await c.close()


async def test_sigterm_writes_held_posts_and_receipts():
    srv = offline_server()
    alice, bob, carol = await online_team(srv)
    ids = await three_posts(alice)
    for sid in ids:
        await bob.expect(is_msg(sid), 5, "post %s on bob" % sid)
        await carol.expect(is_msg(sid), 5, "post %s on carol" % sid)
    await carol.ack(ids[0])
    receipt = await alice.expect_type("delivered")
    check(not set(ids) & set(listed(srv, "bob")), "posts stored for bob before the stop")
    check(receipt["id"] not in listed(srv, "alice"), "alice's receipt stored before the stop")

    srv.proc.send_signal(signal.SIGTERM)
    for c in (alice, bob, carol):
        eq(await c.wait_closed(10), 1001, "close code on SIGTERM (%s)" % c.name)
    eq(srv.stop(), 0, "exit status after SIGTERM")
    srv.start()

    alice = await connect(srv, "alice", name="alice#2")
    bob = await connect(srv, "bob", name="bob#2")
    carol = await connect(srv, "carol", name="carol#2")
    again = await alice.expect_type("delivered")
    eq((again["id"], again["body"]), (receipt["id"], receipt["body"]),
       "alice's held receipt after the restart")
    got = [await bob.expect_type("message") for _ in range(3)]
    eq([m["id"] for m in got], ids, "bob's held posts after the restart")
    got = [await carol.expect_type("message") for _ in range(2)]
    eq([m["id"] for m in got], ids[1:], "carol's un-acked posts after the restart")
    await carol.quiet(0.3, lambda e: e.get("type") == "message", "the post carol acked")
    for c in (alice, bob, carol):
        await c.close()


async def test_receipts_held_for_online_sender_stored_for_offline():
    srv = offline_server()
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    sent = [await ws_ok(alice, env("message", "m-%d" % i, "bob", i)) for i in range(2)]
    ids = [a["id"] for a in sent]
    for sid in ids:
        await bob.expect(is_msg(sid), 5, "message %s on bob" % sid)

    # alice keeps up: the delivered and the read receipt are not written.
    await bob.ack(ids[0])
    d = await alice.expect_type("delivered")
    eq(d["body"]["refs"], [{"ref": ids[0], "cid": "m-0"}], "delivered refs")
    rd = await ws_ok(bob, {"v": 1, "type": "read", "id": "r-0", "to": "alice",
                           "ids": [ids[0]]})
    await alice.expect(lambda e: e.get("type") == "read" and e["id"] == rd["id"], 5,
                       "the read receipt")
    stored = listed(srv, "alice")
    check(d["id"] not in stored and rd["id"] not in stored,
          "receipts stored for alice while she keeps up: %r" % stored)
    await alice.ack(d["id"], rd["id"])

    # alice is away: the next receipt is stored, and comes when she is back.
    await alice.close()
    await await_until(lambda: connections(srv) == 1, 5, "the server to let alice go")
    await bob.ack(ids[1])
    await await_until(lambda: listed(srv, "alice"), 5, "alice's receipt stored")
    alice = await connect(srv, "alice", name="alice#2")
    d = await alice.expect_type("delivered")
    eq(d["body"]["refs"], [{"ref": ids[1], "cid": "m-1"}], "delivered refs after return")
    await alice.ack(d["id"])
    for c in (alice, bob):
        await c.close()


async def test_group_change_racing_a_post():
    srv = offline_server()
    alice, bob, carol = await online_team(srv)
    dave = await connect(srv, "dave")

    # Sent back to back: the change may be taken before the post commits.
    await alice.send(env("message", "p-1", "g:team", "before"))
    await alice.send(env("group_update", "u-1", "g:team", {"remove": ["carol"],
                                                           "add": ["dave"]}))
    acc = await alice.expect(lambda e: e.get("ref") == "p-1", 5, "answer to p-1")
    up = await alice.expect(lambda e: e.get("ref") == "u-1", 5, "answer to u-1")
    eq((acc["type"], up["type"]), ("accepted", "accepted"), "both taken")
    check(int(acc["id"]) < int(up["id"]), "the post's id is below the change's")

    for c in (bob, carol):
        await c.expect(is_msg(acc["id"]), 5, "the post on " + c.name)
    for c in (carol, dave):
        await c.expect(lambda e: e.get("type") == "group" and e["id"] == up["id"], 5,
                       "the change on " + c.name)
    await dave.quiet(0.3, lambda e: e.get("type") == "message", "the post on dave, added after")
    check(acc["id"] not in listed(srv, "carol"), "the post stored for carol (held)")

    acc2 = await ws_ok(alice, env("message", "p-2", "g:team", "after"))
    await dave.expect(is_msg(acc2["id"]), 5, "the second post on dave")
    await carol.quiet(0.3, lambda e: e.get("type") == "message", "the second post on carol")
    for c in (alice, bob, carol, dave):
        await c.close()


async def test_resends_reach_the_recipient_once_in_order():
    """With --push-before-commit held messages go out before their (from,
    cid) pair commits: re-sends, back to back or after "accepted" on a new
    connection, must still reach the recipient once each, in order."""
    srv = offline_server("--push-before-commit")
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")

    for i in range(20):
        e = env("message", "m-%d" % i, "bob", i)
        await alice.send(e)
        if i % 3 == 0:
            await alice.send(e)              # a re-send right behind it
    answers = {}
    while len(answers) < 20:
        ev = await alice.expect(lambda x: x.get("type") in ("accepted", "error"), 5, "answers")
        eq(ev["type"], "accepted", "answer to %s" % ev.get("ref"))
        prev = answers.setdefault(ev["ref"], ev["id"])
        eq(prev, ev["id"], "one id for %s" % ev["ref"])
    await alice.close()

    alice = await connect(srv, "alice", name="alice#2")
    for i in range(0, 20, 4):                # what a client re-sends on reconnect
        ev = await ws_ok(alice, env("message", "m-%d" % i, "bob", i))
        eq(ev["id"], answers["m-%d" % i], "the re-send's id")

    got = []
    while len(got) < 20:
        m = await bob.expect_type("message")
        got.append(m["body"])
        await bob.ack(m["id"])
    eq(got, list(range(20)), "bob's messages")
    await bob.quiet(0.3, lambda e: e.get("type") == "message", "a message delivered twice")
    for c in (alice, bob):
        await c.close()


async def registered_pair(srv):
    """alice and bob connected, bob's device registered: he has taken a
    first message (one sent while his device registers is written)."""
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    hello = await ws_ok(alice, env("message", "hello", "bob", "hi"))
    await bob.expect(is_msg(hello["id"]), 5, "hello on bob")
    await bob.ack(hello["id"])
    r = await alice.expect(lambda e: e.get("type") == "delivered", 5, "hello's receipt")
    await alice.ack(r["id"])
    return alice, bob


async def test_hold_queue_deeper_than_the_window_then_written():
    """--window 4 --hold-queue 10: bob, not acking, has 10 of alice's 30
    messages in memory (4 pushed); the other 20 are written for him. All 30
    reach him in order as he acks, and the held memory goes back to 0."""
    srv = offline_server("--window", "4", "--hold-queue", "10", "--rate", "0")
    alice, bob = await registered_pair(srv)
    ids = [(await ws_ok(alice, env("message", "m-%d" % i, "bob", i)))["id"] for i in range(30)]
    await await_until(lambda: len(listed(srv, "bob")) == 20, 5, "20 written for bob")
    eq(listed(srv, "bob"), ids[10:], "the messages written for bob")
    check(held_bytes(srv) > 0, "held memory counted")

    got = []
    while len(got) < 30:
        m = await bob.expect_type("message")
        got.append(m["id"])
        await bob.ack(m["id"])
    eq(got, ids, "bob's messages, in order")
    while True:
        r = await alice.expect(lambda e: e.get("type") == "delivered", 2, "receipts")
        await alice.ack(r["id"])
        if not held_bytes(srv):
            break
    await await_until(lambda: listed(srv, "bob") == [], 5, "bob's inbox emptied by his acks")
    for c in (alice, bob):
        await c.close()


async def test_hold_memory_bounds_what_is_held():
    """--hold-memory 1: with 1 MiB for every held message, alice's 8 KB
    messages to bob (not acking) are held up to 1 MiB, then written."""
    srv = offline_server("--hold-memory", "1", "--rate", "0")
    alice, bob = await registered_pair(srv)
    body = "x" * 8000
    for i in range(200):
        await ws_ok(alice, env("message", "big-%d" % i, "bob", body))
    held = held_bytes(srv)
    check((1 << 20) - 20000 < held <= 1 << 20, "held memory %d at the bound" % held)
    stored = len(listed(srv, "bob"))
    check(50 < stored < 200, "%d of 200 written past the bound" % stored)
    for c in (alice, bob):
        await c.close()


if __name__ == "__main__":
    run([test_group_post_held_for_online_stored_for_offline,
         test_members_acks_reach_the_sender_in_receipts_from_the_group,
         test_member_drop_writes_held_posts,
         test_sigterm_writes_held_posts_and_receipts,
         test_receipts_held_for_online_sender_stored_for_offline,
         test_group_change_racing_a_post,
         test_resends_reach_the_recipient_once_in_order,
         test_hold_queue_deeper_than_the_window_then_written,
         test_hold_memory_bounds_what_is_held])
