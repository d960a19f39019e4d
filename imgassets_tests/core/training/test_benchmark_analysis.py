"""Error types, COCO's reference scores, slices and the operating point on planted prediction
passes: each planted error is found where it was planted, and the scores agree with Ultralytics'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imgassets.core.training.benchmark import BenchmarkScores, promotion_decision
from imgassets.core.training.error_types import coco_reference, confusion_matrix, error_types
from imgassets.core.training.operating_point import at_confidence, choose_operating_point
from imgassets.core.training.slices import SlicePolicy, protected_regressions, quality_buckets, regressed, slice_table
from imgassets.core.training.staged_model import ImagePass, Pass

NAMES = ["cat", "dog"]


def _image(truth: list[tuple], detections: list[tuple], shape=(480, 640)) -> ImagePass:
    """An image's pass from pixel boxes: ``truth`` (x0, y0, x1, y1, cls), ``detections`` (x0, y0, x1, y1, conf, cls),
    with Ultralytics' own matching statistics."""
    from imgassets.core.training.slices import _image_stats

    t = np.array(truth, float).reshape(-1, 5)
    d = np.array(detections, float).reshape(-1, 6)
    stats = _image_stats(d, t)
    stats["target_img"] = np.unique(t[:, 4])
    return ImagePass([], stats, d, t, shape)


def _pass(images: list[tuple[str, ImagePass]]) -> Pass:
    records = [{"sha256": f"{i:064x}", "scientist": s, "path": f"{s}/{i}.jpg", "boxes": []} for i, (s, _) in
               enumerate(images)]
    passes = {r["sha256"]: p for r, (_, p) in zip(records, images, strict=True)}
    return Pass(records, {}, {}, passes, NAMES)


def _planted(rng: np.random.Generator, miss_b: bool = False, wrong_class: float = 0.0, jitter: float = 2.0,
             scientists=("a", "b"), per: int = 30) -> Pass:
    """Per scientist ``per`` images with 1-3 boxes each, found with small jitter; scientist b's boxes
    missed when ``miss_b``; a share ``wrong_class`` of detections with the other class."""
    images = []
    for scientist in scientists:
        for _ in range(per):
            truth, detections = [], []
            for _ in range(int(rng.integers(1, 4))):
                x, y = rng.uniform(0, 500), rng.uniform(0, 350)
                w, h = rng.uniform(20, 130), rng.uniform(20, 120)
                cls = int(rng.integers(0, 2))
                truth.append((x, y, x + w, y + h, cls))
                if miss_b and scientist == "b":
                    continue
                found = 1 - cls if rng.random() < wrong_class else cls
                dx, dy = rng.normal(0, jitter, 2)
                detections.append((x + dx, y + dy, x + w + dx, y + h + dy, float(rng.uniform(0.6, 0.95)), found))
            detections.append((600, 440, 630, 470, float(rng.uniform(0.01, 0.3)), 0))  # a weak spurious box
            images.append((scientist, _image(truth, detections)))
    return _pass(images)


def _ultralytics(model_pass: Pass) -> tuple[float, float]:
    """(mAP50-95, mAP50) of the pass by Ultralytics' own ``ap_per_class``."""
    from ultralytics.utils.metrics import ap_per_class

    stats = [model_pass.of(r).stats for r in model_pass.records]
    joined = {k: np.concatenate([s[k] for s in stats]) for k in ("tp", "conf", "pred_cls", "target_cls")}
    ap = ap_per_class(joined["tp"], joined["conf"], joined["pred_cls"], joined["target_cls"])[5]
    return float(ap.mean()), float(ap[:, 0].mean())


def _attributes(model_pass: Pass) -> pd.DataFrame:
    return pd.DataFrame({"sha256": [r["sha256"] for r in model_pass.records],
                         "scientist": [r["scientist"] for r in model_pass.records],
                         "camera": "unknown", "quality": "normal"})


def test_coco_reference_agrees_with_ultralytics_on_the_same_pass():
    model_pass = _planted(np.random.default_rng(1), jitter=6.0, wrong_class=0.1)
    ours, at50 = _ultralytics(model_pass)
    reference = coco_reference(model_pass)
    # COCO sums the precision envelope at 101 recall points, Ultralytics integrates it: close, not equal
    assert abs(reference["mAP50-95"] - ours) < 0.01 and abs(reference["mAP50"] - at50) < 0.01
    assert 0.3 < ours < 0.99
    assert all(0 < reference[f"mAP50-95_{size}"] <= 1 for size in ("medium", "large"))


def test_error_types_name_the_planted_error():
    rng = np.random.default_rng(2)
    wrong_class = error_types(_planted(rng, wrong_class=0.4))
    assert max(wrong_class["dAP"], key=wrong_class["dAP"].get) == "classification"
    assert wrong_class["counts"]["classification"] > 0
    missed = error_types(_planted(np.random.default_rng(3), miss_b=True))
    assert max(missed["dAP"], key=missed["dAP"].get) == "missed"
    assert missed["dAP"]["classification"] == pytest.approx(0.0, abs=0.01)
    assert abs(missed["mAP50"] - coco_reference(_planted(np.random.default_rng(3), miss_b=True))["mAP50"]) < 0.01


def test_the_confusion_matrix_counts_missed_and_spurious_boxes():
    model_pass = _pass([("a", _image([(10, 10, 60, 60, 0), (100, 100, 150, 150, 1)],
                                     [(10, 10, 60, 60, 0.9, 0), (300, 300, 350, 350, 0.8, 1)]))])
    names, counts = confusion_matrix(model_pass, 0.5)
    assert names == ["cat", "dog", "background"]
    assert counts[0][0] == 1  # the cat found
    assert counts[2][1] == 1  # the dog missed: predicted background
    assert counts[1][2] == 1  # a dog where nothing is labelled: spurious


def test_a_slice_that_got_worse_is_named_with_its_interval_and_the_others_are_not():
    champion = _planted(np.random.default_rng(4))
    challenger = _planted(np.random.default_rng(4), miss_b=True)  # the same images; b's boxes no longer found
    table = slice_table(challenger, _attributes(challenger), champion, margin=0.01,
                        policy=SlicePolicy(resamples=60, protected=("scientist:b", "scientist:a")))
    rows = table.set_index(["kind", "slice"])
    assert rows.loc[("scientist", "b"), "regressed"]
    assert rows.loc[("scientist", "b"), "difference_high"] < 0 < rows.loc[("scientist", "b"), "champion"]
    assert not rows.loc[("scientist", "a"), "regressed"]
    assert rows.loc[("scientist", "a"), "difference"] == pytest.approx(0.0, abs=1e-9)
    assert "scientist:b" in regressed(table)
    assert protected_regressions(table, ("scientist:b", "scientist:a")) == ["scientist:b"]
    assert {"class", "size", "camera", "quality"} <= set(table["kind"])
    assert rows.loc[("size", "large"), "boxes"] + rows.loc[("size", "medium"), "boxes"] + (
        rows.loc[("size", "small"), "boxes"] if ("size", "small") in rows.index else 0) == rows.loc[("all", "all"), "boxes"]
    # a protected regression blocks promotion even within the overall margin
    decision = promotion_decision(BenchmarkScores({"mAP50-95": 0.5}, images=60), BenchmarkScores({"mAP50-95": 0.5}),
                                  "champ", 0.01, protected=["scientist:b"])
    assert not decision.promoted and "scientist:b" in decision.reason


def test_a_slice_with_too_little_support_is_never_flagged():
    champion = _planted(np.random.default_rng(5), per=5)
    challenger = _planted(np.random.default_rng(5), per=5, miss_b=True)
    table = slice_table(challenger, _attributes(challenger), champion, policy=SlicePolicy(resamples=30))
    row = table.set_index(["kind", "slice"]).loc[("scientist", "b")]
    assert row["difference"] < -0.3 and not row["enough_support"] and not row["regressed"]


def test_the_all_slice_is_the_benchmark_score_and_without_a_champion_nothing_regresses():
    model_pass = _planted(np.random.default_rng(6), jitter=5.0)
    table = slice_table(model_pass, _attributes(model_pass), policy=SlicePolicy(resamples=30))
    everything = table.set_index(["kind", "slice"]).loc[("all", "all")]
    # the weighted computation is Ultralytics' ap_per_class, to the last digit
    assert (everything["challenger"], everything["challenger_mAP50"]) == pytest.approx(_ultralytics(model_pass), abs=1e-9)
    assert everything["challenger_low"] <= everything["challenger"] <= everything["challenger_high"]
    assert not table["regressed"].any() and table["champion"].isna().all()


def test_a_scientists_slice_is_scored_as_ultralytics_scores_their_images_alone():
    model_pass = _planted(np.random.default_rng(9), jitter=7.0, wrong_class=0.2)
    table = slice_table(model_pass, _attributes(model_pass), policy=SlicePolicy(resamples=10)).set_index(["kind", "slice"])
    alone = Pass([r for r in model_pass.records if r["scientist"] == "b"], {}, {}, model_pass.images, NAMES)
    assert (table.loc[("scientist", "b"), "challenger"], table.loc[("scientist", "b"), "challenger_mAP50"]) == (
        pytest.approx(_ultralytics(alone), abs=1e-9))


def test_quality_buckets_name_the_dark_the_bright_and_the_blurry():
    signals = pd.DataFrame({"brightness": [0.5] * 30 + [0.05, 0.97, 0.5], "sharpness": [0.2] * 30 + [0.2, 0.2, 0.005]})
    buckets = quality_buckets(signals)
    assert list(buckets[-3:]) == ["dark", "bright", "blurry"] and set(buckets[:30]) == {"normal"}


def test_the_operating_point_maximizes_f1_on_val_and_is_reported_on_another_pass():
    rng = np.random.default_rng(7)
    images = []
    for _ in range(40):  # true boxes at 0.7-0.9, spurious ones at 0.2-0.5: the best threshold lies between
        x, y = rng.uniform(0, 400, 2)
        images.append(("a", _image([(x, y, x + 80, y + 80, 0)],
                                   [(x, y, x + 80, y + 80, rng.uniform(0.7, 0.9), 0),
                                    (500, 400, 560, 460, rng.uniform(0.2, 0.5), 0)])))
    point = choose_operating_point(_pass(images))
    assert 0.5 <= point["confidence"] <= 0.7 and point["f1"] > 0.95 and set(point["per_class"]) == {"cat"}
    at = at_confidence(_pass(images), point["confidence"])
    assert at == {"precision": 1.0, "recall": 1.0, "true_positives": 40, "false_positives": 0, "missed": 0}
    low = at_confidence(_pass(images), 0.1)
    assert low["precision"] == pytest.approx(0.5) and low["false_positives"] == 40


def test_a_class_group_of_the_registry_is_a_slice_scored_as_its_classes_mean():
    from imgassets.core.labels.class_registry import ClassRegistryError, parse_registry

    registry = parse_registry(b"classes: {0: cat, 1: dog, 2: cow}\ngroups: {pets: [cat, dog]}\n", "registry.yaml")
    assert registry.groups == {"pets": ["cat", "dog"]}
    with pytest.raises(ClassRegistryError, match=r"groups.farm: 'horse' is not a class"):
        parse_registry(b"classes: {0: cat}\ngroups: {farm: [cat, horse]}\n", "registry.yaml")
    model_pass = _planted(np.random.default_rng(8), jitter=5.0)
    table = slice_table(model_pass, _attributes(model_pass), groups=registry.groups, policy=SlicePolicy(resamples=20))
    rows = table.set_index(["kind", "slice"])
    assert rows.loc[("class group", "pets"), "challenger"] == pytest.approx(
        (rows.loc[("class", "cat"), "challenger"] + rows.loc[("class", "dog"), "challenger"]) / 2)
    assert rows.loc[("class group", "pets"), "boxes"] == rows.loc[("all", "all"), "boxes"]


def test_a_model_that_finds_nothing_has_no_operating_point():
    images = [("a", _image([(10, 10, 90, 90, 0)], [(300, 300, 350, 350, 0.6, 0)])) for _ in range(10)]
    assert choose_operating_point(_pass(images)) is None


def test_keeping_an_images_100_most_confident_detections_changes_no_reference_score():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from imgassets.core.training.error_types import coco_dicts

    rng = np.random.default_rng(10)
    images = []
    for _ in range(6):  # 150 detections an image: the 50 weakest are beyond COCO's 100
        truth = [(x, y, x + 40, y + 40, 0) for x, y in rng.uniform(0, 400, (5, 2))]
        detections = [(*t[:4], float(rng.uniform(0.5, 1.0)), 0) for t in truth]
        detections += [(*rng.uniform(0, 500, 2), 600, 600, float(rng.uniform(0.001, 0.4)), 0) for _ in range(145)]
        images.append(("a", _image(truth, detections)))
    model_pass = _pass(images)
    truth, results = coco_dicts(model_pass)
    assert len(results) == 6 * 100
    every = [{"image_id": i + 1, "category_id": int(r[5]) + 1, "bbox": [r[0], r[1], r[2] - r[0], r[3] - r[1]],
              "score": float(r[4])} for i, (_, p) in enumerate(images) for r in p.detections]
    ground = COCO()
    ground.dataset = truth
    ground.createIndex()
    evaluation = COCOeval(ground, ground.loadRes(every), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert coco_reference(model_pass)["mAP50-95"] == pytest.approx(evaluation.stats[0], abs=1e-12)
