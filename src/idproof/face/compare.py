"""1:1 comparison: two templates → one similarity score. Never one probe against many."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from idproof.face.embed import Template, embedder

# Scoring profiles. "fast" uses the ONNX embedder alone; "accurate" fuses it with dlib's (they make
# different errors). Measured on the shared LFW folds (`idproof bench faces --subset lfw`), fusion buys
# ~2 fewer errors in 1,200 pairs at 6x the time, so the default is "fast"; see README for the figures.
PROFILES: dict[str, tuple[str, ...]] = {
    "accurate": ("arcface_fp", "dlib_resnet"),
    "fast": ("arcface_fp",),
}
DEFAULT_PROFILE = "fast"


def scorer_name(models: tuple[str, ...]) -> str:
    return models[0] if len(models) == 1 else "fused:" + "+".join(models)


@dataclass(frozen=True)
class Scorer:
    """Turns per-model similarities into one score.

    One model: its raw similarity. Several: a weighted sum of z-scores against each model's impostor
    distribution (from calibration), so differently-scaled similarities add up meaningfully.
    """

    models: tuple[str, ...]
    normalization: dict[str, dict[str, float]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return scorer_name(self.models)

    def model_scores(self, a: Template, b: Template) -> dict[str, float]:
        return {m: embedder(m).similarity(a.vectors[m], b.vectors[m]) for m in self.models}

    def combine(self, scores: dict[str, Any]) -> Any:
        """Per-model scores → one score. Works elementwise on numpy arrays too (NaN stays NaN)."""
        if len(self.models) == 1:
            return scores[self.models[0]]
        total = 0.0
        for m in self.models:
            n = self.normalization[m]
            total += self.weights.get(m, 1.0) * (scores[m] - n["mean"]) / n["std"]
        return total

    def score(self, a: Template, b: Template) -> float:
        return self.combine(self.model_scores(a, b))
