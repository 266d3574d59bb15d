#!/usr/bin/python3
"""Mode always over LMDB with --ack-wait (off by default): a message to one user
whose devices keep up is pushed when it is taken; its (sender, client id)
pair and its journal entries wait for the acks. A copy acked in time is
never journaled; one not acked in time is, before "accepted". A kill -9
before that commit loses nothing accepted, and an id pushed then is never
handed out again. The first message after a start is written before it is
pushed, so each test sends one first."""

import asyncio
import json
import time

from harness import (check, connect, delivered_for, eq, fetch, metric, receipt_refs, run,
                     server)


def barrier(srv):
    """A REST listing is answered after every write queued before it."""
    fetch(srv, srv.token("zz-barrier"))


async def warm(srv, alice, bob):
    """The first message after the start, acked, with its receipt acked."""
    await alice.message("bob", "warm", {"t": "warm"})
    acc = await alice.expect_type("accepted", ref="warm")
    await bob.expect_type("message", id=acc["id"])
    await bob.ack(acc["id"])
    rcpt = await alice.expect_type("delivered")
    await alice.ack(rcpt["id"])


async def pair(srv):
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    barrier(srv)
    await warm(srv, alice, bob)
    return alice, bob


def kill9_restart(srv, *clients):
    """kill -9 the server, drop @clients' connections, start it again."""
    srv.kill9()
    for c in clients:
        c.abort()
    srv.start()


def frame_index(client, pred):
    """Where the first frame matching @pred came among @client's frames."""
    for i, raw in enumerate(client.raw):
        if pred(json.loads(raw)):
            return i
    raise AssertionError("no such frame on " + client.name)


async def test_acked_in_time_never_journaled():
    """bob acks each push at once: alice hears "accepted" with the id bob
    was pushed, then the receipt; no journal entry is left, and after a
    kill -9 nothing comes again, and a re-send is a duplicate."""
    srv = server("--ack-timeout", "20000", "--ack-wait", "50")
    alice, bob = await pair(srv)
    ids = []
    for i in range(20):
        cid = "q-%d" % i
        await alice.message("bob", cid, {"i": i})
        got = await bob.expect(lambda e: e.get("type") == "message" and e.get("cid") == cid,
                               5, "push of " + cid)
        await bob.ack(got["id"])
        acc = await alice.expect_type("accepted", ref=cid)
        eq(acc["id"], got["id"], "accepted id of " + cid)
        ids.append(acc["id"])
    refs = []
    while len(refs) < len(ids):
        ev = await alice.expect_type("delivered")
        refs += [r["ref"] for r in receipt_refs(ev)]
        await alice.ack(ev["id"])
    eq(sorted(refs, key=int), ids, "receipts of the acked messages")
    for sid in ids:
        check(frame_index(alice, lambda e, s=sid: e.get("type") == "accepted" and
                          e.get("id") == s) <
              frame_index(alice, delivered_for(sid)), "accepted %s before its receipt" % sid)
    barrier(srv)
    eq(metric(srv, "vartalap_journal_open"), 0, "journal entries open")
    eq(metric(srv, "vartalap_ack_waiting"), 0, "messages waiting for acks")

    kill9_restart(srv, alice, bob)
    bob = await connect(srv, "bob", name="bob#2")
    await bob.quiet(0.5, lambda e: e.get("type") == "message", "message after the restart")
    alice = await connect(srv, "alice", name="alice#2")
    await alice.message("bob", "q-3", {"i": 3})
    acc = await alice.expect_type("accepted", ref="q-3")
    eq(acc["id"], ids[3], "a re-send answered with the first id")
    await bob.quiet(0.3, lambda e: e.get("type") == "message", "the re-send delivered")


async def test_slow_ack_journaled_then_replayed():
    """bob is pushed a message and does not ack: after the wait alice hears
    "accepted", the copy is journaled, and a kill -9 brings it back to bob
    with the same id."""
    srv = server("--ack-timeout", "20000", "--ack-wait", "200")
    alice, bob = await pair(srv)
    t0 = time.monotonic()
    await alice.message("bob", "s-1", {"t": "slow"})
    got = await bob.expect(lambda e: e.get("cid") == "s-1", 5, "push of s-1")
    acc = await alice.expect_type("accepted", ref="s-1")
    check(time.monotonic() - t0 >= 0.19, "accepted only after the wait")
    eq(acc["id"], got["id"], "accepted id")
    eq(metric(srv, "vartalap_journal_open"), 1, "bob's copy journaled")

    kill9_restart(srv, alice, bob)
    bob = await connect(srv, "bob", name="bob#2")
    again = await bob.expect_type("message")
    eq(again["id"], got["id"], "the journaled copy after the restart")


async def test_kill9_while_waiting_never_reuses_the_id():
    """bob is pushed a message that waits a minute for his ack; alice has no
    "accepted". kill -9: nothing is stored for bob, alice's re-send is
    delivered under a new, higher id, and so is carol's next message."""
    srv = server("--ack-timeout", "20000", "--ack-wait", "60000")
    alice, bob = await pair(srv)
    await alice.message("bob", "w-1", {"t": "waits"})
    first = await bob.expect(lambda e: e.get("cid") == "w-1", 5, "push of w-1")
    await alice.quiet(0.3, lambda e: e.get("ref") == "w-1", "answer to w-1")
    eq(metric(srv, "vartalap_ack_waiting"), 1, "the message waits for its ack")

    kill9_restart(srv, alice, bob)
    bob = await connect(srv, "bob", name="bob#2")
    await bob.quiet(0.3, lambda e: e.get("type") == "message", "message after the restart")
    alice = await connect(srv, "alice", name="alice#2")
    carol = await connect(srv, "carol")
    await alice.message("bob", "w-1", {"t": "waits"})
    acc = await alice.expect_type("accepted", ref="w-1")
    again = await bob.expect(lambda e: e.get("cid") == "w-1", 5, "the re-send")
    eq(again["id"], acc["id"], "the re-send's id")
    check(int(acc["id"]) > int(first["id"]), "the re-send's id is new and higher")
    await carol.message("bob", "c-1", {"t": "carol"})
    await bob.ack((await bob.expect(lambda e: e.get("cid") == "c-1", 5, "carol's push"))["id"])
    acc = await carol.expect_type("accepted", ref="c-1")
    check(int(acc["id"]) > int(first["id"]), "carol's id is higher than the one pushed")


async def test_sigterm_writes_what_waits():
    """A clean stop while messages wait: each is written once, for bob."""
    srv = server("--ack-timeout", "20000", "--ack-wait", "60000")
    alice, bob = await pair(srv)
    pushed = []
    for i in range(3):
        await alice.message("bob", "t-%d" % i, {"i": i})
        pushed.append((await bob.expect(lambda e, c="t-%d" % i: e.get("cid") == c,
                                         5, "push"))["id"])
    srv.restart()
    alice.abort()
    bob.abort()
    bob = await connect(srv, "bob", name="bob#2")
    got = [(await bob.expect_type("message"))["id"] for _ in pushed]
    eq(got, pushed, "the waiting messages after a clean stop")
    await bob.quiet(0.3, lambda e: e.get("type") == "message", "a second copy")


async def reply_after_ack(*args):
    """bob acks alice's message, which makes a receipt for alice, and then
    replies at once. alice's devices get each event in id order: the
    receipt, taken first, before bob's reply, also while the receipt's
    write has not committed when the reply is taken."""
    srv = server("--ack-timeout", "20000", *args)
    alice, bob = await pair(srv)
    out_of_order = []
    for i in range(40):
        cid = "o-%d" % i
        await alice.message("bob", cid, {"i": i})
        got = await bob.expect(lambda e, c=cid: e.get("type") == "message" and
                               e.get("cid") == c, 5, "push of " + cid)
        await bob.ack(got["id"])
        await asyncio.sleep((i % 5) * 0.0005)
        await bob.message("alice", "re-" + cid, {"i": i})
        evs = []
        while not any(e["type"] == "message" for e in evs) or \
                not any(e["type"] == "delivered" for e in evs):
            evs.append(await alice.expect(lambda e: e.get("type") in ("delivered", "message"),
                                          5, "receipt or reply for " + cid))
        ids = [int(e["id"]) for e in evs]
        if ids != sorted(ids):
            out_of_order.append([(e["type"], e["id"]) for e in evs])
        for e in evs:
            await alice.ack(e["id"])
        await bob.expect_type("accepted", ref="re-" + cid)
        await bob.ack((await bob.expect_type("delivered"))["id"])
    eq(out_of_order, [], "alice's events out of id order")


async def test_reply_after_ack_keeps_id_order():
    await reply_after_ack("--ack-wait", "50")


async def test_reply_after_ack_keeps_id_order_offline():
    """The same with --durability offline --push-before-commit, where the
    receipt is held unwritten and rides on the last batch."""
    await reply_after_ack("--durability", "offline", "--push-before-commit")


async def test_answers_keep_id_order():
    """alice sends m1 and m2 to bob without waiting; bob acks m2 only, and
    then alice sends m3 to carol, who is offline. alice hears "accepted" in
    the order of ids, as bob got them: m1 (still owed bob's ack) goes to
    storage with m2, ahead of it, and m3 behind both."""
    srv = server("--ack-timeout", "30000", "--ack-wait", "60000")
    alice, bob = await pair(srv)
    ids = {}
    for cid in ("m1", "m2"):
        await alice.message("bob", cid, {"t": cid})
        ids[cid] = (await bob.expect_type("message", cid=cid))["id"]
    await bob.ack(ids["m2"])
    await alice.message("carol", "m3", {"t": "m3"})
    got = [(await alice.expect_type("accepted", timeout=5))["ref"] for _ in range(3)]
    eq(got, ["m1", "m2", "m3"], "the order of alice's answers")

    # m1 was not acked: it comes back to bob after a crash.
    kill9_restart(srv, alice, bob)
    bob = await connect(srv, "bob", name="bob#2")
    eq((await bob.expect_type("message"))["id"], ids["m1"], "m1 after the restart")


if __name__ == "__main__":
    run([test_acked_in_time_never_journaled,
         test_slow_ack_journaled_then_replayed,
         test_kill9_while_waiting_never_reuses_the_id,
         test_sigterm_writes_what_waits,
         test_reply_after_ack_keeps_id_order,
         test_reply_after_ack_keeps_id_order_offline,
         test_answers_keep_id_order])
