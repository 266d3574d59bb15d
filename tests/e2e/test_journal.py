#!/usr/bin/python3
"""Mode always over LMDB (the default): a message sent over a WebSocket to a
recipient whose registered devices all keep up (one to one, or to a group,
for each member who keeps up) is held in memory, and its commit writes a
journal entry for each device's copy instead of deliveries. An entry is
released once its copy was acked or written; what a crash leaves is turned
into deliveries, to those devices only, at the next start.

GET /v1/messages lists only what is stored, so it tells a held message
(not listed) from a written one; the gauge vartalap_journal_open counts the
held copies whose entry is not released. Each test checks that what it
expects to be held is held, so none passes by storing everything."""

import asyncio
import os
import random
import re
import signal
import time

import websockets.exceptions

from harness import (all_refs, await_until, check, delivered_for, eq, connect, fetch,
                     fetch_all, ack_http, metric, receipt_refs, run, server)

SEED = int(os.environ.get("VT_JOURNAL_SEED", str(int(time.time()) % 100000)))

# What the server logs when it turns journal entries into deliveries at start.
REPLAY_LOG = "from the journal"


def journal_open(srv):
    """The server's vartalap_journal_open gauge (GET /metrics)."""
    return metric(srv, "vartalap_journal_open")


def listed(srv, user, device=None):
    """The ids stored for @user's device, every page."""
    return [m["id"] for m in fetch_all(srv, srv.token(user), device=device)]


def barrier(srv):
    """A REST listing is answered after every write queued before it: the
    device registrations of earlier connects are done when it returns."""
    fetch(srv, srv.token("zz-barrier"))


def is_msg(sid):
    return lambda e: e.get("type") == "message" and e.get("id") == sid


def log_text(srv):
    with open(srv.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def always_server(*args):
    """Mode always over LMDB, the defaults; retries far off, so that a held
    copy leaves its device only when a test makes it."""
    return server("--ack-timeout", "20000", *args)


async def send_ok(c, to, cid, body):
    """@c sends a message and gets "accepted"; returns the answer."""
    await c.message(to, cid, body)
    ev = await c.expect(lambda x: x.get("ref") == cid, 5, "the answer to " + cid)
    eq(ev.get("type"), "accepted", "answer to " + cid)
    return ev


async def pair(srv):
    """alice and bob connected, both devices registered."""
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    barrier(srv)
    return alice, bob


async def send_held(srv, alice, bob, n, prefix="m"):
    """alice sends @n messages to bob, who gets each pushed and acks none;
    checks they are held (journaled, not listed). Returns their ids."""
    ids = [(await send_ok(alice, "bob", "%s-%d" % (prefix, i), {"i": i}))["id"]
           for i in range(n)]
    for sid in ids:
        await bob.expect(is_msg(sid), 5, "push of %s on bob" % sid)
    eq(journal_open(srv), n, "journal entries open for the held messages")
    eq(listed(srv, "bob"), [], "bob's listing while the messages are held")
    return ids


async def test_kill9_replays_held_messages_and_own_copies():
    """kill -9 with three held messages no one acked: after the restart bob
    has each listed and pushed once with the id it was accepted with, and
    so does alice's other device, whose copies were held too. A re-send of
    one is answered with its id and not delivered again; bob's acks of the
    replayed messages bring alice her receipts."""
    srv = always_server()
    a1 = await connect(srv, "alice", device="a1", name="alice/a1")
    a2 = await connect(srv, "alice", device="a2", name="alice/a2")
    bob = await connect(srv, "bob")
    barrier(srv)
    acc = [await send_ok(a1, "bob", "k-%d" % i, {"i": i}) for i in range(3)]
    ids = [a["id"] for a in acc]
    for sid in ids:
        await bob.expect(is_msg(sid), 5, "push of %s on bob" % sid)
        await a2.expect(is_msg(sid), 5, "own copy of %s on a2" % sid)
    eq(journal_open(srv), 6, "journal entries (bob's and a2's copies) open before the kill")
    eq(listed(srv, "bob"), [], "bob's listing while held")
    eq(listed(srv, "alice", "a2"), [], "a2's listing while held")

    srv.kill9()
    for c in (a1, a2, bob):
        c.abort()
    srv.start()
    eq(listed(srv, "bob"), ids, "bob's listing after the restart")
    eq(listed(srv, "alice", "a2"), ids, "a2's listing after the restart")
    eq(journal_open(srv), 0, "journal entries open after the restart")
    check("6 held copies" in log_text(srv), "the restart replayed six journal entries")
    bob = await connect(srv, "bob", name="bob#2")
    got = [await bob.expect_type("message") for _ in ids]
    eq([m["id"] for m in got], ids, "bob's pushes after the restart")
    eq([(m["from"], m["cid"], m["body"]) for m in got],
       [("alice", "k-%d" % i, {"i": i}) for i in range(3)], "what bob got")
    a2 = await connect(srv, "alice", device="a2", name="alice/a2#2")
    own = [await a2.expect_type("message") for _ in ids]
    eq([(m["id"], m["from"], m["to"]) for m in own], [(s, "alice", "bob") for s in ids],
       "a2's own copies after the restart")

    a1 = await connect(srv, "alice", device="a1", name="alice/a1#2")
    again = await send_ok(a1, "bob", "k-0", {"i": 0})
    eq(again["id"], ids[0], "the re-send's id")
    await bob.quiet(0.4, lambda e: e.get("type") == "message", "a second copy of a message")
    await a2.quiet(0.1, lambda e: e.get("type") == "message", "a second own copy")
    eq(listed(srv, "bob"), ids, "bob's listing after the re-send")

    await bob.ack(*ids)
    refs = all_refs(await a1.expect_refs(3))
    eq(sorted(r["ref"] for r in refs), sorted(ids), "alice's receipts for the replayed")
    for c in (a1, a2, bob):
        await c.close()


async def test_acked_held_message_not_replayed():
    """Ten rounds: bob acks a held message over the WebSocket and alice gets
    her receipt; then kill -9 and restart. In odd rounds alice acks the
    receipt and the kill waits for the gauge to say no entry is left; in
    even ones the receipt stays un-acked and the kill follows its push. The
    message is never delivered again (neither listed nor pushed), nor is a
    receipt alice acked, and alice hears of bob's ack exactly once: the
    receipt pushed before the kill, and again after the restart only under
    the same id."""
    srv = always_server()
    for rnd in range(10):
        alice, bob = await pair(srv)
        cid = "r%d" % rnd
        acc = await send_ok(alice, "bob", cid, {"round": rnd})
        await bob.expect(is_msg(acc["id"]), 5, "the push on bob")
        eq(journal_open(srv), 1, "round %d: the entry is open" % rnd)
        await bob.ack(acc["id"])
        receipt = await alice.expect(delivered_for(acc["id"]), 5, "alice's receipt")
        if rnd % 2:
            await alice.ack(receipt["id"])
            await await_until(lambda: journal_open(srv) == 0, 5, "every entry released")
        srv.kill9()
        receipts = [receipt] + await alice.drain(0)
        for c in (alice, bob):
            c.abort()
        srv.start()

        bob = await connect(srv, "bob", name="bob#%d" % rnd)
        await bob.quiet(0.4, is_msg(acc["id"]), "round %d: the acked message again" % rnd)
        eq(listed(srv, "bob"), [], "round %d: bob's listing after the restart" % rnd)
        alice = await connect(srv, "alice", name="alice#%d" % rnd)
        after = [e for e in await alice.drain(0.4) if e.get("type") == "delivered"]
        if rnd % 2:
            eq([e["id"] for e in after], [], "round %d: alice's acked receipt again" % rnd)
        receipts += after
        seen, refs = set(), []
        for ev in receipts:
            if ev.get("type") == "delivered" and ev["id"] not in seen:
                seen.add(ev["id"])
                refs += [r for r in receipt_refs(ev) if r["ref"] == acc["id"]]
        eq([(r["cid"], r["from"]) for r in refs], [(cid, "bob")],
           "round %d: bob's ack reported to alice" % rnd)
        await alice.ack(*seen)
        barrier(srv)
        for c in (alice, bob):
            await c.close()
        await await_until(lambda: metric(srv, "vartalap_connections") == 0, 5,
                          "round %d: both gone" % rnd)


async def test_rest_ack_of_held_message_survives_kill9():
    """Three rounds: bob, connected, acks two held messages in one POST
    /v1/ack, and the server is killed as soon as the answer says "acked".
    An answered ack is durable with its receipt (docs/PROTOCOL.md, mode
    always): after the restart neither message is listed for bob again,
    and alice has her receipts for both."""
    srv = always_server()
    for rnd in range(3):
        alice, bob = await pair(srv)
        ids = await send_held(srv, alice, bob, 2, "h%d" % rnd)
        # (An unknown id would make the answer wait for a commit anyway.)
        r = ack_http(srv, srv.token("bob"), ids)
        eq((r["acked"], r["unknown"]), (ids, []), "round %d: bob's ack" % rnd)
        srv.kill9()
        for c in (alice, bob):
            c.abort()
        srv.start()
        again = listed(srv, "bob")
        receipts = fetch_all(srv, srv.token("alice"))
        refs = sorted(r["ref"] for ev in receipts for r in receipt_refs(ev))
        if again:
            ack_http(srv, srv.token("bob"), again)
        if receipts:
            ack_http(srv, srv.token("alice"), [ev["id"] for ev in receipts])
        eq(again, [], "round %d: bob's listing after an answered ack and kill -9" % rnd)
        eq(refs, sorted(ids), "round %d: alice's receipts after kill -9" % rnd)


async def test_retries_run_out_write_held_message():
    """--retries 0: a held message bob does not ack within --ack-timeout
    is written for him (listed) and its entry released; after kill -9 it
    is listed once and no entry is replayed."""
    srv = always_server("--ack-timeout", "300", "--retries", "0")
    alice, bob = await pair(srv)
    acc = await send_ok(alice, "bob", "t-1", "late")
    await bob.expect(is_msg(acc["id"]), 5, "the push on bob")
    eq(journal_open(srv), 1, "the entry is open")
    eq(listed(srv, "bob"), [], "bob's listing while held")
    await await_until(lambda: listed(srv, "bob") == [acc["id"]], 5, "the message written")
    eq(journal_open(srv), 0, "entries open once it is written")

    srv.kill9()
    for c in (alice, bob):
        c.abort()
    srv.start()
    eq(listed(srv, "bob"), [acc["id"]], "bob's listing after kill -9")
    check(REPLAY_LOG not in log_text(srv), "a released entry replayed:\n" + srv.log_tail())


async def test_held_written_when_recipient_drops():
    """Held messages are not listed; when bob drops without acking they are
    written for him (listed) and their entries released. He acks one over
    REST; after kill -9 and a restart the other three are listed once each,
    and the acked one does not come back from a journal entry."""
    srv = always_server()
    alice, bob = await pair(srv)
    ids = await send_held(srv, alice, bob, 4)

    bob.abort()
    await await_until(lambda: listed(srv, "bob") == ids, 5, "bob's messages written")
    eq(journal_open(srv), 0, "entries open once they are written")
    eq(ack_http(srv, srv.token("bob"), ids[:1])["acked"], ids[:1], "bob's ack over REST")
    eq(listed(srv, "bob"), ids[1:], "bob's listing after his ack")
    await alice.expect_refs(1)

    srv.kill9()
    alice.abort()
    srv.start()
    eq(listed(srv, "bob"), ids[1:], "bob's listing after kill -9")
    eq(journal_open(srv), 0, "entries open after the restart")
    check(REPLAY_LOG not in log_text(srv), "released entries replayed:\n" + srv.log_tail())
    bob = await connect(srv, "bob", name="bob#2")
    got = [(await bob.expect_type("message"))["id"] for _ in ids[1:]]
    eq(got, ids[1:], "bob's pushes after the restart")
    await bob.quiet(0.3, lambda e: e.get("type") == "message", "a message again")
    await bob.close()


async def test_sigterm_writes_held_messages():
    """SIGTERM with three held, un-acked messages: the clean stop writes
    them (and logs how many) and releases their entries, so the next start
    has no entry to replay; bob has each listed once, and nothing is left
    open."""
    srv = always_server()
    alice, bob = await pair(srv)
    ids = await send_held(srv, alice, bob, 3)

    srv.proc.send_signal(signal.SIGTERM)
    for c in (alice, bob):
        eq(await c.wait_closed(10), 1001, "close code on SIGTERM (%s)" % c.name)
    eq(srv.stop(), 0, "exit status after SIGTERM")
    check("shutting down: writing 3 held copies to storage" in log_text(srv),
          "the clean stop's count of held copies:\n" + srv.log_tail())
    srv.start()
    check(REPLAY_LOG not in log_text(srv), "entries left by a clean stop:\n" + srv.log_tail())
    eq(listed(srv, "bob"), ids, "bob's listing after the restart")
    eq(journal_open(srv), 0, "entries open after the restart")
    bob = await connect(srv, "bob", name="bob#2")
    got = [(await bob.expect_type("message"))["id"] for _ in ids]
    eq(got, ids, "bob's pushes after the restart")
    await bob.ack(*ids)
    await await_until(lambda: listed(srv, "bob") == [], 5, "bob's acks written")
    eq(journal_open(srv), 0, "entries open at the end")
    await bob.close()


async def test_kill9_while_sending_loses_nothing_accepted():
    """Four senders send 50 messages each, in flight, to four recipients who
    take them and ack none; the server is killed at a random moment while
    they send. After the restart each recipient has every message whose
    "accepted" its sender got, listed once and then pushed, in send order,
    and nothing it was not sent."""
    rng = random.Random(SEED)
    n, per, ahead = 4, 50, 5
    # Killed from the sender that sees the kill_at-th "accepted", before it
    # sends on: at most n * ahead more are sent, so some are never sent.
    kill_at = rng.randrange(20, n * per - n * ahead)
    print("  seed %d: kill -9 after %d accepted" % (SEED, kill_at))
    srv = always_server()
    senders = [await connect(srv, "s%d" % i) for i in range(n)]
    takers = [await connect(srv, "r%d" % i) for i in range(n)]
    barrier(srv)
    accepted = [dict() for _ in range(n)]
    at_kill = {}

    def kill():
        at_kill["open"] = journal_open(srv)
        srv.kill9()
        for c in senders + takers:
            c.abort()

    async def answer(i, c):
        while True:
            try:
                ev = await c._recv_one(5)
            except asyncio.TimeoutError:
                check(at_kill, "sender %d: no answer within 5 s" % i)
                raise ConnectionError("killed")
            if ev.get("type") == "accepted":
                accepted[i][ev["ref"]] = ev["id"]
                if not at_kill and sum(len(a) for a in accepted) == kill_at:
                    kill()
                return
            check(ev.get("type") != "error", "sender %d: %r" % (i, ev))

    async def send_all(i):
        c = senders[i]
        try:
            for j in range(per):
                await c.message("r%d" % i, "c%03d" % j, {"j": j})
                if j >= ahead - 1:
                    await answer(i, c)
            while len(accepted[i]) < per:
                await answer(i, c)
        except (websockets.exceptions.ConnectionClosed, ConnectionError):
            check(at_kill, "sender %d lost its connection before the kill" % i)

    await asyncio.gather(*[send_all(i) for i in range(n)])
    total = sum(len(a) for a in accepted)
    print("  %d accepted, %d entries open at the kill" % (total, at_kill.get("open", -1)))
    check(at_kill, "the server was not killed")
    check(at_kill["open"] > 0, "no entry open at the kill: nothing was held")
    check(total < n * per, "every message was accepted before the kill")

    srv.start()
    eq(journal_open(srv), 0, "entries open after the restart")
    for i in range(n):
        got = fetch_all(srv, srv.token("r%d" % i))
        ids = [m["id"] for m in got]
        eq(len(set(ids)), len(ids), "r%d: each listed once" % i)
        for m in got:
            j = m["body"]["j"]
            eq((m["from"], m["cid"]), ("s%d" % i, "c%03d" % j), "r%d: a message" % i)
            if m["cid"] in accepted[i]:
                eq(m["id"], accepted[i][m["cid"]], "r%d: the id of %s" % (i, m["cid"]))
        cids = [m["cid"] for m in got]
        eq(cids, sorted(cids), "r%d: send order" % i)
        lost = sorted(set(accepted[i]) - set(cids))
        eq(lost, [], "r%d: accepted messages lost" % i)
        # One by one they come on connect too, as listed.
        c = await connect(srv, "r%d" % i, name="r%d#2" % i)
        for sid in ids[:32]:
            m = await c.expect_type("message")
            eq(m["id"], sid, "r%d: pushed in listing order" % i)
        await c.close()


async def team(srv):
    """alice, bob and carol connected; alice makes g:team with the other two,
    who ack the group's news."""
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    carol = await connect(srv, "carol")
    barrier(srv)
    await alice.send({"v": 1, "type": "group_create", "id": "g-1", "to": "g:team",
                      "body": {"name": "T", "members": ["bob", "carol"]}})
    await alice.expect_type("accepted", ref="g-1")
    for c in (bob, carol):
        ev = await c.expect_type("group")
        await c.ack(ev["id"])
    barrier(srv)
    return alice, bob, carol


def acks_of(evs, sid):
    """The (user, device) of each ack of @sid that the receipts @evs report,
    each receipt counted once."""
    seen, out = set(), []
    for ev in evs:
        if ev.get("type") == "delivered" and ev["id"] not in seen:
            seen.add(ev["id"])
            out += [(r["from"], r["device"]) for r in receipt_refs(ev) if r["ref"] == sid]
    return sorted(out)


async def test_group_post_is_held_and_replayed():
    """A group post to members who keep up is held: pushed, not listed, one
    entry per member's copy. kill -9 before any ack: after the restart it is
    listed and pushed to each member once, and their acks reach alice."""
    srv = always_server()
    alice, bob, carol = await team(srv)
    acc = await send_ok(alice, "g:team", "p-1", "hello")
    for c in (bob, carol):
        await c.expect(is_msg(acc["id"]), 5, "the post on " + c.name)
        eq(listed(srv, c.name), [], "the post listed for %s while held" % c.name)
    eq(journal_open(srv), 2, "entries open for the post's two copies")

    srv.kill9()
    for c in (alice, bob, carol):
        c.abort()
    srv.start()
    for user in ("bob", "carol"):
        eq(listed(srv, user), [acc["id"]], "%s's listing after kill -9" % user)
    alice = await connect(srv, "alice", name="alice#2")
    for user in ("bob", "carol"):
        c = await connect(srv, user, name=user + "#2")
        await c.expect(is_msg(acc["id"]), 5, "the post on %s after the restart" % user)
        await c.ack(acc["id"])
    evs = await alice.expect_refs(2)
    eq(acks_of(evs, acc["id"]), [("bob", ""), ("carol", "")], "alice's receipts")


async def test_group_receipt_not_lost_to_kill9():
    """Ten rounds: alice posts to g:team, bob and carol ack over the
    WebSocket, and kill -9 follows at once (their acks' entries are released
    only with the group's receipt, which gathers for 50 ms), or, in odd
    rounds, once alice has the receipt. After the restart a member gets the
    post again only if alice had no receipt naming that member before the
    kill, and alice hears of every member's ack: no receipt is lost."""
    srv = always_server()
    again_total = 0
    for rnd in range(10):
        alice, bob, carol = await team(srv) if rnd == 0 else await reconnect3(srv, rnd)
        acc = await send_ok(alice, "g:team", "q-%d" % rnd, {"round": rnd})
        for c in (bob, carol):
            await c.expect(is_msg(acc["id"]), 5, "round %d: the post on %s" % (rnd, c.name))
        eq(journal_open(srv), 2, "round %d: the post's entries open" % rnd)
        await bob.ack(acc["id"])
        await carol.ack(acc["id"])
        got = await alice.expect_refs(2) if rnd % 2 else []
        srv.kill9()
        before = got + await alice.drain(0)
        for c in (alice, bob, carol):
            c.abort()
        srv.start()

        alice = await connect(srv, "alice", name="alice#%d" % rnd)
        heard = set(acks_of(before, acc["id"]))
        for user in ("bob", "carol"):
            c = await connect(srv, user, name="%s#%d" % (user, rnd))
            again = [e for e in await c.drain(0.3) if is_msg(acc["id"])(e)]
            if (user, "") in heard:
                eq(again, [], "round %d: %s got the post again after alice heard" % (rnd, user))
            else:
                check(len(again) == 1, "round %d: %s gets the post again" % (rnd, user))
                again_total += 1
                await c.ack(acc["id"])
            await c.close()
        after = await alice.drain(0.6)
        eq(sorted(set(acks_of(before, acc["id"])) | set(acks_of(after, acc["id"]))),
           [("bob", ""), ("carol", "")], "round %d: every ack reported to alice" % rnd)
        await alice.ack(*{e["id"] for e in before + after if e.get("type") == "delivered"})
        barrier(srv)
        await alice.close()
        await await_until(lambda: metric(srv, "vartalap_connections") == 0, 5,
                          "round %d: all gone" % rnd)
    print("  %d of 20 acked copies delivered again after the kill" % again_total)


async def reconnect3(srv, rnd):
    """alice, bob and carol connected again, nothing owed to any of them."""
    out = [await connect(srv, u, name="%s@%d" % (u, rnd)) for u in ("alice", "bob", "carol")]
    barrier(srv)
    return out


class Device:
    """One member device of the churn test: what it was pushed and acked."""

    def __init__(self, user, device):
        self.user, self.device, self.c, self.n = user, device, None, 0
        self.acked = set()
        self.last_acked = False
        self.session = []  # alice's message ids pushed on the current connection

    async def up(self, srv):
        self.n += 1
        self.session = []
        self.c = await connect(srv, self.user, device=self.device,
                               name="%s/%s#%d" % (self.user, self.device, self.n))

    async def down(self, rng):
        """Drop the connection: closed, so that the server reads the acks
        sent before it; or, when the last read acked nothing, maybe cut."""
        if not self.last_acked and rng.random() < 0.5:
            self.c.abort()
        else:
            await self.c.close()
        self.c = None

    async def read(self, rng):
        """Take what was pushed; ack the news and receipts, and a random
        first part of the messages (the rest stays owed)."""
        new = []
        for ev in await self.c.drain(0):
            if ev.get("type") == "message" and ev.get("from") == "alice":
                check(ev["id"] not in self.session or ev["id"] not in self.acked,
                      "%s: acked %s pushed again" % (self.c.name, ev["id"]))
                if ev["id"] not in self.session:
                    last = self.session[-1] if self.session else "0"
                    check(int(ev["id"]) > int(last),
                          "%s: %s pushed after %s" % (self.c.name, ev["id"], last))
                    self.session.append(ev["id"])
                    new.append(ev["id"])
            elif ev.get("type") in ("group", "delivered"):
                await self.c.ack(ev["id"])
        self.last_acked = bool(new) and rng.random() < 0.7
        if self.last_acked:
            part = new[:rng.randint(1, len(new))]
            await self.c.ack(*part)
            self.acked.update(part)


def alice_messages(srv, user, device):
    """The ids of alice's messages stored for @user's @device."""
    return sorted((m["id"] for m in fetch_all(srv, srv.token(user), device=device)
                   if m.get("type") == "message" and m.get("from") == "alice"), key=int)


async def test_churn_then_kill9_replays_exactly_what_is_owed():
    """Forty rounds: alice sends bursts to bob (three devices), carol (two),
    dave and their group; devices ack random parts of what they are pushed,
    drop and come back. Within a connection alice's messages come in id
    order and an acked one never comes again. After a quiet moment, kill -9:
    the restart replays as many copies as the gauge counted open, and each
    device has listed exactly what was sent to it and it did not ack."""
    rng = random.Random(SEED)
    print("  seed %d (VT_JOURNAL_SEED)" % SEED)
    srv = always_server()
    alice = await connect(srv, "alice", device="a1", name="alice")
    devs = [Device(u, d) for u, d in (("bob", "p"), ("bob", "t"), ("bob", "l"),
                                      ("carol", "a"), ("carol", "b"), ("dave", "d"))]
    for d in devs:
        await d.up(srv)
    barrier(srv)
    await alice.send({"v": 1, "type": "group_create", "id": "g-1", "to": "g:team",
                      "body": {"name": "T", "members": ["bob", "carol", "dave"]}})
    await alice.expect_type("accepted", ref="g-1")

    sent = []  # (id, to)
    for rnd in range(40):
        tos = [rng.choice(["bob", "carol", "dave", "g:team"]) for _ in range(rng.randint(1, 8))]
        for i, to in enumerate(tos):
            await alice.message(to, "c-%d-%d" % (rnd, i), {"r": rnd})
        for i, to in enumerate(tos):
            sent.append(((await send_answer(alice, "c-%d-%d" % (rnd, i)))["id"], to))
        for d in devs:
            if d.c is None:
                if rng.random() < 0.5:
                    await d.up(srv)
            elif rng.random() < 0.08:
                await d.down(rng)
            else:
                await d.read(rng)
        receipts = [e["id"] for e in await alice.drain(0) if e.get("type") == "delivered"]
        if receipts:
            await alice.ack(*receipts)
        await asyncio.sleep(rng.random() * 0.03)

    # Quiet: every receipt gathered has gone out, every ack has committed.
    await asyncio.sleep(0.5)
    barrier(srv)
    open_before = journal_open(srv)
    srv.kill9()
    alice.abort()
    for d in devs:
        if d.c is not None:
            d.c.abort()
    srv.start()
    found = re.search(r"journal: (\d+) held cop(y|ies) stored from the journal", log_text(srv))
    replayed = int(found.group(1)) if found else 0
    eq(replayed, open_before, "copies replayed against entries open before the kill")
    for d in devs:
        owed = sorted((sid for sid, to in sent if to in (d.user, "g:team")
                       and sid not in d.acked), key=int)
        eq(alice_messages(srv, d.user, d.device), owed,
           "%s/%s's listing after kill -9" % (d.user, d.device))
    print("  %d sent, %d copies open at the kill" % (len(sent), open_before))


async def send_answer(c, cid):
    """The answer to @cid on @c, which must be "accepted"."""
    ev = await c.expect(lambda x: x.get("ref") == cid, 5, "the answer to " + cid)
    eq(ev.get("type"), "accepted", "answer to " + cid)
    return ev


async def test_hold_queue_bounds_held_then_stored():
    """--hold-queue 4 applies to mode always: of ten messages to bob, who
    acks none, four are held (four entries, not listed), the other six
    written before "accepted". After kill -9 all ten are listed once, in
    order, and pushed in that order."""
    srv = always_server("--hold-queue", "4", "--window", "2")
    alice, bob = await pair(srv)
    ids = [(await send_ok(alice, "bob", "q-%d" % i, i))["id"] for i in range(10)]
    # One taken while bob kept up may find his queue full once it commits:
    # written then, its entry released.
    await await_until(lambda: journal_open(srv) == 4, 5, "four entries open: the held ones")
    eq(listed(srv, "bob"), ids[4:], "the messages written past the bound")

    srv.kill9()
    for c in (alice, bob):
        c.abort()
    srv.start()
    eq(listed(srv, "bob"), ids, "bob's listing after kill -9")
    bob = await connect(srv, "bob", name="bob#2")
    got = []
    while len(got) < 10:
        m = await bob.expect_type("message")
        got.append(m["id"])
        await bob.ack(m["id"])
    eq(got, ids, "bob's pushes after the restart, in order")
    await bob.quiet(0.3, lambda e: e.get("type") == "message", "a message again")
    await bob.close()


async def test_kill9_spares_the_devices_that_acked():
    """bob's phone and laptop and alice's other device a2 each hold a copy
    of alice's message; the phone and a2 ack theirs, the laptop does not.
    Well after those acks, kill -9: after the restart the laptop has the
    message, and neither the phone nor a2 gets it again (an ack ends a
    message for its device, also across a crash)."""
    srv = always_server()
    a1 = await connect(srv, "alice", device="a1", name="alice/a1")
    a2 = await connect(srv, "alice", device="a2", name="alice/a2")
    phone = await connect(srv, "bob", device="phone", name="bob/phone")
    laptop = await connect(srv, "bob", device="laptop", name="bob/laptop")
    barrier(srv)
    acc = await send_ok(a1, "bob", "d-1", "to both")
    for c in (phone, laptop, a2):
        await c.expect(is_msg(acc["id"]), 5, "the copy on " + c.name)
    eq(journal_open(srv), 3, "the entries of the message's three copies are open")
    await phone.ack(acc["id"])
    await a2.ack(acc["id"])
    refs = all_refs(await a1.expect_refs(1))
    eq([(r["ref"], r["device"]) for r in refs], [(acc["id"], "phone")], "the phone's receipt")
    await asyncio.sleep(0.3)     # the acks are long past when the server dies
    barrier(srv)

    srv.kill9()
    for c in (a1, a2, phone, laptop):
        c.abort()
    srv.start()
    eq(listed(srv, "bob", "laptop"), [acc["id"]], "the laptop's listing after kill -9")
    eq(listed(srv, "bob", "phone"), [], "the phone's listing after kill -9 (it acked)")
    # a2 acked the message; the phone's receipt, held for alice, is still owed
    check(acc["id"] not in listed(srv, "alice", "a2"), "a2's listing after kill -9 (it acked)")


async def test_kill9_spares_a_device_registered_later():
    """A device receives what is accepted after it registered: alice's
    message is held for bob's phone; then bob's laptop registers. After
    kill -9 the phone has the message and the laptop, which registered
    after it was accepted, does not."""
    srv = always_server()
    alice = await connect(srv, "alice")
    phone = await connect(srv, "bob", device="phone", name="bob/phone")
    barrier(srv)
    acc = await send_ok(alice, "bob", "l-1", "before the laptop")
    await phone.expect(is_msg(acc["id"]), 5, "the message on the phone")
    eq(journal_open(srv), 1, "the message's entry is open")
    laptop = await connect(srv, "bob", device="laptop", name="bob/laptop")
    barrier(srv)
    await laptop.quiet(0.2, is_msg(acc["id"]), "the older message on the new laptop")

    srv.kill9()
    for c in (alice, phone, laptop):
        c.abort()
    srv.start()
    eq(listed(srv, "bob", "phone"), [acc["id"]], "the phone's listing after kill -9")
    eq(listed(srv, "bob", "laptop"), [], "the laptop's listing after kill -9")


async def fill_store(srv, c, to="carol"):
    """@c sends large messages to @to, who has no device, until the store
    is full; returns how many were accepted."""
    n = 0
    while True:
        cid = "fill-%d" % n
        await c.message(to, cid, "x" * 20000)
        ev = await c.expect(lambda x: x.get("ref") == cid, 5, "the answer to " + cid)
        if ev.get("type") != "accepted":
            eq(ev.get("code"), "storage_full", "the answer once the store is full")
            return n
        n += 1


async def fill_finely(c, to="carol"):
    """After fill_store, @c sends ever smaller messages to @to until each
    size is refused: the store has no room left for a message, whatever
    commits it shares."""
    for size in (2000, 200, 20):
        cid = None
        while cid is None or ev.get("type") == "accepted":
            cid = "finer-%d-%s" % (size, os.urandom(4).hex())
            await c.message(to, cid, "z" * size)
            ev = await c.expect(lambda x: x.get("ref") == cid, 5, "the answer to " + cid)


async def test_drop_on_full_store_writes_held_messages():
    """A 1 MiB store holds twenty messages for bob and is then filled to the
    last message it takes. While three senders send to it, each refused, bob
    drops: his copies are written to his inbox all the same, at once, since
    the journal keeps the room their write takes. No restart is needed to
    list them, and after kill -9 and a restart each is there once."""
    srv = always_server("--lmdb-map-size", "1")
    alice, bob = await pair(srv)
    senders = [await connect(srv, "s%d" % i) for i in range(3)]
    barrier(srv)
    ids = await send_held(srv, alice, bob, 20)
    check(await fill_store(srv, alice) > 0, "nothing fit in the store")
    await fill_finely(alice)

    # Bob drops while the server works through a burst that the full store
    # refuses, so that his copies' writes share commits with refused ones.
    for c in senders:
        for i in range(100):
            await c.message("carol", "%s-%d" % (c.name, i), "y" * 2000)
    bob.abort()
    await await_until(lambda: journal_open(srv) == 0, 5, "bob's copies written")
    eq(listed(srv, "bob"), ids, "bob's listing after a drop on a full store")
    check("not written" not in log_text(srv), "a copy refused on a full store")

    srv.kill9()
    for c in [alice] + senders:
        c.abort()
    srv.start()
    eq(listed(srv, "bob"), ids, "bob's listing after kill -9")
    eq(journal_open(srv), 0, "entries open after the restart")
    bob = await connect(srv, "bob")
    for sid in ids:
        await bob.expect(is_msg(sid), 5, "push of %s to bob back online" % sid)

async def test_full_store_stores_receipts_of_held_posts():
    """Ten group posts are held for bob and carol, then the store is filled
    to the last message it takes, and alice goes. Bob and carol ack each
    post over the WebSocket, apart: each makes a group receipt for alice,
    whose copies' entries are released in its commit. A full store takes
    those receipts, as it takes the ones its acks make: alice, back, hears
    of all twenty acks."""
    srv = always_server("--lmdb-map-size", "1")
    alice, bob, carol = await team(srv)
    filler = await connect(srv, "filler")
    barrier(srv)
    ids = [(await send_ok(alice, "g:team", "f-%d" % i, "post %d" % i))["id"]
           for i in range(10)]
    for c in (bob, carol):
        for sid in ids:
            await c.expect(is_msg(sid), 5, "post %s on %s" % (sid, c.name))
    eq(journal_open(srv), 20, "entries open for the posts' copies")
    check(await fill_store(srv, filler, "nobody") > 0, "nothing fit in the store")
    await fill_finely(filler, "nobody")
    await alice.close()
    await await_until(lambda: metric(srv, "vartalap_connections") == 3, 5, "alice gone")

    for sid in ids:
        await bob.ack(sid)
        await carol.ack(sid)
        await asyncio.sleep(0.1)
    await await_until(lambda: journal_open(srv) == 0, 5, "the acked copies' entries released")
    alice = await connect(srv, "alice", name="alice#2")
    evs = await alice.expect_refs(20, what="receipts of the held posts")
    for sid in ids:
        eq(acks_of(evs, sid), [("bob", ""), ("carol", "")], "the acks of " + sid)
    check("type=delivered" not in log_text(srv), "a receipt refused on a full store")


def long_id(prefix):
    """An id of the longest length accepted, 64 bytes, starting with @prefix."""
    return (prefix + "-" + "x" * 64)[:64]


async def test_long_names_held_replayed_and_in_receipts():
    """Group posts held for members and devices whose ids are 64 bytes long,
    with bodies either side of a kilobyte. The members ack two posts: the
    group's receipts name each acking device by its whole user and device
    ids. Then kill -9: after the restart each device (the sender's other one
    too) gets the posts it did not ack, once each, and the two the sender
    had receipts for only on the device that never acked them."""
    srv = always_server()
    sender = long_id("sender")
    users = [long_id("member%d" % i) for i in range(3)]
    devices = [(users[0], long_id("phone")), (users[0], long_id("tab")),
               (users[1], long_id("phone")), (users[2], long_id("desk"))]
    own = (sender, long_id("laptop"))
    first = await connect(srv, sender, device=long_id("desk"), name="sender/desk")
    conns = [await connect(srv, u, device=d, name="%s/%s" % (u[:8], d[:6]))
             for u, d in devices + [own]]
    barrier(srv)
    await first.send({"v": 1, "type": "group_create", "id": "g-1", "to": "g:long",
                      "body": {"name": "L", "members": users}})
    await first.expect_type("accepted", ref="g-1")
    for c in conns:
        await c.ack((await c.expect_type("group"))["id"])
    barrier(srv)
    sizes = [900, 960, 1000, 1100]
    ids = [(await send_ok(first, "g:long", "p-%d" % n, "y" * n))["id"] for n in sizes]
    for c in conns:
        for sid in ids:
            await c.expect(is_msg(sid), 5, "post %s on %s" % (sid, c.name))
    eq(journal_open(srv), len(ids) * len(conns), "entries open for the posts' copies")
    for c in conns[:-1]:
        await c.ack(*ids[:2])
    evs = await first.expect_refs(2 * len(devices), 5, "the group's receipts")
    for sid in ids[:2]:
        eq(acks_of(evs, sid), sorted(devices), "the devices that acked " + sid)

    srv.kill9()
    for c in [first] + conns:
        c.abort()
    srv.start()
    for (u, d), c in zip(devices + [own], conns):
        c = await connect(srv, u, device=d, name=c.name + "#2")
        got = [e for e in await c.drain(0.5) if e.get("type") == "message"]
        owed = ids if (u, d) == own else ids[2:]
        eq(sorted((e["id"] for e in got), key=int), owed,
           "posts on %s after the restart" % c.name)
        eq([len(e["body"]) for e in got], [n for n, sid in zip(sizes, ids) if sid in owed],
           "bodies on " + c.name)
        await c.close()

if __name__ == "__main__":
    run([test_kill9_replays_held_messages_and_own_copies,
         test_acked_held_message_not_replayed,
         test_rest_ack_of_held_message_survives_kill9,
         test_held_written_when_recipient_drops,
         test_sigterm_writes_held_messages,
         test_retries_run_out_write_held_message,
         test_kill9_while_sending_loses_nothing_accepted,
         test_group_post_is_held_and_replayed,
         test_group_receipt_not_lost_to_kill9,
         test_churn_then_kill9_replays_exactly_what_is_owed,
         test_hold_queue_bounds_held_then_stored,
         test_kill9_spares_the_devices_that_acked,
         test_kill9_spares_a_device_registered_later,
         test_drop_on_full_store_writes_held_messages,
         test_full_store_stores_receipts_of_held_posts,
         test_long_names_held_replayed_and_in_receipts])
