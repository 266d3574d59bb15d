#!/usr/bin/python3
"""What operators touch: the configuration file, --check-config, GET /metrics."""

import http.client
import os
import re
import socket
import subprocess
import tempfile

from harness import (check, eq, connect, http_raw, run, send_http, server, vartalapd_path,
                     wait_until)


def write(dirname, name, text):
    path = os.path.join(dirname, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def check_config(*args):
    p = subprocess.run([vartalapd_path(), *args, "--check-config"], capture_output=True,
                       text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


async def test_check_config_accepts_a_good_file():
    d = tempfile.mkdtemp(prefix="vt-cfg-")
    secret = write(d, "secret", "k" * 40)
    conf = write(d, "v.conf", "# a comment\n\nlisten = 127.0.0.1:9999\n"
                 "secret_file = \"%s\"   # quoted, then a comment\n"
                 "ack-timeout = 500 # trailing comment\nwebhook-body = no\n"
                 "notify = log\n" % secret)
    rc, out, err = check_config("--config", conf)
    eq((rc, out), (0, "ok\n"), "check of a good file (stderr %r)" % err)


async def test_check_config_names_file_and_line():
    d = tempfile.mkdtemp(prefix="vt-cfg-")
    secret = write(d, "secret", "k" * 40)
    cases = [
        ("secret-file = %s\n\nack-timeout = soon\n" % secret, ":3:", "ack-timeout"),
        ("secret-file = %s\nno-such-key = 1\n" % secret, ":2:", "unknown key"),
        ("dev = perhaps\n", ":1:", "yes or no"),
        ("just a line\n", ":1:", "key = value"),
        ("help = yes\n", ":1:", "unknown key"),
        ("config = other.conf\n", ":1:", "unknown key"),
        ("listen = \"127.0.0.1:1\n", ":1:", "quoted"),
    ]
    for text, where, why in cases:
        conf = write(d, "bad.conf", text)
        rc, out, err = check_config("--config", conf)
        eq(rc, 2, "exit status for %r" % text)
        check(conf + where in err and why in err, "error for %r names %s%s and %r: %r"
              % (text, conf, where, why, err))
        check("ok" not in out, "no ok for %r" % text)


async def test_check_config_checks_files_and_combinations():
    d = tempfile.mkdtemp(prefix="vt-cfg-")
    short = write(d, "short", "tooshort")
    for text in ("secret-file = %s\n" % os.path.join(d, "missing"),
                 "secret-file = %s\n" % short,
                 "listen = 127.0.0.1:0\n",  # neither a key nor --dev
                 "dev = yes\nnotify = webhook\n"):  # webhook without its URL
        conf = write(d, "c.conf", text)
        rc, out, err = check_config("--config", conf)
        eq(rc, 2, "exit status for %r (stderr %r)" % (text, err))
    rc, _, err = check_config("--config", os.path.join(d, "absent.conf"))
    eq(rc, 2, "exit status for a missing file")
    check("absent.conf" in err, "the missing file is named: %r" % err)
    with open(os.path.join(d, "bin.conf"), "wb") as f:
        f.write(b"listen = 1\0\n")
    rc, _, _ = check_config("--config", os.path.join(d, "bin.conf"))
    eq(rc, 2, "exit status for a file with a NUL byte")


async def test_key_recipe_and_line_breaks():
    """Line breaks at the end of a key file are not part of the key: 31 bytes
    and a newline are too short, and the error says why. The key recipe of
    the documentation (32 random bytes in base64) is taken every time."""
    d = tempfile.mkdtemp(prefix="vt-cfg-")
    raw = os.path.join(d, "raw")
    with open(raw, "wb") as f:
        f.write(b"\x01" * 31 + b"\n")
    os.chmod(raw, 0o600)
    rc, _, err = check_config("--secret-file", raw)
    eq(rc, 2, "exit status for 31 bytes and a newline")
    check("holds 31 bytes (line breaks at its end are not part of the key)" in err,
          "the reason: %r" % err)

    key = os.path.join(d, "key")
    p = subprocess.run("head -c 32 /dev/urandom | base64 > '%s' && chmod 600 '%s'" % (key, key),
                       shell=True, timeout=10)
    eq(p.returncode, 0, "the recipe ran")
    rc, out, err = check_config("--secret-file", key)
    eq((rc, out), (0, "ok\n"), "a key made by the recipe (stderr %r)" % err)


async def test_token_command_warns_when_it_makes_the_key():
    """`vartalapd token --dev` says the development key is in use when it makes
    it; later tokens print only the token (the server warns at every start)."""
    d = os.path.join(tempfile.mkdtemp(prefix="vt-dev-"), "data")
    errs = []
    for _ in range(2):
        p = subprocess.run([vartalapd_path(), "token", "alice", "--dev", "--data-dir", d],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        eq(p.returncode, 0, "vartalapd token (stderr %r)" % p.stderr)
        errs.append(p.stderr.decode())
    check("DEVELOPMENT SECRET" in errs[0], "the first, which made the key: %r" % errs[0])
    eq(errs[1], "", "the second says nothing")


async def test_dev_key_made_once_by_many_at_once():
    """Processes that start on one new data directory at once with --dev
    (here vartalapd token, six at a time) make one key between them: each
    succeeds, and a server on that directory takes every token."""
    for _ in range(4):
        d = os.path.join(tempfile.mkdtemp(prefix="vt-dev-"), "data")
        procs = [subprocess.Popen([vartalapd_path(), "token", "u%d" % i, "--dev",
                                   "--data-dir", d], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for i in range(6)]
        done = [(p.communicate(timeout=20), p.returncode) for p in procs]
        for (out, err), rc in done:
            eq(rc, 0, "vartalapd token on a new data directory (stderr %r)" % err[-300:])
        eq(sorted(os.listdir(d)), ["dev-secret"], "what the token commands left")
        srv = server(data_dir=d)
        try:
            for (out, _), _ in done:
                st, _ = http_raw(srv, "GET", "/v1/messages?limit=1", out.decode().strip())
                eq(st, 200, "a token made while the key was being made")
        finally:
            srv.kill()


async def test_cluster_options_must_agree():
    """--cluster is --storage redis with --redis: given together they must
    say the same, and --node-id needs a cluster. A Redis path that reads as
    a database number is refused (it would be a key prefix)."""
    d = tempfile.mkdtemp(prefix="vt-cfg-")
    key = ["--secret-file", write(d, "secret", "k" * 40)]
    url = "redis://127.0.0.1:1/vt:"
    for args, why in [
            (["--cluster", url, "--redis", "redis://127.0.0.1:1/other:"], "different"),
            (["--cluster", url, "--redis", "redis://127.0.0.1:2/vt:"], "different"),
            (["--storage", "lmdb", "--cluster", url], "--storage lmdb"),
            (["--cluster", url, "--storage", "memory"], "--storage memory"),
            (["--cluster", "redis://127.0.0.1:1/0"], "database number"),
            (["--node-id", "7"], "only used with --cluster"),
            (["--cluster", url, "--durability", "offline"], "--durability always"),
            (["--push-before-commit"], "needs --durability offline"),
            (["--durability", "offline", "--ack-wait", "50"], "needs --durability always"),
            (["--storage", "memory", "--ack-wait", "50"], "--storage lmdb"),
            (["--cluster", url, "--ack-wait", "50"], "--storage lmdb"),
            (["--ack-wait", "60001"], "from 0 to 60000"),
            (["--storage", "memory", "--hold-queue", "10"], "need --storage lmdb"),
            (["--cluster", url, "--hold-memory", "10"], "need --storage lmdb"),
            (["--durability", "offline", "--hold-queue", "0"], "from 1 to"),
            (["--durability", "offline", "--hold-memory", "2000000"], "from 1 to")]:
        rc, out, err = check_config(*key, *args)
        eq(rc, 2, "exit status for %r (stderr %r)" % (args, err))
        check(why in err, "%r: the reason names %r: %r" % (args, why, err))
    for args in (["--cluster", url, "--redis", url, "--node-id", "3"],
                 ["--storage", "redis", "--redis", url, "--node-id", "3"],
                 ["--durability", "offline", "--hold-queue", "1", "--hold-memory", "1"],
                 ["--hold-queue", "10", "--hold-memory", "10"],
                 ["--ack-wait", "60000"],
                 ["--storage", "memory", "--ack-wait", "0"],
                 ["--storage", "memory", "--durability", "offline", "--hold-queue", "10"]):
        rc, out, err = check_config(*key, *args)
        eq((rc, out), (0, "ok\n"), "%r (stderr %r)" % (args, err))


async def test_file_applies_and_command_line_wins():
    d = tempfile.mkdtemp(prefix="vt-cfg-")
    # The file names a port that is taken: the server starts only because the
    # command line's --listen (127.0.0.1:0, from the harness) wins.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    conf = write(d, "v.conf", "listen = 127.0.0.1:%d\nmax_message = 300\nstorage = memory\n"
                 % taken.getsockname()[1])
    srv = server("--config", conf)
    taken.close()
    st, r = send_http(srv, srv.token("alice"), "bob", "big-1", "x" * 400, expect=413)
    eq(r["code"], "too_large", "max-message from the file applies")
    send_http(srv, srv.token("alice"), "bob", "small-1", "hi")


async def test_every_option_is_documented():
    """Each option of --help is a key of etc/vartalapd.conf and in vartalapd(8)."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    out = subprocess.run([vartalapd_path(), "--help"], capture_output=True, text=True,
                         timeout=10).stdout
    opts = set(re.findall(r"^  --([a-z0-9-]+)", out, re.M)) - {
        "config", "check-config", "help", "version"}
    check(len(opts) > 20, "options found in --help: %r" % sorted(opts))
    with open(os.path.join(root, "etc", "vartalapd.conf")) as f:
        conf = f.read()
    with open(os.path.join(root, "docs", "vartalapd.8")) as f:
        man = f.read().replace("\\-", "-")
    for o in sorted(opts):
        check(re.search(r"^#%s =" % re.escape(o), conf, re.M) is not None,
              "etc/vartalapd.conf has a line '#%s = ...'" % o)
        check("--" + o in man, "docs/vartalapd.8 documents --%s" % o)
    rc, _, err = check_config("--dev", "--config", write(tempfile.mkdtemp(), "o.conf", ""))
    eq(rc, 0, "an empty file is fine (%r)" % err)


async def test_version_names_the_store_format():
    """--version says which LMDB store format the build writes, as vartalapd(8) does."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    p = subprocess.run([vartalapd_path(), "--version"], capture_output=True, text=True,
                       timeout=10)
    eq(p.returncode, 0, "exit status of --version")
    m = re.match(r"^vartalapd \S+ \(LMDB store format (\d+)\)\n$", p.stdout)
    check(m is not None, "--version printed %r" % p.stdout)
    with open(os.path.join(root, "docs", "vartalapd.8")) as f:
        man = f.read()
    check("this build writes format %s" % m.group(1) in man,
          "docs/vartalapd.8 names format %s" % m.group(1))


METRIC_LINE = re.compile(r'^([a-z_][a-z0-9_]*)(\{[a-z_]+="[^"]*"\})? ([0-9]+(?:\.[0-9]+)?)$')


def parse_metrics(text):
    """Samples by name; checks each has HELP and TYPE lines before it."""
    helps, types, samples = set(), {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        else:
            m = METRIC_LINE.match(line)
            check(m is not None, "a sample line in exposition format: %r" % line)
            name = m.group(1)
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if types.get(base) != "histogram":
                base = name
            check(base in helps and base in types, "HELP and TYPE precede %s" % name)
            check(name.startswith("vartalap_"), "prefix of %s" % name)
            if types[base] == "counter":
                check(name.endswith("_total"), "counter %s ends in _total" % name)
            key = name + (m.group(2) or "")
            check(key not in samples, "%s appears once" % key)
            samples[key] = float(m.group(3))
    return samples, types


def get_metrics(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type", ""), r.read().decode()
    finally:
        conn.close()


async def test_metrics_count_what_happened():
    srv = server("--storage", "memory")
    st, ctype, body = get_metrics(srv)
    eq(st, 200, "GET /metrics needs no token")
    check(ctype.startswith("text/plain; version=0.0.4"), "content type: %r" % ctype)
    before, types = parse_metrics(body)
    for name in ("vartalap_connections", "vartalap_messages_accepted_total",
                 "vartalap_messages_acked_total", "vartalap_messages_retried_total",
                 "vartalap_messages_offline_total", "vartalap_messages_duplicates_total",
                 "vartalap_messages_notified_total", "vartalap_messages_expired_total",
                 "vartalap_storage_batches_total", "vartalap_storage_batch_ops_total",
                 "vartalap_storage_errors_total"):
        check(name in before, "%s is exposed" % name)
    eq(types["vartalap_connections"], "gauge", "type of vartalap_connections")

    bob = await connect(srv, "bob")
    tok = srv.token("alice")
    send_http(srv, tok, "bob", "m-1", "one")
    send_http(srv, tok, "bob", "m-1", "one")  # the same client id: a duplicate
    msg = await bob.expect_type("message")
    await bob.ack(msg["id"])

    def acked():
        now, _ = parse_metrics(get_metrics(srv)[2])
        return now if now["vartalap_messages_acked_total"] >= 1 else None

    after = wait_until(acked, 5.0, "the ack to be counted")

    eq(after["vartalap_connections"], 1, "one WebSocket open")
    eq(after["vartalap_healthy"], 1, "healthy, as /healthz says")
    eq(after["vartalap_messages_accepted_total"] - before["vartalap_messages_accepted_total"],
       1, "accepted")
    eq(after["vartalap_messages_duplicates_total"], 1, "duplicates")
    eq(after["vartalap_dedup_pairs"], 1, "the one (sender, client id) pair remembered")
    eq(after["vartalap_dedup_pairs_forgotten_total"], 0, "no pair forgotten early")
    check(after['vartalap_storage_commit_seconds_bucket{le="+Inf"}']
          == after["vartalap_storage_commit_seconds_count"] > 0, "commit histogram: %r" % after)
    eq(after['vartalap_errors_total{code="bad_json"}'], 0, "no bad_json answers yet")
    check(after["vartalap_storage_batches_total"] > before["vartalap_storage_batches_total"],
          "batches grew")
    st, _ = http_raw(srv, "POST", "/metrics")
    eq(st, 405, "POST /metrics")


async def test_every_metric_is_documented():
    """Each series GET /metrics serves is listed under METRICS in vartalapd(8)."""
    srv = server("--storage", "memory")
    st, _, body = get_metrics(srv)
    eq(st, 200, "GET /metrics")
    names = set(re.findall(r"^# TYPE ([a-z_]+) ", body, re.M))
    check(len(names) > 15, "series found: %r" % sorted(names))
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(root, "docs", "vartalapd.8")) as f:
        man = f.read()
    metrics = man[man.index(".SH METRICS"):man.index(".SH OPTIONS")].replace("\\%", "")
    for name in sorted(names):
        check(re.search(r"\b%s\b" % name, metrics) is not None,
              "docs/vartalapd.8 lists %s under METRICS" % name)


if __name__ == "__main__":
    run([test_check_config_accepts_a_good_file, test_check_config_names_file_and_line,
         test_check_config_checks_files_and_combinations, test_key_recipe_and_line_breaks,
         test_token_command_warns_when_it_makes_the_key, test_dev_key_made_once_by_many_at_once,
         test_cluster_options_must_agree,
         test_file_applies_and_command_line_wins,
         test_metrics_count_what_happened, test_every_metric_is_documented,
         test_every_option_is_documented, test_version_names_the_store_format])
