"""What the three BBS vector test modules share: where the published vectors are and how they are read."""

from __future__ import annotations

import json
from pathlib import Path

from idproof.credential.bbs import SHA256, SHAKE256, Ciphersuite

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors" / "bbs"
SUITES: dict[str, Ciphersuite] = {"bls12-381-sha-256": SHA256, "bls12-381-shake-256": SHAKE256}


def _id(p: Path) -> str:
    """The test id of a fixture file: its path below the vectors folder."""
    return p.relative_to(VECTORS).as_posix()


def _load(p: Path) -> dict:
    return json.loads(p.read_text())


def _suite(p: Path) -> Ciphersuite:
    """The ciphersuite a fixture file belongs to (its folder below core/, blind/ or pseudonym/)."""
    return SUITES[p.relative_to(VECTORS).parts[1]]


def _h(x: str) -> bytes:
    return bytes.fromhex(x)
