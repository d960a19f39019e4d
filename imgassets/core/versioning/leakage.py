"""The leakage proof of a dataset version: no image, near-duplicate or frame of one burst or session
in two splits (:func:`split_leaks`; the ``no_split_leakage`` check runs it on every version)."""

from __future__ import annotations

import pyarrow as pa

from imgassets.core.images.duplicates import NEAR_DUPLICATE_DISTANCE, cross_pairs
from imgassets.core.versioning.manifest import (
    DATASET_SCHEMA,
    manifest_table,
)


def split_leaks(table: pa.Table | list[dict], stored_pairs: list[tuple] = (), max_distance: int = NEAR_DUPLICATE_DISTANCE,
                frame_links: list[tuple] = ()) -> list[str]:
    """Every pair of images in different splits that are exact or near-duplicates, or frames of one
    burst or session (the leakage proof), one sentence each: a content hash in both splits; a
    ``stored_pairs`` pair (the merge's near-duplicates) across splits; a ``frame_links`` link
    (``(sha256_a, sha256_b, reason)``: :func:`~imgassets.core.versioning.sequences.sequence_links`)
    across splits; and, recomputed from the manifest's perceptual hashes, every
    train image within ``max_distance`` bits of a val image (:func:`~imgassets.core.images.duplicates.cross_pairs`:
    only the pairs that would be a leak are searched). ``table``: the manifest's rows (a table with
    the dataset schema, or its dicts)."""
    frame = manifest_table(table, DATASET_SCHEMA).select(["scientist", "path", "sha256", "phash", "split"]).to_pandas()
    both = frame.groupby("sha256", sort=True)["split"].nunique()
    leaks = [f"{sha[:12]}… is in both splits" for sha in both.index[both > 1]]
    first = frame.drop_duplicates("sha256").set_index("sha256")

    def sentence(a: str, b: str, distance: int) -> str:
        x, y = first.loc[a], first.loc[b]
        return (f"{x['scientist']}/{x['path']} ({x['split']}) and {y['scientist']}/{y['path']} ({y['split']}) "
                f"are near-duplicates (distance {distance})")

    hashed = frame[frame["phash"].notna() & (frame["phash"] != "")]
    train = hashed[hashed["split"] == "train"]
    held_out = hashed[hashed["split"] != "train"]  # val and benchmark: neither may be near a train image
    found = set(cross_pairs(dict(zip(train["sha256"], train["phash"], strict=True)),
                            dict(zip(held_out["sha256"], held_out["phash"], strict=True)), max_distance))
    split_of = first["split"]
    found.update((a, b, int(d)) for a, b, d in stored_pairs
                 if a in split_of.index and b in split_of.index and split_of[a] != split_of[b])
    leaks += [sentence(a, b, d) for a, b, d in sorted(found)]
    for a, b, reason in sorted(set(frame_links)):
        if a in split_of.index and b in split_of.index and split_of[a] != split_of[b]:
            x, y = first.loc[a], first.loc[b]
            leaks.append(f"{x['scientist']}/{x['path']} ({x['split']}) and {y['scientist']}/{y['path']} ({y['split']}) "
                         f"are frames of {reason.removeprefix('one ')}")
    return leaks
