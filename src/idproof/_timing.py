"""Per-stage timings reported in decisions."""

import time


def ms_since(t0: float) -> float:
    """Milliseconds since ``t0`` (a ``time.perf_counter()`` value), rounded for reports."""
    return round((time.perf_counter() - t0) * 1000, 2)
