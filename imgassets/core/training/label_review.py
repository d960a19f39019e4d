"""Reviewing a dataset version's labels with the model trained on it (the use case).

The model just trained judges every held-out image (val and benchmark) from its one prediction
pass (:mod:`imgassets.core.training.staged_model`) by the rules of
:mod:`imgassets.core.training.review`. With ``folds`` >= 2 the train split is judged out of sample
too: a model is trained per fold on the other folds and judges its fold. Findings are stored per
scientist as ``reviews/<scientist>.json`` (a sealed record: model, dataset, folds, findings), which
the ``label_review`` check and ``imgassets review`` read; a model too weak to judge writes an empty
review that says why.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from imgassets.core.images.thumbnails import MAX_PICTURES
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import MODEL_RECORD, model_file_key, review_key
from imgassets.core.store.sealed import get_record, put_record
from imgassets.core.store.table_cache import LABEL_TABLE, load_cached_table
from imgassets.core.training.evaluate import pictures_of
from imgassets.core.training.review import (
    DEFAULT_REVIEW,
    LabelRow,
    ReviewSettings,
    fold_of,
    label_rows_by_image,
    review_pass,
    why_model_cannot_judge,
)
from imgassets.core.training.staged_model import Pass, StagedModel
from imgassets.core.versioning.checkout import staged_image


@dataclass(frozen=True)
class LabelReview:
    """The outcome of :func:`review_labels`: ``reviews`` (findings by scientist, most confident
    first, every scientist of the dataset listed), ``fold_runs`` (``{fold, trained_on, reviewed}``
    per fold), ``skipped`` (why no model judged, or ``None``) and ``pictures`` (Markdown: the images
    of the most confident findings with labelled and predicted boxes)."""

    reviews: dict[str, list[dict]]
    fold_runs: list[dict]
    skipped: str | None
    pictures: str

    @property
    def ranked(self) -> list[dict]:
        """Every finding, most confident first."""
        return sorted((f for found in self.reviews.values() for f in found), key=lambda f: -f["confidence"])


def _merge(into: dict[str, list[dict]], found: dict[str, list[dict]]) -> None:
    for scientist, findings in found.items():
        into[scientist] = sorted(into.get(scientist, []) + findings, key=lambda f: -f["confidence"])


def review_labels(store: ObjectStore, dataset, held_out: list[Pass], staged_dir: str | Path, model: dict,
                  challenger_map50: float | None, settings: ReviewSettings = DEFAULT_REVIEW,
                  folds: int = 0) -> LabelReview:
    """Review the labels of ``dataset`` (a :class:`~imgassets.core.versioning.dataset.DatasetVersion`
    pulled under ``staged_dir``) with ``model`` (``{model_id, dataset_id, imgsz}``, scoring
    ``challenger_map50`` on the benchmark), whose passes over the held-out splits are ``held_out``;
    with ``folds`` >= 2 also out of sample on the train split (:func:`kfold_review`). Stores
    ``reviews/<scientist>.json`` for every scientist of the dataset."""
    skipped = why_model_cannot_judge(challenger_map50, settings)
    reviews: dict[str, list[dict]] = {scientist: [] for scientist in dataset.snapshots}
    fold_runs: list[dict] = []
    if not skipped:
        tables = functools.cache(lambda scientist: load_cached_table(store, LABEL_TABLE, scientist))
        label_rows = {s: label_rows_by_image(tables(s)) for s in sorted({r["scientist"] for r in dataset.records})}
        for model_pass in held_out:
            _merge(reviews, review_pass(model_pass, label_rows, model["model_id"], settings))
        if folds >= 2:
            from imgassets.core.training.train import TrainingSettings

            record = get_record(store, model_file_key(model["dataset_id"], model["model_id"], MODEL_RECORD))
            training = TrainingSettings(**record["settings"]).overridden(plots=False)
            with tempfile.TemporaryDirectory(prefix="imgassets-folds-") as workdir:
                out_of_sample, fold_runs = kfold_review(dataset.records, staged_dir, dataset.class_names, training,
                                                        folds, workdir, label_rows, model["model_id"], settings)
            _merge(reviews, out_of_sample)
    for scientist, findings in reviews.items():
        put_record(store, review_key(scientist), {"model_id": model["model_id"], "dataset_id": dataset.dataset_id,
                                                  "skipped": skipped, "folds": fold_runs, "findings": findings})
    passes = {r["sha256"]: p for p in held_out for r in p.records}
    return LabelReview(reviews, fold_runs, skipped, _pictures(reviews, dataset.records, passes, staged_dir, settings))


def _pictures(reviews: dict[str, list[dict]], records: list[dict], passes: dict[str, Pass], staged_dir: str | Path,
              settings: ReviewSettings) -> str:
    """The held-out images of the most confident findings, one picture an image, at most
    :data:`MAX_PICTURES`, drawn from the pass that judged them."""
    owned = sorted(((s, f) for s, found in reviews.items() for f in found), key=lambda pair: -pair[1]["confidence"])
    by_path = {(r["scientist"], r["path"]): r for r in records}
    shown: dict[tuple[str, str], str] = {}
    for scientist, finding in owned:
        record = by_path.get((scientist, finding["image"]))
        if record is None or record["sha256"] not in passes or (scientist, finding["image"]) in shown:
            continue  # a train image judged out of sample has no pass of the model being shown
        shown[(scientist, finding["image"])] = f"{finding['kind']}: {finding['reason']}"
        if len(shown) >= MAX_PICTURES:
            break
    parts = []
    for (scientist, path), note in shown.items():
        record = by_path[(scientist, path)]
        parts.append(pictures_of(passes[record["sha256"]], [record], staged_dir, [note], settings.min_confidence))
    return "\n\n".join(parts)


def kfold_review(records: list[dict], staged_dir: str | Path, class_names: list[str], training, folds: int,
                 workdir: str | Path, label_rows: dict[str, dict[str, list[LabelRow]]], model_id: str,
                 settings: ReviewSettings = DEFAULT_REVIEW, device: str | None = None) -> tuple[dict[str, list[dict]], list[dict]]:
    """Out-of-sample review of the train split: its images in ``folds`` folds by duplicate group
    (:func:`~imgassets.core.training.review.fold_of`); for each fold a model is trained
    (``training``: the :class:`~imgassets.core.training.train.TrainingSettings` of the dataset's
    model) on the other folds' images of the pulled dataset under ``staged_dir`` (validated on this
    fold) and reviews this fold in one prediction pass, so every train image is judged by a model
    that did not train on it. Returns ``({scientist: findings}, [{fold, trained_on, reviewed}])``;
    findings name ``<model_id>/fold<k>``."""
    from imgassets.core.training.train import train_yolo

    train = [r for r in records if r["split"] == "train"]
    reviews: dict[str, list[dict]] = {}
    runs = []
    for k in range(folds):
        held = [r for r in train if fold_of(r["group"], folds) == k]
        rest = [r for r in train if fold_of(r["group"], folds) != k]
        if not held or not rest:
            runs.append({"fold": k, "trained_on": len(rest), "reviewed": 0})
            continue
        folder = Path(workdir) / f"fold{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in (("train", rest), ("val", held)):
            (folder / f"{name}.txt").write_text("".join(f"{staged_image(staged_dir, r)}\n" for r in rows))
        data = folder / "data.yaml"
        data.write_text(yaml.safe_dump({"path": str(Path(staged_dir).resolve()), "train": str(folder / "train.txt"),
                                        "val": str(folder / "val.txt"), "names": dict(enumerate(class_names))}))
        result = train_yolo(data, training, folder)
        fold_pass = StagedModel(result.best_weights, staged_dir, class_names, training.imgsz, device).predict(held)
        _merge(reviews, review_pass(fold_pass, label_rows, f"{model_id}/fold{k}", settings))
        runs.append({"fold": k, "trained_on": len(rest), "reviewed": len(held)})
    return reviews, runs
