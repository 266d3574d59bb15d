#!/usr/bin/python3
"""Field case B20: a reconnect storm after a restart.

2,000 users have 10 stored messages each. The server is killed (-9) and
started again; within about a second all 2,000 come back, half over
WebSocket (pushes, acked one by one) and half over REST (GET /v1/messages,
then POST /v1/ack). The server must not crash or run out of descriptors
(its open fds are sampled from /proc all along), and every user ends up
with exactly his 10 messages, each once by server id. A client that is
refused (connection error, 503, close 1013) tries again with backoff.
"""

import asyncio
import json
import os
import random
import resource
import time

import websockets
import websockets.exceptions

from harness import TestFailure, ahttp, check, eq, chat_works, fetch, run, server

USERS = 2000
PER_USER = 10
SENDERS = 4




class Stats:
    def __init__(self):
        self.got = {}        # user -> {server id: cid}
        self.raw = 0         # every message frame or listed entry seen
        self.retries = 0     # refused or failed attempts, tried again
        self.refusals = {}   # kind -> count
        self.max_fds = 0
        self.samples = 0

    def refused(self, kind):
        self.retries += 1
        self.refusals[kind] = self.refusals.get(kind, 0) + 1


async def fill(srv, tokens, users, sent):
    """SENDERS WebSocket senders; each user gets PER_USER messages."""
    async def one(k):
        url = srv.ws_url("?token=" + tokens["sender%d" % k])
        async with websockets.connect(url, ping_interval=None, max_queue=None) as ws:
            mine = [(u, i) for u in users[k::SENDERS] for i in range(PER_USER)]
            window = asyncio.Semaphore(256)
            want = len(mine)

            async def reader():
                n = 0
                async for raw in ws:
                    ev = json.loads(raw)
                    if ev.get("type") == "accepted":
                        u, _ = ev["ref"].split(".")
                        sent.setdefault(u, {})[ev["id"]] = ev["ref"]
                        n += 1
                        window.release()
                        if n == want:
                            return
                    elif ev.get("type") == "error":
                        raise TestFailure("send refused while filling: %r" % ev)
            rt = asyncio.ensure_future(reader())
            for u, i in mine:
                await window.acquire()
                if rt.done():
                    break
                await ws.send(json.dumps({"v": 1, "type": "message", "id": "%s.%d" % (u, i),
                                          "to": u, "body": {"i": i}}))
            await asyncio.wait_for(rt, 30)
    await asyncio.gather(*(one(k) for k in range(SENDERS)))


async def ws_client(srv, user, tok, st, deadline):
    back = 0.05
    while time.monotonic() < deadline:
        try:
            async with websockets.connect(srv.ws_url(), ping_interval=None, open_timeout=10,
                                          extra_headers=[("Authorization", "Bearer " + tok)],
                                          close_timeout=1) as ws:
                mine = st.got.setdefault(user, {})
                while len(mine) < PER_USER:
                    ev = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    if ev.get("type") != "message":
                        continue
                    st.raw += 1
                    mine.setdefault(ev["id"], ev["cid"])
                    await ws.send(json.dumps({"v": 1, "type": "ack", "ids": [ev["id"]]}))
                return
        except websockets.exceptions.InvalidStatusCode as e:
            st.refused("ws %d" % e.status_code)
        except websockets.exceptions.ConnectionClosed as e:
            st.refused("ws close %s" % e.code)
        except (OSError, asyncio.TimeoutError) as e:
            st.refused("ws " + type(e).__name__)
        await asyncio.sleep(back * random.uniform(0.5, 1.5))
        back = min(back * 2, 2.0)


async def rest_client(srv, user, tok, st, deadline):
    back = 0.05
    mine = st.got.setdefault(user, {})
    while time.monotonic() < deadline:
        try:
            code, r = await ahttp(srv.port, "GET", "/v1/messages?limit=50", tok)
            if code == 200:
                for m in r["messages"]:
                    st.raw += 1
                    mine.setdefault(m["id"], m["cid"])
                ids = [m["id"] for m in r["messages"]]
                if ids:
                    code, r = await ahttp(srv.port, "POST", "/v1/ack", tok, {"ids": ids})
                if code == 200 and len(mine) >= PER_USER:
                    return
            if code != 200:
                st.refused("http %d" % code)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            st.refused("http " + type(e).__name__)
        await asyncio.sleep(back * random.uniform(0.5, 1.5))
        back = min(back * 2, 2.0)


async def sample_fds(srv, st, stop):
    while not stop.is_set():
        try:
            n = len(os.listdir("/proc/%d/fd" % srv.pid))
        except OSError:
            n = -1
        st.max_fds = max(st.max_fds, n)
        st.samples += 1
        check(srv.alive(), "vartalapd died during the storm")
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except asyncio.TimeoutError:
            pass


async def storm(server_fds):
    """The server runs with a soft fd limit of @server_fds; the test process
    raises its own to the hard limit for its 2,000 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, server_fds), hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    srv = server("--ack-timeout", "10000", "--rate", "0")  # no limit for the fill
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    users = ["u%04d" % i for i in range(USERS)]
    exp = int(time.time()) + 3600
    tokens = {u: srv.forge_token(u, exp) for u in users}
    for k in range(SENDERS):
        tokens["sender%d" % k] = srv.forge_token("sender%d" % k, exp)
    sent = {}
    t0 = time.monotonic()
    await fill(srv, tokens, users, sent)
    eq(sum(len(v) for v in sent.values()), USERS * PER_USER, "messages accepted before restart")
    t_fill = time.monotonic() - t0

    srv.kill9()
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, server_fds), hard))
    srv.start()
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    base_fds = srv.fd_count()
    st = Stats()
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(sample_fds(srv, st, stop))
    t1 = time.monotonic()
    deadline = t1 + 45

    async def later(i, coro_fn):
        await asyncio.sleep(random.uniform(0, 1.0))  # all arrive within about 1 s
        await coro_fn(srv, users[i], tokens[users[i]], st, deadline)

    await asyncio.gather(*(later(i, ws_client if i % 2 == 0 else rest_client)
                           for i in range(USERS)))
    t_storm = time.monotonic() - t1
    stop.set()
    await sampler

    missing = [u for u in users if len(st.got.get(u, {})) < PER_USER]
    wrong = [u for u in users if st.got.get(u, {}) != sent[u]]
    print("  %d users x %d messages filled in %.1fs; storm after kill -9: %.1fs; "
          "raw deliveries %d for %d distinct (%d repeated); retried attempts %d %s; "
          "server fds: base %d, max %d (limit %d, %d samples)"
          % (USERS, PER_USER, t_fill, t_storm, st.raw,
             sum(len(v) for v in st.got.values()), st.raw - sum(len(v) for v in st.got.values()),
             st.retries, st.refusals or "", base_fds, st.max_fds, limit, st.samples))
    eq(missing[:5], [], "users short of their %d messages (first 5 of %d)"
       % (PER_USER, len(missing)))
    eq(wrong[:5], [], "users whose messages differ from what was accepted for them")
    check(srv.alive(), "vartalapd is gone after the storm")
    check(st.max_fds <= limit, "server fds %d over the limit %d" % (st.max_fds, limit))
    # Each user acked what he got: nothing is owed to a sample of them.
    for u in users[::97]:
        eq(fetch(srv, tokens[u])["messages"], [], "owed to %s after acking" % u)
    await chat_works(srv)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_b20_reconnect_storm():
    await storm(8192)


async def test_b20_storm_beyond_fd_limit():
    """The same storm against a server limited to 1,024 descriptors, fewer
    than the clients: it must pause accepting, not fail or spin, and serve
    everyone as descriptors free up."""
    await storm(1024)


if __name__ == "__main__":
    run([test_b20_reconnect_storm, test_b20_storm_beyond_fd_limit])
