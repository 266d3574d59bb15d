#!/usr/bin/python3
"""Field case B23: retries and the ack deadline follow the monotonic clock, so
jumping the wall clock back or forward neither stalls a retry nor fires one
early. Token expiry, and only it among the timers, follows the wall clock.

The server runs under libfaketime (Debian package faketime) with a relative
offset read from a file on every call (FAKETIME_TIMESTAMP_FILE with
FAKETIME_NO_CACHE=1), so the test moves the server's CLOCK_REALTIME while it
runs. FAKETIME_DONT_FAKE_MONOTONIC=1 leaves CLOCK_MONOTONIC alone, which is
what a real clock step (settimeofday, an NTP step) does. Every jump is
checked to have reached the server: the `ts` of an `accepted` answer is the
server's wall time. A control run lets libfaketime shift CLOCK_MONOTONIC as
well and shows that the retry then stalls: the measurement can see a timer
that follows a clock which jumped.
"""

import os
import re
import signal
import time

from harness import (TestFailure, all_refs, check, eq, connect, fetch, handshake_status,
                     http_request, run, Server, await_until)

LIBFAKETIME = None
for _cand in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
              "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
              "/usr/lib/faketime/libfaketime.so.1"):
    if os.path.exists(_cand):
        LIBFAKETIME = _cand
        break

ACK_MS = 2000
HOUR = 3600


class FakeClock:
    """The offset file libfaketime reads on every clock call."""

    def __init__(self, srv):
        self.path = os.path.join(srv.tmp, "faketime.rc")
        self.set(0)

    def set(self, offset_s):
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            f.write("%+d\n" % offset_s)
        os.replace(tmp, self.path)
        self.offset = offset_s


def faked_server(*args, fake_monotonic=False, offset=0, data_dir=None):
    if LIBFAKETIME is None:
        raise TestFailure("libfaketime.so.1 not found: install faketime (scripts/setup.sh)")
    srv = Server(*args, data_dir=data_dir)
    clock = FakeClock(srv)
    clock.set(offset)
    start_faked(srv, clock, fake_monotonic)
    return srv, clock


def start_faked(srv, clock, fake_monotonic=False):
    env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": clock.path,
           "FAKETIME_NO_CACHE": "1"}
    # A sanitizer build wants its runtime first among the libraries; with
    # libfaketime preloaded it is second, which is harmless here.
    asan = os.environ.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
    if not fake_monotonic:
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    saved = {k: os.environ.get(k) for k in list(env) + ["FAKETIME_DONT_FAKE_MONOTONIC"]}
    os.environ.pop("FAKETIME_DONT_FAKE_MONOTONIC", None)
    os.environ.update(env)
    try:
        srv.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_probe_n = [0]


async def server_offset(srv, sender):
    """Server wall clock minus ours, in seconds, from the ts of an accepted
    answer (a message to a user who is never online)."""
    _probe_n[0] += 1
    cid = "probe-%d" % _probe_n[0]
    before = time.time()
    await sender.message("nobody", cid, "probe")
    acc = await sender.expect_type("accepted", ref=cid)
    after = time.time()
    return acc["ts"] / 1000.0 - (before + after) / 2


async def assert_offset(srv, sender, want, what):
    got = await server_offset(srv, sender)
    check(abs(got - want) < 5, "%s: server wall clock is off by %+.1fs, want %+ds "
          "(libfaketime did not take effect)" % (what, got, want))
    return got


async def next_push(client, sid, timeout):
    m = await client.expect(lambda e: e.get("type") == "message" and e.get("id") == sid,
                            timeout, "a push of id %s" % sid)
    return m["_t"]


def log_text(srv):
    with open(srv.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def within(dt, want, what, slack_lo=0.3, slack_hi=1.0):
    print("  %s: %.2fs (want %.1fs)" % (what, dt, want))
    check(want - slack_lo <= dt <= want + slack_hi,
          "%s after %.2fs, want about %.1fs" % (what, dt, want))


async def test_b23_retry_across_wall_clock_jumps():
    srv, clock = faked_server("--ack-timeout", str(ACK_MS), "--retries", "4")
    bob = await connect(srv, "bob")
    alice = await connect(srv, "alice")
    await assert_offset(srv, bob, 0, "at start")

    # m1: pushed, never acked. The clock goes back an hour right after.
    await bob.message("alice", "m1", "retry me")
    acc = await bob.expect_type("accepted", ref="m1")
    t0 = await next_push(alice, acc["id"], 5)
    clock.set(-HOUR)
    await assert_offset(srv, bob, -HOUR, "after the jump back")
    t1 = await next_push(alice, acc["id"], ACK_MS / 1000 + 3)
    within(t1 - t0, ACK_MS / 1000, "first retry after a jump back of 1 h")

    # Forward two hours from there (one hour ahead of real time): the next
    # retry is due ACK*2 after the first one, not at once.
    clock.set(+HOUR)
    await assert_offset(srv, bob, +HOUR, "after the jump forward")
    t2 = await next_push(alice, acc["id"], 2 * ACK_MS / 1000 + 3)
    within(t2 - t1, 2 * ACK_MS / 1000, "second retry after a jump forward of 2 h")

    # A fresh message after the forward jump: its first retry is ACK after
    # its push, and m1's next retry does not come early either.
    await bob.message("alice", "m2", "after the jump")
    acc2 = await bob.expect_type("accepted", ref="m2")
    p2 = await next_push(alice, acc2["id"], 5)
    r2 = await next_push(alice, acc2["id"], ACK_MS / 1000 + 3)
    within(r2 - p2, ACK_MS / 1000, "first retry of a message sent after the jump")
    await alice.ack(acc2["id"])
    t3 = await next_push(alice, acc["id"], 4 * ACK_MS / 1000 + 3)
    within(t3 - t2, 4 * ACK_MS / 1000, "third retry of m1")
    stray = [e for e in alice.pending if e.get("type") == "message"]
    eq(stray, [], "pushes besides the expected ones")
    await alice.ack(acc["id"])
    receipts = await bob.expect_refs(2)
    eq(sorted(r["ref"] for r in all_refs(receipts)), sorted((acc["id"], acc2["id"])),
       "the refs of the receipts")
    await bob.ack(*[d["id"] for d in receipts])
    await bob.close()
    await alice.close()


async def test_b23_restart_mid_wait_with_clock_back():
    """The retry deadline is not persisted as wall time: after a restart
    with the clock an hour back, the owed message is pushed on connect and
    retried ACK after that push."""
    srv, clock = faked_server("--ack-timeout", str(ACK_MS), "--retries", "4")
    bob = await connect(srv, "bob")
    alice = await connect(srv, "alice")
    await bob.message("alice", "m1", "owed across a restart")
    acc = await bob.expect_type("accepted", ref="m1")
    await next_push(alice, acc["id"], 5)
    clock.set(-HOUR)
    srv.proc.send_signal(signal.SIGTERM)
    eq(await alice.wait_closed(10), 1001, "close code on SIGTERM")
    await bob.wait_closed(5)
    eq(srv.stop(), 0, "exit status after SIGTERM")
    start_faked(srv, clock)
    bob = await connect(srv, "bob", name="bob#2")
    await assert_offset(srv, bob, -HOUR, "after the restart")
    alice = await connect(srv, "alice", name="alice#2")
    p = await next_push(alice, acc["id"], 5)
    r = await next_push(alice, acc["id"], ACK_MS / 1000 + 3)
    within(r - p, ACK_MS / 1000, "retry after a restart with the clock 1 h back")
    # Forward jump while the second retry is pending.
    clock.set(+HOUR)
    await assert_offset(srv, bob, +HOUR, "after the jump forward")
    r2 = await next_push(alice, acc["id"], 2 * ACK_MS / 1000 + 3)
    within(r2 - r, 2 * ACK_MS / 1000, "second retry after the jump forward")
    await alice.ack(acc["id"])
    await bob.expect_type("delivered", timeout=5)
    await alice.close()
    await bob.close()


async def test_b23_no_early_offline_after_forward_jump():
    """Retries running out is also monotonic: with --retries 1 a message goes
    offline after ACK + 2*ACK, also when the clock jumps a day ahead. And
    stored events younger than --offline-ttl by real age survive a forward
    jump smaller than the ttl."""
    srv, clock = faked_server("--ack-timeout", str(ACK_MS), "--retries", "1",
                              "--offline-ttl", str(3 * HOUR))
    bob = await connect(srv, "bob")
    alice = await connect(srv, "alice")
    await bob.message("alice", "m1", "goes offline")
    acc = await bob.expect_type("accepted", ref="m1")
    t0 = await next_push(alice, acc["id"], 5)
    clock.set(+HOUR)
    await assert_offset(srv, bob, +HOUR, "after the jump forward")
    t1 = await next_push(alice, acc["id"], ACK_MS / 1000 + 3)
    within(t1 - t0, ACK_MS / 1000, "the one retry after a jump forward")
    # The give-up is logged; it is due 2*ACK after the retry.
    pat = re.compile(r"offline after retries (conn=\d+ )?user=alice")
    tg = await await_until(lambda: pat.search(log_text(srv)) and time.monotonic(),
                           2 * ACK_MS / 1000 + 3, "the give-up log line", step=0.01)
    within(tg - t1, 2 * ACK_MS / 1000, "give-up after the jump forward", slack_lo=0.2)
    await alice.quiet(0.2, lambda e: e.get("id") == acc["id"], "a push beyond --retries")
    listed = [m["id"] for m in fetch(srv, srv.token("alice"))["messages"]]
    eq(listed, [acc["id"]], "m1 listed once it went offline")
    srv.stop()
    clock.set(+2 * HOUR)
    start_faked(srv, clock)
    bob = await connect(srv, "bob", name="bob#2")
    await assert_offset(srv, bob, +2 * HOUR, "after a restart 2 h ahead")
    listed = [m["id"] for m in fetch(srv, srv.token("alice"))["messages"]]
    eq(listed, [acc["id"]], "m1 still stored 2 h (wall) later with a 3 h ttl")
    await bob.close()


async def test_tokens_follow_wall_clock():
    """Token expiry is the one wall-clock rule: the same token is valid or
    expired depending on the server's wall clock."""
    srv, clock = faked_server(offset=-HOUR)
    real = int(time.time())
    tok = srv.forge_token("alice", exp=real - 600)   # expired in real time
    eq(await handshake_status(srv, tok), 101, "token 10 min past exp, server clock 1 h back")
    st, _ = http_request(srv, "GET", "/v1/messages", tok)
    eq(st, 200, "REST with that token, server clock 1 h back")
    alice = await connect(srv, "alice", token=tok)
    clock.set(0)
    code = await alice.wait_closed(5)
    eq(code, 4001, "close code when the clock moves past the token's exp")
    st, r = http_request(srv, "GET", "/v1/messages", tok)
    eq(st, 401, "REST with the token after the jump")
    eq(r.get("code"), "token_expired", "error code after the jump")
    # A token valid in real time is refused when the clock is ahead of exp.
    tok2 = srv.forge_token("bob", exp=real + 600)
    eq(await handshake_status(srv, tok2), 101, "fresh token, true clock")
    clock.set(+HOUR)
    eq(await handshake_status(srv, tok2), 401, "fresh token, server clock 1 h ahead")


async def test_control_faked_monotonic_stalls_retry():
    """Control: when CLOCK_MONOTONIC jumps back too (libfaketime's default),
    a retry does not come on time. This is not something a real clock step
    does; it shows that the checks above see a timer that follows a jumped
    clock, so their passing means something."""
    srv, clock = faked_server("--ack-timeout", str(ACK_MS), "--retries", "4",
                              fake_monotonic=True)
    bob = await connect(srv, "bob")
    alice = await connect(srv, "alice")
    await bob.message("alice", "m1", "retry me")
    acc = await bob.expect_type("accepted", ref="m1")
    await next_push(alice, acc["id"], 5)
    # Back by ten minutes (within the monotonic clock's range since boot).
    back = min(600, int(time.monotonic()) - 60)
    check(back >= 60, "machine up too short for the control (%ds)" % time.monotonic())
    clock.set(-back)
    await assert_offset(srv, bob, -back, "after the jump back")
    await alice.quiet(ACK_MS / 1000 + 2, lambda e: e.get("id") == acc["id"],
                      "a retry although the monotonic clock went back")
    print("  control: no retry within %.1fs with CLOCK_MONOTONIC %ds back"
          % (ACK_MS / 1000 + 2, back))
    await alice.close()
    await bob.close()


if __name__ == "__main__":
    run([test_b23_retry_across_wall_clock_jumps, test_b23_restart_mid_wait_with_clock_back,
         test_b23_no_early_offline_after_forward_jump, test_tokens_follow_wall_clock,
         test_control_faked_monotonic_stalls_retry])
