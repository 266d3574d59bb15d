"""Two vartalapd nodes on one Redis store (--storage redis).

Each test starts its own redis-server on 127.0.0.1 and two nodes with their
own ports and data dirs, the same --redis URL and the same --secret-file, so
a token works on either node. Covered: a message sent on one node is listed
and delivered on the other, and the receipt reaches the sender by REST sync;
a Redis restart (appendonly) gives senders 503 storage_error, never a false
accepted, and both nodes recover; a node killed with SIGKILL loses nothing
it accepted, nor the receipt of an ack that Redis applied; Redis over
maxmemory still takes acks, a node's start and its expiry; ids handed out
twice after Redis lost writes never carry one user's message to another's
recipient; a record in Redis that cannot be read is passed over and the
rest delivered. Skipped (77) when redis-server is not installed.
"""

import asyncio
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from harness import (Server, TestFailure, _pdeathsig, ack_http, await_until, check, connect,
                     delivered_for, eq, fetch_all, http_request, run, send_http, wait_until)

REDIS = shutil.which("redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server of the test's own: 127.0.0.1, a free port, appendonly
    with fsync on every write, so a restart finds what was accepted."""

    def __init__(self, appendonly="yes", extra=()):
        self.dir = tempfile.mkdtemp(prefix="vt-redis-")
        self.port = free_port()
        self.proc = None
        self.appendonly = appendonly
        self.extra = list(extra)

    def start(self):
        cmd = [REDIS, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
               "--appendonly", self.appendonly, "--appendfsync", "always",
               "--dir", self.dir] + self.extra
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_pdeathsig)
        wait_until(self.ping, 10, "redis-server to answer PING")
        return self

    def ping(self):
        if self.proc.poll() is not None:
            raise TestFailure("redis-server exited with %s" % self.proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/vt-e2e:" % self.port


def redis_cmd(port, *args):
    """One command in RESP; the reply as bytes (enough to search in)."""
    out = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(out)
        time.sleep(0.1)
        return s.recv(65536)


class Node(Server):
    """A vartalapd on the shared store, signing with a shared key file
    instead of the harness's per-data-dir development key."""

    def __init__(self, redis, secret, *args):
        super().__init__("--storage", "redis", "--redis", redis.url, "--redis-timeout", "500",
                         *args)
        self.secret = secret

    def start(self, timeout=10.0):
        self.runs += 1
        self.port_file = os.path.join(self.tmp, "port.%d" % self.runs)
        self.log_path = os.path.join(self.tmp, "log.%d" % self.runs)
        cmd = [self.bin, "--listen", "127.0.0.1:0", "--port-file", self.port_file,
               "--data-dir", self.data_dir, "--secret-file", self.secret] + self.args
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=_pdeathsig)

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("vartalapd exited with %s at start; log:\n%s"
                                  % (self.proc.returncode, self.log_tail()))
            try:
                with open(self.port_file) as f:
                    m = re.search(r"(\d+)\s*$", f.read())
            except FileNotFoundError:
                return None
            return int(m.group(1)) if m else None

        self.port = wait_until(ready, timeout, "the port file of vartalapd")
        return self

    def token(self, user, device=None):
        if user not in self._tokens:
            r = subprocess.run([self.bin, "token", user, "--secret-file", self.secret],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
            if r.returncode != 0:
                raise TestFailure("vartalapd token %s: %s" % (user, r.stderr.decode()))
            self._tokens[user] = r.stdout.decode().strip().split()[-1]
        return self._tokens[user]


class Cluster:
    def __init__(self, *args):
        self.redis = Redis().start()
        self.secret = secret_file()
        self.tmp = os.path.dirname(self.secret)
        self.n1 = Node(self.redis, self.secret, *args).start()
        self.n2 = Node(self.redis, self.secret, *args).start()

    def close(self):
        for n in (self.n1, self.n2):
            n.kill()
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def health(srv):
    st, body = http_request(srv, "GET", "/healthz")
    return st, body


def listed(srv, user):
    return {m["id"]: m for m in fetch_all(srv, srv.token(user)) if m.get("type") == "message"}


def secret_file():
    """A shared signing key, as hex text: random raw bytes may end in white
    space, which the key reader trims."""
    d = tempfile.mkdtemp(prefix="vt-e2e-key-")
    path = os.path.join(d, "secret")
    with open(path, "w") as f:
        f.write(os.urandom(32).hex())
    os.chmod(path, 0o600)
    return path


async def test_node_id_in_use_is_refused():
    """Two nodes with one id would take each other's notices: the second is
    refused at start, naming the id; another id starts."""
    redis = Redis().start()
    secret = secret_file()
    nodes = [Node(redis, secret, "--node-id", "5").start()]
    try:
        twin = Node(redis, secret, "--node-id", "5")
        nodes.append(twin)
        try:
            twin.start()
        except TestFailure:
            pass
        else:
            raise TestFailure("a second node with id 5 started")
        check("node id 0000000000000005 is in use" in twin.log_tail(),
              "the reason is logged: %s" % twin.log_tail())
        nodes.append(Node(redis, secret, "--node-id", "6").start())
    finally:
        for n in nodes:
            n.kill()
        redis.stop()


async def test_redis_without_appendonly_is_warned_about():
    redis = Redis(appendonly="no").start()
    node = Node(redis, secret_file())
    try:
        node.start()
        check("appendonly is off" in node.log_tail(), "warned: %s" % node.log_tail())
    finally:
        node.kill()
        redis.stop()


async def test_sent_on_one_node_delivered_on_the_other():
    c = Cluster()
    try:
        n1, n2 = c.n1, c.n2
        st, acc = send_http(n1, n1.token("alice"), "bob", "c-1", {"t": "hi"})
        got = listed(n2, "bob")
        check(acc["id"] in got, "node 2 lists what node 1 accepted: %r" % got)
        eq(got[acc["id"]].get("from"), "alice", "listed sender")

        bob = await connect(n2, "bob", token=n2.token("bob"))
        try:
            m = await bob.expect_type("message", cid="c-1")
            eq(m["id"], acc["id"], "pushed id")
            eq(m.get("body"), {"t": "hi"}, "pushed body")
            await bob.ack(m["id"])

            # No push crosses nodes yet: alice learns of the receipt by syncing.
            def receipt():
                for e in fetch_all(n1, n1.token("alice")):
                    if delivered_for(acc["id"])(e):
                        return e
                return None
            await await_until(receipt, 10, "the delivered receipt on node 1")
        finally:
            await bob.close()
        check(acc["id"] not in listed(n1, "bob"), "the acked message is gone on node 1")
    finally:
        c.close()


def expect_storage_error(srv, cid):
    st, r = send_http(srv, srv.token("alice"), "carol", cid, {"n": cid}, expect=None)
    check(st != 200, "a send during the outage was accepted: %r" % (r,))
    eq(st, 503, "status of a send during the outage (%r)" % (r,))
    eq(r.get("code"), "storage_error", "error code during the outage")


def send_until_accepted(srv, cid, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        st, r = send_http(srv, srv.token("alice"), "carol", cid, {"n": cid}, expect=None)
        if st == 200:
            eq(r.get("type"), "accepted", "answer after recovery")
            return r
        eq(st, 503, "status while Redis comes back (%r)" % (r,))
        if time.monotonic() > deadline:
            raise TestFailure("no send accepted within %.0fs of Redis restarting" % timeout)
        time.sleep(0.2)


async def test_redis_restart_refuses_then_recovers():
    c = Cluster()
    try:
        n1, n2 = c.n1, c.n2
        _, before = send_http(n1, n1.token("alice"), "carol", "before", {"n": "before"})
        c.redis.kill9()
        for n in (n1, n2):
            for i in range(3):
                expect_storage_error(n, "out-%d-%d" % (n.port, i))
            st, body = health(n)
            eq(st, 503, "healthz during the outage")
            eq(body, {"status": "degraded"}, "healthz body during the outage")
            _, metrics = http_request(n, "GET", "/metrics")
            check(b"\nvartalap_healthy 0\n" in metrics, "metrics say unhealthy too")
            check(n.alive(), "node alive during the outage")

        c.redis.start()
        after1 = send_until_accepted(n1, "after-1")
        after2 = send_until_accepted(n2, "after-2")
        # Health also waits for the cluster's own connections to answer
        # and for its liveness probe to come back: a second or so.
        for n in (n1, n2):
            wait_until(lambda: health(n)[0] == 200, 10, "healthz 200 after recovery")

        want = {before["id"]: "before", after1["id"]: "after-1", after2["id"]: "after-2"}
        eq(len(want), 3, "distinct ids from the two nodes")
        carol = await connect(n2, "carol", token=n2.token("carol"))
        try:
            for cid in ("before", "after-1", "after-2"):
                m = await carol.expect_type("message", cid=cid)
                eq(want.get(m["id"]), cid, "id of %s" % cid)
                await carol.ack(m["id"])
        finally:
            await carol.close()
        for i in range(3):
            check("out-%d-%d" % (n1.port, i) not in
                  [m.get("cid") for m in listed(n1, "carol").values()],
                  "a refused send was not stored")
    finally:
        c.close()


async def test_local_message_below_a_full_queue():
    """Node 2 took its ids after node 1, so its block is higher. Carol's 100
    messages through node 2 fill bob's queue on node 1 and the rest waits;
    alice's message through node 1 then has an id below his cursor. It waits
    in the store too, and reaches his open socket once he acks what he has."""
    c = Cluster()
    try:
        bob = await connect(c.n1, "bob", token=c.n1.token("bob"))
        await asyncio.sleep(0.3)  # subscription confirmed
        for i in range(100):
            send_http(c.n2, c.n2.token("carol"), "bob", "c-%d" % i, i)
        got = set()
        pending = [e["id"] for e in await bob.drain(1.0) if e.get("type") == "message"]
        # One ack, so a listing runs now and nothing is left to list anew.
        await bob.ack(pending[0])
        got.add(pending.pop(0))
        pending += [e["id"] for e in await bob.drain(1.0) if e.get("type") == "message"]
        _, acc = send_http(c.n1, c.n1.token("alice"), "bob", "from-alice", "low id")
        check(int(acc["id"]) < int(min(pending)), "alice's id is the lower: %s" % acc["id"])
        while pending:
            got.update(pending)
            await bob.ack(*pending)
            pending = [e["id"] for e in await bob.drain(1.0) if e.get("type") == "message"]
        check(acc["id"] in got, "alice's message reached the open socket")
        eq(len(got), 101, "messages bob got")
        await bob.close()
    finally:
        c.close()


def flood(srv, to, tag, accepted, stop):
    """Send until @stop is set or the node is gone; record what was accepted."""
    tok = srv.token("alice")
    i = 0
    while not stop.is_set():
        cid = "%s-%d" % (tag, i)
        i += 1
        try:
            st, r = send_http(srv, tok, to, cid, {"i": i}, expect=None)
        except OSError:
            return
        if st == 200:
            accepted[cid] = r["id"]


async def test_kill9_node_loses_nothing_accepted():
    c = Cluster()
    try:
        n1, n2 = c.n1, c.n2
        acc1, acc2, stop = {}, {}, threading.Event()
        threads = [threading.Thread(target=flood, args=(n1, "erin", "n1", acc1, stop)),
                   threading.Thread(target=flood, args=(n2, "erin", "n2", acc2, stop))]
        for t in threads:
            t.start()
        try:
            await await_until(lambda: len(acc1) >= 100 and len(acc2) >= 20, 20,
                              "messages flowing through both nodes")
            n1.kill9()
            await await_until(lambda: len(acc2) >= 150, 20, "node 2 carrying on")
        finally:
            stop.set()
            for t in threads:
                await asyncio.to_thread(t.join, 15)
        ids = list(acc1.values()) + list(acc2.values())
        eq(len(set(ids)), len(ids), "ids handed out by the two nodes are distinct")
        got = {m["id"]: m.get("cid") for m in fetch_all(n2, n2.token("erin"))
               if m.get("type") == "message"}
        lost = [cid for cid, i in list(acc1.items()) + list(acc2.items()) if got.get(i) != cid]
        eq(lost, [], "accepted messages missing on node 2 (of %d)" % len(ids))
    finally:
        c.close()


def ack_unanswered(srv, token, ids):
    """POST /v1/ack from a thread, for a node that dies before it answers."""
    def run_ack():
        try:
            http_request(srv, "POST", "/v1/ack", token, {"ids": list(ids)}, timeout=5)
        except (OSError, http.client.HTTPException):
            pass
    t = threading.Thread(target=run_ack)
    t.start()
    return t


async def test_kill9_after_ack_commit_keeps_receipt():
    """The `delivered` receipt is stored by the same script run that applies
    the ack. Redis is made to sleep while the node sends bob's ack, and the
    node is killed before any reply comes: Redis applies the ack once the
    node is gone, so nothing the node would do after the ack's commit ever
    runs. After a restart bob's message is gone and alice has her receipt.
    A WebSocket ack then pushes the receipt that the ack's commit stored."""
    redis = Redis(extra=["--enable-debug-command", "local"]).start()
    node = Node(redis, secret_file())
    try:
        node.start()
        _, acc = send_http(node, node.token("alice"), "bob", "k-1", {"t": 1})
        eq(list(listed(node, "bob")), [acc["id"]], "bob's inbox before the ack")

        sleeper = threading.Thread(target=redis_cmd, args=(redis.port, "DEBUG", "SLEEP", "2"))
        sleeper.start()
        await asyncio.sleep(0.2)  # Redis is asleep
        acker = ack_unanswered(node, node.token("bob"), [acc["id"]])
        await asyncio.sleep(0.5)  # the node took the ack and sent its commit
        node.kill9()
        for t in (sleeper, acker):
            await asyncio.to_thread(t.join, 10)

        node.start()
        eq(listed(node, "bob"), {}, "bob's inbox: Redis applied the ack of the dead node")
        recs = [e for e in fetch_all(node, node.token("alice")) if delivered_for(acc["id"])(e)]
        eq(len(recs), 1, "alice's receipts of the ack applied as the node died")

        alice = await connect(node, "alice", token=node.token("alice"))
        bob = await connect(node, "bob", token=node.token("bob"))
        try:
            await alice.ack(*[e["id"] for e in await alice.expect_refs(1)])
            _, acc = send_http(node, node.token("alice"), "bob", "k-2", {"t": 2})
            await bob.ack((await bob.expect_type("message", id=acc["id"]))["id"])
            pushed = await alice.expect_refs(1)
            stored = [e for e in fetch_all(node, node.token("alice"))
                      if delivered_for(acc["id"])(e)]
            eq([e["id"] for e in stored], [e["id"] for e in pushed],
               "the receipt pushed is the one stored with the ack")
        finally:
            await alice.close()
            await bob.close()
    finally:
        node.kill()
        redis.stop()


async def test_full_redis_still_takes_acks():
    """Redis over maxmemory (noeviction, as docs/CLUSTER.md asks) refuses what
    would grow the store, 507 storage_full, and takes what frees it: acks on
    either node, REST and WebSocket; a node starting; its expiry sweep."""
    c = Cluster()
    n3 = None
    try:
        n1, n2 = c.n1, c.n2
        for i in range(3):
            send_http(n1, n1.token("alice"), "bob", "f-%d" % i, {"i": i})
        send_http(n1, n1.token("alice"), "dave", "f-old", {"old": 1})
        ids = sorted(listed(n2, "bob"), key=int)
        eq(len(ids), 3, "bob's messages")
        eq(len(listed(n2, "dave")), 1, "dave's message")
        redis_cmd(c.redis.port, "CONFIG", "SET", "maxmemory", "1")

        st, r = send_http(n2, n2.token("alice"), "bob", "f-full", {}, expect=None)
        eq(st, 507, "status of a send over maxmemory (%r)" % (r,))
        eq(r.get("code"), "storage_full", "error code over maxmemory")
        eq(ack_http(n2, n2.token("bob"), [ids[0]]).get("acked"), [ids[0]], "acked over REST")
        bob = await connect(n1, "bob", token=n1.token("bob"))
        try:
            for i in (1, 2):
                m = await bob.expect_type("message", cid="f-%d" % i)
                await bob.ack(m["id"])
            await bob.quiet(1.0, lambda e: e.get("type") == "error", "an error")
        finally:
            await bob.close()
        eq(listed(n2, "bob"), {}, "bob's inbox after his acks")

        # A node starts over maxmemory; its first sweep drops what is older.
        await asyncio.sleep(1.1)
        n3 = Node(c.redis, c.secret, "--offline-ttl", "1").start()
        await await_until(lambda: not listed(n2, "dave"), 5, "dave's old message expired")

        redis_cmd(c.redis.port, "CONFIG", "SET", "maxmemory", "0")
        send_http(n3, n3.token("alice"), "bob", "f-after", {})
    finally:
        if n3 is not None:
            n3.kill()
        c.close()


async def test_ids_given_twice_never_cross_users():
    """Redis that lost its last writes (a crash under appendfsync everysec, a
    restore) can give a starting node the block of ids a running node uses.
    A message under an id another record holds is refused (503) and logged,
    instead of taking the other record, body and all, to its recipient."""
    c = Cluster()
    n3 = None
    try:
        _, mine = send_http(c.n1, c.n1.token("alice"), "bob", "mine", {"t": "alice's"})
        redis_cmd(c.redis.port, "DEL", "vt-e2e:idblock", "vt-e2e:maxid")
        n3 = Node(c.redis, c.secret).start()
        st, r = send_http(n3, n3.token("carol"), "dave", "hi", {"t": "carol's"}, expect=None)
        eq(st, 503, "status of a send under a taken id (%r)" % (r,))
        eq(r.get("code"), "storage_error", "error code of a send under a taken id")
        check("id %016x already used by another record" % int(mine["id"]) in n3.log_tail(),
              "the taken id is logged: %s" % n3.log_tail())
        eq(listed(c.n2, "dave"), {}, "dave's inbox")
        got = listed(c.n2, "bob")
        eq(list(got), [mine["id"]], "bob's inbox")
        eq(got[mine["id"]].get("body"), {"t": "alice's"}, "bob's message")
    finally:
        if n3 is not None:
            n3.kill()
        c.close()


async def test_unreadable_record_is_passed_over():
    """A record in Redis that the backend did not write (a body that is not
    JSON) is logged once and skipped; the rest of the inbox is listed and
    pushed as usual."""
    c = Cluster()
    try:
        n1, n2 = c.n1, c.n2
        listed(n1, "bob")  # his device is registered: the inbox below is his
        _, good = send_http(n1, n1.token("alice"), "bob", "good", {"t": 1})
        bad = "%016x" % (int(good["id"]) - 1)
        port = c.redis.port
        redis_cmd(port, "HSET", "vt-e2e:{r:%s}" % bad, "k", "1", "f", "mallory", "t", "bob",
                  "c", "x", "ts", "1", "b", "}{not json")
        redis_cmd(port, "SADD", "vt-e2e:{r:%s}:d" % bad, "3:bob")
        redis_cmd(port, "ZADD", "vt-e2e:{u:3:bob}:b:", "0", bad)

        eq(list(listed(n2, "bob")), [good["id"]], "bob's inbox listed on node 2")
        bob = await connect(n2, "bob", token=n2.token("bob"))
        try:
            m = await bob.expect_type("message", cid="good")
            eq(m["id"], good["id"], "the message pushed")
            await bob.quiet(0.5, lambda e: e.get("type") == "message" and e is not m,
                            "another message")
        finally:
            await bob.close()
        eq(n2.log_tail(200).count("record %s in an inbox of user=bob" % bad), 1,
           "the record is logged once: %s" % n2.log_tail())
        await await_until(lambda: health(n2)[0] == 200, 5, "node 2 healthy")
    finally:
        c.close()


if __name__ == "__main__":
    if REDIS is None:
        print("redis-server is not installed: skipped")
        sys.exit(77)
    run([test_sent_on_one_node_delivered_on_the_other, test_node_id_in_use_is_refused,
         test_redis_without_appendonly_is_warned_about, test_local_message_below_a_full_queue,
         test_redis_restart_refuses_then_recovers,
         test_kill9_node_loses_nothing_accepted,
         test_kill9_after_ack_commit_keeps_receipt,
         test_full_redis_still_takes_acks,
         test_ids_given_twice_never_cross_users,
         test_unreadable_record_is_passed_over], total_timeout=280)
