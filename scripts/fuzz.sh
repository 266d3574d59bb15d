#!/bin/sh
# Build the libFuzzer targets with clang and run each one over a copy of its
# seed corpus for SECONDS (default 10). Prints one line per target and, last,
# "N passed, N failed". Exits non-zero when any target found a crash.
#
#   sh scripts/fuzz.sh [SECONDS]
#
# New inputs a run finds stay in the temporary copy; merge the useful ones
# into fuzz/corpus/ by hand (see fuzz/README.md). Crash inputs are kept in
# build-fuzz/fuzz-crashes/<target>/.
set -u

SECONDS_PER_TARGET="${1:-10}"
TARGETS="envelope json token handshake wsframe http"

case "$SECONDS_PER_TARGET" in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build-fuzz"

sh "$ROOT/scripts/setup.sh" || exit 1

if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" "$ROOT" -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 1
else
	meson configure "$BUILD" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null || exit 1
fi

names=""
for t in $TARGETS; do
	names="$names fuzz/fuzz_$t"
done
# shellcheck disable=SC2086
ninja -C "$BUILD" $names >/dev/null || {
	echo "fuzz: build failed (run: ninja -C $BUILD$names)" >&2
	exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vartalap-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT INT TERM

# Undefined behaviour is a finding too, not a warning.
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export UBSAN_OPTIONS

passed=0
failed=0
for t in $TARGETS; do
	corpus="$WORK/$t"
	crashes="$BUILD/fuzz-crashes/$t"
	log="$WORK/$t.log"
	dict=""

	mkdir -p "$corpus" "$crashes"
	cp "$ROOT/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null
	if [ -f "$ROOT/fuzz/dict/$t.dict" ]; then
		dict="-dict=$ROOT/fuzz/dict/$t.dict"
	fi

	# shellcheck disable=SC2086
	"$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 \
		-timeout=10 -close_fd_mask=3 -artifact_prefix="$crashes/" $dict \
		"$corpus" >"$log" 2>&1
	rc=$?

	stats="$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -E \
		's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/\1 runs, cov \2, ft \3, corpus \4/')"
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "fuzz_$t: ok: ${stats:-no statistics} in ${SECONDS_PER_TARGET}s"
	else
		failed=$((failed + 1))
		what="$(grep -m 1 -E 'broken invariant|ERROR: |runtime error' "$log")"
		echo "fuzz_$t: FAILED (exit $rc): ${what:-see log}; input in $crashes/"
		cp "$log" "$crashes/last.log"
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
