"""What the image-quality signals and EXIF facts cost the image index, and the index against its floor.

    python -m benchmarks.index_signals [--images 100000] [--scientists 20] [--size 320x240]
        [--drives DIR] [--repeats 2]

On a generated drive (:mod:`benchmarks.generated_tree`, kept under ``--drives`` and reused), every
scientist's folder is indexed from scratch (``update_image_index``, all cores) with the signals
(``quality_signals`` and ``exif_facts`` as shipped) and without them (both replaced by functions
that compute nothing, in this process before its worker pool forks: the reference still keeps the
reduced decode it would measure, which the index makes anyway), alternately, ``--repeats`` times
each; the best of each is kept. Printed: ``signals_cost`` (index with / index without; the goal is at
most 1.10), and ``decode_floor_vs_index`` (one strict libjpeg-turbo decode of every image on one core,
divided by the cores, against the index with the signals: the goal of ``benchmarks/versus_tools.py``,
at least 0.8).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import simplejpeg

from benchmarks.generated_tree import TreeSpec, generate_tree
from imgassets.core.drive.walk import list_scientists
from imgassets.core.images import inspect
from imgassets.core.images.index import update_image_index
from imgassets.core.worker_pool import shutdown_pools


def index_drive(root: Path) -> float:
    """Seconds to index every scientist folder of ``root`` from scratch (a fresh worker pool, forked
    with the signal functions this process has now)."""
    shutdown_pools()
    started = time.perf_counter()
    for scientist in list_scientists(root):
        update_image_index(root / scientist)
    elapsed = time.perf_counter() - started
    shutdown_pools()
    return elapsed


def without_signals() -> tuple:
    """Replace the signal functions by ones that compute nothing; return the originals."""
    originals = (inspect.quality_signals, inspect.exif_facts)
    nothing = inspect.QualitySignals(0.0, 0.0, 0.0, 0.0)
    inspect.quality_signals = lambda images: [nothing] * len(images)

    def orientation_only(image):
        try:
            value = image.getexif().get(inspect.EXIF_ORIENTATION_TAG)
        except Exception:
            return None, None, None
        return (int(value) if isinstance(value, int) else None), None, None

    inspect.exif_facts = orientation_only
    return originals


def decode_floor(root: Path, cores: int) -> float:
    """One strict decode of every image on one core, divided by ``cores``."""
    images = sorted(root.glob("scientist_*/images/*/*.jpg"))
    started = time.perf_counter()
    for path in images:
        simplejpeg.decode_jpeg(path.read_bytes(), strict=True)
    return (time.perf_counter() - started) / cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--scientists", type=int, default=20)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--drives", type=Path, default=Path("/tmp/imgassets-drives"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    root = args.drives / f"signals_{args.images}_{args.scientists}_{args.size}"
    if not (root / ".complete").exists():
        generate_tree(root, TreeSpec(images=args.images, scientists=args.scientists, width=width, height=height))
        (root / ".complete").write_text("")
    cores = os.cpu_count() or 1
    with_s, without_s = [], []
    for _ in range(args.repeats):
        with_s.append(index_drive(root))
        originals = without_signals()
        try:
            without_s.append(index_drive(root))
        finally:
            inspect.quality_signals, inspect.exif_facts = originals
    floor = decode_floor(root, cores)
    figures = {"images": args.images, "scientists": args.scientists, "size": args.size, "cores": cores,
               "index_with_signals_s": round(min(with_s), 3), "index_without_signals_s": round(min(without_s), 3),
               "signals_cost": round(min(with_s) / min(without_s), 3), "decode_floor_s": round(floor, 3),
               "decode_floor_vs_index": round(floor / min(with_s), 3)}
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
