#!/usr/bin/env bash
# Install what the tests need (incl. a throw-away PostgreSQL when tests need one) and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh >/dev/null
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests: that is not a failure of the code under test.
[ "$rc" -eq 5 ] && { echo "no tests collected"; exit 0; }
exit "$rc"
