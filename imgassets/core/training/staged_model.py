"""A trained model and the pulled dataset version it is judged on: one prediction pass per image.

:class:`StagedModel` loads the weights once. :meth:`StagedModel.predict` runs Ultralytics' own
detection validator (``DetectionValidator``, as ``YOLO.val`` does: rectangular letterboxed
batches, NMS at confidence 0.001 and IoU 0.7, up to 300 boxes, multi-label) over a list of dataset
rows (given to it as its ``test`` list, :data:`~imgassets.core.versioning.splits.ULTRALYTICS_SPLIT`),
so the scores of a :class:`Pass` *are* Ultralytics' ``val`` of those images. While it
validates, the validator also keeps, per image, its matching statistics (true positives at IoU
0.50:0.95, confidences, classes) and, from the same forward pass, the boxes ``YOLO.predict`` would
keep (single-label NMS) in the original image's normalized xywh. Every
consumer reads that one pass: the benchmark scores overall, per class and per scientist (Ultralytics'
``ap_per_class`` over a scientist's images' statistics), the per-image evaluation
(:mod:`imgassets.core.training.evaluate`), the label review (:mod:`imgassets.core.training.review`)
and the pictures. """

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from imgassets.core.versioning.checkout import staged_image
from imgassets.core.versioning.splits import ULTRALYTICS_SPLIT

METRICS = ("mAP50", "mAP50-95", "precision", "recall")
"""The scores of a model on a set of images, each in [0, 1] (Ultralytics' box metrics)."""

Prediction = tuple[int, tuple[float, float, float, float], float]
"""One predicted box: ``(class id, normalized xywh of the original image, confidence)``."""

_STATS = ("tp", "conf", "pred_cls", "target_cls", "target_img")


@dataclass(frozen=True)
class ImagePass:
    """What the validator saw on one image: its ``predictions`` (the boxes ``YOLO.predict`` keeps:
    one class an anchor, NMS at IoU 0.7, confidence >= 0.001), ``stats`` (Ultralytics'
    per-image matching statistics of the multi-label boxes the scores are computed on,
    :data:`_STATS`), those multi-label ``detections`` themselves (``(N, 6)``: x0, y0, x1, y1 in
    pixels of the original image, confidence, class id), the labelled boxes the validator matched
    them with (``truth``, ``(M, 5)``: x0, y0, x1, y1 in pixels, class id) and the original image's
    ``shape`` (height, width in pixels): what the error analysis, the slices and the reference
    evaluation read (:mod:`imgassets.core.training.error_types`)."""

    predictions: list[Prediction]
    stats: dict[str, np.ndarray]
    detections: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)), repr=False)
    truth: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)), repr=False)
    shape: tuple[int, int] = (0, 0)

    def above(self, conf: float) -> list[Prediction]:
        """The predictions at or above ``conf``, most confident first: what ``YOLO.predict(conf=...)``
        returns (low-confidence boxes never suppress a more confident one)."""
        return sorted((p for p in self.predictions if p[2] >= conf), key=lambda pred: -pred[2])


UNSEEN = ImagePass([], {})
"""The pass of an image the validator could not read."""


@dataclass(frozen=True)
class Pass:
    """One prediction pass over ``records`` (dataset rows): Ultralytics' ``overall`` scores
    (:data:`METRICS`) and mAP50-95 ``per_class`` (by class name, classes with boxes), and each
    image's :class:`ImagePass` by content hash (``images``)."""

    records: list[dict]
    overall: dict[str, float]
    per_class: dict[str, float]
    images: dict[str, ImagePass] = field(repr=False)
    class_names: list[str] = field(repr=False, default_factory=list)

    def of(self, record: dict) -> ImagePass:
        """The pass of one of its records."""
        return self.images[record["sha256"]]

    def scores_of(self, records: list[dict]) -> dict[str, float]:
        """:data:`METRICS` of a subset of this pass's records (a scientist's), from their images'
        statistics by Ultralytics' ``ap_per_class``, as ``val`` on those images alone computes them."""
        from ultralytics.utils.metrics import DetMetrics

        metrics = DetMetrics(names=dict(enumerate(self.class_names)))
        seen = [r for r in records if self.of(r).stats]
        if not seen:
            return dict.fromkeys(METRICS, 0.0)
        for record in seen:
            metrics.update_stats({**self.of(record).stats, "im_name": record["sha256"]})
        metrics.process()
        return _overall(metrics)


def _overall(metrics) -> dict[str, float]:
    box = metrics.box
    return {"mAP50": float(box.map50), "mAP50-95": float(box.map), "precision": float(box.mp), "recall": float(box.mr)}


def _recording_validator(sink: dict[str, ImagePass]):
    """Ultralytics' detection validator that also keeps each image's predictions and statistics
    in ``sink`` (by the image file's real path)."""
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import nms, ops

    class RecordingValidator(DetectionValidator):
        def postprocess(self, preds):
            # the boxes YOLO.predict keeps (one class an anchor), from the same forward pass as the
            # multi-label boxes the metrics are computed on
            single = nms.non_max_suppression(preds, self.args.conf, self.args.iou, multi_label=False,
                                             agnostic=self.args.single_cls or self.args.agnostic_nms,
                                             max_det=self.args.max_det, end2end=self.end2end)
            self.single_label = [{"bboxes": x[:, :4], "conf": x[:, 4], "cls": x[:, 5]} for x in single]
            return super().postprocess(preds)

        def update_metrics(self, preds, batch):
            before = len(self.metrics.stats["tp"])
            super().update_metrics(preds, batch)
            for si, pred in enumerate(self.single_label):
                pbatch = self._prepare_batch(si, batch)
                height, width = (int(v) for v in pbatch["ori_shape"])
                boxes = self.scale_preds(pred, pbatch)["bboxes"].cpu().numpy()
                kept = []
                for (x0, y0, x1, y1), cls, conf in zip(boxes, pred["cls"].cpu().numpy(), pred["conf"].cpu().numpy(),
                                                       strict=True):
                    xywh = ((x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height)
                    kept.append((int(cls), tuple(round(float(v), 6) for v in xywh), float(conf)))
                stats = {k: self.metrics.stats[k][before + si] for k in _STATS}
                multi = self.scale_preds(self._prepare_pred(preds[si]), pbatch)
                detections = np.concatenate([multi["bboxes"].cpu().numpy().reshape(-1, 4),
                                             multi["conf"].cpu().numpy().reshape(-1, 1),
                                             multi["cls"].cpu().numpy().reshape(-1, 1)], axis=1)
                labelled = ops.scale_boxes(pbatch["imgsz"], pbatch["bboxes"].clone(), pbatch["ori_shape"],
                                           pbatch["ratio_pad"]).cpu().numpy().reshape(-1, 4)
                truth = np.concatenate([labelled, pbatch["cls"].cpu().numpy().reshape(-1, 1)], axis=1)
                sink[os.path.realpath(pbatch["im_file"])] = ImagePass(kept, stats, detections, truth, (height, width))

    return RecordingValidator


class StagedModel:
    """Weights loaded once, beside the pulled dataset they are judged on.

    ``weights``: a ``.pt`` file; ``staged_dir``: where the dataset version was pulled (the
    Ultralytics layout of :func:`imgassets.core.versioning.checkout.staged_image`); ``class_names``:
    the dataset's, in id order; ``imgsz``: the size (pixels, longer side) the model was trained at,
    at which it is judged; ``device``: Ultralytics' (``None``: the GPU when torch sees one)."""

    def __init__(self, weights: str | Path, staged_dir: str | Path, class_names: list[str], imgsz: int,
                 device: str | None = None, batch: int = 16) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from ultralytics import YOLO

        self.model = YOLO(str(weights))
        self.staged_dir = Path(staged_dir).resolve()
        self.class_names = list(class_names)
        self.imgsz, self.device, self.batch = imgsz, device, batch

    @property
    def trained_on(self) -> list[str]:
        """The class names the weights were trained on, in id order."""
        names = self.model.names
        return [names[i] for i in sorted(names)]

    def predict(self, records: list[dict]) -> Pass:
        """One pass of the validator over the staged images of ``records`` (dataset rows; none
        predicted twice). Raises ``ValueError`` when the weights were trained on other class names
        than the dataset's (their class ids mean other classes)."""
        if self.trained_on != self.class_names:
            raise ValueError(f"the model was trained on classes {self.trained_on}, the dataset has {self.class_names}")
        if not records:
            return Pass([], {}, {}, {}, self.class_names)
        sink: dict[str, ImagePass] = {}
        with tempfile.TemporaryDirectory(prefix="imgassets-pass-") as tmp:
            workdir = Path(tmp)
            listing = workdir / "images.txt"
            listing.write_text("".join(f"{staged_image(self.staged_dir, r)}\n" for r in records))
            data = workdir / "data.yaml"
            held_out = ULTRALYTICS_SPLIT["benchmark"]  # the list is validated as Ultralytics' held-out split
            data.write_text(yaml.safe_dump({"path": str(self.staged_dir), "train": "images/train", "val": "images/val",
                                            held_out: str(listing), "names": dict(enumerate(self.class_names))}))
            metrics = self.model.val(validator=_recording_validator(sink), data=str(data), split=held_out,
                                     imgsz=self.imgsz, batch=self.batch, device=self.device, plots=False, verbose=False,
                                     save_json=False, project=str(workdir), name="val", exist_ok=True, workers=0)
        # an image the validator could not read has no pass: no predictions, left out of the scores
        images = {r["sha256"]: sink.get(os.path.realpath(staged_image(self.staged_dir, r)), UNSEEN) for r in records}
        per_class = {self.class_names[int(c)]: float(metrics.box.maps[int(c)]) for c in metrics.box.ap_class_index}
        return Pass(list(records), _overall(metrics), per_class, images, self.class_names)
