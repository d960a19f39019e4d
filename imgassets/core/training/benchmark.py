"""Scoring models on a dataset's benchmark split, and the champion/challenger promotion rule.

Every model is scored on the *same* held-out images as the model it would replace: the benchmark
split of the challenger's dataset (:mod:`imgassets.core.versioning.dataset`: append-only, never
trained on, never used for early stopping). Scores are Ultralytics' own validation of one
prediction pass (:mod:`imgassets.core.training.staged_model`): mAP50, mAP50-95, precision and
recall in [0, 1], overall, per class (mAP50-95 by class name) and per scientist (the benchmark
images each scientist contributed, scored alone).

Promotion (:func:`promotion_decision`): the first model is champion; a challenger replaces the
champion when its benchmark mAP50-95 is not below the champion's on the same images by more than
``margin`` (absolute) and it did not regress on a protected slice (a scientist, a class:
:mod:`imgassets.core.training.slices`). A champion trained on other class names cannot be scored on this benchmark
(its class ids mean other classes): the challenger is then promoted, and the decision says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from imgassets.core.training.staged_model import METRICS, Pass

__all__ = ["METRICS", "BenchmarkScores", "PromotionDecision", "benchmark_scores", "promotion_decision"]
DEFAULT_MARGIN = 0.01
"""Largest drop of benchmark mAP50-95 below the champion's (absolute) at which a challenger still wins."""


@dataclass(frozen=True)
class BenchmarkScores:
    """A model's scores on a benchmark: ``overall`` (:data:`METRICS`), ``per_class`` (mAP50-95 by
    class name, for the classes with benchmark boxes), ``per_scientist`` (:data:`METRICS` by
    scientist), the number of ``images`` scored and the image size ``imgsz`` (pixels, the longer
    side) they were scored at: the size the model was trained at (0: not recorded)."""

    overall: dict[str, float]
    per_class: dict[str, float] = field(default_factory=dict)
    per_scientist: dict[str, dict[str, float]] = field(default_factory=dict)
    images: int = 0
    imgsz: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BenchmarkScores:
        return cls(dict(data["overall"]), dict(data.get("per_class", {})), dict(data.get("per_scientist", {})),
                   int(data.get("images", 0)), int(data.get("imgsz", 0)))


def benchmark_scores(benchmark: Pass, imgsz: int) -> BenchmarkScores:
    """The scores of one prediction pass over benchmark images (:meth:`StagedModel.predict`):
    Ultralytics' ``val`` overall and per class, and per scientist from the pass's per-image
    statistics (:meth:`Pass.scores_of`), at ``imgsz`` pixels."""
    per_scientist = {scientist: benchmark.scores_of([r for r in benchmark.records if r["scientist"] == scientist])
                     for scientist in sorted({r["scientist"] for r in benchmark.records})}
    return BenchmarkScores(benchmark.overall, benchmark.per_class, per_scientist, len(benchmark.records), imgsz)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger becomes champion, and the sentence that says why."""

    promoted: bool
    reason: str


def promotion_decision(challenger: BenchmarkScores | None, champion: BenchmarkScores | None,
                       champion_id: str | None, margin: float = DEFAULT_MARGIN,
                       not_comparable: str | None = None, protected: tuple[str, ...] | list[str] = ()) -> PromotionDecision:
    """The rule of the module docstring. ``challenger``: its scores (``None``: the dataset has no
    benchmark image, so nothing can be compared and the challenger is not promoted over a
    champion); ``champion``: the champion's scores on the same images (``None`` with ``champion_id``
    ``None``: there is no champion yet); ``not_comparable``: why the champion could not be scored;
    ``protected``: the protected slices that regressed (:mod:`imgassets.core.training.slices`): any
    blocks promotion, whatever the overall score."""
    if champion_id is None:
        return PromotionDecision(True, "the first model: champion")
    if not_comparable:
        return PromotionDecision(True, f"champion {champion_id} cannot be scored on this benchmark "
                                       f"({not_comparable}): the challenger is promoted")
    if challenger is None or champion is None:
        return PromotionDecision(False, "the dataset has no benchmark image: the challenger cannot be compared "
                                        f"with champion {champion_id}")
    ours, theirs = challenger.overall["mAP50-95"], champion.overall["mAP50-95"]
    scores = (f"on the same {challenger.images} benchmark images the challenger scores mAP50-95 {ours:.4f}"
              f"{_at(challenger)} and champion {champion_id} {theirs:.4f}{_at(champion)}")
    if protected and ours >= theirs - margin:
        return PromotionDecision(False, f"not promoted: {scores}, but it regressed on protected slice(s) "
                                        f"{', '.join(protected)} (beyond the margin {margin} and the bootstrap interval)")
    if ours >= theirs - margin:
        return PromotionDecision(True, f"promoted: {scores}; the challenger may be at most {margin} below")
    return PromotionDecision(False, f"not promoted: {scores}, {theirs - ours:.4f} better; the challenger may be "
                                    f"at most {margin} below")


def _at(scores: BenchmarkScores) -> str:
    return f" (at {scores.imgsz} px)" if scores.imgsz else ""
