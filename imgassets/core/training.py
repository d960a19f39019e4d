"""YOLO training with Ultralytics on a staged dataset, offline.

* Model: an Ultralytics model ``.yaml`` (default ``yolov8n.yaml``, built from scratch: nothing is
  downloaded) or a local ``.pt`` weights file. A ``.pt`` that is not on disk is refused up front,
  because Ultralytics would try to download it.
* Device: the first CUDA GPU when torch sees one, else the CPU (``device`` overrides).
* ``plots=False``: plotting fetches a font from the internet, which this product never needs.
* Metrics come from Ultralytics' final validation of ``best.pt`` on the val split.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_MODEL = "yolov8n.yaml"


class TrainingConfigError(ValueError):
    """Training settings that cannot work (e.g. a weights file that is not on disk)."""


@dataclass(frozen=True)
class TrainingSettings:
    """Ultralytics training arguments: ``imgsz`` in pixels, ``batch`` in images, ``device`` as
    Ultralytics takes it (``"cpu"``, ``"0"``) or ``None`` for automatic."""

    model: str = DEFAULT_MODEL
    epochs: int = 1
    imgsz: int = 64
    batch: int = 16
    device: str | None = None
    seed: int = 0
    workers: int = 0


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced: weights paths, metrics in [0, 1], wall seconds, the device."""

    best_weights: Path
    last_weights: Path
    results_csv: Path | None
    metrics: dict[str, float]
    seconds: float
    device: str
    epochs: int

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def select_device(requested: str | None = None) -> str:
    """``requested`` when given, else ``"0"`` (first GPU) when torch sees CUDA, else ``"cpu"``."""
    if requested:
        return requested
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def check_model_source(model: str) -> None:
    """Refuse a model source that would need a download: a ``.pt`` path that does not exist, or
    anything that is neither a ``.yaml`` nor a ``.pt``."""
    suffix = Path(model).suffix.lower()
    if suffix == ".pt":
        if not Path(model).is_file():
            raise TrainingConfigError(f"weights file {model} not found (no downloads: give a local .pt or a model .yaml)")
    elif suffix not in (".yaml", ".yml"):
        raise TrainingConfigError(f"model {model!r} must be an Ultralytics model .yaml or a local .pt weights file")


METRIC_NAMES = {
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
}


def train_yolo(data_yaml: str | Path, settings: TrainingSettings, workdir: str | Path) -> TrainingResult:
    """Train on the staged dataset described by ``data_yaml``; outputs go under ``workdir/train``.

    Raises :class:`TrainingConfigError` for an unusable model source; Ultralytics errors propagate.
    """
    check_model_source(settings.model)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    device = select_device(settings.device)
    workdir = Path(workdir).resolve()
    model = YOLO(settings.model)
    started = time.perf_counter()
    model.train(
        data=str(data_yaml), epochs=settings.epochs, imgsz=settings.imgsz, batch=settings.batch,
        device=device, seed=settings.seed, workers=settings.workers, project=str(workdir), name="train",
        exist_ok=True, plots=False, verbose=False, deterministic=True,
    )
    seconds = time.perf_counter() - started
    trainer = model.trainer
    metrics = {METRIC_NAMES[k]: float(v) for k, v in (trainer.metrics or {}).items() if k in METRIC_NAMES}
    results_csv = Path(trainer.save_dir) / "results.csv"
    return TrainingResult(
        best_weights=Path(trainer.best), last_weights=Path(trainer.last),
        results_csv=results_csv if results_csv.is_file() else None, metrics=metrics,
        seconds=seconds, device=device, epochs=settings.epochs,
    )
