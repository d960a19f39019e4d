"""Dataset health: what a dataset version holds, per split and per scientist, and where its boxes
sit, from the manifest alone (Roboflow's health check, computed for every version so that the UI
can plot each number from one version to the next).

Per split (``train``, ``val``, ``benchmark``) and per scientist: images, boxes, boxes by class,
boxes per image (mean), images without a box; box size (``sqrt(w*h)``, the side of the square of
the same area, as a share of the frame: median and 10th/90th percentiles) and aspect ratio
(``w/h`` in pixels: median); an annotation heatmap (box centres on a grid over the frame, as a
small PNG). A class with fewer than :data:`MIN_MEASURABLE_BOXES` boxes in ``val`` or in
``benchmark`` cannot be measured there: :func:`unmeasurable_classes`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from imgassets.core.labels.class_registry import is_hole

HEATMAP_CELLS = 32
"""Heatmap resolution: cells per side of the frame."""
HEATMAP_PIXELS = 384
"""Heatmap image size in pixels (each cell drawn as a square)."""
MIN_MEASURABLE_BOXES = 5
"""Below this many boxes in val (or benchmark), a class's mAP there is noise (the benchmark split tops each
class up to :data:`~imgassets.core.versioning.splits.MIN_BENCHMARK_IMAGES_PER_CLASS` images)."""


@dataclass
class DatasetHealth:
    """The numbers of the module docstring: ``splits`` and ``scientists`` map a name to its
    ``{images, boxes, boxes_per_image, empty_images, box_size_p10, box_size_median, box_size_p90,
    aspect_median, boxes_by_class}``; ``heatmap_png`` the heatmap of every box."""

    splits: dict[str, dict] = field(default_factory=dict)
    scientists: dict[str, dict] = field(default_factory=dict)
    heatmap_png: bytes = b""


def _boxes(table: pa.Table) -> pd.DataFrame:
    boxes = table.column("boxes").combine_chunks()
    flat = pc.list_flatten(boxes)
    rows = pc.list_parent_indices(boxes).to_numpy(zero_copy_only=False)
    width = table.column("width").to_numpy(zero_copy_only=False)[rows].astype(float)
    height = table.column("height").to_numpy(zero_copy_only=False)[rows].astype(float)
    w, h = (flat.field(c).to_numpy(zero_copy_only=False).astype(float) for c in ("width", "height"))
    return pd.DataFrame({"row": rows, "class_name": flat.field("class_name").to_numpy(zero_copy_only=False),
                         "x": flat.field("x_center").to_numpy(zero_copy_only=False),
                         "y": flat.field("y_center").to_numpy(zero_copy_only=False),
                         "size": np.sqrt(w * h), "aspect": np.divide(w * width, h * height,
                                                                     out=np.full(len(w), np.nan), where=h > 0)})


def _summary(images: int, boxes: pd.DataFrame, with_box: int) -> dict:
    sizes = boxes["size"].to_numpy()
    quantiles = np.quantile(sizes, [0.1, 0.5, 0.9]) if len(sizes) else [0.0, 0.0, 0.0]
    return {"images": images, "boxes": len(boxes), "boxes_per_image": round(len(boxes) / images, 3) if images else 0.0,
            "empty_images": images - with_box, "box_size_p10": round(float(quantiles[0]), 4),
            "box_size_median": round(float(quantiles[1]), 4), "box_size_p90": round(float(quantiles[2]), 4),
            "aspect_median": round(float(np.nanmedian(boxes["aspect"])) if len(boxes) else 0.0, 3),
            "boxes_by_class": {str(k): int(v) for k, v in boxes["class_name"].value_counts().sort_index().items()}}


def heatmap_png(x: np.ndarray, y: np.ndarray) -> bytes:
    """A PNG (:data:`HEATMAP_PIXELS` square) of the box centres ``x``, ``y`` (normalized, in
    [0, 1]) counted on a :data:`HEATMAP_CELLS` grid, square-root scaled so that sparse regions stay
    visible, smoothed, and coloured from black (no box) through red to pale yellow (the most), with
    a grey frame: the image's edges."""
    grid, _, _ = np.histogram2d(np.clip(y, 0, 1), np.clip(x, 0, 1), bins=HEATMAP_CELLS, range=[[0, 1], [0, 1]])
    scaled = np.sqrt(grid / grid.max()) if grid.max() > 0 else grid
    grey = Image.fromarray((scaled * 255).astype(np.uint8), mode="L").resize((HEATMAP_PIXELS, HEATMAP_PIXELS),
                                                                            Image.BILINEAR)
    grey = ImageOps.autocontrast(grey.filter(ImageFilter.GaussianBlur(HEATMAP_PIXELS / HEATMAP_CELLS / 2)))
    image = ImageOps.colorize(grey, black="#000004", mid="#bc3754", white="#fcffa4")
    ImageDraw.Draw(image).rectangle((0, 0, HEATMAP_PIXELS - 1, HEATMAP_PIXELS - 1), outline="#808080")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def dataset_health(table: pa.Table) -> DatasetHealth:
    """The health of a dataset manifest (``table``: the dataset schema), columnar."""
    boxes = _boxes(table)
    split = table.column("split").to_numpy(zero_copy_only=False)
    scientist = table.column("scientist").to_numpy(zero_copy_only=False)
    boxes["split"], boxes["scientist"] = split[boxes["row"]], scientist[boxes["row"]]
    health = DatasetHealth(heatmap_png=heatmap_png(boxes["x"].to_numpy(), boxes["y"].to_numpy()))
    for attribute, column, values in (("splits", "split", split), ("scientists", "scientist", scientist)):
        images = pd.Series(values).value_counts()
        groups = dict(tuple(boxes.groupby(column, sort=False)))  # one pass, not one comparison per name
        for name in sorted(images.index):
            mine = groups.get(name, boxes.iloc[:0])
            getattr(health, attribute)[str(name)] = _summary(int(images[name]), mine, mine["row"].nunique())
    return health


def unmeasurable_classes(health: DatasetHealth, class_names: list[str],
                         minimum: int = MIN_MEASURABLE_BOXES) -> list[tuple[str, str, int]]:
    """``(class, split, boxes)`` for every class (not a hole) with fewer than ``minimum`` boxes in
    ``val`` or ``benchmark``."""
    found = []
    for split in ("val", "benchmark"):
        counts = health.splits.get(split, {}).get("boxes_by_class", {})
        found += [(name, split, counts.get(name, 0)) for name in class_names
                  if not is_hole(name) and counts.get(name, 0) < minimum]
    return found
