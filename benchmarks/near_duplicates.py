"""Near-duplicate search at the users' sizes: the multi-index search
(:func:`imgassets.core.images.duplicates.near_duplicate_pairs`) against the 8-band bucketing it
replaced, on the same perceptual hashes, with its growth per doubling.

The hashes are real: ``imagehash.phash`` of generated 96x64 JPEG scenes (shapes on noise, as the
demo drive draws them), a fraction of them recompressed copies (the near-duplicates a dataset
must keep in one split).

    .venv/bin/python -m benchmarks.near_duplicates --sizes 5000 10000 20000 100000 --bands-up-to 20000
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections import defaultdict

from PIL import Image, ImageDraw

from imgassets.core.images.duplicates import hamming, near_duplicate_pairs
from imgassets.core.images.inspect import inspect_image


def scene_hashes(count: int, seed: int = 0, copies: float = 0.1) -> dict[str, str]:
    """``count`` perceptual hashes of generated scenes, ``copies`` of them recompressed copies."""
    rng = random.Random(seed)
    hashes: dict[str, str] = {}
    originals: list[bytes] = []
    for i in range(count):
        if originals and rng.random() < copies:
            image = Image.open(io.BytesIO(rng.choice(originals)))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=rng.randint(40, 80))
        else:
            image = Image.frombytes("RGB", (96, 64), rng.randbytes(96 * 64 * 3))
            draw = ImageDraw.Draw(image)
            for _ in range(3):
                x, y = rng.randrange(80), rng.randrange(48)
                draw.rectangle((x, y, x + rng.randint(8, 40), y + rng.randint(8, 30)), fill=tuple(rng.randbytes(3)))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=90)
            originals.append(buffer.getvalue())
        hashes[f"img{i:07d}"] = inspect_image(buffer.getvalue(), ".jpg").phash
    return hashes


def banded_pairs(phashes: dict[str, str], max_distance: int = 6) -> list[tuple]:
    """The replaced search: 8 bands of 8 bits, every pair sharing a band compared in Python."""
    buckets: dict[tuple[int, str], list] = defaultdict(list)
    for key, value in phashes.items():
        for band in range(8):
            buckets[(band, value[band * 2:band * 2 + 2])].append(key)
    pairs: dict[tuple, int] = {}
    for members in buckets.values():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                pair = (a, b) if a < b else (b, a)
                if pair not in pairs and (d := hamming(phashes[a], phashes[b])) <= max_distance:
                    pairs[pair] = d
    return sorted((a, b, d) for (a, b), d in pairs.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--bands-up-to", type=int, default=20000, help="largest size the old search is run at")
    args = parser.parse_args()
    previous = None
    print("| hashes | multi-index s | per hash vs previous size | 8 bands s | bands / multi-index | pairs |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        hashes = scene_hashes(size)
        started = time.perf_counter()
        found = near_duplicate_pairs(hashes)
        seconds = time.perf_counter() - started
        growth = f"{(seconds / size) / (previous[1] / previous[0]):.2f}" if previous else "-"
        banded = "-"
        ratio = "-"
        if size <= args.bands_up_to:
            started = time.perf_counter()
            reference = banded_pairs(hashes)
            banded_s = time.perf_counter() - started
            if reference != found:
                raise SystemExit(f"the searches disagree at {size} hashes")
            banded, ratio = f"{banded_s:.2f}", f"{banded_s / seconds:.0f}"
        print(f"| {size} | {seconds:.3f} | {growth} | {banded} | {ratio} | {len(found)} |", flush=True)
        previous = (size, seconds)


if __name__ == "__main__":
    main()
