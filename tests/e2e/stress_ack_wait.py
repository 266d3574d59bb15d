#!/usr/bin/python3
"""Randomized, seeded stress of the delivery promises across kill -9 and SIGTERM.

Meant for --ack-wait (mode always over LMDB) and for --durability offline
--push-before-commit, with plain mode always as a control. The meson suite
runs one seed of each of the first two (tests/e2e/meson.build); run more by
hand, a seed or a range of seeds at a time:

    cd tests/e2e
    VARTALAPD=$PWD/../../build-asan/frontends/vartalapd \\
        /usr/bin/python3 stress_ack_wait.py --ack-wait 50 --seeds 1-5
    ... --ack-wait 60000 --seed 7 --kill mix
    ... --offline --seed 3        (--durability offline --push-before-commit)
    ... --seed 3                  (mode always, no --ack-wait: the control)

Three users, five devices (ua/p; ub/p, ub/l; uc/p, uc/l), all registered
before the first message. One driver coroutine, seeded, takes every
decision: WebSocket and REST sends (to the other users), re-sends of what
got no answer (same client id), WebSocket and REST acks of what a device
received, REST listings while a device has no WebSocket, connects, clean
closes, resets, replacements (a second WebSocket of the same device). Each
epoch ends with kill -9 or SIGTERM; the server starts again on the same
data directory. After the last epoch a settle epoch re-sends over REST
whatever got no answer, then every device lists its inbox over REST
without acking (the audit). Readers only record: every frame sent and
received is traced with a timestamp, the epoch and the connection.

What is checked (a violation makes the exit status 1 and is printed with
the trace lines of the ids and client ids involved):

P1  every message whose sender heard "accepted" is, at the audit, listed
    for every device of the recipient (and every other device of the
    sender: its own copies) that never sent any ack of it. An ack sent and
    not answered (WebSocket, or REST with the answer lost) is unknown: no
    requirement. In mode offline only messages whose every attempt (up to
    the first "accepted") fell in epochs ended by SIGTERM are required: a
    crash loses held copies there by design.
    A REST ack answered with the id as "unknown" did nothing: it does not
    count as an ack here.
P1r mode always: a receipt ("delivered") that reached any device of its
    user is listed at the audit for every device of that user that never
    acked it (it is written before it is pushed).
P1b an id that a REST ack answered as "acked" for a device is never
    delivered to that device again after a restart (or in a listing asked
    after the answer).
P2  no id names two messages (sender, client id, recipient), nor a message
    and a receipt; a client id is never accepted under two ids; a client
    id whose id was receipted is accepted under that id.
P2b an id pushed for a client id and kept by the server (pushed again
    after a restart, listed at the audit, or pushed in an epoch that ended
    in SIGTERM, which writes what was pushed) is the id the client id is
    accepted under: only a crash may make a re-send get a new id.
P3  per device, per sender: if the sender heard "accepted" for X1 before it
    first sent the client id of X2, the device's first delivery of X1 comes
    before its first delivery of X2.
P3b per device, per sender: the first "accepted" answers on one WebSocket
    (of client ids sent on that connection only) give the order of first
    delivery (docs/PROTOCOL.md, Ordering: "messages from one sender arrive
    in the order the sender got its accepted answers").
P4  a receipt ("delivered") for X never arrives on the connection that sent
    X's client id (every attempt so far on that connection) before the
    "accepted" for it.
P5  a receipt reports an ack only by a device that sent one.
S   the server does not die on its own, exits 0 on SIGTERM, and logs no
    sanitizer report (AddressSanitizer, UndefinedBehaviorSanitizer).

--directed [A-B] runs, instead of the random load, scenarios A-B of an
exhaustive list: one message X from s/p to r (devices p and l), pushed
before its commit to r/p, r/l and s/l, then every sequence of up to
--depth actions (acks over WebSocket or REST by each device, closes,
resets, a replacing connection, a re-send, a second message, the sender's
close), then kill -9 or SIGTERM, a restart, and the same checks.

    ... --ack-wait 60000 --directed 0-156 --verbose

Exit status: 0 when every check held, 1 otherwise (or when the harness
could not run), 2 for bad arguments. Traces: OUT/seed-N/trace.log; a
failing run keeps its data dir and server logs (printed).

Ports: 19000-19999 only (--port, else one picked from the seed). Load is
bounded: steps per epoch, epochs per run, and --time-limit seconds a run.
"""

import argparse
import asyncio
import collections
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import websockets
import websockets.exceptions

import harness
from harness import Server, TestFailure, abort_ws, ahttp, wait_until

USERS = {"ua": ["p"], "ub": ["p", "l"], "uc": ["p", "l"]}
PORT_LO, PORT_HI = 19000, 19999
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:")


# ----------------------------------------------------------------- server

class FixedPortServer(Server):
    """harness.Server on a fixed port (the kernel's pick may fall outside
    the range this machine allows)."""

    def __init__(self, port, *args, **kw):
        super().__init__(*args, **kw)
        self.fixed_port = port

    def start(self, timeout=20.0):
        self.runs += 1
        self.port_file = os.path.join(self.tmp, "port.%d" % self.runs)
        self.log_path = os.path.join(self.tmp, "log.%d" % self.runs)
        cmd = [self.bin, "--listen", "127.0.0.1:%d" % self.fixed_port,
               "--port-file", self.port_file, "--data-dir", self.data_dir, "--dev"] + self.args
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=harness._pdeathsig)

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("vartalapd exited with %s at start; log:\n%s"
                                  % (self.proc.returncode, self.log_tail()))
            return os.path.exists(self.port_file) and os.path.getsize(self.port_file) > 0

        wait_until(ready, timeout, "the port file of vartalapd")
        self.port = self.fixed_port
        return self


def free_port(start):
    """A port of 19000-19999 nothing listens on, from @start on."""
    span = PORT_HI - PORT_LO + 1
    for k in range(span):
        p = PORT_LO + (start - PORT_LO + k) % span
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise TestFailure("no free port in %d-%d" % (PORT_LO, PORT_HI))


# ----------------------------------------------------------------- trace

class Trace:
    """Every frame and harness event, one line each:
    seconds since the start, epoch, connection label, direction, text.
    '>' client to server, '<' server to client, '!' harness event."""

    def __init__(self, path):
        self.t0 = time.monotonic()
        self.epoch = 0
        self.lines = []
        self.f = open(path, "w")

    def now(self):
        return time.monotonic() - self.t0

    def log(self, label, arrow, text):
        line = "%9.4f e%-2d %-11s %s %s" % (self.now(), self.epoch, label, arrow, text)
        self.lines.append(line)
        self.f.write(line + "\n")

    def grep(self, needles, limit=80):
        """The lines that mention any of @needles (strings)."""
        out = [ln for ln in self.lines if any(n in ln for n in needles)]
        if len(out) > limit:
            out = out[:limit // 2] + ["    ... %d lines ..." % (len(out) - limit)] + \
                out[-limit // 2:]
        return out

    def close(self):
        self.f.close()


def id_needles(sid):
    return ['"id":"%s"' % sid, '"ref":"%s"' % sid, '"%s"]' % sid, '"%s",' % sid,
            " id=%s " % sid, " id=%s" % sid]


def cid_needles(cid):
    return ['"%s"' % cid]


# ----------------------------------------------------------------- bookkeeping

class Msg:
    """One (sender, client id): a message as its sender knows it."""

    def __init__(self, user, dev, cid, to, body):
        self.user, self.dev, self.cid, self.to, self.body = user, dev, cid, to, body
        self.attempts = []      # (t, epoch, label)
        self.acc_id = None      # first id heard in an "accepted"
        self.acc_t = None
        self.acc_label = None
        self.acc_epoch = None
        self.committed = set()  # ids "accepted" or receipted for this client id
        self.errors = []

    @property
    def first_send_t(self):
        return self.attempts[0][0] if self.attempts else None


class Conn:
    def __init__(self, dev, label, ws):
        self.dev, self.label, self.ws = dev, label, ws
        self.open = True
        self.task = None
        self.sent_cids = set()
        self.accepted_cids = set()
        self.answers = []       # first "accepted" per client id sent here: (cid, id)


class Dev:
    def __init__(self, user, name):
        self.user, self.name = user, name
        self.key = "%s/%s" % (user, name)
        self.conn = None
        self.old = []            # replaced connections still open
        self.nconn = 0
        self.nrest = 0
        self.unacked = collections.OrderedDict()   # id -> type, received and owed an ack
        self.outbox = []         # client ids sent and not answered "accepted", in order
        self.first = {}          # id -> (t, index, via, label, epoch): first delivery
        self.acks = collections.defaultdict(list)  # id -> [[t, epoch, how]]
        self.rest_acked = {}     # id -> (t, epoch) of a REST answer listing it "acked"
        self.audit = None        # ids listed at the audit


def exempt(acks):
    """Does a device that sent @acks of an id need it no more? Any ack
    counts (its fate may be unknown) but a REST ack answered "unknown":
    the server said it did nothing."""
    return any(not a[2].endswith(" unknown") for a in acks)


# ----------------------------------------------------------------- the run

class Run:
    def __init__(self, args, seed):
        self.args = args
        self.seed = seed
        self.rng = random.Random(seed)
        self.out = os.path.join(args.out, "seed-%d" % seed)
        shutil.rmtree(self.out, ignore_errors=True)
        os.makedirs(self.out)
        self.trace = Trace(os.path.join(self.out, "trace.log"))
        self.users = {}
        self.devs = {}
        for u, names in USERS.items():
            self.add_user(u, names)
        self.msgs = {}           # (user, cid) -> Msg
        self.ids = {}            # id -> (signature, first label)
        self.id_epochs = collections.defaultdict(set)  # id -> epochs it was delivered in
        self.violations = []
        self.rest_tasks = set()
        self.conns = []          # every WebSocket opened, in order
        self.epoch_end = {}      # epoch -> "kill9" | "sigterm" | "final"
        self.ncid = 0
        self.stats = collections.Counter()
        self.deadline = time.monotonic() + args.time_limit
        self.server_opts = self.pick_options()

    def add_user(self, user, names):
        self.users[user] = list(names)
        for n in names:
            d = Dev(user, n)
            self.devs[d.key] = d

    # -- configuration

    def pick_options(self):
        a, r = self.args, self.rng
        opts = ["--rate", "0"]
        if a.offline:
            opts += ["--durability", "offline", "--push-before-commit"]
        elif a.ack_wait:
            opts += ["--ack-wait", str(a.ack_wait)]
        ack_timeout, retries = r.choice([(700, 2), (2000, 1), (10000, 3)])
        opts += ["--ack-timeout", str(ack_timeout), "--retries", str(retries)]
        opts += ["--window", str(r.choice([4, 8, 32, 32]))]
        opts += ["--hold-queue", str(r.choice([16, 64, 1024]))]
        opts += ["--lmdb-map-size", "64"]
        if r.random() < 0.25:
            opts += ["--lmdb-writer", "inline"]
        return opts

    # -- violations and trace

    def violate(self, code, what, ids=(), cids=()):
        needles = []
        for i in ids:
            needles += id_needles(i)
        for c in cids:
            needles += cid_needles(c)
        self.violations.append((code, what, needles))
        self.trace.log("-", "!", "VIOLATION %s: %s" % (code, what))

    def log(self, label, arrow, text):
        self.trace.log(label, arrow, text)

    # -- ids

    def sig_of(self, ev):
        if ev.get("type") == "message":
            return ("message", ev.get("from"), ev.get("to"), ev.get("cid"))
        if ev.get("type") == "delivered":
            body = ev.get("body") or {}
            refs = tuple(sorted((r.get("ref"), r.get("cid")) for r in body.get("refs") or []))
            return ("delivered", ev.get("from"), ev.get("to"), body.get("device"), refs)
        return (ev.get("type"), ev.get("from"), ev.get("to"))

    def register(self, sid, sig, label):
        old = self.ids.get(sid)
        if old is None:
            self.ids[sid] = (sig, label)
        elif old[0] != sig:
            self.violate("P2", "id %s names two events: %r (first seen on %s) and %r (on %s)"
                         % (sid, old[0], old[1], sig, label), ids=[sid])

    # -- deliveries

    def delivered_to(self, dev, ev, via, label, asked=None):
        """@dev got @ev: pushed (via "ws") or listed ("list", "audit", by a
        request sent at @asked)."""
        sid = ev.get("id")
        if not isinstance(sid, str):
            return
        self.register(sid, self.sig_of(ev), label)
        if ev.get("type") == "message":
            m = self.msgs.get((ev.get("from"), ev.get("cid")))
            if m is None:
                self.violate("P2", "%s got a message no harness user sent: %s" % (dev.key, ev),
                             ids=[sid])
            elif m.to != ev.get("to") or m.body != ev.get("body"):
                self.violate("P2", "%s got id %s for %s/%s with to=%r body=%r; sent to=%r "
                             "body=%r" % (dev.key, sid, m.user, m.cid, ev.get("to"),
                                          ev.get("body"), m.to, m.body), ids=[sid],
                             cids=[m.cid])
        self.id_epochs[sid].add(self.trace.epoch)
        t = self.trace.now()
        if sid not in dev.first:
            dev.first[sid] = (t, len(dev.first), via, label, self.trace.epoch)
        ra = dev.rest_acked.get(sid)
        if ra is not None and (ra[1] < self.trace.epoch or (asked is not None and ra[0] < asked)):
            self.violate("P1b", "%s: id %s, acked over REST (answered \"acked\" at %.4f, "
                         "epoch %d), delivered again (%s on %s)"
                         % (dev.key, sid, ra[0], ra[1], via, label), ids=[sid])
        if via != "audit":
            dev.unacked[sid] = ev.get("type")
        self.stats["deliveries"] += 1

    def on_accepted(self, dev, ev, label, conn=None):
        cid, sid = ev.get("ref"), ev.get("id")
        m = self.msgs.get((dev.user, cid))
        if m is None:
            self.violate("P2", "%s: accepted for a client id never sent: %s" % (label, ev),
                         ids=[sid])
            return
        self.register(sid, ("message", m.user, m.to, m.cid), label)
        if m.committed and sid not in m.committed:
            self.violate("P2", "client id %s/%s accepted as %s, but it was accepted or "
                         "receipted as %s before" % (m.user, cid, sid, sorted(m.committed)),
                         ids=[sid] + sorted(m.committed), cids=[cid])
        m.committed.add(sid)
        if m.acc_id is None:
            m.acc_id, m.acc_t, m.acc_label = sid, self.trace.now(), label
            m.acc_epoch = self.trace.epoch
            self.stats["accepted"] += 1
        if cid in dev.outbox:
            dev.outbox.remove(cid)
        if conn is not None and cid not in conn.accepted_cids:
            conn.accepted_cids.add(cid)
            if all(a[2] == conn.label for a in m.attempts):
                conn.answers.append((cid, sid))

    def on_receipt(self, dev, ev, conn):
        body = ev.get("body") or {}
        rdev = "%s/%s" % (ev.get("from"), body.get("device"))
        for r in body.get("refs") or []:
            x, cid = r.get("ref"), r.get("cid")
            m = self.msgs.get((dev.user, cid))
            if m is None:
                self.violate("P5", "%s: receipt for a client id %s never sent: %s"
                             % (conn.label, cid, ev), ids=[x])
                continue
            self.register(x, ("message", m.user, m.to, m.cid), conn.label)
            acker = self.devs.get(rdev)
            if acker is None or not acker.acks.get(x):
                self.violate("P5", "%s: receipt %s says %s acked %s, which it never did"
                             % (conn.label, ev.get("id"), rdev, x), ids=[x, ev.get("id")])
            if m.committed and x not in m.committed:
                self.violate("P2", "receipt names %s for %s/%s, accepted as %s"
                             % (x, m.user, cid, sorted(m.committed)), ids=[x], cids=[cid])
            m.committed.add(x)
            # P4: every attempt so far went on this connection, and no answer yet.
            if m.attempts and all(a[2] == conn.label for a in m.attempts) and \
                    cid not in conn.accepted_cids:
                self.violate("P4", "%s: receipt %s for %s (cid %s) before its accepted"
                             % (conn.label, ev.get("id"), x, cid), ids=[x, ev.get("id")],
                             cids=[cid])

    # -- WebSocket

    async def reader(self, conn):
        dev = conn.dev
        try:
            async for raw in conn.ws:
                self.log(conn.label, "<", raw)
                try:
                    ev = json.loads(raw)
                except ValueError:
                    self.violate("S", "%s: not JSON: %r" % (conn.label, raw[:200]))
                    continue
                typ = ev.get("type")
                if typ == "message":
                    self.delivered_to(dev, ev, "ws", conn.label)
                elif typ == "delivered":
                    self.delivered_to(dev, ev, "ws", conn.label)
                    self.on_receipt(dev, ev, conn)
                elif typ == "accepted":
                    self.on_accepted(dev, ev, conn.label, conn)
                elif typ == "error":
                    m = self.msgs.get((dev.user, ev.get("ref")))
                    if m is not None:
                        m.errors.append(ev.get("code"))
                    self.stats["error:" + str(ev.get("code"))] += 1
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as e:  # noqa: B902 (a reader must never die silently)
            self.log(conn.label, "!", "reader error %r" % (e,))
        finally:
            conn.open = False
            self.log(conn.label, "!", "closed code=%s" % (conn.ws.close_code,))
            if dev.conn is conn:
                dev.conn = None
            if conn in dev.old:
                dev.old.remove(conn)

    async def connect(self, dev, srv):
        dev.nconn += 1
        label = "%s#%d" % (dev.key, dev.nconn)
        tok = srv.token(dev.user, dev.name)
        try:
            ws = await websockets.connect(
                srv.ws_url(), extra_headers=[("Authorization", "Bearer " + tok)],
                open_timeout=5, close_timeout=2, ping_interval=None, max_size=None,
                max_queue=None)
        except Exception as e:  # noqa: B902
            self.log(label, "!", "connect failed %r" % (e,))
            return None
        conn = Conn(dev, label, ws)
        self.conns.append(conn)
        self.log(label, "!", "open")
        if dev.conn is not None and dev.conn.open:
            dev.old.append(dev.conn)
        dev.conn = conn
        conn.task = asyncio.ensure_future(self.reader(conn))
        self.stats["connects"] += 1
        return conn

    async def ws_send(self, conn, obj):
        text = json.dumps(obj, separators=(",", ":"))
        try:
            await conn.ws.send(text)
        except Exception as e:  # noqa: B902
            self.log(conn.label, "!", "send failed %r: %s" % (e, text))
            return False
        self.log(conn.label, ">", text)
        return True

    def new_msg(self, dev, to=None):
        if to is None:
            to = self.rng.choice([u for u in self.users if u != dev.user])
        self.ncid += 1
        cid = "%s.%s-%d" % (dev.user, dev.name, self.ncid)
        body = {"c": cid, "pad": "x" * self.rng.choice([0, 0, 10, 300])}
        m = Msg(dev.user, dev.name, cid, to, body)
        self.msgs[(dev.user, cid)] = m
        dev.outbox.append(cid)
        return m

    def envelope(self, m):
        return {"v": 1, "type": "message", "id": m.cid, "to": m.to, "body": m.body}

    async def send_ws(self, dev, m):
        conn = dev.conn
        if conn is None or not conn.open:
            return
        if await self.ws_send(conn, self.envelope(m)):
            m.attempts.append((self.trace.now(), self.trace.epoch, conn.label))
            conn.sent_cids.add(m.cid)
            self.stats["ws sends"] += 1

    async def ack_ws(self, dev, ids):
        conn = dev.conn
        if conn is None or not conn.open or not ids:
            return
        if await self.ws_send(conn, {"v": 1, "type": "ack", "ids": ids}):
            for i in ids:
                dev.acks[i].append([self.trace.now(), self.trace.epoch, "ws " + conn.label])
                dev.unacked.pop(i, None)
            self.stats["ws acks"] += len(ids)

    async def close(self, conn, how):
        self.log(conn.label, "!", "client %s" % how)
        if how == "close":
            try:
                await asyncio.wait_for(conn.ws.close(), 3)
            except Exception:  # noqa: B902
                pass
        else:
            abort_ws(conn.ws)
        if conn.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(conn.task), 3)
            except Exception:  # noqa: B902
                pass

    # -- REST

    def rest_label(self, dev):
        dev.nrest += 1
        return "%s~r%d" % (dev.key, dev.nrest)

    async def http(self, srv, dev, label, method, path, body=None):
        self.log(label, ">", "%s %s %s" % (method, path,
                                            json.dumps(body, separators=(",", ":"))
                                            if body is not None else ""))
        try:
            st, r = await ahttp(srv.port, method, path, srv.token(dev.user, dev.name), body,
                                timeout=8)
        except Exception as e:  # noqa: B902
            self.log(label, "!", "no answer %r" % (e,))
            return None, None
        self.log(label, "<", "%s %s" % (st, json.dumps(r, separators=(",", ":"))
                                        if not isinstance(r, bytes) else r[:200]))
        return st, r

    async def send_rest(self, srv, dev, m):
        label = self.rest_label(dev)
        m.attempts.append((self.trace.now(), self.trace.epoch, label))
        self.stats["rest sends"] += 1
        st, r = await self.http(srv, dev, label, "POST", "/v1/send", self.envelope(m))
        if st == 200 and isinstance(r, dict) and r.get("type") == "accepted":
            self.on_accepted(dev, r, label)
        elif st is not None:
            m.errors.append(r.get("code") if isinstance(r, dict) else st)

    async def ack_rest(self, srv, dev, ids):
        label = self.rest_label(dev)
        t0 = self.trace.now()
        mine = {}
        for i in ids:
            mine[i] = [t0, self.trace.epoch, "rest " + label]
            dev.acks[i].append(mine[i])
            dev.unacked.pop(i, None)
        self.stats["rest acks"] += len(ids)
        st, r = await self.http(srv, dev, label, "POST", "/v1/ack", {"ids": ids})
        if st == 200 and isinstance(r, dict):
            t = self.trace.now()
            for i in r.get("acked") or []:
                dev.rest_acked.setdefault(i, (t, self.trace.epoch))
            for i in r.get("unknown") or []:
                self.stats["rest acks unknown"] += 1
                if i in mine:
                    mine[i][2] += " unknown"

    async def list_rest(self, srv, dev, via="list", ack=False):
        """Every page of the device's listing; returns the ids, or None when
        the listing did not complete."""
        label = self.rest_label(dev)
        after, got = None, []
        for _ in range(200):
            path = "/v1/messages?device=%s&limit=%d" % (dev.name, self.rng.choice([7, 100]))
            if after is not None:
                path += "&after=" + after
            asked = self.trace.now()
            st, r = await self.http(srv, dev, label, "GET", path)
            if st != 200 or not isinstance(r, dict):
                return None
            for ev in r.get("messages") or []:
                self.delivered_to(dev, ev, via, label, asked)
                got.append(ev.get("id"))
                if ev.get("type") == "delivered":
                    self.on_receipt(dev, ev, Conn(dev, label, None))
            if not r.get("more"):
                return got
            after = r.get("next")
        return None

    def spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self.rest_tasks.add(t)
        t.add_done_callback(self.rest_tasks.discard)

    # -- the driver

    def never_ack(self, dev, sid, typ):
        """A copy this device does not ack: about 3% of messages never, and
        about 12% not in the epoch they first came in. Decided by a hash,
        not by the order frames happened to arrive in."""
        if typ != "message":
            return False
        h = hashlib.sha256(("%d %s %s" % (self.seed, dev.key, sid)).encode()).digest()
        if h[0] < 8:
            return True
        first = dev.first.get(sid)
        return h[1] < 31 and first is not None and first[4] == self.trace.epoch

    def ackable(self, dev):
        return [i for i, typ in dev.unacked.items() if not self.never_ack(dev, i, typ)]

    def pick_acks(self, dev):
        ids = self.ackable(dev)
        if not ids:
            return []
        how = self.rng.random()
        if how < 0.35:
            return ids[:256]
        if how < 0.6:
            return [ids[0]]
        if how < 0.8:
            return [self.rng.choice(ids)]
        k = self.rng.randint(1, min(len(ids), 8))
        return self.rng.sample(ids, k)

    async def step(self, srv, p):
        rng = self.rng
        dev = self.devs[rng.choice(sorted(self.devs))]
        conn = dev.conn if dev.conn is not None and dev.conn.open else None
        x = rng.random()
        if x < p["send_ws"]:
            if conn is not None:
                await self.send_ws(dev, self.new_msg(dev))
        elif x < p["send_rest"]:
            if len(self.rest_tasks) < 6:
                self.spawn(self.send_rest(srv, dev, self.new_msg(dev)))
        elif x < p["ack_ws"]:
            if conn is not None:
                await self.ack_ws(dev, self.pick_acks(dev))
        elif x < p["ack_rest"]:
            ids = self.pick_acks(dev)
            if ids and len(self.rest_tasks) < 6:
                self.spawn(self.ack_rest(srv, dev, ids))
        elif x < p["resend"]:
            if dev.outbox:
                m = self.msgs[(dev.user, dev.outbox[0])]
                if conn is not None and rng.random() < 0.7:
                    await self.send_ws(dev, m)
                elif len(self.rest_tasks) < 6:
                    self.spawn(self.send_rest(srv, dev, m))
        elif x < p["list"]:
            if conn is None and not dev.old and len(self.rest_tasks) < 6:
                self.spawn(self.list_rest(srv, dev))
        elif x < p["connect"]:
            if conn is None:
                c = await self.connect(dev, srv)
                if c is not None and rng.random() < 0.7:
                    for cid in list(dev.outbox):  # as vartalap-cli does on a reconnect
                        await self.send_ws(dev, self.msgs[(dev.user, cid)])
        elif x < p["disconnect"]:
            if conn is not None:
                await self.close(conn, rng.choice(["close", "reset"]))
        elif x < p["replace"]:
            if conn is not None:
                await self.connect(dev, srv)
        await asyncio.sleep(rng.choice([0, 0, 0.001, 0.003, 0.01, 0.03]))

    def profile(self):
        """Cumulative thresholds of the actions for this epoch."""
        r = self.rng
        w = [("send_ws", r.uniform(15, 30)), ("send_rest", r.uniform(2, 6)),
             ("ack_ws", r.uniform(10, 30)), ("ack_rest", r.uniform(2, 8)),
             ("resend", 4), ("list", 2), ("connect", 8),
             ("disconnect", r.choice([0.2, 0.5, 2, 5])), ("replace", r.choice([0.1, 0.7])),
             ("idle", r.uniform(5, 20))]
        tot = sum(v for _, v in w)
        acc, out = 0.0, {}
        for k, v in w:
            acc += v / tot
            out[k] = acc
        return out

    def interrupt_kind(self):
        k = self.args.kill
        if k == "mix":
            return self.rng.choice(["kill9", "kill9", "sigterm"])
        return k

    async def drain_rest(self):
        if self.rest_tasks:
            await asyncio.gather(*list(self.rest_tasks), return_exceptions=True)

    async def drop_all(self):
        """After the server is gone: reset every connection left."""
        for d in self.devs.values():
            for c in ([d.conn] if d.conn else []) + list(d.old):
                if c.open:
                    await self.close(c, "reset")
            d.conn = None
            d.old = []

    async def epoch(self, srv, k):
        self.trace.epoch = k
        srv.start()
        self.log("-", "!", "server start %d pid %d" % (srv.runs, srv.pid))
        if k == 0:
            for d in self.devs.values():   # register every device before any message
                if await self.list_rest(srv, d) is None:
                    raise TestFailure("first listing of %s failed" % d.key)
        for key in sorted(self.devs):
            if self.rng.random() < 0.95:
                d = self.devs[key]
                if await self.connect(d, srv) is not None and self.rng.random() < 0.7:
                    for cid in list(d.outbox):
                        await self.send_ws(d, self.msgs[(d.user, cid)])
        p = self.profile()
        steps = self.rng.randint(self.args.steps // 4, self.args.steps)
        self.log("-", "!", "epoch %d: %d steps, profile %s" % (
            k, steps, {a: round(b, 3) for a, b in p.items()}))
        for _ in range(steps):
            if not srv.alive():
                self.violate("S", "vartalapd died on its own (status %s) in epoch %d; log "
                             "%s" % (srv.proc.returncode, k, srv.log_path))
                break
            if time.monotonic() > self.deadline - 12:
                break
            await self.step(srv, p)
        how = self.interrupt_kind()
        self.epoch_end[k] = how
        await self.interrupt(srv, how)

    async def gauges(self, srv):
        """The held and waiting gauges of GET /metrics, as a sign of what an
        interrupt now cuts off."""
        try:
            st, body = await ahttp(srv.port, "GET", "/metrics", timeout=2)
        except Exception:  # noqa: B902
            return {}
        out = {}
        if st == 200 and isinstance(body, bytes):
            for ln in body.decode("utf-8", "replace").splitlines():
                parts = ln.split()
                if len(parts) == 2 and parts[0] in ("vartalap_ack_waiting",
                                                    "vartalap_journal_open"):
                    out[parts[0][9:]] = int(parts[1])
        return out

    async def interrupt(self, srv, how):
        if srv.alive():
            g = await self.gauges(srv)
            for k, v in g.items():
                self.stats["at interrupts: " + k] += v
            self.log("-", "!", "interrupt %s, gauges %s" % (how, g))
            if how == "kill9":
                srv.proc.send_signal(signal.SIGKILL)
                srv.proc.wait()
            else:
                srv.proc.send_signal(signal.SIGTERM)
                t0 = time.monotonic()
                while srv.proc.poll() is None and time.monotonic() - t0 < 30:
                    await asyncio.sleep(0.01)
                if srv.proc.poll() is None:
                    srv.proc.kill()
                    srv.proc.wait()
                    self.violate("S", "vartalapd did not exit within 30 s of SIGTERM")
                elif srv.proc.returncode != 0:
                    self.violate("S", "vartalapd exited %s on SIGTERM (log %s)"
                                 % (srv.proc.returncode, srv.log_path))
            srv.log.close()
            self.stats[how] += 1
        await self.drop_all()
        await self.drain_rest()
        self.log("-", "!", "server gone, status %s" % srv.proc.returncode)

    async def settle(self, srv, k):
        """Start again; re-send over REST whatever got no answer."""
        self.trace.epoch = k
        srv.start()
        self.log("-", "!", "server start %d pid %d (settle)" % (srv.runs, srv.pid))
        for key in sorted(self.devs):
            d = self.devs[key]
            for cid in list(d.outbox):
                m = self.msgs[(d.user, cid)]
                for _ in range(5):
                    await self.send_rest(srv, d, m)
                    if m.acc_id is not None:
                        break
                    await asyncio.sleep(0.1)
                else:
                    self.violate("S", "settle: %s/%s never accepted: %s" % (d.user, cid,
                                                                           m.errors[-3:]),
                                 cids=[cid])

    async def audit(self, srv):
        for key in sorted(self.devs):
            d = self.devs[key]
            got = await self.list_rest(srv, d, via="audit")
            if got is None:
                raise TestFailure("audit listing of %s failed" % key)
            d.audit = set(got)

    # -- checks after the run

    def targets(self, m):
        """(device, "recipient" | "own copy") that must get @m."""
        out = [(self.devs["%s/%s" % (m.to, n)], "recipient") for n in self.users[m.to]]
        out += [(self.devs["%s/%s" % (m.user, n)], "own copy") for n in self.users[m.user]
                if n != m.dev]
        return out

    def required(self, m):
        if not self.args.offline:
            return True
        last = m.acc_epoch
        return all(self.epoch_end.get(e) in ("sigterm", "final")
                   for e in set(a[1] for a in m.attempts if a[1] <= last))

    def check_p1(self):
        n = 0
        for m in self.msgs.values():
            if m.acc_id is None or not self.required(m):
                continue
            for d, role in self.targets(m):
                if exempt(d.acks.get(m.acc_id, ())):
                    continue
                n += 1
                if m.acc_id not in d.audit:
                    seen = d.first.get(m.acc_id)
                    self.violate("P1", "%s (%s) never acked %s (%s/%s, accepted on %s at "
                                 "%.4f, epoch %d) and it is not listed at the audit; "
                                 "first delivered: %s"
                                 % (d.key, role, m.acc_id, m.user, m.cid, m.acc_label,
                                    m.acc_t, m.acc_epoch,
                                    "never" if seen is None else
                                    "%.4f via %s on %s" % (seen[0], seen[2], seen[3])),
                                 ids=[m.acc_id], cids=[m.cid])
        self.stats["P1 copies required"] = n

    def check_receipts(self):
        """P1r: mode always writes a receipt before it is pushed, so one that
        reached any device of its sender stays owed to each device of that
        user that did not ack it."""
        if self.args.offline:
            return
        n = 0
        for sid, (sig, label) in self.ids.items():
            if sig[0] != "delivered":
                continue
            for name in self.users[sig[2]]:
                d = self.devs["%s/%s" % (sig[2], name)]
                if exempt(d.acks.get(sid, ())):
                    continue
                n += 1
                if sid not in d.audit:
                    self.violate("P1r", "receipt %s (first seen on %s) is not listed for %s at "
                                 "the audit, which never acked it" % (sid, label, d.key),
                                 ids=[sid])
        self.stats["P1r receipt copies required"] = n

    def check_p2b(self):
        """P2b: an id pushed for a client id and then kept by the server (it
        came again after a restart, was listed at the audit, or its epoch
        ended in a clean stop, which writes what was pushed) is the id that
        client id is accepted under."""
        for sid, (sig, label) in self.ids.items():
            if sig[0] != "message":
                continue
            m = self.msgs.get((sig[1], sig[3]))
            if m is None or m.acc_id is None or sid == m.acc_id:
                continue
            eps = self.id_epochs.get(sid, set())
            listed = any(sid in d.audit for d in self.devs.values())
            kept = listed or len(eps) > 1 or any(self.epoch_end.get(e) == "sigterm"
                                                 for e in eps)
            if kept:
                self.violate("P2b", "id %s for %s/%s (epochs %s%s) was kept, but the client "
                             "id is accepted as %s" % (sid, m.user, m.cid, sorted(eps),
                                                      ", listed at the audit" if listed else "",
                                                      m.acc_id),
                             ids=[sid, m.acc_id], cids=[m.cid])

    def check_p3(self):
        by_sender = collections.defaultdict(list)
        for m in self.msgs.values():
            if m.acc_id is not None:
                by_sender[m.user].append(m)
        bad = 0
        for sender, ms in by_sender.items():
            ms.sort(key=lambda m: m.acc_t)
            for d in self.devs.values():
                mine = [m for m in ms if any(t is d for t, _ in self.targets(m))]
                for i, m1 in enumerate(mine):
                    f1 = d.first.get(m1.acc_id)
                    if f1 is None:
                        continue
                    for m2 in mine:
                        if m2.first_send_t is None or m2.first_send_t <= m1.acc_t:
                            continue
                        f2 = d.first.get(m2.acc_id)
                        if f2 is not None and f2[1] < f1[1]:
                            bad += 1
                            if bad <= 5:
                                self.violate(
                                    "P3", "%s got %s (%s, first sent %.4f) at %.4f via %s on %s "
                                    "before %s (%s, accepted %.4f) at %.4f via %s on %s"
                                    % (d.key, m2.acc_id, m2.cid, m2.first_send_t, f2[0], f2[2],
                                       f2[3], m1.acc_id, m1.cid, m1.acc_t, f1[0], f1[2], f1[3]),
                                    ids=[m1.acc_id, m2.acc_id], cids=[m1.cid, m2.cid])
        self.stats["P3 pairs out of order"] = bad

    def check_p3b(self, conns):
        bad = 0
        for conn in conns:
            ans = conn.answers
            for i in range(len(ans)):
                for j in range(i + 1, len(ans)):
                    (c1, x1), (c2, x2) = ans[i], ans[j]
                    m1 = self.msgs[(conn.dev.user, c1)]
                    for d, _ in self.targets(m1):
                        f1, f2 = d.first.get(x1), d.first.get(x2)
                        if f1 is None or f2 is None or f1[1] < f2[1]:
                            continue
                        bad += 1
                        if bad <= 3:
                            self.violate(
                                "P3b", "%s heard accepted %s (%s) before accepted %s (%s), "
                                "but %s got %s first (%.4f via %s, %.4f via %s)"
                                % (conn.label, x1, c1, x2, c2, d.key, x2, f2[0], f2[2],
                                   f1[0], f1[2]), ids=[x1, x2], cids=[c1, c2])
        self.stats["P3b pairs out of answer order"] = bad

    def check_logs(self, srv):
        warn = collections.Counter()
        for k in range(1, srv.runs + 1):
            path = os.path.join(srv.tmp, "log.%d" % k)
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            for ln in text.splitlines():
                if any(s in ln for s in SANITIZER_MARKS):
                    self.violate("S", "sanitizer report in %s: %s" % (path, ln.strip()))
                    break
            for ln in text.splitlines():
                for key in ("pushed before its commit was not accepted", "held copies stored "
                            "from the journal", "held event", "journal entry kept",
                            "not written", " error "):
                    if key in ln:
                        warn[key.strip()] += 1
        return warn

    # -- all of it

    async def main(self):
        srv = FixedPortServer(self.args.port or free_port(PORT_LO + (self.seed * 37) % 1000),
                              *self.server_opts)
        self.srv = srv
        self.log("-", "!", "seed %d port %d options %s data %s" % (
            self.seed, srv.fixed_port, " ".join(self.server_opts), srv.data_dir))
        try:
            k = 0
            for k in range(self.args.epochs):
                await self.epoch(srv, k)
                if time.monotonic() > self.deadline - 12:
                    break
            k += 1
            self.epoch_end[k] = "final"
            await self.settle(srv, k)
            await self.audit(srv)
            self.check_p1()
            self.check_receipts()
            self.check_p2b()
            self.check_p3()
            self.check_p3b(self.conns)
            await self.interrupt(srv, "sigterm")
        finally:
            if srv.alive():
                srv.proc.kill()
                srv.proc.wait()
        warn = self.check_logs(srv)
        return warn


# ----------------------------------------------------------------- directed

class Directed(Run):
    """Every sequence of up to --depth actions after one message X, sent by
    s/p to r over a WebSocket while r/p, r/l and s/l are connected (so X is
    pushed before its commit), then kill -9 or SIGTERM, a restart, and the
    audit of the four devices. Each scenario has users of its own (sN, rN);
    one server, restarted on the same data dir, serves them all."""

    ACTIONS = ["rp.wsack", "rl.wsack", "rp.restack", "rl.restack", "rp.close", "rl.reset",
               "rl.replace", "sl.wsack", "sp.resend", "sp.close", "sp.send2", "idle"]

    def __init__(self, args, seed):
        super().__init__(args, seed)
        self.users, self.devs = {}, {}
        self.lines = []
        self.stopped = None  # the first scenario --time-limit left out
        self.last = None     # the last scenario asked for

    def pick_options(self):
        """No retry, no lagging device within a scenario: X waits for its acks."""
        opts = ["--rate", "0", "--ack-timeout", "30000", "--lmdb-map-size", "64"]
        if self.args.offline:
            opts += ["--durability", "offline", "--push-before-commit"]
        elif self.args.ack_wait:
            opts += ["--ack-wait", str(self.args.ack_wait)]
        return opts

    def scenarios(self):
        acts = self.args.actions.split(",") if self.args.actions else self.ACTIONS
        bad = [a for a in acts if a not in self.ACTIONS]
        if bad:
            raise TestFailure("unknown actions %s; known: %s" % (bad, ",".join(self.ACTIONS)))
        seqs = [()]
        for depth in range(1, self.args.depth + 1):
            seqs += list(itertools.product(acts, repeat=depth))
        return [(seq, how) for seq in seqs for how in ("kill9", "sigterm")]

    def pushed_id(self, d, m):
        for sid in d.first:
            sig = self.ids.get(sid, (None,))[0]
            if sig == ("message", m.user, m.to, m.cid):
                return sid
        return None

    async def warm(self, srv):
        """The first message after a start is written before it is pushed."""
        st, r = await ahttp(srv.port, "POST", "/v1/send", srv.token("w1"),
                            {"v": 1, "type": "message", "id": "warm-%d" % srv.runs,
                             "to": "w2", "body": 0}, timeout=8)
        if st != 200:
            raise TestFailure("warm-up send: %s %r" % (st, r))

    async def act(self, srv, name, x, xid):
        if name == "idle":
            await asyncio.sleep(0.05)
            return
        who, what = name.split(".")
        d = self.devs["%s/%s" % ({"s": x.user, "r": x.to}[who[0]], who[1])]
        conn = d.conn if d.conn is not None and d.conn.open else None
        if what == "wsack" and conn is not None and xid is not None:
            await self.ack_ws(d, [xid])
        elif what == "restack" and xid is not None:
            await self.ack_rest(srv, d, [xid])
        elif what in ("close", "reset") and conn is not None:
            await self.close(conn, what)
        elif what == "replace" and conn is not None:
            await self.connect(d, srv)
        elif what == "resend" and conn is not None:
            await self.send_ws(d, x)
        elif what == "send2" and conn is not None:
            await self.send_ws(d, self.new_msg(d, to=x.to))
        await asyncio.sleep(0.05)

    async def scenario(self, srv, n, seq, how):
        S, R = "s%d" % n, "r%d" % n
        self.add_user(S, ["p", "l"])
        self.add_user(R, ["p", "l"])
        devs = [self.devs[k] for k in ("%s/p" % S, "%s/l" % S, "%s/p" % R, "%s/l" % R)]
        self.log("-", "!", "scenario %d: %s then %s" % (n, " ".join(seq) or "nothing", how))
        for d in devs:
            if await self.list_rest(srv, d) is None:
                raise TestFailure("registration of %s failed" % d.key)
        for d in devs:
            if await self.connect(d, srv) is None:
                raise TestFailure("connect of %s failed" % d.key)
        await self.list_rest(srv, devs[0])  # answered after the registrations commit
        sp = devs[0]
        x = self.new_msg(sp, to=R)
        await self.send_ws(sp, x)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2 and \
                any(self.pushed_id(d, x) is None for d in devs[1:]):
            await asyncio.sleep(0.005)
        xid = self.pushed_id(devs[2], x)
        early = xid is not None and x.acc_id is None
        for name in seq:
            await self.act(srv, name, x, xid)
        accepted = x.acc_id is not None
        await self.interrupt(srv, how)
        self.epoch_end[self.trace.epoch] = how
        self.trace.epoch += 1
        srv.start()
        self.log("-", "!", "server start %d pid %d" % (srv.runs, srv.pid))
        for d in devs:
            got = await self.list_rest(srv, d, via="audit")
            if got is None:
                raise TestFailure("audit listing of %s failed" % d.key)
            d.audit = set(got)
        self.stats["scenarios"] += 1
        self.stats["X pushed before accepted"] += early
        self.stats["X accepted before the interrupt"] += accepted
        self.lines.append("  %3d %-8s %-28s X=%s early=%d accepted=%s; listed after: %s" % (
            n, how, " ".join(seq) or "-", xid, early, x.acc_id,
            {d.key.split("/", 1)[0][0] + d.name: sorted(d.audit, key=int) for d in devs}))
        await self.warm(srv)

    async def main(self):
        srv = FixedPortServer(self.args.port or free_port(PORT_LO + (self.seed * 37) % 1000),
                              *self.server_opts)
        self.srv = srv
        todo = self.scenarios()
        lo, dash, hi = (self.args.directed or "0-").partition("-")
        lo = int(lo)
        hi = min(int(hi), len(todo) - 1) if hi else (len(todo) - 1 if dash else lo)
        self.last = hi
        self.log("-", "!", "directed %d-%d of %d, port %d options %s data %s" % (
            lo, hi, len(todo), srv.fixed_port, " ".join(self.server_opts), srv.data_dir))
        try:
            srv.start()
            await self.warm(srv)
            for n in range(lo, hi + 1):
                if time.monotonic() > self.deadline - 3:
                    self.stopped = n
                    break
                await self.scenario(srv, n, *todo[n])
            self.epoch_end[self.trace.epoch] = "final"
            self.check_p1()
            self.check_receipts()
            self.check_p2b()
            await self.interrupt(srv, "sigterm")
        finally:
            if srv.alive():
                srv.proc.kill()
                srv.proc.wait()
        if self.args.verbose:
            print("\n".join(self.lines))
        return self.check_logs(srv)


def report(run, warn, elapsed):
    s = run.stats
    if isinstance(run, Directed):
        print("seed %d, directed %s: %.1fs, options %s" % (run.seed, run.args.directed or "all",
                                                       elapsed, " ".join(run.server_opts)))
        print("  scenarios %d (X pushed before accepted in %d, X accepted before the "
              "interrupt in %d), kill -9 %d, SIGTERM %d, P1 copies required %d, P1r %d"
              % (s["scenarios"], s["X pushed before accepted"],
                 s["X accepted before the interrupt"], s["kill9"], s["sigterm"],
                 s["P1 copies required"], s["P1r receipt copies required"]))
        if run.stopped is not None:
            print("  --time-limit stopped it before scenario %d: run the rest with --directed "
                  "%d-%d" % (run.stopped, run.stopped, run.last))
        return verdict(run, warn)
    n_acc = sum(1 for m in run.msgs.values() if m.acc_id is not None)
    n_ids = len(set(i for m in run.msgs.values() for i in m.committed))
    print("seed %d: %.1fs, options %s" % (run.seed, elapsed, " ".join(run.server_opts)))
    print("  epochs %d (kill -9 %d, SIGTERM %d incl. the last), client ids %d, accepted %d, "
          "ids committed %d, ws sends %d, rest sends %d, ws acks %d, rest acks %d "
          "(unknown %d), deliveries %d, connects %d, P1 copies required %d, P1r %d"
          % (len(run.epoch_end) - 1, s["kill9"], s["sigterm"], len(run.msgs), n_acc, n_ids,
             s["ws sends"], s["rest sends"], s["ws acks"], s["rest acks"],
             s["rest acks unknown"], s["deliveries"], s["connects"], s["P1 copies required"],
             s["P1r receipt copies required"]))
    early = 0
    for m in run.msgs.values():
        if m.acc_id is not None and any(m.acc_id in d.first and d.first[m.acc_id][0] < m.acc_t - 0.003
                                        for d, _ in run.targets(m)):
            early += 1
    committed = set(i for m in run.msgs.values() for i in m.committed)
    lost_early = sum(1 for i, (sig, _) in run.ids.items()
                     if sig[0] == "message" and i not in committed)
    print("  accepted 3+ ms after a push to a device: %d; ids pushed and never accepted: %d; "
          "summed over interrupts: messages waiting for acks %d, journal entries open %d"
          % (early, lost_early, s["at interrupts: ack_waiting"],
             s["at interrupts: journal_open"]))
    return verdict(run, warn)


def verdict(run, warn):
    s = run.stats
    errs = {k[6:]: v for k, v in s.items() if k.startswith("error:")}
    if errs or warn:
        print("  errors pushed %s; server log lines %s" % (errs, dict(warn)))
    counted = [v for v in run.violations if v[0] not in run.args.skip]
    skipped = collections.Counter(v[0] for v in run.violations if v[0] in run.args.skip)
    if skipped:
        print("  not counted (--skip): %s" % dict(skipped))
    if not counted:
        print("  ok: every promise checked held")
        return 0
    print("  %d VIOLATIONS (trace %s, data %s):" % (len(counted),
                                                   run.trace.f.name, run.srv.tmp))
    traced = set()
    for code, what, needles in counted[:12]:
        print("  [%s] %s" % (code, what))
        if code in traced or not needles:
            continue
        traced.add(code)  # the trace lines of the first violation of each kind
        for ln in run.trace.grep(needles, limit=30):
            print("      " + (ln if len(ln) <= 220 else ln[:220] + " ..."))
    return 1


def parse_seeds(a):
    if a.seeds:
        lo, _, hi = a.seeds.partition("-")
        return list(range(int(lo), int(hi or lo) + 1))
    return [a.seed if a.seed is not None else int(time.time()) % 100000]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, help="one seed (default: from the clock)")
    ap.add_argument("--seeds", help="a range of seeds, A-B, run one after another")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--ack-wait", type=int, default=0, metavar="MS",
                      help="mode always with --ack-wait MS (default 0: the control)")
    mode.add_argument("--offline", action="store_true",
                      help="--durability offline --push-before-commit")
    ap.add_argument("--kill", choices=["kill9", "sigterm", "mix"], default="mix",
                    help="how each epoch ends (default mix: 2 of 3 kill -9)")
    ap.add_argument("--epochs", type=int, default=8, help="epochs before the settle (8)")
    ap.add_argument("--steps", type=int, default=300, help="most driver steps an epoch (300)")
    ap.add_argument("--time-limit", type=float, default=55.0,
                    help="seconds a run may take, roughly (55)")
    ap.add_argument("--directed", nargs="?", const="", metavar="A-B",
                    help="instead of the random load, scenarios A-B (A-: to the end; all "
                    "when omitted) of "
                    "the directed list: each sequence of up to --depth actions on one "
                    "message pushed before its commit, then kill -9 or SIGTERM")
    ap.add_argument("--depth", type=int, default=2, help="actions per directed scenario (2)")
    ap.add_argument("--actions", metavar="A,B,...",
                    help="the directed actions to combine (default: all of %s)"
                    % ",".join(Directed.ACTIONS))
    ap.add_argument("--verbose", action="store_true", help="a line per directed scenario")
    ap.add_argument("--port", type=int, help="port in 19000-19999 (default: from the seed)")
    ap.add_argument("--out", default="/tmp/stress-ack-wait",
                    help="where traces go (OUT/seed-N/trace.log)")
    ap.add_argument("--skip", action="append", default=[], metavar="CODE",
                    help="report violations of CODE (P3b, ...) without failing on them")
    ap.add_argument("--keep", action="store_true", help="keep data dirs of passing runs too")
    a = ap.parse_args()
    if a.port is not None and not PORT_LO <= a.port <= PORT_HI:
        ap.error("--port must be in %d-%d" % (PORT_LO, PORT_HI))
    if a.keep:
        os.environ["VT_E2E_KEEP"] = "1"
    failed = 0
    for seed in parse_seeds(a):
        run = (Directed if a.directed is not None else Run)(a, seed)
        t0 = time.monotonic()
        try:
            warn = asyncio.run(run.main())
        except TestFailure as e:
            run.violations.append(("HARNESS", str(e), []))
            warn = {}
        rc = report(run, warn, time.monotonic() - t0)
        run.trace.close()
        if rc:
            os.environ["VT_E2E_KEEP"] = "1"  # keep the data dir and logs of a failure
        run.srv.kill()
        if not a.keep and not rc:
            os.environ.pop("VT_E2E_KEEP", None)
        failed += rc
        sys.stdout.flush()
    print("%d runs, %d failed" % (len(parse_seeds(a)), failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
