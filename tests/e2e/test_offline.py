#!/usr/bin/python3
"""Retries, the offline store, REST sync and acks (field cases B04, B08)."""

from harness import (all_refs, check, eq, is_server_id, connect, send_http, fetch, ack_http,
                     receipt_refs, run, server)

RETRY_ARGS = ("--ack-timeout", "300", "--retries", "2")


def bodies(evs):
    return [e.get("body") for e in evs]


def ids(evs):
    return [e["id"] for e in evs]


def check_ascending(evs, what):
    n = [int(e["id"]) for e in evs]
    check(all(a < b for a, b in zip(n, n[1:])), "%s: ids not strictly ascending: %s" % (what, n))


async def pushes_of(client, sid, count, timeout=4.0):
    out = []
    for i in range(count):
        out.append(await client.expect(lambda e: e.get("type") == "message" and e.get("id") == sid,
                                       timeout, "push %d of message %s" % (i + 1, sid)))
    return out


async def test_retry_then_offline_then_reconnect():
    srv = server(*RETRY_ARGS)
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    await alice.message("bob", "r-1", "retry me")
    acc = await alice.expect_type("accepted", ref="r-1")
    p = await pushes_of(bob, acc["id"], 3)
    gap1 = p[1]["_t"] - p[0]["_t"]
    gap2 = p[2]["_t"] - p[1]["_t"]
    check(gap1 >= 0.2, "first retry came %.3fs after the push (ack timeout 0.3s)" % gap1)
    check(gap2 >= 0.45, "second retry came %.3fs after the first (doubling: 0.6s)" % gap2)
    # Two retries ran: no fourth push on this connection, the last
    # deadline (1.2s) passes inside this window.
    await bob.quiet(1.8, lambda e: e.get("type") == "message", "a fourth push")
    await alice.quiet(0.0, lambda e: e.get("type") == "delivered", "delivered without an ack")
    await bob.close()

    bob = await connect(srv, "bob", name="bob#2")
    m = await bob.expect_type("message", id=acc["id"])
    eq(m.get("cid"), "r-1", "re-delivered cid")
    eq(m.get("body"), "retry me", "re-delivered body")
    await bob.ack(m["id"])
    d = await alice.expect_type("delivered")
    eq([r["ref"] for r in receipt_refs(d)], [acc["id"]], "delivered refs")
    await alice.ack(d["id"])
    await bob.close()

    bob = await connect(srv, "bob", name="bob#3")
    await bob.quiet(0.8, lambda e: e.get("type") == "message", "a message already acked")
    eq(fetch(srv, srv.token("bob"))["messages"], [], "bob's listing after his ack")
    await bob.close()
    await alice.close()


async def test_late_ack_deletes_stored_copy():
    srv = server(*RETRY_ARGS)
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    await alice.message("bob", "l-1", 1)
    a1 = await alice.expect_type("accepted", ref="l-1")
    await alice.message("bob", "l-2", 2)
    a2 = await alice.expect_type("accepted", ref="l-2")
    await pushes_of(bob, a1["id"], 3)
    await pushes_of(bob, a2["id"], 3)
    await bob.quiet(1.8, lambda e: e.get("type") == "message", "a fourth push")

    # Late ack over the still-open socket, then over REST while offline.
    await bob.ack(a1["id"])
    d1 = await alice.expect_type("delivered", timeout=5)
    eq([r["ref"] for r in receipt_refs(d1)], [a1["id"]], "delivered for the late WS ack")
    await bob.close()
    r = ack_http(srv, srv.token("bob"), [a2["id"]])
    eq(r.get("acked"), [a2["id"]], "late REST ack: acked")
    eq(r.get("unknown"), [], "late REST ack: unknown")
    d2 = await alice.expect_type("delivered", timeout=5)
    eq([r["ref"] for r in receipt_refs(d2)], [a2["id"]], "delivered for the late REST ack")
    await alice.ack(d1["id"], d2["id"])

    eq(fetch(srv, srv.token("bob"))["messages"], [], "bob's listing after late acks")
    bob = await connect(srv, "bob", name="bob#2")
    await bob.quiet(0.8, lambda e: e.get("type") == "message", "a late-acked message")
    await bob.close()
    await alice.close()


async def test_offline_stored_before_accepted():
    """Mode always: once POST /v1/send answered, a kill -9 loses nothing."""
    srv = server()
    tok = srv.token("alice")
    accepted = [send_http(srv, tok, "bob", "s-%d" % i, {"i": i})[1] for i in range(1, 6)]
    check_ascending(accepted, "accepted ids")
    srv.kill9()
    srv.start()

    listed = fetch(srv, srv.token("bob"))
    eq(ids(listed["messages"]), ids(accepted), "listed ids after kill -9")
    eq(bodies(listed["messages"]), [{"i": i} for i in range(1, 6)], "listed bodies")
    eq(listed.get("more"), False, "more")
    for m in listed["messages"]:
        eq(m.get("type"), "message", "listed type")
        eq(m.get("from"), "alice", "listed from")

    bob = await connect(srv, "bob")
    got = [await bob.expect_type("message") for _ in range(5)]
    eq(ids(got), ids(accepted), "order of delivery on connect")
    # Half acked over WS, the rest over REST.
    await bob.ack(*ids(got[:2]))
    r = ack_http(srv, srv.token("bob"), ids(got[2:]))
    eq(sorted(r.get("acked", []), key=int), ids(got[2:]), "REST ack: acked")
    await bob.close()
    # The WS ack was processed (its deliveries' receipts exist) before the
    # listing is checked: wait for the refs of all five acks first.
    alice = await connect(srv, "alice")
    rec = await alice.expect_refs(5)
    eq(sorted(r["ref"] for r in all_refs(rec)), sorted(ids(accepted)), "receipts")
    await alice.ack(*ids(rec))
    eq(fetch(srv, srv.token("bob"))["messages"], [], "listing after all acks")
    bob = await connect(srv, "bob", name="bob#2")
    await bob.quiet(0.5, lambda e: e.get("type") == "message", "an acked message")
    await bob.close()
    await alice.close()


async def test_paging():
    srv = server()
    tok, btok = srv.token("alice"), srv.token("bob")
    accepted = [send_http(srv, tok, "bob", "p-%d" % i, i)[1] for i in range(10)]
    pages, after = [], None
    while True:
        r = fetch(srv, btok, after, 3)
        check(len(r["messages"]) <= 3, "page longer than limit: %d" % len(r["messages"]))
        if r["messages"]:
            check(is_server_id(r.get("next")), "next cursor is an id string: %r" % r.get("next"))
        pages.append(r)
        if not r.get("more"):
            break
        check(len(pages) < 10, "paging does not end")
        after = r["next"]
    flat = [m for p in pages for m in p["messages"]]
    eq(ids(flat), ids(accepted), "union of pages (ascending, no overlap, no gap)")
    eq([len(p["messages"]) for p in pages], [3, 3, 3, 1], "page sizes")
    # Past the end: empty.
    r = fetch(srv, btok, flat[-1]["id"], 3)
    eq(r["messages"], [], "page after the last id")
    eq(r.get("more"), False, "more after the last id")
    # after= skips exactly up to the given id.
    r = fetch(srv, btok, flat[4]["id"], 100)
    eq(ids(r["messages"]), ids(flat[5:]), "after=<5th id>")
    r = ack_http(srv, btok, ids(flat))
    eq(sorted(r["acked"], key=int), ids(flat), "ack of all listed")
    eq(fetch(srv, btok)["messages"], [], "listing after ack")


async def test_b04_ack_removes_exactly_named_ids():
    srv = server()
    tok, btok = srv.token("bob"), srv.token("alice")
    for i in range(1, 6):
        send_http(srv, tok, "alice", "m%d" % i, i)
    first = fetch(srv, btok)["messages"]
    eq(bodies(first), [1, 2, 3, 4, 5], "first fetch")
    # m6 arrives between the fetch and the ack.
    m6 = send_http(srv, tok, "alice", "m6", 6)[1]
    r = ack_http(srv, btok, ids(first))
    eq(sorted(r["acked"], key=int), ids(first), "acked")
    eq(r["unknown"], [], "unknown")
    second = fetch(srv, btok)["messages"]
    eq(ids(second), [m6["id"]], "second fetch holds only m6")
    # A reconnect serves m6 only.
    alice = await connect(srv, "alice")
    m = await alice.expect_type("message")
    eq(m["id"], m6["id"], "pushed on connect")
    await alice.quiet(0.5, lambda e: e.get("type") == "message", "an acked message on connect")
    await alice.close()
    # Acking an already acked id, an unknown id and m6 together.
    r = ack_http(srv, btok, [first[0]["id"], "987654321", m6["id"]])
    eq(r["acked"], [m6["id"]], "acked with stale ids mixed in")
    eq(sorted(r["unknown"], key=int), sorted([first[0]["id"], "987654321"], key=int),
       "unknown with stale ids mixed in")
    eq(fetch(srv, btok)["messages"], [], "empty after acking m6")
    # Acking it all again is harmless.
    r = ack_http(srv, btok, ids(first))
    eq(r["acked"], [], "acking twice: acked")


async def test_b08_backlog_order_with_window():
    srv = server("--window", "20", "--ack-timeout", "1000", "--retries", "3")
    tok, btok = srv.token("bob"), srv.token("alice")
    accepted = [send_http(srv, tok, "alice", "m%d" % i, i)[1] for i in range(1, 101)]
    check_ascending(accepted, "accepted ids")

    pages, after = [], None
    for _ in range(30):
        r = fetch(srv, btok, after, 7)
        check(len(r["messages"]) <= 7, "page longer than 7")
        check_ascending(r["messages"], "page")
        if pages and r["messages"] and pages[-1]["messages"]:
            check(int(r["messages"][0]["id"]) > int(pages[-1]["messages"][-1]["id"]),
                  "pages overlap")
        pages.append(r)
        if not r.get("more"):
            break
        after = r["next"]
    flat = [m for p in pages for m in p["messages"]]
    eq(ids(flat), ids(accepted), "union of pages of 7")
    eq(len(pages), 15, "page count for 100 at 7 a page")

    alice = await connect(srv, "alice")
    first_seen, order, m5_pushes = set(), [], 0
    m5 = accepted[4]["id"]
    acked = set()
    while len(acked) < 100:
        e = await alice.expect_type("message", timeout=5)
        if e["id"] == m5:
            m5_pushes += 1
        if e["id"] not in first_seen:
            first_seen.add(e["id"])
            order.append(e)
        elif e["id"] != m5:
            check(False, "message %s pushed twice though acked" % e["id"])
        if e["id"] == m5 and m5_pushes == 1:
            continue  # drop the first ack of m5: it must come again
        await alice.ack(e["id"])
        acked.add(e["id"])
    eq(ids(order), ids(accepted), "first arrivals on connect: strictly ascending, all 100")
    eq(bodies(order), list(range(1, 101)), "bodies in order")
    eq(m5_pushes, 2, "m5 pushed again after its ack was withheld")
    await alice.quiet(0.5, lambda e: e.get("type") == "message", "a push after all acks")
    await alice.close()
    eq(fetch(srv, btok)["messages"], [], "listing after acking all 100")


if __name__ == "__main__":
    run([test_retry_then_offline_then_reconnect, test_late_ack_deletes_stored_copy,
         test_offline_stored_before_accepted, test_paging, test_b04_ack_removes_exactly_named_ids,
         test_b08_backlog_order_with_window])
