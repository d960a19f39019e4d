"""Evaluating a challenger and promoting a champion (the use cases behind ``model_evaluation`` and
``champion_model``; usable without Dagster).

:func:`evaluate_challenger` stages the new model once beside its pulled dataset and predicts each
held-out image once (:mod:`imgassets.core.training.staged_model`); that pass gives the benchmark
scores (:mod:`imgassets.core.training.benchmark`), the per-image evaluation of the val split
(:mod:`imgassets.core.training.evaluate`), pictures of the worst benchmark images and the label
review (:mod:`imgassets.core.training.label_review`). The champion is scored on the same benchmark
images at the size it was trained at, and the promotion rule decides. It stores
``models/<dataset_id>/<model_id>/benchmark.json`` (sealed) and ``evaluation.parquet``.
:func:`promote` then moves ``refs/models/champion`` when the decision promoted the challenger.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imgassets.core.store.base import ObjectStore
from imgassets.core.store.hashing import sha256_file
from imgassets.core.store.keys import EVALUATION, model_file_key
from imgassets.core.training.benchmark import (
    DEFAULT_MARGIN,
    BenchmarkScores,
    PromotionDecision,
    benchmark_scores,
    promotion_decision,
)
from imgassets.core.training.benchmark_analysis import BenchmarkAnalysis, analyse_benchmark
from imgassets.core.training.evaluate import evaluation_frame, worst_pictures
from imgassets.core.training.label_review import LabelReview, review_labels
from imgassets.core.training.models import (
    fetch_champion_weights,
    read_benchmark,
    read_champion,
    trained_imgsz,
    write_benchmark,
    write_champion,
)
from imgassets.core.training.operating_point import DEFAULT_CONFIDENCE, at_confidence, choose_operating_point
from imgassets.core.training.review import ReviewSettings
from imgassets.core.training.slices import SlicePolicy
from imgassets.core.training.staged_model import Pass, StagedModel


@dataclass(frozen=True)
class EvaluationPolicy:
    """How a challenger is judged: the promotion ``margin`` (absolute benchmark mAP50-95 the
    challenger may be below the champion), the label ``review`` thresholds, the number of
    ``review_folds`` of the out-of-sample train review (0 or 1: held-out images only) and how
    ``slices`` are judged (:class:`~imgassets.core.training.slices.SlicePolicy`: its protected
    slices block promotion when they regress)."""

    margin: float = DEFAULT_MARGIN
    review: ReviewSettings = ReviewSettings()
    review_folds: int = 0
    slices: SlicePolicy = SlicePolicy()


@dataclass(frozen=True)
class ChallengerEvaluation:
    """What :func:`evaluate_challenger` found: ``evaluation`` (the val split image by image,
    :data:`~imgassets.core.training.evaluate.EVALUATION_COLUMNS`), the ``challenger``'s and the
    ``champion``'s benchmark scores (``None``: no benchmark image, no champion, or the champion
    ``not_comparable``, with why), ``champion_id``, the ``decision``, the ``margin`` it used,
    ``worst_benchmark`` (Markdown pictures), the label ``review``, the keys it stored, the
    benchmark ``analysis`` (None without benchmark images), the ``operating_point`` chosen on val
    (None without labelled val boxes) and the passes (for pictures)."""

    evaluation: pd.DataFrame
    challenger: BenchmarkScores | None
    champion_id: str | None
    champion: BenchmarkScores | None
    not_comparable: str | None
    decision: PromotionDecision
    margin: float
    worst_benchmark: str
    review: LabelReview
    benchmark_key: str
    evaluation_key: str
    analysis: BenchmarkAnalysis | None = None
    operating_point: dict | None = None
    on_benchmark: Pass | None = dataclasses.field(default=None, repr=False)


def evaluate_challenger(store: ObjectStore, dataset, staged_dir: str | Path, model: dict,
                        policy: EvaluationPolicy = EvaluationPolicy(), device: str | None = None) -> ChallengerEvaluation:
    """Judge ``model`` (``{model_id, dataset_id, model_key, imgsz}``: a trained model in the store)
    on ``dataset`` (its :class:`~imgassets.core.versioning.dataset.DatasetVersion`, pulled under
    ``staged_dir``) by the rules of the module docstring. Raises
    :class:`~imgassets.core.store.sealed.TamperedRecordError` when a record it reads was altered."""
    champion = read_champion(store)
    split = {name: [r for r in dataset.records if r["split"] == name] for name in ("val", "benchmark")}
    with tempfile.TemporaryDirectory(prefix="imgassets-evaluate-") as tmp:
        weights = Path(tmp) / "best.pt"
        store.get_file(model["model_key"], weights)
        staged = StagedModel(weights, staged_dir, dataset.class_names, model["imgsz"], device)
        on_benchmark, on_val = staged.predict(split["benchmark"]), staged.predict(split["val"])
        challenger = benchmark_scores(on_benchmark, staged.imgsz) if split["benchmark"] else None
        operating_point = choose_operating_point(on_val)
        confidence = operating_point["confidence"] if operating_point else DEFAULT_CONFIDENCE
        if operating_point and split["benchmark"]:
            operating_point["benchmark"] = at_confidence(on_benchmark, confidence)
        evaluation = pd.concat([evaluation_frame(on_val).assign(split="val"),
                                evaluation_frame(on_benchmark).assign(split="benchmark")], ignore_index=True)
        worst = worst_pictures(on_benchmark, evaluation[evaluation["split"] == "benchmark"], staged_dir)
        review_settings = dataclasses.replace(policy.review, min_confidence=max(policy.review.min_confidence, confidence))
        review = review_labels(store, dataset, [on_val, on_benchmark], staged_dir, model,
                               challenger.overall["mAP50"] if challenger else None, review_settings, policy.review_folds)
        champion_scores, champion_pass, not_comparable = _champion_scores(store, champion, model, challenger,
                                                                          staged_dir, dataset, Path(tmp), device)
        analysis = analyse_benchmark(on_benchmark, staged_dir, champion_pass, policy.margin, confidence,
                                     class_groups(store, dataset), policy.slices) if split["benchmark"] else None
    if analysis is not None:
        evaluation = evaluation.merge(analysis.attributes.drop(columns="scientist"), on="sha256", how="left")
    champion_id = champion["model_id"] if champion else None
    if champion_id == model["model_id"]:
        decision = PromotionDecision(True, "already the champion (evaluated again)")
    else:
        decision = promotion_decision(challenger, champion_scores, champion_id, policy.margin, not_comparable,
                                      analysis.protected if analysis else ())
    benchmark_key = write_benchmark(store, model["dataset_id"], model["model_id"], {
        "challenger": challenger.as_dict() if challenger else None,
        "champion": {"model_id": champion_id, "scores": champion_scores.as_dict() if champion_scores else None,
                     "not_comparable": not_comparable} if champion_id else None,
        "margin": policy.margin, "decision": {"promoted": decision.promoted, "reason": decision.reason},
        "operating_point": operating_point, "analysis": analysis.as_dict() if analysis else None})
    buffer = io.BytesIO()
    evaluation.to_parquet(buffer, index=False)
    evaluation_key = model_file_key(model["dataset_id"], model["model_id"], EVALUATION)
    store.put_bytes(evaluation_key, buffer.getvalue())
    return ChallengerEvaluation(evaluation, challenger, champion_id, champion_scores, not_comparable, decision,
                                policy.margin, worst, review, benchmark_key, evaluation_key, analysis, operating_point,
                                on_benchmark)


def class_groups(store: ObjectStore, dataset) -> dict[str, list[str]]:
    """The class groups of the class registry ``dataset`` was built with (none without one)."""
    from imgassets.core.labels.class_registry import parse_registry
    from imgassets.core.store.keys import class_registry_key

    if not dataset.class_registry:
        return {}
    key = class_registry_key(dataset.class_registry)
    return parse_registry(store.get_bytes(key), key).groups


def _champion_scores(store: ObjectStore, champion: dict | None, model: dict, challenger: BenchmarkScores | None,
                     staged_dir: str | Path, dataset, tmp: Path,
                     device: str | None) -> tuple[BenchmarkScores | None, Pass | None, str | None]:
    """The champion's scores and prediction pass on the challenger's benchmark images at the image
    size the champion was trained at (:func:`~imgassets.core.training.models.trained_imgsz`), or
    why it cannot be scored (weights that fail their recorded hash, other class names)."""
    if champion is None or challenger is None or champion["model_id"] == model["model_id"]:
        return None, None, None
    weights = tmp / "champion.pt"
    refused = fetch_champion_weights(store, champion, weights)
    if refused:
        return None, None, refused
    imgsz = trained_imgsz(store, champion) or model["imgsz"]
    try:
        staged = StagedModel(weights, staged_dir, dataset.class_names, imgsz, device)
        champion_pass = staged.predict([r for r in dataset.records if r["split"] == "benchmark"])
    except ValueError as exc:
        return None, None, str(exc)
    return benchmark_scores(champion_pass, staged.imgsz), champion_pass, None


def promote(store: ObjectStore, model: dict) -> tuple[dict | None, str]:
    """Make ``model`` (``{model_id, dataset_id, model_key}``) the champion when its stored
    benchmark decision promoted it: the champion ref names it with the SHA-256 of its weights, the
    scores and the decision. Returns ``(the new champion ref or None, the decision's reason)``."""
    benchmark = read_benchmark(store, model) or {}
    decision = benchmark.get("decision") or {"promoted": False, "reason": "no benchmark record for this model"}
    if not decision["promoted"]:
        return None, decision["reason"]
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "best.pt"
        store.get_file(model["model_key"], weights)
        digest = sha256_file(str(weights))
    champion = {"model_id": model["model_id"], "dataset_id": model["dataset_id"], "model_key": model["model_key"],
                "sha256": digest, "scores": benchmark.get("challenger"), "decision": decision,
                "operating_point": benchmark.get("operating_point"),
                "promoted_at": datetime.datetime.now(datetime.UTC).isoformat()}
    write_champion(store, champion)
    return champion, decision["reason"]
