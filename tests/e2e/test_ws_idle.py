#!/usr/bin/python3
"""WebSockets that hold nothing while idle, and input in any split.

After the upgrade a WebSocket keeps no buffer and no timer of its own: many
authenticated connections sit quiet through several keepalive rounds and
each still gets its message and acks it. Input is parsed as it comes: a
frame arriving a byte at a time, and frames sent in the same packet as the
upgrade request (before the 101 was even written), are read like any other;
a bad frame in that packet fails the connection as usual."""

import asyncio
import base64
import json
import os
import socket
import struct
import time

from harness import (RawWS, check, eq, connect, fetch, run, send_http, server, wait_until)

N = 150


def frame(opcode, payload, fin=True):
    """A masked client frame."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    hdr = struct.pack("!BB", b0, 0x80 | n) if n < 126 else struct.pack("!BBH", b0, 0xFE, n)
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def envelope(cid, to="bob", body="x"):
    return json.dumps({"v": 1, "type": "message", "id": cid, "to": to,
                       "body": body}).encode()


def upgrade_request(srv, token):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            "Authorization: Bearer %s\r\n\r\n" % (srv.port, key, token)).encode()


async def frames_until(ws, want, timeout=5.0):
    """Frames read until one satisfies @want; all of them, in order."""
    got = []
    deadline = time.monotonic() + timeout
    while not got or not want(got[-1]):
        left = deadline - time.monotonic()
        check(left > 0, "no expected frame within %.1fs; got %r" % (timeout, got))
        op, data = await ws.read_frame(left)
        check(op is not None, "connection ended; frames so far %r" % got)
        got.append((op, data))
    return got


def answer_to(cid):
    return lambda f: f[0] == 0x1 and json.loads(f[1]).get("ref") == cid


async def test_idle_connections_keep_receiving():
    # Pings every second: the clients answer them (the library does), so
    # every socket goes through several keepalive rounds with no message.
    srv = server("--ping-interval", "1", "--ping-timeout", "2", "--rate", "0")
    # The start-up probe's HTTP socket goes first: it is not part of the count.
    wait_until(lambda: srv.conn_sockets() == 0, 10, "the start-up probe's socket to close")
    fds = srv.fd_count()
    users = ["idle%03d" % i for i in range(N)]
    clients = [await connect(srv, u) for u in users]
    await asyncio.sleep(3.5)
    check(srv.alive(), "server died while the sockets were idle")

    sender = srv.token("sender")
    for u in users:
        st, acc = send_http(srv, sender, u, "to-" + u, "after the quiet")
        eq(acc.get("type"), "accepted", "send to " + u)
    for u, c in zip(users, clients):
        m = await c.expect_type("message", 5, cid="to-" + u)
        eq(m.get("body"), "after the quiet", "body for " + u)
        await c.ack(m["id"])
    for u in users[:5]:
        eq(fetch(srv, srv.token(u))["messages"], [], "inbox of %s after its ack" % u)
    log = open(srv.log_path, errors="replace").read()
    check("ping unanswered" not in log, "an answering client was dropped:\n" + log[-2000:])
    eq(srv.conn_sockets(), N, "sockets of the idle clients")
    for c in clients:
        await c.close()
    # Each socket closed once: none is left, and no descriptor lent for the
    # hand-off from evhttp stays open.
    wait_until(lambda: srv.conn_sockets() == 0, 10, "the server to let go of every socket")
    eq(srv.fd_count(), fds, "descriptors after every client left")


async def test_frames_a_byte_at_a_time():
    srv = server()
    ws = await RawWS.open(srv, srv.token("alice"))
    sock = ws.w.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = envelope("drip", body="one byte per read")
    data = (frame(0x1, msg[:20], fin=False) + frame(0x9, b"ping in between")
            + frame(0x0, msg[20:]))
    for i in range(len(data)):
        ws.w.write(data[i:i + 1])
        await ws.w.drain()
        await asyncio.sleep(0.002)
    got = await frames_until(ws, answer_to("drip"))
    eq(got[0], (0xA, b"ping in between"), "the pong came first")
    eq(json.loads(got[-1][1]).get("type"), "accepted", "answer to the dripped message")
    ws.close()
    eq([m.get("cid") for m in fetch(srv, srv.token("bob"))["messages"]], ["drip"],
       "bob's inbox")


async def test_frames_in_the_upgrade_packet():
    srv = server()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    second = frame(0x1, envelope("second"))
    # The request, a whole message, a ping, and half of another message,
    # in one write: the server reads them together with the request.
    writer.write(upgrade_request(srv, srv.token("alice")) + frame(0x1, envelope("first"))
                 + frame(0x9, b"early") + second[:9])
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    check(head.startswith(b"HTTP/1.1 101 "), "handshake: %r" % head[:80])
    ws = RawWS(reader, writer)
    got = await frames_until(ws, answer_to("first"))
    check((0xA, b"early") in got, "no pong for the early ping: %r" % got)
    writer.write(second[9:])
    await writer.drain()
    await frames_until(ws, answer_to("second"))
    ws.close()
    eq(sorted(m.get("cid") for m in fetch(srv, srv.token("bob"))["messages"]),
       ["first", "second"], "bob's inbox")

    # A frame that breaks the protocol in that packet fails the connection.
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(upgrade_request(srv, srv.token("alice")) + b"\x81\x05hello")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    check(head.startswith(b"HTTP/1.1 101 "), "handshake: %r" % head[:80])
    ws = RawWS(reader, writer)
    eq(await ws.close_code(), 1002, "close code for an unmasked frame behind the request")
    ws.close()


if __name__ == "__main__":
    run([test_idle_connections_keep_receiving, test_frames_a_byte_at_a_time,
         test_frames_in_the_upgrade_packet], total_timeout=100.0)
