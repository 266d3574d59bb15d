#!/usr/bin/python3
"""The frontends under hostile but plausible input: a quiet healthy
WebSocket stays open while a silent one is reaped, and percent escapes that
decode to NUL (in a query) or do not decode (in a path) are 400s."""

import asyncio
import time

import websockets
import websockets.exceptions

from harness import (RawWS, check, eq, connect, http_request, run, send_http, server)

# evhttp's read and write timeout of an HTTP connection, in seconds; fixed
# in the server, and the socket of a WebSocket starts as such a connection.
HTTP_TIMEOUT = 30


async def test_quiet_socket_outlives_the_http_timeout():
    # The server's pings stay out of the way, so only the socket's own
    # timeouts could end it. One frame after the upgrade, then nothing for
    # longer than the HTTP timeout: the socket must still work.
    srv = server("--ping-interval", "60", "--ping-timeout", "5")
    bob = await connect(srv, "bob")
    await asyncio.wait_for(await bob.ws.ping(), 5)
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(bob.ws.wait_closed(), HTTP_TIMEOUT + 2)
        check(False, "a quiet socket was closed after %.1fs with %s"
              % (time.monotonic() - t0, bob.ws.close_code))
    except asyncio.TimeoutError:
        pass
    await asyncio.wait_for(await bob.ws.ping(), 5)
    st, acc = send_http(srv, srv.token("alice"), "bob", "q1", "still there")
    m = await bob.expect_type("message", id=acc["id"])
    await bob.ack(m["id"])
    log = open(srv.log_path, errors="replace").read()
    check("socket timeout" not in log, "the socket had a timeout armed:\n" + log[-2000:])
    await bob.close()


async def test_pings_keep_an_idle_client_both_ways():
    # The server pings every second; the client answers and pings too.
    # Several intervals pass with no message either way.
    srv = server("--ping-interval", "1", "--ping-timeout", "1")
    url = srv.ws_url()
    ws = await websockets.connect(url, extra_headers=[("Authorization",
                                                      "Bearer " + srv.token("bob"))],
                                  ping_interval=0.5, ping_timeout=1, close_timeout=2)
    try:
        await asyncio.wait_for(ws.wait_closed(), 5)
        check(False, "an idle client that answers pings was closed: %s %s"
              % (ws.close_code, ws.close_reason))
    except asyncio.TimeoutError:
        pass
    await asyncio.wait_for(await ws.ping(), 2)
    await ws.close()
    eq(ws.close_code, 1000, "close code of a clean close")


async def test_silent_client_is_reaped():
    # A raw client never answers pings: it is dropped once the interval and
    # the timeout have passed, not before, and without a close frame.
    srv = server("--ping-interval", "1", "--ping-timeout", "1")
    raw = await RawWS.open(srv, srv.token("eve"))
    t0 = time.monotonic()
    try:
        code = await raw.close_code(timeout=6)
    finally:
        raw.close()
    took = time.monotonic() - t0
    eq(code, None, "close frame to a half-open peer")
    check(1.5 <= took <= 4.0, "reaped after %.2fs, want about 2s" % took)


async def ws_status(srv, user, query):
    """HTTP status of an upgrade to /v1/ws@query (101 when it opens)."""
    try:
        ws = await websockets.connect(srv.ws_url(query), extra_headers=[
            ("Authorization", "Bearer " + srv.token(user))], open_timeout=5,
            ping_interval=None)
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    await ws.close()
    return 101


async def test_query_value_with_nul_is_refused():
    srv = server()
    tok = srv.token("bob")
    for path in ("/v1/messages?device=a%00b", "/v1/messages?device=a%00",
                 "/v1/messages?after=1%00", "/v1/messages?limit=5%002",
                 "/v1/messages?x%00=1", "/v1/messages?device=%zz",
                 "/v1/messages?after=%", "/v1/groups?device=a%00b"):
        st, r = http_request(srv, "GET", path, tok)
        eq((st, r.get("code")), (400, "bad_request"), "GET " + path)
    st, r = http_request(srv, "POST", "/v1/ack?device=a%00b", tok, {"ids": []})
    eq((st, r.get("code")), (400, "bad_request"), "POST /v1/ack?device=a%00b")

    # Nothing reached device "a": its inbox holds the message, unread.
    send_http(srv, srv.token("alice"), "bob", "n1", "for every device")
    st, r = http_request(srv, "GET", "/v1/messages?device=a", tok)
    eq((st, [m.get("body") for m in r["messages"]]), (200, ["for every device"]),
       "device a after the refusals")

    eq(await ws_status(srv, "bob", "?device=a%00b"), 400, "upgrade with device=a%00b")
    eq(await ws_status(srv, "bob", "?device=a"), 101, "upgrade with device=a")
    eq(await ws_status(srv, "bob", "?token=" + tok + "%00x"), 400,
       "upgrade with a query token followed by %00")


async def test_bad_escape_in_group_path_is_400():
    srv = server()
    e = {"v": 1, "type": "group_create", "id": "c-1", "to": "g:one",
         "body": {"name": "One", "members": ["bob"]}}
    st, r = http_request(srv, "POST", "/v1/send", srv.token("alice"), e)
    eq((st, r.get("type")), (200, "accepted"), "group_create")
    tok = srv.token("bob")
    for seg in ("%", "%zz", "one%", "one%4", "%g1", "one%00", "%00one"):
        st, r = http_request(srv, "GET", "/v1/groups/" + seg, tok)
        eq((st, r.get("code")), (400, "bad_request"), "GET /v1/groups/" + seg)
    for seg in ("one", "g%3Aone", "g%3aone"):
        st, r = http_request(srv, "GET", "/v1/groups/" + seg, tok)
        eq((st, r.get("id")), (200, "g:one"), "GET /v1/groups/" + seg)
    for seg in ("nope", "g%3Anope", "a%2Fb"):
        st, r = http_request(srv, "GET", "/v1/groups/" + seg, tok)
        eq((st, r.get("code")), (404, "not_found"), "GET /v1/groups/" + seg)


if __name__ == "__main__":
    run([test_quiet_socket_outlives_the_http_timeout, test_pings_keep_an_idle_client_both_ways,
         test_silent_client_is_reaped, test_query_value_with_nul_is_refused,
         test_bad_escape_in_group_path_is_400], total_timeout=200.0)
