"""Per-image evaluation: box matching and the worst images per scientist."""

from __future__ import annotations

import pandas as pd
import pytest

from imgassets.core.training.evaluate import iou_xywh, match_boxes, worst_images


@pytest.mark.parametrize("a,b,expected", [
    ((0.5, 0.5, 0.2, 0.2), (0.5, 0.5, 0.2, 0.2), 1.0),
    ((0.5, 0.5, 0.2, 0.2), (0.6, 0.5, 0.2, 0.2), 1 / 3),
    ((0.2, 0.2, 0.1, 0.1), (0.8, 0.8, 0.1, 0.1), 0.0),
])
def test_iou(a, b, expected):
    assert iou_xywh(a, b) == pytest.approx(expected)


def test_matching_counts_missed_and_spurious_by_class_and_confidence():
    labelled = [(0, (0.3, 0.3, 0.2, 0.2)), (1, (0.7, 0.7, 0.2, 0.2)), (0, (0.5, 0.8, 0.1, 0.1))]
    predicted = [(0, (0.31, 0.3, 0.2, 0.2), 0.9),   # matches the first
                 (0, (0.3, 0.31, 0.2, 0.2), 0.5),   # a duplicate: spurious
                 (0, (0.7, 0.7, 0.2, 0.2), 0.8)]    # right place, wrong class: spurious
    assert match_boxes(labelled, predicted) == (1, 2, 2)
    assert match_boxes([], []) == (0, 0, 0)


def test_worst_images_per_scientist():
    frame = pd.DataFrame({"scientist": ["a", "a", "a", "b"], "path": ["x", "y", "z", "w"], "errors": [1, 5, 5, 0]})
    assert list(worst_images(frame, per_scientist=2)[["scientist", "path"]].itertuples(index=False, name=None)) == [
        ("a", "y"), ("a", "z")]  # b's only image has no error
