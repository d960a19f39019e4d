"""Model-assisted label review on planted cases: a deleted box, a swapped class, a shifted box, and
clean boxes that must not be flagged."""

from __future__ import annotations

import pytest

from imgassets.core.training.review import (
    MISLOCATED,
    MISSING_BOX,
    WRONG_CLASS,
    ReviewSettings,
    review_image,
    why_model_cannot_judge,
)

CAT = (0.3, 0.3, 0.2, 0.2)
DOG = (0.7, 0.7, 0.2, 0.2)


def test_agreeing_labels_and_predictions_give_nothing():
    assert review_image([("cat", CAT), ("dog", DOG)], [("cat", CAT, 0.9), ("dog", (0.71, 0.7, 0.2, 0.2), 0.8)]) == []


def test_a_deleted_box_is_a_possibly_missing_box():
    [found] = review_image([("cat", CAT)], [("cat", CAT, 0.9), ("dog", DOG, 0.8)])
    assert found.kind == MISSING_BOX and found.box is None and found.confidence == 0.8
    assert "the model sees a dog at x 0.70, y 0.70" in found.reason


def test_a_swapped_class_is_a_possibly_wrong_class():
    [found] = review_image([("cat", CAT), ("cat", DOG)], [("cat", CAT, 0.9), ("dog", DOG, 0.85)])
    assert (found.kind, found.box, found.confidence) == (WRONG_CLASS, 1, 0.85)
    assert "labelled cat at x 0.70" in found.reason and "sees a dog there" in found.reason


def test_a_shifted_box_is_possibly_mislocated():
    shifted = (0.38, 0.3, 0.2, 0.2)  # IoU with CAT about 0.43
    [found] = review_image([("cat", shifted)], [("cat", CAT, 0.9)])
    assert (found.kind, found.box) == (MISLOCATED, 0) and "IoU 0.4" in found.reason


def test_unconfident_predictions_are_not_the_models_word():
    assert review_image([("cat", CAT)], [("cat", CAT, 0.9), ("dog", DOG, 0.3)], ReviewSettings(min_confidence=0.5)) == []


def test_findings_are_ranked_by_confidence():
    found = review_image([], [("cat", CAT, 0.6), ("dog", DOG, 0.95)])
    assert [f.confidence for f in found] == [0.95, 0.6]


@pytest.mark.parametrize("score,verdict", [(None, "no benchmark score"), (0.2, "below 0.5"), (0.8, None)])
def test_a_weak_model_does_not_judge(score, verdict):
    reason = why_model_cannot_judge(score)
    assert reason is None if verdict is None else verdict in reason
