"""Pinned model files: a missing or altered file is refused with a fix, never silently used."""

from __future__ import annotations

import pytest

from idproof.errors import ModelError
from idproof.face import models


@pytest.fixture()
def fresh_cache():
    models.model_path.cache_clear()
    yield
    models.model_path.cache_clear()


def test_all_pinned_files_verify(fresh_cache):
    paths = models.verify_all()
    assert set(paths) == set(models.MODELS)


def test_tampered_model_is_refused(tmp_path, monkeypatch, fresh_cache):
    good = models.model_path("arcface_fp").read_bytes()
    models.model_path.cache_clear()
    (tmp_path / "fr_feature.onnx").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    monkeypatch.setenv("IDPROOF_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelError) as e:
        models.model_path("arcface_fp")
    assert "SHA-256" in e.value.message and "install" in e.value.fix


def test_missing_model_is_refused(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setenv("IDPROOF_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="not found"):
        models.model_path("arcface_fp")


def test_no_demographic_models_are_registered():
    banned = {"age", "gender", "expression", "emotion", "ethnicity", "race"}
    for name, m in models.MODELS.items():
        words = set(name.split("_")) | set(m.relpath.rsplit("/", 1)[-1].split(".")[0].split("_"))
        assert not words & banned, name
