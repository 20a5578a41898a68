"""The one vocabulary of decision reasons, shared by library, CLI, API and evidence.

A reason code is a short stable string (``low_quality:blur``); its text tells a person what to do.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    RETRY = "retry"


class Reason(StrEnum):
    # image intake
    BAD_IMAGE = "bad_image"
    # detection
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    # quality gate (ISO/IEC 29794-5 in spirit)
    FACE_TOO_SMALL = "low_quality:face_too_small"
    BLUR = "low_quality:blur"
    UNDEREXPOSED = "low_quality:underexposed"
    OVEREXPOSED = "low_quality:overexposed"
    POSE = "low_quality:pose"
    EYES_CLOSED = "low_quality:eyes_closed"
    OCCLUDED = "low_quality:occluded"
    FACE_CUT_OFF = "low_quality:face_cut_off"
    # comparison
    MATCH = "match"
    BELOW_THRESHOLD = "below_threshold"


# What a person (or the operator's UI) should be told for each reason.
REASON_TEXT: dict[Reason, str] = {
    Reason.BAD_IMAGE: "The image could not be read. Send a JPEG or PNG photo.",
    Reason.NO_FACE: "No face was found. Make sure the whole face is visible and well lit.",
    Reason.MULTIPLE_FACES: "More than one face is visible. Make sure only you are in the picture.",
    Reason.FACE_TOO_SMALL: "The face is too small. Move closer to the camera or use a higher resolution.",
    Reason.BLUR: "The image is blurred. Hold the camera still and make sure it is in focus.",
    Reason.UNDEREXPOSED: "The face is too dark. Move to a brighter place or face the light.",
    Reason.OVEREXPOSED: "The face is too bright. Avoid direct light or glare on the face.",
    Reason.POSE: "The head is turned or tilted too far. Look straight at the camera.",
    Reason.EYES_CLOSED: "The eyes appear closed. Keep your eyes open and look at the camera.",
    Reason.OCCLUDED: "Part of the face is covered. Remove anything covering the face (mask, hand, hair).",
    Reason.FACE_CUT_OFF: "The face is cut off at the edge of the image. Centre the face in the frame.",
    Reason.MATCH: "The selfie matches the document portrait.",
    Reason.BELOW_THRESHOLD: "The selfie does not match the document portrait.",
}


def text_for(reason: Reason) -> str:
    return REASON_TEXT[reason]
