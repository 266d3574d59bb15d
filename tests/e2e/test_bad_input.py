#!/usr/bin/python3
"""Bad input over WebSocket and HTTP: error envelopes, close codes, tokens,
foreign acks, JSON string edge cases (B13, B21, B22). After each, other
users can still chat."""

import json
import time


from harness import (check, eq, is_server_id, connect, send_http, fetch, ack_http, curl,
                     http_request, http_raw, run, server, handshake_status, chat_works, RawWS)

LONG = "x" * 65

# (description, envelope text, accepted error codes, ref or None)
ENVELOPE_CASES = [
    ("malformed JSON", '{"v":1,"type":"message",', {"bad_json"}, None),
    ("trailing garbage", '{"v":1,"type":"ack","ids":["1"]} x', {"bad_json"}, None),
    ("unknown type", '{"v":1,"type":"frobnicate","id":"t-1"}', {"unknown_type"}, None),
    ("missing type", '{"v":1,"id":"t-2","to":"bob","body":1}', {"bad_envelope", "unknown_type"},
     None),
    ("version 2", '{"v":2,"type":"message","id":"t-3","to":"bob","body":1}', {"bad_version"},
     None),
    ("missing to", '{"v":1,"type":"message","id":"t-4","body":1}', {"bad_envelope"}, "t-4"),
    ("missing body", '{"v":1,"type":"message","id":"t-5","to":"bob"}', {"bad_envelope"}, "t-5"),
    ("missing id", '{"v":1,"type":"message","to":"bob","body":1}', {"bad_envelope"}, None),
    ("over-long id", '{"v":1,"type":"message","id":"%s","to":"bob","body":1}' % LONG,
     {"bad_envelope"}, None),
    ("bad id chars", '{"v":1,"type":"message","id":"a b","to":"bob","body":1}',
     {"bad_envelope"}, None),
    ("empty id", '{"v":1,"type":"message","id":"","to":"bob","body":1}', {"bad_envelope"}, None),
    ("over-long to", '{"v":1,"type":"message","id":"t-6","to":"%s","body":1}' % ("y" * 100),
     {"bad_envelope"}, "t-6"),
    ("numeric id 2^53+1", '{"v":1,"type":"message","id":9007199254740993,"to":"bob","body":1}',
     {"bad_envelope"}, None),
    ("not an object", '[1,2,3]', {"bad_envelope", "bad_json"}, None),
    ("ack without ids", '{"v":1,"type":"ack","ids":[]}', {"bad_envelope"}, None),
    ("ack of a non-id", '{"v":1,"type":"ack","ids":["abc"]}', {"bad_envelope"}, None),
]


async def test_ws_envelope_errors_keep_socket():
    srv = server()
    alice = await connect(srv, "alice")
    bob = await connect(srv, "bob")
    for what, text, codes, ref in ENVELOPE_CASES:
        await alice.send(text)
        e = await alice.expect_type("error", timeout=3)
        check(e.get("code") in codes, "%s: error code %r, want one of %s" % (what, e.get("code"),
                                                                             sorted(codes)))
        check(isinstance(e.get("reason"), str) and e["reason"], "%s: error has a reason" % what)
        if ref is not None:
            eq(e.get("ref"), ref, what + ": error ref")
    check(alice.ws.open, "socket still open after envelope errors")
    await bob.quiet(0.2, lambda e: e.get("type") == "message", "a routed bad envelope")
    # The same socket still works.
    await alice.message("bob", "ok-1", "fine")
    acc = await alice.expect_type("accepted", ref="ok-1")
    m = await bob.expect_type("message", id=acc["id"])
    await bob.ack(m["id"])
    await alice.close()
    await bob.close()
    await chat_works(srv)


async def test_http_envelope_errors():
    srv = server()
    tok = srv.token("alice")
    for what, text, codes, ref in ENVELOPE_CASES:
        st, r = http_request(srv, "POST", "/v1/send", tok, text.encode())
        eq(st, 400, what + ": HTTP status")
        check(isinstance(r, dict) and r.get("type") == "error" and r.get("code") in codes,
              "%s: body %r, want an error with code in %s" % (what, r, sorted(codes)))
        if ref is not None:
            eq(r.get("ref"), ref, what + ": error ref")
    # The same through curl, as a client would.
    st, r = curl(srv, "POST", "/v1/send", tok, b'{"v":1,"type":"message","id":"c","to":"bob"}')
    eq(st, 400, "curl: missing body")
    eq(r.get("code"), "bad_envelope", "curl: code")
    st, r = curl(srv, "POST", "/v1/ack", tok, b'{"ids":"1"}')
    eq(st, 400, "POST /v1/ack with ids not an array")
    eq(fetch(srv, srv.token("bob"))["messages"], [], "nothing routed to bob")
    await chat_works(srv)


async def test_oversize():
    srv = server("--max-message", "2048")
    tok = srv.token("alice")
    st, r = http_request(srv, "POST", "/v1/send", tok,
                         {"v": 1, "type": "message", "id": "big", "to": "bob", "body": "z" * 10000})
    eq(st, 413, "oversize POST status")
    eq(r.get("code") if isinstance(r, dict) else r, "too_large", "oversize POST code")
    st, r = send_http(srv, tok, "bob", "small", "z" * 1500)  # under the limit
    alice = await connect(srv, "alice")
    env = json.dumps({"v": 1, "type": "message", "id": "bigws", "to": "bob", "body": "z" * 10000})
    await alice.send(env)
    eq(await alice.wait_closed(5), 1009, "close code for a frame over the limit")
    listed = fetch(srv, srv.token("bob"))["messages"]
    eq([m["cid"] for m in listed], ["small"], "only the small message reached bob")
    await chat_works(srv)


async def test_binary_frame_closes_1003():
    srv = server()
    alice = await connect(srv, "alice")
    await alice.ws.send(json.dumps({"v": 1, "type": "message", "id": "bin", "to": "bob",
                                    "body": 1}).encode())
    eq(await alice.wait_closed(5), 1003, "close code for a binary frame")
    eq(fetch(srv, srv.token("bob"))["messages"], [], "binary frame not routed")
    await chat_works(srv)


async def test_invalid_utf8_text_frame_closes_1007():
    srv = server()
    tok = srv.token("alice")
    bad = [b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xff"]
    for i, seq in enumerate(bad):
        raw = await RawWS.open(srv, tok)
        await raw.send_frame(0x1, b'{"v":1,"type":"message","id":"u%d","to":"bob","body":"'
                             % i + seq + b'"}')
        eq(await raw.close_code(), 1007, "close code for text frame with %s" % seq.hex())
        raw.close()
    # A message that ends in the middle of a sequence.
    raw = await RawWS.open(srv, tok)
    await raw.send_frame(0x1, b'{"v":1,"type":"message","id":"u9","to":"bob","body":"ab\xe2\x82')
    eq(await raw.close_code(), 1007, "close code for text ending mid-sequence")
    raw.close()
    # "\u20ac" split across two fragments between its bytes is valid.
    raw = await RawWS.open(srv, tok)
    await raw.send_frame(0x1, b'{"v":1,"type":"message","id":"euro","to":"bob","body":"\xe2',
                         fin=False)
    await raw.send_frame(0x0, b'\x82\xac"}')
    op, data = await raw.read_frame()
    eq(op, 0x1, "answer to a fragmented message is a text frame")
    acc = json.loads(data)
    eq(acc.get("type"), "accepted", "fragmented euro accepted")
    raw.close()
    listed = fetch(srv, srv.token("bob"))["messages"]
    eq([(m["cid"], m["body"]) for m in listed], [("euro", "\u20ac")],
       "only the fragmented euro reached bob")
    await chat_works(srv)


async def test_tokens():
    srv = server()
    good = srv.token("alice")
    now = int(time.time())
    bad = {
        "garbage": "not-a-token",
        "bad signature": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "alg none": srv.forge_token("alice", now + 3600, alg="none"),
        "expired": srv.forge_token("alice", now - 60),
        "no exp": srv.forge_token("alice", None),
        "wrong key": srv.forge_token("alice", now + 3600, key=b"some other key"),
    }
    # Sanity: a token forged with the dev key is good.
    fine = srv.forge_token("alice", now + 3600)
    st, _ = http_request(srv, "GET", "/v1/messages", fine)
    eq(st, 200, "forged good token accepted (test setup)")

    for path, method, body in (("/v1/messages", "GET", None),
                               ("/v1/send", "POST", {"v": 1, "type": "message", "id": "t",
                                                     "to": "bob", "body": 1}),
                               ("/v1/ack", "POST", {"ids": ["1"]})):
        st, r = curl(srv, method, path, None, body)
        eq(st, 401, "%s %s without a token" % (method, path))
        for what, tok in bad.items():
            st, r = curl(srv, method, path, tok, body)
            eq(st, 401, "%s %s with %s token" % (method, path, what))
            if isinstance(r, dict):
                check(r.get("code") in ("unauthorized", "token_expired"),
                      "%s: error code %r" % (what, r.get("code")))
    st, r = curl(srv, "GET", "/healthz")
    eq(st, 200, "healthz needs no token")
    eq(r, {"status": "ok"}, "healthz body")

    eq(await handshake_status(srv, None), 401, "WS handshake without a token")
    for what, tok in bad.items():
        for how in ("header", "query"):
            eq(await handshake_status(srv, tok, how), 401, "WS handshake (%s) with %s token"
               % (how, what))
    eq(fetch(srv, srv.token("bob"))["messages"], [], "nothing sent with bad tokens")
    await chat_works(srv)


async def test_token_expiry_while_connected():
    srv = server()
    tok = srv.forge_token("alice", int(time.time()) + 2)
    alice = await connect(srv, "alice", token=tok)
    t0 = time.monotonic()
    eq(await alice.wait_closed(6), 4001, "close code when the token expires")
    check(time.monotonic() - t0 < 5, "closed late")
    st, acc = send_http(srv, srv.token("bob"), "alice", "after-exp", 1)
    listed = fetch(srv, srv.token("alice"))["messages"]
    eq([m["id"] for m in listed], [acc["id"]], "message for the expired session stays stored")
    check(await handshake_status(srv, tok) == 401, "expired token refused at handshake")
    await chat_works(srv)


async def test_ack_of_foreign_id():
    srv = server()
    st, acc = send_http(srv, srv.token("bob"), "carol", "for-carol", "secret")
    r = ack_http(srv, srv.token("dave"), [acc["id"]])
    eq(r.get("acked"), [], "dave acking carol's message: acked")
    eq(r.get("unknown"), [acc["id"]], "dave acking carol's message: unknown")
    r = ack_http(srv, srv.token("bob"), [acc["id"]])
    eq(r.get("unknown"), [acc["id"]], "the sender acking the recipient's copy: unknown")
    dave = await connect(srv, "dave")
    await dave.ack(acc["id"])
    # Over WS the only answer allowed is an informational unknown_id.
    e = await dave.expect_type("error", timeout=2)
    eq((e.get("code"), e.get("ref")), ("unknown_id", acc["id"]), "answer to a foreign WS ack")
    await dave.quiet(0.3, lambda e: e.get("type") != "error" or e.get("code") != "unknown_id",
                     "another event after a foreign WS ack")
    check(dave.ws.open, "socket open after a foreign WS ack")
    await dave.close()
    eq([m["id"] for m in fetch(srv, srv.token("dave"))["messages"]], [], "dave sees nothing")
    carol = await connect(srv, "carol")
    m = await carol.expect_type("message", id=acc["id"])
    eq(m.get("body"), "secret", "carol still gets her message")
    await carol.ack(m["id"])
    await carol.close()
    await chat_works(srv, "erin", "frank")


def post_raw(srv, tok, raw):
    return http_raw(srv, "POST", "/v1/send", tok, raw)


def env_bytes(cid, body_json_bytes):
    return b'{"v":1,"type":"message","id":"' + cid.encode() + b'","to":"bob","body":' + \
        body_json_bytes + b'}'


async def test_b21_b22_json_strings():
    srv = server()
    tok = srv.token("alice")
    bob = await connect(srv, "bob")

    async def ok(cid, body, want):
        st, data = post_raw(srv, tok, env_bytes(cid, body))
        eq(st, 200, "%s: status (%r)" % (cid, data[:200]))
        acc = json.loads(data)
        check(is_server_id(acc.get("id")), "%s: accepted id is a string id" % cid)
        m = await bob.expect_type("message", cid=cid)
        check(is_server_id(m.get("id")), "%s: message id is a string id" % cid)
        eq(m.get("body"), want, cid + ": delivered body")
        await bob.ack(m["id"])
        return m

    m = await ok("nul", b'"a\\u0000b"', "a\x00b")
    eq(len(m["body"]), 3, "a\\u0000b keeps 3 code points")
    check("\\u0000" in m["_raw"], "NUL re-escaped as \\u0000 in the frame: %r" % m["_raw"])
    await ok("pair", b'"\\ud83d\\ude00"', "\U0001F600")
    await ok("raw4", b'"\xf0\x9f\x98\x80"', "\U0001F600")
    await ok("big", b'9007199254740993', 9007199254740993)

    for cid, body, what in (("lone", b'"\\ud800"', "lone surrogate escape"),
                            ("lowlone", b'"\\udc00x"', "lone low surrogate escape"),
                            ("rawnul", b'"a\x00b"', "raw NUL in a string"),
                            ("rawff", b'"\xff\xfe"', "raw invalid UTF-8"),
                            ("rawsur", b'"\xed\xa0\x80"', "raw encoded surrogate"),
                            ("overlong", b'"\xc0\xaf"', "raw overlong encoding")):
        st, data = post_raw(srv, tok, env_bytes(cid, body))
        eq(st, 400, "%s: status (%r)" % (what, data[:200]))
        r = json.loads(data)
        check(r.get("code") in ("bad_json", "bad_utf8", "bad_envelope"),
              "%s: error code %r" % (what, r.get("code")))

    t0 = time.monotonic()
    st, data = post_raw(srv, tok, b"[" * 100000)
    dt = time.monotonic() - t0
    check(st in (400, 413), "100,000 '[': status %s" % st)
    check(dt < 2.0, "100,000 '[' answered in %.2fs" % dt)
    st, data = post_raw(srv, tok, env_bytes("deep", b"[" * 5000 + b"]" * 5000))
    check(st in (400, 413) or st == 200, "deep but balanced nesting: status %s" % st)
    if st == 200:
        m = await bob.expect_type("message", cid="deep")
        await bob.ack(m["id"])
    check(srv.alive(), "server alive after deep nesting")
    await bob.quiet(0.2, lambda e: e.get("cid") in ("lone", "lowlone", "rawnul", "rawff",
                                                    "rawsur", "overlong"),
                    "a rejected message routed")
    # Listing re-escapes too, and is valid UTF-8.
    st, data = http_raw(srv, "GET", "/v1/messages", srv.token("bob"))
    eq(st, 200, "listing status")
    data.decode("utf-8")
    await bob.close()
    await chat_works(srv)


if __name__ == "__main__":
    run([test_ws_envelope_errors_keep_socket, test_http_envelope_errors, test_oversize,
         test_binary_frame_closes_1003, test_invalid_utf8_text_frame_closes_1007, test_tokens,
         test_token_expiry_while_connected, test_ack_of_foreign_id, test_b21_b22_json_strings])
