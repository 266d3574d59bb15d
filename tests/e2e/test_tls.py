#!/usr/bin/python3
"""TLS on the shared port: wss:// and https:// with real clients, the
protocol floor, plain HTTP on the TLS port, and bad certificate files."""

import asyncio
import atexit
import base64
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import websockets

from harness import (check, eq, run, Server, TestFailure, wait_until, vartalapd_path)

CERTS = tempfile.mkdtemp(prefix="vt-tls-")
atexit.register(shutil.rmtree, CERTS, True)


def make_cert(name, san="IP:127.0.0.1"):
    """A self-signed certificate for @san (127.0.0.1 unless told); returns
    (cert, key) paths."""
    cert = os.path.join(CERTS, name + ".crt")
    key = os.path.join(CERTS, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=" + san],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class TlsServer(Server):
    """vartalapd with --tls-cert; ready once https://.../healthz answers."""

    def __init__(self, cert, key, *args):
        super().__init__("--tls-cert", cert, "--tls-key", key, "--storage", "memory", *args)
        self.cert = cert

    def start(self, timeout=10.0):
        self.runs += 1
        self.port_file = os.path.join(self.tmp, "port.%d" % self.runs)
        self.log_path = os.path.join(self.tmp, "log.%d" % self.runs)
        cmd = [self.bin, "--listen", "127.0.0.1:0", "--port-file", self.port_file,
               "--data-dir", self.data_dir, "--dev"] + self.args
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("vartalapd exited at start:\n" + self.log_tail())
            try:
                with open(self.port_file) as f:
                    return int(f.read().strip())
            except (FileNotFoundError, ValueError):
                return None

        self.port = wait_until(ready, timeout, "the port file")
        eq(self.curl("GET", "/healthz")[0], 200, "https healthz at start")
        return self

    def curl(self, method, path, token=None, body=None, scheme="https"):
        cmd = ["curl", "-sS", "--max-time", "5", "--cacert", self.cert, "-X", method,
               "-o", "-", "-w", "\n%{http_code}"]
        if token:
            cmd += ["-H", "Authorization: Bearer " + token]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        cmd.append("%s://127.0.0.1:%d%s" % (scheme, self.port, path))
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        if r.returncode != 0:
            return None, r.stderr
        data, _, code = r.stdout.rpartition(b"\n")
        return int(code), data

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx

    async def wss(self, user):
        uri = "wss://127.0.0.1:%d/v1/ws?token=%s" % (self.port, self.token(user))
        return await websockets.connect(uri, ssl=self.ssl_context(), ping_interval=None)


def s_client(port, *args):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    return r.returncode, r.stdout.decode(errors="replace")


async def recv_json(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def expect_type(ws, t, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        ev = await recv_json(ws, max(0.1, deadline - time.monotonic()))
        if ev.get("type") == t:
            return ev


async def test_wss_and_https_chat():
    srv = TlsServer(*make_cert("a")).start()
    alice = await srv.wss("alice")
    st, body = srv.curl("POST", "/v1/send", srv.token("bob"),
                        {"v": 1, "type": "message", "id": "t1", "to": "alice", "body": "secret"})
    eq(st, 200, "https /v1/send: %r" % body)
    m = await expect_type(alice, "message")
    eq(m.get("body"), "secret", "body over wss")
    await alice.send(json.dumps({"type": "ack", "ids": [m["id"]]}))
    # And the other way: a message sent over wss reaches bob's REST inbox.
    await alice.send(json.dumps({"v": 1, "type": "message", "id": "t2", "to": "bob",
                                 "body": "over wss"}))
    await expect_type(alice, "accepted")
    st, body = srv.curl("GET", "/v1/messages", srv.token("bob"))
    eq(st, 200, "https /v1/messages")
    check(b"over wss" in body, "bob's inbox holds the wss message: %r" % body)
    await alice.close()


async def test_protocol_floor_and_suites():
    srv = TlsServer(*make_cert("b")).start()
    rc, out = s_client(srv.port, "-tls1_1")
    check(rc != 0 or "Cipher is (NONE)" in out, "TLS 1.1 was accepted:\n" + out[-400:])
    rc, out = s_client(srv.port, "-tls1_2")
    eq(rc, 0, "TLS 1.2 handshake")
    m = re.search(r"Cipher is (\S+)", out)
    check(m is not None and m.group(1).startswith("ECDHE-") and
          ("GCM" in m.group(1) or "CHACHA20" in m.group(1)),
          "TLS 1.2 suite: %s" % (m.group(1) if m else out[-300:]))
    rc, out = s_client(srv.port, "-tls1_2", "-cipher", "AES128-SHA:DES-CBC3-SHA")
    check(rc != 0 or "Cipher is (NONE)" in out, "a static-RSA CBC suite was accepted")
    rc, out = s_client(srv.port, "-tls1_3")
    eq(rc, 0, "TLS 1.3 handshake")


async def test_plain_http_on_tls_port_fails_cleanly():
    srv = TlsServer(*make_cert("c")).start()
    alice = await srv.wss("alice")
    st, err = srv.curl("GET", "/healthz", scheme="http")
    check(st is None or st >= 400, "plain HTTP on the TLS port answered %r" % st)
    # Raw garbage and an early close too.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    # The TLS client that was already there is fine, and new ones too.
    st, body = srv.curl("POST", "/v1/send", srv.token("bob"),
                        {"v": 1, "type": "message", "id": "p1", "to": "alice", "body": "still"})
    eq(st, 200, "send after plain HTTP attempts")
    m = await expect_type(alice, "message")
    eq(m.get("body"), "still", "wss client unaffected")
    await alice.close()
    check(srv.alive(), "server alive")


async def test_tls_handshake_within_deadline():
    srv = TlsServer(*make_cert("d"), "--handshake-timeout", "1").start()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    t0 = time.monotonic()
    s.settimeout(4)
    eq(s.recv(100), b"", "a socket that never says hello is closed")
    check(time.monotonic() - t0 < 2.5, "cut after %.2fs" % (time.monotonic() - t0))
    s.close()
    alice = await srv.wss("alice")
    await asyncio.sleep(1.5)  # the deadline covers the upgrade, not the WebSocket
    await alice.send(json.dumps({"v": 1, "type": "message", "id": "d1", "to": "bob",
                                 "body": "late"}))
    await expect_type(alice, "accepted")
    await alice.close()


def client_frame(opcode, payload):
    """A masked client frame with a short payload."""
    key = os.urandom(4)
    return (struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + key
            + bytes(b ^ key[i % 4] for i, b in enumerate(payload)))


async def read_frame(reader, timeout=5.0):
    """(opcode, payload) of the next server frame (unmasked, short or 16-bit length)."""
    h = await asyncio.wait_for(reader.readexactly(2), timeout)
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    return h[0] & 0x0F, await asyncio.wait_for(reader.readexactly(n), timeout)


async def test_wss_frames_behind_the_upgrade_then_idle():
    # A message and a ping in the same TLS write as the upgrade request: the
    # server decrypted them with the request, and reads them after the 101.
    srv = TlsServer(*make_cert("g"), "--ping-interval", "1", "--ping-timeout", "2").start()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port,
                                                   ssl=srv.ssl_context())
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           "Authorization: Bearer %s\r\n\r\n" % (key, srv.token("alice"))).encode()
    msg = json.dumps({"v": 1, "type": "message", "id": "w1", "to": "bob", "body": "early"})
    writer.write(req + client_frame(0x1, msg.encode()) + client_frame(0x9, b"early ping"))
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    check(head.startswith(b"HTTP/1.1 101 "), "handshake: %r" % head[:80])
    got = [await read_frame(reader), await read_frame(reader)]
    check((0xA, b"early ping") in got, "no pong for the early ping: %r" % got)
    answers = [json.loads(d) for op, d in got if op == 0x1]
    eq([(a.get("type"), a.get("ref")) for a in answers], [("accepted", "w1")], "answer")

    # Idle through a few keepalive rounds (pings answered), then a message.
    t_end = time.monotonic() + 3
    while time.monotonic() < t_end:
        try:
            op, data = await read_frame(reader, t_end - time.monotonic())
        except asyncio.TimeoutError:
            break
        eq(op, 0x9, "only pings while idle")
        writer.write(client_frame(0xA, data))
        await writer.drain()
    st, body = srv.curl("POST", "/v1/send", srv.token("bob"),
                        {"v": 1, "type": "message", "id": "w2", "to": "alice", "body": "late"})
    eq(st, 200, "send to the idle wss client")
    while True:
        op, data = await read_frame(reader)
        if op == 0x1:
            break
    eq(json.loads(data).get("body"), "late", "message after the idle time")
    writer.close()


def start_failure(*args):
    d = os.path.join(CERTS, "data")
    r = subprocess.run([vartalapd_path(), "--listen", "127.0.0.1:0", "--dev", "--data-dir", d,
                        "--storage", "memory"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    return r.returncode, r.stdout.decode(errors="replace")


async def test_bad_files_refused_clearly():
    cert, key = make_cert("e")
    _, other_key = make_cert("f")
    rc, out = start_failure("--tls-cert", cert)
    eq(rc, 2, "--tls-cert alone: exit status")
    check("--tls-key" in out, "--tls-cert alone: message %r" % out)
    rc, out = start_failure("--tls-cert", os.path.join(CERTS, "missing.crt"), "--tls-key", key)
    check(rc != 0 and "certificate" in out and "missing.crt" in out,
          "missing certificate: %d %r" % (rc, out))
    rc, out = start_failure("--tls-cert", cert, "--tls-key", other_key)
    check(rc != 0 and "does not match" in out, "mismatched key: %d %r" % (rc, out))
    rc, out = start_failure("--tls-cert", key, "--tls-key", key)
    check(rc != 0 and "certificate" in out, "a key given as certificate: %d %r" % (rc, out))


if __name__ == "__main__":
    run([test_wss_and_https_chat,
         test_protocol_floor_and_suites,
         test_plain_http_on_tls_port_fails_cleanly,
         test_tls_handshake_within_deadline,
         test_wss_frames_behind_the_upgrade_then_idle,
         test_bad_files_refused_clearly])
