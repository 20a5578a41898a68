#!/usr/bin/env bash
# Make Debian's Chromium available for the capture page's browser test (tests/test_capture_browser.py).
# Playwright (Python) drives it through executable_path; `playwright install` (a download of its own
# browser build) is never used. Installed only when missing; as root through apt-get, as in CI.
# Exits 0 when /usr/bin/chromium (or $IDPROOF_CHROMIUM) runs, 1 when it cannot be made available.
set -euo pipefail
BIN=${IDPROOF_CHROMIUM:-/usr/bin/chromium}
runs() { [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; }
runs && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
fi
runs && exit 0
echo "browser.sh: Chromium is not available at $BIN (as root: apt-get install -y chromium); the browser test will be skipped" >&2
exit 1
