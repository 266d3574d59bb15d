"""Regressions found by attacking the server: each case here once let
something through that it must not.

- --dev with --secret-file would hand out tokens signed with the real key:
  the two are refused together.
- The page server followed a symlinked directory out of --web-root: every
  segment is opened without following links.
"""
import os
import subprocess
import tempfile
import urllib.request

from harness import check, eq, run, server, vartalapd_path


async def test_dev_and_secret_file_refused_together():
    d = tempfile.mkdtemp(prefix="vt-sec-")
    secret = os.path.join(d, "secret")
    with open(secret, "w") as f:
        f.write("k" * 40)
    r = subprocess.run([vartalapd_path(), "--dev", "--secret-file", secret, "--data-dir",
                        os.path.join(d, "data"), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=10)
    eq(r.returncode, 2, "exit status of --dev with --secret-file")
    check("exclude each other" in r.stderr, "a reason on stderr: %r" % r.stderr)


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


async def test_web_root_symlinks_are_not_followed():
    d = tempfile.mkdtemp(prefix="vt-web-")
    root = os.path.join(d, "web")
    outside = os.path.join(d, "outside")
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(outside)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<p>page</p>")
    with open(os.path.join(root, "sub", "a.txt"), "w") as f:
        f.write("inside")
    with open(os.path.join(outside, "secret.txt"), "w") as f:
        f.write("outside")
    os.symlink("../outside", os.path.join(root, "linkdir"))
    os.symlink("../outside/secret.txt", os.path.join(root, "link.txt"))

    srv = server("--web-root", root)
    eq(get(srv.port, "/sub/a.txt"), (200, b"inside"), "a file inside the root")
    eq(get(srv.port, "/")[0], 200, "the index")
    eq(get(srv.port, "/linkdir/secret.txt")[0], 404, "a file through a symlinked directory")
    eq(get(srv.port, "/link.txt")[0], 404, "a symlinked file")
    srv.stop()


if __name__ == "__main__":
    run([test_dev_and_secret_file_refused_together, test_web_root_symlinks_are_not_followed])
