"""The labeling queue: a scientist's unlabelled images ranked by how much labeling them should help
the next model (active learning), with the champion's boxes as pre-annotations.

Candidates are the unlabelled images of the scientist's latest snapshot
(:mod:`imgassets.core.labels.unlabelled`). Before ranking, some are *set aside*, each with its
reason, never ranked:

* image-quality outliers of the scientist's folder (blank, dark, blurry...:
  :func:`imgassets.core.images.quality.quality_outliers`): labeling them teaches little;
* near-duplicates (perceptual hash within
  :data:`imgassets.core.images.duplicates.NEAR_DUPLICATE_DISTANCE`) of an image the champion's
  dataset already labels: their labels would add almost nothing.

Strategies (:data:`STRATEGIES`):

* ``uncertainty`` (the default; *uncertainty sampling* with diversity): greedy selection, each step
  taking the candidate of highest ``0.5 * uncertainty + 0.5 * diversity``, where ``uncertainty`` is
  the champion's (:mod:`imgassets.core.labeling.scoring`) and ``diversity`` is the candidate's
  cosine distance (on the champion's embedding) to the nearest image already queued, divided by the
  largest such distance (1 for every candidate before the first pick): the k-center greedy of
  Sener and Savarese (*Active Learning for CNNs: a Core-Set Approach*, ICLR 2018) weighted by
  uncertainty, so that the queue does not spend its budget on ten views of one confusing scene.
  A candidate that is a near-duplicate of an image already queued is set aside when that image is.
* ``random``: the candidates in an order fixed by the hash of their content (the baseline
  :mod:`benchmarks.active_learning` compares with).

Without a champion there is nothing to score with: the queue is the ``random`` order, said so.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from imgassets.core.images.duplicates import NEAR_DUPLICATE_DISTANCE, cross_pairs, near_duplicate_pairs
from imgassets.core.labeling.scoring import ImageScore

UNCERTAINTY = "uncertainty"
RANDOM = "random"
STRATEGIES = (UNCERTAINTY, RANDOM)
DEFAULT_TOP = 100
"""Images the queue ranks when no budget is given."""
PRELABEL_CONFIDENCE = 0.25
"""Lowest confidence of a champion box offered as a pre-annotation (Ultralytics' ``predict`` default)."""


@dataclass(frozen=True)
class Candidate:
    """An unlabelled image of the snapshot: content hash, path in the scientist's folder, displayed
    size in pixels and perceptual hash (16 hex digits, or None)."""

    sha256: str
    path: str
    width: int
    height: int
    phash: str | None


@dataclass
class LabelingQueue:
    """A ranked queue: ``entries`` (``{rank, sha256, path, width, height, score, uncertainty,
    diversity, max_confidence, prelabels}``, rank 1 first; ``prelabels``: the champion's boxes at or
    above :data:`PRELABEL_CONFIDENCE`, ``{class_id, class_name, x_center, y_center, width, height,
    confidence}`` in normalized xywh), ``set_aside`` (``{sha256, path, reason}``), how many
    candidates there were, and who ranked them (``model_id`` and ``dataset_id`` of the champion,
    ``class_names`` in its id order, or empty without one)."""

    scientist: str
    strategy: str
    candidates: int
    entries: list[dict] = field(default_factory=list)
    set_aside: list[dict] = field(default_factory=list)
    model_id: str = ""
    dataset_id: str = ""
    class_names: list[str] = field(default_factory=list)
    note: str = ""

    def to_record(self) -> dict:
        """The queue as a JSON-able dict (what ``imgassets queue --json`` prints)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> LabelingQueue:
        """The queue back from :meth:`to_record` (extra keys, such as a record's seal, ignored)."""
        return cls(**{k: record[k] for k in cls.__dataclass_fields__ if k in record})


def random_order(shas: list[str], seed: int = 0) -> list[str]:
    """``shas`` in an order fixed by ``seed`` and their content: SHA-256 of ``"<seed>:<sha>"``."""
    return sorted(shas, key=lambda sha: hashlib.sha256(f"{seed}:{sha}".encode()).hexdigest())


def _greedy(order: list[str], scores: dict[str, ImageScore], top: int,
            twins: dict[str, list[tuple[str, int]]], aside: dict[str, str], paths: dict[str, str]) -> list[tuple]:
    """``(sha256, score, diversity)`` of up to ``top`` candidates of ``order`` by the
    uncertainty-weighted k-center rule (module docstring); each pick sets its near-duplicate
    ``twins`` aside (in ``aside``, by the pick's path in ``paths``). O(top x candidates) dot products."""
    if not order:
        return []
    at = {sha: i for i, sha in enumerate(order)}
    embeddings = np.stack([scores[sha].embedding for sha in order]).astype(np.float32)
    uncertainty = np.array([scores[sha].uncertainty for sha in order])
    nearest = np.full(len(order), np.inf)  # cosine distance to the nearest image queued
    taken = np.zeros(len(order), bool)
    picked: list[tuple] = []
    while len(picked) < top and not taken.all():
        if np.isinf(nearest).all():
            diversity = np.ones(len(order))
        else:
            finite = np.where(np.isinf(nearest), 0.0, nearest)
            diversity = finite / (finite[~taken].max() or 1.0)
        score = np.where(taken, -np.inf, 0.5 * uncertainty + 0.5 * diversity)
        i = int(np.argmax(score))
        picked.append((order[i], float(score[i]), float(diversity[i])))
        taken[i] = True
        for twin, distance in twins.get(order[i], []):
            if not taken[at[twin]]:
                taken[at[twin]] = True
                aside[twin] = f"near-duplicate (distance {distance}) of queued image {paths[order[i]]}"
        nearest = np.minimum(nearest, np.maximum(0.0, 1.0 - embeddings @ embeddings[i]))
    return picked


def _in_order(order: list[str], top: int, twins: dict[str, list[tuple[str, int]]], aside: dict[str, str],
              paths: dict[str, str]) -> list[tuple]:
    """``(sha256, 0, 0)`` of up to ``top`` candidates of ``order`` taken in that order, each pick
    setting its near-duplicate ``twins`` aside, as :func:`_greedy` does."""
    picked: list[tuple] = []
    for sha in order:
        if len(picked) >= top:
            break
        if sha in aside:
            continue
        picked.append((sha, 0.0, 0.0))
        for twin, distance in twins.get(sha, []):
            aside.setdefault(twin, f"near-duplicate (distance {distance}) of queued image {paths[sha]}")
    return picked


def rank_queue(scientist: str, candidates: list[Candidate], scores: dict[str, ImageScore] | None,
               labelled_phashes: dict[str, str], outliers: dict[str, str], top: int = DEFAULT_TOP,
               strategy: str = UNCERTAINTY, class_names: list[str] | None = None, model_id: str = "",
               dataset_id: str = "", max_distance: int = NEAR_DUPLICATE_DISTANCE, seed: int = 0,
               prelabel_confidence: float = PRELABEL_CONFIDENCE) -> LabelingQueue:
    """Rank ``candidates`` (rules in the module docstring).

    ``scores``: the champion's, by content hash (None without a champion: then ``random``);
    ``labelled_phashes``: content hash -> perceptual hash of the images the champion's dataset
    labels; ``outliers``: path -> quality reason; ``top``: the budget (images ranked);
    ``class_names``: the champion's, in id order (pre-annotations are named by them);
    ``prelabel_confidence``: the champion's operating point (its boxes at or above it are the
    pre-annotations, :mod:`imgassets.core.training.operating_point`). Raises
    ``ValueError`` for an unknown ``strategy`` or a ``top`` below 1."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown labeling strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    if top < 1:
        raise ValueError(f"the queue's budget must be at least 1 image, not {top}")
    note = ""
    if scores is None and strategy == UNCERTAINTY:
        strategy, note = RANDOM, "no champion yet: nothing to score with, the queue is in random order"
    queue = LabelingQueue(scientist, strategy, len(candidates), model_id=model_id, dataset_id=dataset_id,
                          class_names=list(class_names or []), note=note)
    by_sha = {c.sha256: c for c in candidates}
    aside: dict[str, str] = {}
    for c in candidates:
        if c.path in outliers:
            aside[c.sha256] = f"image quality: {outliers[c.path]}"
    phashes = {c.sha256: c.phash for c in candidates if c.phash and c.sha256 not in aside}
    known = {sha: ph for sha, ph in labelled_phashes.items() if ph}
    for a, b, distance in cross_pairs(phashes, known, max_distance) if phashes and known else []:
        mine, theirs = (a, b) if a in phashes else (b, a)
        aside.setdefault(mine, f"near-duplicate (distance {distance}) of labelled image {theirs[:12]}")
    remaining = [c.sha256 for c in candidates if c.sha256 not in aside]
    twins: dict[str, list[tuple[str, int]]] = {}
    for a, b, distance in near_duplicate_pairs({sha: phashes[sha] for sha in remaining if sha in phashes}, max_distance):
        twins.setdefault(a, []).append((b, distance))
        twins.setdefault(b, []).append((a, distance))
    paths = {c.sha256: c.path for c in candidates}
    if strategy == RANDOM:
        ordered = _in_order(random_order(remaining, seed), top, twins, aside, paths)
    else:
        ordered = _greedy(sorted(remaining), scores or {}, top, twins, aside, paths)
    for sha, score, diversity in ordered:
        c, s = by_sha[sha], (scores or {}).get(sha)
        queue.entries.append({
            "rank": len(queue.entries) + 1, "sha256": sha, "path": c.path, "width": c.width, "height": c.height,
            "score": round(score, 6), "uncertainty": round(s.uncertainty, 6) if s else 0.0,
            "diversity": round(diversity, 6), "max_confidence": round(s.max_confidence, 6) if s else 0.0,
            "prelabels": prelabels(s, queue.class_names, prelabel_confidence) if s else []})
    queue.set_aside = [{"sha256": sha, "path": by_sha[sha].path, "reason": reason}
                       for sha, reason in sorted(aside.items(), key=lambda item: by_sha[item[0]].path)]
    return queue


def prelabels(score: ImageScore, class_names: list[str], confidence: float = PRELABEL_CONFIDENCE) -> list[dict]:
    """The champion's boxes of ``score`` at or above ``confidence`` as pre-annotations, named by
    ``class_names`` (the champion's dataset's, in id order), most confident first."""
    return [{**box, "class_name": class_names[box["class_id"]] if box["class_id"] < len(class_names) else str(box["class_id"])}
            for box in score.boxes if box["confidence"] >= confidence]
