#!/usr/bin/python3
"""vartalap-cli: two clients driven through pipes chat, see delivered and
read receipts, groups and typing, and exit cleanly on EOF and on SIGINT."""

import asyncio
import os
import re
import signal

from harness import check, eq, run, server

CLI = os.environ.get("VARTALAP_CLI") or os.path.join(
    os.path.dirname(os.environ.get("VARTALAPD", "")), "vartalap-cli")


class Cli:
    """One vartalap-cli process: lines in through stdin, events out of stdout."""

    def __init__(self, name, proc):
        self.name = name
        self.proc = proc
        self.lines = []

    @classmethod
    async def start(cls, srv, user, device=None):
        args = [CLI, "--url", "ws://127.0.0.1:%d" % srv.port, "--token", srv.token(user)]
        if device:
            args += ["--device", device]
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        c = cls(user, proc)
        await c.expect(r"connected$")
        return c

    async def say(self, *lines):
        for line in lines:
            self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    async def expect(self, pattern, timeout=5):
        """The next output line matching @pattern; earlier ones are kept in self.lines."""
        rx = re.compile(pattern)
        try:
            while True:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
                check(raw, "%s: output ended while waiting for %r; saw %r"
                      % (self.name, pattern, self.lines[-5:]))
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                m = rx.search(line)
                if m:
                    return m
        except asyncio.TimeoutError:
            check(False, "%s: no line matching %r in %ss; saw %r"
                  % (self.name, pattern, timeout, self.lines[-5:]))

    async def eof(self, timeout=5):
        """Close stdin; the client must exit 0 by itself."""
        self.proc.stdin.close()
        try:
            rest = await asyncio.wait_for(self.proc.communicate(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            check(False, "%s: still running %ss after EOF" % (self.name, timeout))
        self.lines += rest[0].decode().splitlines()
        eq(self.proc.returncode, 0, "%s: exit status after EOF (stderr %r)"
           % (self.name, rest[1].decode()))

    def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()


async def test_message_delivered_and_read():
    srv = server("--ack-timeout", "5000")
    bob = await Cli.start(srv, "bob")
    alice = await Cli.start(srv, "alice")
    try:
        await alice.say("/to bob", "hello bob")
        acc = await alice.expect(r"^accepted (cli-\S+) as (\d+)$")
        sid = acc.group(2)
        await bob.expect(r"^message %s alice>bob: hello bob$" % sid)
        await alice.expect(r"^delivered %s to bob$" % sid)
        await bob.say("/read")
        await alice.expect(r"^read %s by bob$" % sid)
        await bob.say("/to alice", "hi  alice")
        await alice.expect(r"^message \d+ bob>alice: hi  alice$")
        await alice.eof()
        await bob.eof()
    finally:
        alice.kill()
        bob.kill()


async def test_group_and_typing():
    srv = server("--ack-timeout", "5000")
    bob = await Cli.start(srv, "bob")
    carol = await Cli.start(srv, "carol")
    alice = await Cli.start(srv, "alice")
    try:
        await alice.say("/group create g:team Team bob carol")
        await alice.expect(r"^accepted cli-\S+ as \d+$")
        for c in (bob, carol):
            await c.expect(r"^group \d+ create g:team by alice: Team$")
        await alice.say("/typing", "hi team")
        for c in (bob, carol):
            await c.expect(r"^typing alice>g:team$")
            await c.expect(r"^message \d+ alice>g:team: hi team$")
        await bob.say("/to nobody@", "/nope")
        await bob.expect(r"^error unknown_command: /nope$")
        for c in (alice, bob, carol):
            await c.eof()
    finally:
        for c in (alice, bob, carol):
            c.kill()


async def test_sigint_and_bad_token():
    srv = server()
    alice = await Cli.start(srv, "alice")
    alice.proc.send_signal(signal.SIGINT)
    eq(await asyncio.wait_for(alice.proc.wait(), 5), 0, "exit status after SIGINT")

    proc = await asyncio.create_subprocess_exec(
        CLI, "--url", "ws://127.0.0.1:%d" % srv.port, "--token", "not.a.token",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 5)
    eq(proc.returncode, 1, "exit status with a bad token")
    check(b"401" in err, "the refusal is reported: %r" % err)


if __name__ == "__main__":
    run([test_message_delivered_and_read, test_group_and_typing, test_sigint_and_bad_token])
