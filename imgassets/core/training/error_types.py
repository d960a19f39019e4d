"""Why a model loses AP, and the same pass scored by COCO's reference evaluation.

All three read the one prediction pass over the benchmark images
(:class:`~imgassets.core.training.staged_model.Pass`: each image's multi-label detections at
confidence >= 0.001 and the labelled boxes the validator matched them with, in pixels of the
original image); nothing is predicted again.

- :func:`error_types`: the TIDE decomposition (Bolya et al., *TIDE: A General Toolbox for
  Identifying Object Detection Errors*, ECCV 2020) by the authors' ``tidecv`` library: for each
  error type (``classification``, ``localization``, ``both``, ``duplicate``, ``background``,
  ``missed``) the mAP50 gained by fixing every error of that type (dAP, in [0, 1]), and the number
  of such errors. TIDE scores at IoU 0.5 with COCO's 101-point AP and at most 100 detections an
  image, so its ``mAP50`` differs slightly from Ultralytics'.
- :func:`coco_reference`: mAP50-95, mAP50 and AP by object size (COCO's small < 32², medium < 96²,
  large: box area in pixels²) by ``pycocotools``' ``COCOeval``. Known differences from Ultralytics'
  numbers: COCO samples the precision envelope at 101 recall points and sums them, Ultralytics
  integrates it by the trapezoid rule over the same 101 points; COCO keeps the 100 most confident
  detections an image (Ultralytics 300); COCO matches a detection to the best unmatched box at each
  IoU threshold separately. The difference is usually under 0.01 (tested).
- :func:`confusion_matrix`: Ultralytics' confusion matrix at a confidence threshold (the operating
  point), with the ``background`` row (spurious boxes: predicted where nothing is labelled) and
  column (missed boxes: labelled, not found).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from imgassets.core.training.staged_model import Pass

ERROR_TYPES = {"Cls": "classification", "Loc": "localization", "Both": "both", "Dupe": "duplicate",
               "Bkg": "background", "Miss": "missed"}
"""TIDE's error types (its short names) and the names imgassets reports them by."""


MAX_DETECTIONS = 100
"""Detections an image that COCO's evaluation and TIDE read: the most confident 100 (both keep no
more themselves, so handing them only those gives the same scores in less time)."""


def _kept(detections: np.ndarray) -> np.ndarray:
    """The :data:`MAX_DETECTIONS` most confident of an image's detections (rows of x0, y0, x1, y1, conf, cls)."""
    if len(detections) <= MAX_DETECTIONS:
        return detections
    return detections[np.argsort(-detections[:, 4], kind="stable")[:MAX_DETECTIONS]]


def _coco_boxes(box: np.ndarray) -> list[float]:
    """``[x, y, width, height]`` (COCO's box) of an ``(x0, y0, x1, y1)`` box in pixels."""
    return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]


def coco_dicts(model_pass: Pass) -> tuple[dict, list[dict]]:
    """The pass as COCO's object-detection format: the ground truth (``images``, ``annotations``
    with area = box area in pixels², ``categories`` = class id + 1) and the detection results
    (``image_id``, ``category_id``, ``bbox``, ``score``: an image's :data:`MAX_DETECTIONS` most
    confident). Images the validator could not read are left out."""
    images, annotations, results = [], [], []
    for image_id, record in enumerate(model_pass.records, start=1):
        seen = model_pass.of(record)
        if not seen.stats:
            continue
        height, width = seen.shape
        images.append({"id": image_id, "width": int(width), "height": int(height)})
        for row in seen.truth:
            box = _coco_boxes(row)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(row[4]) + 1,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        results.extend({"image_id": image_id, "category_id": int(row[5]) + 1, "bbox": _coco_boxes(row),
                        "score": float(row[4])} for row in _kept(seen.detections))
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(model_pass.class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def coco_reference(model_pass: Pass) -> dict[str, float]:
    """COCO's reference scores of the pass (module docstring): ``mAP50-95``, ``mAP50``,
    ``mAP50-95_small``, ``_medium``, ``_large`` (-1: no labelled box of that size), in [0, 1].
    All zero when no image has a labelled box."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth, results = coco_dicts(model_pass)
    names = ("mAP50-95", "mAP50", "mAP50-95_small", "mAP50-95_medium", "mAP50-95_large")
    if not truth["annotations"]:
        return dict.fromkeys(names, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress and table
        ground = COCO()
        ground.dataset = truth
        ground.createIndex()
        detected = ground.loadRes(results) if results else COCO()
        if not results:
            detected.dataset = {**truth, "annotations": []}
            detected.createIndex()
        evaluation = COCOeval(ground, detected, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    return {name: float(stats[i]) for name, i in zip(names, (0, 1, 3, 4, 5), strict=True)}


def error_types(model_pass: Pass) -> dict:
    """TIDE's decomposition of the pass (module docstring): ``{"mAP50": TIDE's AP in [0, 1],
    "dAP": {error type: mAP50 gained by fixing it}, "counts": {error type: errors},
    "false_positive_dAP", "false_negative_dAP"}`` (TIDE's special errors: every false positive,
    every missed box fixed). Error types by :data:`ERROR_TYPES` names. A model so weak that no
    class is left to score once its errors are fixed gets zeros and ``unavailable`` (why)."""
    from tidecv import TIDE, Data

    truth, detected = Data("labelled"), Data("predicted")
    for image_id, record in enumerate(model_pass.records, start=1):
        seen = model_pass.of(record)
        if not seen.stats:
            continue
        for row in seen.truth:
            truth.add_ground_truth(image_id, int(row[4]), _coco_boxes(row))
        for row in _kept(seen.detections):
            detected.add_detection(image_id, int(row[5]), float(row[4]), _coco_boxes(row))
    if not truth.annotations:
        return {"mAP50": 0.0, "dAP": dict.fromkeys(ERROR_TYPES.values(), 0.0),
                "counts": dict.fromkeys(ERROR_TYPES.values(), 0), "false_positive_dAP": 0.0, "false_negative_dAP": 0.0}
    tide = TIDE()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            tide.evaluate(truth, detected, mode=TIDE.BOX, name="pass")
            main, special = tide.get_main_errors()["pass"], tide.get_special_errors()["pass"]
    except ZeroDivisionError:  # tidecv divides by the classes left after a fix: none for a model that finds nothing
        return {"mAP50": 0.0, "dAP": dict.fromkeys(ERROR_TYPES.values(), 0.0),
                "counts": dict.fromkeys(ERROR_TYPES.values(), 0), "false_positive_dAP": 0.0, "false_negative_dAP": 0.0,
                "unavailable": "TIDE cannot decompose the errors of a model that finds nothing it should"}
    run = tide.runs["pass"]
    counts = {error.short_name: len(found) for error, found in run.error_dict.items()}
    return {"mAP50": float(run.ap) / 100,
            "dAP": {ERROR_TYPES[short]: float(main.get(short, 0.0)) / 100 for short in ERROR_TYPES},
            "counts": {ERROR_TYPES[short]: int(counts.get(short, 0)) for short in ERROR_TYPES},
            "false_positive_dAP": float(special.get("FalsePos", 0.0)) / 100,
            "false_negative_dAP": float(special.get("FalseNeg", 0.0)) / 100}


def confusion_matrix(model_pass: Pass, conf: float) -> tuple[list[str], np.ndarray]:
    """Ultralytics' confusion matrix of the pass at confidence ``conf`` (IoU 0.45): ``(names,
    counts)`` with ``names`` the class names and ``background``, ``counts[predicted][labelled]``
    (``(nc + 1, nc + 1)``): the last row counts missed boxes by labelled class, the last column
    spurious boxes by predicted class."""
    import torch
    from ultralytics.utils.metrics import ConfusionMatrix

    names = list(model_pass.class_names)
    matrix = ConfusionMatrix(names=dict(enumerate(names)))
    for record in model_pass.records:
        seen = model_pass.of(record)
        if not seen.stats:
            continue
        detections = torch.from_numpy(seen.detections.astype(np.float32))
        truth = torch.from_numpy(seen.truth.astype(np.float32))
        matrix.process_batch({"bboxes": detections[:, :4], "conf": detections[:, 4], "cls": detections[:, 5]},
                             {"bboxes": truth[:, :4], "cls": truth[:, 4]}, conf=conf)
    return [*names, "background"], matrix.matrix.astype(int)
