#!/bin/sh
# Install the Debian packages that building, running and testing Vartalap need.
# Safe to run again: it installs only what is missing. Needs root (or sudo).
set -eu

PKGS="meson ninja-build pkg-config gcc clang libclang-rt-14-dev \
libevent-dev libssl-dev liblmdb-dev libcjson-dev check libwslay-dev \
libhiredis-dev redis-server python3-websockets curl openssl ca-certificates lmdb-utils \
chromium chromium-driver nodejs npm faketime mosquitto libmosquitto-dev gnuplot-nox"

missing=""
for p in $PKGS; do
	# NodeSource's nodejs carries its own npm and conflicts with Debian's.
	if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then
		continue
	fi
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

echo "setup: installing:$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
