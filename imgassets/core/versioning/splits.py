"""Splitting a dataset version: every duplicate group to train, val or benchmark.

* **Split**: by group, into ``train``, ``val`` and ``benchmark`` (the field's test split: never
  trained on, never used for early stopping or model selection; champion and challenger are scored
  on it). A group with an image in a split of the previous dataset version stays in that split, so
  an image never leaves val or benchmark when data arrives (append-only). A new group's score is
  the first 8 hex digits of its name (for a group of several images, of the SHA-256 of its name)
  read as a fraction of 2**32; the new groups, in score order, are laid on the line of the new
  images, and each goes where the middle of its images falls: ``val`` below ``val_fraction``,
  ``benchmark`` from ``1 - benchmark_fraction``, ``train`` between. So each split receives its
  share of the new images within half a group at every size; a group larger than
  :data:`MAX_GROUP_SHARE` of val's share (one burst of 200 frames beside 16 images) is trained on
  and noted, never allowed to take a whole split. Then, while a class has fewer than
  :data:`MIN_BENCHMARK_IMAGES_PER_CLASS` benchmark images, the new train groups holding it move to
  benchmark, highest score first, as long as the benchmark stays within
  :data:`MAX_BENCHMARK_SHARE` of the new images and each class keeps at least as many train images
  as val and benchmark ones; a class on :data:`MIN_TRAIN_IMAGES_CLASS` images or more with none in
  train gets one of its new groups back in train. At least one group is in train and in val (new
  groups move for it, never old ones); a version whose train split would still hold no image or
  box, or val no image, is refused (:class:`EmptyDatasetError`) before anything trains. Recovery
  from such a state, which the append-only rule would keep: build one version with the previous
  splits ignored (``imgassets run --resplit``).

The rule is columnar: numpy over the groups (a score per group, one cumulative sum for the
placement), never a Python loop per image.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from imgassets.errors import ImgassetsError

DEFAULT_VAL_FRACTION = 0.2


DEFAULT_BENCHMARK_FRACTION = 0.05


MIN_BENCHMARK_IMAGES_PER_CLASS = 5
"""A class with fewer benchmark images than this cannot be measured on it: new train groups holding
the class move to benchmark until it has this many (within :data:`MAX_BENCHMARK_SHARE`)."""


MAX_BENCHMARK_SHARE = 0.25
"""The per-class top-up never makes the benchmark more than this share of a version's new images."""


MAX_GROUP_SHARE = 0.5
"""A new group (a burst, a session, near-duplicates) larger than this share of what its split should
receive (``val_fraction`` or ``benchmark_fraction`` of the new images, at least 2 images) goes to
train: one burst would otherwise take the whole split, and the split's share would be lost."""


MIN_TRAIN_IMAGES_CLASS = 3
"""A class on at least this many images keeps at least one of its new groups in train."""


class EmptyDatasetError(ImgassetsError, ValueError):
    """The snapshots hold fewer than two images, or no box at all: there is nothing to train on."""


SPLITS = ("train", "val", "benchmark")
ULTRALYTICS_SPLIT = {"train": "train", "val": "val", "benchmark": "test"}
"""Ultralytics' name for each split: the benchmark split is what Ultralytics calls ``test`` (the entry
of ``data.yaml`` that ``YOLO.val(split="test")`` reads). The one place the two names meet."""


def split_scores(names: np.ndarray, sizes: np.ndarray | None = None) -> np.ndarray:
    """Each content hash of ``names`` (an array of hex strings) as a number in [0, 1): its first 8 hex
    digits over 2**32 (the split compares it to the fractions). A group of several images
    (``sizes[i] > 1``) is named by its smallest hash, which is not uniform (the minimum of n uniform
    draws: such a group would go to val with probability 1 - 0.8**n); its score is read from the
    SHA-256 of that name instead, uniform whatever the group's size."""
    if not len(names):
        return np.zeros(0)
    hexes = names.tolist()
    if sizes is not None:
        hexes = [hashlib.sha256(name.encode()).hexdigest() if size > 1 else name
                 for name, size in zip(hexes, sizes.tolist(), strict=True)]
    prefixes = bytes.fromhex("".join(name[:8] for name in hexes))
    return np.frombuffer(prefixes, dtype=">u4").astype(np.float64) / 2**32


def group_splits(shas: np.ndarray, group_of: np.ndarray, val_fraction: float,
                 previous: dict[str, str] | None = None, benchmark_fraction: float = 0.0,
                 row_classes: pd.DataFrame | None = None, kept_in_train: list[dict] | None = None) -> np.ndarray:
    """The split of each row (content hash ``shas[i]`` in duplicate group ``group_of[i]``), by the
    rule in the module docstring, on columns: one array of :data:`SPLITS` values. ``row_classes``:
    the classes each row holds (columns ``row``, ``class_name``), for the benchmark's per-class
    top-up; none without it. ``kept_in_train``, when given, receives ``{"group", "images"}`` for each
    new group too large for val (:func:`_quota_splits`). Raises ``ValueError`` when the fractions
    leave no room for train."""
    if not (0 <= val_fraction <= 1 and 0 <= benchmark_fraction < 1 and val_fraction + benchmark_fraction <= 1):
        raise ValueError(f"val fraction {val_fraction} and benchmark fraction {benchmark_fraction} must each be in "
                         "[0, 1] and add up to at most 1")
    before = pd.Series(shas).map(previous or {})
    frame = pd.DataFrame({split: before == split for split in SPLITS})
    known = frame.groupby(pd.Series(group_of), sort=False)[list(SPLITS)].any()
    history = known.any(axis=1)
    fresh = known.index[~history].to_numpy(dtype=object)  # in order of first appearance
    # a group with history keeps it: benchmark first, then val (an image never leaves either)
    split = pd.Series(np.where(known["benchmark"], "benchmark", np.where(known["val"], "val", "train")),
                      index=known.index, dtype=object)
    group_rows = pd.Series(group_of).value_counts()
    sizes = group_rows.reindex(fresh).to_numpy() if len(fresh) else np.zeros(0, dtype=int)
    scores = split_scores(fresh, sizes)
    fresh_split = _quota_splits(fresh, sizes, scores, val_fraction, benchmark_fraction)
    cap = _group_cap(val_fraction, int(sizes.sum()))
    if kept_in_train is not None:
        kept_in_train.extend({"group": g, "images": int(n)} for g, n in zip(fresh.tolist(), sizes.tolist(), strict=True)
                             if n > cap)
    kept_splits = set(split[history.to_numpy()].tolist())
    if len(known) >= 2 and len(fresh):  # at least one group in train and in val, moving only new groups
        if "val" not in kept_splits and "val" not in fresh_split and (len(fresh) >= 2 or "train" in kept_splits):
            small = np.flatnonzero(sizes <= cap)  # the lowest score that fits val's share, else the smallest group
            fresh_split[small[int(np.argmin(scores[small]))] if len(small) else int(np.argmin(sizes))] = "val"
        if "train" not in kept_splits and "train" not in fresh_split and (len(fresh) >= 2 or "val" in kept_splits):
            # the benchmark group nearest the train band, else the highest score
            bench = np.flatnonzero(fresh_split == "benchmark")
            pick = bench[int(np.argmin(scores[bench]))] if len(bench) else len(scores) - 1 - int(np.argmax(scores[::-1]))
            fresh_split[pick] = "train"
    if row_classes is not None and len(fresh):
        classes = row_classes.assign(group=np.asarray(group_of, dtype=object)[row_classes["row"].to_numpy()])
        if benchmark_fraction > 0:
            _top_up_benchmark(fresh, scores, fresh_split, group_rows, split, classes)
        _train_every_class(fresh, fresh_split, group_rows, split, classes)
    split[fresh] = fresh_split
    return split.loc[group_of].to_numpy(dtype=object)


def _group_cap(fraction: float, new_images: int) -> float:
    """The most images a new group may have to go to a split that should receive ``fraction`` of
    ``new_images`` (:data:`MAX_GROUP_SHARE` of that share, at least 2)."""
    return max(2.0, MAX_GROUP_SHARE * fraction * new_images)


def _quota_splits(names: np.ndarray, sizes: np.ndarray, scores: np.ndarray, val_fraction: float,
                  benchmark_fraction: float) -> np.ndarray:
    """The split of each new group (``names``, their image counts ``sizes`` and ``scores``): groups
    taken in score order (ties by name), each placed by the middle of its images on the line of the
    new images from 0 to 1: ``val`` below ``val_fraction``, ``benchmark`` from ``1 -
    benchmark_fraction``, ``train`` between. So each split's share of the new images is its
    fraction within half a group, whatever the groups' sizes. A group larger than
    :data:`MAX_GROUP_SHARE` of val's share (at least 2 images) goes to train and is left off the
    line; one larger than that share of the benchmark's is kept out of the benchmark."""
    split = np.full(len(names), "train", dtype=object)
    if not len(names):
        return split
    total = int(sizes.sum())
    placed = sizes <= _group_cap(val_fraction, total)
    order = np.lexsort((names.astype(str), scores))
    order = order[placed[order]]
    taken = sizes[order].astype(np.float64)
    middle = (np.cumsum(taken) - taken / 2) / max(1.0, taken.sum())
    split[order[middle < val_fraction]] = "val"
    bench = (middle >= 1 - benchmark_fraction) & (taken <= _group_cap(benchmark_fraction, total))
    split[order[bench & (middle >= val_fraction)]] = "benchmark"
    return split


def _top_up_benchmark(fresh: np.ndarray, scores: np.ndarray, fresh_split: np.ndarray, group_rows: pd.Series,
                      kept: pd.Series, classes: pd.DataFrame) -> None:
    """Move new train groups to benchmark (in ``fresh_split``, in place) while a class has fewer
    than :data:`MIN_BENCHMARK_IMAGES_PER_CLASS` benchmark images, highest score first, within
    :data:`MAX_BENCHMARK_SHARE` of the new images, keeping a train group, and never leaving any class
    the group holds with fewer train images than val and benchmark images together (a rare class
    keeps most of its images for training). ``group_rows``: images per group; ``kept``: the split
    of each group with history; ``classes``: the classes of each row (``row``, ``class_name``,
    ``group``)."""
    fresh_images = int(group_rows.loc[fresh].sum())
    budget = int(MAX_BENCHMARK_SHARE * fresh_images)
    position = {group: i for i, group in enumerate(fresh.tolist())}
    split_of = {**kept.to_dict(), **dict(zip(fresh.tolist(), fresh_split.tolist(), strict=True))}
    classes = classes.assign(split=classes["group"].map(split_of))
    per_split = classes.groupby(["class_name", "split"])["row"].nunique().unstack(fill_value=0)
    trained = per_split["train"].to_dict() if "train" in per_split else {}
    held = per_split.drop(columns="train", errors="ignore").sum(axis=1).to_dict()
    in_group = classes.groupby(["group", "class_name"])["row"].nunique()
    taken = int(group_rows.loc[[g for g, i in position.items() if fresh_split[i] == "benchmark"]].sum())
    per_class = classes[classes["split"] == "benchmark"].groupby("class_name")["row"].nunique()
    candidates = classes[classes["group"].isin(position) & (classes["split"] == "train")]
    for class_name in sorted(set(classes["class_name"])):
        have = int(per_class.get(class_name, 0))
        groups = candidates.loc[candidates["class_name"] == class_name, "group"].unique().tolist()
        for group in sorted(groups, key=lambda g: -scores[position[g]]):
            i = position[group]
            if have >= MIN_BENCHMARK_IMAGES_PER_CLASS or taken + group_rows[group] > budget:
                break
            if fresh_split[i] != "train" or (fresh_split == "train").sum() <= 1 and not (kept == "train").any():
                continue
            holds = in_group.loc[group]
            if any(trained.get(c, 0) - n < held.get(c, 0) + n for c, n in holds.items()):
                continue
            fresh_split[i] = "benchmark"
            taken += int(group_rows[group])
            for c, n in holds.items():
                trained[c] = trained.get(c, 0) - n
                held[c] = held.get(c, 0) + n
            per_class = per_class.add(holds, fill_value=0)
            have = int(per_class.get(class_name, 0))


def _train_every_class(fresh: np.ndarray, fresh_split: np.ndarray, group_rows: pd.Series, kept: pd.Series,
                       classes: pd.DataFrame) -> None:
    """For each class on at least :data:`MIN_TRAIN_IMAGES_CLASS` images with none in train, move
    its smallest new val or benchmark group to train (in ``fresh_split``, in place): a class the
    model never trains on cannot be learnt, whatever the benchmark would measure. ``kept``: the split
    of each group with history (those never move); ``group_rows`` and ``classes`` as for
    :func:`_top_up_benchmark`."""
    position = {group: i for i, group in enumerate(fresh.tolist())}
    vals = int((fresh_split == "val").sum()) + int((kept == "val").sum())
    for _, rows in classes.groupby("class_name", sort=True):
        if rows["row"].nunique() < MIN_TRAIN_IMAGES_CLASS:
            continue
        groups = rows["group"].unique().tolist()
        split_of = [fresh_split[position[g]] if g in position else kept.get(g) for g in groups]
        if "train" in split_of:
            continue
        movable = [g for g in groups if g in position and (fresh_split[position[g]] != "val" or vals > 1)]
        if movable:
            smallest = min(movable, key=lambda g: (group_rows[g], g))
            vals -= fresh_split[position[smallest]] == "val"
            fresh_split[position[smallest]] = "train"


def refuse_nothing_to_train(splits: np.ndarray, boxes: pa.ListArray, snapshots: dict, with_history: bool) -> None:
    """Raise :class:`EmptyDatasetError` when the train split holds no image or no box, or val no
    image: training would fail for every scientist (in Ultralytics, with a message about files)."""
    counts = {split: int((splits == split).sum()) for split in SPLITS}
    trained_boxes = int(pc.sum(pc.list_value_length(boxes).filter(pa.array(splits == "train"))).as_py() or 0)
    if counts["train"] and counts["val"] and trained_boxes:
        return
    what = ("no image in train" if not counts["train"] else "no labelled box in train" if not trained_boxes
            else "no image in val")
    how = (" The previous version's splits are kept (an image never leaves val or benchmark): build this version "
           "once with them ignored, `imgassets run --resplit` (training_dataset config resplit: true)."
           if with_history else "")
    raise EmptyDatasetError(f"nothing to train on: {what} (train {counts['train']}, val {counts['val']}, benchmark "
                            f"{counts['benchmark']} images from {', '.join(sorted(snapshots))}).{how}")
