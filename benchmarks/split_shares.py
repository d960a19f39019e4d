"""The split rule at the users' sizes: time of :func:`imgassets.core.versioning.splits.group_splits`
(quota placement, benchmark top-up, every class trained) per image and per doubling, against one
``value_counts`` of the group column measured in the same run (the floor of any rule that must know
each group's size), and each split's share against its fraction.

A generated dataset: content hashes, ``--burst-share`` of the images in bursts of ``--burst-size``
frames (one group each), 80 classes.

    .venv/bin/python -m benchmarks.split_shares --sizes 50000 100000 200000 500000
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np
import pandas as pd

from imgassets.core.versioning.splits import group_splits


def generated(count: int, burst_share: float, burst_size: int, seed: int = 0):
    """``(shas, group_of, row_classes)`` of ``count`` images."""
    rng = np.random.default_rng(seed)
    shas = np.array([hashlib.sha256(f"{seed}-{i}".encode()).hexdigest() for i in range(count)], dtype=object)
    group_of = shas.copy()
    in_bursts = rng.choice(count, int(count * burst_share), replace=False)
    for start in range(0, len(in_bursts) - burst_size + 1, burst_size):
        members = in_bursts[start:start + burst_size]
        group_of[members] = min(shas[members])
    classes = pd.DataFrame({"row": np.arange(count), "class_name": rng.choice([f"c{k}" for k in range(80)], count)})
    return shas, group_of, classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000, 200_000, 500_000])
    parser.add_argument("--burst-share", type=float, default=0.05)
    parser.add_argument("--burst-size", type=int, default=10)
    args = parser.parse_args()
    previous = None
    print("| images | split s | floor s | split / floor | x per doubling | train | val | benchmark |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count in args.sizes:
        shas, group_of, classes = generated(count, args.burst_share, args.burst_size)
        start = time.perf_counter()
        pd.Series(group_of).value_counts()
        floor = time.perf_counter() - start
        start = time.perf_counter()
        splits = group_splits(shas, group_of, 0.2, None, 0.05, classes)
        took = time.perf_counter() - start
        growth = "" if previous is None else f"{(took / previous[1]) ** (1 / np.log2(count / previous[0])):.2f}"
        shares = [f"{(splits == s).mean():.3f}" for s in ("train", "val", "benchmark")]
        print(f"| {count} | {took:.2f} | {floor:.3f} | {took / floor:.0f} | {growth} | {' | '.join(shares)} |")
        previous = (count, took)


if __name__ == "__main__":
    main()
