#!/bin/sh
# The chat page in headless Chromium, against a real vartalapd.
# Exit 77 (skipped) only when node or chromium is not installed: scripts/setup.sh
# installs both, so on CI this runs. Anything else that goes wrong is a failure.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "SKIP: node and npm are not installed (sh scripts/setup.sh installs them)"
	exit 77
fi
if [ ! -x "$CHROMIUM" ]; then
	echo "SKIP: no Chromium at $CHROMIUM (sh scripts/setup.sh installs Debian's chromium)"
	exit 77
fi
: "${VARTALAPD:?set VARTALAPD to the vartalapd binary}"

# playwright-core only: it drives the installed Chromium and downloads no browser.
if [ ! -d "$HERE/node_modules/playwright-core" ]; then
	(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi
export CHROMIUM
exec node "$HERE/chat.test.mjs"
