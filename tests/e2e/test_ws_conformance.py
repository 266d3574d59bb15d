#!/usr/bin/python3
"""RFC 6455 conformance of the WebSocket endpoint with hand-made frames:
field cases B13 (UTF-8), B14(b)-(f) (frame headers), B15 (close handshake)
and B16 (handshake variants).

Every hostile frame goes over its own connection, after a real upgrade.
Throughout, two other users (carol and dave) stay connected, and after each
check carol sends dave a message that must be accepted, pushed and
delivered: a bad socket must not disturb anyone else. Frames that are
refused carry a well-formed message to bob, and bob's inbox must stay empty.

B14(a), a header claiming 4 GiB followed by a stall, is covered by
test_limits.py::test_b14a_huge_frame_claim_gets_1009_at_once."""

import asyncio
import base64
import hashlib
import json
import os
import struct
import time

from harness import (TestFailure, check, delivered_for, eq, connect, fetch, run, server, RawWS,
                     send_http)

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def envelope(cid, body="x"):
    return json.dumps({"v": 1, "type": "message", "id": cid, "to": "bob",
                       "body": body}).encode()


def frame(opcode, payload, fin=True, mask=True, rsv=0, length=None):
    """Bytes of one frame. @length overrides the length field only (the
    payload written is still @payload)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    m = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def write(ws, data):
    ws.w.write(data)
    try:
        await ws.w.drain()
    except (ConnectionError, OSError):
        pass


async def read_close(ws, timeout=3.0):
    """(close payload, data frames seen before it, pongs seen before it).
    Raises when the socket ends or stays silent without a close frame."""
    deadline = time.monotonic() + timeout
    data_frames, pongs = [], []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("no close frame within %.1fs" % timeout)
        try:
            op, payload = await ws.read_frame(left)
        except asyncio.TimeoutError:
            continue
        except asyncio.IncompleteReadError:
            op = None
        if op is None:
            raise TestFailure("TCP closed without a close frame (frames before: %r)"
                              % data_frames)
        if op == 0x8:
            return payload, data_frames, pongs
        if op == 0xA:
            pongs.append(payload)
        else:
            data_frames.append((op, payload))


async def close_code_of(ws, timeout=3.0):
    payload, frames, _ = await read_close(ws, timeout)
    check(len(payload) >= 2, "close frame without a code: %r" % payload)
    return struct.unpack("!H", payload[:2])[0]


async def eof_within(ws, timeout):
    """Seconds until the server drops TCP; fails on any data frame first."""
    t0 = time.monotonic()
    while True:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            raise TestFailure("server kept TCP open %.1fs after its close" % timeout)
        try:
            chunk = await asyncio.wait_for(ws.r.read(65536), left)
        except asyncio.TimeoutError:
            continue
        except ConnectionError:
            return time.monotonic() - t0
        if not chunk:
            return time.monotonic() - t0
        raise TestFailure("server sent %r after its close frame" % chunk[:60])


class Bystanders:
    """carol and dave, connected for the whole test; round() proves they
    still chat."""

    def __init__(self, srv):
        self.srv = srv
        self.n = 0

    async def open(self):
        self.carol = await connect(self.srv, "carol")
        self.dave = await connect(self.srv, "dave")
        return self

    async def round(self, after):
        self.n += 1
        cid = "by-%d" % self.n
        try:
            await self.carol.message("dave", cid, {"after": after})
            acc = await self.carol.expect_type("accepted", 5, ref=cid)
            m = await self.dave.expect_type("message", 5, cid=cid)
            await self.dave.ack(m["id"])
            await self.carol.expect(delivered_for(acc["id"]), 5, "delivered")
        except TestFailure as e:
            raise TestFailure("other users' chat broken after %s: %s" % (after, e))
        check(self.srv.alive(), "server died after %s" % after)

    async def close(self):
        await self.carol.close()
        await self.dave.close()


def bob_inbox(srv):
    return [(m.get("cid"), m.get("body")) for m in fetch(srv, srv.token("bob"))["messages"]]


# ----------------------------------------------------------------- B13

async def test_b13_utf8():
    srv = server()
    by = await Bystanders(srv).open()
    tok = srv.token("alice")

    # Valid: "\u20ac" (E2 82 AC) split between its bytes across fragments.
    ws = await RawWS.open(srv, tok)
    await write(ws, frame(0x1, b'{"v":1,"type":"message","id":"euro","to":"bob","body":"\xe2',
                          fin=False))
    await write(ws, frame(0x0, b'\x82\xac"}'))
    op, data = await ws.read_frame()
    eq(op, 0x1, "answer to the fragmented euro is a text frame")
    eq(json.loads(data).get("type"), "accepted", "fragmented euro")
    ws.close()
    await by.round("the split euro")

    bad = {
        "ED A0 80 (encoded surrogate)": b"\xed\xa0\x80",
        "C0 AF (overlong)": b"\xc0\xaf",
        "F4 90 80 80 (above U+10FFFF)": b"\xf4\x90\x80\x80",
    }
    for i, (what, seq) in enumerate(bad.items()):
        ws = await RawWS.open(srv, tok)
        await write(ws, frame(0x1, b'{"v":1,"type":"message","id":"u%d","to":"bob","body":"a'
                              % i + seq + b'b"}'))
        eq(await close_code_of(ws), 1007, "close code for " + what)
        ws.close()
        await by.round(what)

    # The message ends in the middle of a sequence (E2 82), split or not.
    ws = await RawWS.open(srv, tok)
    await write(ws, frame(0x1, b'{"v":1,"type":"message","id":"t1","to":"bob","body":"ab\xe2\x82'))
    eq(await close_code_of(ws), 1007, "close code for a message ending in E2 82")
    ws.close()
    await by.round("truncated E2 82")
    ws = await RawWS.open(srv, tok)
    await write(ws, frame(0x1, b'{"v":1,"type":"message","id":"t2","to":"bob","body":"ab\xe2',
                          fin=False))
    await write(ws, frame(0x0, b'\x82'))
    eq(await close_code_of(ws), 1007, "close code for fragments ending in E2 82")
    ws.close()
    await by.round("truncated E2 | 82")

    # A close reason that is not UTF-8.
    ws = await RawWS.open(srv, tok)
    await write(ws, frame(0x8, b"\x03\xe8\xff\xfe"))
    eq(await close_code_of(ws), 1007, "close code for a close reason FF FE")
    ws.close()
    await by.round("close reason FF FE")

    eq(bob_inbox(srv), [("euro", "\u20ac")], "only the valid euro message reached bob")
    await by.close()


# ----------------------------------------------------------------- B14 (b)-(f)

async def test_b14_frame_header_violations_1002():
    srv = server()
    by = await Bystanders(srv).open()
    tok = srv.token("alice")
    msg = envelope("h")
    cases = {
        # (b) 64-bit length with the top bit set; the payload follows.
        "64-bit length with the top bit": bytes([0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, len(msg)])
        + b"\x00\x00\x00\x00" + msg,
        # (c) an unmasked client frame.
        "unmasked frame": frame(0x1, msg, mask=False),
        "unmasked 81 05 hello": b"\x81\x05hello",
        # (d) RSV1 with no extension negotiated (also RSV2, RSV3).
        "RSV1 set": frame(0x1, msg, rsv=4),
        "RSV2 set": frame(0x1, msg, rsv=2),
        "RSV3 set": frame(0x1, msg, rsv=1),
        # (e) reserved opcodes.
        "opcode 0x3": frame(0x3, msg),
        "opcode 0xB": frame(0xB, b"x"),
        # (f) control frames over 125 bytes, or fragmented.
        "ping with 126 bytes": frame(0x9, b"p" * 126),
        "close with 126 bytes": frame(0x8, b"\x03\xe8" + b"r" * 124),
        "fragmented ping": frame(0x9, b"p", fin=False),
        # A continuation that continues nothing.
        "continuation without a start": frame(0x0, msg),
        # A new text frame while a fragmented message is open.
        "text inside a fragmented message": frame(0x1, msg[:5], fin=False) + frame(0x1, msg),
    }
    for what, data in cases.items():
        ws = await RawWS.open(srv, tok)
        await write(ws, data)
        eq(await close_code_of(ws), 1002, "close code for " + what)
        ws.close()
        await by.round(what)
    eq(bob_inbox(srv), [], "nothing routed from a frame that broke the protocol")
    await by.close()


async def test_ping_between_fragments():
    srv = server()
    by = await Bystanders(srv).open()
    ws = await RawWS.open(srv, srv.token("alice"))
    msg = envelope("frag-ping", "one message, three fragments")
    await write(ws, frame(0x1, msg[:10], fin=False))
    await write(ws, frame(0x9, b"are you there"))
    await write(ws, frame(0x0, msg[10:30], fin=False))
    await write(ws, frame(0x9, b""))
    await write(ws, frame(0x0, msg[30:]))
    got = []
    deadline = time.monotonic() + 5
    while not any(op == 0x1 for op, _ in got):
        check(time.monotonic() < deadline, "no answer to the fragmented message: %r" % got)
        op, data = await ws.read_frame(5)
        check(op is not None, "connection ended; frames so far %r" % got)
        got.append((op, data))
    pongs = [d for op, d in got if op == 0xA]
    eq(pongs[:2], [b"are you there", b""], "pongs between fragments, with their payloads")
    text = [json.loads(d) for op, d in got if op == 0x1]
    eq((text[0].get("type"), text[0].get("ref")), ("accepted", "frag-ping"), "answer")
    ws.close()
    eq(bob_inbox(srv), [("frag-ping", "one message, three fragments")], "delivered intact")
    await by.round("ping between fragments")

    # A real client's fragmented message (python-websockets sends an
    # iterable as one message in fragments).
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    body = "fragmented \u20ac " + "z" * 3000
    whole = json.dumps({"v": 1, "type": "message", "id": "lib-frag", "to": "bob", "body": body},
                       ensure_ascii=False)
    await alice.ws.send([whole[:7], whole[7:1000], whole[1000:2000], whole[2000:]])
    await alice.expect_type("accepted", 5, ref="lib-frag")
    m = await bob.expect_type("message", 5, cid="lib-frag")
    eq(m.get("body"), body, "body of the fragmented message")
    await bob.ack(m["id"])
    await alice.close()
    await bob.close()
    await by.round("a library's fragmented message")
    await by.close()


# ----------------------------------------------------------------- B15

async def test_b15_close_handshake():
    srv = server()
    by = await Bystanders(srv).open()
    tok = srv.token("alice")

    # (a) An empty close is answered with an empty close, then TCP ends.
    ws = await RawWS.open(srv, tok)
    await write(ws, frame(0x8, b""))
    payload, frames, _ = await read_close(ws)
    eq(payload, b"", "reply to an empty close")
    eq(frames, [], "data frames before the close reply")
    t = await eof_within(ws, 3.0)
    check(t < 3.0, "TCP end after the close exchange")
    ws.close()
    await by.round("an empty close")

    # (b) 1000 "bye" is echoed as 03 E8.
    ws = await RawWS.open(srv, tok)
    await write(ws, frame(0x8, b"\x03\xe8bye"))
    payload, frames, _ = await read_close(ws)
    eq(payload[:2], b"\x03\xe8", "code bytes echoed for 1000")
    await eof_within(ws, 3.0)
    ws.close()
    await by.round("close 1000 bye")

    # Codes a peer may send are echoed, not refused.
    for code in (1001, 1003, 1007, 1011, 3000, 4999):
        ws = await RawWS.open(srv, tok)
        await write(ws, frame(0x8, struct.pack("!H", code)))
        got = await close_code_of(ws)
        check(got in (code, 1000), "close %d answered %d" % (code, got))
        ws.close()
    await by.round("valid close codes")

    # (c) Codes that must not be sent on the wire; (d) a 1-byte payload.
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535):
        ws = await RawWS.open(srv, tok)
        await write(ws, frame(0x8, struct.pack("!H", code) + b"why"))
        eq(await close_code_of(ws), 1002, "answer to close code %d" % code)
        ws.close()
        await by.round("close code %d" % code)
    ws = await RawWS.open(srv, tok)
    await write(ws, frame(0x8, b"\x03"))
    eq(await close_code_of(ws), 1002, "answer to a 1-byte close payload")
    ws.close()
    await by.round("1-byte close payload")
    await by.close()


async def test_b15e_server_close_4001_then_silence_and_drop():
    srv = server("--ping-interval", "30")
    by = await Bystanders(srv).open()
    tok = srv.forge_token("alice", int(time.time()) + 2)
    ws = await RawWS.open(srv, tok)
    t0 = time.monotonic()
    payload, frames, _ = await read_close(ws, timeout=6.0)
    eq(payload[:2], b"\x0f\xa1", "close code bytes for 4001 (big-endian)")
    check(time.monotonic() - t0 < 5, "4001 came %.1fs after connect" % (time.monotonic() - t0))
    # The raw client never answers the close. Meanwhile bob sends to alice
    # and alice sends a message: nothing is pushed, nothing routed.
    st, acc = send_http(srv, srv.token("bob"), "alice", "after-close", "for later")
    await write(ws, frame(0x1, envelope("from-expired")))
    t1 = time.monotonic()
    took = await eof_within(ws, 6.0)
    check(took < 5.0, "TCP dropped %.1fs after the unanswered close" % took)
    ws.close()
    eq([m["cid"] for m in fetch(srv, srv.token("alice"))["messages"]], ["after-close"],
       "bob's message waits in alice's store")
    eq(bob_inbox(srv), [], "a frame sent after the close was not routed")
    print("  unanswered close: TCP dropped %.2fs after 4001 (sent %.2fs after connect)"
          % (time.monotonic() - t1, t1 - t0))
    await by.round("server-initiated close")
    await by.close()


# ----------------------------------------------------------------- B16

def accept_of(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


async def handshake(srv, request, one_byte=False, timeout=5.0):
    """(status, headers dict lower-cased, RawWS or None)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", srv.port), timeout)
    data = request.encode()
    if one_byte:
        sock = writer.get_extra_info("socket")
        import socket as _s
        sock.setsockopt(_s.IPPROTO_TCP, _s.TCP_NODELAY, 1)
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()
            await asyncio.sleep(0.001)
    else:
        writer.write(data)
        await writer.drain()
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.IncompleteReadError as e:
        raise TestFailure("no reply to the handshake: %r" % e.partial)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return status, hdrs, RawWS(reader, writer)


def request(srv, tok, lines):
    return "GET /v1/ws HTTP/1.1\r\n" + "".join(l + "\r\n" for l in lines) \
        + "Authorization: Bearer %s\r\n\r\n" % tok


async def test_b16_handshake_variants():
    srv = server()
    by = await Bystanders(srv).open()
    tok = srv.token("alice")
    eq(accept_of(RFC_KEY), RFC_ACCEPT, "test's own accept computation")
    host = "Host: 127.0.0.1:%d" % srv.port
    std = [host, "Upgrade: websocket", "Connection: Upgrade",
           "Sec-WebSocket-Key: " + RFC_KEY, "Sec-WebSocket-Version: 13"]
    variants = {
        "Connection: keep-alive, Upgrade": ([host, "Upgrade: websocket",
                                             "Connection: keep-alive, Upgrade",
                                             "Sec-WebSocket-Key: " + RFC_KEY,
                                             "Sec-WebSocket-Version: 13"], False),
        "Upgrade: WebSocket": ([host, "Upgrade: WebSocket", "Connection: Upgrade",
                                "Sec-WebSocket-Key: " + RFC_KEY,
                                "Sec-WebSocket-Version: 13"], False),
        "lower-case header names": (["host: 127.0.0.1:%d" % srv.port, "upgrade: websocket",
                                     "connection: upgrade", "sec-websocket-key: " + RFC_KEY,
                                     "sec-websocket-version: 13"], False),
        "Connection in two header lines": ([host, "Upgrade: websocket",
                                            "Connection: keep-alive", "Connection: Upgrade",
                                            "Sec-WebSocket-Key: " + RFC_KEY,
                                            "Sec-WebSocket-Version: 13"], False),
        "the request in 1-byte writes": (std, True),
    }
    for i, (what, (lines, one_byte)) in enumerate(variants.items()):
        st, hdrs, ws = await handshake(srv, request(srv, tok, lines), one_byte)
        eq(st, 101, "status for " + what)
        eq(hdrs.get("sec-websocket-accept"), [RFC_ACCEPT], "Accept for " + what)
        # The upgraded socket really works.
        cid = "hs-%d" % i
        await write(ws, frame(0x1, envelope(cid)))
        op, data = await ws.read_frame(5)
        eq(op, 0x1, "frame after the upgrade (%s)" % what)
        eq(json.loads(data).get("ref"), cid, "answer after the upgrade (%s)" % what)
        await write(ws, frame(0x8, b"\x03\xe8"))
        await read_close(ws)
        ws.close()
        await by.round(what)

    st, hdrs, ws = await handshake(srv, request(srv, tok, [
        host, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + RFC_KEY,
        "Sec-WebSocket-Version: 8"]))
    eq(st, 426, "status for Sec-WebSocket-Version: 8")
    eq(hdrs.get("sec-websocket-version"), ["13"], "Sec-WebSocket-Version in the 426")
    ws.close()
    st, hdrs, ws = await handshake(srv, request(srv, tok, [
        host, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"]))
    eq(st, 400, "status for a missing Sec-WebSocket-Key")
    ws.close()
    await by.round("refused handshakes")
    eq(sorted(c for c, _ in bob_inbox(srv)), ["hs-%d" % i for i in range(len(variants))],
       "one message from each upgraded variant")
    await by.close()


if __name__ == "__main__":
    run([test_b13_utf8,
         test_b14_frame_header_violations_1002,
         test_ping_between_fragments,
         test_b15_close_handshake,
         test_b15e_server_close_4001_then_silence_and_drop,
         test_b16_handshake_variants], total_timeout=55.0)
