"""`idproof bench liveness`: passive presentation-attack detection in ISO/IEC 30107-3 terms.

Figures, for each configuration in one run -- the passive model alone, the forensic cues alone, the
fused detector idproof ships -- and for the peer (``fr_liveness.onnx`` exactly as the npm package's
``lib/fr_liveness.js`` uses it: RGB input, live iff softmax[0] >= 0.5):

* **APCER** per attack type (PAI species): share of attack presentations classified bona fide;
* **BPCER**: share of bona fide presentations classified as attacks;

each with its counts and an exact (Clopper-Pearson) 95 % interval, reported **separately** for

* ``shared`` -- the real data in ``shared/data``: CASIA-FASD live / attack face crops (attack type not
  labelled by the source: printed, cut or replayed photo), the Silent-Face samples, and frames sampled
  evenly from the video clips (live / replay / deepfake, per ``labels.csv``);
* ``synthetic`` -- attacks made here (``idproof.liveness.attacks``: screen re-capture, halftone print,
  perspective-"turned" photo print) from live faces of ``shared/data/faces`` and from the live CASIA
  crops; the bona fide side of this family is the face photos themselves.

Split: thresholds are fitted (``fit_calibration``) on the *fit* side only and every headline figure is
measured on the *held-out* side. People never cross it: CASIA subjects (folder ids), video subjects
(``labels.csv`` ``subject``; live clip and its attacks together, replay and deepfake subjects spread
over both sides) and face identities are assigned by a seeded hash; synthetic attacks follow the
person they were made from. The Silent-Face samples (no subject id) are held out, never fitted.
Frames from one clip or one CASIA subject are not independent trials: the intervals are binomial and
therefore optimistic for those rows; clip / subject counts are given beside the frame counts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from idproof.bench._subprocess import threads

SEED = 0
DEFAULT_LIMIT = 240  # bona fide photos taken from shared/data/faces (each also yields 3 synthetic attacks)
FRAMES_PER_CLIP = 5
TARGET_BPCER_FIT = 0.10  # fused BPCER allowed on the fit side, per bona fide source (the goal is <= 15 % held out)
CUE_CAP_FIT = 0.03  # ... of which one forensic cue alone may take at most this share
# bezel has the broadest bona fide tail (people standing in doorways, before window frames and
# shelves): it gets a larger share of the budget than the other forensic cues
CUE_CAP_SCALE = {"bezel": 5 / 3}
GOAL_BPCER = 0.15
CONFIGURATIONS: dict[str, tuple[str, ...]] = {
    "passive_model": ("passive_model",),
    "forensic": ("screen_moire", "glare", "bezel", "colour_gamut", "sharpness_mismatch"),
    "fused": ("passive_model", "screen_moire", "glare", "bezel", "colour_gamut", "sharpness_mismatch"),
}
PEER = "faceplugin_js"
# attack types the thresholds are fitted on; deepfakes are no presentation attack (no instrument in
# front of the camera: the binding against injected streams is their defence) and are reported only
FIT_PAI = ("casia_attack", "video_replay", "screen", "print", "warped_photo")
GOAL_PAI = ("screen", "print", "warped_photo")  # APCER 0 goal (printed / screen / warped-photo attacks)
PAI_TEXT = {
    "casia_attack": "CASIA-FASD attack crops (printed / cut photo / video replay; type not labelled)",
    "silentface_attack": "Silent-Face fake samples (photo / screen)",
    "video_replay": "video replay (a phone screen held up), frames",
    "video_deepfake": "video deepfake (FF++ face swap / reenactment), frames; not a presentation attack",
    "screen": "SYNTHETIC screen re-capture (sub-pixel grid moiré, gamma, half with glare)",
    "print": "SYNTHETIC halftone print re-capture (CMYK dots, paper, reduced gamut)",
    "warped_photo": "SYNTHETIC photo print held up and turned 15-35 degrees (perspective warp)",
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


# --- data and split ---------------------------------------------------------------------------------


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def split_side(group: Sequence[str], kind: str, seed: int = SEED) -> dict[str, str]:
    """Seeded half / half assignment of subject keys to "fit" / "held" (order by hash, alternate)."""
    ordered = sorted(set(group), key=lambda s: _h(seed, kind, s))
    return {s: ("fit" if i % 2 == 0 else "held") for i, s in enumerate(ordered)}


def identity_side(identity: str, seed: int = SEED) -> str:
    return "fit" if _h(seed, "faces", identity) % 2 == 0 else "held"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return [{k: (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f)]


def plan(data: Path, *, limit: int | None = DEFAULT_LIMIT, casia_per_subject: int | None = None,
         frames_per_clip: int = FRAMES_PER_CLIP, seed: int = SEED) -> tuple[list[dict], dict]:  # fmt: skip
    """The work items (one per image or clip) and the split they were assigned to."""
    tasks: list[dict] = []
    split: dict[str, Any] = {"seed": seed}
    spoof = data / "spoof"
    if (spoof / "labels.csv").is_file():
        rows = _rows(spoof / "labels.csv")
        casia = [r for r in rows if r["subset"] == "casia_fasd"]
        sides = split_side([r["subject"] for r in casia], "casia", seed)
        split["casia_fasd_subjects"] = {s: sorted(k for k, v in sides.items() if v == s) for s in ("fit", "held")}
        taken: dict[tuple[str, str], int] = {}
        for r in rows:
            live = r["live"] == "1"
            if r["subset"] == "casia_fasd":
                n = taken.get((r["subject"], r["live"]), 0)
                if casia_per_subject is not None and n >= casia_per_subject:
                    continue
                taken[(r["subject"], r["live"])] = n + 1
                tasks.append({"type": "image", "path": str(spoof / r["file"]), "key": f"spoof/{r['file']}", "family": "shared",
                              "source": "casia_fasd", "pai": "bona_fide" if live else "casia_attack", "subject": f"casia/{r['subject']}",
                              "split": sides[r["subject"]], "synthetic_from": live})  # fmt: skip
            else:  # silentface: no subject id -> held out, never fitted
                tasks.append({"type": "image", "path": str(spoof / r["file"]), "key": f"spoof/{r['file']}", "family": "shared",
                              "source": r["subset"], "pai": "bona_fide" if live else f"{r['subset']}_attack", "subject": r["subset"],
                              "split": "held", "synthetic_from": False})  # fmt: skip
    video = data / "video"
    if frames_per_clip > 0 and (video / "labels.csv").is_file():
        rows = _rows(video / "labels.csv")
        kinds: dict[str, set[str]] = {}
        for r in rows:
            kinds.setdefault(r["subject"], set()).add(r["kind"])
        groups = {"replay": [], "deepfake": [], "live": []}
        for subj, ks in kinds.items():
            groups["replay" if "replay" in ks else "deepfake" if "deepfake" in ks else "live"].append(subj)
        sides = {}
        for g, subs in groups.items():
            sides |= split_side(subs, f"video-{g}", seed)
        split["video_subjects"] = {s: sorted(k for k, v in sides.items() if v == s) for s in ("fit", "held")}
        for r in rows:
            tasks.append({"type": "clip", "path": str(video / r["file"]), "key": f"video/{r['file']}", "family": "shared", "source": "video",
                          "pai": "bona_fide" if r["kind"] == "live" else f"video_{r['kind']}", "subject": f"video/{r['subject']}",
                          "split": sides[r["subject"]], "frames": frames_per_clip})  # fmt: skip
    faces = data / "faces"
    if limit and (faces / "identities.csv").is_file():
        rows = _rows(faces / "identities.csv")
        # every non-LFW photo (selfie-like, higher resolution), then LFW in seeded order, up to the limit
        others = sorted((r for r in rows if r["subset"] != "lfw"), key=lambda r: _h(seed, "pick", r["file"]))
        lfw = sorted((r for r in rows if r["subset"] == "lfw"), key=lambda r: _h(seed, "pick", r["file"]))
        chosen = (others + lfw)[:limit]
        for r in chosen:
            ident = f"{r['subset']}/{r['identity']}"
            tasks.append({"type": "image", "path": str(faces / r["file"]), "key": f"faces/{r['file']}", "family": "synthetic",
                          "source": f"faces/{r['subset']}", "pai": "bona_fide", "subject": ident, "split": identity_side(ident, seed),
                          "synthetic_from": True})  # fmt: skip
        split["faces"] = "identity-disjoint seeded hash of subset/identity; all non-LFW photos first, then LFW in seeded order"
    return tasks, split


# --- the worker -------------------------------------------------------------------------------------


def _init_worker() -> None:
    os.environ["IDPROOF_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)


def _measure(rgb: np.ndarray):
    """Raw cue scores of the largest face (and the peer's live probability), and that face."""
    from idproof.face.detect import detect_faces
    from idproof.liveness.passive import measure_all, passive_model_probabilities

    faces = detect_faces(rgb)
    if not faces:
        return {"face": False, "raw": None, "peer_live": None}, None
    face = faces[0]
    raw = measure_all(rgb, face)
    peer = float(passive_model_probabilities(rgb, face, channel_order="rgb")[0])  # as lib/fr_liveness.js feeds it
    return {"face": True, "raw": raw, "peer_live": peer, "face_px": round(float(max(face.width, face.height)), 1)}, face


def _load(path: str) -> np.ndarray:
    from idproof.imageio import load_image

    return load_image(path)


def run_task(task: dict, seed: int = SEED) -> list[dict]:
    """Evaluate one work item: an image (plus its synthetic attacks) or a clip's sampled frames."""
    import cv2

    from idproof.liveness.attacks import ATTACK_KINDS, attack_seed, make_attack

    base = {k: task[k] for k in ("key", "family", "source", "pai", "subject", "split")}
    out: list[dict] = []
    if task["type"] == "clip":
        cap = cv2.VideoCapture(task["path"])
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        for k in range(task["frames"]):
            idx = int((k + 0.5) * n / task["frames"])
            cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
            ok, frame = cap.read()
            if not ok:
                continue
            rgb = np.ascontiguousarray(frame[..., ::-1])
            out.append(base | {"key": f"{task['key']}#{idx}", "clip": task["key"], "synthetic": False} | _measure(rgb)[0])
        cap.release()
        return out
    rgb = _load(task["path"])
    measured, face = _measure(rgb)
    out.append(base | {"synthetic": False} | measured)
    if task.get("synthetic_from") and face is not None:
        for kind in ATTACK_KINDS:
            att = make_attack(rgb, kind, attack_seed(task["key"], kind, seed), face)
            out.append(base | {"family": "synthetic", "pai": kind, "synthetic": True, "key": f"{task['key']}>{kind}",
                               "params": att.params, "meant_cues": list(att.meant_cues)} | _measure(att.image)[0])  # fmt: skip
    return out


def collect(tasks: list[dict], *, workers: int | None = None, bar: Callable[[int, int], None] | None = None, seed: int = SEED) -> list[dict]:
    workers = workers if workers is not None else threads()
    records: list[dict] = []
    done = 0
    if workers <= 1:
        for t in tasks:
            records += run_task(t, seed)
            done += 1
            if bar:
                bar(done, len(tasks))
        return records
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        # clips and large photos first, so the pool does not end on one long item
        order = sorted(range(len(tasks)), key=lambda i: (tasks[i]["type"] != "clip",))
        futures = {pool.submit(run_task, tasks[i], seed): i for i in order}
        results: dict[int, list[dict]] = {}
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            done += 1
            if bar:
                bar(done, len(tasks))
    for i in range(len(tasks)):
        records += results[i]
    return records


# --- decisions --------------------------------------------------------------------------------------


def _cue_matrix(records: Sequence[dict], cues: Sequence[str]) -> np.ndarray:
    return np.array([[np.nan if r["raw"].get(c) is None else float(r["raw"][c]) for c in cues] for r in records], float).reshape(len(records), len(cues))


def decide_config(records: Sequence[dict], config: dict) -> tuple[np.ndarray, list[list[str]]]:
    """Per record (with a face): attack? and the cues that fired."""
    cues = list(config["thresholds"])
    m = _cue_matrix(records, cues)
    thr = np.array([config["thresholds"][c] for c in cues])
    fired = np.nan_to_num(m, nan=-np.inf) >= thr
    return fired.any(axis=1), [[c for c, f in zip(cues, row) if f] for row in fired]


def decide_peer(records: Sequence[dict]) -> np.ndarray:
    return np.array([r["peer_live"] < 0.5 for r in records], bool)


# --- fitting ----------------------------------------------------------------------------------------


def _threshold_at(bona_desc: np.ndarray, k: int, all_scores: np.ndarray) -> float:
    """Threshold rejecting exactly the k highest bona fide scores: midway between the highest bona fide
    score kept and the next higher score of any presentation."""
    if k >= bona_desc.size:
        below = bona_desc[-1] if bona_desc.size else 0.0
        lower = all_scores[all_scores < below]
        return float((below + lower.max()) / 2) if lower.size else float(below - 1.0)
    kept = bona_desc[k]
    above = all_scores[all_scores > kept]
    return float((kept + above.min()) / 2) if above.size else float(kept + 1e-6)


def fit_thresholds(bona: np.ndarray, attack: np.ndarray, weights: np.ndarray, cues: Sequence[str],
                   target_bpcer: float, groups: Sequence[str] | None = None, cue_caps: dict[str, float] | None = None,
                   max_step: int = 6) -> dict[str, float]:  # fmt: skip
    """Greedy per-cue thresholds for an OR-fusion: start every cue just above its highest bona fide score,
    then repeatedly let the cue reject a few more bona fide presentations where that buys the most
    (weighted) attacks per bona fide rejected, while the union stays within ``target_bpcer`` -- in
    every bona fide group (source) separately when ``groups`` are given -- and no cue alone rejects
    more than its ``cue_caps`` share of any group (so no single cue's tail is over-fitted)."""
    n = bona.shape[0]
    g = np.asarray(groups if groups is not None else ["all"] * n)
    names = sorted(set(g.tolist()))
    masks = [g == name for name in names]
    caps = [math.floor(target_bpcer * m.sum()) for m in masks]
    cue_caps = cue_caps or {}

    def within(rejected: np.ndarray, share: float = 1.0) -> bool:
        return all(int(rejected[m].sum()) <= min(c, math.floor(share * m.sum())) for m, c in zip(masks, caps))

    desc = [np.sort(bona[:, j][np.isfinite(bona[:, j])])[::-1] for j in range(len(cues))]
    every = [np.concatenate([bona[:, j], attack[:, j]]) for j in range(len(cues))]
    every = [e[np.isfinite(e)] for e in every]
    k = [0] * len(cues)
    thr = [_threshold_at(desc[j], 0, every[j]) for j in range(len(cues))]
    b = np.nan_to_num(bona, nan=-np.inf)
    a = np.nan_to_num(attack, nan=-np.inf)
    rej = (b >= np.array(thr)).any(axis=1)
    caught = (a >= np.array(thr)).any(axis=1)
    while True:
        best = None
        for j in range(len(cues)):
            for step in range(1, max_step + 1):
                kk = k[j] + step
                if kk > desc[j].size:
                    break
                t = _threshold_at(desc[j], kk, every[j])
                own = b[:, j] >= t
                new_rej = rej | own
                if not within(new_rej) or not within(own, cue_caps.get(cues[j], 1.0)):
                    break
                new_caught = caught | (a[:, j] >= t)
                gain = float(weights[new_caught & ~caught].sum())
                cost = int(new_rej.sum() - rej.sum())
                if gain <= 0:
                    continue
                ratio = gain / max(cost, 0.25)
                if best is None or ratio > best[0]:
                    best = (ratio, j, kk, t)
        if best is None:
            break
        _, j, kk, t = best
        k[j], thr[j] = kk, t
        rej |= b[:, j] >= t
        caught |= a[:, j] >= t
    return {c: float(t) for c, t in zip(cues, thr)}


def _spreads(bona: np.ndarray, cues: Sequence[str], thresholds: dict[str, float]) -> dict[str, float]:
    """Distance from the bona fide median to the threshold, per cue (the passive model's in logits)."""
    from idproof.liveness.passive import _logit

    out = {}
    for j, c in enumerate(cues):
        v = bona[:, j][np.isfinite(bona[:, j])]
        med = float(np.median(v)) if v.size else 0.0
        t = thresholds[c]
        d = abs(_logit(t) - _logit(med)) if c == "passive_model" else abs(t - med)
        out[c] = float(max(d, 1e-3))
    return out


def _bona_group(r: dict) -> str:
    """Bona fide source group for the per-group BPCER limit: casia_fasd, video, faces, ..."""
    return r["source"].split("/")[0]


def fit_calibration(records: Sequence[dict], *, target_bpcer: float = TARGET_BPCER_FIT, cue_cap: float = CUE_CAP_FIT,
                    split: dict | None = None, command: str = "") -> dict:  # fmt: skip
    """The pad-calibration.json content, fitted on the fit side of ``records`` only."""
    from idproof.face.models import MODELS
    from idproof.liveness import forensic
    from idproof.liveness.passive import CROP_SCALE, INPUT_SIZE

    fit = [r for r in records if r["split"] == "fit" and r["face"]]
    bona = [r for r in fit if r["pai"] == "bona_fide"]
    att = [r for r in fit if r["pai"] in FIT_PAI]
    types = sorted({r["pai"] for r in att})
    per_type = {t: sum(r["pai"] == t for r in att) for t in types}
    weights = np.array([1.0 / (len(types) * per_type[r["pai"]]) for r in att])
    configs = {}
    for name, cues in CONFIGURATIONS.items():
        B, A = _cue_matrix(bona, cues), _cue_matrix(att, cues)
        caps = {c: (target_bpcer if c == "passive_model" else cue_cap * CUE_CAP_SCALE.get(c, 1.0)) for c in cues} if len(cues) > 1 else None
        thresholds = fit_thresholds(B, A, weights, cues, target_bpcer, groups=[_bona_group(r) for r in bona], cue_caps=caps)
        conf = {"cues": list(cues), "thresholds": thresholds, "spreads": _spreads(B, cues, thresholds)}
        is_att, _ = decide_config(bona, conf)
        caught, _ = decide_config(att, conf)
        conf["fit_figures"] = {
            "bpcer": round(float(is_att.mean()), 4),
            "apcer": {t: round(float(1 - caught[[r["pai"] == t for r in att]].mean()), 4) for t in types},
        }
        configs[name] = conf
    today = date.today().isoformat()
    m = MODELS["faceplugin_liveness"]
    return {
        "format": "idproof.pad-calibration/1",
        "version": f"pad-{today}-s{SEED}-b{round(target_bpcer * 100)}",
        "created": today,
        "default_configuration": "fused",
        "passive_model": {
            "model": m.name, "package": m.package, "sha256": m.sha256, "crop_scale": CROP_SCALE, "input_size": INPUT_SIZE,
            "channel_order": "bgr", "normalisation": "none: raw 0-255 float32, NCHW", "live_class": 0,
            "score": "1 - softmax[0] (spoof probability)",
        },
        "forensic_parameters": {k: getattr(forensic, k) for k in dir(forensic) if k.isupper() and isinstance(getattr(forensic, k), (int, float))
                                or k == "SHARP_RING"},
        "configurations": configs,
        "fit": {
            "target_bpcer": target_bpcer,
            "cue_cap": {c: round(cue_cap * CUE_CAP_SCALE.get(c, 1.0), 4) for c in CONFIGURATIONS["forensic"]},
            "rule": "OR of per-cue thresholds, fitted greedily on the fit split (see idproof.bench.liveness.fit_thresholds); "
                    "BPCER <= target in every bona fide source group (casia_fasd, video, faces) separately, "
                    "each forensic cue alone <= cue_cap of every group; "
                    "attack types weighted equally; deepfakes and Silent-Face never used",
            "attack_types": per_type,
            "bona_fide": len(bona),
            "bona_fide_sources": {s: sum(r["source"] == s for r in bona) for s in sorted({r["source"] for r in bona})},
            "split": split or {},
            "command": command,
        },
    }


# --- figures ----------------------------------------------------------------------------------------


def _rate(k: int, n: int) -> dict[str, Any]:
    from idproof.face.metrics import fmr_confidence_interval

    if n == 0:
        return {"rate": None, "errors": 0, "n": 0, "ci95": None}
    lo, hi = fmr_confidence_interval(k, n)
    return {"rate": round(k / n, 4), "errors": int(k), "n": int(n), "ci95": [round(lo, 4), round(hi, 4)]}


def figures(records: Sequence[dict], decided: np.ndarray, reasons: list[list[str]] | None) -> dict[str, Any]:
    """BPCER and APCER per attack type over ``records`` (with a face), and how many had no face."""
    out: dict[str, Any] = {}
    order = list(PAI_TEXT)
    pais = sorted({r["pai"] for r in records} - {"bona_fide"}, key=lambda p: (order.index(p) if p in order else len(order), p))
    face = np.array([r["face"] for r in records], bool)
    for pai in ["bona_fide", *pais]:
        sel = np.array([r["pai"] == pai for r in records], bool)
        with_face = sel & face
        if pai == "bona_fide":
            k = int(decided[with_face].sum())
        else:
            k = int((~decided[with_face]).sum())
        entry = _rate(k, int(with_face.sum())) | {"no_face": int((sel & ~face).sum())}
        subjects = {records[i]["subject"] for i in np.flatnonzero(with_face)}
        clips = {records[i].get("clip") for i in np.flatnonzero(with_face)} - {None}
        entry["subjects"] = len(subjects)
        if clips:
            entry["clips"] = len(clips)
        if reasons is not None and pai != "bona_fide":
            cnt: dict[str, int] = {}
            for i in np.flatnonzero(with_face):
                for c in reasons[i]:
                    cnt[c] = cnt.get(c, 0) + 1
            entry["fired"] = cnt
        if pai == "bona_fide" and reasons is not None:
            cnt = {}
            for i in np.flatnonzero(with_face):
                for c in reasons[i]:
                    cnt[c] = cnt.get(c, 0) + 1
            entry["rejected_by"] = cnt
        out["bpcer" if pai == "bona_fide" else pai] = entry
    return out


def _evaluate(records: list[dict], cal: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    idx_face = [i for i, r in enumerate(records) if r["face"]]
    for name in (*CONFIGURATIONS, PEER):
        if name == PEER:
            dec = np.zeros(len(records), bool)
            dec[idx_face] = decide_peer([records[i] for i in idx_face])
            why = None
        else:
            conf = cal["configurations"][name]
            dec = np.zeros(len(records), bool)
            why: list[list[str]] | None = [[] for _ in records]
            d, w = decide_config([records[i] for i in idx_face], conf)
            dec[idx_face] = d
            for i, ww in zip(idx_face, w):
                why[i] = ww
        per: dict[str, Any] = {}
        for family in ("shared", "synthetic"):
            fam = [i for i, r in enumerate(records) if r["family"] == family]
            if not fam:
                continue
            for split in ("held", "all"):
                sel = [i for i in fam if split == "all" or records[i]["split"] == "held"]
                recs = [records[i] for i in sel]
                per.setdefault(family, {})[split] = figures(recs, dec[sel], [why[i] for i in sel] if why is not None else None)
        out[name] = per
    return out


def _meant_cue_rates(records: list[dict], cal: dict, split: str = "held") -> dict[str, Any]:
    """Synthetic attacks: share flagged by each cue (at the fused thresholds), per attack kind."""
    conf = cal["configurations"]["fused"]
    out: dict[str, Any] = {}
    for kind in ("screen", "print", "warped_photo", "screen+glare"):
        base = "screen" if kind == "screen+glare" else kind
        recs = [r for r in records if r["family"] == "synthetic" and r["pai"] == base and r["face"] and r["split"] == split
                and (kind != "screen+glare" or r["params"].get("glare"))]  # fmt: skip
        if not recs:
            continue
        _, why = decide_config(recs, conf)
        out[kind] = {"n": len(recs)} | {c: round(sum(c in w for w in why) / len(recs), 4) for c in conf["thresholds"]}
    return out


def run(data: str | os.PathLike, *, limit: int | None = DEFAULT_LIMIT, casia_per_subject: int | None = None,
        frames_per_clip: int = FRAMES_PER_CLIP, workers: int | None = None, write_calibration: str | os.PathLike | None = None,
        target_bpcer: float = TARGET_BPCER_FIT, progress: bool = False) -> dict:  # fmt: skip
    """Run the liveness bench; returns the `--json` object (and prints the tables with ``progress``)."""
    from idproof.liveness.passive import shipped_calibration, shipped_calibration_path

    data = Path(data)
    tasks, split = plan(data, limit=limit, casia_per_subject=casia_per_subject, frames_per_clip=frames_per_clip)
    if not tasks:
        from idproof.errors import IdproofError

        raise IdproofError(f"No liveness data under {data} (expected spoof/, video/ and faces/).", fix="Point --data at shared/data.")
    bar_ctx = None
    bar = None
    if progress:
        from rich.progress import Progress

        bar_ctx = Progress(transient=True)
        bar_ctx.start()
        task_id = bar_ctx.add_task("liveness bench", total=len(tasks))

        def bar(done: int, total: int) -> None:
            bar_ctx.update(task_id, completed=done, total=total)

    try:
        records = collect(tasks, workers=workers, bar=bar)
    finally:
        if bar_ctx is not None:
            bar_ctx.stop()

    written = None
    if write_calibration is not None:
        cmd = "idproof bench liveness --write-calibration " + str(write_calibration) + (f" --limit {limit}" if limit != DEFAULT_LIMIT else "")
        cal = fit_calibration(records, target_bpcer=target_bpcer, split=split, command=cmd)
        Path(write_calibration).write_text(json.dumps(cal, indent=2) + "\n")
        written = str(write_calibration)
        source = f"fitted in this run on the fit split, written to {write_calibration}"
    else:
        cal = shipped_calibration()
        source = f"shipped {shipped_calibration_path().name}"
    result = report(records, split, cal, source=source, written=written, data=data, limit=limit, frames_per_clip=frames_per_clip)
    if progress:
        print_human(result)
    return result


def report(records: list[dict], split: dict, cal: dict, *, source: str, written: str | None = None, data: Path | str = "",
           limit: int | None = None, frames_per_clip: int = FRAMES_PER_CLIP) -> dict:  # fmt: skip
    """The result object for measured ``records`` under calibration ``cal``."""
    cal_split = cal.get("fit", {}).get("split", {})
    same_split = all(cal_split.get(k) == v for k, v in split.items() if k in ("casia_fasd_subjects", "video_subjects", "seed"))

    results = _evaluate(records, cal)
    fused = results["fused"]
    goals: dict[str, Any] = {}
    for family in ("shared", "synthetic"):
        f = fused.get(family, {}).get("held")
        if not f:
            continue
        goals[family] = {
            f"bpcer_le_{GOAL_BPCER}": f["bpcer"]["rate"] is not None and f["bpcer"]["rate"] <= GOAL_BPCER,
            **{f"apcer_0_{p}": f[p]["rate"] == 0 for p in GOAL_PAI if p in f and f[p]["n"]},
            **({"apcer_0_real_print_screen_replay": all(f[p]["rate"] == 0 for p in ("casia_attack", "video_replay", "silentface_attack") if p in f and f[p]["n"])}
               if family == "shared" else {}),
        }  # fmt: skip

    def _ratio(a, b):
        return None if a is None or b in (None, 0) else round(a / b, 3)

    ratios: dict[str, Any] = {}
    for family in ("shared", "synthetic"):
        f, p = fused.get(family, {}).get("held"), results[PEER].get(family, {}).get("held")
        if not f:
            continue
        attacks = [k for k in f if k != "bpcer" and f[k]["n"] and k != "video_deepfake"]
        mean_f = float(np.mean([f[k]["rate"] for k in attacks])) if attacks else None
        mean_p = float(np.mean([p[k]["rate"] for k in attacks])) if attacks else None
        ratios[family] = {"bpcer_fused_over_peer": _ratio(f["bpcer"]["rate"], p["bpcer"]["rate"]),
                          "mean_apcer_fused_over_peer": _ratio(mean_f, mean_p),
                          "mean_apcer_fused": None if mean_f is None else round(mean_f, 4),
                          "mean_apcer_peer": None if mean_p is None else round(mean_p, 4)}  # fmt: skip

    n_face = sum(r["face"] for r in records)
    counts = {
        "presentations": len(records), "with_face": n_face,
        "by_family_split_pai": {},
        "synthetic": sum(r["synthetic"] for r in records),
    }  # fmt: skip
    for r in records:
        key = f"{r['family']}/{r['split']}/{r['pai']}"
        counts["by_family_split_pai"][key] = counts["by_family_split_pai"].get(key, 0) + 1
    notes = [
        (f"Thresholds: {source} (version {cal.get('version')}); fitted on the FIT split only "
         f"({cal.get('fit', {}).get('bona_fide')} bona fide, attacks {cal.get('fit', {}).get('attack_types')}; target fused BPCER "
         f"{cal.get('fit', {}).get('target_bpcer')}). Headline figures are on the HELD-OUT split: CASIA subjects "
         f"{split.get('casia_fasd_subjects', {}).get('held')}, video subjects {split.get('video_subjects', {}).get('held')}, "
         "held-out face identities (seeded hash), Silent-Face (never fitted)."),
        *([] if same_split else ["WARNING: this run's split differs from the one the calibration was fitted on: held-out figures may be in-sample."]),
        "'all' figures include the fit split and are partly in-sample.",
        ("Synthetic attacks (screen, print, warped_photo) are made by idproof.liveness.attacks from live faces; the forensic cues "
         "were designed with the same physical effects in mind, so synthetic APCER is an optimistic check of each cue, not a field rate."),
        f"Peer {PEER}: fr_liveness.onnx exactly as lib/fr_liveness.js runs it (2.7x crop, 128x128, raw 0-255, RGB, live iff softmax[0] >= 0.5).",
        "Passive model in idproof: the same crop and normalisation, but BGR channel order (the JS's RGB is near chance on CASIA; see passive.py).",
        "A presentation where no face is found is counted as no_face and left out of the rates (the pipeline refuses it before PAD).",
        "Frames of one clip and crops of one CASIA subject are correlated: the Clopper-Pearson intervals are optimistic for those rows.",
        "CASIA-FASD ClientFace/0007 holds more than one person (checked by eye); CASIA attack crops have no attack-type label.",
    ]  # fmt: skip
    result = {
        "bench": "liveness",
        "data": str(data),
        "limit": limit,
        "frames_per_clip": frames_per_clip,
        "counts": counts,
        "calibration": {"source": source, "version": cal.get("version"), "written": written,
                        "thresholds": {k: v["thresholds"] for k, v in cal["configurations"].items()},
                        "fit": {k: v for k, v in cal.get("fit", {}).items() if k != "split"}, "split": split},
        "idproof": {"configuration": "fused", "calibration": cal.get("version")} | fused,
        "configurations": {k: results[k] for k in CONFIGURATIONS},
        "peers": {PEER: results[PEER]},
        "ratios": ratios,
        "goals": goals,
        "synthetic_cue_rates_held": _meant_cue_rates(records, cal),
        "pai_species": {k: v for k, v in PAI_TEXT.items()},
        "notes": notes,
    }
    return result


# --- human output -----------------------------------------------------------------------------------


def _cell(f: dict | None) -> str:
    if not f or f["rate"] is None:
        return "—"
    lo, hi = f["ci95"]
    return f"{f['rate'] * 100:.1f}% ({f['errors']}/{f['n']})\n[{lo * 100:.1f}–{hi * 100:.1f}]"


def print_human(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    names = [*CONFIGURATIONS, PEER]
    per = {n: result["configurations"].get(n) or result["peers"].get(n) for n in names}
    for family in ("shared", "synthetic"):
        for split in ("held", "all"):
            rows = per["fused"].get(family, {}).get(split)
            if not rows:
                continue
            title = (f"idproof bench liveness — {family.upper()} data ({'synthetic attacks' if family == 'synthetic' else 'real'}), "
                     f"{'HELD-OUT split' if split == 'held' else 'all data (fit split in-sample)'} — error rate (errors/n) [95 % CI]")  # fmt: skip
            t = Table(title=title, title_justify="left")
            t.add_column("metric / attack type (PAI species)", justify="left")
            t.add_column("subj.", justify="right")
            for n in names:
                t.add_column(n + (" (peer)" if n == PEER else " (shipped)" if n == "fused" else ""), justify="right")
            for key in rows:
                label = "BPCER (bona fide)" if key == "bpcer" else f"APCER {key}" + (" [SYNTHETIC]" if key in GOAL_PAI else "")
                nf = rows[key].get("no_face")
                label += f"\n{nf} without a face" if nf else ""
                sub = str(rows[key].get("subjects", "")) + (f"/{rows[key]['clips']}c" if rows[key].get("clips") else "")
                t.add_row(label, sub, *(_cell(per[n].get(family, {}).get(split, {}).get(key)) for n in names))
            console.print(t)
    cr = result.get("synthetic_cue_rates_held")
    if cr:
        t = Table(title="Held-out synthetic attacks: share flagged by each cue (fused thresholds)", title_justify="left")
        cues = [c for c in next(iter(cr.values())) if c != "n"]
        t.add_column("attack")
        t.add_column("n", justify="right")
        for c in cues:
            t.add_column(c, justify="right")
        for k, v in cr.items():
            t.add_row(k, str(v["n"]), *(f"{v[c] * 100:.0f}%" for c in cues))
        console.print(t)
    console.print("[bold]Thresholds[/bold] (" + result["calibration"]["source"] + ")")
    for name, th in result["calibration"]["thresholds"].items():
        console.print(f"  {name}: " + ", ".join(f"{c} {v:.4g}" for c, v in th.items()))
    console.print("[bold]Goals (fused, held-out)[/bold]")
    for fam, g in result["goals"].items():
        console.print(f"  {fam}: " + ", ".join(f"{k} {'[green]yes[/green]' if v else '[red]no[/red]'}" for k, v in g.items()))
    for n in result["notes"]:
        console.print(f"[yellow]- {n}[/yellow]" if n.startswith("WARNING") else f"[dim]- {n}[/dim]")
