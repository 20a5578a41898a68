"""Liveness: presentation-attack detection on frames (passive) and the active challenge around a capture."""

from idproof.liveness.active import ActiveChecker, LivenessPolicy, LivenessResult
from idproof.liveness.binding import (
    CaptureCheck,
    Submission,
    check_submission,
    compute_binding,
)
from idproof.liveness.challenge import (
    ACTIONS,
    Challenge,
    ChallengeError,
    ChallengeIssuer,
    InMemoryUsedNonces,
    UsedNonces,
)
from idproof.liveness.frames import (
    Frame,
    FrameError,
    FrameLimits,
    FrameSequence,
    read_frames,
)
from idproof.liveness.passive import PadCue, PadResult, PassivePad

__all__ = ["PadCue", "PadResult", "PassivePad"]
__all__ += [
    "ACTIONS", "ActiveChecker", "CaptureCheck", "Challenge", "ChallengeError", "ChallengeIssuer", "Frame", "FrameError",
    "FrameLimits", "FrameSequence", "InMemoryUsedNonces", "LivenessPolicy", "LivenessResult", "Submission", "UsedNonces",
    "check_submission", "compute_binding", "read_frames",
]
