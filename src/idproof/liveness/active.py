"""Active liveness on a frame sequence: were the requested actions made, in order and in time, by one
and the same real (three-dimensional) face?

Per analysed frame: MediaPipe FaceLandmarker (blendshapes + pose matrix) on a crop around the face;
RetinaFace every ``redetect_every`` frames, the previous mesh tracking the face in between. Measured on
the shared clips (2-core x86 CPU): 18-35 ms per analysed frame, ~25 ms typical at 640x360; a 10 s
capture at 10 fps costs ~2.5 s of signals plus ~0.4-1 s for the same-face embeddings.

- blink       ← min(eyeBlinkLeft, eyeBlinkRight)  (both eyes: a one-eye wink is not a blink)
- smile       ← mean(mouthSmileLeft, mouthSmileRight)
- mouth_open  ← jawOpen
- turn_left / turn_right ← head yaw from the facial transformation matrix, relative to the sequence's
  median yaw. ``turn_left`` is the person turning to *their* left, which in an unmirrored camera image
  moves the nose towards the image right (yaw > 0, see face/mesh.py). Frames must be sent unmirrored
  (a canvas ``drawImage`` of the camera is; a CSS-mirrored preview does not matter); ``mirrored=True``
  swaps the two for mirrored sources.

Each signal becomes events with hysteresis (enter above a high threshold relative to the person's own
baseline, leave below a lower one), so sensor noise around one threshold cannot make a string of
events. The requested actions are then matched in order, each inside its time window.

Same face: a few frames spread over the sequence (and both sides of any cut, i.e. a sudden whole-
frame change) are embedded by the face engine and compared 1:1 with each other and with the document
portrait, never with anything stored. ``liveness:face_changed`` when two good frames do not match at
the calibrated threshold (or, where a frame failed the quality gate, score below the calibration's
loosest threshold), or when some good frames match the portrait and others clearly do not.

Physical plausibility (``liveness:flat_motion``): every frame's 468 landmarks are compared with the most
frontal frame's. A flat picture, however it is tilted or warped in 2D, moves its points by a
homography (a plane seen from another angle). A real head that turns moves the nose tip against the
cheek contour (parallax), which no homography explains. So per frame: D = landmark motion left after
removing a similarity (shift, rotation, scale), R = motion left after the best homography, both in
inter-ocular distances. ``parallax`` = median R/D over the frames with the most non-rigid motion.
Measured on the shared clips: real turning / talking / smiling faces 0.67-0.83 (all 15 clips, replays of
a moving phone included), still photos turned by a perspective warp 0.25-0.45; threshold 0.5.
With too little motion (D < ``min_deformation``) nothing is concluded (``parallax`` is None).

The passive PAD (``idproof.liveness.passive``, when installed) runs on a few frames; a majority verdict
of "attack" adds its cues as findings.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from idproof._timing import ms_since
from idproof.decision import Finding, finding
from idproof.face.types import DetectedFace, FaceMesh
from idproof.liveness.challenge import ACTIONS, ActionStep, Challenge
from idproof.liveness.frames import Frame, FrameSequence
from idproof.reasons import Reason

__all__ = ["ActionEvent", "ActiveChecker", "FrameSignals", "LivenessPolicy", "LivenessResult", "detect_events", "flat_turn_frames", "match_actions"]

# MediaPipe face-mesh indices
_LEFT_EYE_OUTER, _RIGHT_EYE_OUTER = 33, 263
_EYE_A = (33, 133, 159, 145)  # image-left eye: corners and lids
_EYE_B = (263, 362, 386, 374)
_NOSE_TIP, _MOUTH_L, _MOUTH_R = 1, 61, 291
_CONTOUR_L, _CONTOUR_R = 234, 454


@dataclass(frozen=True)
class LivenessPolicy:
    """Thresholds of the active check. Event thresholds are on the person's own baseline (a low
    percentile of the sequence), so glasses or a resting smile do not count as an action."""

    analysis_fps: float = 15.0  # frames closer together than this are skipped
    max_analysed: int = 300
    redetect_every: int = 5  # RetinaFace every n-th analysed frame; the mesh tracks in between
    min_frames: int = 8  # analysed frames with a face mesh, below which nothing is judged
    # (enter above baseline, leave below baseline, absolute floor on enter)
    blink: tuple[float, float, float] = (0.30, 0.12, 0.40)
    smile: tuple[float, float, float] = (0.35, 0.15, 0.45)
    mouth_open: tuple[float, float, float] = (0.25, 0.10, 0.30)
    # enter / leave, |yaw - median yaw|: talking heads in the shared clips swing up to 20 deg; a turn
    # made on request reached 44-54 deg (antispoof-zubair_real)
    turn_deg: tuple[float, float] = (25.0, 12.0)
    second_face_area: float = 0.15  # another face at least this fraction of the main face's area counts
    multi_face_frames: float = 0.1  # ... in more than this fraction of the detection frames → multiple_faces
    window_slack_ms: float = 300.0  # an action may start this much before its window opens (reaction jitter)
    same_face_samples: int = 6
    min_deformation: float = 0.025  # D below which motion is too small to judge flatness
    flat_parallax: float = 0.5  # parallax below this with enough motion → flat_motion
    pad_frames: int = 5  # passive PAD verdict: the majority of this many frames
    # The PAD configuration for camera streams: the forensic cues alone. The passive model (in "fused")
    # calls 34 of 50 frames of the one live webcam clip in the shared data a spoof (antispoof-zubair_real,
    # scores 0.97-0.999), and what it catches better than the cues (held-up photos, CASIA-style) cannot
    # act the challenge in 3-D here. Single selfies, which have no challenge, use "fused" (api.Verifier).
    pad_configuration: str = "forensic"


@dataclass(frozen=True)
class FrameSignals:
    index: int  # position in the analysed sequence
    frame_index: int  # the source's frame number
    t_ms: float  # relative to the first frame
    faces: int | None  # substantial faces the detector found (None: tracked, not detected)
    yaw: float
    pitch: float
    blink: float
    smile: float
    jaw: float
    points: np.ndarray = field(repr=False)  # (468, 2) float32
    face: DetectedFace = field(repr=False)
    sharpness: float = 0.0  # variance of the Laplacian on the face, scaled to 112 px (motion blur → low)


@dataclass(frozen=True)
class ActionEvent:
    action: str
    onset_ms: float
    peak_ms: float
    end_ms: float | None  # None: still in the action when the sequence ended
    peak: float  # blendshape score, or |yaw change| in degrees for turns


@dataclass(frozen=True)
class LivenessResult:
    passed: bool
    findings: tuple[Finding, ...]
    actions_seen: tuple[ActionEvent, ...]
    same_face_min_score: float | None
    parallax: float | None
    frames_used: int
    timings_ms: dict[str, float]
    requested: tuple[str, ...] = ()
    actions_matched: tuple[ActionEvent | None, ...] = ()
    portrait_scores: tuple[float, ...] = ()
    cues: dict[str, float] = field(default_factory=dict)
    pad: dict[str, Any] = field(default_factory=dict)
    best_frame_index: int | None = None
    selfie: Any = field(default=None, repr=False)  # FaceSample of the best frame (template in memory only)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.reason for f in self.findings)

    def summary(self) -> dict[str, float]:
        """Numbers for a decision record (no images, no templates)."""
        out = {"frames_used": float(self.frames_used), "passed": float(self.passed)}
        if self.same_face_min_score is not None:
            out["same_face_min_score"] = round(self.same_face_min_score, 4)
        if self.portrait_scores:
            out["portrait_min_score"] = round(min(self.portrait_scores), 4)
        if self.parallax is not None:
            out["parallax"] = round(self.parallax, 4)
        out.update({k: round(v, 4) for k, v in self.cues.items()})
        return out


# --- per-frame signals ------------------------------------------------------------------------------


def _box_from_mesh(points: np.ndarray, score: float = 1.0) -> DetectedFace:
    """A detector-like box from the previous mesh (measured on the shared clips: the RetinaFace box is
    0.99x the mesh width, 1.15x its height, centred 6 % higher)."""
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    w, h = float(x1 - x0), float(y1 - y0)
    bw, bh = 0.99 * w, 1.15 * h
    cx, cy = float(x0 + x1) / 2, float(y0 + y1) / 2 - 0.06 * h
    lm = np.array([points[list(_EYE_A)].mean(0), points[list(_EYE_B)].mean(0), points[_NOSE_TIP], points[_MOUTH_L], points[_MOUTH_R]], dtype=np.float32)
    return DetectedFace(cx - bw / 2, cy - bh / 2, bw, bh, score, lm)


def _face_sharpness(rgb: np.ndarray, pts: np.ndarray) -> float:
    h, w = rgb.shape[:2]
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0
    gray = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (112, max(8, round(112 * (y1 - y0) / (x1 - x0)))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def _mirror_yaw(yaw: float, mirrored: bool) -> float:
    return -yaw if mirrored else yaw


def select_frames(frames: Sequence[Frame], policy: LivenessPolicy) -> list[Frame]:
    """At most ``analysis_fps`` frames per second and ``max_analysed`` in all (evenly thinned)."""
    gap = 1000.0 / policy.analysis_fps if policy.analysis_fps else 0.0
    kept: list[Frame] = []
    for f in frames:
        if not kept or f.t_ms - kept[-1].t_ms >= gap - 1.0:
            kept.append(f)
    if len(kept) > policy.max_analysed:
        idx = np.linspace(0, len(kept) - 1, policy.max_analysed).round().astype(int)
        kept = [kept[i] for i in idx]
    return kept


def extract_signals(frames: Sequence[Frame], policy: LivenessPolicy, *, mirrored: bool = False) -> list[FrameSignals]:
    from idproof.face.detect import detect_faces
    from idproof.face.mesh import MeshModel

    model = MeshModel.shared()
    out: list[FrameSignals] = []
    track: np.ndarray | None = None
    t0 = frames[0].t_ms if frames else 0.0
    for i, fr in enumerate(frames):
        faces_n = None
        mesh: FaceMesh | None = None
        face: DetectedFace | None = None
        if track is not None and i % policy.redetect_every:
            face = _box_from_mesh(track)
            mesh = model.analyze(fr.rgb, face)
        if mesh is None:  # detection frame, no track, or the track was lost
            faces = detect_faces(fr.rgb)
            faces_n = sum(1 for f in faces if f.area >= policy.second_face_area * faces[0].area)
            if faces:
                face = faces[0]
                mesh = model.analyze(fr.rgb, face)
        if mesh is None or face is None:
            track = None
            continue
        pts = mesh.points[:468]
        track = pts
        sharp = _face_sharpness(fr.rgb, pts)
        b = mesh.blendshapes
        out.append(
            FrameSignals(
                index=i,
                frame_index=fr.index,
                t_ms=fr.t_ms - t0,
                faces=faces_n,
                yaw=_mirror_yaw(mesh.yaw_deg, mirrored),
                pitch=mesh.pitch_deg,
                blink=min(b.get("eyeBlinkLeft", 0.0), b.get("eyeBlinkRight", 0.0)),
                smile=(b.get("mouthSmileLeft", 0.0) + b.get("mouthSmileRight", 0.0)) / 2,
                jaw=b.get("jawOpen", 0.0),
                points=pts.astype(np.float32),
                face=face if faces_n is not None else _box_from_mesh(pts),
                sharpness=sharp,
            )
        )
    return out


# --- events -----------------------------------------------------------------------------------------


def _hysteresis(ts: np.ndarray, values: np.ndarray, enter: float, leave: float, action: str) -> list[ActionEvent]:
    events: list[ActionEvent] = []
    on = False
    onset = peak_t = 0.0
    peak = -math.inf
    for t, v in zip(ts, values):
        if not on and v >= enter:
            on, onset, peak_t, peak = True, float(t), float(t), float(v)
        elif on:
            if v > peak:
                peak, peak_t = float(v), float(t)
            if v <= leave:
                events.append(ActionEvent(action, onset, peak_t, float(t), peak))
                on = False
    if on:
        events.append(ActionEvent(action, onset, peak_t, None, peak))
    return events


def baselines(sig: Sequence[FrameSignals]) -> dict[str, float]:
    """The person's resting level of each signal: a low percentile (most of a challenge clip is rest)."""
    a = np.array([[s.blink, s.smile, s.jaw, s.yaw] for s in sig], dtype=np.float64)
    return {
        "blink": float(np.percentile(a[:, 0], 25)),
        "smile": float(np.percentile(a[:, 1], 25)),
        "jaw": float(np.percentile(a[:, 2], 25)),
        "yaw": float(np.median(a[:, 3])),
    }


def detect_events(sig: Sequence[FrameSignals], policy: LivenessPolicy | None = None) -> list[ActionEvent]:
    """All action events in the sequence, in onset order."""
    policy = policy or LivenessPolicy()
    if not sig:
        return []
    base = baselines(sig)
    ts = np.array([s.t_ms for s in sig])
    events: list[ActionEvent] = []
    for action, key, (rise, fall, floor) in (
        ("blink", "blink", policy.blink),
        ("smile", "smile", policy.smile),
        ("mouth_open", "jaw", policy.mouth_open),
    ):
        v = np.array([getattr(s, key) for s in sig])
        enter = max(base[key] + rise, floor)
        events += _hysteresis(ts, v, enter, min(base[key] + fall, enter - 0.05), action)
    yaw = np.array([s.yaw for s in sig]) - base["yaw"]
    enter, leave = policy.turn_deg
    events += _hysteresis(ts, yaw, enter, leave, "turn_left")
    events += _hysteresis(ts, -yaw, enter, leave, "turn_right")
    return sorted(events, key=lambda e: (e.onset_ms, e.action))


def match_actions(events: Sequence[ActionEvent], steps: Sequence[ActionStep], policy: LivenessPolicy | None = None) -> list[ActionEvent | None]:
    """For each requested step in order, the first event of that action that starts after the previous
    matched one and inside the step's window (``start_ms - slack`` to ``end_ms``); None where none does."""
    policy = policy or LivenessPolicy()
    matched: list[ActionEvent | None] = []
    after = -math.inf
    used: set[int] = set()
    for step in steps:
        hit = None
        for k, e in enumerate(events):
            if k in used or e.action != step.action or e.onset_ms <= after:
                continue
            if e.onset_ms < step.start_ms - policy.window_slack_ms or e.onset_ms > step.end_ms:
                continue
            hit = k
            break
        if hit is None:
            matched.append(None)
        else:
            used.add(hit)
            matched.append(events[hit])
            after = events[hit].onset_ms
    return matched


# --- flatness ---------------------------------------------------------------------------------------


def planar_motion(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """(D, R) of ``cur`` against ``ref`` landmarks, in inter-ocular distances: D = RMS motion left after
    the best similarity transform, R = RMS motion left after the best homography (what a plane cannot do)."""
    p0 = ref.astype(np.float64)
    p1 = cur.astype(np.float64)
    iod = float(np.linalg.norm(p0[_LEFT_EYE_OUTER] - p0[_RIGHT_EYE_OUTER])) or 1.0
    s, _ = cv2.estimateAffinePartial2D(p0, p1, ransacReprojThreshold=1e9)
    if s is None:
        return 0.0, 0.0
    d = float(np.sqrt((((p0 @ s[:, :2].T + s[:, 2]) - p1) ** 2).sum(1).mean())) / iod
    h, _ = cv2.findHomography(p0, p1, 0)
    if h is None:
        return d, d
    r = float(np.sqrt(((cv2.perspectiveTransform(p0[None], h)[0] - p1) ** 2).sum(1).mean())) / iod
    return d, r


def flatness(sig: Sequence[FrameSignals], policy: LivenessPolicy) -> tuple[float | None, dict[str, float]]:
    """(parallax, cues). parallax is None when the face hardly moved (nothing to judge)."""
    if len(sig) < 2:
        return None, {}
    ref = min(sig, key=lambda s: abs(s.yaw) + abs(s.pitch))
    dr = np.array([planar_motion(ref.points, s.points) for s in sig if s is not ref])
    # the nose tip against the cheek contour, the parallax a turning head shows most plainly
    nose = np.array([(s.points[_NOSE_TIP, 0] - s.points[_CONTOUR_L, 0]) / max(s.points[_CONTOUR_R, 0] - s.points[_CONTOUR_L, 0], 1e-6) for s in sig])
    cues = {
        "deformation_max": float(dr[:, 0].max()),
        "planar_residual_max": float(dr[:, 1].max()),
        "nose_offset_range": float(nose.max() - nose.min()),
    }
    moving = dr[dr[:, 0] >= policy.min_deformation]
    if len(moving) < 2:
        return None, cues
    top = moving[np.argsort(-moving[:, 0])[:5]]
    return float(np.median(top[:, 1] / top[:, 0])), cues


# --- cuts (for same-face sampling) ------------------------------------------------------------------


def _thumb(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def find_cuts(frames: Sequence[Frame]) -> list[int]:
    """Positions i where frame i differs from frame i-1 far more than neighbouring frames usually do
    (an edit, a spliced-in sequence)."""
    if len(frames) < 3:
        return []
    th = [_thumb(f.rgb) for f in frames]
    diffs = np.array([float(np.abs(a - b).mean()) for a, b in itertools.pairwise(th)])
    # Measured on 32x32 grey thumbnails of the shared clips at 10 fps: consecutive frames of one clip
    # differ by a median 0.5-14 and at most 39 grey levels (a phone waved about); frames from two
    # different clips by 54-66.
    limit = float(np.clip(6.0 * float(np.median(diffs)), 25.0, 45.0))
    return [i + 1 for i, d in enumerate(diffs) if d > limit]


# --- the check --------------------------------------------------------------------------------------


class ActiveChecker:
    """Runs the active liveness check. Give it the verifier's engine, scorer and threshold so the same
    calibrated 1:1 comparison is used; standalone it loads the default ones."""

    def __init__(
        self,
        engine=None,
        scorer=None,
        threshold: float | None = None,
        policy: LivenessPolicy | None = None,
        *,
        lenient_threshold: float | None = None,
        pad: Any = "auto",
    ) -> None:
        """``threshold``: the calibrated 1:1 threshold (two good frames below it are different people).
        ``lenient_threshold``: the one for pairs where a frame failed the quality gate (blurred, turned,
        covered): only a score below this, the calibration's loosest (highest-FMR) threshold, counts as a
        different face there; by default the calibration's FMR 1e-2 threshold."""
        if engine is None or scorer is None or threshold is None or lenient_threshold is None:
            from idproof.calibration import shipped_calibration
            from idproof.face.compare import DEFAULT_PROFILE, Scorer
            from idproof.face.engine import FaceEngine

            engine = engine or FaceEngine(DEFAULT_PROFILE)
            cal = shipped_calibration(engine.profile)
            scorer = scorer or Scorer(engine.models, cal.normalization, cal.fusion_weights)
            threshold = threshold if threshold is not None else cal.threshold_at(cal.default_fmr).threshold
            if lenient_threshold is None:
                lenient_threshold = min(t.threshold for t in cal.thresholds if t.supported)
        self.engine, self.scorer, self.threshold = engine, scorer, float(threshold)
        self.lenient_threshold = min(float(lenient_threshold), self.threshold)
        self.policy = policy or LivenessPolicy()
        self._pad, self.pad_status = _load_pad(self.policy.pad_configuration) if pad == "auto" else (pad, "given" if pad is not None else "off")

    def check(
        self,
        frames: FrameSequence | Sequence[Frame],
        *,
        challenge: Challenge | None = None,
        actions: Sequence[str] | None = None,
        portrait=None,
        mirrored: bool = False,
    ) -> LivenessResult:
        """``challenge``: its steps with their time windows (relative to the first frame). ``actions``:
        offline, the actions to look for in this order anywhere in the sequence. Neither: passive PAD,
        same face and flatness only. ``portrait``: the document's FaceSample, for the 1:1 of frames
        against it."""
        p = self.policy
        timings: dict[str, float] = {}
        findings: list[Finding] = []
        start = time.perf_counter()
        seq = list(frames)
        if challenge is not None:
            steps = tuple(challenge.steps)
        else:
            for a in actions or ():
                if a not in ACTIONS:
                    raise ValueError(f"unknown action {a!r}; choose from {', '.join(ACTIONS)}")
            steps = tuple(ActionStep(a, 0, 10**12) for a in actions or ())
        requested = tuple(s.action for s in steps)

        t0 = time.perf_counter()
        chosen = select_frames(seq, p)
        sig = extract_signals(chosen, p, mirrored=mirrored)
        timings["signals"] = ms_since(t0)
        timings["per_frame"] = round(timings["signals"] / max(len(chosen), 1), 2)
        if len(sig) < p.min_frames:
            findings.append(finding(Reason.TOO_FEW_FRAMES, "liveness", f"({len(sig)} frames with a face; at least {p.min_frames} needed)"))
            timings["total"] = ms_since(start)
            return LivenessResult(False, tuple(findings), (), None, None, len(sig), timings, requested)

        # another face in the frame (someone holding up a phone or a photo, a face on a screen behind):
        # whose actions would we be watching?
        detected = [s for s in sig if s.faces is not None]
        multi = sum(1 for s in detected if s.faces > 1)
        if multi >= 2 and multi > p.multi_face_frames * len(detected):
            findings.append(finding(Reason.MULTIPLE_FACES, "liveness", f"({multi} of {len(detected)} checked frames)"))

        # actions
        events = detect_events(sig, p)
        matched = match_actions(events, steps, p)
        for step, m in zip(steps, matched):
            if m is None:
                findings.append(finding(Reason.CHALLENGE_NOT_MET, "liveness", qualifier=step.action))

        # flatness
        t0 = time.perf_counter()
        parallax, cues = flatness(sig, p)
        timings["flatness"] = ms_since(t0)
        if parallax is not None and parallax < p.flat_parallax:
            findings.append(finding(Reason.FLAT_MOTION, "liveness", f"(parallax {parallax:.2f} < {p.flat_parallax})"))

        # same face: samples spread in time, plus both sides of every cut
        t0 = time.perf_counter()
        samples = self._sample(chosen, sig)
        analysed = []
        for s in samples:
            fs = self.engine.analyze(chosen[s.index].rgb, "selfie", embed_even_if_poor=True)
            if fs.template is not None:
                analysed.append((s, fs))
        timings["same_face"] = ms_since(t0)
        changed = False
        scores = []
        for i, (_, a) in enumerate(analysed):
            for _, b in analysed[i + 1 :]:
                sc = float(self.scorer.score(a.template, b.template))
                scores.append(sc)
                changed |= sc < (self.threshold if a.usable and b.usable else self.lenient_threshold)
        same_min = min(scores) if scores else None
        portrait_scores: tuple[float, ...] = ()
        if portrait is not None and getattr(portrait, "template", None) is not None and analysed:
            portrait_scores = tuple(float(self.scorer.score(portrait.template, fs.template)) for _, fs in analysed)
            good = [sc for sc, (_, fs) in zip(portrait_scores, analysed) if fs.usable]
            # part of the sequence is the document holder and part clearly is not (the lenient threshold:
            # a genuine but old portrait scores near the threshold, some frames above and some below it)
            if good and max(good) >= self.threshold and min(good) < self.lenient_threshold:
                changed = True
        if changed:
            findings.append(finding(Reason.FACE_CHANGED, "liveness", f"(lowest frame-to-frame score {same_min:.3f} vs threshold {self.threshold:.3f})" if same_min is not None else ""))

        # best frame: passed the quality gate, most frontal and sharp
        best = _best(analysed)
        # passive PAD on a few frames
        pad_info: dict[str, Any] = {"status": self.pad_status}
        if self._pad is not None and analysed:
            t0 = time.perf_counter()
            pad_findings, info = self._run_pad(chosen, analysed, best)
            pad_info.update(info)
            findings += pad_findings
            timings["pad"] = ms_since(t0)
        timings["total"] = ms_since(start)
        rejecting_or_retry = bool(findings)
        return LivenessResult(
            passed=not rejecting_or_retry,
            findings=tuple(findings),
            actions_seen=tuple(events),
            same_face_min_score=same_min,
            parallax=parallax,
            frames_used=len(sig),
            timings_ms=timings,
            requested=requested,
            actions_matched=tuple(matched),
            portrait_scores=portrait_scores,
            cues=cues,
            pad=pad_info,
            best_frame_index=chosen[best[0].index].index if best else None,
            selfie=best[1] if best else None,
        )

    def _sample(self, chosen: Sequence[Frame], sig: Sequence[FrameSignals]) -> list[FrameSignals]:
        k = max(2, self.policy.same_face_samples)
        base = float(np.median([s.yaw for s in sig]))
        frontal = [s for s in sig if abs(s.yaw - base) < 20 and abs(s.pitch) < 30] or list(sig)
        picked: dict[int, FrameSignals] = {}
        for part in np.array_split(np.arange(len(frontal)), min(k, len(frontal))):
            if len(part):
                # sharp (no motion blur), eyes open, facing the camera
                s = max((frontal[j] for j in part), key=lambda s: math.log1p(s.sharpness) - abs(s.yaw - base) / 15 - 2 * s.blink)
                picked[s.index] = s
        by_index = {s.index: s for s in sig}
        for c in find_cuts(chosen):
            for j in (c - 1, c):  # the nearest analysed frames on each side of the cut
                near = min(sig, key=lambda s: abs(s.index - j) + (1000 if (s.index < c) != (j < c) else 0))
                picked.setdefault(near.index, by_index[near.index])
        return sorted(picked.values(), key=lambda s: s.index)

    def _run_pad(self, chosen, analysed, best) -> tuple[list[Finding], dict[str, Any]]:
        n = self.policy.pad_frames
        others = [a for a in analysed if a is not best]
        idx = np.linspace(0, len(others) - 1, min(n - 1, len(others))).round().astype(int) if others and n > 1 else []
        picks = ([best] if best else []) + [others[i] for i in dict.fromkeys(int(i) for i in idx)]
        results = []
        for s, fs in picks[:n]:
            try:
                results.append(self._pad.assess(chosen[s.index].rgb, face=fs.face))
            except Exception as exc:  # noqa: BLE001 - the PAD is another module; its failure must not hide liveness
                return [], {"error": type(exc).__name__}
        attacks = [r for r in results if getattr(r, "is_attack", False)]
        info = {"frames": len(results), "attacks": len(attacks), "scores": [round(float(getattr(r, "score", float("nan"))), 4) for r in results]}
        if not results or len(attacks) * 2 <= len(results):
            return [], info
        return pad_findings(attacks), info


def _best(analysed):
    if not analysed:
        return None

    def key(item):
        s, fs = item
        m = fs.quality.measures
        return (fs.usable, -len(fs.quality.reasons), float(m.get("sharpness", 0.0)) - 0.01 * (abs(s.yaw) + abs(s.pitch)))

    return max(analysed, key=key)


def pad_findings(attacks) -> list[Finding]:
    """The findings of PAD results judged attacks: each fired cue once, however many frames fired it."""
    codes: dict[str, Finding] = {}
    for r in attacks:
        for reason in getattr(r, "reasons", ()) or ("pad:attack",):
            f = _pad_finding(str(reason))
            codes.setdefault(f.reason, f)
    return list(codes.values())


def _pad_finding(reason: str) -> Finding:
    """A PAD reason string (``pad:screen_moire``) as a finding: the PAD's own Reason member when
    reasons.py has one for it, else ``liveness:presentation_attack:<cue>``."""
    from typing import get_args

    from idproof.decision import Subject

    parts = reason.split(":")
    subject, rest = parts[0], parts[1:]
    for n in range(len(rest), 0, -1):
        code = ":".join(rest[:n])
        try:
            member = Reason(code)
        except ValueError:
            continue
        if subject in get_args(Subject):
            return finding(member, subject, qualifier=":".join(rest[n:]))  # type: ignore[arg-type]
        return finding(member, "liveness", qualifier=":".join(rest[n:]))
    cue = ":".join(rest) if rest else reason
    return finding(Reason.PRESENTATION_ATTACK, "liveness", qualifier=cue)


def _load_pad(configuration: str | None = None):
    """(PassivePad instance or None, status). Status is reported in LivenessResult.pad and the decision's
    checks_performed, so a deployment that runs without the PAD says so. ``configuration``: one of the
    calibration's (passive_model, forensic, fused); None: its default."""
    try:
        from idproof.liveness.passive import PassivePad  # type: ignore[import-not-found]
    except ImportError:
        return None, "not_installed"
    try:
        return (PassivePad(configuration=configuration) if configuration else PassivePad()), "loaded"
    except Exception as exc:  # noqa: BLE001 - e.g. its model file is missing: liveness runs, and says so
        return None, f"unavailable:{type(exc).__name__}"


def flat_turn_frames(rgb: np.ndarray, *, max_deg: float = 35.0, n: int = 30, fps: float = 15.0) -> FrameSequence:
    """A synthetic attack: a still photo "turned" left and right by a perspective warp about its vertical
    axis (a flat picture rotated in front of a pinhole camera), as timed frames. Used by the tests and
    benchmarks for ``liveness:flat_motion``; it is synthetic and must be reported as such."""
    h, w = rgb.shape[:2]
    f = 1.2 * max(w, h)
    cx, cy = w / 2, h / 2
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    angles = np.concatenate([np.linspace(0, max_deg, n // 3), np.linspace(max_deg, -max_deg, n - 2 * (n // 3)), np.linspace(-max_deg, 0, n // 3)])
    out = []
    for deg in angles:
        th = math.radians(float(deg))
        dst = []
        for x, y in corners:
            xr, zr = (x - cx) * math.cos(th), (x - cx) * math.sin(th)
            dst.append([cx + f * xr / (f + zr), cy + f * (y - cy) / (f + zr)])
        hmat = cv2.getPerspectiveTransform(corners, np.float32(dst))
        out.append(cv2.warpPerspective(rgb, hmat, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return FrameSequence.from_arrays(out, fps=fps)
