#!/usr/bin/env bash
# Install what the tests need (incl. a throw-away PostgreSQL when tests need one) and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh >/dev/null
# Debian's Chromium for the capture page's browser test; where it cannot be installed that test skips, saying why.
bash scripts/browser.sh || true
# The storage and registry tests run on SQLite and on a real PostgreSQL: a throw-away cluster, started here,
# stopped on exit. A cluster that cannot start fails the run: those tests must never be skipped silently.
# (An IDPROOF_TEST_PG_URL set by the caller is used as it is, e.g. a CI service database.)
if [ -z "${IDPROOF_TEST_PG_URL:-}" ]; then
  PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/idproof-pg.XXXXXX")
  trap 'bash scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if ! IDPROOF_TEST_PG_URL=$(bash scripts/pg.sh start "$PGDIR"); then
    echo "test.sh: the throw-away PostgreSQL cluster did not start (see above); not running the tests without it" >&2
    exit 1
  fi
  export IDPROOF_TEST_PG_URL
fi
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests: that is not a failure of the code under test.
[ "$rc" -eq 5 ] && { echo "no tests collected"; exit 0; }
exit "$rc"
