#!/bin/sh
# Set up a Debian machine, build vartalapd, and run it on its embedded default
# (LMDB in ./vartalap-data) in development mode on 127.0.0.1:8080.
# Extra arguments go to vartalapd, e.g. scripts/run.sh --listen 127.0.0.1:9000.
set -eu

cd "$(dirname "$0")/.."
sh scripts/setup.sh

if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null
fi
ninja -C build >/dev/null

exec build/frontends/vartalapd --dev --data-dir ./vartalap-data "$@"
