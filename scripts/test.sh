#!/bin/sh
# Set up a Debian machine, build Vartalap twice (plain, and under AddressSanitizer
# with UndefinedBehaviorSanitizer), run every unit and end-to-end test in both,
# then run each fuzz target for 10 seconds (scripts/fuzz.sh).
# Prints "N passed, N failed" last; exits non-zero when anything failed.
set -eu

cd "$(dirname "$0")/.."
sh scripts/setup.sh

passed=0
failed=0

# run_suite NAME BUILD_DIR [MESON OPTIONS...]
run_suite() {
	name=$1
	dir=$2
	shift 2

	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir"

	echo "== $name tests"
	meson test -C "$dir" --print-errorlogs --num-processes 1 >"$dir/test.out" 2>&1 || true
	cat "$dir/test.out"

	# meson closes with "Ok: N", "Fail: N", "Timeout: N" and more.
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$dir/test.out" | tail -n 1)
	bad=0
	for kind in Fail Timeout 'Unexpected Pass'; do
		n=$(sed -n "s/^$kind: *\([0-9]*\).*/\1/p" "$dir/test.out" | tail -n 1)
		bad=$((bad + ${n:-0}))
	done
	if [ -z "$ok" ]; then
		bad=$((bad + 1))
	fi
	passed=$((passed + ${ok:-0}))
	failed=$((failed + bad))
}

run_suite plain build-test
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite sanitized build-sanitize -Db_sanitize=address,undefined -Dbuildtype=debug

# Each libFuzzer target for 10 s under ASan and UBSan (clang): one pass or
# fail per target, so a crash the fuzzers find fails the run.
echo "== fuzz targets"
fuzz_out=$(mktemp)
sh scripts/fuzz.sh 10 >"$fuzz_out" 2>&1 || true
cat "$fuzz_out"
fz=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$fuzz_out" | tail -n 1)
if [ -n "$fz" ]; then
	passed=$((passed + ${fz% *}))
	failed=$((failed + ${fz#* }))
else
	failed=$((failed + 1))
fi
rm -f "$fuzz_out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
