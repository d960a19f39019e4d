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

Scores are Ultralytics' (its ``ap_per_class`` on its per-detection matching of the pass,
:mod:`imgassets.core.training.staged_model`), so the ``all`` slice is the benchmark's mAP50-95. Each
slice has its support (images, labelled boxes) and a 95% percentile-bootstrap interval over images
(``resamples`` draws of the slice's images with replacement). The detections are sorted once; a
draw (or a slice) only weights each image by how often it was drawn (:func:`_weighted_scores`), so
a draw costs one pass over the detections, without sorting or copying them. When a champion was scored on the
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


_AP_X = np.linspace(0, 1, 101)


@dataclass(frozen=True)
class _Detections:
    """One model's detections over every record of a pass (for one size range), sorted once by
    confidence (most confident first): ``tp`` ``(D, 10)``, the record ``image`` of each, the
    indices of each class's detections (``by_class``), and ``truth`` ``(records, classes)``:
    labelled boxes per record and class."""

    tp: np.ndarray
    image: np.ndarray
    by_class: dict[int, np.ndarray]
    truth: np.ndarray


def _prepare(stats: list[dict | None], classes: int) -> _Detections:
    """The :class:`_Detections` of per-record statistics (None: an image the validator could not read)."""
    seen = [(i, s) for i, s in enumerate(stats) if s is not None]
    tp = np.concatenate([s["tp"] for _, s in seen]).astype(float) if seen else np.zeros((0, 10))
    conf = np.concatenate([s["conf"] for _, s in seen]) if seen else np.zeros(0)
    cls = np.concatenate([s["pred_cls"] for _, s in seen]).astype(int) if seen else np.zeros(0, int)
    image = np.concatenate([np.full(len(s["conf"]), i) for i, s in seen]) if seen else np.zeros(0, int)
    order = np.argsort(-conf, kind="stable")
    tp, cls, image = tp[order], cls[order], image[order]
    truth = np.zeros((len(stats), classes))
    for i, s in seen:
        np.add.at(truth[i], s["target_cls"].astype(int), 1)
    by_class = {}
    for c in range(classes):
        index = np.flatnonzero(cls == c)
        found = np.flatnonzero(tp[index, 0])
        # false positives less confident than a class's last true positive (at IoU 0.5, so at every
        # threshold) never raise the precision envelope: every draw's AP is the same without them
        by_class[c] = index[:found[-1] + 1] if len(found) else index[:0]
    return _Detections(tp, image, by_class, truth)


def _restrict(found: _Detections, images: np.ndarray) -> _Detections:
    """``found`` with only the detections of the records where ``images`` (a mask over records) is true."""
    if images.all():
        return found
    kept = np.flatnonzero(images[found.image])
    classes = {c: np.flatnonzero(images[found.image[index]]) for c, index in found.by_class.items()}
    position = np.full(len(found.image), -1)
    position[kept] = np.arange(len(kept))
    return _Detections(found.tp[kept], found.image[kept],
                       {c: position[found.by_class[c][keep]] for c, keep in classes.items()}, found.truth)


def _weighted_scores(found: _Detections, weights: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(mAP50-95, mAP50, AP50-95 per class id (NaN: no labelled box)) of the images weighted by
    ``weights`` (one per record: 0 leaves it out, k counts it k times, as a bootstrap draw does):
    Ultralytics' ``ap_per_class`` (cumulative true and false positives by confidence, recall over
    the labelled boxes, the precision envelope integrated over 101 recall points) with each
    detection counted by its image's weight, so no draw sorts or copies anything."""
    labelled = weights @ found.truth
    per_class = np.full(len(labelled), np.nan)
    at50 = []
    for c in np.flatnonzero(labelled > 0):
        index = found.by_class[c]
        counted = weights[found.image[index]]
        keep = counted > 0
        if not keep.any():
            per_class[c] = 0.0
            at50.append(0.0)
            continue
        tp, counted = found.tp[index[keep]], counted[keep][:, None]
        tpc, fpc = (tp * counted).cumsum(0), ((1 - tp) * counted).cumsum(0)
        recall, precision = tpc / (labelled[c] + 1e-16), tpc / (tpc + fpc)
        thresholds = tp.shape[1]
        mrec = np.vstack([np.zeros(thresholds), recall, recall[-1], np.ones(thresholds)])
        mpre = np.vstack([np.ones(thresholds), precision, np.zeros((2, thresholds))])
        mpre = np.flip(np.maximum.accumulate(np.flip(mpre, 0), 0), 0)  # the precision envelope of each column
        # every IoU threshold's curve in one interpolation: column j's recall shifted to [2j, 2j + 1]
        shift = 2.0 * np.arange(thresholds)
        sampled = np.interp((_AP_X[None, :] + shift[:, None]).ravel(), (mrec + shift).T.ravel(), mpre.T.ravel())
        ap = np.trapezoid(sampled.reshape(thresholds, -1), _AP_X, axis=1)
        per_class[c] = ap.mean()
        at50.append(ap[0])
    if not at50:
        return 0.0, 0.0, per_class
    return float(np.nanmean(per_class)), float(np.mean(at50)), per_class


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
    def image_stats(p: Pass, record: dict, area: tuple | None) -> dict | None:
        seen = p.of(record)
        if not seen.stats:
            return None
        # every size: the validator's own statistics of the pass; one size range: matched again on its boxes
        return seen.stats if area is None else _image_stats(seen.detections, seen.truth, area)

    detections = {(k, area): _prepare([image_stats(p, r, area) for r in p.records], classes)
                  for k, p in enumerate(passes) for area in {s.area for s in slices}}
    rng = np.random.default_rng(policy.seed)
    count = len(challenger.records)
    draws: dict[str, np.ndarray] = {}  # slices over the same images share their draws (and their scores)
    memo: dict[tuple, tuple[float, float, np.ndarray]] = {}

    restricted: dict[tuple, _Detections] = {}

    def scores(which: int, area: tuple | None, key: tuple, weights: np.ndarray,
               members: np.ndarray) -> tuple[float, float, np.ndarray]:
        if (which, area, key) not in memo:
            if (which, area, key[0]) not in restricted:  # a slice's draws only ever touch its own images' detections
                restricted[which, area, key[0]] = _restrict(detections[which, area], members > 0)
            memo[which, area, key] = _weighted_scores(restricted[which, area, key[0]], weights)
        return memo[which, area, key]

    rows = []
    for item in slices:
        name = ",".join(map(str, item.images)) if len(item.images) < count else "all"
        if name not in draws:
            draws[name] = np.array([np.bincount(rng.choice(item.images, len(item.images)), minlength=count)
                                    for _ in range(policy.resamples)]).reshape(-1, count)
        point_weights = np.bincount(item.images, minlength=count).astype(float)

        def value(result: tuple[float, float, np.ndarray], item: _Slice = item) -> tuple[float, float]:
            if not item.class_ids:
                return result[0], result[1]
            ap = result[2][list(item.class_ids)]
            return (float(np.nanmean(ap)) if not np.isnan(ap).all() else 0.0), float("nan")

        point = [value(scores(k, item.area, (name, "point"), point_weights, point_weights)) for k in range(len(passes))]
        sampled = np.array([[value(scores(k, item.area, (name, d), weights.astype(float), point_weights))[0]
                             for k in range(len(passes))]
                            for d, weights in enumerate(draws[name])]).reshape(-1, len(passes))
        low, high = np.percentile(sampled[:, 0], [2.5, 97.5]) if len(sampled) else (np.nan, np.nan)
        row = {"kind": item.kind, "slice": item.name, "images": int(len(item.images)), "boxes": item.boxes,
               "challenger": point[0][0], "challenger_low": float(low), "challenger_high": float(high),
               "challenger_mAP50": point[0][1], "champion": np.nan, "difference": np.nan, "difference_low": np.nan,
               "difference_high": np.nan, "champion_mAP50": np.nan,
               "enough_support": bool(len(item.images) >= policy.min_images and item.boxes >= policy.min_boxes)}
        if champion is not None and len(sampled):
            difference = sampled[:, 0] - sampled[:, 1]
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
