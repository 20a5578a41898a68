"""Shared fixtures. Real images come from ../shared/data beside the repository; nothing is copied in."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
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


# --- databases: every storage/registry test runs on SQLite and on a real PostgreSQL ------------------------

PG_URL = os.environ.get("IDPROOF_TEST_PG_URL")  # scripts/test.sh starts a throw-away cluster and sets it


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file, or a database created on the PostgreSQL cluster at
    $IDPROOF_TEST_PG_URL and dropped afterwards. The postgresql runs are skipped only where it is unset."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'idproof.sqlite3'}"
        return
    if not PG_URL:
        pytest.skip("IDPROOF_TEST_PG_URL is not set (scripts/test.sh starts a throw-away PostgreSQL and sets it)")
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"idproof_test_{uuid.uuid4().hex[:16]}"
    admin = make_url(PG_URL).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
