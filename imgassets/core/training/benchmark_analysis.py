"""What the benchmark says beyond one number, from the one prediction pass each model made over it.

:func:`analyse_benchmark` gathers, for the challenger and (when it could be scored on the same
images) the champion: COCO's reference scores and TIDE's error types
(:mod:`imgassets.core.training.error_types`), the slices with their bootstrap intervals and the
regressed ones (:mod:`imgassets.core.training.slices`), the confusion matrix at the operating point,
and each benchmark image's attributes (scientist, camera, quality signals and bucket) that the
slices and the per-image evaluation table carry. Images are read once more, from the staged
dataset, for their quality signals and camera (:func:`image_attributes`); nothing is predicted again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from imgassets.core.training.error_types import ERROR_TYPES, coco_reference, confusion_matrix, error_types
from imgassets.core.training.slices import SlicePolicy, protected_regressions, quality_buckets, regressed, slice_table
from imgassets.core.training.staged_model import Pass
from imgassets.core.versioning.checkout import staged_image

ATTRIBUTE_COLUMNS = ["sha256", "scientist", "camera", "brightness", "contrast", "sharpness", "quality"]


def image_attributes(records: list[dict], staged_dir: str | Path) -> pd.DataFrame:
    """One row per record (dataset rows, in order; :data:`ATTRIBUTE_COLUMNS`): its scientist, its
    camera (EXIF make, model and serial; ``unknown``), its quality signals
    (:func:`imgassets.core.images.inspect.quality_signals`, NaN when unreadable) and its quality
    bucket among these images (:func:`imgassets.core.training.slices.quality_buckets`)."""
    from imgassets.core.images.inspect import inspect_image, quality_signals

    rows = []
    for record in records:
        path = Path(staged_image(staged_dir, record))
        info = inspect_image(path.read_bytes(), path.suffix) if path.is_file() else None
        signals = quality_signals([info.reduced])[0] if info is not None and info.reduced is not None else None
        rows.append({"sha256": record["sha256"], "scientist": record["scientist"],
                     "camera": (info.camera if info is not None else None) or "unknown",
                     "brightness": signals.brightness if signals else np.nan,
                     "contrast": signals.contrast if signals else np.nan,
                     "sharpness": signals.sharpness if signals else np.nan})
    frame = pd.DataFrame(rows, columns=ATTRIBUTE_COLUMNS[:-1])
    measured = frame.dropna(subset=["brightness", "sharpness"])
    frame["quality"] = quality_buckets(measured).reindex(frame.index).fillna("unreadable")
    return frame


@dataclass(frozen=True)
class BenchmarkAnalysis:
    """What :func:`analyse_benchmark` found: ``reference`` and ``error_types`` by model
    (``"challenger"``, ``"champion"``), the ``slices`` table, the ``regressed`` slices (``"kind:name"``),
    those of them that are ``protected``, the ``confusion`` matrix ``(names, counts)`` of the
    challenger at the ``confidence`` (its operating point) and the benchmark images' ``attributes``."""

    reference: dict[str, dict[str, float]]
    error_types: dict[str, dict]
    slices: pd.DataFrame
    regressed: list[str]
    protected: list[str]
    confusion: tuple[list[str], np.ndarray]
    confidence: float
    attributes: pd.DataFrame = field(repr=False)

    def as_dict(self) -> dict:
        """The analysis as a JSON-able record (the slices as rows, the confusion matrix as lists)."""
        slices = self.slices.astype(object).where(self.slices.notna(), None)
        return {"reference": self.reference, "error_types": self.error_types,
                "slices": slices.to_dict(orient="records"), "regressed": self.regressed, "protected": self.protected,
                "confusion": {"names": self.confusion[0], "counts": self.confusion[1].tolist(),
                              "confidence": self.confidence}}


def analyse_benchmark(challenger: Pass, staged_dir: str | Path, champion: Pass | None = None, margin: float = 0.01,
                      confidence: float = 0.25, groups: dict[str, list[str]] | None = None,
                      policy: SlicePolicy | None = None) -> BenchmarkAnalysis:
    """The analysis of the module docstring of the benchmark pass ``challenger`` (and the
    ``champion``'s pass over the same records), slices judged at ``margin`` by ``policy``, the
    confusion matrix at ``confidence``, class ``groups`` (group -> class names) as slices."""
    policy = policy or SlicePolicy()
    attributes = image_attributes(challenger.records, staged_dir)
    passes = {"challenger": challenger, **({"champion": champion} if champion is not None else {})}
    table = slice_table(challenger, attributes, champion, margin, groups, policy)
    return BenchmarkAnalysis({name: coco_reference(p) for name, p in passes.items()},
                             {name: error_types(p) for name, p in passes.items()}, table, regressed(table),
                             protected_regressions(table, policy.protected), confusion_matrix(challenger, confidence),
                             confidence, attributes)


def slice_galleries(model_pass: Pass, evaluation: pd.DataFrame, analysis: BenchmarkAnalysis, staged_dir: str | Path,
                    per_gallery: int = 4) -> str:
    """Pictures of the images with the most spurious boxes and with the most missed boxes in each
    regressed slice, or, when none regressed, in the two weakest image slices with enough support
    (``evaluation``: the per-image table, benchmark rows with their slice attributes), as Markdown."""
    from imgassets.core.training.evaluate import pictures_of

    bench = evaluation[evaluation["split"] == "benchmark"]
    slices = analysis.slices[analysis.slices["kind"].isin(["scientist", "camera", "quality"])]
    chosen = slices[slices["regressed"]]
    if chosen.empty:
        chosen = slices[slices["enough_support"]].sort_values("challenger").head(2)
    by_hash = {r["sha256"]: r for r in model_pass.records}
    parts = []
    for s in chosen.itertuples():
        members = bench[bench[s.kind] == s.slice] if s.kind in bench.columns else bench.iloc[0:0]
        for column, title in (("spurious", "false positives"), ("missed", "missed boxes")):
            worst = members[members[column] > 0].sort_values([column, "path"], ascending=[False, True]).head(per_gallery)
            if len(worst):
                parts.append(f"### {s.kind}: {s.slice}, {title}\n\n" + pictures_of(
                    model_pass, [by_hash[h] for h in worst["sha256"]], staged_dir,
                    [f"{r.missed} missed, {r.spurious} spurious" for r in worst.itertuples()],
                    analysis.confidence))
    return "\n\n".join(parts)


def error_types_chart_png(found: dict[str, dict]) -> bytes:
    """A bar chart (PNG) of each error type's dAP (mAP50 points gained by fixing it), challenger
    beside champion (``found``: :attr:`BenchmarkAnalysis.error_types`)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = list(ERROR_TYPES.values())
    figure, axis = plt.subplots(figsize=(6.0, 2.4), dpi=110)
    width = 0.8 / max(len(found), 1)
    for i, (model, result) in enumerate(found.items()):
        axis.bar(np.arange(len(names)) + i * width, [100 * result["dAP"][n] for n in names], width,
                 label=model, color=("#4c72b0", "#dd8452")[i % 2])
    axis.set_xticks(np.arange(len(names)) + width * (len(found) - 1) / 2, names, fontsize=8)
    axis.set_ylabel("mAP50 points lost", fontsize=8)
    axis.set_title("why AP is lost (TIDE error types, benchmark)", fontsize=9)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
