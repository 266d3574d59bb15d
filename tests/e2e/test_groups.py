#!/usr/bin/python3
"""Groups: create, update and leave over WebSocket and REST, who may post,
admin rules, event order, offline members, the history rule (field case
B11), limits, REST reads, retried creates and quick succession."""

import asyncio

from harness import (all_refs, check, eq, is_server_id, connect, fetch, fetch_all, ack_http,
                     http_request, run, server)


def env(typ, cid, to, body=None):
    e = {"v": 1, "type": typ, "id": cid, "to": to}
    if body is not None:
        e["body"] = body
    return e


def post(srv, user, e):
    return http_request(srv, "POST", "/v1/send", srv.token(user), e)


def post_ok(srv, user, e):
    st, r = post(srv, user, e)
    if st != 200 or r.get("type") != "accepted":
        check(False, "POST %s %s by %s: %s %r" % (e["type"], e["id"], user, st, r))
    eq(r.get("ref"), e["id"], "accepted.ref")
    return r


async def ws_ok(c, e):
    await c.send(e)
    ev = await c.expect(lambda x: x.get("ref") == e["id"], 5, "answer to " + e["id"])
    check(ev.get("type") == "accepted", "%s %s: %r" % (e["type"], e["id"], ev))
    return ev


def group_info(srv, user, gid):
    return http_request(srv, "GET", "/v1/groups/" + gid, srv.token(user))


def strip(ev):
    return {k: v for k, v in ev.items() if not k.startswith("_")}


def is_group_ev(op=None, sid=None):
    return lambda e: (e.get("type") == "group" and (op is None or e["body"].get("op") == op)
                      and (sid is None or e.get("id") == sid))


async def test_create_update_leave():
    srv = server("--ack-timeout", "5000")
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    carol = await connect(srv, "carol")
    dave = await connect(srv, "dave")

    acc = await ws_ok(alice, env("group_create", "c-1", "g:team",
                                 {"name": "Team", "members": ["bob", "carol"]}))
    check(is_server_id(acc.get("id")), "accepted.id of a create: %r" % acc)
    want_group = {"id": "g:team", "name": "Team", "members": ["alice", "bob", "carol"],
                  "admins": ["alice"]}
    for c in (bob, carol):
        ev = await c.expect(is_group_ev("create"), 5, "create event on " + c.name)
        eq(ev.get("id"), acc["id"], "group event id is the accepted id")
        eq(ev.get("from"), "alice", "group event from")
        eq(ev.get("to"), "g:team", "group event to")
        eq(ev.get("cid"), "c-1", "group event cid")
        eq(ev.get("body"), {"op": "create", "by": "alice", "group": want_group,
                            "added": ["bob", "carol"], "removed": []}, "create body")
        await c.ack(ev["id"])
    await alice.quiet(0.3, is_group_ev(), "the creator's own create event on its device")
    await dave.quiet(0.0, is_group_ev(), "a group event for a non-member")

    # Update over REST: rename and add dave; dave hears it too.
    up = post_ok(srv, "alice", env("group_update", "u-1", "g:team",
                                   {"name": "Team 2", "add": ["dave"]}))
    for c in (bob, carol, dave):
        ev = await c.expect(is_group_ev("update", up["id"]), 5, "update on " + c.name)
        eq(ev["body"]["group"]["name"], "Team 2", "name after update")
        eq(ev["body"]["group"]["members"], ["alice", "bob", "carol", "dave"], "members")
        eq(ev["body"]["added"], ["dave"], "added")
        await c.ack(ev["id"])

    # Only admins change a group.
    st, r = post(srv, "bob", env("group_update", "u-2", "g:team", {"remove": ["carol"]}))
    eq((st, r.get("code"), r.get("ref")), (403, "forbidden", "u-2"), "update by a non-admin")
    await bob.send(env("group_update", "u-3", "g:team", {"name": "mine"}))
    e = await bob.expect(lambda x: x.get("ref") == "u-3", 5, "answer to u-3")
    eq((e.get("type"), e.get("code")), ("error", "forbidden"), "WS update by a non-admin")

    # Promote bob; bob may now remove carol (who hears of it).
    await ws_ok(alice, env("group_update", "u-4", "g:team", {"admins": ["bob"]}))
    for c in (bob, carol, dave):
        ev = await c.expect(is_group_ev("update"), 5, "promotion on " + c.name)
        eq(ev["body"]["group"]["admins"], ["alice", "bob"], "admins after promotion")
        await c.ack(ev["id"])
    rm = await ws_ok(bob, env("group_update", "u-5", "g:team", {"remove": ["carol"]}))
    ev = await carol.expect(is_group_ev("update", rm["id"]), 5, "carol told of her removal")
    eq(ev["body"]["removed"], ["carol"], "removed")
    eq(ev["body"]["by"], "bob", "by")
    await carol.ack(ev["id"])

    # Leave over REST (no body) and over WebSocket.
    lv = post_ok(srv, "dave", env("group_leave", "l-1", "g:team"))
    for c in (alice, bob):
        ev = await c.expect(is_group_ev("leave", lv["id"]), 5, "leave on " + c.name)
        eq(ev["body"]["by"], "dave", "leave.by")
        eq(ev["body"]["removed"], ["dave"], "leave.removed names the one who left")
        eq(ev["body"]["group"]["members"], ["alice", "bob"], "members after leave")
        await c.ack(ev["id"])
    st, r = group_info(srv, "alice", "team")
    eq((st, r), (200, {"id": "g:team", "name": "Team 2", "members": ["alice", "bob"],
                       "admins": ["alice", "bob"]}), "GET /v1/groups/team")
    for c in (alice, bob, carol, dave):
        await c.close()


async def test_rest_reads_members_only():
    srv = server()
    post_ok(srv, "alice", env("group_create", "c-1", "g:one", {"name": "One", "members": ["bob"]}))
    post_ok(srv, "alice", env("group_create", "c-2", "g:two", {"name": "Two", "members": []}))
    st, r = http_request(srv, "GET", "/v1/groups", srv.token("alice"))
    eq(st, 200, "GET /v1/groups status")
    eq(sorted(g["id"] for g in r["groups"]), ["g:one", "g:two"], "alice's groups")
    st, r = http_request(srv, "GET", "/v1/groups", srv.token("bob"))
    eq([g["id"] for g in r["groups"]], ["g:one"], "bob's groups")
    st, r = http_request(srv, "GET", "/v1/groups", srv.token("carol"))
    eq((st, r), (200, {"groups": []}), "carol's groups")
    for path in ("one", "g:one", "g%3Aone"):
        st, r = group_info(srv, "bob", path)
        eq((st, r.get("id"), r.get("members")), (200, "g:one", ["alice", "bob"]),
           "GET /v1/groups/" + path)
    for user, path in (("carol", "one"), ("bob", "two"), ("bob", "nope")):
        st, r = group_info(srv, user, path)
        eq((st, r.get("code")), (404, "not_found"), "GET /v1/groups/%s as %s" % (path, user))
    st, r = http_request(srv, "GET", "/v1/groups/one", None)
    eq(st, 401, "GET /v1/groups/one without a token")


async def test_non_member_post_forbidden():
    srv = server()
    post_ok(srv, "alice", env("group_create", "c-1", "g:team", {"name": "T", "members": ["bob"]}))
    dave = await connect(srv, "dave")
    bob = await connect(srv, "bob")
    for gid in ("g:team", "g:nowhere"):
        st, r = post(srv, "dave", env("message", "d-" + gid[2:], gid, "let me in"))
        eq((st, r.get("code")), (403, "forbidden"), "REST post to %s by a non-member" % gid)
        await dave.send(env("message", "w-" + gid[2:], gid, "let me in"))
        e = await dave.expect(lambda x: x.get("ref") == "w-" + gid[2:], 5, "answer")
        eq((e.get("type"), e.get("code")), ("error", "forbidden"), "WS post to " + gid)
    await bob.quiet(0.5, lambda e: e.get("type") == "message", "a non-member's post")
    await dave.close()
    await bob.close()


async def test_admin_succession_and_empty_group():
    srv = server()
    post_ok(srv, "alice", env("group_create", "c-1", "g:x",
                              {"name": "X", "members": ["bob", "carol"]}))
    post_ok(srv, "alice", env("group_leave", "l-1", "g:x"))
    st, r = group_info(srv, "bob", "x")
    eq((r.get("members"), r.get("admins")), (["bob", "carol"], ["bob"]),
       "the longest-standing member is admin after the last admin left")
    post_ok(srv, "bob", env("group_update", "u-1", "g:x", {"add": ["dave"]}))
    st, r = post(srv, "carol", env("group_update", "u-2", "g:x", {"add": ["erin"]}))
    eq((st, r.get("code")), (403, "forbidden"), "carol is no admin")
    for u in ("bob", "carol", "dave"):
        post_ok(srv, u, env("group_leave", "l-" + u, "g:x"))
    for u in ("bob", "carol", "dave"):
        st, r = group_info(srv, u, "x")
        eq(st, 404, "GET of an emptied group as " + u)
    # The id is free again.
    post_ok(srv, "erin", env("group_create", "c-9", "g:x", {"name": "X2", "members": []}))
    st, r = group_info(srv, "erin", "x")
    eq(r.get("members"), ["erin"], "re-created group")


async def test_retried_create_and_taken_id():
    srv = server("--ack-timeout", "5000")
    bob = await connect(srv, "bob")
    alice = await connect(srv, "alice")
    e = env("group_create", "c-1", "g:team", {"name": "T", "members": ["bob"]})
    a1 = post_ok(srv, "alice", e)
    a2 = post_ok(srv, "alice", e)
    a3 = await ws_ok(alice, e)
    eq((a2["id"], a3["id"]), (a1["id"], a1["id"]), "a retried create answered with the same id")
    ev = await bob.expect(is_group_ev("create"), 5, "the create event")
    await bob.ack(ev["id"])
    await bob.quiet(0.6, is_group_ev(), "a second create event")
    # Another user, same group id: refused whatever its client id.
    for cid in ("c-1", "c-2"):
        st, r = post(srv, "bob", env("group_create", cid, "g:team", {"name": "B", "members": []}))
        eq((st, r.get("code")), (409, "group_exists"), "create of a taken id, cid " + cid)
    # The creator with a new client id: also taken.
    st, r = post(srv, "alice", env("group_create", "c-3", "g:team", {"name": "T", "members": []}))
    eq((st, r.get("code")), (409, "group_exists"), "second create by the creator, new cid")
    st, r = group_info(srv, "alice", "team")
    eq(r.get("name"), "T", "the group kept its first state")
    await bob.close()
    await alice.close()


async def test_limits():
    srv = server("--max-group-members", "3", "--max-group-name", "8", "--max-group-update", "2")
    cases = [
        ("create: too many members", "alice",
         env("group_create", "c-1", "g:a", {"name": "A", "members": ["b1", "b2", "b3"]})),
        ("create: name too long", "alice",
         env("group_create", "c-2", "g:a", {"name": "123456789", "members": []})),
    ]
    for what, user, e in cases:
        st, r = post(srv, user, e)
        eq((st, r.get("code")), (400, "limit"), what)
    post_ok(srv, "alice", env("group_create", "c-3", "g:a", {"name": "12345678", "members": ["b1"]}))
    cases = [
        ("update: three users named", env("group_update", "u-1", "g:a", {"add": ["x", "y", "z"]})),
        ("update: over the member cap", env("group_update", "u-2", "g:a", {"add": ["x", "y"]})),
        ("update: long name", env("group_update", "u-3", "g:a", {"name": "abcdefghi"})),
    ]
    for what, e in cases:
        st, r = post(srv, "alice", e)
        eq((st, r.get("code")), (400, "limit"), what)
    post_ok(srv, "alice", env("group_update", "u-4", "g:a", {"add": ["x"]}))
    st, r = group_info(srv, "alice", "a")
    eq(r.get("members"), ["alice", "b1", "x"], "members after the refused and the good update")


async def test_event_order_and_offline_member():
    srv = server("--ack-timeout", "5000")
    alice = await connect(srv, "alice")
    # bob's device exists, but he is away.
    bob = await connect(srv, "bob")
    fetch(srv, srv.token("bob"))
    await bob.close()
    carol = await connect(srv, "carol")
    gev = [(await ws_ok(alice, env("group_create", "c-1", "g:t",
                                   {"name": "T", "members": ["bob", "carol"]})))["id"]]
    sent, msg_ids = [], []
    for i in range(12):
        if i == 6:
            gev.append((await ws_ok(alice, env("group_update", "u-1", "g:t",
                                               {"name": "T6"})))["id"])
            sent.append(("group", "update"))
        msg_ids.append((await ws_ok(alice, env("message", "m-%d" % i, "g:t", {"n": i})))["id"])
        sent.append(("message", i))
    st, r = http_request(srv, "POST", "/v1/send", srv.token("carol"),
                         env("message", "c-m", "g:t", "from carol"))
    eq(st, 200, "carol posts over REST")
    sent.append(("message", "from carol"))

    def shape(evs):
        out = []
        for e in evs:
            if e["type"] == "group":
                out.append(("group", e["body"]["op"]))
            else:
                out.append(("message", e["body"]["n"] if isinstance(e["body"], dict)
                            else e["body"]))
        return out

    # carol, online: everything but her own post, in order.
    got = []
    for _ in range(1 + 13):
        got.append(await carol.expect(lambda e: e.get("type") in ("group", "message"), 5,
                                      "group traffic on carol"))
    eq(shape(got), [("group", "create")] + sent[:-1], "carol's order")
    eq([int(e["id"]) for e in got], sorted(int(e["id"]) for e in got), "carol: ascending ids")
    for e in got:
        check(e["to"] == "g:t" and e["from"] == "alice", "to and from on carol: %r" % strip(e))
    await carol.ack(*[e["id"] for e in got])

    # bob, offline: REST in pages, then the same again on connect.
    listed = fetch_all(srv, srv.token("bob"), limit=5)
    eq(shape(listed), [("group", "create")] + sent, "bob's REST listing")
    eq(listed[-1]["from"], "carol", "from of carol's post")
    bob = await connect(srv, "bob", name="bob#2")
    pushed = []
    for _ in range(len(listed)):
        pushed.append(await bob.expect(lambda e: e.get("type") in ("group", "message"), 5,
                                       "stored group traffic on bob"))
    eq([e["id"] for e in pushed], [e["id"] for e in listed], "pushed as listed")
    await bob.ack(*[e["id"] for e in pushed])
    await bob.quiet(0.4, lambda e: e.get("type") in ("group", "message"), "a copy after ack")
    eq(fetch(srv, srv.token("bob"))["messages"], [], "bob's listing after his acks")
    # The sender hears delivered per member device for messages, never for
    # group events.
    receipts = await alice.expect_refs(2 * len(msg_ids))
    await alice.ack(*[d["id"] for d in receipts])
    refs = [(r["from"], r["ref"]) for r in all_refs(receipts)]
    eq(sorted(refs), sorted([("bob", i) for i in msg_ids] + [("carol", i) for i in msg_ids]),
       "delivered for alice's group messages")
    await alice.quiet(0.5, lambda e: e.get("type") == "delivered", "a delivered for a group event")
    for c in (alice, bob, carol):
        await c.close()


async def b11(online):
    """G = {alice, bob, carol}. alice sends g1, adds dave, sends g2,
    removes carol, sends g3, re-adds carol, sends g4."""
    srv = server("--ack-timeout", "5000")
    users = ("bob", "carol", "dave")
    cl = {}
    for u in users:
        cl[u] = await connect(srv, u)
    fetch(srv, srv.token("alice"))  # registrations done
    if not online:
        for u in users:
            await cl[u].close()
    post_ok(srv, "alice", env("group_create", "c-1", "g:h", {"name": "H", "members": ["bob", "carol"]}))
    ids = {}
    ids["g1"] = post_ok(srv, "alice", env("message", "g1", "g:h", "g1"))["id"]
    post_ok(srv, "alice", env("group_update", "u-1", "g:h", {"add": ["dave"]}))
    ids["g2"] = post_ok(srv, "alice", env("message", "g2", "g:h", "g2"))["id"]
    post_ok(srv, "alice", env("group_update", "u-2", "g:h", {"remove": ["carol"]}))
    ids["g3"] = post_ok(srv, "alice", env("message", "g3", "g:h", "g3"))["id"]
    post_ok(srv, "alice", env("group_update", "u-3", "g:h", {"add": ["carol"]}))
    ids["g4"] = post_ok(srv, "alice", env("message", "g4", "g:h", "g4"))["id"]
    want = {"bob": ["g1", "g2", "g3", "g4"], "carol": ["g1", "g2", "g4"], "dave": ["g2", "g3", "g4"]}
    for u in users:
        if online:
            c = cl[u]
        else:
            listed = [e["body"] for e in fetch_all(srv, srv.token(u)) if e["type"] == "message"]
            eq(listed, want[u], "%s's stored group messages (offline)" % u)
            c = await connect(srv, u, name=u + "#2")
        got = []
        for _ in want[u]:
            got.append((await c.expect(lambda e: e.get("type") == "message", 5,
                                       "a group message on " + u))["body"])
        eq(got, want[u], "%s's group messages (%s)" % (u, "online" if online else "reconnected"))
        evs = await c.drain(0.4)
        extra = [e["body"] for e in evs if e.get("type") == "message"]
        eq(extra, [], "%s: messages beyond the history rule" % u)
        await c.close()


async def test_b11_history_rule_online():
    await b11(True)


async def test_b11_history_rule_offline():
    await b11(False)


async def quick_run(run_no):
    """alice creates g:q with bob, carol and dave and, without waiting,
    posts a1, removes dave and posts a2; bob and carol post as soon as they
    see the create (bob over WebSocket, carol over REST)."""
    srv = server("--ack-timeout", "5000")
    cl = {u: await connect(srv, u) for u in ("alice", "bob", "carol", "dave")}
    fetch(srv, srv.token("alice"))
    a = cl["alice"]
    for e in (env("group_create", "c-1", "g:q", {"name": "Q", "members": ["bob", "carol", "dave"]}),
              env("message", "a1", "g:q", "a1"),
              env("group_update", "u-1", "g:q", {"remove": ["dave"]}),
              env("message", "a2", "g:q", "a2")):
        await a.send(e)

    async def bob_side():
        await cl["bob"].expect(is_group_ev("create"), 5, "create on bob")
        await cl["bob"].send(env("message", "b1", "g:q", "b1"))
        await cl["bob"].send(env("message", "b2", "g:q", "b2"))

    async def carol_side():
        await cl["carol"].expect(is_group_ev("create"), 5, "create on carol")
        loop = asyncio.get_running_loop()
        st, r = await loop.run_in_executor(
            None, post, srv, "carol", env("message", "c1", "g:q", "c1"))
        return st, r

    _, (cst, cr) = await asyncio.gather(bob_side(), carol_side())
    acc = {}
    for cid in ("c-1", "a1", "u-1", "a2"):
        ev = await a.expect(lambda e: e.get("ref") == cid, 5, "answer to " + cid)
        eq(ev.get("type"), "accepted", "answer to alice's " + cid)
        acc[cid] = int(ev["id"])
    for cid in ("b1", "b2"):
        ev = await cl["bob"].expect(lambda e: e.get("ref") == cid, 5, "answer to " + cid)
        acc[cid] = int(ev["id"]) if ev.get("type") == "accepted" else None
    acc["c1"] = int(cr["id"]) if cst == 200 else None
    eq((acc["b1"] is not None, acc["b2"] is not None, acc["c1"] is not None), (True, True, True),
       "bob's and carol's posts accepted (members since the create)")
    check(acc["c-1"] < acc["a1"] < acc["u-1"] < acc["a2"], "alice's order of ids: %r" % acc)

    # Who gets what: every member but the author of each message accepted
    # while a member; dave nothing after his removal.
    outcome = {}
    for u in ("alice", "bob", "carol", "dave"):
        want = []
        for cid, author in (("a1", "alice"), ("a2", "alice"), ("b1", "bob"), ("b2", "bob"),
                            ("c1", "carol")):
            if author == u:
                continue
            if u == "dave" and acc[cid] > acc["u-1"]:
                continue
            want.append(cid)
        got = []
        c = cl[u]
        for _ in want:
            got.append((await c.expect(lambda e: e.get("type") == "message", 5,
                                       "a message on %s (run %d)" % (u, run_no)))["cid"])
        got += [e["cid"] for e in await c.drain(0.3) if e.get("type") == "message"]
        eq(sorted(got), sorted(want), "%s's messages in run %d" % (u, run_no))
        outcome[u] = sorted(x for x in got if x in ("a1", "a2"))
    st, info = group_info(srv, "alice", "q")
    outcome["group"] = (info.get("members"), info.get("admins"))
    for c in cl.values():
        await c.close()
    srv.kill()
    return outcome


async def test_quick_succession_same_outcome_five_runs():
    first = None
    for i in range(5):
        o = await quick_run(i + 1)
        if first is None:
            first = o
            eq(o["group"], (["alice", "bob", "carol"], ["alice"]), "final group state")
            eq(o["dave"], ["a1"], "dave gets a1 only from alice")
            eq((o["bob"], o["carol"]), (["a1", "a2"], ["a1", "a2"]), "bob and carol get a1, a2")
        else:
            eq(o, first, "outcome of run %d vs run 1" % (i + 1))


if __name__ == "__main__":
    run([test_create_update_leave, test_rest_reads_members_only, test_non_member_post_forbidden,
         test_admin_succession_and_empty_group, test_retried_create_and_taken_id, test_limits,
         test_event_order_and_offline_member, test_b11_history_rule_online,
         test_b11_history_rule_offline, test_quick_succession_same_outcome_five_runs])
