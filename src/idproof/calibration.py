"""The calibration files shipped inside the package, one per scoring profile."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from idproof.errors import CalibrationError
from idproof.face.calibrate import Calibration


def shipped_calibration_path(profile: str) -> Path:
    return Path(str(resources.files("idproof") / "data" / f"calibration-{profile}.json"))


@cache
def shipped_calibration(profile: str) -> Calibration:
    path = shipped_calibration_path(profile)
    if not path.is_file():
        raise CalibrationError(
            f"No calibration is shipped for profile {profile!r}.",
            fix=f"Run `idproof calibrate --profile {profile} --pairs PAIRS.csv --out {path}`.",
        )
    return Calibration.load(path)
