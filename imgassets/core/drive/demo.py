"""A demo shared drive built offline: synthetic shape images with exact YOLO labels.

Nothing is downloaded: images are drawn with Pillow (coloured circles, squares and triangles on
noisy backgrounds) from a fixed seed, so the same drive is built every time. Three scientists show
the layouts and quirks the product handles:

* ``ana``: Ultralytics layout (``images/`` -> ``labels/``), ``data.yaml`` with ``names`` as a dict,
  JPEG and PNG, a folder name with a space.
* ``ben``: labels beside the images, ``classes.txt`` in a *different class order*, BMP, TIFF, WebP,
  an upper-case ``.JPG`` and file names with spaces, nested sub-folders.
* ``chloe``: ``data.yaml`` with ``names`` as a list, a JPEG stored rotated with EXIF orientation 6
  (labels in the displayed frame), a background image with no label file, and a notes file.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")
MARKER = ".imgassets-demo-drive"


@dataclass(frozen=True)
class DemoImage:
    """A drawn image (displayed frame) and its boxes as (class name, x_center, y_center, w, h)."""

    image: Image.Image
    boxes: list[tuple[str, float, float, float, float]]


def draw_scene(rng: random.Random, size: tuple[int, int] = (128, 96), max_shapes: int = 3) -> DemoImage:
    """Draw 1..``max_shapes`` non-overlapping-ish shapes; boxes are normalized xywh of each shape."""
    width, height = size
    background = tuple(rng.randint(40, 120) for _ in range(3))
    image = Image.new("RGB", size, background)
    noise = Image.effect_noise(size, 24).convert("RGB")
    image = Image.blend(image, noise, 0.15)
    draw = ImageDraw.Draw(image)
    boxes = []
    for _ in range(rng.randint(1, max_shapes)):
        name = rng.choice(CLASSES)
        side = rng.randint(max(12, min(size) // 6), min(size) // 2)
        x0, y0 = rng.randint(0, width - side), rng.randint(0, height - side)
        x1, y1 = x0 + side, y0 + side
        colour = tuple(rng.randint(150, 255) for _ in range(3))
        if name == "circle":
            draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=colour)
        elif name == "square":
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=colour)
        else:
            draw.polygon([(x0, y1 - 1), ((x0 + x1) / 2, y0), (x1 - 1, y1 - 1)], fill=colour)
        boxes.append((name, (x0 + x1) / 2 / width, (y0 + y1) / 2 / height, side / width, side / height))
    return DemoImage(image, boxes)


def yolo_lines(boxes: list[tuple[str, float, float, float, float]], class_ids: dict[str, int]) -> str:
    """YOLO txt for ``boxes`` with the scientist's own class ids."""
    return "".join(f"{class_ids[n]} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for n, x, y, w, h in boxes)


def _save(image: Image.Image, path: Path, fmt: str, **params) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    path.write_bytes(buffer.getvalue())


def _ana(root: Path, rng: random.Random, count: int) -> None:
    base = root / "ana" / "street survey"
    ids = {n: i for i, n in enumerate(CLASSES)}
    (base / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (base / "data.yaml").write_text("path: .\ntrain: images\nval: images\nnames:\n" +
                                    "".join(f"  {i}: {n}\n" for n, i in ids.items()))
    for i in range(count):
        scene = draw_scene(rng)
        fmt, ext = ("PNG", "png") if i % 3 == 0 else ("JPEG", "jpg")
        _save(scene.image, base / "images" / f"ana_{i:03d}.{ext}", fmt)
        (base / "labels").mkdir(parents=True, exist_ok=True)
        (base / "labels" / f"ana_{i:03d}.txt").write_text(yolo_lines(scene.boxes, ids))


def _ben(root: Path, rng: random.Random, count: int) -> None:
    base = root / "ben"
    order = ("square", "triangle", "circle")  # another tool, another class order
    ids = {n: i for i, n in enumerate(order)}
    formats = [("BMP", "bmp"), ("TIFF", "tiff"), ("WEBP", "webp"), ("JPEG", "JPG"), ("PNG", "png")]
    for i in range(count):
        folder = base / ("2026-11" if i % 2 else "2026-10") / "field trip"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "classes.txt").write_text("\n".join(order) + "\n")
        scene = draw_scene(rng, size=(112, 112))
        fmt, ext = formats[i % len(formats)]
        params = {"lossless": True} if fmt == "WEBP" else {}
        _save(scene.image, folder / f"shot {i:03d}.{ext}", fmt, **params)
        (folder / f"shot {i:03d}.txt").write_text(yolo_lines(scene.boxes, ids))


def _chloe(root: Path, rng: random.Random, count: int) -> None:
    base = root / "chloe" / "bench"
    ids = {n: i for i, n in enumerate(CLASSES)}
    base.mkdir(parents=True, exist_ok=True)
    (base / "data.yaml").write_text("train: images\nval: images\nnames: [" + ", ".join(CLASSES) + "]\n")
    (root / "chloe" / "notes.md").write_text("Bench photos, labelled with Label Studio (YOLO export).\n")
    for i in range(count):
        scene = draw_scene(rng, size=(96, 128))
        name = f"bench_{i:03d}"
        if i == 0:  # stored rotated, displayed upright through EXIF orientation 6
            exif = Image.Exif()
            exif[0x0112] = 6
            _save(scene.image.transpose(Image.Transpose.ROTATE_90), base / "images" / f"{name}.jpg", "JPEG",
                  exif=exif.tobytes())
        else:
            _save(scene.image, base / "images" / f"{name}.jpg", "JPEG", quality=90)
        if i == count - 1:
            continue  # a background image: no label file
        (base / "labels").mkdir(parents=True, exist_ok=True)
        (base / "labels" / f"{name}.txt").write_text(yolo_lines(scene.boxes, ids))


IMAGES_PER_SCIENTIST = 32
"""Enough images for a benchmark split that measures something (about 13 of the 96) and a model
that finds the shapes with the demo training preset (``docs/benchmarks.md``)."""


def build_demo_drive(root: str | Path, images_per_scientist: int = IMAGES_PER_SCIENTIST, seed: int = 7) -> Path:
    """Build the demo drive under ``root`` (kept as is when it was already built there)."""
    root = Path(root)
    if (root / MARKER).is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for builder in (_ana, _ben, _chloe):
        builder(root, rng, images_per_scientist)
    (root / MARKER).write_text("built by imgassets.core.drive.demo\n")
    return root
