"""A generated shared drive for benchmarks: scientists' folders of JPEGs with YOLO labels.

Each image is distinct content (smooth random colour fields with one rectangle, so perceptual
hashes differ too), JPEG quality 90, with a YOLO txt label (one box, normalized xywh) and a
``data.yaml`` class map per scientist. A configurable fraction of images are byte-for-byte
duplicates of another scientist's image (the same photo dropped twice), as on a real drive.
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASS_NAMES = ["cat", "dog", "car"]


@dataclass(frozen=True)
class TreeSpec:
    """What to generate: ``images`` in all, over ``scientists`` folders, ``width`` x ``height``
    pixels, ``duplicate_fraction`` of the images copied from another scientist, ``seed``."""

    images: int = 4000
    scientists: int = 4
    width: int = 640
    height: int = 480
    duplicate_fraction: float = 0.05
    seed: int = 0


def encode_image(rng: np.random.Generator, width: int, height: int) -> tuple[bytes, str]:
    """One distinct JPEG (quality 90) and its YOLO label line (class x_center y_center w h)."""
    field = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize((width, height), Image.Resampling.BILINEAR)
    x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
    w, h = int(rng.integers(width // 8, width // 2)), int(rng.integers(height // 8, height // 2))
    ImageDraw.Draw(image).rectangle([x0, y0, x0 + w, y0 + h], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    cls = int(rng.integers(0, len(CLASS_NAMES)))
    label = f"{cls} {(x0 + w / 2) / width:.6f} {(y0 + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}\n"
    return buffer.getvalue(), label


def write_file(path: Path, data: bytes) -> None:
    """Write ``path`` as a new file (temporary name, then rename): a new inode, so that a hardlinked
    copy of the tree (the DVC workspace) is never changed through this one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def generate_tree(root: Path, spec: TreeSpec) -> list[Path]:
    """Write the tree under ``root`` (``scientist_NN/images/batch_NNN/img_NNNNNN.jpg`` and the
    matching ``labels/...txt``); return the image paths."""
    rng = np.random.default_rng(spec.seed)
    picker = random.Random(spec.seed)
    per = max(1, spec.images // spec.scientists)
    written: list[Path] = []
    for s in range(spec.scientists):
        folder = root / f"scientist_{s:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        others = list(written)  # the earlier scientists' images (a duplicate comes from another folder)
        (folder / "data.yaml").write_text("names:\n" + "".join(f"  - {n}\n" for n in CLASS_NAMES))
        for i in range(per):
            rel = f"batch_{i // 500:03d}/img_{i:06d}"
            if others and picker.random() < spec.duplicate_fraction:
                source = picker.choice(others)
                data = source.read_bytes()
                label = (source.parents[2] / "labels" / source.relative_to(source.parents[1]).with_suffix(".txt")).read_text()
            else:
                data, label = encode_image(rng, spec.width, spec.height)
            image = folder / "images" / f"{rel}.jpg"
            write_file(image, data)
            write_file(folder / "labels" / f"{rel}.txt", label.encode())
            written.append(image)
    return written


def apply_change(root: Path, fraction: float, seed: int, width: int, height: int) -> tuple[int, int]:
    """Change ``fraction`` of the tree's images, half re-encoded in place of existing ones (new
    content, same path) and half new files next to them, with their labels; return (modified, added)."""
    rng = np.random.default_rng(seed + 1)
    picker = random.Random(seed + 1)
    images = sorted(root.glob("scientist_*/images/*/*.jpg"))
    count = max(2, int(len(images) * fraction))
    chosen = picker.sample(images, count)
    modified, added = chosen[: count // 2], chosen[count // 2:]
    for path in modified:
        data, label = encode_image(rng, width, height)
        write_file(path, data)
        write_file(path.parents[2] / "labels" / path.parent.name / f"{path.stem}.txt", label.encode())
    for path in added:
        data, label = encode_image(rng, width, height)
        write_file(path.with_name(f"{path.stem}_new.jpg"), data)
        write_file(path.parents[2] / "labels" / path.parent.name / f"{path.stem}_new.txt", label.encode())
    return len(modified), len(added)
