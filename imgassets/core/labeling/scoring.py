"""The champion's look at unlabelled images: boxes and an embedding from one forward pass each,
scored once per champion and image.

:class:`ChampionScorer` loads the champion's weights once and runs Ultralytics' ``predict`` over
batches of images decoded in their displayed frame (EXIF orientation applied, as the label table's
boxes are). A forward pre-hook on the model's detection head (``Detect``) keeps, from the same
forward pass, the feature maps the head reads (Ultralytics' P3, P4, P5 neck outputs); each is
average-pooled over its grid and the three are concatenated and L2-normalized: the image's
embedding (448 numbers for a YOLOv8n; the pooled features Ultralytics' ``embed`` returns, without
a second pass).

An image's **uncertainty** is the largest binary entropy ``H(c) = -(c log2 c + (1-c) log2 (1-c))``
of its detections' confidences ``c`` (at or above :data:`CANDIDATE_CONFIDENCE`): 1 for a detection
the model gives even odds, near 0 when every detection is sure or none is seen (the "max entropy"
image score of Haussmann et al., *Scalable Active Learning for Object Detection*, IV 2020).

Scores are kept per champion and scientist in the object store
(:func:`imgassets.core.store.keys.labeling_scores_key`) by content hash: an image is predicted once
per champion, never once per run (:func:`score_images`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageOps

from imgassets.core.progress import Progress
from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.keys import content_key, labeling_scores_key

CANDIDATE_CONFIDENCE = 0.05
"""Lowest confidence of a detection kept for scoring (below it a detection is noise)."""
BATCH = 16
"""Images per forward pass."""

PRELABEL_TYPE = pa.struct([("class_id", pa.int32()), ("x_center", pa.float64()), ("y_center", pa.float64()),
                           ("width", pa.float64()), ("height", pa.float64()), ("confidence", pa.float64())])
SCORES_SCHEMA = pa.schema([("sha256", pa.string()), ("uncertainty", pa.float64()), ("max_confidence", pa.float64()),
                           ("boxes", pa.list_(PRELABEL_TYPE)), ("embedding", pa.list_(pa.float32()))])
"""One row per scored image: its detections (normalized xywh of the displayed image, confidence at or
above :data:`CANDIDATE_CONFIDENCE`, most confident first) and pooled embedding."""


@dataclass(frozen=True)
class ImageScore:
    """The champion's look at one image: ``boxes`` (``{class_id, x_center, y_center, width, height,
    confidence}``, normalized xywh of the displayed image, most confident first), ``uncertainty``
    (in [0, 1], module docstring), ``max_confidence`` (0 with no box) and ``embedding`` (unit
    float32 vector)."""

    sha256: str
    uncertainty: float
    max_confidence: float
    boxes: list[dict]
    embedding: np.ndarray


def binary_entropy(confidence: np.ndarray) -> np.ndarray:
    """``H(c)`` in bits of each confidence (0 at 0 and 1, 1 at 0.5)."""
    c = np.clip(np.asarray(confidence, float), 1e-9, 1 - 1e-9)
    return -(c * np.log2(c) + (1 - c) * np.log2(1 - c))


def displayed_bgr(data: bytes) -> np.ndarray:
    """An image's bytes decoded in its displayed frame (EXIF orientation applied) as the BGR
    ``uint8`` array Ultralytics' ``predict`` takes."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = ImageOps.exif_transpose(image).convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


class ChampionScorer:
    """The champion's weights loaded once, with the head's inputs kept from each forward pass.

    ``weights``: a ``.pt`` file; ``imgsz``: the size (pixels, longer side) it was trained at;
    ``device``: Ultralytics' (``None``: the GPU when torch sees one)."""

    def __init__(self, weights: str | os.PathLike, imgsz: int, device: str | None = None) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from ultralytics import YOLO

        self.model = YOLO(str(weights))
        self.imgsz, self.device = imgsz, device
        self._features: list = []
        head = self.model.model.model[-1]
        head.register_forward_pre_hook(lambda _module, args: self._features.append(args[0]))

    @property
    def class_names(self) -> list[str]:
        """The class names the weights were trained on, in id order."""
        names = self.model.names
        return [names[i] for i in range(len(names))]

    def score(self, images: list[tuple[str, np.ndarray]]) -> list[ImageScore]:
        """Score ``(sha256, BGR array)`` images in one forward pass per :data:`BATCH`."""
        import torch

        scores = []
        for start in range(0, len(images), BATCH):
            chunk = images[start:start + BATCH]
            self._features.clear()
            results = self.model.predict([array for _, array in chunk], imgsz=self.imgsz, conf=CANDIDATE_CONFIDENCE,
                                         batch=len(chunk), device=self.device, verbose=False)
            maps = next(f for f in reversed(self._features) if f[0].shape[0] == len(chunk))
            with torch.no_grad():
                pooled = torch.cat([m.float().mean(dim=(2, 3)) for m in maps], dim=1)
                pooled = torch.nn.functional.normalize(pooled, dim=1).cpu().numpy().astype(np.float32)
            for (sha, _), result, embedding in zip(chunk, results, pooled, strict=True):
                conf = result.boxes.conf.cpu().numpy().astype(float)
                order = np.argsort(-conf, kind="stable")
                xywh = result.boxes.xywhn.cpu().numpy()[order]
                classes = result.boxes.cls.cpu().numpy().astype(int)[order]
                boxes = [{"class_id": int(k), "x_center": float(b[0]), "y_center": float(b[1]), "width": float(b[2]),
                          "height": float(b[3]), "confidence": float(c)}
                         for k, b, c in zip(classes, xywh, conf[order], strict=True)]
                scores.append(ImageScore(sha, float(binary_entropy(conf).max()) if len(conf) else 0.0,
                                         float(conf.max()) if len(conf) else 0.0, boxes, embedding))
        return scores


def load_scores(store: ObjectStore, model_id: str, scientist: str) -> dict[str, ImageScore]:
    """The scores kept for ``scientist``'s images under the champion ``model_id``, by content hash
    (empty when none are kept, or the kept file is not this schema's Parquet)."""
    try:
        table = pq.read_table(io.BytesIO(store.get_bytes(labeling_scores_key(model_id, scientist))))
    except (ObjectNotFoundError, pa.ArrowException):
        return {}
    if table.schema.names != SCORES_SCHEMA.names:
        return {}
    return {row["sha256"]: ImageScore(row["sha256"], row["uncertainty"], row["max_confidence"], row["boxes"],
                                      np.asarray(row["embedding"], np.float32))
            for row in table.to_pylist()}


def save_scores(store: ObjectStore, model_id: str, scientist: str, scores: Iterable[ImageScore]) -> None:
    """Keep ``scores`` (replacing what was kept for this champion and scientist)."""
    rows = [{"sha256": s.sha256, "uncertainty": s.uncertainty, "max_confidence": s.max_confidence, "boxes": s.boxes,
             "embedding": s.embedding.tolist()} for s in sorted(scores, key=lambda s: s.sha256)]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCORES_SCHEMA), sink)
    store.put_bytes(labeling_scores_key(model_id, scientist), sink.getvalue())


@dataclass(frozen=True)
class Scored:
    """What :func:`score_images` did: the ``scores`` of every image asked for, and how many were
    predicted now (``predicted``) or kept from an earlier run (``reused``)."""

    scores: dict[str, ImageScore]
    predicted: int
    reused: int


def score_images(store: ObjectStore, model_id: str, scientist: str, shas: list[str],
                 scorer: Callable[[], ChampionScorer]) -> Scored:
    """The champion ``model_id``'s scores of the images ``shas`` (content hashes of objects in
    ``store``): kept ones reused, the rest predicted by ``scorer()`` (made only when an image needs
    it: weights are not loaded for a run with nothing new) in batches read from the store, and the
    kept scores replaced by those of ``shas`` (images no longer asked for are dropped). Shows progress
    (:class:`imgassets.core.progress.Progress`)."""
    kept = load_scores(store, model_id, scientist)
    missing = [sha for sha in dict.fromkeys(shas) if sha not in kept]
    fresh: dict[str, ImageScore] = {}
    if missing:
        model = scorer()
        shown = Progress(f"scoring {scientist}'s unlabelled images", len(missing))
        step = BATCH * 4
        for start in range(0, len(missing), step):
            chunk = [(sha, displayed_bgr(store.get_bytes(content_key(sha)))) for sha in missing[start:start + step]]
            fresh.update((s.sha256, s) for s in model.score(chunk))
            shown.advance(len(chunk))
    scores = {sha: kept.get(sha) or fresh[sha] for sha in dict.fromkeys(shas)}
    if missing or len(scores) != len(kept):
        save_scores(store, model_id, scientist, scores.values())
    return Scored(scores, len(missing), len(scores) - len(missing))
