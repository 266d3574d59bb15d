#!/usr/bin/python3
"""Mode always over LMDB: a group post held for several devices at once is
one journal entry, the record and the devices whose copies are not released
yet. These tests post to a group of many members with several devices each,
with ids of every length and character a user or device id may have, and
release the copies every way there is: WebSocket acks, partial, repeated,
of ids never sent; members dropping part way (their copies written), whose
stored copies are then acked over REST or a WebSocket. kill -9 comes at a
random moment; after the restart each device has listed, once, every post
it did not ack, and none whose ack had long committed."""

import asyncio
import os
import random
import re
import time

from harness import (check, eq, connect, fetch, fetch_all, ack_http, metric, run, server)
from test_journal import team

SEED = int(os.environ.get("VT_JOURNAL_SEED", str(int(time.time()) % 100000)))
CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-"


def odd_id(rng, n):
    """@n bytes of the id alphabet; not starting with "-", which the token
    command the harness runs would read as an option."""
    return rng.choice(CHARS[:62]) + "".join(rng.choice(CHARS) for _ in range(n - 1))


def log_text(srv):
    with open(srv.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def barrier(srv):
    fetch(srv, srv.token("zz-barrier"))


def posts_listed(srv, user, device, sender):
    """The ids of @sender's messages stored for @user's @device, every page."""
    return [m["id"] for m in fetch_all(srv, srv.token(user), device=device)
            if m.get("type") == "message" and m.get("from") == sender]


class Dev:
    """One member device: what it was pushed, acked for good, or acked late."""

    def __init__(self, user, device):
        self.user, self.device = user, device
        self.c = None
        self.n = 0
        self.pushed = []
        self.settled = set()  # acks committed before the kill for sure
        self.unsettled = set()  # acks that may or may not have committed

    async def up(self, srv):
        self.n += 1
        self.c = await connect(srv, self.user, device=self.device,
                               name="%s/%s#%d" % (self.user[:8], self.device[:8], self.n))

    async def take(self, sender):
        for ev in await self.c.drain(0):
            if ev.get("type") == "message" and ev.get("from") == sender:
                self.pushed.append(ev["id"])
            elif ev.get("type") in ("group", "delivered"):
                await self.c.ack(ev["id"])


async def make_group(srv, rng, nusers, ndevs):
    """A sender (two devices) and a group of @nusers members with @ndevs
    devices each; ids of 1 to 64 bytes of every allowed character."""
    sender = odd_id(rng, 64)
    s1 = await connect(srv, sender, device="s1", name="sender/s1")
    s2 = await connect(srv, sender, device=odd_id(rng, 64), name="sender/s2")
    users = [odd_id(rng, rng.choice([1, 2, 63, 64, rng.randint(1, 64)])) for _ in range(nusers)]
    users = sorted(set(users) - {sender})
    devs = []
    for u in users:
        names = set()
        while len(names) < ndevs:
            names.add(odd_id(rng, rng.choice([1, 64, rng.randint(1, 64)])))
        for d in sorted(names):
            devs.append(Dev(u, d))
    for d in devs:
        await d.up(srv)
    barrier(srv)
    group = "g:" + odd_id(rng, 64)
    await s1.send({"v": 1, "type": "group_create", "id": "g-1", "to": group,
                   "body": {"name": "T", "members": users}})
    await s1.expect_type("accepted", ref="g-1")
    for d in devs:
        await d.c.ack((await d.c.expect_type("group"))["id"])
    for d in devs:
        await d.take(sender)
    barrier(srv)
    return sender, s1, s2, group, devs


async def test_group_posts_kill9_at_random_moments():
    """Four lives of the server, each ended by kill -9 at a random moment of
    a round: the sender posts bursts to a group of members with three
    devices each, devices ack parts of what they are pushed (some twice,
    some ids never sent), some drop and ack their stored copies over REST,
    or over a WebSocket once back. After each restart, each device's
    listing is every post it did not ack, once each; an ack that committed
    (REST answered, or a WebSocket ack before a barrier well before the
    kill) does not bring its post back."""
    rng = random.Random(SEED)
    print("  seed %d (VT_JOURNAL_SEED)" % SEED)
    srv = server("--ack-timeout", "20000")
    sender, s1, s2, group_to, devs = await make_group(srv, rng, 10, 3)
    accepted = []  # ids answered "accepted", or found listed after a kill
    cid_n = [0]

    async def post(n):
        cids = []
        for _ in range(n):
            cid_n[0] += 1
            cid = "p-%d" % cid_n[0]
            await s1.message(group_to, cid, {"n": cid_n[0]})
            cids.append(cid)
        return cids

    for life in range(4):
        kill_round = rng.randint(1, 4)
        for rnd in range(kill_round + 1):
            last = rnd == kill_round
            cids = await post(rng.randint(3, 12))
            if not last:
                for cid in cids:
                    ev = await s1.expect(lambda x, c=cid: x.get("ref") == c, 5, "answer " + cid)
                    eq(ev.get("type"), "accepted", "answer to " + cid)
                    accepted.append(ev["id"])
            await asyncio.sleep(rng.random() * 0.05)
            for d in devs:
                if d.c is None:
                    if rng.random() < 0.5:
                        await d.up(srv)
                    continue
                await d.take(sender)
                new = [i for i in d.pushed if i not in d.settled and i not in d.unsettled]
                r = rng.random()
                if r < 0.1 and not last:
                    await d.c.close()  # its held copies are written
                    d.c = None
                    continue
                if new and r < 0.8:
                    part = rng.sample(new, rng.randint(1, len(new)))
                    junk = [str(int(max(new, key=int)) + rng.randint(1, 10 ** 6))]
                    if rng.random() < 0.3 and not last:
                        ack_http(srv, srv.token(d.user), part + junk, device=d.device)
                        d.settled.update(part)
                    else:
                        await d.c.ack(*(part + junk + part[:1]))
                        d.unsettled.update(part)
            # stored copies of devices offline: acked over REST at times
            for d in devs:
                if d.c is None and rng.random() < 0.3 and not last:
                    owed = posts_listed(srv, d.user, d.device, sender)
                    part = [i for i in owed if rng.random() < 0.5]
                    if part:
                        ack_http(srv, srv.token(d.user), part, device=d.device)
                        d.settled.update(part)
            if not last:
                await asyncio.sleep(0.15)  # the group receipts gather 50 ms
                barrier(srv)
                for d in devs:
                    d.settled |= d.unsettled
                    d.unsettled = set()
        # kill -9 in the middle of the last round's posts and acks
        await asyncio.sleep(rng.random() * 0.02)
        before = metric(srv, "vartalap_journal_open") if rng.random() < 0.3 else None
        srv.kill9()
        for c in [s1, s2] + [d.c for d in devs if d.c is not None]:
            c.abort()
        for d in devs:
            d.c = None
        srv.start()
        check("replay failed" not in log_text(srv), "replay failed: " + log_text(srv)[-2000:])
        check("damaged" not in log_text(srv), "damaged entries: " + log_text(srv)[-2000:])
        eq(metric(srv, "vartalap_journal_open"), 0, "life %d: entries open after start" % life)
        # posts whose answer was lost in the kill may exist: learn them
        seen_all = set()
        for d in devs:
            got = posts_listed(srv, d.user, d.device, sender)
            eq(len(got), len(set(got)), "life %d: %s/%s lists a post twice"
               % (life, d.user, d.device))
            seen_all |= set(got)
            owed = set(accepted) - d.settled - d.unsettled
            missing = sorted(owed - set(got), key=int)
            eq(missing, [], "life %d: %s/%s lost posts it did not ack"
               % (life, d.user, d.device))
            back = sorted(set(got) & d.settled, key=int)
            eq(back, [], "life %d: %s/%s listed posts whose ack committed"
               % (life, d.user, d.device))
            d.pushed = []
        for sid in seen_all:
            if sid not in accepted:
                accepted.append(sid)
        accepted.sort(key=int)
        # each device learns what it has: what it acked late and got back is owed again
        for d in devs:
            got = set(posts_listed(srv, d.user, d.device, sender))
            d.unsettled -= got
            d.settled |= d.unsettled
            d.unsettled = set()
            # what came back that was acked late, or posts not answered: owed now
            d.settled -= got
        m = re.search(r"journal: (\d+) held cop", log_text(srv))
        print("  life %d: %d accepted, %s replayed, gauge before %s"
              % (life, len(accepted), m.group(1) if m else 0, before))
        s1 = await connect(srv, sender, device="s1", name="sender/s1#%d" % life)
        s2 = await connect(srv, sender, device="s2x", name="sender/s2#%d" % life)
        for d in devs:
            await d.up(srv)
        barrier(srv)
        # pushes after the start: exactly what is listed, each once
        await asyncio.sleep(0.3)
        for d in devs:
            evs = [e["id"] for e in await d.c.drain(0.05)
                   if e.get("type") == "message" and e.get("from") == sender]
            got = posts_listed(srv, d.user, d.device, sender)
            eq(len(evs), len(set(evs)), "life %d: %s/%s pushed a post twice"
               % (life, d.user, d.device))
            check(set(evs) <= set(got), "life %d: %s/%s pushed %s not listed"
                  % (life, d.user, d.device, sorted(set(evs) - set(got))))
            d.pushed = list(evs)
            # everything listed is owed; it stays unacked for now
    srv.kill()


async def fill_with_posts(srv, rng, how):
    """A store filled by group posts held for twenty members with two
    devices each, ids of up to 64 bytes: posts of 200 bytes until refused,
    then smaller ones. Returns (sender, its connections, devices, ids)."""
    sender, s1, s2, group, devs = await make_group(srv, rng, 20, 2)
    ids = []
    for size in (200, 20):
        while True:
            cid = "f-%d-%d" % (size, len(ids))
            await s1.message(group, cid, "y" * size)
            ev = await s1.expect(lambda x: x.get("ref") == cid, 5, "the answer to " + cid)
            if ev.get("type") != "accepted":
                eq(ev.get("code"), "storage_full", "the answer once the store is full")
                break
            ids.append(ev["id"])
            check(len(ids) < 2000, "the store never filled")
    check(len(ids) > 10, "few posts fit: %d" % len(ids))
    for d in devs:
        for sid in ids[:32]:  # the push window
            await d.c.expect(lambda e, i=sid: e.get("type") == "message" and e.get("id") == i,
                             5, "push of " + sid)
    eq(metric(srv, "vartalap_journal_open"), len(ids) * (len(devs) + 1),
       "copies held (the sender's other device's too)")
    return sender, s1, s2, devs, ids


async def test_store_full_of_held_posts_replays_them_all():
    """Held group posts fill the store to the last post it takes; kill -9.
    The restart replays every copy into the full store (the journal keeps
    the room that takes) and each device lists every post once."""
    rng = random.Random(SEED + 1)
    srv = server("--ack-timeout", "20000", "--lmdb-map-size", "8")
    sender, s1, s2, devs, ids = await fill_with_posts(srv, rng, "kill")
    srv.kill9()
    for c in [s1, s2] + [d.c for d in devs]:
        c.abort()
    srv.start()
    check("replay failed" not in log_text(srv), "replay failed: " + log_text(srv)[-2000:])
    eq(metric(srv, "vartalap_journal_open"), 0, "entries open after the restart")
    check("%d held copies" % (len(ids) * (len(devs) + 1)) in log_text(srv),
          "every copy replayed: " + log_text(srv)[-1500:])
    for d in devs:
        eq(posts_listed(srv, d.user, d.device, sender), ids,
           "%s/%s's listing after the restart" % (d.user, d.device))


async def test_store_full_of_held_posts_writes_them_as_devices_go():
    """Held group posts fill the store; then every member's device drops,
    half acking part of what it has first. Each copy not acked is written to
    its device's inbox at once, none refused; after kill -9 the listings are
    the same."""
    rng = random.Random(SEED + 2)
    srv = server("--ack-timeout", "20000", "--lmdb-map-size", "8")
    sender, s1, s2, devs, ids = await fill_with_posts(srv, rng, "drop")
    acked = {}
    for d in devs:
        acked[d] = set(rng.sample(ids, rng.randint(0, len(ids)))) if rng.random() < 0.5 else set()
        if acked[d]:
            await d.c.ack(*sorted(acked[d], key=int))
        await d.c.close()
    await asyncio.sleep(0.2)
    await s2.close()
    await s1.close()  # the receipts of the acks, held for it, are written too
    await asyncio.sleep(0.3)
    barrier(srv)
    for i in range(30):
        if metric(srv, "vartalap_journal_open") == 0:
            break
        await asyncio.sleep(0.1)
    eq(metric(srv, "vartalap_journal_open"), 0, "entries open once every device went; log: "
       + "\n".join(l for l in log_text(srv).splitlines() if "connected" not in l and "ws: open" not in l)[-3000:])
    check("not written" not in log_text(srv), "a copy refused on a full store: "
          + log_text(srv)[-1500:])
    for d in devs:
        eq(posts_listed(srv, d.user, d.device, sender),
           [i for i in ids if i not in acked[d]], "%s/%s's listing" % (d.user, d.device))
    srv.kill9()
    srv.start()
    for d in devs:
        eq(posts_listed(srv, d.user, d.device, sender),
           [i for i in ids if i not in acked[d]],
           "%s/%s's listing after kill -9" % (d.user, d.device))


async def accepted_until_full(srv, c, to, size):
    """@c sends messages of @size bytes to @to until the store refuses one."""
    n = 0
    while True:
        cid = "c-%d" % n
        await c.message(to, cid, "x" * size)
        ev = await c.expect(lambda x: x.get("ref") == cid, 5, "the answer to " + cid)
        if ev.get("type") != "accepted":
            eq(ev.get("code"), "storage_full", "the answer once the store is full")
            return n
        n += 1
        check(n < 1000, "the store never filled")


async def test_held_posts_keep_room_in_proportion():
    """A 4 MiB store takes about ninety held 20 KB messages to one device
    (each a journal entry with the record). A post of the same size to a
    group of two members, each keeping up, holds one entry with the record
    and two inbox keys: its replay writes the record once and two small
    deliveries, so the room kept for it is not fifty times the record, and
    at least a third as many such posts fit."""
    counts = {}
    for to in ("bob", "g:team"):
        srv = server("--ack-timeout", "20000", "--lmdb-map-size", "4")
        alice, bob, carol = await team(srv)
        counts[to] = await accepted_until_full(srv, alice, to, 20000)
        srv.kill()
    print("  20 KB messages held: %d to one device, %d to a group of two"
          % (counts["bob"], counts["g:team"]))
    check(counts["bob"] > 30, "few messages fit: %d" % counts["bob"])
    check(counts["g:team"] * 3 >= counts["bob"],
          "held group posts fill the store with room kept for their replay: "
          "%d posts fit, %d messages to one device" % (counts["g:team"], counts["bob"]))


if __name__ == "__main__":
    run([test_group_posts_kill9_at_random_moments,
         test_store_full_of_held_posts_replays_them_all,
         test_store_full_of_held_posts_writes_them_as_devices_go,
         test_held_posts_keep_room_in_proportion], total_timeout=300.0)
