"""Timed RGB frames for liveness, from a video file, a folder of images, or a capture submission.

Everything stays in memory (a video is decoded from its bytes through OpenCV's stream reader, never
copied to a temporary file) and every input is bounded before it is decoded:

- a video file: at most ``max_video_bytes`` bytes, ``max_duration_s`` seconds of it and ``max_decoded``
  decoded frames; frames are kept at most ``sample_fps`` per second (liveness needs ~10-15 fps: a
  blink lasts 100-400 ms) and at most ``max_frames`` in all;
- a folder or a submission: at most ``max_frames`` images, each at most ``max_frame_bytes`` and
  ``max_frame_pixels`` (checked from the header before any pixel is decoded, by ``load_image``),
  ``max_total_bytes`` together;
- frames larger than ``max_side`` are downscaled (the face models work on crops of a few hundred px).

Timestamps are milliseconds. For a video they are the container's presentation times (first frame
~0); for a submission they are the client's capture times, as bound by the capture MAC; for a folder
they come from the file names (``..._1234ms.jpg`` or ``..._t1234.jpg``) or, failing that, from a
nominal ``fps``.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from idproof.errors import IdproofError, ImageError
from idproof.imageio import describe_source, load_image

__all__ = ["Frame", "FrameError", "FrameLimits", "FrameSequence", "decode_frames", "read_frames", "read_image_folder", "read_video"]

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_FIX = "Record a short clip (3 to 20 seconds, MP4 or WebM) or send the camera frames again."


class FrameError(IdproofError):
    """The video or frame sequence cannot be used (unreadable, empty, too long, too large)."""

    code = "bad_video"


@dataclass(frozen=True)
class FrameLimits:
    max_frames: int = 450
    max_duration_s: float = 30.0
    max_side: int = 1280
    max_video_bytes: int = 64 * 2**20
    max_decoded: int = 2000
    max_frame_bytes: int = 2 * 2**20
    max_frame_pixels: int = 4096 * 4096
    max_total_bytes: int = 64 * 2**20
    sample_fps: float | None = 15.0  # video files only; None keeps every frame (up to max_frames)


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray = field(repr=False)  # (H, W, 3) uint8, upright
    t_ms: float
    index: int  # position in the source (the submission's frame number, the video's frame number)
    data: bytes | None = field(default=None, repr=False)  # the encoded image exactly as received, if any


@dataclass(frozen=True)
class FrameSequence:
    frames: tuple[Frame, ...]
    source: str  # log-safe description
    kind: str  # "video" | "folder" | "submission" | "arrays"
    fps: float | None = None  # the source's nominal rate (video container), if known
    truncated: bool = False  # the source went on beyond the limits and was cut

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        return iter(self.frames)

    def __getitem__(self, i):
        return self.frames[i]

    @property
    def duration_ms(self) -> float:
        return self.frames[-1].t_ms - self.frames[0].t_ms if self.frames else 0.0

    @classmethod
    def from_arrays(cls, rgbs: Sequence[np.ndarray], t_ms: Sequence[float] | None = None, *, fps: float = 15.0) -> FrameSequence:
        """Frames already in memory (tests, benchmarks); timestamps default to a steady ``fps``."""
        ts = list(t_ms) if t_ms is not None else [i * 1000.0 / fps for i in range(len(rgbs))]
        if len(ts) != len(rgbs):
            raise ValueError("one timestamp per frame")
        return cls(tuple(Frame(np.ascontiguousarray(r), float(t), i) for i, (r, t) in enumerate(zip(rgbs, ts))), "arrays", "arrays", fps)


def _fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def read_video(source: str | os.PathLike | bytes, limits: FrameLimits | None = None) -> FrameSequence:
    """Decode a video (path or the file's bytes) into timed RGB frames, in memory, within ``limits``."""
    limits = limits or FrameLimits()
    what = describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        data = _read_bounded(source, limits.max_video_bytes, what)
    else:
        data = bytes(source)
        if len(data) > limits.max_video_bytes:
            raise FrameError(f"The video is too large: {what}, over {limits.max_video_bytes / 2**20:.0f} MB.", fix=_FIX)
    if not data:
        raise FrameError(f"The video is empty ({what}).", fix=_FIX)
    # OpenCV does not keep a reference to the stream object: hold it until the capture is released.
    stream = io.BytesIO(data)
    cap = cv2.VideoCapture(stream, cv2.CAP_FFMPEG, [])
    try:
        if not cap.isOpened():
            raise FrameError(f"The video could not be opened: {what} (not a video, or an unsupported codec).", fix=_FIX)
        fps = cap.get(cv2.CAP_PROP_FPS) or None
        min_gap = 1000.0 / limits.sample_fps if limits.sample_fps else 0.0
        frames: list[Frame] = []
        truncated = False
        last_kept = -1e18
        decoded = 0
        while True:
            if decoded >= limits.max_decoded:
                truncated = True
                break
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            decoded += 1
            t = float(cap.get(cv2.CAP_PROP_POS_MSEC))
            if not np.isfinite(t) or (t <= 0 and decoded > 1 and fps):  # containers without usable times
                t = (decoded - 1) * 1000.0 / (fps or 30.0)
            if frames and t - frames[0].t_ms > limits.max_duration_s * 1000:
                truncated = True
                break
            if t - last_kept < min_gap - 1.0:  # 1 ms slack for rounded container times
                continue
            if len(frames) >= limits.max_frames:
                truncated = True
                break
            if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
                raise FrameError(f"The video has an unsupported pixel format: {what}.", fix=_FIX)
            rgb = _fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), limits.max_side)
            frames.append(Frame(np.ascontiguousarray(rgb), t, decoded - 1))
            last_kept = t
    finally:
        cap.release()
        del stream
    if not frames:
        raise FrameError(f"No frame could be decoded from {what}.", fix=_FIX)
    return FrameSequence(tuple(frames), what, "video", fps, truncated)


def decode_frames(items: Iterable[tuple[bytes, float]], limits: FrameLimits | None = None, *, what: str = "submission") -> FrameSequence:
    """Encoded images with their capture times (a capture submission) → frames. The encoded bytes are
    kept on each frame: the capture binding hashes exactly those bytes."""
    limits = limits or FrameLimits()
    frames: list[Frame] = []
    total = 0
    for i, (data, t_ms) in enumerate(items):
        if i >= limits.max_frames:
            raise FrameError(f"Too many frames in the {what}: more than {limits.max_frames}.", fix=_FIX)
        data = bytes(data)
        total += len(data)
        if total > limits.max_total_bytes:
            raise FrameError(f"The {what} is too large: over {limits.max_total_bytes / 2**20:.0f} MB of frames.", fix=_FIX)
        try:
            t = float(t_ms)
        except (TypeError, ValueError) as exc:
            raise FrameError(f"Frame {i} of the {what} has no valid timestamp.", fix=_FIX) from exc
        if not np.isfinite(t):
            raise FrameError(f"Frame {i} of the {what} has no valid timestamp.", fix=_FIX)
        try:
            rgb = load_image(data, max_bytes=limits.max_frame_bytes, max_pixels=limits.max_frame_pixels)
        except ImageError as e:
            raise FrameError(f"Frame {i} of the {what} could not be read: {e.message}", fix=_FIX) from e
        frames.append(Frame(_fit(rgb, limits.max_side), t, i, data))
    if not frames:
        raise FrameError(f"The {what} has no frames.", fix=_FIX)
    return FrameSequence(tuple(frames), what, "submission")


_STAMP_IN_NAME = re.compile(r"(?:_t(\d+(?:\.\d+)?)|[_-](\d+(?:\.\d+)?)ms)$", re.IGNORECASE)


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


def read_image_folder(folder: str | os.PathLike, limits: FrameLimits | None = None, *, fps: float = 10.0) -> FrameSequence:
    """A folder of frame images (JPEG/PNG/WebP/BMP), in natural name order. Timestamps come from the
    names when every name carries one (``frame_0001_1234ms.jpg`` or ``..._t1234.jpg``), else from ``fps``."""
    limits = limits or FrameLimits()
    folder = Path(folder)
    what = describe_source(folder)
    try:
        paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=lambda p: _natural_key(p.name))
    except OSError as exc:
        raise FrameError(f"The frame folder could not be listed: {what}.", fix=_FIX) from exc
    if not paths:
        raise FrameError(f"No frame images (JPEG/PNG) in {what}.", fix=_FIX)
    if len(paths) > limits.max_frames:
        raise FrameError(f"Too many frames in {what}: {len(paths)}, more than {limits.max_frames}.", fix=_FIX)
    stamps: list[float | None] = []
    for p in paths:
        m = _STAMP_IN_NAME.search(p.stem)
        stamps.append(float(m.group(1) or m.group(2)) if m else None)
    named = all(s is not None for s in stamps)
    if not named:
        stamps = [i * 1000.0 / fps for i in range(len(paths))]
    items = [(_read_bounded(p, limits.max_frame_bytes, describe_source(p)), t) for p, t in zip(paths, stamps)]
    seq = decode_frames(items, limits, what=what)
    return FrameSequence(seq.frames, what, "folder", None if named else fps)


def read_frames(source: str | os.PathLike, limits: FrameLimits | None = None, *, fps: float = 10.0) -> FrameSequence:
    """A video file or a folder of frame images."""
    p = Path(source)
    if p.is_dir():
        return read_image_folder(p, limits, fps=fps)
    return read_video(p, limits)


def _read_bounded(path: str | os.PathLike, max_bytes: int, what: str) -> bytes:
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise FrameError(f"Not a regular file: {what}.", fix=_FIX)
        if st.st_size > max_bytes:
            raise FrameError(f"The file is too large: {what} is {st.st_size:,} bytes, over {max_bytes:,}.", fix=_FIX)
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise FrameError(f"File not found: {what}.", fix="Check the path.") from exc
    except OSError as exc:
        raise FrameError(f"Could not read {what} ({type(exc).__name__}).", fix="Check the path and that it is readable.") from exc
    if len(data) > max_bytes:
        raise FrameError(f"The file is too large: {what}, over {max_bytes:,} bytes.", fix=_FIX)
    return data
