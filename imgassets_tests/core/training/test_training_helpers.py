"""Training helpers as plain functions: model sources, metric regression."""

from __future__ import annotations

import pytest

from imgassets.core.training.train import TrainingConfigError, check_model_source, map_regression


@pytest.mark.parametrize("current,previous,expected", [
    ({"mAP50-95": 0.40}, {"mAP50-95": 0.50}, "mAP50-95 0.4000 is 0.1000 below the previous model's 0.5000 (allowed drop 0.05)"),
    ({"mAP50-95": 0.47}, {"mAP50-95": 0.50}, None),
    ({"mAP50-95": 0.60}, {"mAP50-95": 0.50}, None),
    ({"mAP50-95": 0.10}, None, None),
])
def test_map_regression(current, previous, expected):
    assert map_regression(current, previous, 0.05) == expected


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
