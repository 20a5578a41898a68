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
    # document: MRZ read from the image or from the chip's DG1 (ICAO 9303)
    NO_MRZ = "no_mrz_found"
    MRZ_UNREADABLE = "mrz_unreadable"  # qualified by the field whose check digit failed
    UNKNOWN_STATE = "unknown_state_code"  # qualified by the field (issuing_state / nationality)
    DOCUMENT_EXPIRED = "document_expired"
    UNDER_MINIMUM_AGE = "under_minimum_age"
    OCR_UNAVAILABLE = "ocr_unavailable"
    # chip: passive authentication (ICAO 9303 part 11), qualified by the data group where it applies
    CHIP_UNREADABLE = "chip_unreadable"
    SOD_MALFORMED = "sod_malformed"
    CHIP_SIGNATURE_INVALID = "chip_signature_invalid"
    DSC_NOT_FOUND = "dsc_not_found"
    CSCA_UNTRUSTED = "csca_untrusted"
    CSCA_EXPIRED = "csca_expired"
    DSC_EXPIRED = "dsc_expired"
    DSC_KEY_USAGE_INVALID = "dsc_key_usage_invalid"
    DG_MISSING = "dg_missing"
    DG_HASH_MISMATCH = "dg_hash_mismatch"
    DG_MALFORMED = "dg_malformed"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    CHIP_MRZ_MISMATCH = "chip_mrz_mismatch"
    # liveness (subject "liveness"): active challenge, same face, physical plausibility
    CHALLENGE_NOT_MET = "challenge_not_met"  # qualified by the action
    TOO_FEW_FRAMES = "too_few_frames"
    BAD_VIDEO = "bad_video"
    FACE_CHANGED = "face_changed"
    FLAT_MOTION = "flat_motion"
    PRESENTATION_ATTACK = "presentation_attack"  # qualified by the PAD cue when it has no reason of its own
    # capture (subject "capture"): the signed challenge and the binding of frames to it
    CHALLENGE_INVALID = "challenge_invalid"
    CHALLENGE_EXPIRED = "challenge_expired"
    REPLAYED = "replayed"
    BINDING_INVALID = "binding_invalid"
    DUPLICATE_FRAMES = "duplicate_frames"
    TIMING_IMPOSSIBLE = "timing_impossible"  # qualified: non_monotonic, too_fast, longer_than_session
    TIMING_IRREGULAR = "timing_irregular"  # qualified: too_slow, gap
    STREAM_INCONSISTENT = "stream_inconsistent"  # qualified: format, size, quantisation
    REENCODED = "reencoded"  # qualified: quality, constant_size
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
    Reason.NO_MRZ: "No machine-readable zone (the 2-3 lines of <<< text) was found. Photograph the whole page or card, flat, sharp and without glare.",
    Reason.MRZ_UNREADABLE: "A check digit in the machine-readable zone does not match. Retake the photo of the document, sharp and without glare on the MRZ.",
    Reason.UNKNOWN_STATE: "The country code in the machine-readable zone is not a known ICAO code. Retake the photo of the document; if it persists, the document cannot be used here.",
    Reason.DOCUMENT_EXPIRED: "The identity document has expired. Use a valid document.",
    Reason.UNDER_MINIMUM_AGE: "The document holder is below the minimum age for this service.",
    Reason.OCR_UNAVAILABLE: "The server cannot read document text (OCR is not installed). The operator must install it.",
    Reason.CHIP_UNREADABLE: "The chip data could not be read. Read the chip again with the NFC app.",
    Reason.SOD_MALFORMED: "The chip's security object (EF.SOD) is malformed. The chip data cannot be trusted.",
    Reason.CHIP_SIGNATURE_INVALID: "The chip's signature is invalid. The chip data cannot be trusted.",
    Reason.DSC_NOT_FOUND: "The chip does not carry the document signer certificate needed to check it.",
    Reason.CSCA_UNTRUSTED: "The chip was not signed under a trusted country signing authority (CSCA).",
    Reason.CSCA_EXPIRED: "The country signing certificate (CSCA) for this chip is expired or not yet valid.",
    Reason.DSC_EXPIRED: "The document signer certificate for this chip is expired or not yet valid.",
    Reason.DSC_KEY_USAGE_INVALID: "The document signer certificate is not allowed to sign chip data.",
    Reason.DG_MISSING: "A required chip data group is missing. Read the chip again with the NFC app.",
    Reason.DG_HASH_MISMATCH: "A chip data group does not match its signed hash: the chip data was altered.",
    Reason.DG_MALFORMED: "A chip data group is malformed.",
    Reason.UNSUPPORTED_ALGORITHM: "The chip uses an algorithm idproof does not support.",
    Reason.CHIP_MRZ_MISMATCH: "The chip data does not belong to the photographed document.",
    Reason.CHALLENGE_NOT_MET: "The requested movement was not seen in time. Follow the prompts on screen: make each movement clearly when it is asked for.",
    Reason.TOO_FEW_FRAMES: "Too few video frames showed a face. Keep your face in the oval for the whole capture, in good light.",
    Reason.BAD_VIDEO: "The video or frames could not be read. Record again (a short MP4 or WebM clip, or the capture page's frames).",
    Reason.FACE_CHANGED: "The face changed during the capture: it was not the same person throughout.",
    Reason.FLAT_MOTION: "The face moved like a flat picture, not like a real head (no depth when it turned).",
    Reason.PRESENTATION_ATTACK: "The capture shows signs of a presentation attack (a photo, a screen or a mask instead of a live face).",
    Reason.CHALLENGE_INVALID: "The liveness challenge is not valid: it was not issued by this service or was altered.",
    Reason.CHALLENGE_EXPIRED: "The liveness challenge has expired. Start the capture again.",
    Reason.REPLAYED: "This capture was already submitted once. A capture can be used only once: start again.",
    Reason.BINDING_INVALID: "The frames do not match what the capture page signed: they were changed, reordered or swapped after capture.",
    Reason.DUPLICATE_FRAMES: "The capture repeats identical frames (a frozen or looped stream). Capture again with the camera.",
    Reason.TIMING_IMPOSSIBLE: "The frame times are impossible for a live camera (out of order, too fast, or longer than the session).",
    Reason.TIMING_IRREGULAR: "The frames are too far apart in time. Capture again on a steadier connection, keeping the page open.",
    Reason.STREAM_INCONSISTENT: "The frames do not all come from the same camera stream (their encoding or size changes).",
    Reason.REENCODED: "The frames were re-encoded, not captured by the capture page.",
    Reason.MATCH: "The selfie matches the document portrait.",
    Reason.BELOW_THRESHOLD: "The selfie does not match the document portrait.",
}


def text_for(reason: Reason) -> str:
    return REASON_TEXT[reason]


# Findings that end the proofing with a reject: retaking a photo cannot fix them.
REJECTING: frozenset[Reason] = frozenset({
    Reason.DOCUMENT_EXPIRED, Reason.UNDER_MINIMUM_AGE, Reason.SOD_MALFORMED, Reason.CHIP_SIGNATURE_INVALID,
    Reason.DSC_NOT_FOUND, Reason.CSCA_UNTRUSTED, Reason.CSCA_EXPIRED, Reason.DSC_EXPIRED,
    Reason.DSC_KEY_USAGE_INVALID, Reason.DG_HASH_MISMATCH, Reason.DG_MALFORMED, Reason.UNSUPPORTED_ALGORITHM,
    Reason.CHIP_MRZ_MISMATCH,
    # Presentation attacks and capture injection: a retake cannot fix them (idproof.liveness.binding
    # and .active say what each one detects). challenge_not_met, too_few_frames, bad_video,
    # challenge_expired, duplicate_frames and timing_irregular are retries: a live person can fail them
    # by accident, and a fresh challenge costs an attacker nothing that a reject would save.
    Reason.FACE_CHANGED, Reason.FLAT_MOTION, Reason.PRESENTATION_ATTACK, Reason.CHALLENGE_INVALID,
    Reason.REPLAYED, Reason.BINDING_INVALID, Reason.TIMING_IMPOSSIBLE, Reason.STREAM_INCONSISTENT,
    Reason.REENCODED,
})
