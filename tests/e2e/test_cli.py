#!/usr/bin/python3
"""vartalap-cli: two clients driven through pipes chat, see delivered and
read receipts, groups and typing, and exit cleanly on EOF and on SIGINT;
over wss:// with a verified certificate; nothing typed is lost or doubled
when the server restarts, the network drops or the server asks to slow
down; a line longer than the server takes is refused, named and not sent
again, whether the server answers too_large or closes with 1009; receipts vartalapd never sends are shown as far as they can be read,
with a line saying what is wrong; and a server that sends a message larger
than any event, or breaks the WebSocket protocol, is closed and left with a
line saying why."""

import asyncio
import json
import os
import re
import signal
import socket
import time

import websockets

from harness import (ack_http, all_refs, await_until, check, connect, eq, fetch_all,
                     http_request, run, server, Server)
from test_faults import fill, known
from test_tls import TlsServer, make_cert

CLI = os.environ.get("VARTALAP_CLI") or os.path.join(
    os.path.dirname(os.environ.get("VARTALAPD", "")), "vartalap-cli")


class Cli:
    """One vartalap-cli process: lines in through stdin, events out of stdout."""

    def __init__(self, name, proc):
        self.name = name
        self.proc = proc
        self.lines = []

    @classmethod
    async def start(cls, srv, user, device=None, url=None, extra=(), token=None):
        url = url or "ws://127.0.0.1:%d" % srv.port
        args = [CLI, "--url", url, "--token", token or srv.token(user)] + list(extra)
        if device:
            args += ["--device", device]
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        c = cls(user, proc)
        await c.expect(r"connected$")
        return c

    async def say(self, *lines):
        for line in lines:
            self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    async def expect(self, pattern, timeout=5):
        """The next output line matching @pattern; earlier ones are kept in self.lines."""
        rx = re.compile(pattern)
        try:
            while True:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
                check(raw, "%s: output ended while waiting for %r; saw %r"
                      % (self.name, pattern, self.lines[-5:]))
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                m = rx.search(line)
                if m:
                    return m
        except asyncio.TimeoutError:
            check(False, "%s: no line matching %r in %ss; saw %r"
                  % (self.name, pattern, timeout, self.lines[-5:]))

    async def eof(self, timeout=5):
        """Close stdin; the client must exit 0 by itself. Returns its stderr."""
        self.proc.stdin.close()
        try:
            rest = await asyncio.wait_for(self.proc.communicate(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            check(False, "%s: still running %ss after EOF" % (self.name, timeout))
        self.lines += rest[0].decode().splitlines()
        eq(self.proc.returncode, 0, "%s: exit status after EOF (stderr %r)"
           % (self.name, rest[1].decode()))
        return rest[1].decode()

    def matching(self, pattern):
        """Every output line so far that matches @pattern."""
        return [m for m in map(re.compile(pattern).search, self.lines) if m]

    def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()


async def chat_both_ways(alice, bob, there, back):
    """alice says @there to bob, who gets it and acks it (alice sees it
    delivered), and answers @back. Returns the server id of @there."""
    await alice.say("/to bob", there)
    sid = (await alice.expect(r"^accepted cli-\S+ as (\d+)$")).group(1)
    await bob.expect(r"^message %s alice>bob: %s$" % (sid, re.escape(there)))
    await alice.expect(r"^delivered %s to bob$" % sid)
    await bob.say("/to alice", back)
    await alice.expect(r"^message \d+ bob>alice: %s$" % re.escape(back))
    return sid


async def test_message_delivered_and_read():
    srv = server("--ack-timeout", "5000")
    bob = await Cli.start(srv, "bob")
    alice = await Cli.start(srv, "alice")
    try:
        sid = await chat_both_ways(alice, bob, "hello bob", "hi  alice")
        await bob.say("/read")
        await alice.expect(r"^read %s by bob$" % sid)
        await alice.eof()
        await bob.eof()
    finally:
        alice.kill()
        bob.kill()


async def test_one_line_per_message_a_receipt_names():
    """bob acks three messages in one ack: the receipt alice gets names all
    three, and she shows one `delivered` line for each, as for one."""
    srv = server()
    alice = await Cli.start(srv, "alice")
    bob = await connect(srv, "bob")
    try:
        await alice.say("/to bob", "one", "two", "three")
        sids = [(await alice.expect(r"^accepted cli-\S+ as (\d+)$")).group(1) for _ in range(3)]
        got = [(await bob.expect_type("message"))["id"] for _ in range(3)]
        eq(sorted(got), sorted(sids), "the messages bob got")
        await bob.ack(*got)
        shown = [(await alice.expect(r"^delivered (\d+) to bob$")).group(1) for _ in sids]
        eq(sorted(shown), sorted(sids), "the delivered lines alice shows")
        await alice.eof()
        eq(len(alice.matching(r"^delivered ")), len(sids), "delivered lines in all")
    finally:
        alice.kill()
        await bob.close()


def receipt(rid, body, sender="bob"):
    return json.dumps({"v": 1, "type": "delivered", "id": rid, "from": sender, "to": "alice",
                       "ts": 1, "body": body})


async def test_hostile_receipts():
    """A server that is not vartalapd sends receipts vartalapd never would:
    each is acked and shown as far as it can be read, with an error line
    saying what is wrong, and the client goes on."""
    many = [{"ref": str(1000 + i), "cid": "c-%d" % i} for i in range(100000)]
    crowd = [{"user": "u%d" % i, "device": ""} for i in range(2000)]
    nobody = [0] * 1500
    frames = [
        receipt("1", {"device": "phone", "refs": [{"ref": "42", "cid": "c-1"},
                                                  {"ref": "43", "cid": "c-2"}]}),
        receipt("2", {"ref": "44", "cid": "c-3", "device": "phone"}),
        receipt("3", {"device": "", "refs": "45"}),
        receipt("4", {"device": "", "refs": []}),
        receipt("5", {"device": "", "refs": [{}, 46, {"ref": 47}, {"ref": "4\n8"},
                                             {"cid": "c-4"}, {"ref": "49"}]}),
        receipt("6", "not an object"),
        receipt("7", {"device": "tab", "refs": many}),
        receipt("8", {"device": "ph\u0007one", "refs": [{"ref": "50", "cid": "c-5"}]}),
        receipt("10", {"refs": [{"ref": "60", "cid": "c-6", "by": [
            {"user": "bob", "device": "phone"}, {"user": "carol", "device": ""}]}]}, "g:t"),
        receipt("11", {"refs": [{"ref": "61", "cid": "c-7", "by": "bob"}]}, "g:t"),
        receipt("12", {"refs": [{"ref": "62", "cid": "c-8", "by": [
            {"device": "x"}, {"user": "dan"}]}]}, "g:t"),
        receipt("13", {"refs": [{"ref": "63", "cid": "c-9", "by": crowd}]}, "g:t"),
        # Entries that name no device count against the lines of a receipt too.
        receipt("14", {"refs": [{"ref": "64", "cid": "c-10", "by": nobody}]}, "g:t"),
        # Ids no server sends are not shown as some other device.
        receipt("15", {"refs": [{"ref": "65", "cid": "c-11", "by": [
            {"user": "bob", "device": "d" * 65}, {"user": "bob", "device": 7},
            {"user": "b" * 65, "device": ""}, {"user": "carol", "device": "tab"}]}]}, "g:t"),
        receipt("16", {"device": "p" * 65, "refs": [{"ref": "66", "cid": "c-12"}]}),
        receipt("17", {"device": "", "refs": [{"ref": "67", "cid": "c-13"}]}, "b" * 100),
        # Fields and JSON are shown on one line, whatever they hold.
        '{"v":1,"type":"message","id":"18","from":"bob\\ndelivered 1 to x","to":"alice",'
        '"ts":1,"body":{"a":\n1}}',
        json.dumps({"v": 1, "type": "message", "id": "9", "from": "bob", "to": "alice",
                    "ts": 1, "body": {"text": "end"}}),
    ]
    acked = []

    async def serve(ws, _path):
        for f in frames:
            await ws.send(f)
        async for raw in ws:
            acked.extend(json.loads(raw).get("ids", []))

    bad = "error bad_receipt: delivered %s from bob: "
    group = "error bad_receipt: delivered %s from g:t: "
    want = (["delivered 42 to bob/phone", "delivered 43 to bob/phone",
             bad % 2 + "no list of refs", bad % 3 + "no list of refs",
             bad % 4 + "an empty list of refs"] +
            [bad % 5 + "ref %d names no server id" % i for i in range(1, 6)] +
            ["delivered 49 to bob", bad % 6 + "no list of refs"] +
            ["delivered %d to bob/tab" % (1000 + i) for i in range(64)] +
            [bad % 7 + "100000 refs, over the limit of 64: the last 99936 are not shown",
             "delivered 50 to bob/ph one",
             "delivered 60 to bob/phone", "delivered 60 to carol",
             group % 11 + "ref 1 has no list of devices",
             group % 12 + "ref 1 names a device without its user", "delivered 62 to dan"] +
            ["delivered 63 to u%d" % i for i in range(1024)] +
            [group % 13 + "2000 deliveries, over the limit of 1024: the last 976 are not shown"] +
            [group % 14 + "ref 1 names a device without its user"] * 1024 +
            [group % 14 + "1500 deliveries, over the limit of 1024: the last 476 are not shown"] +
            [group % 15 + "ref 1 names a user or device that is not an id"] * 3 +
            ["delivered 65 to carol/tab",
             bad % 16 + "a device that is not an id",
             "error bad_receipt: delivered 17 from : ref 1 names no user",
             'message 18 bob delivered 1 to x>alice: {"a": 1}',
             "message 9 bob>alice: end"])
    hostile = await websockets.serve(serve, "127.0.0.1", 0, max_size=None)
    url = "ws://127.0.0.1:%d" % hostile.sockets[0].getsockname()[1]
    alice = await Cli.start(None, "alice", url=url, token="not.checked.here")
    try:
        await alice.expect(r"^message 9 ")
        eq(alice.lines[1:], want, "what alice shows")
        await alice.eof()
        await await_until(lambda: len(acked) >= len(frames), 5, "the acks")
        eq(sorted(acked, key=int), [str(i) for i in range(1, 19)], "every event acked once")
    finally:
        alice.kill()
        hostile.close()
        await hostile.wait_closed()


async def closed_by_the_client(send):
    """Run a client against a server that does @send(ws) on connecting and
    then waits for the end. Returns the client's exit status, its stderr and
    the close code of each connection the server had."""
    closes = []

    async def serve(ws, _path):
        try:
            await send(ws)
        except (websockets.ConnectionClosed, websockets.InvalidState):
            pass  # the client's close came while sending
        await ws.wait_closed()
        closes.append(ws.close_code)

    hostile = await websockets.serve(serve, "127.0.0.1", 0)
    url = "ws://127.0.0.1:%d" % hostile.sockets[0].getsockname()[1]
    alice = await Cli.start(None, "alice", url=url, token="not.checked.here")
    try:
        try:
            rc = await asyncio.wait_for(alice.proc.wait(), 10)
        except asyncio.TimeoutError:
            check(False, "the client still runs 10 s after what the server sent")
        err = (await alice.proc.stderr.read()).decode()
        check("connecting again" not in err, "no reconnect: %r" % err)
        eq(await alice.proc.stdout.read(), b"", "nothing shown after connected")
        await await_until(lambda: closes, 5, "the end of the connection at the server")
        return rc, err, closes
    finally:
        alice.kill()
        hostile.close()
        await hostile.wait_closed()


async def test_message_over_the_limit():
    """A server that is not vartalapd sends one message larger than any
    event, in fragments: the client takes no more of it, closes with 1009,
    says why and exits, for connecting again would bring the same."""
    head = json.dumps({"v": 1, "type": "message", "id": "1", "from": "bob", "to": "alice",
                       "ts": 1, "body": {"text": ""}})[:-3]
    limit = 16 * 1024 * 1024 + 16 * 1024
    mib = "x" * (1 << 20)

    def fragments():
        yield head
        for _ in range(limit // len(mib) + 1):
            yield mib
        yield '"}}'

    async def too_big(ws):
        await ws.send(fragments())

    rc, err, closes = await closed_by_the_client(too_big)
    eq(rc, 1, "exit status after a message over the limit (stderr %r)" % err)
    eq(closes, [1009], "the close code of each connection the server had")
    want = ("vartalap-cli: closed the connection: the server sent a message over %d bytes,"
            " larger than any event (message too big), code 1009\n" % limit)
    check(want in err, "the reason on stderr: %r" % err)


async def test_long_lines_are_sent_or_said():
    """A line as long as a message the server may take leaves the client
    (the server judges it: here too_large); a line longer than any server
    takes is not sent and said so, exit status 1. Neither loses the lines
    after it."""
    srv = server()
    bob = await Cli.start(srv, "bob")
    alice = await Cli.start(srv, "alice")
    try:
        alice.proc.stdin.write(b"/to bob\n" + b"x" * 70000 + b"\nafter one\n")
        await alice.expect(r"^error too_large ")
        await bob.expect(r"^message \d+ alice>bob: after one$")
        alice.proc.stdin.write(b"y" * (16 * 1024 * 1024 + 1) + b"\nafter two\n")
        await alice.expect(r"^error too_long: a line over 16777216 bytes was not sent$")
        await bob.expect(r"^message \d+ alice>bob: after two$")
        alice.proc.stdin.close()
        rc = await asyncio.wait_for(alice.proc.wait(), 10)
        eq(rc, 1, "exit status after a line that was not sent")
    finally:
        alice.kill()
        bob.kill()


async def test_every_byte_of_a_line_is_sent():
    """A line is sent whole: a NUL byte (as \\u0000) and a carriage return
    inside it reach the recipient; only the CR of a CRLF line end is not
    part of the text. A command holding a NUL byte is refused, not taken
    for the command its first part names."""
    srv = server()
    alice = await Cli.start(srv, "alice")
    bob = None
    try:
        alice.proc.stdin.write(b"/to bob\nab\0cd\nin\rside\r\n/to carol\0x\nlast\r\n")
        await alice.expect(r"^error unknown_command: a command holds a NUL byte$")
        for _ in range(3):
            await alice.expect(r"^accepted ")
        got = await inbox(srv, "bob", 3)
        eq(sorted(got.values()), ["ab\0cd", "in\rside", "last"], "what bob received")
        await alice.eof()

        # A client shows a NUL as it was sent, and a CR as a space.
        alice = await Cli.start(srv, "alice")
        bob = await Cli.start(srv, "bob")
        alice.proc.stdin.write(b"/to bob\nab\0cd\nin\rside\n")
        await bob.expect(r"^message \d+ alice>bob: ab\\u0000cd$")
        await bob.expect(r"^message \d+ alice>bob: in side$")
    finally:
        alice.kill()
        if bob:
            bob.kill()


async def test_reading_pauses_while_much_waits():
    """While the server does not answer, the client takes no more lines once
    64 MiB of envelopes wait for their answers (long lines are not all held
    at once); when the answers come, it reads on and sends the rest."""
    srv = server("--max-message", str(16 << 20), "--rate", "0")
    alice = await Cli.start(srv, "alice")
    try:
        await alice.say("/to bob")
        srv.proc.send_signal(signal.SIGSTOP)
        try:
            lines = [b"%02d" % i + b"x" * (4 << 20) for i in range(24)]
            alice.proc.stdin.write(b"\n".join(lines) + b"\n")
            try:
                await asyncio.wait_for(alice.proc.stdin.drain(), 3)
                check(False, "96 MiB of lines all read while the server did not answer")
            except asyncio.TimeoutError:
                pass
        finally:
            srv.proc.send_signal(signal.SIGCONT)
        await asyncio.wait_for(alice.proc.stdin.drain(), 30)
        for _ in range(24):
            await alice.expect(r"^accepted ", timeout=30)
        await alice.eof(timeout=30)
    finally:
        alice.kill()


async def test_protocol_error_closes_and_exits():
    """A frame with a reserved bit set: closed with 1002, said, left."""
    async def rsv1(ws):
        ws.transport.write(b"\xc1\x02hi")

    rc, err, closes = await closed_by_the_client(rsv1)
    eq(rc, 1, "exit status after a frame with RSV1 (stderr %r)" % err)
    eq(closes, [1002], "the close code of each connection the server had")
    check("the server broke the WebSocket protocol, code 1002\n" in err,
          "the reason on stderr: %r" % err)


async def test_group_and_typing():
    srv = server("--ack-timeout", "5000")
    bob = await Cli.start(srv, "bob")
    carol = await Cli.start(srv, "carol")
    alice = await Cli.start(srv, "alice")
    try:
        await alice.say("/group create g:team Team bob carol")
        await alice.expect(r"^accepted cli-\S+ as \d+$")
        for c in (bob, carol):
            await c.expect(r"^group \d+ create g:team by alice: Team$")
        await alice.say("/typing", "hi team")
        for c in (bob, carol):
            await c.expect(r"^typing alice>g:team$")
            await c.expect(r"^message \d+ alice>g:team: hi team$")
        await bob.say("/to nobody@", "/nope")
        await bob.expect(r"^error unknown_command: /nope$")
        for c in (alice, bob, carol):
            await c.eof()
    finally:
        for c in (alice, bob, carol):
            c.kill()


async def test_longest_group_id_is_the_target():
    """A group id as long as a post may name (g: and 64 bytes) is the target
    whole: the post reaches that group, not the one a byte shorter, and the
    sender is shown each member's ack. A longer one is refused, not cut."""
    srv = server("--durability", "offline")
    long_g, short_g = "g:" + "L" * 64, "g:" + "L" * 63
    bob = await Cli.start(srv, "bob")
    carol = await Cli.start(srv, "carol")
    alice = await Cli.start(srv, "alice")
    try:
        await alice.say("/group create %s Long bob carol" % long_g,
                        "/group create %s Short bob carol" % short_g)
        for _ in range(2):
            await alice.expect(r"^accepted cli-\S+ as \d+$")
        for c in (bob, carol):
            for g in (long_g, short_g):
                await c.expect(r"^group \d+ create %s by alice: " % g)
        await alice.say("/to " + long_g, "hello")
        sid = (await alice.expect(r"^accepted cli-\S+ as (\d+)$")).group(1)
        for c in (bob, carol):
            await c.expect(r"^message %s alice>%s: hello$" % (sid, long_g))
        got = [(await alice.expect(r"^delivered %s to (\w+)$" % sid)).group(1) for _ in range(2)]
        eq(sorted(got), ["bob", "carol"], "the members' acks")

        await alice.say("/to g:" + "L" * 71, "lost")
        await alice.expect(r"^error bad_target: a user or group id has at most 72 bytes$")
        await alice.expect(r"^error no_target: ")
        for c in (alice, bob, carol):
            await c.eof()
        check(not bob.matching(r"^message \d+ alice>%s:" % short_g), "a post to the short group")
    finally:
        for c in (alice, bob, carol):
            c.kill()


async def test_sigint_and_bad_token():
    srv = server()
    alice = await Cli.start(srv, "alice")
    alice.proc.send_signal(signal.SIGINT)
    eq(await asyncio.wait_for(alice.proc.wait(), 5), 0, "exit status after SIGINT")

    proc = await asyncio.create_subprocess_exec(
        CLI, "--url", "ws://127.0.0.1:%d" % srv.port, "--token", "not.a.token",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 5)
    eq(proc.returncode, 1, "exit status with a bad token")
    check(b"401" in err, "the refusal is reported: %r" % err)


async def test_device_the_token_names_wins_and_is_said():
    srv = server()
    alice = await Cli.start(srv, "alice", device="laptop", token=srv.token("alice", "phone"))
    err = await alice.eof()
    check("--device laptop is ignored: the token names device phone" in err,
          "the ignored --device is said: %r" % err)
    plain = await Cli.start(srv, "alice", device="phone", token=srv.token("alice", "phone"))
    err = await plain.eof()
    check("ignored" not in err, "nothing said when they agree: %r" % err)


async def test_logged_out_exits():
    srv = server()
    t = srv.forge_token("alice", time.time() + 3600, dev="phone")
    alice = await Cli.start(srv, "alice", token=t)
    st, r = http_request(srv, "POST", "/v1/logout", token=t)
    eq(st, 200, "logout: %r" % (r,))
    _out, err = await asyncio.wait_for(alice.proc.communicate(), 5)
    eq(alice.proc.returncode, 1, "exit status once logged out")
    check(b"(logged out), code 4003" in err, "the close is reported: %r" % err)

    # started again with the revoked token: refused, and the refusal says why
    proc = await asyncio.create_subprocess_exec(
        CLI, "--url", "ws://127.0.0.1:%d" % srv.port, "--token", t,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 5)
    eq(proc.returncode, 1, "exit status with a revoked token")
    check(b"401 Unauthorized (token_revoked)" in err, "the refusal names its code: %r" % err)


async def refused(*args, timeout=5):
    """Run the client with @args and no input; it must give up by itself
    with status 1. Returns its stderr."""
    proc = await asyncio.create_subprocess_exec(
        CLI, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        _out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        check(False, "vartalap-cli %r still running after %ss" % (args, timeout))
    eq(proc.returncode, 1, "exit status of vartalap-cli %r (stderr %r)" % (args, err))
    return err.decode()


# ---------------------------------------------------------------- wss://

async def test_wss_round_trip():
    cert, key = make_cert("cli")
    srv = TlsServer(cert, key).start()
    url = "wss://127.0.0.1:%d" % srv.port
    bob = await Cli.start(srv, "bob", url=url, extra=["--ca-file", cert])
    alice = await Cli.start(srv, "alice", url=url, extra=["--ca-file", cert])
    try:
        await chat_both_ways(alice, bob, "over tls", "and back")
        await alice.eof()
        await bob.eof()
    finally:
        alice.kill()
        bob.kill()


async def test_wss_refuses_untrusted_server():
    cert, key = make_cert("selfsigned")
    srv = TlsServer(cert, key).start()
    url = "wss://127.0.0.1:%d" % srv.port
    tok = srv.token("alice")

    # The system's roots do not know a self-signed certificate.
    err = await refused("--url", url, "--token", tok)
    check("certificate was refused: self-signed certificate" in err and "--ca-file" in err,
          "the refusal says why and what to do: %r" % err)

    # A trusted certificate is refused for a name it does not carry: it
    # names the address 127.0.0.1, not the host name localhost.
    err = await refused("--url", "wss://localhost:%d" % srv.port, "--token", tok,
                        "--ca-file", cert)
    check("certificate was refused: hostname mismatch" in err,
          "a name mismatch is said plainly: %r" % err)

    # A CA file that is not there is said before anything is sent.
    err = await refused("--url", url, "--token", tok, "--ca-file", cert + ".missing")
    check("cannot read the CA file" in err, "a missing CA file is said plainly: %r" % err)


# ---------------------------------------------------------------- staying up

def free_port():
    """A port nothing listens on now, for a server restarted on the same port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def inbox(srv, user, want, timeout=10):
    """Connect as @user, take and ack every message until @want distinct
    server ids came and a quiet moment passed; returns {server id: body text}."""
    c = await connect(srv, user)
    got = {}
    try:
        while len(got) < want:
            m = await c.expect_type("message", timeout=timeout)
            got[m["id"]] = m["body"]["text"]
            await c.ack(m["id"])
        for m in await c.drain(0.5):
            if m.get("type") == "message":
                got[m["id"]] = m["body"]["text"]
    finally:
        await c.close()
    return got


def exactly_once(got, lines, what):
    """Every line of @lines is the text of exactly one server id in @got."""
    texts = sorted(got.values())
    eq(texts, sorted(lines), "%s: the texts received, one server id each" % what)


async def test_server_restarts_lose_and_double_nothing():
    port = free_port()
    srv = Server("--listen", "127.0.0.1:%d" % port).start()
    alice = await Cli.start(srv, "alice")
    lines = ["line %02d" % i for i in range(30)]
    try:
        await alice.say("/to bob")
        for i, line in enumerate(lines):
            await alice.say(line)
            await asyncio.sleep(0.05)
            if i == 9:
                srv.restart(signal.SIGTERM)
            elif i == 19:
                # Killed once alice is back on the restarted server.
                await alice.expect(r"^connected$")
                srv.restart(signal.SIGKILL)
        await alice.expect(r"^connected$")
        await alice.eof(timeout=20)
        accepted = alice.matching(r"^accepted (cli-\S+) as (\d+)$")
        eq(len(accepted), len(lines), "one accepted line per line typed")
        eq(len({m.group(1) for m in accepted}), len(lines), "distinct client ids")
        got = await inbox(srv, "bob", len(lines))
        exactly_once(got, lines, "bob")
        eq(sorted(got), sorted(m.group(2) for m in accepted), "the ids alice was told")
        shown = [line for line in alice.lines if line != "connected"]
        eq(sorted(set(shown)), sorted(shown), "alice shows every event once")
    finally:
        alice.kill()


async def test_no_reconnect_exits():
    srv = server()
    alice = await Cli.start(srv, "alice", extra=["--no-reconnect"])
    srv.stop(signal.SIGTERM)
    rc = await asyncio.wait_for(alice.proc.wait(), 5)
    eq(rc, 1, "exit status when the server goes away with --no-reconnect")
    err = (await alice.proc.stderr.read()).decode()
    check("code 1001" in err, "the close is reported: %r" % err)


async def test_rate_limited_lines_arrive_once():
    srv = server("--rate", "4")
    alice = await Cli.start(srv, "alice")
    lines = ["burst %02d" % i for i in range(16)]
    try:
        await alice.say("/to bob", *lines)
        err = await alice.eof(timeout=20)
        check("rate_limited" in err, "the server did limit the rate: %r" % err)
        eq(alice.matching(r"^error"), [], "no error shown for a retried line")
        eq(len(alice.matching(r"^accepted ")), len(lines), "one accepted line per line typed")
        exactly_once(await inbox(srv, "bob", len(lines)), lines, "bob")
    finally:
        alice.kill()


async def test_storage_full_is_sent_again_once_room_is_made():
    """A full store answers storage_full: the client holds the line back and
    sends it again, and once bob's acks made room it is accepted and reaches
    dave once."""
    srv = server("--lmdb-map-size", "4", "--rate", "0")
    await known(srv, "bob")
    stored = []
    for size in (3000, 100, 1):
        got, (st, err) = fill(srv, "carol", "bob", "s%d-" % size, size)
        eq((st, err.get("code")), (507, "storage_full"), "the store is full")
        stored += got
    alice = await Cli.start(srv, "alice")
    try:
        await alice.say("/to dave", "while full")
        await asyncio.sleep(1.5)
        btok = srv.token("bob")
        listed = fetch_all(srv, btok)
        eq(len(listed), len(stored), "bob's messages")
        for i in range(0, len(listed), 100):
            ack_http(srv, btok, [m["id"] for m in listed[i:i + 100]])
        await alice.expect(r"^accepted ", timeout=20)
        err = await alice.eof(timeout=10)
        check("storage_full" in err, "the client said it sends again: %r" % err)
        eq(len(alice.matching(r"^accepted ")), 1, "one accepted line")
        exactly_once(await inbox(srv, "dave", 1), ["while full"], "dave")
    finally:
        alice.kill()


async def lines_over_the_limit(srv, want_reconnect):
    """alice types short lines and lines over the server's --max-message of
    1024 bytes, one long enough to be taken (600 bytes), in between: each
    line too long is refused, named by its client id, and not sent again;
    the others are accepted and reach bob once each; nothing is left
    unanswered at the end."""
    long1, long2, mid = "x" * 2000, "y" * 3000, "m" * 600
    lines = ["s1", long1, "s2", long2, "s3", mid, "s4"]
    taken = ["s1", "s2", "s3", mid, "s4"]
    alice = await Cli.start(srv, "alice")
    try:
        await alice.say("/to bob", *lines)
        err = await alice.eof(timeout=20)
        refused = alice.matching(r"^error too_large ref cli-\d+-\d+-(\d+): ")
        eq(sorted(m.group(1) for m in refused), ["2", "4"], "the lines refused, by client id")
        eq(len(alice.matching(r"^error ")), 2, "no other error shown (stderr %r)" % err)
        eq(len(alice.matching(r"^accepted ")), len(taken), "one accepted line per line taken")
        check("unanswered" not in err and "without an answer" not in err,
              "nothing left unanswered: %r" % err)
        reconnects = len(alice.matching(r"^connected$"))
        check(reconnects > 1 if want_reconnect else reconnects == 1,
              "connected lines: %d (stderr %r)" % (reconnects, err))
        exactly_once(await inbox(srv, "bob", len(taken)), taken, "bob")
    finally:
        alice.kill()


async def test_too_large_without_a_ref():
    """Frames up to 64 KiB reach the engine, which answers a line over
    --max-message with too_large and no ref (it reads nothing of it)."""
    await lines_over_the_limit(server("--max-message", "1024", "--max-frame", "65536"), False)


async def test_too_large_closed_1009():
    """With the frame limit at --max-message, the server closes the
    connection with 1009 over a line too long: the client drops that line,
    connects again and sends the rest."""
    await lines_over_the_limit(server("--max-message", "1024"), True)


class Relay:
    """A TCP relay between the client and vartalapd standing for the
    network: it can drop what goes one way, and cut every connection."""

    def __init__(self, port):
        self.port = port
        self.drop_up = False    # bytes from the client never reach the server
        self.drop_down = False  # bytes from the server never reach the client
        self.conns = []
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, cr, cw):
        sr, sw = await asyncio.open_connection("127.0.0.1", self.port)
        self.conns += [cw, sw]
        await asyncio.gather(self._pipe(cr, sw, "drop_up"), self._pipe(sr, cw, "drop_down"))

    async def _pipe(self, r, w, drop):
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                if not getattr(self, drop):
                    w.write(data)
                    await w.drain()
        except (ConnectionError, OSError):
            pass
        w.close()

    def cut(self):
        for w in self.conns:
            w.transport.abort()
        self.conns = []

    def close(self):
        self.cut()
        self.server.close()


async def test_lost_acks_and_answers_over_a_dropped_network():
    srv = server("--ack-timeout", "30000")
    relay = Relay(srv.port)
    url = "ws://127.0.0.1:%d" % await relay.start()
    alice = await Cli.start(srv, "alice", url=url)
    bob = await connect(srv, "bob")
    try:
        # Alice's acks are lost: after the reconnect the server pushes the
        # three again; alice acks them but shows each once.
        relay.drop_up = True
        sids = []
        for i in range(3):
            await bob.message("alice", "b%d" % i, {"text": "to alice %d" % i})
            sids.append((await bob.expect_type("accepted", ref="b%d" % i))["id"])
            await alice.expect(r"^message %s bob>alice: to alice %d$" % (sids[-1], i))
        relay.drop_up = False
        relay.cut()
        await alice.expect(r"^connected$")
        refs = all_refs(await bob.expect_refs(len(sids)))
        eq(sorted(r["ref"] for r in refs), sorted(sids), "the refs of bob's receipts")
        await bob.message("alice", "b3", {"text": "after"})
        await alice.expect(r"^message \d+ bob>alice: after$")
        for i, sid in enumerate(sids):
            eq(len(alice.matching(r"^message %s " % sid)), 1, "alice shows message %s" % sid)

        # The server's answers are lost: alice re-sends with the same ids,
        # and the server takes each line once.
        relay.drop_down = True
        await alice.say("/to bob", "one", "two", "three")
        got = {}
        while len(got) < 3:
            m = await bob.expect_type("message")
            got[m["id"]] = m["body"]["text"]
            await bob.ack(m["id"])
        relay.drop_down = False
        relay.cut()
        await alice.expect(r"^connected$")
        await alice.eof()
        accepted = alice.matching(r"^accepted cli-\S+ as (\d+)$")
        eq(sorted(m.group(1) for m in accepted), sorted(got), "alice's answers, once each")
        await bob.quiet(0.5, lambda e: e.get("type") == "message", "a message sent twice")
        exactly_once(got, ["one", "two", "three"], "bob")
    finally:
        alice.kill()
        relay.close()
        await bob.close()


async def test_every_option_is_documented():
    """Each option of --help is in the manual page docs/vartalap-cli.1."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    proc = await asyncio.create_subprocess_exec(CLI, "--help", stdout=asyncio.subprocess.PIPE)
    out = (await proc.communicate())[0].decode()
    opts = set(re.findall(r"--([a-z][a-z-]+)", out))
    check({"url", "token", "device", "ca-file", "no-reconnect"} <= opts,
          "options found in --help: %r" % sorted(opts))
    with open(os.path.join(root, "docs", "vartalap-cli.1")) as f:
        man = f.read().replace("\\-", "-")
    for o in sorted(opts - {"help"}):
        check(re.search(r"^\.B[I]? --%s\b" % re.escape(o), man, re.M) is not None,
              "docs/vartalap-cli.1 documents --%s" % o)


if __name__ == "__main__":
    run([test_message_delivered_and_read, test_one_line_per_message_a_receipt_names,
         test_hostile_receipts, test_message_over_the_limit, test_long_lines_are_sent_or_said,
         test_every_byte_of_a_line_is_sent, test_reading_pauses_while_much_waits,
         test_protocol_error_closes_and_exits,
         test_group_and_typing, test_longest_group_id_is_the_target, test_sigint_and_bad_token,
         test_device_the_token_names_wins_and_is_said, test_logged_out_exits,
         test_wss_round_trip,
         test_wss_refuses_untrusted_server,
         test_server_restarts_lose_and_double_nothing, test_no_reconnect_exits,
         test_rate_limited_lines_arrive_once, test_storage_full_is_sent_again_once_room_is_made,
         test_too_large_without_a_ref,
         test_too_large_closed_1009, test_lost_acks_and_answers_over_a_dropped_network,
         test_every_option_is_documented])
