"""Training helpers as plain functions: model sources, the promotion rule."""

from __future__ import annotations

import pytest

from imgassets.core.training.benchmark import BenchmarkScores, promotion_decision
from imgassets.core.training.train import TrainingConfigError, check_model_source


def _scores(map50_95: float, images: int = 12, imgsz: int = 0) -> BenchmarkScores:
    return BenchmarkScores({"mAP50": map50_95 + 0.1, "mAP50-95": map50_95, "precision": 0.5, "recall": 0.5},
                           images=images, imgsz=imgsz)


@pytest.mark.parametrize("challenger,champion,champion_id,promoted,reason", [
    (0.40, None, None, True, "the first model: champion"),
    (0.40, 0.50, "m1", False, "not promoted: on the same 12 benchmark images the challenger scores mAP50-95 0.4000 "
                              "(at 64 px) and champion m1 0.5000 (at 128 px), 0.1000 better; the challenger may be "
                              "at most 0.01 below"),
    (0.495, 0.50, "m1", True, "promoted: on the same 12 benchmark images the challenger scores mAP50-95 0.4950 "
                              "(at 64 px) and champion m1 0.5000 (at 128 px); the challenger may be at most 0.01 below"),
    (0.60, 0.50, "m1", True, "promoted: on the same 12 benchmark images the challenger scores mAP50-95 0.6000"),
    (None, None, "m1", False, "the dataset has no benchmark image"),
])
def test_promotion_decision(challenger, champion, champion_id, promoted, reason):
    decision = promotion_decision(_scores(challenger, imgsz=64) if challenger is not None else None,
                                  _scores(champion, imgsz=128) if champion is not None else None, champion_id, 0.01)
    assert decision.promoted is promoted and decision.reason.startswith(reason)


def test_a_champion_of_other_classes_is_replaced_and_the_decision_says_why():
    decision = promotion_decision(_scores(0.1), None, "m1", 0.01, "trained on classes ['a'], the benchmark has ['a', 'b']")
    assert decision.promoted and "champion m1 cannot be scored on this benchmark (trained on classes" in decision.reason


@pytest.mark.parametrize("source,message", [
    ("missing.pt", "weights file missing.pt not found"),
    ("yolov8n", "must be an Ultralytics model .yaml or a local .pt"),
])
def test_model_sources_that_would_download_are_refused(source, message):
    with pytest.raises(TrainingConfigError, match=message):
        check_model_source(source)


def test_local_weights_and_yaml_are_accepted(tmp_path):
    (tmp_path / "w.pt").write_bytes(b"x")
    check_model_source(str(tmp_path / "w.pt"))
    check_model_source("yolov8n.yaml")
