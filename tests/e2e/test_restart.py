#!/usr/bin/python3
"""Restarts: SIGTERM and kill -9 with durability always lose nothing that
was accepted and not acked; acked messages never come back (B07)."""

import signal
import subprocess

from harness import (all_refs, check, eq, connect, send_http, fetch, ack_http, run, server,
                     vartalapd_path)


def ids(evs):
    return [e["id"] for e in evs]


async def send_mix(srv, alice, to, prefix, n_ws, n_http):
    """n_ws messages over alice's socket, then n_http over POST; returns
    the accepted envelopes in send order."""
    out = []
    for i in range(n_ws):
        cid = "%s-w%d" % (prefix, i)
        await alice.message(to, cid, {"cid": cid})
        out.append(await alice.expect_type("accepted", ref=cid))
    for i in range(n_http):
        cid = "%s-h%d" % (prefix, i)
        out.append(send_http(srv, srv.token("alice"), to, cid, {"cid": cid})[1])
    return out


async def restart_keeps_unacked(sig):
    srv = server("--ack-timeout", "10000", "--durability", "always")
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    # bob is online and receives but never acks; dave is offline.
    to_bob = await send_mix(srv, alice, "bob", "b", 4, 4)
    to_dave = await send_mix(srv, alice, "dave", "d", 3, 3)
    got = [await bob.expect_type("message") for _ in range(8)]
    eq(ids(got), ids(to_bob), "bob's pushes before the restart")

    if sig == signal.SIGTERM:
        srv.proc.send_signal(signal.SIGTERM)
        eq(await bob.wait_closed(10), 1001, "close code on SIGTERM")
        eq(await alice.wait_closed(5), 1001, "close code on SIGTERM (alice)")
        rc = srv.stop()
        eq(rc, 0, "exit status after SIGTERM")
    else:
        srv.kill9()
        alice.abort()
        bob.abort()
    srv.start()

    bob = await connect(srv, "bob", name="bob#2")
    again = [await bob.expect_type("message", timeout=5) for _ in range(8)]
    eq(ids(again), ids(to_bob), "bob's un-acked messages after restart, in order")
    eq([m["body"] for m in again], [{"cid": a["ref"]} for a in to_bob], "bodies after restart")
    listed = fetch(srv, srv.token("dave"))["messages"]
    eq(ids(listed), ids(to_dave), "dave's offline messages after restart, in order")
    dave = await connect(srv, "dave")
    dgot = [await dave.expect_type("message") for _ in range(6)]
    eq(ids(dgot), ids(to_dave), "dave's pushes after restart")

    # New ids keep increasing past the old ones.
    st, new = send_http(srv, srv.token("alice"), "bob", "after-restart", 1)
    check(int(new["id"]) > max(int(a["id"]) for a in to_bob + to_dave),
          "id after restart %s is not above the old ones" % new["id"])
    m = await bob.expect_type("message", id=new["id"])
    await bob.ack(*ids(again), m["id"])
    await dave.ack(*ids(dgot))
    alice = await connect(srv, "alice", name="alice#2")
    recs = await alice.expect_refs(15)
    eq(sorted(int(r["ref"]) for r in all_refs(recs)),
       sorted(int(x["id"]) for x in to_bob + to_dave + [new]), "receipts after restart")
    await alice.ack(*ids(recs))
    for c in (alice, bob, dave):
        await c.close()


async def test_sigterm_keeps_unacked():
    await restart_keeps_unacked(signal.SIGTERM)


async def test_kill9_keeps_unacked():
    await restart_keeps_unacked(signal.SIGKILL)


async def test_dedup_survives_kill9():
    srv = server("--durability", "always")
    tok = srv.token("alice")
    st, a1 = send_http(srv, tok, "bob", "dup-1", "x")
    srv.kill9()
    srv.start()
    st, a2 = send_http(srv, tok, "bob", "dup-1", "x")
    eq(a2["id"], a1["id"], "server id of a resend after kill -9")
    listed = fetch(srv, srv.token("bob"))["messages"]
    eq([m["cid"] for m in listed], ["dup-1"], "bob's listing holds one copy")


async def test_b07_acked_never_replayed():
    srv = server("--ack-timeout", "10000")
    btok = srv.token("bob")
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    first = [send_http(srv, btok, "alice", "s%d" % i, i)[1] for i in range(1, 21)]
    for a in first:
        m = await alice.expect_type("message", id=a["id"])
        await alice.ack(m["id"])
    # Every ack was taken: bob holds a receipt for each of 1..20.
    recs = await bob.expect_refs(20)
    eq(sorted(int(r["ref"]) for r in all_refs(recs)), [int(a["id"]) for a in first], "receipts")
    await bob.ack(*ids(recs))
    alice.abort()

    more = [send_http(srv, btok, "alice", "s%d" % i, i)[1] for i in range(21, 26)]
    alice = await connect(srv, "alice", name="alice#2")
    got = [await alice.expect_type("message") for _ in range(5)]
    eq(ids(got), ids(more), "after reconnect: only 21..25")
    await alice.quiet(0.5, lambda e: e.get("type") == "message", "one of 1..20 replayed")
    alice.abort()  # 21..25 received but never acked

    later = [send_http(srv, btok, "alice", "s%d" % i, i)[1] for i in range(26, 28)]
    srv.restart(signal.SIGTERM)
    alice = await connect(srv, "alice", name="alice#3")
    got = [await alice.expect_type("message") for _ in range(7)]
    eq(ids(got), ids(more + later), "after restart: only the un-acked 21..27, in order")
    await alice.quiet(0.5, lambda e: e.get("type") == "message", "one of 1..20 after restart")
    r = ack_http(srv, srv.token("alice"), ids(got))
    eq(sorted(r["acked"], key=int), ids(got), "ack after restart")
    eq(fetch(srv, srv.token("alice"))["messages"], [], "listing after all acks")
    await alice.close()
    await bob.close()


def refs_of(evs):
    return sorted(int(r["ref"]) for r in all_refs(evs))


async def test_kill9_right_after_acks_keeps_receipts():
    """A `delivered` receipt commits with the ack that causes it, so a kill -9
    as soon as the ack shows loses none. A REST ack is answered once its
    commit is done; a WebSocket ack shows as the receipt pushed to its
    sender, which follows that same commit."""
    srv = server("--ack-timeout", "10000", "--durability", "always")
    alice = await connect(srv, "alice")
    sent = []
    for i in range(4):
        cid = "k-%d" % i
        await alice.message("bob", cid, i)
        sent.append(await alice.expect_type("accepted", ref=cid))
    want = sorted(int(a["id"]) for a in sent)

    listed = fetch(srv, srv.token("bob"))["messages"]
    eq(ids(listed), ids(sent), "bob's listing")
    r = ack_http(srv, srv.token("bob"), ids(sent[:2]) + ["999999"])
    eq(sorted(r["acked"], key=int), ids(sent[:2]), "REST ack")
    srv.kill9()
    alice.abort()
    srv.start()
    alice = await connect(srv, "alice", name="alice#2")
    recs = await alice.expect_refs(2)
    eq(refs_of(recs), want[:2], "receipts of the REST ack after kill -9")
    await alice.ack(*ids(recs))

    bob = await connect(srv, "bob")
    got = [await bob.expect_type("message") for _ in range(2)]
    eq(ids(got), ids(sent[2:]), "bob's pushes after the restart")
    await bob.ack(*ids(got))
    pushed = await alice.expect_refs(2)
    srv.kill9()
    alice.abort()
    bob.abort()
    srv.start()
    alice = await connect(srv, "alice", name="alice#3")
    again = await alice.expect_refs(2)
    eq(refs_of(again), want[2:], "receipts of the WebSocket ack after kill -9")
    eq(ids(again), ids(pushed), "the same receipts, stored before they were pushed")
    await alice.quiet(0.3, lambda e: e.get("type") == "delivered", "a receipt twice")
    await alice.close()


async def test_second_server_on_one_data_dir_is_refused():
    """Two servers on one data directory would hand out the same ids and lose
    one another's messages: the second is refused at start, with a reason,
    and the first serves on, losing nothing."""
    srv = server()
    st, first = send_http(srv, srv.token("alice"), "dave", "c-1", 1)
    eq(st, 200, "a send to the first server")

    cmd = [vartalapd_path(), "--listen", "127.0.0.1:0", "--data-dir", srv.data_dir, "--dev"]
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    check(done.returncode != 0, "the second server exited %d" % done.returncode)
    check(b"in use" in done.stderr, "the reason: %r" % done.stderr[-300:])

    st, second = send_http(srv, srv.token("alice"), "dave", "c-2", 2)
    eq(st, 200, "a send to the first server after the refusal")
    srv.restart()
    eq(ids(fetch(srv, srv.token("dave"))["messages"]), [first["id"], second["id"]],
       "dave's messages, each once, after a restart")


if __name__ == "__main__":
    run([test_sigterm_keeps_unacked, test_kill9_keeps_unacked, test_dedup_survives_kill9,
         test_b07_acked_never_replayed, test_kill9_right_after_acks_keeps_receipts,
         test_second_server_on_one_data_dir_is_refused])
