#!/usr/bin/python3
"""HTTP/1.1 framing of the REST endpoints, field case B17: a chunked body,
two requests pipelined in one write, a POST with no length, and a POST with
both Content-Length and Transfer-Encoding. B17(b), a bare CR in a chunk
line, is covered by test_limits.py::test_b17b_bare_cr_in_chunk_line_refused.

Requests are written by hand on a plain socket; after each case the server
must still answer /healthz and carry a chat between two other users."""

import asyncio
import json
import socket
import time

from harness import (TestFailure, check, eq, chat_works, fetch, http_request, run, server)


def raw_socket(srv, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Responses:
    """Reads HTTP/1.1 responses off a socket one by one."""

    def __init__(self, s):
        self.s = s
        self.buf = b""
        self.eof = False

    def _more(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("timed out reading a response; have %r" % self.buf[:200])
        self.s.settimeout(left)
        try:
            chunk = self.s.recv(65536)
        except socket.timeout:
            raise TestFailure("timed out reading a response; have %r" % self.buf[:200])
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def next(self, timeout=5.0):
        """(status, headers lower-cased, body bytes), or None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                if self.buf:
                    raise TestFailure("connection ended inside a response: %r" % self.buf)
                return None
            self._more(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if self.eof:
                        raise TestFailure("connection ended inside a chunk")
                    self._more(deadline)
                line, self.buf = self.buf.split(b"\r\n", 1)
                n = int(line.split(b";")[0], 16)
                while len(self.buf) < n + 2:
                    if self.eof:
                        raise TestFailure("connection ended inside a chunk")
                    self._more(deadline)
                body, self.buf = body + self.buf[:n], self.buf[n + 2:]
                if n == 0:
                    return status, hdrs, body
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            if self.eof:
                raise TestFailure("connection ended inside a body")
            self._more(deadline)
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def until_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._more(deadline)


def envelope(cid, body):
    return json.dumps({"v": 1, "type": "message", "id": cid, "to": "bob",
                       "body": body}).encode()


def post_head(tok, extra):
    return (b"POST /v1/send HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            + tok.encode() + b"\r\nContent-Type: application/json\r\n" + extra + b"\r\n")


def bob_cids(srv):
    return [m.get("cid") for m in fetch(srv, srv.token("bob"))["messages"]]


async def healthy(srv, tag):
    st, body = http_request(srv, "GET", "/healthz")
    eq(st, 200, "healthz after " + tag)
    await chat_works(srv, tag=tag)


# ----------------------------------------------------------------- B17(a)

async def test_b17a_chunked_body_in_three_chunks():
    srv = server()
    tok = srv.token("alice")
    body = envelope("chunked-1", "reassembled \u20ac body")
    parts = [body[:9], body[9:30], body[30:]]
    s = raw_socket(srv)
    s.sendall(post_head(tok, b"Transfer-Encoding: chunked\r\n"))
    for p in parts:
        # Each chunk in its own write, with a pause, so the server sees them apart.
        s.sendall(b"%x\r\n" % len(p) + p + b"\r\n")
        await asyncio.sleep(0.05)
    s.sendall(b"0\r\n\r\n")
    rs = Responses(s)
    st, hdrs, rbody = rs.next()
    s.close()
    eq(st, 200, "status of a chunked POST /v1/send: %r" % rbody)
    r = json.loads(rbody)
    eq((r.get("type"), r.get("ref")), ("accepted", "chunked-1"), "answer to the chunked POST")
    listed = fetch(srv, srv.token("bob"))["messages"]
    eq([(m.get("cid"), m.get("body")) for m in listed],
       [("chunked-1", "reassembled \u20ac body")], "the body, reassembled, reached bob")
    await healthy(srv, "chunked")


# ----------------------------------------------------------------- B17(c)

async def test_b17c_pipelined_send_then_messages():
    srv = server()
    alice, bob = srv.token("alice"), srv.token("bob")
    for round_ in range(3):
        cid = "pipe-%d" % round_
        body = envelope(cid, "pipelined %d" % round_)
        req = post_head(alice, b"Content-Length: %d\r\n" % len(body)) + body
        req += (b"GET /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                + bob.encode() + b"\r\n\r\n")
        s = raw_socket(srv)
        s.sendall(req)  # both requests in one write()
        rs = Responses(s)
        first = rs.next()
        check(first is not None, "no response at all to the pipelined pair")
        second = rs.next()
        s.close()
        check(second is not None, "round %d: the second pipelined request got no response "
              "(first: %s %r)" % (round_, first[0], first[2][:120]))
        eq(first[0], 200, "status of the pipelined POST")
        r1 = json.loads(first[2])
        eq((r1.get("type"), r1.get("ref")), ("accepted", cid),
           "first response answers the POST")
        eq(second[0], 200, "status of the pipelined GET")
        r2 = json.loads(second[2])
        check(isinstance(r2.get("messages"), list), "second response answers the GET: %r" % r2)
        # In order: the GET ran after the POST, so it lists what was just sent.
        check(cid in [m.get("cid") for m in r2["messages"]],
              "the GET behind the POST lists %s: %r" % (cid, r2))
    eq(bob_cids(srv), ["pipe-0", "pipe-1", "pipe-2"], "each pipelined POST acted on once")
    await healthy(srv, "pipelined")


# ----------------------------------------------------------------- B17(d)

async def test_b17d_post_without_length():
    srv = server("--handshake-timeout", "10")
    tok = srv.token("alice")
    s = raw_socket(srv)
    t0 = time.monotonic()
    # No Content-Length, no Transfer-Encoding, and a body behind the head.
    s.sendall(post_head(tok, b"") + envelope("nolen", "no length"))
    rs = Responses(s)
    resp = rs.next(timeout=3.0)
    took = time.monotonic() - t0
    s.close()
    check(resp is not None, "connection closed with no answer to a POST without a length")
    check(resp[0] in (400, 411), "status for a POST without a length: %s %r"
          % (resp[0], resp[2][:120]))
    check(took < 1.0, "answered after %.2fs, not promptly" % took)
    eq(bob_cids(srv), [], "nothing routed from a POST without a length")
    await healthy(srv, "nolength")


async def test_b17d_content_length_and_transfer_encoding():
    srv = server()
    tok = srv.token("alice")
    body = envelope("both", "smuggled?")
    chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    # Content-Length covering the whole chunked body, then the other way round.
    for i, extra in enumerate((b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n"
                               % len(chunked),
                               b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n"
                               % len(body))):
        s = raw_socket(srv)
        t0 = time.monotonic()
        s.sendall(post_head(tok, extra) + chunked)
        rs = Responses(s)
        resp = rs.next(timeout=3.0)
        s.close()
        check(resp is not None, "no answer to Content-Length with Transfer-Encoding")
        check(resp[0] == 400, "order %d: Content-Length with Transfer-Encoding answered %s %r"
              % (i, resp[0], resp[2][:160]))
        check(time.monotonic() - t0 < 1.0, "refused promptly")
    eq(bob_cids(srv), [], "nothing routed from a request with both framings")
    await healthy(srv, "clte")


if __name__ == "__main__":
    run([test_b17a_chunked_body_in_three_chunks,
         test_b17c_pipelined_send_then_messages,
         test_b17d_post_without_length,
         test_b17d_content_length_and_transfer_encoding], total_timeout=55.0)
