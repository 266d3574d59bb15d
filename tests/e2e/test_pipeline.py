#!/usr/bin/python3
"""A sender that pipelines far more messages than the server may owe answers.

alice writes 2,000 messages on a raw WebSocket without reading anything
back, then reads. The engine owes a connection at most 256 answers before
the gateway stops reading from it (vt_conn_busy), and reading resumes as
the answers go out. Checked: no deadlock (everything within a bound);
every message is answered "accepted", once; bob, reading and acking as he
goes, gets each exactly once, in the order alice sent them.
"""

import asyncio
import json
import time

from harness import RawWS, TestFailure, check, connect, eq, run, server

N = 2000            # far more than VT_CONN_OWED_MAX (256)
BOUND = 45.0        # seconds for all of it, under the sanitizer build too
TEXT = 0x1


async def bob_reads(bob, got):
    """Take bob's messages, acking each, until N have come."""
    while len(got) < N:
        ev = await bob.expect_type("message", timeout=BOUND)
        got.append((ev["id"], ev["cid"]))
        await bob.ack(ev["id"])


async def alice_answers(raw, deadline):
    """Read alice's socket until N "accepted" came; their refs in order."""
    refs = []
    while len(refs) < N:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("alice: %d of %d accepted within %.0fs" % (len(refs), N, BOUND))
        try:
            op, data = await raw.read_frame(left)
        except asyncio.TimeoutError:
            continue
        check(op is not None, "alice: connection ended after %d accepted" % len(refs))
        if op != TEXT:
            continue
        ev = json.loads(data)
        check(ev.get("type") != "error", "alice: refused: %r" % ev)
        if ev.get("type") == "accepted":
            refs.append(ev["ref"])
    return refs


async def test_pipelined_sends_all_accepted_and_delivered_once_in_order():
    srv = server("--rate", "0")
    bob = await connect(srv, "bob")
    raw = await RawWS.open(srv, srv.token("alice"))
    deadline = time.monotonic() + BOUND
    got = []
    reader = asyncio.ensure_future(bob_reads(bob, got))
    try:
        for i in range(N):
            env = {"v": 1, "type": "message", "id": "m%d" % i, "to": "bob", "body": {"i": i}}
            await asyncio.wait_for(raw.send_frame(TEXT, json.dumps(env).encode()),
                                   max(deadline - time.monotonic(), 0.001))
        refs = await alice_answers(raw, deadline)
        await asyncio.wait_for(reader, max(deadline - time.monotonic(), 0.001))
    finally:
        reader.cancel()
        if reader.done() and not reader.cancelled():
            reader.exception()  # seen: the wait on it above reported it, or failed first
        raw.close()
        await bob.close()

    eq(sorted(refs, key=lambda r: int(r[1:])), ["m%d" % i for i in range(N)],
       "refs of alice's accepted")
    eq([cid for _, cid in got], ["m%d" % i for i in range(N)], "bob's messages by cid")
    ids = [int(sid) for sid, _ in got]
    check(all(a < b for a, b in zip(ids, ids[1:])), "bob's message ids rise with cid order")


if __name__ == "__main__":
    run([test_pipelined_sends_all_accepted_and_delivered_once_in_order])
