"""Training on the GPU through the pipeline against plain Ultralytics on the same staged folder.

    python -m benchmarks.gpu_training [--epochs 10] [--imgsz 640] [--batch 16] [--work DIR] [--device ""]

One prepared script for a machine with an NVIDIA GPU (nothing in the test suite depends on one):

1. a shared drive of the real datasets in ``shared/data`` (:data:`DATASETS`, one scientist each)
   goes through ``imgassets run`` as a process, with the device
   left to its default, so the run shows what it picks (the GPU when torch sees one);
2. the dataset it trained on is pulled (``imgassets pull``) and trained again with plain
   Ultralytics (``YOLO(...).train``) with the same model, epochs, image size, batch, seed and
   dataloader workers, on the same device; and once more with Ultralytics' own default workers
   (the pipeline trains with ``TrainingSettings.workers``, 0), to show what the loader costs;
3. the trained weights are evaluated (one prediction pass over val, :class:`imgassets.core.training.staged_model.StagedModel`) and
   smoke-predicted (:func:`imgassets.core.training.train.predict_smoke`) with their default device,
   and the device their model sat on is recorded.

GPU utilization is sampled every 0.5 s with ``nvidia-smi`` during each training. Printed (JSON,
then a Markdown row for ``docs/benchmarks.md``): images/s of each, their ratio, mean GPU
utilization of each, the devices. ``--device cpu`` runs the same steps on the CPU (to try the
script where there is no GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("coco128", "books_roboflow")
"""The real datasets that pass every blocking check (bccd_voc has boxes past its images, deepforest label sources that disagree)."""


def shared_data() -> Path:
    """``shared/data`` beside the repository (or ``$IMGASSETS_SHARED_DATA``)."""
    for candidate in (os.environ.get("IMGASSETS_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data",
                      Path("/work/shared/data")):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise SystemExit("shared/data not found: set IMGASSETS_SHARED_DATA")


class GpuSampler:
    """Samples ``nvidia-smi``'s GPU utilization (percent) every ``interval`` seconds while running."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.samples, self._stop = interval, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout.split()
                self.samples.append(float(out[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return round(statistics.fmean(self.samples), 1) if self.samples else None


def build_drive(root: Path) -> None:
    """One scientist folder per real dataset (hardlinks: the sources are never written)."""
    for name in DATASETS:
        shutil.copytree(shared_data() / name, root / name, copy_function=os.link)


def imgassets(*args: str, env: dict[str, str]) -> dict:
    """Run ``imgassets`` as a process with ``--json``; its parsed output. Raises on a failure."""
    done = subprocess.run([sys.executable, "-m", "imgassets.cli", *args, "--json"], env=env, capture_output=True,
                          text=True, timeout=7200)
    if done.returncode:
        raise SystemExit(f"imgassets {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--model", default="yolov8n.yaml")
    parser.add_argument("--device", default="", help="empty: each side's default (the GPU when torch sees one)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/imgassets-gpu"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    drive, home = args.work / "drive", args.work / "home"
    build_drive(drive)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMGASSETS_", "DAGSTER_"))}
    env["YOLO_OFFLINE"] = "1"
    device = ["--device", args.device] if args.device else []

    run_args = ["run", "--shared-root", str(drive), "--home", str(home), "--epochs", str(args.epochs),
                "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--model", args.model, *device]
    started = time.perf_counter()
    with GpuSampler() as ours_gpu:
        summary = imgassets(*run_args, env=env)
    pipeline_s = time.perf_counter() - started
    model = summary["model"]
    sys.path.insert(0, str(REPO_ROOT))
    from imgassets.core.store.local import LocalObjectStore
    from imgassets.core.training.models import list_models

    record = next(m for m in list_models(LocalObjectStore(home / "objects")) if m["model_id"] == model["run_id"])
    staged = args.work / "staged"
    imgassets("pull", model["dataset_id"], str(staged), "--home", str(home), env=env)

    from ultralytics import YOLO

    settings = record["settings"]

    def plain(workers: int | None, name: str) -> tuple[float, int, GpuSampler, str]:
        """Plain Ultralytics on the pulled folder: seconds, images trained, the sampler, the device."""
        plain_model = YOLO(args.model)
        extra = {} if workers is None else {"workers": workers}
        started = time.perf_counter()
        with GpuSampler() as sampler:
            plain_model.train(data=str(staged / "data.yaml"), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                              device=args.device or None, seed=settings["seed"], project=str(args.work / name),
                              name="train", exist_ok=True, plots=False, verbose=False, deterministic=True, **extra)
        seconds = time.perf_counter() - started
        return seconds, len(plain_model.trainer.train_loader.dataset) * args.epochs, sampler, str(plain_model.trainer.device)

    plain_s, plain_images, plain_gpu, plain_device = plain(settings["workers"], "plain")
    plain_ips = plain_images / plain_s
    default_s, default_images, default_gpu, _ = plain(None, "plain-default-workers")  # Ultralytics' own default

    from imgassets.core.training.evaluate import evaluation_frame
    from imgassets.core.training.staged_model import StagedModel
    from imgassets.core.training.train import predict_smoke
    from imgassets.core.versioning.dataset_store import load_dataset

    weights = args.work / "best.pt"
    LocalObjectStore(home / "objects").get_file(model["model_key"], weights)
    dataset = load_dataset(LocalObjectStore(home / "objects"), model["dataset_id"])
    evaluation = evaluation_frame(StagedModel(weights, staged, dataset.class_names, args.imgsz).predict(
        [r for r in dataset.records if r["split"] == "val"]))
    val_image = next((staged / "images" / "val").iterdir())
    boxes = predict_smoke(weights, val_image, args.imgsz)
    probe = YOLO(str(weights))  # the device a predict with no device picks (what evaluation and the smoke check do)
    probe.predict(str(val_image), imgsz=args.imgsz, verbose=False)
    evaluated_on = str(probe.predictor.device)
    import torch

    result = {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "pipeline_device": model["device"], "plain_device": plain_device,
        "evaluation_rows": len(evaluation), "smoke_boxes": boxes, "evaluated_on": evaluated_on,
        "train_images_per_epoch": plain_images // args.epochs, "epochs": args.epochs, "imgsz": args.imgsz,
        "batch": args.batch, "workers": settings["workers"],
        "pipeline_training_s": record["training_seconds"], "pipeline_images_per_s": record["images_per_second"],
        "pipeline_whole_run_s": round(pipeline_s, 1),
        "plain_training_s": round(plain_s, 2), "plain_images_per_s": round(plain_ips, 2),
        "ratio_images_per_s": round(record["images_per_second"] / plain_ips, 3),
        "gpu_util_pipeline_pct": ours_gpu.mean, "gpu_util_plain_pct": plain_gpu.mean,
        "plain_default_workers_images_per_s": round(default_images / default_s, 2),
        "gpu_util_plain_default_workers_pct": default_gpu.mean,
    }
    print(json.dumps(result, indent=1))
    print(f"| {result['gpu']} | {args.epochs} x {result['train_images_per_epoch']} images, imgsz {args.imgsz}, "
          f"batch {args.batch} | {result['pipeline_images_per_s']} | {result['plain_images_per_s']} "
          f"| {result['ratio_images_per_s']} | {result['gpu_util_pipeline_pct']}% / {result['gpu_util_plain_pct']}% "
          f"| {result['pipeline_device']} |")


if __name__ == "__main__":
    main()
