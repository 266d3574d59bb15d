#!/bin/sh
# Install into a scratch directory and use the result the way an outside
# project would:
#   1. `meson install --destdir`, then check the files, the soname, and that
#      the shared library exports exactly the functions the headers mark
#      VT_EXPORT (nothing internal);
#   2. build tests/install/outer.c against the installed copy with pkg-config,
#      once on the shared library and once on the static one, and run both;
#   3. build tests/subproject, which takes this tree as a meson subproject.
# Usage: run.sh SOURCE_ROOT BUILD_ROOT. Exits non-zero at the first failure.
set -eu

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vt-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/dest
cc=${CC:-cc}

fail() {
	echo "install test: $*" >&2
	exit 1
}

step() {
	echo "== $*"
}

step "meson install --destdir"
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "meson install failed"; }

pc=$(find "$dest" -name vartalap.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no vartalap.pc installed"
libdir=$(dirname "$(dirname "$pc")")
prefix_dir=$(sed -n 's/^prefix=//p' "$pc")
root=$dest$prefix_dir
echo "libdir: $libdir"

step "installed files"
for f in "$libdir/libvartalap.so" "$libdir/libvartalap.a" "$root/bin/vartalapd" \
	"$root/share/man/man8/vartalapd.8" "$root/bin/vartalap-cli" \
	"$root/share/man/man1/vartalap-cli.1"; do
	[ -e "$f" ] || fail "missing $f"
done
for h in vartalap engine error export log notifier storage token transport version; do
	[ -f "$root/include/vartalap/$h.h" ] || fail "missing header vartalap/$h.h"
done

step "soname"
soname=$(readelf -d "$libdir/libvartalap.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libvartalap.so.0" ] || fail "soname is '$soname', want libvartalap.so.0"
[ -e "$libdir/$soname" ] || fail "no $soname link"

step "exported symbols"
nm -D --defined-only "$libdir/libvartalap.so" | awk '{print $NF}' | sort -u >"$tmp/exported"
grep -h 'VT_EXPORT' "$root"/include/vartalap/*.h | grep -v '#' | grep -o 'VT_EXPORT[^(]*(' |
	sed 's/.*[ *]\([A-Za-z0-9_]*\)($/\1/' | sort -u >"$tmp/declared"
[ -s "$tmp/declared" ] || fail "no VT_EXPORT declarations found in the headers"
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
	echo "exported but not declared VT_EXPORT (<), declared but not exported (>):" >&2
	diff "$tmp/declared" "$tmp/exported" | grep '^[<>]' >&2 || true
	fail "the shared library's exports differ from the public API"
fi
! grep -q '^vt__' "$tmp/exported" || fail "internal vt__ symbols exported"
echo "$(wc -l <"$tmp/exported") symbols, all public"

# pkg-config sees the destdir as a sysroot: it prefixes -I and -L with it.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$dest"

step "outside program, shared library"
pkg-config --exists vartalap || fail "pkg-config does not find vartalap"
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror -o "$tmp/outer" "$src/tests/install/outer.c" \
	$(pkg-config --cflags --libs vartalap) || fail "cannot build against the shared library"
LD_LIBRARY_PATH=$libdir "$tmp/outer" || fail "the program on the shared library failed"
LD_LIBRARY_PATH=$libdir ldd "$tmp/outer" | grep -q "$libdir/libvartalap.so.0" ||
	fail "the program did not load the installed library"

step "outside program, static library"
static_libs=$(pkg-config --static --libs vartalap | sed "s|-lvartalap|$libdir/libvartalap.a|")
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -Wall -Werror -o "$tmp/outer-static" "$src/tests/install/outer.c" \
	$(pkg-config --cflags vartalap) $static_libs || fail "cannot build against the static library"
if ldd "$tmp/outer-static" | grep -q libvartalap; then
	fail "the static build still loads libvartalap.so"
fi
"$tmp/outer-static" || fail "the program on the static library failed"

step "vartalapd, vartalap-cli and their man pages"
"$root/bin/vartalapd" --version | grep -q '^vartalapd ' || fail "installed vartalapd --version"
"$root/bin/vartalap-cli" --help | grep -q '^Usage: vartalap-cli' || fail "installed vartalap-cli --help"
if command -v groff >/dev/null 2>&1; then
	for page in man8/vartalapd.8 man1/vartalap-cli.1; do
		warnings=$(groff -man -Tutf8 -ww -z "$root/share/man/$page" 2>&1)
		[ -z "$warnings" ] || fail "man page $page warnings: $warnings"
	done
fi

step "meson subproject"
meson setup "$tmp/outer-build" "$src/tests/subproject" --force-fallback-for=vartalap \
	-Dvartalap:tests=false >"$tmp/sub.log" 2>&1 ||
	{ tail -n 30 "$tmp/sub.log" >&2; fail "meson setup of the outer project failed"; }
ninja -C "$tmp/outer-build" outer >>"$tmp/sub.log" 2>&1 ||
	{ tail -n 30 "$tmp/sub.log" >&2; fail "building the outer project failed"; }
"$tmp/outer-build/outer" || fail "the outer project's program failed"

echo "install test: ok"
