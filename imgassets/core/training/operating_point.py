"""The operating point: the confidence threshold a deployment keeps a model's boxes at.

Chosen on the **val** split, never on the benchmark (which only reports): the threshold at which
the mean F1 over classes (Ultralytics' precision and recall curves at IoU 0.5 on a 1,000-point
confidence grid, the mean smoothed as Ultralytics does to report P and R) is highest, and per
class the threshold of that class's highest F1. The benchmark then reports precision and recall
at that threshold (all classes pooled, IoU 0.5). Recorded in the model's benchmark record and the
champion ref; ``pull-model`` writes it beside the weights; the label review and the
pre-annotations keep the champion's boxes at it.
"""

from __future__ import annotations

import numpy as np

from imgassets.core.training.staged_model import Pass

DEFAULT_CONFIDENCE = 0.25
"""Confidence threshold where no operating point was chosen (Ultralytics' ``predict`` default)."""


def _joined(model_pass: Pass) -> dict[str, np.ndarray] | None:
    stats = [model_pass.of(r).stats for r in model_pass.records if model_pass.of(r).stats]
    if not stats:
        return None
    return {k: np.concatenate([s[k] for s in stats]) for k in ("tp", "conf", "pred_cls", "target_cls")}


def choose_operating_point(on_val: Pass) -> dict | None:
    """The operating point of the module docstring from the val pass: ``{"confidence", "f1",
    "precision", "recall" (on val, at that confidence), "per_class": {class name: confidence}}``,
    or ``None`` when val has no labelled box or the model finds none of them (F1 0 everywhere)."""
    from ultralytics.utils.metrics import ap_per_class, smooth

    joined = _joined(on_val)
    if joined is None or not len(joined["target_cls"]):
        return None
    result = ap_per_class(joined["tp"], joined["conf"], joined["pred_cls"], joined["target_cls"])
    unique, p_curve, r_curve, f1_curve, grid = result[6], result[7], result[8], result[9], result[10]
    best = int(smooth(f1_curve.mean(0), 0.1).argmax())
    if f1_curve.mean(0)[best] <= 0:  # a model that finds nothing has no threshold worth deploying
        return None
    names = on_val.class_names
    return {"confidence": round(float(grid[best]), 4), "f1": float(f1_curve.mean(0)[best]),
            "precision": float(p_curve.mean(0)[best]), "recall": float(r_curve.mean(0)[best]),
            "per_class": {names[int(c)]: round(float(grid[int(f1_curve[i].argmax())]), 4)
                          for i, c in enumerate(unique)}}


def at_confidence(model_pass: Pass, confidence: float) -> dict[str, float]:
    """``{"precision", "recall", "true_positives", "false_positives", "missed"}`` of the pass at
    ``confidence`` (IoU 0.5, all classes pooled). Precision is 0 when nothing is kept."""
    joined = _joined(model_pass)
    if joined is None:
        return {"precision": 0.0, "recall": 0.0, "true_positives": 0, "false_positives": 0, "missed": 0}
    kept = joined["conf"] >= confidence
    true = int(joined["tp"][kept, 0].sum())
    kept_count, labelled = int(kept.sum()), len(joined["target_cls"])
    return {"precision": true / kept_count if kept_count else 0.0, "recall": true / labelled if labelled else 0.0,
            "true_positives": true, "false_positives": kept_count - true, "missed": labelled - true}


def confidence_of(record: dict | None) -> float:
    """The operating point's confidence of a model's or champion's record (``operating_point``),
    :data:`DEFAULT_CONFIDENCE` without one."""
    point = (record or {}).get("operating_point") or {}
    return float(point.get("confidence", DEFAULT_CONFIDENCE))
