"""Shared fixtures. Real images come from ../shared/data beside the repository; nothing is copied in."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FACES = SHARED / "faces"
assert SHARED.is_dir(), f"the tests read real images from {SHARED}: put the shared/ folder beside the repository"


@pytest.fixture(scope="session")
def shared() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return FACES


def jpeg_bytes(rgb: np.ndarray, **save_kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=95, **save_kw)
    return buf.getvalue()


def read_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="session")
def obama_passport(tmp_path_factory) -> Path:
    """A specimen TD3 passport page (valid MRZ, not expired, adult holder) with obama.jpg as portrait."""
    from idproof.document.specimen import make_specimen

    spec = make_specimen(read_rgb(FACES / "face_recognition/obama/obama.jpg"), kind="TD3", seed=1)
    path = tmp_path_factory.mktemp("specimen") / "obama-td3.png"
    Image.fromarray(spec.image).save(path)
    return path
