#!/usr/bin/python3
"""Logouts (POST /v1/logout): field case B26's revoked half. A revoked token
opens nothing and its open sockets close with 4003; what was owed stays
owed; the logout outlives a restart, a crash included."""

import http.client
import time

from harness import (eq, check, connect, send_http, fetch, ack_http, http_request,
                     handshake_status, metric, run, server, chat_works)

HOUR = 3600


def tok(srv, user, dev=None, iat="past"):
    return srv.forge_token(user, time.time() + HOUR, dev=dev, iat=iat)


def logout(srv, token, body=b"", expect=200):
    st, r = http_request(srv, "POST", "/v1/logout", token=token, body=body)
    eq(st, expect, "POST /v1/logout %r: %r" % (body, r))
    return r


def upgrade_refusal(srv, token):
    """A WebSocket upgrade with @token, over a plain socket: status, body, headers."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request("GET", "/v1/ws", headers={
            "Authorization": "Bearer " + token, "Upgrade": "websocket",
            "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def refused(srv, token, what):
    st, r = http_request(srv, "GET", "/v1/messages", token=token)
    eq((st, r.get("code")), (401, "token_revoked"), what)


async def test_b26_logout_of_a_device():
    srv = server()
    phone_t, laptop_t = tok(srv, "alice", "phone"), tok(srv, "alice", "laptop")
    phone = await connect(srv, "alice", token=phone_t, name="phone")
    laptop = await connect(srv, "alice", token=laptop_t, name="laptop")
    r = logout(srv, phone_t)
    eq(r.get("revoked"), "device", "scope of the logout")
    before = r["before"]
    check(abs(before - time.time()) < 5, "before is the server's second: %r" % before)
    eq(await phone.wait_closed(3), 4003, "close code of a logged-out socket")

    # bob's message reaches the laptop; the phone's copy waits for a new login
    st, acc = send_http(srv, srv.token("bob"), "alice", "m1", "after the logout")
    m = await laptop.expect_type("message", id=acc["id"])
    await laptop.ack(m["id"])
    refused(srv, phone_t, "the phone's old token over REST")
    eq(await handshake_status(srv, phone_t), 401, "the phone's old token at the handshake")
    st, _body, hdrs = upgrade_refusal(srv, phone_t)
    eq((st, hdrs.get("WWW-Authenticate")), (401, "Bearer"), "the handshake's refusal")
    new_t = tok(srv, "alice", "phone", iat=before + 1)
    eq([x["id"] for x in fetch(srv, new_t)["messages"]], [acc["id"]],
       "m1 owed to the phone under a token issued after the logout")
    await laptop.close()
    eq((metric(srv, "vartalap_logouts_total"), metric(srv, "vartalap_revoked_scopes")), (1, 1),
       "logouts counted")
    await chat_works(srv)


async def test_logout_everywhere_outlives_restarts():
    srv = server()
    phone_t, laptop_t = tok(srv, "alice", "phone"), tok(srv, "alice", "laptop")
    plain_t = tok(srv, "alice")
    phone = await connect(srv, "alice", token=phone_t, name="phone")
    laptop = await connect(srv, "alice", token=laptop_t, name="laptop")
    bob = await connect(srv, "bob", token=tok(srv, "bob"), name="bob")
    r = logout(srv, laptop_t, {"all": True})
    eq(r.get("revoked"), "user", "scope of the logout")
    eq(await phone.wait_closed(3), 4003, "phone closed")
    eq(await laptop.wait_closed(3), 4003, "laptop closed")
    await bob.message("alice", "b1", "while logged out")
    await bob.expect_type("accepted")
    await bob.close()

    for how in ("restart", "kill -9"):
        if how == "restart":
            srv.restart()
        else:
            srv.kill9()
            srv.start()
        for name, t in (("phone", phone_t), ("laptop", laptop_t), ("default", plain_t)):
            refused(srv, t, "%s token after a %s" % (name, how))
    new_t = tok(srv, "alice", "phone", iat=r["before"] + 1)
    listed = fetch(srv, new_t)["messages"]
    eq([x["body"] for x in listed], ["while logged out"], "owed messages kept")


async def test_tokens_without_iat():
    srv = server()
    bare = tok(srv, "alice", iat=None)
    ahead = tok(srv, "alice", iat=time.time() + 30)  # a login service's clock ahead
    eq(fetch(srv, bare)["messages"], [], "a token without iat before any logout")
    r = logout(srv, ahead)
    refused(srv, bare, "a token without iat after a logout of its device")
    refused(srv, ahead, "a token dated ahead, after its own logout")
    check(r["before"] >= time.time() + 25, "the logout dated at the token: %r" % r)
    fetch(srv, tok(srv, "alice", iat=r["before"] + 1))


async def test_token_dated_ahead():
    """A login service whose clock runs ahead dates its tokens ahead: they are
    taken, a token's own logout ends it, and one asked by an older token
    leaves it (the documented rule: iat later than "before")."""
    srv = server()
    ahead = tok(srv, "alice", "phone", iat=time.time() + 3600)
    older = tok(srv, "alice", "laptop")
    eq(fetch(srv, ahead)["messages"], [], "a token dated an hour ahead")
    r = logout(srv, older, {"all": True})
    check(r["before"] < time.time() + 5, "dated at the server's second: %r" % r)
    eq(fetch(srv, ahead)["messages"], [], "dated after the logout, so not revoked by it")
    r = logout(srv, ahead)
    check(r["before"] >= time.time() + 3500, "dated at the asking token: %r" % r)
    refused(srv, ahead, "ended by its own logout")


async def test_token_without_dev_claim():
    """A token that names no device serves any device id: a logout of one
    device revokes it there alone, {"all":true} everywhere."""
    srv = server()
    t = tok(srv, "alice")
    st, r = http_request(srv, "POST", "/v1/logout?device=tab", token=t, body=b"")
    eq((st, r.get("revoked")), (200, "device"), "logout of device tab")
    st, r = http_request(srv, "GET", "/v1/messages?device=tab", token=t)
    eq((st, r.get("code")), (401, "token_revoked"), "the token on device tab")
    eq(fetch(srv, t)["messages"], [], "the same token on the default device")
    other = await connect(srv, "alice", token=t, device="other", name="other")
    st, r = http_request(srv, "POST", "/v1/logout?device=other", token=t, body={"all": True})
    eq((st, r.get("revoked")), (200, "user"), "logout of every device")
    eq(await other.wait_closed(3), 4003, "the socket of device other")
    refused(srv, t, "the token on the default device after a logout of every device")


async def test_bad_logouts():
    srv = server()
    t = tok(srv, "alice")
    for body, code in ((b"[]", "bad_envelope"), (b"{\"all\":1}", "bad_envelope"),
                       (b"{\"everyone\":true}", "bad_envelope"), (b"{", "bad_json"),
                       (b"{\"all\":true,\"all\":false}", "bad_envelope"),
                       (b"\xff", "bad_utf8")):
        r = logout(srv, t, body, expect=400)
        eq(r.get("code"), code, "code for %r" % body)
    st, r = http_request(srv, "GET", "/v1/logout", token=t)
    eq(st, 405, "GET /v1/logout")
    st, r = http_request(srv, "POST", "/v1/logout")
    eq(st, 401, "a logout without a token")
    eq(fetch(srv, t)["messages"], [], "nothing was revoked by the refused ones")
    logout(srv, t, b"  ")
    logout(srv, t, expect=401)


async def test_logout_on_a_full_store():
    """A full store refuses a logout of one more device (507), which users
    could repeat until the room acks need was gone; a logout of every device
    is still taken, and acks still empty the store."""
    srv = server("--lmdb-map-size", "2", "--rate", "0", "--inbox-cap", "100000")
    bob_t = tok(srv, "bob", "b1")
    fetch(srv, bob_t)
    alice_t = tok(srv, "alice")
    for n in range(2000):
        st, r = send_http(srv, alice_t, "bob", "f%d" % n, "x" * 4000, expect=None)
        if st != 200:
            break
    eq((st, r.get("code")), (507, "storage_full"), "a send once the store is full")
    for i in range(64):
        t = tok(srv, "m%d" % i, "phone")
        st, r = http_request(srv, "POST", "/v1/logout", token=t, body=b"")
        if st != 200:
            break
    eq((st, r.get("code")), (507, "storage_full"), "a logout of one more device")
    eq(logout(srv, t, {"all": True}).get("revoked"), "user", "a logout of every device")
    refused(srv, t, "the token of the logout of every device")
    for page in range(100):
        ids = [m["id"] for m in fetch(srv, bob_t, limit=100)["messages"]]
        if not ids:
            break
        ack_http(srv, bob_t, ids)
    send_http(srv, alice_t, "bob", "after", "room again")


async def test_logout_with_memory_storage():
    srv = server("--storage", "memory")
    t = tok(srv, "alice", "tab")
    tab = await connect(srv, "alice", token=t, name="tab")
    logout(srv, t, {"all": False})
    eq(await tab.wait_closed(3), 4003, "tab closed")
    refused(srv, t, "the tab's token")


if __name__ == "__main__":
    run([test_b26_logout_of_a_device, test_logout_everywhere_outlives_restarts,
         test_tokens_without_iat, test_token_dated_ahead, test_token_without_dev_claim,
         test_bad_logouts, test_logout_on_a_full_store, test_logout_with_memory_storage])
