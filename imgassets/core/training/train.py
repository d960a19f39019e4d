"""YOLO training with Ultralytics on a staged dataset, offline.

* Model: an Ultralytics model ``.yaml`` (default ``yolov8n.yaml``, built from scratch: nothing is
  downloaded) or a local ``.pt`` weights file. A ``.pt`` that is not on disk is refused up front,
  because Ultralytics would try to download it.
* Device: the first CUDA GPU when torch sees one, else the CPU (``device`` overrides).
* ``plots``: Ultralytics' own plots (``results.png``, the confusion matrix, a validation batch with
  predictions) are made unless the settings say not to (the smoke preset); offline, Ultralytics
  draws their text in Pillow's default font instead of downloading Arial.
* Metrics come from Ultralytics' final validation of ``best.pt`` on the val split.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from imgassets.core.progress import Progress
from imgassets.core.training.tracking import without_ultralytics_mlflow
from imgassets.errors import ImgassetsError

DEFAULT_MODEL = "yolov8n.yaml"
DEMO_EPOCHS, DEMO_IMGSZ, DEMO_BATCH = 60, 128, 8


class TrainingConfigError(ImgassetsError, ValueError):
    """Training settings that cannot work (e.g. a weights file that is not on disk)."""


@dataclass(frozen=True)
class TrainingSettings:
    """Ultralytics training arguments, defaulting to Ultralytics' own (``ultralytics/cfg/default.yaml``):
    ``epochs``, ``imgsz`` in pixels, ``batch`` in images, ``device`` as Ultralytics takes it
    (``"cpu"``, ``"0"``) or ``None`` for automatic, ``patience`` in epochs without improvement
    before stopping early, ``workers`` dataloader processes (8, which Ultralytics caps at the CPUs
    per device; 0 loads batches in the training process, which starves a GPU)."""

    model: str = DEFAULT_MODEL
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    device: str | None = None
    seed: int = 0
    workers: int = 8
    patience: int = 100
    plots: bool = True

    def overridden(self, **values: object) -> TrainingSettings:
        """These settings with every value of ``values`` that is not ``None`` in its place."""
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})


PRESETS = {
    "ultralytics": TrainingSettings(),
    "demo": TrainingSettings(epochs=DEMO_EPOCHS, imgsz=DEMO_IMGSZ, batch=DEMO_BATCH),
    "smoke": TrainingSettings(epochs=1, imgsz=64, batch=16, workers=0, plots=False),
}
"""Training defaults by name (``IMGASSETS_TRAINING_PRESET``, ``imgassets run --smoke``): Ultralytics'
own for a real drive; ``demo``, measured to train a model that finds the demo drive's shapes within
the command's time budget on two CPU cores (``docs/benchmarks.md``); ``smoke``, one epoch at 64 px,
which proves the pipeline and trains nothing useful (the tests)."""


def preset(name: str) -> TrainingSettings:
    """The :data:`PRESETS` entry ``name``. Raises :class:`TrainingConfigError` naming the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise TrainingConfigError(f"unknown training preset {name!r}: one of {', '.join(PRESETS)}") from None


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced: weights paths, metrics in [0, 1], wall seconds, the device."""

    best_weights: Path
    last_weights: Path
    results_csv: Path | None
    args_yaml: Path | None
    metrics: dict[str, float]
    per_class_map: dict[str, float]
    seconds: float
    device: str
    epochs: int
    train_images: int
    plots: dict[str, Path] = dataclasses.field(default_factory=dict)
    """Ultralytics' plots that were made, by file name (:data:`PLOTS`)."""

    @property
    def images_per_second(self) -> float:
        """Training throughput: train images x epochs / wall seconds (validation included)."""
        return self.train_images * self.epochs / self.seconds if self.seconds else 0.0


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


PLOTS = ("results.png", "confusion_matrix.png", "val_batch0_pred.jpg")
"""Ultralytics' plots kept with a model: the training curves, the confusion matrix on val, and a
validation batch with the model's predictions."""

METRIC_NAMES = {
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
}


def train_yolo(data_yaml: str | Path, settings: TrainingSettings, workdir: str | Path,
               on_epoch: Callable[[int, int, dict[str, float]], None] | None = None) -> TrainingResult:
    """Train on the staged dataset described by ``data_yaml``; outputs go under ``workdir/train``.

    After each epoch (Ultralytics' ``on_fit_epoch_end``), ``on_epoch(epoch, epochs, values)`` gets the
    1-based epoch, the planned epochs and that epoch's losses (``box_loss``, ``cls_loss``,
    ``dfl_loss``) and validation metrics (:data:`METRIC_NAMES`), and a ``training`` progress record
    is reported (:mod:`imgassets.core.progress`). Raises :class:`TrainingConfigError` for an
    unusable model source; Ultralytics errors propagate.
    """
    check_model_source(settings.model)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    device = select_device(settings.device)
    workdir = Path(workdir).resolve()
    model = YOLO(settings.model)
    shown = Progress("training", settings.epochs)
    trained = [0]  # epochs whose training pass ended

    def train_epoch_end(trainer) -> None:
        trained[0] += 1

    def epoch_end(trainer) -> None:
        if trainer.epoch + 1 > trained[0]:  # Ultralytics' final validation of best.pt, reported as one epoch more
            return
        values = epoch_values(trainer)
        shown.advance(detail=", ".join(f"{'this epoch: val ' if k == 'mAP50' else ''}{k} {v:.3f}"
                                       for k, v in values.items() if k in ("box_loss", "mAP50")))
        if on_epoch is not None:
            on_epoch(trainer.epoch + 1, trainer.epochs, values)

    model.add_callback("on_pretrain_routine_start", without_ultralytics_mlflow)  # tracking is imgassets' own
    model.add_callback("on_train_epoch_end", train_epoch_end)
    model.add_callback("on_fit_epoch_end", epoch_end)
    started = time.perf_counter()
    model.train(
        data=str(data_yaml), epochs=settings.epochs, imgsz=settings.imgsz, batch=settings.batch,
        device=device, seed=settings.seed, workers=settings.workers, project=str(workdir), name="train",
        exist_ok=True, plots=settings.plots, verbose=False, deterministic=True, patience=settings.patience,
    )
    seconds = time.perf_counter() - started
    trainer = model.trainer
    metrics = {METRIC_NAMES[k]: float(v) for k, v in (trainer.metrics or {}).items() if k in METRIC_NAMES}
    results_csv, args_yaml = Path(trainer.save_dir) / "results.csv", Path(trainer.save_dir) / "args.yaml"
    per_class: dict[str, float] = {}
    box = getattr(getattr(trainer.validator, "metrics", None), "box", None)
    if box is not None and len(getattr(box, "ap_class_index", [])):
        names = trainer.data["names"]
        per_class = {names[int(c)]: float(box.maps[int(c)]) for c in box.ap_class_index}
    return TrainingResult(
        best_weights=Path(trainer.best), last_weights=Path(trainer.last),
        results_csv=results_csv if results_csv.is_file() else None,
        args_yaml=args_yaml if args_yaml.is_file() else None, metrics=metrics, per_class_map=per_class,
        seconds=seconds, device=device, epochs=settings.epochs, train_images=len(trainer.train_loader.dataset),
        plots={name: Path(trainer.save_dir) / name for name in PLOTS if (Path(trainer.save_dir) / name).is_file()},
    )


def epoch_values(trainer) -> dict[str, float]:
    """An Ultralytics trainer's losses of the epoch just ended (``box_loss``, ``cls_loss``, ``dfl_loss``)
    and its validation metrics (:data:`METRIC_NAMES`), as plain floats."""
    values = {}
    if getattr(trainer, "tloss", None) is not None:
        for name, value in trainer.label_loss_items(trainer.tloss, prefix="train").items():
            values[name.removeprefix("train/")] = float(value)
    values.update({METRIC_NAMES[k]: float(v) for k, v in (trainer.metrics or {}).items() if k in METRIC_NAMES})
    return values


def predict_smoke(weights: str | Path, image: str | Path, imgsz: int, device: str | None = None) -> int:
    """Load ``weights`` with ``ultralytics.YOLO`` and predict on one image (``device`` as
    Ultralytics takes it; ``None``: the GPU when torch sees one, else the CPU); return the number of
    boxes found. Raises whatever Ultralytics raises when the weights or the image are unusable."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    results = YOLO(str(weights)).predict(str(image), imgsz=imgsz, device=device, verbose=False)
    return len(results[0].boxes)
