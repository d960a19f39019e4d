"""Building a scientist's labeling queue from their latest snapshot and the champion: the use case
the ``labeling_queue`` asset and the benchmark call (rules in :mod:`imgassets.core.labeling.queue`)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import yaml

from imgassets.core.images.quality import quality_outliers
from imgassets.core.labeling.queue import DEFAULT_TOP, UNCERTAINTY, Candidate, LabelingQueue, rank_queue
from imgassets.core.labeling.scoring import CANDIDATE_CONFIDENCE, ChampionScorer, score_images
from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.keys import dataset_data_yaml_key, dataset_manifest_key, labeling_queue_key
from imgassets.core.store.sealed import get_record, put_record
from imgassets.core.training.models import fetch_champion_weights, read_champion, trained_imgsz
from imgassets.core.training.operating_point import confidence_of
from imgassets.core.versioning.manifest import UNLABELLED_FIELD, manifest_columns
from imgassets.core.versioning.snapshot import load_snapshot_table
from imgassets.errors import ImgassetsError

DEFAULT_IMGSZ = 640


class LabelingError(ImgassetsError, RuntimeError):
    """A labeling queue that cannot be built or read; the message says why."""


@dataclass(frozen=True)
class LabelingPolicy:
    """How a queue is ranked: ``top`` (the budget: images ranked) and ``strategy`` (one of
    :data:`imgassets.core.labeling.queue.STRATEGIES`)."""

    top: int = DEFAULT_TOP
    strategy: str = UNCERTAINTY


@dataclass(frozen=True)
class BuiltQueue:
    """A stored queue (``queue``, at ``key``) and how many images were ``predicted`` now or had
    their scores ``reused`` from an earlier run under the same champion."""

    queue: LabelingQueue
    key: str
    predicted: int
    reused: int


def unlabelled_candidates(store: ObjectStore, manifest_key: str) -> list[Candidate]:
    """The unlabelled images of the snapshot at ``manifest_key``, by path."""
    table = load_snapshot_table(store, manifest_key)
    if UNLABELLED_FIELD.name not in table.column_names:
        return []
    rows = table.filter(pc.fill_null(table.column(UNLABELLED_FIELD.name), False))
    return [Candidate(r["sha256"], r["path"], r["width"], r["height"], r["phash"])
            for r in rows.select(["sha256", "path", "width", "height", "phash"]).sort_by("path").to_pylist()]


def _labelled_phashes(store: ObjectStore, dataset_id: str) -> dict[str, str]:
    """Content hash -> perceptual hash of every image of the dataset ``dataset_id`` (all labelled)."""
    try:
        table = manifest_columns(store.get_bytes(dataset_manifest_key(dataset_id)), ["sha256", "phash"])
    except ObjectNotFoundError:
        return {}
    return {sha: ph for sha, ph in zip(table.column("sha256").to_pylist(), table.column("phash").to_pylist(),
                                       strict=True) if ph}


def build_labeling_queue(store: ObjectStore, scientist: str, manifest_key: str, index: pd.DataFrame,
                         policy: LabelingPolicy = LabelingPolicy(), device: str | None = None) -> BuiltQueue:
    """Rank the unlabelled images of ``scientist``'s snapshot (``manifest_key``) with the champion
    (:func:`~imgassets.core.training.models.read_champion`; its images predicted once per champion,
    :func:`~imgassets.core.labeling.scoring.score_images`), set aside the quality outliers of
    ``index`` (the scientist's image index) and the near-duplicates of the champion's dataset, and
    store the queue at :func:`~imgassets.core.store.keys.labeling_queue_key` (a sealed record).
    Raises :class:`LabelingError` when the champion's weights do not match the hash its ref records."""
    candidates = unlabelled_candidates(store, manifest_key)
    champion = read_champion(store)
    outliers = {o.path: o.reason for o in quality_outliers(index, scientist)} if candidates else {}
    scores, predicted, reused, names = None, 0, 0, []
    labelled: dict[str, str] = {}
    if champion is not None and candidates:
        labelled = _labelled_phashes(store, champion["dataset_id"])
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "champion.pt"
            loaded: list[ChampionScorer] = []

            def scorer() -> ChampionScorer:
                refused = fetch_champion_weights(store, champion, weights)
                if refused:
                    raise LabelingError(f"the champion: {refused}: not used to rank the labeling queue")
                loaded.append(ChampionScorer(weights, trained_imgsz(store, champion) or DEFAULT_IMGSZ, device))
                return loaded[0]

            scored = score_images(store, champion["model_id"], scientist, [c.sha256 for c in candidates], scorer)
            names = loaded[0].class_names if loaded else _champion_class_names(store, champion)
        scores, predicted, reused = scored.scores, scored.predicted, scored.reused
    queue = rank_queue(scientist, candidates, scores, labelled, outliers, policy.top, policy.strategy,
                       class_names=names, model_id=champion["model_id"] if champion else "",
                       dataset_id=champion["dataset_id"] if champion else "",
                       prelabel_confidence=max(confidence_of(champion), CANDIDATE_CONFIDENCE))
    key = labeling_queue_key(scientist)
    put_record(store, key, queue.to_record())
    return BuiltQueue(queue, key, predicted, reused)


def _champion_class_names(store: ObjectStore, champion: dict) -> list[str]:
    """The class names of the champion's dataset (what its weights were trained on), in id order,
    from the dataset's ``data.yaml`` (the manifest is not read)."""
    names = yaml.safe_load(store.get_bytes(dataset_data_yaml_key(champion["dataset_id"])))["names"]
    return [names[i] for i in sorted(names)]


def read_labeling_queue(store: ObjectStore, scientist: str) -> LabelingQueue:
    """The scientist's latest stored queue. Raises :class:`LabelingError` when none is stored."""
    try:
        return LabelingQueue.from_record(get_record(store, labeling_queue_key(scientist)))
    except ObjectNotFoundError:
        raise LabelingError(f"no labeling queue for {scientist!r} yet: `imgassets run` builds one for every scientist "
                            "with unlabelled images") from None
