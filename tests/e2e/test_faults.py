#!/usr/bin/python3
"""Faults: kill -9 and SIGTERM under steady load, a full LMDB map, a full disk.

kill -9: senders over WebSocket and REST send to recipients who ack most of
what they get, and the server is killed 20 times at random moments and
restarted on the same data dir (6 more times with the LMDB writer inline,
and 6 times stopped with SIGTERM instead, while the load goes on). A
sender resends, with the same client id, whatever got no answer. At the
end every accepted message has reached its recipient with the server id
it was accepted with, no (sender, client id) got two server ids, and no
message whose ack the server confirmed (the sender got its `delivered`) is
pushed again after a restart. Other repeated pushes (a retry, or an
un-acked message pushed again after a restart) are allowed and counted.

Full storage: with durability always a message is accepted only once it is
on disk, so a full store refuses new messages (507 storage_full over REST,
an error envelope over WebSocket), also for a recipient who is online. What
was accepted before is still delivered, acks free space, and sends are
accepted again once it is free.
"""

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import time

import websockets
import websockets.exceptions

from harness import (TestFailure, ahttp, all_refs, check, eq, connect, send_http, fetch,
                     fetch_all, ack_http, http_request, metric, receipt_refs, run, server,
                     Server, await_until)

MAP_MB = "4"  # MB; the smallest map (1 MB) leaves a reserve too small for acks
SEED = int(os.environ.get("VT_FAULTS_SEED", str(int(time.time()) % 100000)))


# ----------------------------------------------------------------- async HTTP



def ws_frame(text):
    """A masked client text frame."""
    data = text.encode()
    mask = os.urandom(4)
    n = len(data)
    if n < 126:
        hdr = bytes([0x81, 0x80 | n])
    elif n < 65536:
        hdr = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        hdr = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


# ----------------------------------------------------------------- kill -9 under load

class Ledger:
    def __init__(self):
        self.accepted = {}      # (sender, cid) -> server id
        self.by_sid = {}        # server id -> (sender, cid, to)
        self.unknown = {}       # sender -> {cid: to}: sent, no answer yet
        self.errors = {}        # error code -> count (refused sends, resent later)
        self.sid_conflicts = []  # (sender, cid) answered with two server ids
        self.received = {}      # server id -> raw push count
        self.recv_info = {}     # server id -> (from, cid, to)
        self.first_epoch = {}   # server id -> epoch of its first push
        self.confirmed = {}     # server id -> epoch its `delivered` reached the sender
        self.replayed = []      # pushed again in a later epoch than its confirmed ack
        self.dup_retry = 0      # repeated push within one epoch (retry)
        self.dup_restart = 0    # repeated push in a later epoch (un-acked, or ack unconfirmed)
        self.receipts = set()
        self.accept_times = 0

    def took(self, sender, cid, to, sid):
        key = (sender, cid)
        old = self.accepted.get(key)
        if old is not None and old != sid:
            self.sid_conflicts.append((sender, cid, old, sid))
        self.accepted[key] = sid
        self.by_sid[sid] = (sender, cid, to)
        self.unknown.get(sender, {}).pop(cid, None)

    def got(self, user, ev, epoch, last_epoch):
        sid = ev["id"]
        n = self.received.get(sid, 0)
        self.received[sid] = n + 1
        if n == 0:
            self.first_epoch[sid] = epoch
            self.recv_info[sid] = (ev.get("from"), ev.get("cid"), user)
        elif last_epoch.get(sid) == epoch:
            self.dup_retry += 1
        else:
            self.dup_restart += 1
        c = self.confirmed.get(sid)
        if c is not None and c < epoch:
            self.replayed.append((sid, c, epoch))
        last_epoch[sid] = epoch


SENDERS_WS = ["sw1", "sw2"]
SENDERS_HTTP = ["sh1", "sh2"]
RECIPIENTS = ["r1", "r2", "r3", "r4"]


async def ws_sender(srv, led, name, rng, stop, epoch, counter):
    c = await connect(srv, name, timeout=3)
    outstanding = {}
    window = asyncio.Semaphore(4)

    async def reader():
        try:
            await read_all()
        finally:
            for _ in range(8):  # unblock the writer: the connection is gone
                window.release()

    async def read_all():
        async for raw in c.ws:
            ev = json.loads(raw)
            t = ev.get("type")
            if t == "accepted":
                to = outstanding.pop(ev["ref"], None)
                if to is not None:
                    led.took(name, ev["ref"], to, ev["id"])
                    window.release()
            elif t == "error" and ev.get("ref") in outstanding:
                led.errors[ev.get("code")] = led.errors.get(ev.get("code"), 0) + 1
                todo.append((ev["ref"], outstanding.pop(ev["ref"])))  # same cid again
                window.release()
            elif t == "delivered":
                for r in receipt_refs(ev):
                    led.receipts.add(r["ref"])
                    led.confirmed.setdefault(r["ref"], epoch)
                await c.send({"v": 1, "type": "ack", "ids": [ev["id"]]})

    todo = list(led.unknown.setdefault(name, {}).items())
    rt = asyncio.ensure_future(reader())
    try:
        while not stop.is_set() or todo:
            if rt.done():
                break
            if todo:
                cid, to = todo.pop()
            else:
                counter[name] = counter.get(name, 0) + 1
                cid = "%s-%d" % (name, counter[name])
                to = rng.choice(RECIPIENTS)
                led.unknown[name][cid] = to
            await window.acquire()
            if rt.done():
                break
            outstanding[cid] = to
            await c.message(to, cid, {"n": cid})
            await asyncio.sleep(rng.uniform(0, 0.01))
        while outstanding or todo:
            if todo:
                cid, to = todo.pop()
                await window.acquire()
                if rt.done():
                    break
                outstanding[cid] = to
                await c.message(to, cid, {"n": cid})
            await asyncio.wait_for(await_until(lambda: not outstanding or todo or rt.done(), 10,
                                               "answers to " + name), 11)
            if rt.done():
                break
    finally:
        rt.cancel()
        c.abort()


async def http_sender(srv, led, name, rng, stop, counter):
    tok = srv.token(name)
    todo = list(led.unknown.setdefault(name, {}).items())
    while not stop.is_set() or todo:
        if todo:
            cid, to = todo.pop()
        else:
            counter[name] = counter.get(name, 0) + 1
            cid = "%s-%d" % (name, counter[name])
            to = rng.choice(RECIPIENTS)
            led.unknown[name][cid] = to
        try:
            st, r = await ahttp(srv.port, "POST", "/v1/send", tok,
                                {"v": 1, "type": "message", "id": cid, "to": to,
                                 "body": {"n": cid}})
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            return  # the server died: cid stays unknown
        if st == 200:
            led.took(name, cid, to, r["id"])
        else:
            code = r.get("code") if isinstance(r, dict) else st
            led.errors[code] = led.errors.get(code, 0) + 1
            todo.append((cid, to))
            await asyncio.sleep(0.05)


async def recipient(srv, led, name, rng, epoch, last_epoch, ack_all):
    c = await connect(srv, name, timeout=3)
    try:
        async for raw in c.ws:
            ev = json.loads(raw)
            if ev.get("type") != "message":
                continue
            led.got(name, ev, epoch, last_epoch)
            # Most are acked at once; the rest when seen again.
            if ack_all.is_set() or led.received[ev["id"]] > 1 or rng.random() < 0.85:
                await c.send({"v": 1, "type": "ack", "ids": [ev["id"]]})
    except websockets.exceptions.ConnectionClosed:
        pass
    finally:
        c.abort()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def under_load(rounds, interrupt, *args):
    """@rounds runs of the load, each ended by @interrupt(srv) at a random
    moment, then one that ends cleanly; then the ledger is checked."""
    rng = random.Random(SEED)
    print("  seed %d (VT_FAULTS_SEED to repeat)" % SEED)
    srv = server("--ack-timeout", "700", "--retries", "2", *args)
    led = Ledger()
    counter = {}
    last_epoch = {}
    kills = 0
    for epoch in range(rounds + 1):
        final = epoch == rounds
        if epoch > 0:
            srv.start()
        stop = asyncio.Event()
        ack_all = asyncio.Event()
        if final:
            ack_all.set()
        tasks = [asyncio.ensure_future(recipient(srv, led, r, rng, epoch, last_epoch, ack_all))
                 for r in RECIPIENTS]
        send_tasks = [asyncio.ensure_future(ws_sender(srv, led, s, rng, stop, epoch, counter))
                      for s in SENDERS_WS]
        send_tasks += [asyncio.ensure_future(http_sender(srv, led, s, rng, stop, counter))
                       for s in SENDERS_HTTP]
        if not final:
            await asyncio.sleep(rng.uniform(0.3, 1.2))  # the load runs; then the kill
            await interrupt(srv)
            kills += 1
            await asyncio.gather(*tasks, *send_tasks, return_exceptions=True)
            continue
        # Final run, no kill: the senders resend what got no answer, then
        # stop; the recipients must end up with every accepted message.
        await asyncio.sleep(0.5)
        stop.set()
        res = await asyncio.gather(*send_tasks, return_exceptions=True)
        for x in res:
            if isinstance(x, BaseException):
                raise TestFailure("sender failed in the final run: %r" % (x,))
        left = {s: dict(v) for s, v in led.unknown.items() if v}
        eq(left, {}, "sends with no answer after the final run")
        want = set(led.by_sid)
        await await_until(lambda: want <= set(led.received), 20,
                          "every accepted message at its recipient (missing %d)"
                          % len(want - set(led.received)))
        rss = rss_kb(srv.pid)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    missing = sorted(set(led.by_sid) - set(led.received), key=int)
    wrong = [sid for sid, (snd, cid, to) in led.by_sid.items()
             if sid in led.recv_info and led.recv_info[sid] != (snd, cid, to)]
    unaccounted = sorted(set(led.received) - set(led.by_sid), key=int)
    # A message pushed before its commit (--ack-wait) and lost with the
    # process was never accepted, so its sender sent it again: it must have
    # been accepted under another id, with the same sender, cid and recipient.
    accepted_as = set(led.by_sid.values())
    resent = [sid for sid in unaccounted if led.recv_info.get(sid) in accepted_as]
    unaccounted = [sid for sid in unaccounted if led.recv_info.get(sid) not in accepted_as]
    dups = sum(n - 1 for n in led.received.values())
    print("  kills %d, accepted %d, delivered (distinct) %d, lost %d, raw duplicate pushes %d "
          "(retry %d, after restart %d), replayed after confirmed ack %d, "
          "(sender, cid) with two ids %d, pushed before a commit the kill prevented %d, "
          "refused sends %s, receipts %d, server RSS %d KB"
          % (kills, len(led.by_sid), len(set(led.received)), len(missing), dups,
             led.dup_retry, led.dup_restart, len(led.replayed), len(led.sid_conflicts),
             len(resent), led.errors or "none", len(led.receipts), rss))
    eq(kills, rounds, "kills")
    check(len(led.by_sid) >= 500, "too little load to mean anything: %d accepted"
          % len(led.by_sid))
    eq(missing[:10], [], "accepted but never delivered (first 10 of %d)" % len(missing))
    eq(wrong[:10], [], "pushed with another sender, cid or recipient than accepted")
    eq(unaccounted[:10], [], "pushed but never accepted to its sender")
    eq(led.sid_conflicts[:5], [], "a resend with the same cid got a new server id")
    eq(led.replayed[:5], [], "pushed again after a restart although its ack was confirmed")

    # Everything was acked in the final run: nothing is owed to recipients.
    for r in RECIPIENTS:
        tok = srv.token(r)
        owed = fetch_all(srv, tok)
        if owed:  # acks still in flight when the tasks stopped
            ack_http(srv, tok, [m["id"] for m in owed])
        eq(fetch_all(srv, tok), [], "owed to %s after acking all" % r)
    # REST senders hold their receipts offline; each refers to an accepted id.
    for s in SENDERS_HTTP:
        recs = fetch_all(srv, srv.token(s))
        for d in recs:
            check(d["type"] == "delivered" and receipt_refs(d),
                  "a receipt of %s with refs: %r" % (s, d))
            for r in receipt_refs(d):
                check(r["ref"] in led.by_sid,
                      "receipt of %s refers to an unknown message: %r" % (s, d))
                eq(led.by_sid[r["ref"]][0], s, "receipt owner")


async def kill9(srv):
    srv.kill9()


async def sigterm(srv):
    """A clean stop while the load runs; the clients go on meanwhile, so
    the server drains what it took (the HTTP senders' answers among it)."""
    srv.proc.send_signal(signal.SIGTERM)
    await await_until(lambda: srv.proc.poll() is not None, 40, "vartalapd to exit on SIGTERM")
    srv.log.close()
    eq(srv.proc.returncode, 0, "exit status after SIGTERM")


async def test_kill9_under_load():
    await under_load(20, kill9)


async def test_kill9_under_load_ack_wait():
    """Messages pushed before their commit (--ack-wait): a kill loses nothing
    accepted, and a message it cut off is accepted under another id."""
    await under_load(10, kill9, "--ack-wait", "50")


async def test_sigterm_under_load():
    await under_load(6, sigterm)


async def test_kill9_under_load_inline_writer():
    await under_load(6, kill9, "--lmdb-writer", "inline")


# ----------------------------------------------------------------- full LMDB map

def fill(srv, sender, to, prefix, size, limit=5000):
    """POST until refused 20 times in a row (a refusal makes the oldest
    (sender, client id) pairs give way, so a few more may fit until none are
    left); returns (accepted envelopes, the last refusal). It sends as fast
    as it can from one user: the servers it fills run with --rate 0."""
    tok = srv.token(sender)
    out = []
    refused = 0
    for i in range(limit):
        st, r = send_http(srv, tok, to, "%s%d" % (prefix, i), "x" * size, expect=None)
        if st != 200:
            refused += 1
            if refused == 20:
                return out, (st, r)
            continue
        refused = 0
        check(r.get("type") == "accepted", "200 without accepted: %r" % (r,))
        out.append(r)
    raise TestFailure("storage never filled after %d sends" % limit)


async def known(srv, user):
    """Register @user's default device, as any client that connected once."""
    c = await connect(srv, user)
    await c.close()
    fetch(srv, srv.token(user))


async def test_map_full_refuses_then_recovers():
    # --lmdb-map-size is in MB, at least 1.
    srv = server("--lmdb-map-size", MAP_MB, "--ack-timeout", "30000", "--rate", "0")
    for u in ("alice", "bob", "carol"):
        await known(srv, u)
    carol = srv.token("carol")
    early = [send_http(srv, carol, "alice", "early%d" % i, "before full %d" % i)[1]
             for i in range(5)]
    t0 = time.monotonic()
    big, (st, err) = fill(srv, "carol", "bob", "big", 3000)
    eq(st, 507, "status when the map is full")
    eq(err.get("code"), "storage_full", "error code when the map is full")
    small, (st, err) = fill(srv, "carol", "bob", "small", 100)
    eq((st, err.get("code")), (507, "storage_full"), "small messages once full")
    tiny, (st, err) = fill(srv, "carol", "bob", "tiny", 1)
    eq((st, err.get("code")), (507, "storage_full"), "tiny messages once full")
    print("  accepted %d x 3000 B, %d x 100 B and %d x 1 B into a %s MB map, then 507 "
          "storage_full" % (len(big), len(small), len(tiny), MAP_MB))
    # Each refused send failed a batch: the lines saying so come one a second at most,
    # and no line comes per refused request.
    with open(srv.log_path, "rb") as f:
        log = f.read()
    lines = log.count(b"storage batch of")
    check(lines <= time.monotonic() - t0 + 2, "%d lines of failed batches in %.1f s"
          % (lines, time.monotonic() - t0))
    eq(log.count(b"status=507"), 0, "log lines for single refused requests")
    st, h = http_request(srv, "GET", "/healthz")
    print("  /healthz while full: %s %s" % (st, h))
    eq(st, 503, "/healthz while the last batch failed for lack of space")

    # Online recipient: a new message is refused too (always: disk first).
    alice = await connect(srv, "alice")
    pushed = [await alice.expect_type("message", timeout=5) for _ in range(5)]
    eq([m["id"] for m in pushed], [a["id"] for a in early], "earlier messages pushed while full")
    st, r = send_http(srv, carol, "alice", "while-full", "refused", expect=None)
    eq((st, r.get("code")), (507, "storage_full"), "send to an online recipient while full")
    # Over a WebSocket to alice, who keeps up, a message is held in memory and
    # journaled: one entry, which may still fit where a stored message does not.
    # Whatever was accepted reaches her; then the store refuses here too.
    ws = await connect(srv, "carol")
    held = []
    for i in range(200):
        await ws.message("alice", "ws-full%d" % i, "x" * 3000)
        e = await ws.expect(lambda e, i=i: e.get("ref") == "ws-full%d" % i, 5, "an answer")
        if e["type"] != "accepted":
            break
        held.append(e["id"])
        await alice.expect_type("message", id=e["id"], timeout=5)
    eq((e["type"], e.get("code")), ("error", "storage_full"), "WebSocket send while full")
    await alice.quiet(0.3, lambda e: e.get("type") == "message", "a push of a refused message")
    print("  %d held messages journaled once the store refused stored ones" % len(held))

    # Acks are taken while full (an ack frees space).
    r = ack_http(srv, srv.token("alice"), [m["id"] for m in pushed])
    eq(r["acked"], [m["id"] for m in pushed], "acks while full")

    # Never a false accepted: every accepted message is still there after kill -9.
    srv.kill9()
    alice.abort()
    ws.abort()
    srv.start()
    btok = srv.token("bob")
    listed = fetch_all(srv, btok)
    eq([m["id"] for m in listed], [a["id"] for a in big + small + tiny],
       "bob's messages after kill -9")
    eq([m["id"] for m in fetch_all(srv, srv.token("alice"))], held,
       "alice's held messages, never acked, after kill -9")

    # Drain bob over REST; then sends are accepted again.
    for i in range(0, len(listed), 100):
        r = ack_http(srv, btok, [m["id"] for m in listed[i:i + 100]])
        eq(r["unknown"], [], "ack while draining")
    eq(fetch_all(srv, btok), [], "bob's listing after the drain")
    st, r = send_http(srv, carol, "bob", "after-drain", "x" * 3000)
    again, (st, _) = fill(srv, "carol", "bob", "again", 3000)
    print("  after the drain: %d x 3000 B accepted again" % (len(again) + 1))
    check(len(again) >= len(big) // 2, "space after the drain: %d, before %d"
          % (len(again), len(big)))


async def test_map_full_acks_not_refused_with_sends():
    """Acks free space, so a full store must take them, also when refused
    sends land in the same loop turn (one storage batch)."""
    srv = server("--lmdb-map-size", MAP_MB, "--ack-timeout", "30000", "--rate", "0")
    for u in ("bob", "carol"):
        await known(srv, u)
    fill(srv, "carol", "bob", "big", 3000)
    fill(srv, "carol", "bob", "small", 100)
    bob = await connect(srv, "bob")
    pushed = [await bob.expect_type("message", timeout=5) for _ in range(32)]
    # Each ack goes in one write with a send that the full store refuses,
    # so both are read in one loop turn and land in one storage batch.
    for i, m in enumerate(pushed):
        frames = [json.dumps({"v": 1, "type": "message", "id": "h%d" % i, "to": "carol",
                              "body": "x" * 3000}),
                  json.dumps({"v": 1, "type": "ack", "ids": [m["id"]]})]
        bob.ws.transport.write(b"".join(ws_frame(f) for f in frames))
        await bob.expect(lambda e, i=i: e.get("ref") == "h%d" % i, 5, "an answer to h%d" % i)
    evs = await bob.drain(0.5)
    errs = list({e["ref"]: e for e in evs if e.get("type") == "error" and e.get("ref") in
                 {m["id"] for m in pushed}}.values())
    print("  %d of %d acks refused while refused sends shared their batches: %s"
          % (len(errs), len(pushed), sorted({e.get("code") for e in errs})))
    eq(len(errs), 0, "acks refused while the store is full (codes %s)"
       % sorted({e.get("code") for e in errs}))
    left = {m["id"] for m in fetch_all(srv, srv.token("bob"))}
    eq(left & {m["id"] for m in pushed}, set(), "acked messages still listed")


async def test_map_full_receipts_not_dropped():
    """An ack taken while the store is full frees more than its receipt
    needs; the sender must still get the receipt."""
    srv = server("--lmdb-map-size", MAP_MB, "--ack-timeout", "30000", "--rate", "0")
    for u in ("alice", "bob", "carol"):
        await known(srv, u)
    carol = srv.token("carol")
    early = [send_http(srv, carol, "alice", "early%d" % i, "y" * 3000)[1] for i in range(3)]
    fill(srv, "carol", "bob", "big", 3000)
    fill(srv, "carol", "bob", "small", 100)
    r = ack_http(srv, srv.token("alice"), [a["id"] for a in early])
    eq(len(r["acked"]), 3, "acks while full")
    refs = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(refs) < 3:
        refs = all_refs(fetch_all(srv, carol))
        await asyncio.sleep(0.1)
    print("  receipt refs for 3 acks taken while full: %d" % len(refs))
    eq(sorted(r["ref"] for r in refs), sorted(a["id"] for a in early),
       "receipts of acks taken while the store is full")


async def chatter(srv, n, tag):
    """alice sends bob @n messages over WebSocket, at most 250 not yet
    answered or not yet taken by bob, while bob takes them, acking 16 at a
    time, and alice acks her receipts; every one is accepted, each reaches
    bob once. Returns the (client id, server id) pairs, in order."""
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    got, answers = [], {}

    async def take():
        while len(got) < n:
            ev = json.loads(await asyncio.wait_for(bob.ws.recv(), 10))
            if ev.get("type") == "message":
                got.append(ev["id"])
                if len(got) % 16 == 0 or len(got) == n:   # a receipt for every 16
                    await bob.ack(*got[-16:])

    async def hear():
        while len(answers) < n:
            ev = json.loads(await asyncio.wait_for(alice.ws.recv(), 10))
            if ev.get("type") == "delivered":
                await alice.ack(ev["id"])   # a receipt left unacked would fill the map
            elif "ref" in ev:
                eq(ev["type"], "accepted", "answer to %s: %r" % (ev["ref"], ev))
                answers[ev["ref"]] = ev["id"]

    tasks = [asyncio.ensure_future(take()), asyncio.ensure_future(hear())]
    # client ids of some 60 bytes: a pair takes about 100 in the store
    cids = ["%s-%s-%d" % (tag, "p" * 48, i) for i in range(n)]
    for i, cid in enumerate(cids):
        # 250 in flight, counted to bob: a faster server must not pile up
        # what he has not taken yet (his inbox cap would refuse it)
        while i - min(len(answers), len(got)) >= 250:
            await asyncio.sleep(0.001)
            for t in tasks:
                if t.done():
                    t.result()   # raises what stopped a reader
        await alice.message("bob", cid, "x" * 40)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    pairs = [(cid, answers[cid]) for cid in cids]
    eq(got, [sid for _, sid in pairs], "bob's messages, once each, in order")
    await alice.close()
    await bob.close()
    return pairs


async def test_map_full_of_dedup_pairs_still_takes_messages():
    """Every message leaves its (sender, client id) pair for the dedup
    window (a week), also once acked: in a small map they would fill it and
    have every later message refused for that week. The oldest pairs make
    room instead, in both modes: all messages are taken, a recent re-send is
    still recognised, and the server says it forgot pairs early."""
    for mode in ("always", "offline"):
        srv = server("--lmdb-map-size", MAP_MB, "--durability", mode, "--rate", "0")
        pairs = await chatter(srv, 40000, mode)
        alice = await connect(srv, "alice")
        bob = await connect(srv, "bob")
        for cid, sid in pairs[-3:]:
            await alice.message("bob", cid, "again")
            ev = await alice.expect(lambda e, c=cid: e.get("ref") == c, 5, "answer to " + cid)
            eq((ev["type"], ev.get("id")), ("accepted", sid), "a recent re-send's answer")
        await bob.quiet(0.5, lambda e: e.get("type") == "message", "a re-send delivered again")
        check("forgot" in srv.log_tail(200), "no warning that pairs were forgotten:\n"
              + srv.log_tail(20))
        kept = metric(srv, "vartalap_dedup_pairs")
        forgotten = metric(srv, "vartalap_dedup_pairs_forgotten_total")
        print("  mode %s: %d pairs kept, %d forgotten early" % (mode, kept, forgotten))
        check(0 < kept < 40000 and forgotten > 0, "pairs kept %d, forgotten %d" % (kept, forgotten))
        check(kept + forgotten >= 40000, "every pair kept or counted as forgotten")
        st, h = http_request(srv, "GET", "/healthz")
        eq(st, 200, "/healthz after the map filled with pairs")
        print("  mode %s: 40000 messages through a %s MB map" % (mode, MAP_MB))
        await alice.close()
        await bob.close()
        srv.kill()


async def test_map_full_new_recipient_can_drain():
    """The store filled up with messages for a user who never connected. He
    must be able to get them (and ack them, freeing the space)."""
    srv = server("--lmdb-map-size", MAP_MB, "--ack-timeout", "30000", "--rate", "0")
    big, _ = fill(srv, "carol", "bob", "big", 3000)
    small, _ = fill(srv, "carol", "bob", "small", 100)
    owed = [a["id"] for a in big + small]
    st, r = http_request(srv, "GET", "/v1/messages?limit=10", srv.token("bob"))
    print("  GET /v1/messages of a first-time user while full: %s %s"
          % (st, r.get("code") if isinstance(r, dict) else r))
    bob = await connect(srv, "bob")
    try:
        m = await bob.expect_type("message", timeout=3)
    except TestFailure:
        raise TestFailure("a first-time user connecting while the store is full gets none of "
                          "his %d stored messages (REST listing: %s)" % (len(owed), st))
    eq(m["id"], owed[0], "first push")
    eq(st, 200, "GET /v1/messages of a first-time user while full")


# ----------------------------------------------------------------- full disk

def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode == 0, r.stdout.decode(errors="replace").strip()


async def test_disk_full_tmpfs():
    mnt = os.path.join("/tmp", "vt-e2e-disk-%d" % os.getpid())
    ok, why = (False, "not root") if os.geteuid() != 0 else mount_tmpfs(mnt, "2m")
    if not ok:
        print("  SKIP: cannot mount a small tmpfs here (%s); the full-disk case is not run" % why)
        return
    srv = None
    try:
        data = os.path.join(mnt, "data")
        # The map (64 MB) is far larger than the disk (2 MB): the disk fills first.
        srv = Server("--lmdb-map-size", "64", "--ack-timeout", "30000", "--rate", "0",
                     data_dir=data).start()
        for u in ("bob", "carol"):
            await known(srv, u)
        big, (st, err) = fill(srv, "carol", "bob", "big", 3000, limit=2000)
        st2 = os.statvfs(mnt)
        print("  disk: %d x 3000 B accepted, then %s %s; free %d KB"
              % (len(big), st, err.get("code"), st2.f_bavail * st2.f_frsize // 1024))
        eq((st, err.get("code")), (507, "storage_full"), "answer when the disk is full")
        check(srv.alive(), "server alive after ENOSPC")
        # Accepted means on disk: all there after kill -9 and a restart on
        # the same (still full) disk.
        srv.kill9()
        srv.start()
        btok = srv.token("bob")
        listed = fetch_all(srv, btok)
        eq([m["id"] for m in listed], [a["id"] for a in big], "bob's messages after kill -9")
        for i in range(0, len(listed), 100):
            eq(ack_http(srv, btok, [m["id"] for m in listed[i:i + 100]])["unknown"], [],
               "ack on a full disk")
        again, _ = fill(srv, "carol", "bob", "again", 3000, limit=2000)
        print("  after the drain: %d x 3000 B accepted again" % len(again))
        check(len(again) >= len(big) // 2, "space after the drain: %d, before %d"
              % (len(again), len(big)))
    finally:
        if srv is not None:
            srv.kill()
        subprocess.run(["umount", "-l", mnt], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(mnt, ignore_errors=True)


if __name__ == "__main__":
    run([test_kill9_under_load, test_kill9_under_load_ack_wait, test_sigterm_under_load,
         test_kill9_under_load_inline_writer,
         test_map_full_refuses_then_recovers,
         test_map_full_acks_not_refused_with_sends, test_map_full_receipts_not_dropped,
         test_map_full_new_recipient_can_drain,
         test_map_full_of_dedup_pairs_still_takes_messages,
         test_disk_full_tmpfs])
