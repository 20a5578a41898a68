"""One benchmark pipeline in its own process, so its peak RSS and timings are its own.

    python -m idproof.bench._worker JOB.json RESULT.json

JOB.json: {"pipeline": "idproof-fast" | "idproof-accurate" | "face_recognition",
           "images": [absolute paths], "pairs": [[i, j], ...] (indices into images)}.
RESULT.json: per-image stage timings (ms, null where a stage did not run), faces found, and one
similarity per pair and model (null when either image has no face). Templates stay in this
process's memory and are never written anywhere: only scores and timings leave it.

Progress goes to stdout as ``@@progress DONE TOTAL`` lines (read by ``idproof.bench.faces``).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

from idproof.bench._subprocess import worker_main
from typing import Any

PIPELINES = ("idproof-fast", "idproof-accurate", "face_recognition")
WARMUP_TRIES = 5


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def peak_rss_kib() -> tuple[int, int]:
    """(VmHWM of this process image, ru_maxrss), both KiB.

    VmHWM is the high-water mark of this process's own address space. ru_maxrss is also read, but on
    Linux it survives execve and can carry the parent's peak from before the fork, so VmHWM is preferred.
    """
    ru = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    hwm = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return (hwm or ru), ru


def _cpu_snapshot() -> tuple[float, float, float]:
    """(wall s, machine busy CPU s from /proc/stat, this process's CPU s)."""
    busy = 0.0
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is already in user
    except (OSError, ValueError, IndexError):
        pass
    t = os.times()
    return time.perf_counter(), busy, t.user + t.system


def other_cpu_load(start: tuple[float, float, float], end: tuple[float, float, float]) -> float | None:
    """Average number of cores that *other* processes kept busy between two snapshots."""
    wall = end[0] - start[0]
    if wall <= 0 or not end[1]:
        return None
    return max(0.0, ((end[1] - start[1]) - (end[2] - start[2])) / wall)


class IdproofPipeline:
    """RetinaFace detection → face choice → per model: alignment crop → embedding."""

    def __init__(self, models: tuple[str, ...]) -> None:
        from idproof.face.detect import detect_faces
        from idproof.face.embed import embed_timed, embedder
        from idproof.imageio import load_image

        self.models = models
        self._detect = detect_faces
        self._load = load_image
        self._embedders = {m: embedder(m) for m in models}
        self._embed_timed = embed_timed
        from idproof.face.quality import QualityPolicy, select_face

        # The labelled subject of an LFW-style photo is its centred face, not always its largest.
        policy = QualityPolicy()
        self._select = lambda faces, shape: select_face(faces, shape, "centred", policy)[0]
        self.face_choice = "idproof.face.quality.select_face(role='centred')"
        from idproof.face.detect import warm_up

        warm_up()  # load the detector now, not inside the first image's timing

    def run(self, path: str) -> tuple[dict[str, float | None], dict[str, Any] | None, int]:
        """Timings, vectors per model (None: no face) and number of faces found, for one image."""
        from idproof.errors import ImageError

        t: dict[str, float | None] = {}
        start = t0 = time.perf_counter()
        try:
            rgb = self._load(path)
        except ImageError:
            t["decode"] = _ms(t0)
            return t, None, 0
        t["decode"] = _ms(t0)
        t0 = time.perf_counter()
        faces = self._detect(rgb)
        face = self._select(faces, rgb.shape) if faces else None
        t["detect"] = _ms(t0)
        if face is None:
            t["total"] = _ms(start)
            return t, None, len(faces)
        template, embed_timings = self._embed_timed(self.models, rgb, face)
        t.update(embed_timings)
        t["total"] = _ms(start)
        return t, template.vectors, len(faces)

    def similarity(self, model: str, a: Any, b: Any) -> float:
        return self._embedders[model].similarity(a, b)


class FaceRecognitionPipeline:
    """What a user of the face_recognition library writes (HOG detector, 5-point predictor, dlib ResNet)."""

    models = ("face_recognition",)
    face_choice = (
        "face_locations(); the same centred-subject rule as idproof (nearest the image centre among faces with "
        ">= 20 % of the largest face's area); face_encodings() of that one face"
    )

    def __init__(self) -> None:
        import face_recognition  # loads its dlib models at import

        self._fr = face_recognition

    def run(self, path: str) -> tuple[dict[str, float | None], dict[str, Any] | None, int]:
        fr = self._fr
        t: dict[str, float | None] = {}
        start = t0 = time.perf_counter()
        try:
            img = fr.load_image_file(path)
        except Exception:  # noqa: BLE001 - an unreadable file is a failed image for the peer too
            t["decode"] = _ms(t0)
            return t, None, 0
        t["decode"] = _ms(t0)
        t0 = time.perf_counter()
        locs = fr.face_locations(img)  # HOG, upsample 1 (the library defaults)
        t["detect"] = _ms(t0)
        if not locs:
            t["total"] = _ms(start)
            return t, None, 0
        loc = _centred(locs, img.shape)
        t0 = time.perf_counter()
        enc = fr.face_encodings(img, known_face_locations=[loc])[0]  # alignment + embedding, inseparable here
        t["embed:face_recognition"] = _ms(t0)
        t["total"] = _ms(start)
        return t, {"face_recognition": enc}, len(locs)

    def similarity(self, model: str, a: Any, b: Any) -> float:
        return 1.0 - float(self._fr.face_distance([a], b)[0])


def _centred(locs: list[tuple[int, int, int, int]], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """idproof's role='centred' rule on face_recognition's css boxes (top, right, bottom, left)."""
    import math

    from idproof.face.quality import QualityPolicy

    area = [(b - t) * (r - l) for t, r, b, l in locs]
    near = [loc for loc, a in zip(locs, area) if a >= QualityPolicy().centred_min_area_ratio * max(area)]
    h, w = shape[:2]
    return min(near, key=lambda c: math.hypot((c[1] + c[3]) / 2 - w / 2, (c[0] + c[2]) / 2 - h / 2))


def make_pipeline(name: str):
    if name == "idproof-fast":
        return IdproofPipeline(("arcface_fp",))
    if name == "idproof-accurate":
        return IdproofPipeline(("arcface_fp", "dlib_resnet"))
    if name == "face_recognition":
        return FaceRecognitionPipeline()
    raise SystemExit(f"unknown pipeline {name!r}; choose from {PIPELINES}")


def run_job(job: dict, progress: Callable[[int, int], None] = lambda d, n: None) -> dict:
    images: list[str] = job["images"]
    pairs: list[list[int]] = job["pairs"]
    t0 = time.perf_counter()
    pipe = make_pipeline(job["pipeline"])
    load_ms = _ms(t0)

    # Warm-up (not timed): the first image with a face runs every stage once.
    t0 = time.perf_counter()
    for path in images[:WARMUP_TRIES]:
        if pipe.run(path)[1] is not None:
            break
    warmup_ms = _ms(t0)

    snap = _cpu_snapshot()
    timings: dict[str, list[float | None]] = {}
    vectors: list[dict[str, Any] | None] = []
    faces: list[int] = []
    n = len(images)
    for i, path in enumerate(images):
        t, v, k = pipe.run(path)
        for stage, ms in t.items():
            timings.setdefault(stage, [None] * n)[i] = round(ms, 3)
        vectors.append(v)
        faces.append(k)
        progress(i + 1, n)
    others = other_cpu_load(snap, _cpu_snapshot())

    scores: dict[str, list[float | None]] = {m: [] for m in pipe.models}
    for a, b in pairs:
        va, vb = vectors[a], vectors[b]
        for m in pipe.models:
            scores[m].append(None if va is None or vb is None else float(pipe.similarity(m, va[m], vb[m])))
    hwm, ru = peak_rss_kib()
    return {
        "pipeline": job["pipeline"],
        "models": list(pipe.models),
        "face_choice": pipe.face_choice,
        "threads": int(os.environ.get("IDPROOF_THREADS", os.cpu_count() or 1)),
        "model_load_ms": round(load_ms, 1),
        "warmup_ms": round(warmup_ms, 1),
        "timings_ms": timings,
        "faces_found": faces,
        "failed": [v is None for v in vectors],
        "scores": scores,
        "peak_rss_kib": hwm,
        "other_cpu_load_cores": None if others is None else round(others, 2),
        "cpu_count": os.cpu_count(),
        "ru_maxrss_kib": ru,
    }


def main(argv: list[str] | None = None) -> int:
    return worker_main(run_job, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
