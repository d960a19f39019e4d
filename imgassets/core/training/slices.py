"""Where a model loses: benchmark scores per slice, champion beside challenger, with bootstrap intervals.

A *slice* is a part of the benchmark (``kind``, ``name``):

- ``scientist``, ``camera`` (EXIF make and model; ``unknown`` without), ``quality`` (the image's
  brightness and sharpness against the benchmark's: ``dark``, ``bright``, ``blurry`` or ``normal``,
  :func:`quality_buckets`): sets of *images*, scored on their images alone;
- ``class``: one class's AP over every benchmark image; ``class group`` (the class registry's
  groups): the mean AP of its classes;
- ``size``: COCO's object sizes by box area in pixels² of the original image (``small`` < 32²,
  ``medium`` < 96², ``large``): the labelled boxes of that size, the detections matched to them and
  the unmatched detections of that size (a detection matching a box of another size, or unmatched
  and of another size, is left out: COCO's area-range rule, at IoU 0.5).

Scores are Ultralytics' (``ap_per_class`` on Ultralytics' per-detection matching of the pass,
:mod:`imgassets.core.training.staged_model`), so the ``all`` slice is the benchmark's mAP50-95. Each
slice has its support (images, labelled boxes) and a 95% percentile-bootstrap interval over images
(``resamples`` draws of the slice's images with replacement). When a champion was scored on the
same images, each draw scores both models on the *same* images (a paired bootstrap), giving the
interval of the difference.

A slice *regressed* (:func:`regressed`) when it has enough support (``min_images`` images and
``min_boxes`` labelled boxes), the challenger is below the champion by more than the margin, and
the difference's interval lies wholly below 0: a drop the resampling does not explain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from imgassets.core.images.quality import robust_scores
from imgassets.core.training.staged_model import Pass

SIZES = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, float("inf"))}
"""COCO's object sizes: box area (pixels² of the original image) from (inclusive) .. to (exclusive)."""
QUALITY_Z = 2.0
"""Robust z-score beyond which an image is in a quality bucket (the quality report flags outliers at 3.5)."""
SLICE_COLUMNS = ["kind", "slice", "images", "boxes", "challenger", "challenger_low", "challenger_high",
                 "champion", "difference", "difference_low", "difference_high", "challenger_mAP50", "champion_mAP50",
                 "enough_support", "regressed"]


@dataclass(frozen=True)
class SlicePolicy:
    """How slices are judged: bootstrap ``resamples``, the support a slice needs to be judged
    (``min_images``, ``min_boxes``), the ``protected`` slices (``"kind:name"``, e.g.
    ``"scientist:alice"``, ``"class:person"``) whose regression blocks promotion, and the random ``seed``."""

    resamples: int = 100
    min_images: int = 20
    min_boxes: int = 20
    protected: tuple[str, ...] = ()
    seed: int = 0


def quality_buckets(signals: pd.DataFrame) -> pd.Series:
    """The quality bucket of each image of ``signals`` (``brightness``, ``sharpness``; one row an
    image): ``dark`` or ``bright`` (brightness beyond :data:`QUALITY_Z` robust z-scores of the
    benchmark's and at least 0.15 from its median), else ``blurry`` (sharpness below, on a log
    scale, and under a quarter of the median), else ``normal``: the quality report's measures
    (:mod:`imgassets.core.images.quality`) with a wider tail."""
    buckets = pd.Series("normal", index=signals.index, dtype=object)
    if len(signals) < 2:
        return buckets
    blurry = robust_scores(signals["sharpness"].to_numpy(float), True, float(np.log(4.0))) < -QUALITY_Z
    brightness = robust_scores(signals["brightness"].to_numpy(float), False, 0.15)
    buckets[blurry] = "blurry"
    buckets[brightness < -QUALITY_Z] = "dark"
    buckets[brightness > QUALITY_Z] = "bright"
    return buckets


def _image_stats(detections: np.ndarray, truth: np.ndarray, area: tuple[float, float] | None = None) -> dict:
    """Ultralytics' matching statistics of one image (``tp`` at IoU 0.50:0.95, ``conf``,
    ``pred_cls``, ``target_cls``), for the boxes of one size range ``area`` (module docstring) or all."""
    import torch
    from ultralytics.utils.metrics import box_iou

    detections = detections[np.argsort(-detections[:, 4], kind="stable")] if len(detections) else detections
    if area is not None:
        areas = (truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1])
        inside = (areas >= area[0]) & (areas < area[1])
        keep = np.ones(len(detections), bool)
        if len(detections):
            own = (detections[:, 2] - detections[:, 0]) * (detections[:, 3] - detections[:, 1])
            keep = (own >= area[0]) & (own < area[1])
            if len(truth):
                overlap = box_iou(torch.from_numpy(truth[:, :4]), torch.from_numpy(detections[:, :4])).numpy()
                overlap = overlap * (truth[:, 4:5] == detections[:, 5][None, :])
                matched = overlap.max(0) >= 0.5
                keep = np.where(matched, inside[overlap.argmax(0)], keep)
        detections, truth = detections[keep], truth[inside]
    tp = np.zeros((len(detections), 10), bool)
    if len(detections) and len(truth):
        tp = _match(detections, truth)
    return {"tp": tp, "conf": detections[:, 4], "pred_cls": detections[:, 5], "target_cls": truth[:, 4]}


def _match(detections: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Ultralytics' ``match_predictions`` (greedy by IoU at each of 10 thresholds 0.50:0.95)."""
    import torch
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils.metrics import box_iou

    iou = box_iou(torch.from_numpy(truth[:, :4]), torch.from_numpy(detections[:, :4]))

    class _Thresholds:
        iouv = torch.linspace(0.5, 0.95, 10)

    return BaseValidator.match_predictions(_Thresholds(), torch.from_numpy(detections[:, 5]),
                                           torch.from_numpy(truth[:, 4]), iou)


def _scores(stats: list[dict], classes: int) -> tuple[float, float, np.ndarray]:
    """(mAP50-95, mAP50, AP50-95 per class id (NaN: no box of it)) of concatenated image statistics."""
    from ultralytics.utils.metrics import ap_per_class

    per_class = np.full(classes, np.nan)
    target = np.concatenate([s["target_cls"] for s in stats]) if stats else np.zeros(0)
    if not len(target):
        return 0.0, 0.0, per_class
    joined = {k: np.concatenate([s[k] for s in stats]) for k in ("tp", "conf", "pred_cls")}
    result = ap_per_class(joined["tp"], joined["conf"], joined["pred_cls"], target)
    ap, unique = result[5], result[6]
    per_class[unique.astype(int)] = ap.mean(1)
    return float(ap.mean()), float(ap[:, 0].mean()), per_class


@dataclass(frozen=True)
class _Slice:
    kind: str
    name: str
    images: np.ndarray  # positions in the pass's records
    boxes: int
    area: tuple[float, float] | None = None
    class_ids: tuple[int, ...] = ()


def _slices(model_pass: Pass, attributes: pd.DataFrame, groups: dict[str, list[str]]) -> list[_Slice]:
    records = model_pass.records
    truth = [model_pass.of(r).truth for r in records]
    boxes = np.array([len(t) for t in truth])
    everything = np.arange(len(records))
    found = [_Slice("all", "all", everything, int(boxes.sum()))]
    for kind in ("scientist", "camera", "quality"):
        for name, positions in attributes.groupby(kind).indices.items():
            found.append(_Slice(kind, str(name), np.asarray(positions), int(boxes[positions].sum())))
    names = model_pass.class_names
    for class_id, name in enumerate(names):
        count = sum(int((t[:, 4] == class_id).sum()) for t in truth)
        if count:
            found.append(_Slice("class", name, everything, count, class_ids=(class_id,)))
    for group, members in sorted(groups.items()):
        ids = tuple(sorted(names.index(m) for m in members if m in names))
        count = sum(int(np.isin(t[:, 4], ids).sum()) for t in truth)
        if count:
            found.append(_Slice("class group", group, everything, count, class_ids=ids))
    for size, area in SIZES.items():
        count = 0
        for t in truth:
            areas = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
            count += int(((areas >= area[0]) & (areas < area[1])).sum())
        if count:
            found.append(_Slice("size", size, everything, count, area=area))
    return found


def slice_table(challenger: Pass, attributes: pd.DataFrame, champion: Pass | None = None, margin: float = 0.01,
                groups: dict[str, list[str]] | None = None, policy: SlicePolicy = SlicePolicy()) -> pd.DataFrame:
    """Scores per slice of the benchmark pass ``challenger`` (and ``champion``'s pass over the same
    records, when given), one row a slice (:data:`SLICE_COLUMNS`; mAP50-95 unless named mAP50;
    champion columns NaN without a champion). ``attributes``: one row per record of the pass, in
    order, with ``scientist``, ``camera``, ``quality`` (:func:`quality_buckets`); ``groups``: class
    group -> class names. Rules in the module docstring."""
    classes = len(challenger.class_names)
    slices = _slices(challenger, attributes.reset_index(drop=True), groups or {})
    passes = [challenger] + ([champion] if champion is not None else [])
    areas = {s.area for s in slices}
    stats = [{area: [_image_stats(p.of(r).detections, p.of(r).truth, area) if p.of(r).stats else None
                     for r in p.records] for area in areas} for p in passes]
    rng = np.random.default_rng(policy.seed)
    everything = slices[0].images
    samples: dict[str, list[np.ndarray]] = {}  # slices over every image share their draws (and their scores)
    memo: dict[tuple, tuple[float, float, np.ndarray]] = {}

    def scores(which: int, area: tuple | None, key: tuple, positions: np.ndarray) -> tuple[float, float, np.ndarray]:
        if (which, area, key) not in memo:
            chosen = [stats[which][area][i] for i in positions if stats[which][area][i] is not None]
            memo[which, area, key] = _scores(chosen, classes)
        return memo[which, area, key]

    rows = []
    for item in slices:
        shared = item.images is everything
        name = "all" if shared else f"{item.kind}:{item.name}"
        if name not in samples:
            samples[name] = [rng.choice(item.images, len(item.images)) for _ in range(policy.resamples)]

        def value(result: tuple[float, float, np.ndarray], item: _Slice = item) -> tuple[float, float]:
            if not item.class_ids:
                return result[0], result[1]
            ap = result[2][list(item.class_ids)]
            return (float(np.nanmean(ap)) if not np.isnan(ap).all() else 0.0), float("nan")

        point = [value(scores(k, item.area, (name, "point"), item.images)) for k in range(len(passes))]
        draws = np.array([[value(scores(k, item.area, (name, d), sample))[0] for k in range(len(passes))]
                          for d, sample in enumerate(samples[name])]).reshape(-1, len(passes))
        low, high = np.percentile(draws[:, 0], [2.5, 97.5]) if len(draws) else (np.nan, np.nan)
        row = {"kind": item.kind, "slice": item.name, "images": int(len(item.images)), "boxes": item.boxes,
               "challenger": point[0][0], "challenger_low": float(low), "challenger_high": float(high),
               "challenger_mAP50": point[0][1], "champion": np.nan, "difference": np.nan, "difference_low": np.nan,
               "difference_high": np.nan, "champion_mAP50": np.nan,
               "enough_support": bool(len(item.images) >= policy.min_images and item.boxes >= policy.min_boxes)}
        if champion is not None and len(draws):
            difference = draws[:, 0] - draws[:, 1]
            row.update(champion=point[1][0], champion_mAP50=point[1][1], difference=point[0][0] - point[1][0],
                       difference_low=float(np.percentile(difference, 2.5)),
                       difference_high=float(np.percentile(difference, 97.5)))
        row["regressed"] = bool(champion is not None and row["enough_support"] and row["difference"] < -margin
                                and row["difference_high"] < 0)
        rows.append(row)
    return pd.DataFrame(rows, columns=SLICE_COLUMNS)


def regressed(table: pd.DataFrame) -> list[str]:
    """``"kind:name"`` of each slice of ``table`` (:func:`slice_table`) that regressed."""
    return [f"{r.kind}:{r.slice}" for r in table.itertuples() if r.regressed]


def protected_regressions(table: pd.DataFrame, protected: tuple[str, ...]) -> list[str]:
    """The regressed slices of ``table`` among ``protected`` (``"kind:name"``; ``"all"`` too)."""
    wanted = {p.strip() for p in protected}
    return [name for name in regressed(table) if name in wanted]
