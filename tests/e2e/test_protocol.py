#!/usr/bin/python3
"""Protocol details: lone surrogate escapes, re-sent ids, the cursor of an
empty page, page limits, envelopes POST /v1/send does not take, the
bodies of 404 and 405, and the newline that ends every JSON answer."""

import json

from harness import (check, eq, connect, send_http, fetch, http_raw, http_request, run, server)


async def test_lone_surrogate_is_bad_json():
    srv = server()
    for esc in (b"\\ud800", b"\\udc00", b"a\\ud83d"):
        st, r = http_request(srv, "POST", "/v1/send", srv.token("alice"),
                             b'{"v":1,"type":"message","id":"s-1","to":"bob","body":"' + esc + b'"}')
        eq((st, r.get("code")), (400, "bad_json"), "lone surrogate %r" % esc)
    st, r = http_request(srv, "POST", "/v1/send", srv.token("alice"),
                         b'{"v":1,"type":"message","id":"s-2","to":"bob","body":"\xed\xa0\x80"}')
    eq((st, r.get("code")), (400, "bad_utf8"), "raw encoded surrogate")
    eq(fetch(srv, srv.token("bob"))["messages"], [], "nothing reached bob")


async def test_resent_id_same_id_new_ts_first_body_wins():
    srv = server()
    st, a1 = send_http(srv, srv.token("alice"), "bob", "d-1", "first")
    st, a2 = send_http(srv, srv.token("alice"), "bob", "d-1", "second")
    eq(a2["id"], a1["id"], "re-sent id answered with the same server id")
    check(a2["ts"] >= a1["ts"], "ts of the answer to the re-send: %r vs %r" % (a2, a1))
    alice = await connect(srv, "alice")
    await alice.message("bob", "d-1", "third")
    a3 = await alice.expect_type("accepted", ref="d-1")
    eq(a3["id"], a1["id"], "re-sent over WebSocket")
    listed = fetch(srv, srv.token("bob"))["messages"]
    eq([(m["id"], m["body"]) for m in listed], [(a1["id"], "first")], "one copy, first body")
    await alice.close()


async def test_empty_page_keeps_cursor_and_limits():
    srv = server("--rate", "0")  # 120 REST sends in a moment: past the default rate
    r = fetch(srv, srv.token("bob"), after=77)
    eq((r["messages"], r["next"], r["more"]), ([], "77", False), "empty page after 77")
    r = fetch(srv, srv.token("bob"))
    eq(r["next"], "0", "empty page with no after")
    for q in ("limit=501", "limit=0", "limit=-1", "after=x", "limit=1e2"):
        st, r = http_request(srv, "GET", "/v1/messages?" + q, srv.token("bob"))
        eq((st, r.get("code")), (400, "bad_request"), "GET /v1/messages?" + q)
    ids = [send_http(srv, srv.token("alice"), "bob", "p-%d" % i, i)[1]["id"] for i in range(120)]
    r = fetch(srv, srv.token("bob"))
    eq((len(r["messages"]), r["more"]), (100, True), "default page size")
    r = fetch(srv, srv.token("bob"), limit=500)
    eq(([m["id"] for m in r["messages"]], r["more"]), (ids, False), "a page of up to 500")


async def test_ack_and_typing_on_send_are_refused():
    srv = server()
    st, acc = send_http(srv, srv.token("alice"), "bob", "k-1", 1)
    st, r = http_request(srv, "POST", "/v1/send", srv.token("bob"),
                         {"v": 1, "type": "ack", "ids": [acc["id"]]})
    eq((st, r.get("code")), (400, "unknown_type"), "ack envelope on POST /v1/send")
    eq([m["id"] for m in fetch(srv, srv.token("bob"))["messages"]], [acc["id"]],
       "the refused ack was not carried out")
    st, r = http_request(srv, "POST", "/v1/send", srv.token("alice"),
                         {"v": 1, "type": "typing", "to": "bob"})
    eq((st, r.get("code")), (400, "unknown_type"), "typing on POST /v1/send")


async def test_not_found_and_method_not_allowed():
    srv = server()
    st, r = http_request(srv, "GET", "/v1/nothing", srv.token("alice"))
    eq((st, r.get("type"), r.get("code")), (404, "error", "not_found"), "unknown path")
    check(isinstance(r.get("reason"), str), "a reason: %r" % r)
    for method, path in (("GET", "/v1/send"), ("POST", "/v1/messages"), ("DELETE", "/v1/ack"),
                         ("POST", "/v1/groups")):
        st, r = http_request(srv, method, path, srv.token("alice"))
        eq((st, r.get("type"), r.get("code")), (405, "error", "method_not_allowed"),
           "%s %s" % (method, path))


async def test_json_answers_end_with_a_newline():
    """An answer shown by curl ends its line: one newline after the JSON, success or error."""
    srv = server()
    body = {"v": 1, "type": "message", "id": "nl-1", "to": "bob", "body": "hi"}
    for method, path, tok, data, want in (
            ("POST", "/v1/send", srv.token("alice"), body, 200),
            ("GET", "/v1/messages", srv.token("bob"), None, 200),
            ("GET", "/v1/messages", None, None, 401),
            ("GET", "/v1/nothing", srv.token("bob"), None, 404)):
        st, raw = http_raw(srv, method, path, tok, data)
        eq(st, want, "%s %s" % (method, path))
        check(raw.endswith(b"}\n") and raw.count(b"\n") == 1, "%s %s: %r" % (method, path, raw))
        json.loads(raw)


if __name__ == "__main__":
    run([test_lone_surrogate_is_bad_json, test_resent_id_same_id_new_ts_first_body_wins,
         test_empty_page_keeps_cursor_and_limits, test_ack_and_typing_on_send_are_refused,
         test_not_found_and_method_not_allowed, test_json_answers_end_with_a_newline])
