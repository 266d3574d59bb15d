#!/usr/bin/python3
"""Mode always over LMDB: the journal's two trees. A copy held for one
device is an entry of "journal" under (id, inbox key) holding the record; a
message held for several devices is its record once in "journal" under the
bare id and, in "journal_posts" under the same id, the inbox keys of the
devices not released yet. These tests damage the trees between a kill -9
and the restart (with mdb_dump and mdb_load), interleave entries of both
kinds for one user's devices and release them in odd orders, fill small
stores with the largest bodies to groups of every size, and restart a
journal left in mode always in mode offline. Each time every copy that can
be read is delivered once, what cannot is logged as an error, and the
sender's receipts of committed acks are not lost."""

import asyncio
import os
import random
import re
import shutil
import subprocess
import time

from harness import (all_refs, check, connect, eq, fetch_all, ack_http, metric, run)
from test_journal import always_server, barrier, listed, log_text, send_ok, team

SEED = int(os.environ.get("VT_JOURNAL_SEED", str(int(time.time()) % 100000)))
HAVE_MDB_TOOLS = shutil.which("mdb_dump") and shutil.which("mdb_load")


def be(i):
    return int(i).to_bytes(8, "big")


def ik(user, device=""):
    """The inbox key of (@user, @device): u16 length + user + u16 length + device."""
    u, d = user.encode(), device.encode()
    return len(u).to_bytes(2, "big") + u + len(d).to_bytes(2, "big") + d


def dump(path):
    """Every named tree of the LMDB environment at @path: {name: (header, {key: value})}."""
    out = subprocess.run(["mdb_dump", "-a", path], check=True, capture_output=True,
                         text=True).stdout
    dbs = {}
    for sec in out.split("DATA=END\n"):
        if not sec.strip():
            continue
        head, body = sec.split("HEADER=END\n")
        name = [l[len("database="):] for l in head.splitlines() if l.startswith("database=")][0]
        head = "".join(l + "\n" for l in head.splitlines() if not l.startswith("db_pagesize="))
        lines = [bytes.fromhex(l.strip()) for l in body.splitlines()]
        dbs[name] = (head, dict(zip(lines[0::2], lines[1::2])))
    return dbs


def load(path, dbs):
    """A new environment at @path holding exactly @dbs (as dump() returns)."""
    shutil.rmtree(path)
    os.makedirs(path)
    for name, (head, kv) in dbs.items():
        txt = head + "HEADER=END\n" + "".join(
            " %s\n %s\n" % (k.hex(), v.hex()) for k, v in sorted(kv.items())) + "DATA=END\n"
        subprocess.run(["mdb_load", "-s", name, path], input=txt, text=True, check=True)


def messages(srv, user, device=None):
    return [m["id"] for m in fetch_all(srv, srv.token(user), device=device)
            if m.get("type") == "message"]


def errors(srv):
    return [l for l in log_text(srv).splitlines() if " error " in l]


async def test_damaged_entries_are_logged_and_the_rest_replayed():
    """Posts to g:team (bob and carol, one entry of two devices each) and a
    message to bob alone are left by kill -9; then the trees are damaged:
    a post's record is missing, another's is not a record, a third's
    record has no device list, a device list names bob twice, one is
    empty, one is cut short inside carol's key, one post has both its list
    and an entry of bob's copy alone, and an 8-byte key holds junk. The
    restart logs each as an error and delivers every copy still readable,
    once (bob's inbox count included), and a second restart replays none."""
    if not HAVE_MDB_TOOLS:
        print("  mdb_dump or mdb_load is not installed: skipped")
        return
    srv = always_server()
    alice, bob, carol = await team(srv)
    ids = {}
    for n in "ABCDEFG":
        ids[n] = (await send_ok(alice, "g:team", "p-" + n, "post " + n))["id"]
    ids["M"] = (await send_ok(alice, "bob", "m-1", "to bob"))["id"]
    eq(metric(srv, "vartalap_journal_open"), 15, "copies held")
    srv.kill9()
    for c in (alice, bob, carol):
        c.abort()

    path = os.path.join(srv.data_dir, "lmdb")
    dbs = dump(path)
    j, p = dbs["journal"][1], dbs["journal_posts"][1]
    for n in "ABCDEFG":
        eq(p.get(be(ids[n])), ik("bob") + ik("carol"), "the device list of post " + n)
        check(be(ids[n]) in j, "the record of post %s under its bare id" % n)
    check(be(ids["M"]) + ik("bob") in j, "the entry of bob's copy of M")
    del j[be(ids["A"])]
    j[be(ids["B"])] = b"\xff\x00not a record"
    del p[be(ids["C"])]
    p[be(ids["D"])] = ik("bob") + ik("bob") + ik("carol")
    p[be(ids["E"])] = b""
    p[be(ids["F"])] = ik("bob") + ik("carol")[:5]
    j[be(ids["G"]) + ik("bob")] = j[be(ids["G"])]
    j[be(int(ids["M"]) + 100)] = b"junk"
    load(path, dbs)

    srv.args += ["--inbox-cap", "5"]
    srv.start()
    errs = errors(srv)
    for what in ("without its record", "held for no device", "damaged device list",
                 "damaged entry of event"):
        check(any(what in l for l in errs), "an error '%s' logged: %s" % (what, errs))
    check(len(errs) >= 6, "an error for each damaged entry: %s" % errs)
    eq(metric(srv, "vartalap_journal_open"), 0, "entries open after the start")
    want = {"bob": [ids[n] for n in "DFGM"], "carol": [ids[n] for n in "DG"]}
    for user in ("bob", "carol"):
        eq(messages(srv, user), want[user], "%s's listing after the restart" % user)

    # bob's inbox counts each copy once: four stored, one more fits under the cap of 5
    alice = await connect(srv, "alice", name="alice#2")
    for i, answer in enumerate(("accepted", "error")):
        await alice.message("bob", "x-%d" % i, "x")
        ev = await alice.expect(lambda e, c="x-%d" % i: e.get("ref") == c, 5, "answer")
        eq(ev.get("type"), answer, "message %d to bob's inbox of 4" % i)
    alice.abort()

    srv.kill9()
    srv.start()
    check("from the journal" not in log_text(srv), "replayed again: " + log_text(srv))
    eq(errors(srv), [], "errors at the second start")
    eq(messages(srv, "carol"), want["carol"], "carol's listing after a second restart")
    eq(len(messages(srv, "bob")), 5, "bob's listing after a second restart")
    srv.kill()


async def interleaved_round(rng, rnd):
    """One round of test_one_and_several_devices_interleaved (which see)."""
    srv = always_server()
    alice = await connect(srv, "alice", device="a1", name="alice")
    b1 = await connect(srv, "bob", device="b1", name="bob/b1")
    carol = await connect(srv, "carol", name="carol")
    barrier(srv)
    await alice.send({"v": 1, "type": "group_create", "id": "g-1", "to": "g:team",
                      "body": {"name": "T", "members": ["bob", "carol"]}})
    await alice.expect_type("accepted", ref="g-1")
    for c in (b1, carol):
        await c.ack((await c.expect_type("group"))["id"])
    barrier(srv)
    devs = {"b1": b1, "carol": carol}
    owner = {"b1": ("bob", "b1"), "b2": ("bob", "b2"), "carol": ("carol", None)}
    to = {"b1": [], "b2": [], "carol": []}
    n = 0
    for phase in (1, 2):
        if phase == 2:
            devs["b2"] = await connect(srv, "bob", device="b2", name="bob/b2")
            barrier(srv)
        for dest in rng.sample(["bob"] * 3 + ["g:team"] * 2, 5):
            n += 1
            sid = (await send_ok(alice, dest, "c-%d" % n, n))["id"]
            for d in ("b1", "b2") if phase == 2 else ("b1",):
                to[d].append(sid)
            if dest == "g:team":
                to["carol"].append(sid)
    await asyncio.sleep(0.1)
    for d, c in devs.items():
        got = [e["id"] for e in await c.drain(0.05) if e.get("type") == "message"]
        eq(got, to[d], "%d: pushed to %s" % (rnd, d))
    eq(metric(srv, "vartalap_journal_open"), sum(len(v) for v in to.values()),
       "%d: copies held" % rnd)

    settled = {d: set() for d in to}  # acks answered, or long before the kill
    late = {d: set() for d in to}  # acks right before the kill
    for d, c in devs.items():
        part = rng.sample(to[d], rng.randint(0, len(to[d])))
        if part and rng.random() < 0.3:
            ack_http(srv, srv.token(owner[d][0]), part, device=owner[d][1])
        elif part:
            await c.ack(*part)
        settled[d] |= set(part)
    await asyncio.sleep(0.15)  # a group's receipt gathers for 50 ms
    barrier(srv)
    # b1 goes: what it did not ack is written, and some of it acked over REST
    await b1.close()
    del devs["b1"]
    await asyncio.sleep(0.1)
    barrier(srv)
    owed = messages(srv, "bob", "b1")
    eq(owed, [i for i in to["b1"] if i not in settled["b1"]], "%d: b1's listing" % rnd)
    part = rng.sample(owed, rng.randint(0, len(owed)))
    if part:
        ack_http(srv, srv.token("bob"), part, device="b1")
        settled["b1"] |= set(part)
    for d, c in devs.items():
        left = [i for i in to[d] if i not in settled[d]]
        part = rng.sample(left, rng.randint(0, len(left)))
        if part:
            await c.ack(*part)
            late[d] |= set(part)
    await asyncio.sleep(rng.random() * 0.06)
    receipts = await alice.drain(0)
    srv.kill9()
    for c in [alice] + list(devs.values()):
        c.abort()

    srv.start()
    eq(errors(srv), [], "%d: errors at the start" % rnd)
    eq(metric(srv, "vartalap_journal_open"), 0, "%d: entries open after the start" % rnd)
    after = {}
    for d, (user, device) in owner.items():
        got = after[d] = messages(srv, user, device)
        eq(len(got), len(set(got)), "%d: %s lists a message twice" % (rnd, d))
        owed = set(to[d]) - settled[d]
        check(owed - late[d] <= set(got) <= owed,
              "%d: %s lists %s; owed %s, acked late %s" % (
                  rnd, d, got, sorted(owed, key=int), sorted(late[d], key=int)))
    alice = await connect(srv, "alice", device="a1", name="alice#2")
    await asyncio.sleep(0.2)
    receipts += await alice.drain(0.1)
    receipts += fetch_all(srv, srv.token("alice"), device="a1")
    seen = {(r["from"], r["device"] or "", r["ref"]) for r in all_refs(receipts)}
    for d, (user, device) in owner.items():
        acked = settled[d] | (late[d] - set(after[d]))
        lost = sorted((i for i in acked if (user, device or "", i) not in seen), key=int)
        eq(lost, [], "%d: alice's receipts of %s's acks" % (rnd, d))
    alice.abort()
    srv.kill()


async def test_one_and_several_devices_interleaved():
    """bob has one device (b1) while alice sends to him and to g:team
    (entries of b1's copy alone, and lists of b1 and carol), then a second
    (b2: lists of b1 and b2, or of three). The devices ack in random order,
    over a WebSocket or REST; b1 goes (what it did not ack is written) and
    acks part of it over REST; b2 and carol ack more and kill -9 follows at
    once. After the restart each device lists, once, what it did not ack
    (an ack right before the kill may or may not have committed), and alice
    has a receipt for every ack that committed."""
    rng = random.Random(SEED)
    print("  seed %d (VT_JOURNAL_SEED)" % SEED)
    for rnd in range(4):
        await interleaved_round(rng, rnd)


async def fill(c, to, size):
    """@c sends messages of @size bytes to @to until the store refuses one: their ids."""
    ids = []
    while True:
        cid = "c-%d" % len(ids)
        await c.message(to, cid, "x" * size)
        ev = await c.expect(lambda x: x.get("ref") == cid, 10, "the answer to " + cid)
        if ev.get("type") != "accepted":
            eq(ev.get("code"), "storage_full", "the answer once the store is full")
            return ids
        ids.append(ev["id"])
        check(len(ids) < 1000, "the store never filled")


async def test_largest_bodies_to_groups_fill_and_replay():
    """A 4 MiB store filled with 60,000-byte messages held for one device,
    then with posts of that size to groups of 2, 10 and 50 members who keep
    up: a group's held posts take about as many as one device's messages
    (the record is journaled once, not per member). After kill -9 every
    copy is replayed into the full store: each member lists every post."""
    counts = {}
    for nmem in (1, 2, 10, 50):
        srv = always_server("--lmdb-map-size", "4")
        alice = await connect(srv, "alice", name="alice")
        members = ["m%02d" % i for i in range(nmem)]
        cs = [await connect(srv, u, name=u) for u in members]
        barrier(srv)
        to = members[0]
        if nmem > 1:
            to = "g:big"
            await alice.send({"v": 1, "type": "group_create", "id": "g-1", "to": to,
                              "body": {"name": "T", "members": members}})
            await alice.expect_type("accepted", ref="g-1")
            for c in cs:
                await c.ack((await c.expect_type("group"))["id"])
            barrier(srv)
        ids = counts[nmem] = await fill(alice, to, 60000)
        check(metric(srv, "vartalap_journal_open") > 0, "%d members: nothing held" % nmem)
        srv.kill9()
        for c in [alice] + cs:
            c.abort()
        srv.start()
        eq(errors(srv), [], "%d members: errors at the start" % nmem)
        eq(metric(srv, "vartalap_journal_open"), 0, "%d members: entries open" % nmem)
        for u in members:
            eq(listed(srv, u), ids, "%d members: %s's listing after kill -9" % (nmem, u))
        srv.kill()
    print("  60 KB messages a 4 MiB store takes: %s" % ", ".join(
        "%d to %d member%s" % (len(v), k, "s" if k > 1 else "") for k, v in counts.items()))
    check(len(counts[1]) > 10, "few messages fit: %d" % len(counts[1]))
    for nmem in (2, 10, 50):
        check(len(counts[nmem]) * 2 >= len(counts[1]),
              "posts to %d members: %d fit, %d to one device"
              % (nmem, len(counts[nmem]), len(counts[1])))


async def test_journal_of_mode_always_replayed_in_mode_offline():
    """Posts to g:team, messages to carol and to bob's two devices are held
    in mode always and left by kill -9; the store restarts in mode offline.
    The journal is replayed all the same: each device lists what it was
    held, once."""
    srv = always_server()
    alice, bob, carol = await team(srv)
    b2 = await connect(srv, "bob", device="b2", name="bob/b2")
    barrier(srv)
    g = [(await send_ok(alice, "g:team", "g-%d" % i, i))["id"] for i in range(3)]
    d = [(await send_ok(alice, "carol", "d-%d" % i, i))["id"] for i in range(3)]
    e = [(await send_ok(alice, "bob", "e-%d" % i, i))["id"] for i in range(2)]
    eq(metric(srv, "vartalap_journal_open"), 3 * 3 + 3 + 2 * 2, "copies held")
    srv.kill9()
    for c in (alice, bob, carol, b2):
        c.abort()
    srv.args += ["--durability", "offline"]
    srv.start()
    check(re.search(r"journal: 16 held copies", log_text(srv)), "replay: " + log_text(srv))
    eq(listed(srv, "bob"), g + e, "bob's listing")
    eq(listed(srv, "bob", device="b2"), g + e, "bob/b2's listing")
    eq(listed(srv, "carol"), g + d, "carol's listing")
    srv.restart()
    eq(listed(srv, "carol"), g + d, "carol's listing after a second start")
    srv.kill()


if __name__ == "__main__":
    run([test_damaged_entries_are_logged_and_the_rest_replayed,
         test_one_and_several_devices_interleaved,
         test_largest_bodies_to_groups_fill_and_replay,
         test_journal_of_mode_always_replayed_in_mode_offline], total_timeout=240.0)
