"""Scoring models on a dataset's benchmark split, and the champion/challenger promotion rule.

Every model is scored on the *same* held-out images as the model it would replace: the benchmark
split of the challenger's dataset (:mod:`imgassets.core.versioning.dataset`: append-only, never
trained on, never used for early stopping). Scores are Ultralytics' own validation
(``YOLO.val(split="test")``, the ``test`` entry of the pulled ``data.yaml``): mAP50, mAP50-95,
precision and recall in [0, 1], overall, per class (mAP50-95 by class name) and per scientist (the
benchmark images each scientist contributed, scored alone).

Promotion (:func:`promotion_decision`): the first model is champion; a challenger replaces the
champion when its benchmark mAP50-95 is not below the champion's on the same images by more than
``margin`` (absolute). A champion trained on other class names cannot be scored on this benchmark
(its class ids mean other classes): the challenger is then promoted, and the decision says why.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from imgassets.core.versioning.checkout import staged_image

METRICS = ("mAP50", "mAP50-95", "precision", "recall")
DEFAULT_MARGIN = 0.01
"""Largest drop of benchmark mAP50-95 below the champion's (absolute) at which a challenger still wins."""


@dataclass(frozen=True)
class BenchmarkScores:
    """A model's scores on a benchmark: ``overall`` (:data:`METRICS`), ``per_class`` (mAP50-95 by
    class name, for the classes with benchmark boxes), ``per_scientist`` (:data:`METRICS` by
    scientist), the number of ``images`` scored and the image size ``imgsz`` (pixels, the longer
    side) they were scored at: the size the model was trained at (0: not recorded)."""

    overall: dict[str, float]
    per_class: dict[str, float] = field(default_factory=dict)
    per_scientist: dict[str, dict[str, float]] = field(default_factory=dict)
    images: int = 0
    imgsz: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BenchmarkScores:
        return cls(dict(data["overall"]), dict(data.get("per_class", {})), dict(data.get("per_scientist", {})),
                   int(data.get("images", 0)), int(data.get("imgsz", 0)))


def _validate(model, staged_dir: Path, images: list[str], class_names: list[str], imgsz: int, batch: int,
              device: str | None, workdir: Path, name: str):
    """Ultralytics' validation of ``model`` on ``images`` (a list file as the ``test`` split)."""
    listing = workdir / f"{name}.txt"
    listing.write_text("".join(f"{path}\n" for path in images))
    data = workdir / f"{name}.yaml"
    data.write_text(yaml.safe_dump({"path": str(staged_dir), "train": "images/train", "val": "images/val",
                                    "test": str(listing), "names": dict(enumerate(class_names))}))
    return model.val(data=str(data), split="test", imgsz=imgsz, batch=batch, device=device, plots=False,
                     verbose=False, save_json=False, project=str(workdir), name=name, exist_ok=True, workers=0)


def _overall(metrics) -> dict[str, float]:
    box = metrics.box
    return {"mAP50": float(box.map50), "mAP50-95": float(box.map), "precision": float(box.mp),
            "recall": float(box.mr)}


def model_class_names(weights: str | Path) -> list[str]:
    """The class names a weights file was trained on, in id order."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    names = YOLO(str(weights)).names
    return [names[i] for i in sorted(names)]


def score_on_benchmark(weights: str | Path, staged_dir: str | Path, records: list[dict], class_names: list[str],
                       imgsz: int, device: str | None = None, batch: int = 16) -> BenchmarkScores | None:
    """Score ``weights`` on the benchmark images of ``records`` (a dataset version's rows, pulled
    under ``staged_dir`` in the Ultralytics layout; ``class_names`` the dataset's) at ``imgsz``
    pixels, which should be the size the model was trained at: a model scored at another size is
    not the model that was trained (a champion trained at 128 px scores far lower at 64). ``None`` when
    the dataset has no benchmark image. ``device``: Ultralytics' (``None``: the GPU when torch sees
    one). Raises ``ValueError`` when the weights were trained on other class names."""
    benchmark = [r for r in records if r["split"] == "benchmark"]
    if not benchmark:
        return None
    trained_on = model_class_names(weights)
    if trained_on != list(class_names):
        raise ValueError(f"the model was trained on classes {trained_on}, the benchmark has {list(class_names)}")
    from ultralytics import YOLO

    staged_dir = Path(staged_dir).resolve()
    model = YOLO(str(weights))
    with tempfile.TemporaryDirectory(prefix="imgassets-benchmark-") as tmp:
        workdir = Path(tmp)
        paths = [staged_image(staged_dir, r) for r in benchmark]
        metrics = _validate(model, staged_dir, paths, class_names, imgsz, batch, device, workdir, "all")
        per_class = {class_names[int(c)]: float(metrics.box.maps[int(c)]) for c in metrics.box.ap_class_index}
        per_scientist = {}
        for scientist in sorted({r["scientist"] for r in benchmark}):
            theirs = [staged_image(staged_dir, r) for r in benchmark if r["scientist"] == scientist]
            per_scientist[scientist] = _overall(_validate(model, staged_dir, theirs, class_names, imgsz, batch, device,
                                                          workdir, f"scientist-{len(per_scientist)}"))
        return BenchmarkScores(_overall(metrics), per_class, per_scientist, len(benchmark), imgsz)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger becomes champion, and the sentence that says why."""

    promoted: bool
    reason: str


def promotion_decision(challenger: BenchmarkScores | None, champion: BenchmarkScores | None,
                       champion_id: str | None, margin: float = DEFAULT_MARGIN,
                       not_comparable: str | None = None) -> PromotionDecision:
    """The rule of the module docstring. ``challenger``: its scores (``None``: the dataset has no
    benchmark image, so nothing can be compared and the challenger is not promoted over a
    champion); ``champion``: the champion's scores on the same images (``None`` with ``champion_id``
    ``None``: there is no champion yet); ``not_comparable``: why the champion could not be scored."""
    if champion_id is None:
        return PromotionDecision(True, "the first model: champion")
    if not_comparable:
        return PromotionDecision(True, f"champion {champion_id} cannot be scored on this benchmark "
                                       f"({not_comparable}): the challenger is promoted")
    if challenger is None or champion is None:
        return PromotionDecision(False, "the dataset has no benchmark image: the challenger cannot be compared "
                                        f"with champion {champion_id}")
    ours, theirs = challenger.overall["mAP50-95"], champion.overall["mAP50-95"]
    scores = (f"on the same {challenger.images} benchmark images the challenger scores mAP50-95 {ours:.4f}"
              f"{_at(challenger)} and champion {champion_id} {theirs:.4f}{_at(champion)}")
    if ours >= theirs - margin:
        return PromotionDecision(True, f"promoted: {scores}; the challenger may be at most {margin} below")
    return PromotionDecision(False, f"not promoted: {scores}, {theirs - ours:.4f} better; the challenger may be "
                                    f"at most {margin} below")


def _at(scores: BenchmarkScores) -> str:
    return f" (at {scores.imgsz} px)" if scores.imgsz else ""
