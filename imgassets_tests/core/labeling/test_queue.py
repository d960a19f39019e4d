"""The labeling queue's ranking (imgassets.core.labeling.queue), on scores made to show each rule."""

from __future__ import annotations

import numpy as np
import pytest

from imgassets.core.labeling.queue import RANDOM, Candidate, LabelingQueue, rank_queue
from imgassets.core.labeling.scoring import ImageScore, binary_entropy


def _unit(vector) -> np.ndarray:
    v = np.asarray(vector, np.float32)
    return v / np.linalg.norm(v)


def _candidate(i: int, phash: str | None = None) -> Candidate:
    return Candidate(f"{i:064x}", f"new/{i:03d}.jpg", 640, 480, phash)


def _score(i: int, confidences: list[float], direction) -> ImageScore:
    boxes = [{"class_id": 0, "x_center": 0.5, "y_center": 0.5, "width": 0.2, "height": 0.2, "confidence": c}
             for c in sorted(confidences, reverse=True)]
    uncertainty = float(binary_entropy(np.array(confidences)).max()) if confidences else 0.0
    return ImageScore(f"{i:064x}", uncertainty, max(confidences, default=0.0), boxes, _unit(direction))


def test_binary_entropy_peaks_at_even_odds():
    assert binary_entropy(np.array([0.5]))[0] == pytest.approx(1.0)
    assert binary_entropy(np.array([0.99]))[0] < 0.1
    assert binary_entropy(np.array([0.0, 1.0])).max() < 1e-6


def test_uncertain_images_come_first_and_the_queue_spreads_over_the_embedding():
    # images 0-3: one scene the champion is unsure about (even odds), seen four times (same direction);
    # image 4: another scene, a little less uncertain; images 5-7: sure detections
    scores = {**{i: _score(i, [0.5], [1, 0, 0]) for i in range(4)}, 4: _score(4, [0.35], [0, 1, 0]),
              **{i: _score(i, [0.97], [0, 0, 1 + i]) for i in range(5, 8)}}
    candidates = [_candidate(i) for i in range(8)]
    queue = rank_queue("ana", candidates, {s.sha256: s for s in scores.values()}, {}, {}, top=3,
                       class_names=["thing"], model_id="m1")
    ranked = [e["path"] for e in queue.entries]
    assert ranked[0] in {f"new/{i:03d}.jpg" for i in range(4)}  # the most uncertain first
    assert ranked[1] == "new/004.jpg"  # then the other scene: a second view of the first teaches less
    assert [e["rank"] for e in queue.entries] == [1, 2, 3] and len(queue.entries) == 3
    first = queue.entries[0]
    assert first["prelabels"] == [{"class_id": 0, "class_name": "thing", "x_center": 0.5, "y_center": 0.5,
                                   "width": 0.2, "height": 0.2, "confidence": 0.5}]
    assert queue.model_id == "m1" and queue.candidates == 8


def test_prelabels_are_the_boxes_at_or_above_the_operating_confidence():
    score = _score(0, [0.9, 0.3, 0.1], [1, 0])
    queue = rank_queue("ana", [_candidate(0)], {score.sha256: score}, {}, {}, class_names=["thing"])
    assert [b["confidence"] for b in queue.entries[0]["prelabels"]] == [0.9, 0.3]


def test_quality_outliers_and_near_duplicates_are_set_aside_with_their_reason():
    candidates = [_candidate(0, "0000000000000000"), _candidate(1, "0000000000000001"),  # near twins
                  _candidate(2, "ffffffffffffffff"),  # a near-duplicate of a labelled image
                  _candidate(3, "00000000ffffffff")]  # a blank frame
    scores = {c.sha256: _score(i, [0.5], [1, i]) for i, c in enumerate(candidates)}
    labelled = {"a" * 64: "fffffffffffffffe"}
    queue = rank_queue("ana", candidates, scores, labelled, {"new/003.jpg": "near-constant image"}, class_names=["t"])
    aside = {a["path"]: a["reason"] for a in queue.set_aside}
    assert aside["new/003.jpg"] == "image quality: near-constant image"
    assert aside["new/002.jpg"].startswith("near-duplicate (distance 1) of labelled image aaaaaaaaaaaa")
    queued = [e["path"] for e in queue.entries]
    assert len(queued) == 1 and queued[0] in {"new/000.jpg", "new/001.jpg"}
    twin = ({"new/000.jpg", "new/001.jpg"} - set(queued)).pop()
    assert aside[twin] == f"near-duplicate (distance 1) of queued image {queued[0]}"


def test_random_order_is_fixed_by_content_and_used_without_a_champion():
    candidates = [_candidate(i) for i in range(20)]
    once = rank_queue("ana", candidates, None, {}, {}, top=5)
    again = rank_queue("ana", list(reversed(candidates)), None, {}, {}, top=5)
    assert once.strategy == RANDOM and "no champion" in once.note
    assert [e["path"] for e in once.entries] == [e["path"] for e in again.entries]
    assert [e["path"] for e in once.entries] != [f"new/{i:03d}.jpg" for i in range(5)]  # not path order
    other = rank_queue("ana", candidates, None, {}, {}, top=5, seed=1)
    assert [e["path"] for e in other.entries] != [e["path"] for e in once.entries]


def test_a_queue_survives_its_record():
    score = _score(0, [0.5], [1, 0])
    queue = rank_queue("ana", [_candidate(0)], {score.sha256: score}, {}, {}, class_names=["t"], model_id="m")
    record = {**queue.to_record(), "record_sha256": "x"}
    assert LabelingQueue.from_record(record) == queue


@pytest.mark.parametrize(("strategy", "top"), [("best", 5), ("random", 0)])
def test_an_unknown_strategy_or_an_empty_budget_is_refused(strategy, top):
    with pytest.raises(ValueError, match="strategy|budget"):
        rank_queue("ana", [], None, {}, {}, top=top, strategy=strategy)
