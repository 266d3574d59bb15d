"""Shared code for the end-to-end tests.

Each test script starts the real vartalapd (path in $VARTALAPD) on 127.0.0.1
with a port chosen by the kernel, talks to it with python3-websockets and
plain HTTP, and kills every server it started when it exits.

Nothing here sleeps to synchronize: every wait is for an event (a frame, a
file, a process state) and carries a timeout. The few places that assert
that something does NOT happen wait for a bounded quiet period instead.
"""

import asyncio
import atexit
import base64
import ctypes
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import websockets
import websockets.exceptions

MAX_SAFE_ID = (1 << 53) - 1
HERE = os.path.dirname(os.path.abspath(__file__))

_servers = []
_children = []


class TestFailure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def is_server_id(v):
    """Server ids are decimal strings that fit a double exactly."""
    return isinstance(v, str) and re.fullmatch(r"[0-9]{1,16}", v) is not None \
        and 0 < int(v) <= MAX_SAFE_ID


def nid(v):
    return int(v)


# ----------------------------------------------------------------- processes

def _pdeathsig():
    # The server dies with the test process, even on SIGKILL of the latter.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _cleanup(forget=False):
    """Kill every server and child process started; @forget drops the
    children from the list too (between tests)."""
    for s in list(_servers):
        s.kill()
    for p in list(_children):
        try:
            p.kill()
            p.wait(timeout=2)
        except Exception:
            pass
        if forget:
            _children.remove(p)


atexit.register(_cleanup)


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


def vartalapd_path():
    p = os.environ.get("VARTALAPD")
    if not p:
        for cand in ("build-h4", "build"):
            q = os.path.join(HERE, "..", "..", cand, "frontends", "vartalapd")
            if os.path.exists(q):
                p = os.path.abspath(q)
                break
    if not p or not os.access(p, os.X_OK):
        raise TestFailure("VARTALAPD is not set to an executable vartalapd")
    return p


def wait_until(pred, timeout, what, step=0.02):
    """Poll @pred until it is true (for states with no notification, such
    as a file appearing or a /proc count). Raises on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)


async def await_until(pred, timeout, what, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))
        await asyncio.sleep(step)


class Server:
    """One vartalapd process. The data dir survives restart(), so a
    restarted server sees what the previous one stored."""

    def __init__(self, *args, storage=None, durability=None, data_dir=None):
        self.bin = vartalapd_path()
        self.tmp = tempfile.mkdtemp(prefix="vt-e2e-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.args = list(args)
        if storage:
            self.args += ["--storage", storage]
        if durability:
            self.args += ["--durability", durability]
        self.proc = None
        self.port = None
        self.runs = 0
        self._tokens = {}
        self._key = None
        _servers.append(self)

    # -- lifecycle

    def start(self, timeout=10.0):
        self.runs += 1
        self.port_file = os.path.join(self.tmp, "port.%d" % self.runs)
        self.log_path = os.path.join(self.tmp, "log.%d" % self.runs)
        cmd = [self.bin, "--listen", "127.0.0.1:0", "--port-file", self.port_file,
               "--data-dir", self.data_dir, "--dev"] + self.args
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=_pdeathsig)

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("vartalapd exited with %s at start; log:\n%s"
                                  % (self.proc.returncode, self.log_tail()))
            try:
                with open(self.port_file) as f:
                    txt = f.read().strip()
            except FileNotFoundError:
                return None
            m = re.search(r"(\d+)\s*$", txt)
            return int(m.group(1)) if m else None

        self.port = wait_until(ready, timeout, "the port file of vartalapd")
        st, body = http_request(self, "GET", "/healthz", token=None)
        if st != 200:
            raise TestFailure("GET /healthz after start: %s %r" % (st, body))
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send @sig and wait for the process to end; returns its status."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("vartalapd did not exit within %.0fs of signal %d" % (timeout, sig))
        self.log.close()
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self, sig=signal.SIGTERM):
        rc = self.stop(sig)
        self.start()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self in _servers:
            _servers.remove(self)
        if os.environ.get("VT_E2E_KEEP") is None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no log)"

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def conn_sockets(self):
        """Sockets of the server that are not listening: client
        connections, including half-closed ones it has not let go of."""
        listening = set()
        for tab in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(tab) as f:
                    next(f)
                    for line in f:
                        parts = line.split()
                        if parts[3] == "0A":
                            listening.add(parts[9])
            except OSError:
                pass
        n = 0
        for fd in os.listdir("/proc/%d/fd" % self.pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (self.pid, fd))
            except OSError:
                continue
            m = re.fullmatch(r"socket:\[(\d+)\]", link)
            if m and m.group(1) not in listening:
                n += 1
        return n

    def socket_count(self):
        n = 0
        for fd in os.listdir("/proc/%d/fd" % self.pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (self.pid, fd)).startswith("socket:"):
                    n += 1
            except OSError:
                pass
        return n

    # -- tokens

    def token(self, user, device=None):
        """A token minted by `vartalapd token USER --dev --data-dir D`, with
        a "dev" claim when @device is given."""
        key = user if device is None else (user, device)
        if key not in self._tokens:
            cmd = [self.bin, "token", user, "--dev", "--data-dir", self.data_dir]
            if device is not None:
                cmd += ["--device", device]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
            if r.returncode != 0:
                raise TestFailure("vartalapd token %s failed (%d): %s"
                                  % (user, r.returncode, r.stderr.decode(errors="replace")))
            tok = r.stdout.decode().strip().split()[-1]
            check(tok.count(".") == 2, "token command printed no JWT: %r" % tok)
            self._tokens[key] = tok
        return self._tokens[key]

    def dev_key(self):
        """The signing key of the dev data dir, found by checking which
        candidate reproduces the signature of a token the CLI minted."""
        if self._key is not None:
            return self._key
        tok = self.token("keyprobe")
        head, payload, sig = tok.split(".")
        want = b64d(sig)
        signing = (head + "." + payload).encode()
        cands = []
        for root, _dirs, files in os.walk(self.data_dir):
            for fn in files:
                p = os.path.join(root, fn)
                try:
                    if os.path.getsize(p) > 4096:
                        continue
                    with open(p, "rb") as f:
                        raw = f.read()
                except OSError:
                    continue
                cands.append(raw)
                s = raw.strip()
                cands.append(s)
                for dec in (bytes.fromhex, base64.b64decode, b64d):
                    try:
                        cands.append(dec(s.decode()))
                    except Exception:
                        pass
        for k in cands:
            if hmac.compare_digest(hmac.new(k, signing, hashlib.sha256).digest(), want):
                self._key = k
                return k
        raise TestFailure("cannot find the dev signing key in the data dir")

    def forge_token(self, user, exp, dev=None, alg="HS256", key=None, iat="past"):
        """A token signed here; @iat: seconds, None for no claim, or "past"
        (ten seconds ago)."""
        header = {"alg": alg, "typ": "JWT"}
        claims = {"sub": user}
        if iat is not None:
            claims["iat"] = int(time.time()) - 10 if iat == "past" else int(iat)
        if exp is not None:
            claims["exp"] = int(exp)
        if dev is not None:
            claims["dev"] = dev
        h = b64e(json.dumps(header, separators=(",", ":")).encode())
        p = b64e(json.dumps(claims, separators=(",", ":")).encode())
        if alg == "none":
            return h + "." + p + "."
        k = key if key is not None else self.dev_key()
        s = b64e(hmac.new(k, (h + "." + p).encode(), hashlib.sha256).digest())
        return h + "." + p + "." + s

    # -- URLs

    def ws_url(self, query=""):
        return "ws://127.0.0.1:%d/v1/ws%s" % (self.port, query)


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ----------------------------------------------------------------- HTTP

def http_request(srv, method, path, token=None, body=None, headers=None, timeout=10.0):
    """Returns (status, parsed JSON or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if body is not None:
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        st = r.status
    finally:
        conn.close()
    try:
        return st, json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return st, data


def metric(srv, name):
    """The value of the series @name (no labels) on the server's GET /metrics,
    or None when the page does not have it."""
    st, body = http_request(srv, "GET", "/metrics")
    eq(st, 200, "GET /metrics")
    m = re.search(rb"^" + re.escape(name.encode()) + rb" (\d+)$", body, re.M)
    return int(m.group(1)) if m else None


def http_raw(srv, method, path, token=None, body=None, timeout=10.0):
    """Like http_request but returns (status, raw body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    h = {}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if body is not None and not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def curl(srv, method, path, token=None, body=None, extra=()):
    """Run curl; returns (status, parsed JSON or raw bytes)."""
    cmd = ["curl", "-sS", "--max-time", "10", "-X", method, "-o", "-", "-w", "\n%{http_code}"]
    if token is not None:
        cmd += ["-H", "Authorization: Bearer " + token]
    if body is not None:
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    cmd += list(extra)
    cmd.append("http://127.0.0.1:%d%s" % (srv.port, path))
    r = subprocess.run(cmd, input=body if body is not None else b"", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=15)
    if r.returncode != 0:
        raise TestFailure("curl failed (%d): %s" % (r.returncode, r.stderr.decode(errors="replace")))
    data, _, code = r.stdout.rpartition(b"\n")
    st = int(code)
    try:
        return st, json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return st, data


def send_http(srv, token, to, cid, body, expect=200, device=None):
    st, r = http_request(srv, "POST", _with_device("/v1/send", device), token,
                         {"v": 1, "type": "message", "id": cid, "to": to, "body": body})
    if expect is not None:
        if st != expect:
            raise TestFailure("POST /v1/send %s: status %s, want %s: %r" % (cid, st, expect, r))
        if expect == 200:
            check(isinstance(r, dict) and r.get("type") == "accepted",
                  "POST /v1/send answer is not an accepted envelope: %r" % (r,))
            eq(r.get("ref"), cid, "accepted.ref")
            check(is_server_id(r.get("id")), "accepted.id is not a server id string: %r" % (r,))
    return st, r


def _with_device(path, device):
    """@path with ?device= (or &device=) added when @device is given."""
    if device is None:
        return path
    return path + ("&" if "?" in path else "?") + "device=" + device


def fetch(srv, token, after=None, limit=None, device=None):
    q = []
    if device is not None:
        q.append("device=%s" % device)
    if after is not None:
        q.append("after=%s" % after)
    if limit is not None:
        q.append("limit=%d" % limit)
    path = "/v1/messages" + ("?" + "&".join(q) if q else "")
    st, r = http_request(srv, "GET", path, token)
    if st != 200:
        raise TestFailure("GET %s: %s %r" % (path, st, r))
    check(isinstance(r, dict) and isinstance(r.get("messages"), list),
          "GET /v1/messages body: %r" % (r,))
    return r


def fetch_all(srv, token, limit=None, device=None):
    """Every listed event, following the cursor; checks page order."""
    out, after = [], None
    for _ in range(1000):
        r = fetch(srv, token, after, limit, device=device)
        out += r["messages"]
        if not r.get("more"):
            return out
        check(r["messages"], "a page with more=true is empty")
        after = r["next"]
    raise TestFailure("GET /v1/messages never ends")


def ack_http(srv, token, ids, device=None):
    st, r = http_request(srv, "POST", _with_device("/v1/ack", device), token,
                         {"ids": list(ids)})
    if st != 200:
        raise TestFailure("POST /v1/ack: %s %r" % (st, r))
    return r


# ----------------------------------------------------------------- receipts

def receipt_refs(ev):
    """The acks a `delivered` event reports, flattened: one dict per ref and
    acking device, with its "ref" and "cid", the "from" user and "device"
    that acked it, the receipt's "id" (to ack the receipt by) and "group"
    (the group a group's receipt comes from, else None). A device's receipt
    names one device for all its refs; a group's names them per ref, under
    "by". [] for any other event."""
    if ev.get("type") != "delivered":
        return []
    body = ev.get("body") or {}
    out = []
    for r in body.get("refs") or []:
        if "by" in r:
            by = [(b.get("user"), b.get("device")) for b in r["by"]]
            group = ev.get("from")
        else:
            by = [(ev.get("from"), body.get("device"))]
            group = None
        out += [{"ref": r.get("ref"), "cid": r.get("cid"), "from": user, "device": device,
                 "id": ev.get("id"), "group": group} for user, device in by]
    return out


def all_refs(evs):
    """receipt_refs of every event in @evs, in order."""
    return [r for ev in evs for r in receipt_refs(ev)]


def delivered_for(sid):
    """A predicate: a `delivered` event that reports server id @sid."""
    return lambda e: any(r["ref"] == sid for r in receipt_refs(e))


# ----------------------------------------------------------------- WebSocket

class Client:
    """A WebSocket client that keeps unmatched events for later awaits."""

    def __init__(self, ws, name):
        self.ws = ws
        self.name = name
        self.pending = []
        self.raw = []   # every text frame received, in order
        self.n_sent = 0

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    async def message(self, to, cid, body, **extra):
        env = {"v": 1, "type": "message", "id": cid, "to": to, "body": body}
        env.update(extra)
        await self.send(env)

    async def ack(self, *ids):
        await self.send({"v": 1, "type": "ack", "ids": [str(i) for i in ids]})

    async def _recv_one(self, timeout):
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        check(isinstance(raw, str), "%s: server sent a binary frame" % self.name)
        self.raw.append(raw)
        try:
            ev = json.loads(raw)
        except ValueError:
            raise TestFailure("%s: server sent non-JSON text %r" % (self.name, raw[:200]))
        ev["_raw"] = raw
        ev["_t"] = time.monotonic()
        return ev

    async def expect(self, pred, timeout=5.0, what="an event"):
        """First pending-or-new event matching @pred (a dict of fields or a
        function). Non-matching events stay pending."""
        if isinstance(pred, dict):
            want = pred
            pred = lambda e: all(e.get(k) == v for k, v in want.items())
            what = what if what != "an event" else repr(want)
        for i, ev in enumerate(self.pending):
            if pred(ev):
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("%s: no %s within %.1fs; pending: %s"
                                  % (self.name, what, timeout, _short(self.pending)))
            try:
                ev = await self._recv_one(left)
            except asyncio.TimeoutError:
                continue
            except websockets.exceptions.ConnectionClosed as e:
                raise TestFailure("%s: connection closed (%s %s) while waiting for %s"
                                  % (self.name, e.code, e.reason, what))
            if pred(ev):
                return ev
            self.pending.append(ev)

    async def expect_type(self, typ, timeout=5.0, **fields):
        d = {"type": typ}
        d.update(fields)
        return await self.expect(d, timeout)

    async def quiet(self, duration, pred=None, what="event"):
        """Assert that no event (matching @pred) arrives for @duration."""
        pred = pred or (lambda e: True)
        # Frames already queued in the client library are read too.
        duration = max(duration, 0.02)
        for ev in self.pending:
            if pred(ev):
                raise TestFailure("%s: unexpected %s: %s" % (self.name, what, _short([ev])))
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                ev = await self._recv_one(left)
            except asyncio.TimeoutError:
                return
            except websockets.exceptions.ConnectionClosed:
                return
            if pred(ev):
                raise TestFailure("%s: unexpected %s: %s" % (self.name, what, _short([ev])))
            self.pending.append(ev)

    async def expect_refs(self, n, timeout=5.0, what="receipts"):
        """`delivered` events until they report @n refs in all; returns the
        events. One receipt may report many acks, so a count of acks is a
        count of refs, not of events. A receipt pushed again (a retry, same
        id) is dropped, as a client drops a duplicate."""
        evs, deadline = [], time.monotonic() + timeout
        while len(all_refs(evs)) < n:
            left = max(deadline - time.monotonic(), 0.001)
            try:
                ev = await self.expect_type("delivered", timeout=left)
            except TestFailure:
                raise TestFailure("%s: %d of %d %s refs within %.1fs"
                                  % (self.name, len(all_refs(evs)), n, what, timeout))
            if all(ev["id"] != e["id"] for e in evs):
                evs.append(ev)
        check(len(all_refs(evs)) == n, "%s: %d refs, want %d: %s"
              % (self.name, len(all_refs(evs)), n, _short(evs)))
        return evs

    async def drain(self, duration=0.0):
        """Collect whatever arrives within @duration into pending."""
        await self.quiet(duration, lambda e: False)
        out, self.pending = self.pending, []
        return out

    async def wait_closed(self, timeout=5.0):
        """Wait for the server to close; returns the close code. Frames
        that arrive first are kept as pending."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("%s: server did not close within %.1fs" % (self.name, timeout))
            try:
                ev = await self._recv_one(left)
                self.pending.append(ev)
            except asyncio.TimeoutError:
                continue
            except websockets.exceptions.ConnectionClosed:
                await asyncio.wait_for(self.ws.wait_closed(), 5)
                return self.ws.close_code

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:
            pass

    def abort(self):
        """Drop the connection with a TCP RST, no close frame."""
        abort_ws(self.ws)


def abort_ws(ws):
    """Drop WebSocket @ws with a TCP RST, no close frame."""
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    ws.transport.abort()


def _short(evs):
    out = []
    for e in evs:
        e = {k: v for k, v in e.items() if not k.startswith("_")}
        out.append(json.dumps(e)[:200])
    return "[" + ", ".join(out) + "]"


async def connect(srv, user, how="header", device=None, token=None, name=None, timeout=5.0):
    """Open /v1/ws as @user. @how: header, query or subprotocol."""
    tok = token if token is not None else srv.token(user)
    q, headers, subprotocols = [], [], None
    if how == "header":
        headers.append(("Authorization", "Bearer " + tok))
    elif how == "query":
        q.append("token=" + tok)
    elif how == "subprotocol":
        subprotocols = ["vartalap.v1", "bearer." + tok]
    elif how == "none":
        pass
    else:
        raise ValueError(how)
    if device is not None:
        q.append("device=" + device)
    url = srv.ws_url("?" + "&".join(q) if q else "")
    ws = await websockets.connect(url, extra_headers=headers, subprotocols=subprotocols,
                                  open_timeout=timeout, close_timeout=2, ping_interval=None,
                                  max_size=None, max_queue=None)
    return Client(ws, name or user)


async def handshake_status(srv, token=None, how="header"):
    """Status of a refused handshake, or 101 when it succeeds."""
    try:
        if token is None:
            c = await connect(srv, "x", how="none")
        else:
            c = await connect(srv, "x", how=how, token=token)
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    await c.close()
    return 101


async def chat_works(srv, a="carol", b="dave", tag="probe"):
    """A fresh pair of users can still talk: a -> b, b acks, a gets
    accepted and delivered."""
    ca = await connect(srv, a)
    cb = await connect(srv, b)
    try:
        cid = "%s-%d" % (tag, int(time.monotonic() * 1e6))
        await ca.message(b, cid, {"t": tag})
        acc = await ca.expect_type("accepted", ref=cid)
        m = await cb.expect_type("message", cid=cid)
        eq(m.get("id"), acc["id"], "message id vs accepted id")
        await cb.ack(m["id"])
        d = await ca.expect(delivered_for(acc["id"]), 5, "delivered for " + cid)
        await ca.ack(d["id"])
    finally:
        await ca.close()
        await cb.close()


# ----------------------------------------------------------------- raw WebSocket

class RawWS:
    """A minimal WebSocket client over a plain socket, for frames a normal
    client will not send (invalid UTF-8 text, oversize frames)."""

    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer

    @classmethod
    async def open(cls, srv, token, timeout=5.0):
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", srv.port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (srv.port, key, token))
        writer.write(req.encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = head.split(b"\r\n", 1)[0]
        check(b" 101 " in status + b" ", "raw handshake: %r" % status)
        return cls(reader, writer)

    async def send_frame(self, opcode, payload, fin=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.w.write(hdr + mask + body)
        try:
            await self.w.drain()
        except (ConnectionError, OSError):
            pass

    async def read_frame(self, timeout=5.0):
        """(opcode, payload) of the next frame, or (None, b'') on EOF."""
        try:
            h = await asyncio.wait_for(self.r.readexactly(2), timeout)
        except asyncio.IncompleteReadError:
            return None, b""
        except ConnectionError:
            return None, b""
        op = h[0] & 0x0F
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.r.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.r.readexactly(8))[0]
        if h[1] & 0x80:
            await self.r.readexactly(4)
        data = await asyncio.wait_for(self.r.readexactly(n), timeout)
        return op, data

    async def close_code(self, timeout=5.0):
        """Read until the server's close frame; returns its code (or None
        when the TCP connection ends with no close frame)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("raw client: no close within %.1fs" % timeout)
            try:
                op, data = await self.read_frame(left)
            except asyncio.TimeoutError:
                continue
            if op is None:
                return None
            if op == 0x8:
                return struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005

    def close(self):
        try:
            self.w.close()
        except Exception:
            pass


# ----------------------------------------------------------------- child client

CHILD_SCRIPT = r"""
import asyncio, sys, websockets
async def main():
    ws = await websockets.connect(sys.argv[1], ping_interval=None, max_size=None)
    print("open", flush=True)
    try:
        async for m in ws:
            print("frame " + (m if isinstance(m, str) else m.hex()), flush=True)
    except websockets.exceptions.ConnectionClosed:
        pass
    print("closed %s" % ws.close_code, flush=True)
asyncio.run(main())
"""


class ChildClient:
    """A WebSocket client in its own process, so it can be stopped
    (SIGSTOP) and so hold a half-open connection."""

    def __init__(self, srv, user):
        url = srv.ws_url("?token=" + srv.token(user))
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD_SCRIPT, url],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=_pdeathsig)
        _children.append(self.proc)
        line = self._readline(10)
        check(line == "open", "child client did not connect: %r %r"
              % (line, self.proc.stderr.read1(4096) if line is None else b""))

    def _readline(self, timeout):
        import select
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return None
        line = self.proc.stdout.readline()
        return line.decode().strip() if line else None

    def stop(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def kill(self):
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:
            pass
        if self.proc in _children:
            _children.remove(self.proc)


# ----------------------------------------------------------------- runner

def run(tests, total_timeout=150.0):
    """Run async test functions in order; print a summary; exit non-zero
    on any failure. Each test kills the servers it started."""
    passed = failed = 0
    start = time.monotonic()
    for fn in tests:
        name = fn.__name__
        t0 = time.monotonic()
        try:
            asyncio.run(asyncio.wait_for(fn(), timeout=60))
        except BaseException as e:  # noqa: B902 (also SystemExit from SIGTERM)
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            if isinstance(e, asyncio.TimeoutError):
                msg = "test timed out"
            elif isinstance(e, TestFailure):
                msg = str(e)
            else:
                msg = "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip()
            print("FAIL %s (%.1fs): %s" % (name, time.monotonic() - t0, msg))
            for s in list(_servers):
                if s.runs:
                    print("  --- server log (%s) ---\n  %s" % (
                        "running" if s.alive() else "exited %s" % s.proc.returncode,
                        s.log_tail(15).replace("\n", "\n  ")))
            if isinstance(e, SystemExit):
                break
        else:
            passed += 1
            print("ok   %s (%.1fs)" % (name, time.monotonic() - t0))
        finally:
            _cleanup(forget=True)
        sys.stdout.flush()
        if time.monotonic() - start > total_timeout:
            rest = len(tests) - passed - failed
            if rest:
                print("FAIL: out of time budget, %d tests not run" % rest)
                failed += rest
            break
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def server(*args, **kw):
    return Server(*args, **kw).start()


async def ahttp(port, method, path, token=None, body=None, timeout=10.0):
    """One request on its own connection: (status, parsed JSON or bytes)."""
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        data = b"" if body is None else json.dumps(body).encode()
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method, path)
        if token:
            head += "Authorization: Bearer %s\r\n" % token
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        w.write(head.encode() + b"\r\n" + data)
        hdr = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
        status = int(hdr.split(b" ", 2)[1])
        n = None
        for line in hdr.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":", 1)[1])
        raw = await asyncio.wait_for(r.readexactly(n) if n is not None else r.read(), timeout)
    finally:
        w.close()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw
