"""Training datasets: snapshots merged, split, described by a manifest, staged on local disk.

* **Merge**: the rows of each scientist's snapshot manifest. An image whose content hash is already
  in the dataset (the same bytes from another folder or scientist) is kept once: the first by
  (scientist, path); when the copies carry different boxes, that is a *label conflict*, reported.
* **Duplicate groups**: near-duplicates (perceptual hash, :mod:`imgassets.core.images.duplicates`)
  and frames of one burst or recording session (:mod:`imgassets.core.versioning.sequences`) are
  grouped; a group is named by its smallest content hash and goes to one split whole.
* **Class map**: boxes are merged by class *name*, so the same name from two scientists is one
  class whatever its local id. Ids are positions in the class-name list and stay stable across
  versions (:mod:`imgassets.core.labels.class_registry`): with a class registry, its ids (every
  scientist's names mapped through its aliases and merges; an unknown name is refused); without
  one, the previous version's names in their order, then new names in sorted order.
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
* **Stored**: ``datasets/<dataset_id>/manifest.parquet``, ``datasets/<dataset_id>/data.yaml`` and
  ``datasets/<dataset_id>/near_duplicates.parquet`` (:data:`PAIRS_SCHEMA`: every near-duplicate pair
  the merge found, each pair once) and, when the merge linked frames,
  ``datasets/<dataset_id>/sequences.parquet`` (:data:`~imgassets.core.versioning.sequences.LINKS_SCHEMA`).
* **Staged** on local disk by :mod:`imgassets.core.versioning.pull` (Ultralytics layout, through a cache).

Every step is a columnar operation on the Arrow table of the manifest (the dataset is never a
Python dict per image): concatenation, the first copy of each content hash, the class map, the
groups (only images in a near-duplicate pair leave their own group) and the split of each group.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from imgassets.core.images.duplicates import NEAR_DUPLICATE_DISTANCE, cross_pairs, groups, near_duplicate_pairs
from imgassets.core.labels.class_registry import (
    ClassRegistry,
    ClassRegistryError,
    check_append_only,
    stable_class_names,
)
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import (
    dataset_data_yaml_key,
    dataset_manifest_key,
    dataset_near_duplicates_key,
    snapshot_manifest_key,
)
from imgassets.core.versioning.manifest import (
    BOX_TYPE,
    DATASET_SCHEMA,
    ID_SCHEME,
    SNAPSHOT_SCHEMA,
    ManifestError,
    check_manifest_id,
    manifest_id,
    manifest_table,
    read_with_footer,
    to_parquet_bytes,
    with_polygons,
)
from imgassets.core.versioning.sequences import SequenceRules, load_links, sequence_links, store_links
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


DATASET_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
"""A dataset id: :data:`imgassets.core.versioning.manifest.ID_LENGTH` lower-case hex digits."""
SPLITS = ("train", "val", "benchmark")


PAIRS_SCHEMA = pa.schema([("sha256_a", pa.string()), ("sha256_b", pa.string()), ("distance", pa.int8())])
"""Near-duplicate pairs: two content hashes (``sha256_a`` < ``sha256_b``) and their perceptual-hash distance in bits."""


@dataclass(frozen=True)
class DatasetVersion:
    """A merged, split dataset: its id, class names (id = position), manifest ``table``
    (:data:`~imgassets.core.versioning.manifest.DATASET_SCHEMA`, one row per image) and source
    snapshots. ``records`` gives the rows as dicts, built on first use, for the loops that want them."""

    dataset_id: str
    class_names: list[str]
    table: pa.Table
    snapshots: dict[str, str]
    duplicates_dropped: int
    near_duplicates: list[tuple] = field(default_factory=list)
    sequence_links: list[tuple] = field(default_factory=list)
    """``(sha256_a, sha256_b, reason)``: frames of one burst or session the merge kept in one split."""
    sequence_rules: dict = field(default_factory=dict)
    """The :class:`~imgassets.core.versioning.sequences.SequenceRules` the merge linked frames by."""
    label_conflicts: list[dict] = field(default_factory=list)
    class_id_conflicts: list[dict] = field(default_factory=list)
    val_fraction: float = DEFAULT_VAL_FRACTION
    benchmark_fraction: float = DEFAULT_BENCHMARK_FRACTION
    retracted_images: int = 0
    """Rows of the snapshots left out because their content was retracted."""
    class_registry: str | None = None
    """SHA-256 of the class registry the class names come from (kept at ``registries/<sha256>.yaml``), if any."""
    groups_kept_in_train: list[dict] = field(default_factory=list)
    """New groups (a burst, a session) too large for the val share, trained on instead: ``{"group", "images"}``
    (known when the version is built, not stored in the manifest)."""

    @functools.cached_property
    def records(self) -> list[dict]:
        """The manifest's rows as dicts (``boxes`` a list of dicts, nulls ``None``)."""
        return self.table.to_pylist()

    @property
    def manifest_key(self) -> str:
        return dataset_manifest_key(self.dataset_id)

    @property
    def data_yaml_key(self) -> str:
        return dataset_data_yaml_key(self.dataset_id)

    @property
    def near_duplicates_key(self) -> str:
        return dataset_near_duplicates_key(self.dataset_id)

    def splits_by_hash(self) -> dict[str, str]:
        """Content hash -> split, for the next version's stable splits."""
        return dict(zip(self.table.column("sha256").to_pylist(), self.table.column("split").to_pylist(), strict=True))

    def count(self, split: str) -> int:
        """Number of images in ``split`` (one of :data:`SPLITS`)."""
        return int(pc.sum(pc.equal(self.table.column("split"), split)).as_py() or 0)

    def box_count(self) -> int:
        """Number of boxes over every image."""
        return int(pc.sum(pc.list_value_length(self.table.column("boxes"))).as_py() or 0)

    def group_count(self) -> int:
        """Number of duplicate groups (a group goes to one split whole)."""
        return len(pc.unique(self.table.column("group")))


def load_snapshot(store: ObjectStore, manifest_key: str) -> list[dict]:
    """Rows of a snapshot manifest stored at ``manifest_key``, as dicts."""
    return load_snapshot_table(store, manifest_key).to_pylist()


def load_snapshot_table(store: ObjectStore, manifest_key: str) -> pa.Table:
    """A snapshot manifest stored at ``manifest_key`` as an Arrow table (:data:`SNAPSHOT_SCHEMA`),
    checked against its id first: its footer names the scientist and snapshot id of that key, and
    its content hashes to that id (:func:`imgassets.core.versioning.manifest.check_manifest_id`).
    Raises :class:`ManifestError` naming the key otherwise, ``ObjectNotFoundError`` when it is not
    stored."""
    stored, meta = read_with_footer(store.get_bytes(manifest_key))
    scientist, snapshot_id = meta.get("scientist"), meta.get("snapshot_id")
    if not isinstance(scientist, str) or not isinstance(snapshot_id, str) or \
            snapshot_manifest_key(scientist, snapshot_id) != manifest_key:
        raise ManifestError(f"{manifest_key}: its footer names scientist {scientist!r} and snapshot "
                            f"{snapshot_id!r}, not this key: not used")
    table = _snapshot_table(stored)
    check_manifest_id(manifest_key, table, {"scientist": scientist}, meta, snapshot_id)
    return table


def _box_key(boxes: list[dict]) -> list[tuple]:
    return sorted((b["class_name"], round(b["x_center"], 4), round(b["y_center"], 4), round(b["width"], 4),
                   round(b["height"], 4)) for b in boxes)


def class_id_conflicts(table: pa.Table) -> list[dict]:
    """Local class ids that name different classes in different scientists' labels, from the
    concatenated snapshot rows ``table`` (``scientist`` and ``boxes`` columns):
    ``[{"class_id": 0, "names": {"ana": ["cat"], "ben": ["square"]}}]`` (informational: the dataset
    maps classes by name, so these are remapped, but a scientist may have meant the same class)."""
    boxes = table.column("boxes").combine_chunks()
    flat = pc.list_flatten(boxes)
    owners = pc.take(table.column("scientist").combine_chunks(), pc.list_parent_indices(boxes))
    used = pd.DataFrame({"class_id": flat.field("class_id").to_numpy(zero_copy_only=False),
                         "scientist": owners.to_numpy(zero_copy_only=False),
                         "name": flat.field("class_name").to_numpy(zero_copy_only=False)}).drop_duplicates()
    conflicts = []
    for class_id, rows in used.groupby("class_id", sort=True):
        if rows["name"].nunique() > 1:
            names = rows.groupby("scientist", sort=True)["name"].agg(lambda n: sorted(n))
            conflicts.append({"class_id": int(class_id), "names": names.to_dict()})
    return conflicts


def _snapshot_table(rows: list[dict] | pa.Table) -> pa.Table:
    """A snapshot manifest's rows (dicts or a table) as a table with :data:`SNAPSHOT_SCHEMA` (and
    ``polygons`` when they have it)."""
    if isinstance(rows, pa.Table):
        schema = with_polygons(SNAPSHOT_SCHEMA, rows.column_names)
        return rows.select(schema.names).cast(schema)  # Parquet names list items "element"
    return manifest_table(rows, SNAPSHOT_SCHEMA)


def _concatenated(snapshots: dict[str, tuple[str, list[dict] | pa.Table]]) -> pa.Table:
    """Every snapshot's rows, scientists in name order and each one's rows by path, with the
    ``scientist`` and ``snapshot_id`` columns in front (the dataset schema's order)."""
    parts = []
    for scientist in sorted(snapshots):
        snapshot_id, rows = snapshots[scientist]
        table = _snapshot_table(rows).sort_by("path")  # by UTF-8 bytes: the order of code points
        parts.append(table.add_column(0, "snapshot_id", pa.array([snapshot_id] * len(table), pa.string()))
                     .add_column(0, "scientist", pa.array([scientist] * len(table), pa.string())))
    if not parts:
        return DATASET_SCHEMA.empty_table().drop_columns(["group", "split"])
    return pa.concat_tables(parts, promote_options="default").combine_chunks()  # polygons: null where none


def _label_conflicts(table: pa.Table, shas: np.ndarray, dropped: np.ndarray) -> list[dict]:
    """``{sha256, kept, dropped}`` for every dropped copy whose boxes differ from the kept copy's."""
    if not dropped.any():
        return []
    first_row = pd.Series(np.arange(len(shas))).groupby(shas, sort=False).transform("min").to_numpy()
    conflicts = []
    for row in np.flatnonzero(dropped).tolist():
        kept, copy = table.slice(first_row[row], 1).to_pylist()[0], table.slice(row, 1).to_pylist()[0]
        if _box_key(kept["boxes"]) != _box_key(copy["boxes"]):
            conflicts.append({"sha256": copy["sha256"], "kept": f"{kept['scientist']}/{kept['path']}",
                              "dropped": f"{copy['scientist']}/{copy['path']}"})
    return conflicts


def _renumbered_boxes(boxes: pa.ChunkedArray, class_names: list[str], names: pa.Array | None = None) -> pa.Array:
    """The ``boxes`` list column with each box's ``class_id`` set to its name's position in
    ``class_names``; ``names``: each box's new class name (flattened order), when they change."""
    boxes = boxes.combine_chunks()
    flat = pc.list_flatten(boxes)
    children = {name: flat.field(name) for name in (f.name for f in BOX_TYPE)}
    if names is not None:
        children["class_name"] = names
    children["class_id"] = pc.index_in(children["class_name"], value_set=pa.array(class_names)).cast(pa.int32())
    struct = pa.StructArray.from_arrays(list(children.values()), fields=list(BOX_TYPE))
    offsets = np.concatenate([[0], np.cumsum(pc.list_value_length(boxes).to_numpy(zero_copy_only=False))])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct, type=pa.list_(BOX_TYPE))


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


def _refuse_nothing_to_train(splits: np.ndarray, boxes: pa.ListArray, snapshots: dict, with_history: bool) -> None:
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


def _registered_names(table: pa.Table, registry: ClassRegistry) -> pa.Table:
    """``table`` (the concatenated snapshot rows) with every box's class name mapped through the
    registry for its scientist. Raises :class:`ClassRegistryError` listing every scientist and
    name the registry does not know."""
    boxes = table.column("boxes").combine_chunks()
    owners = pc.take(table.column("scientist").combine_chunks(), pc.list_parent_indices(boxes))
    used = pd.DataFrame({"scientist": owners.to_numpy(zero_copy_only=False),
                         "name": pc.list_flatten(boxes).field("class_name").to_numpy(zero_copy_only=False)})
    pairs = used.drop_duplicates()
    names_by_scientist = pairs.groupby("scientist")["name"].agg(set).to_dict()
    unknown = registry.unknown(names_by_scientist)
    if unknown:
        raise ClassRegistryError("; ".join(f"{scientist}: {reason}" for scientist, _, reason in unknown))
    mapping = {(s, n): registry.canonical(s, n) for s, n in pairs.itertuples(index=False)}
    canonical = pa.array([mapping[pair] for pair in zip(used["scientist"], used["name"], strict=True)], pa.string())
    return table.set_column(table.schema.get_field_index("boxes"), "boxes",
                            _renumbered_boxes(table.column("boxes"), registry.class_names(), canonical))


def merge_snapshots(snapshots: dict[str, tuple[str, list[dict] | pa.Table]], val_fraction: float = DEFAULT_VAL_FRACTION,
                    previous_splits: dict[str, str] | None = None,
                    max_distance: int = NEAR_DUPLICATE_DISTANCE,
                    benchmark_fraction: float = DEFAULT_BENCHMARK_FRACTION,
                    previous_class_names: list[str] | None = None, registry: ClassRegistry | None = None,
                    retracted: set[str] | frozenset[str] = frozenset(), previous_id: str = "",
                    captures: pd.DataFrame | None = None, sequence_rules: SequenceRules | None = None) -> DatasetVersion:
    """Merge ``{scientist: (snapshot_id, rows)}`` (rows: a snapshot manifest's dicts or Arrow
    table) into one :class:`DatasetVersion` (rules in the module docstring), on Arrow columns.
    ``previous_splits`` (content hash -> split of the previous dataset version) keeps splits
    stable, ``previous_class_names`` (that version's class names) its class ids; ``registry``
    maps every scientist's class names (:mod:`imgassets.core.labels.class_registry`);
    ``retracted``: content hashes left out (:mod:`imgassets.core.versioning.retraction`);
    ``captures`` (:func:`~imgassets.core.versioning.sequences.load_captures`) and ``sequence_rules``
    (default :class:`~imgassets.core.versioning.sequences.SequenceRules`: bursts within 2 s) link the
    frames of one burst or session into one group (:mod:`imgassets.core.versioning.sequences`).
    Raises :class:`EmptyDatasetError` when fewer than two images or no box remain,
    :class:`~imgassets.core.labels.class_registry.ClassRegistryError` for names the registry does
    not know or a registry that would change an id of ``previous_class_names`` (dataset
    ``previous_id``), ``ValueError`` for fractions that leave no room for train."""
    table = _concatenated(snapshots)
    retracted_rows = 0
    if retracted:
        out = pc.is_in(table.column("sha256"), pa.array(sorted(retracted), pa.string()))
        retracted_rows = int(pc.sum(out).as_py() or 0)
        table = table.filter(pc.invert(out))
    if registry is not None:
        if previous_class_names:
            check_append_only(registry, previous_class_names, previous_id or "previous")
        table = _registered_names(table, registry)
    shas = table.column("sha256").to_numpy(zero_copy_only=False).astype(object)
    dropped = pd.Series(shas).duplicated(keep="first").to_numpy()
    conflicts = _label_conflicts(table, shas, dropped)
    merged = table.filter(pa.array(~dropped))
    if len(merged) < 2:
        raise EmptyDatasetError(f"the snapshots of {', '.join(sorted(snapshots)) or 'no scientist'} hold "
                                f"{len(merged)} valid image(s); a dataset needs at least 2 (one train, one val)")
    used = set(pc.unique(pc.list_flatten(merged.column("boxes")).combine_chunks().field("class_name")).to_pylist())
    if not used:
        raise EmptyDatasetError(f"the {len(merged)} images of {', '.join(sorted(snapshots))} have no labelled box")
    class_names = registry.class_names() if registry is not None else stable_class_names(previous_class_names, used)
    shas = merged.column("sha256").to_numpy(zero_copy_only=False).astype(object)
    phashes = merged.column("phash").to_pylist()
    near = near_duplicate_pairs({sha: ph for sha, ph in zip(shas.tolist(), phashes, strict=True) if ph}, max_distance)
    frames = sequence_links(merged, captures, sequence_rules or SequenceRules())
    linked = groups({key for a, b, *_ in (*near, *frames) for key in (a, b)}, [*near, *frames])
    by_hash = pd.Series(shas)
    group_of = by_hash.map(linked).fillna(by_hash).to_numpy(dtype=object)  # alone unless in a near-duplicate pair
    boxes = merged.column("boxes").combine_chunks()
    row_classes = pd.DataFrame({"row": pc.list_parent_indices(boxes).to_numpy(zero_copy_only=False),
                                "class_name": pc.list_flatten(boxes).field("class_name").to_numpy(zero_copy_only=False)}
                               ).drop_duplicates()
    too_large: list[dict] = []
    splits = group_splits(shas, group_of, val_fraction, previous_splits, benchmark_fraction, row_classes, too_large)
    _refuse_nothing_to_train(splits, boxes, snapshots, bool(previous_splits))
    columns = {name: merged.column(name) for name in merged.column_names}
    columns["boxes"] = _renumbered_boxes(merged.column("boxes"), class_names)
    columns["group"], columns["split"] = pa.array(group_of, pa.string()), pa.array(splits, pa.string())
    schema = with_polygons(DATASET_SCHEMA, merged.column_names)
    dataset = pa.table({name: columns[name] for name in schema.names}, schema=schema)
    header = {"class_names": class_names, "val_fraction": val_fraction}
    return DatasetVersion(manifest_id(dataset, header), class_names, dataset,
                          {s: snapshots[s][0] for s in sorted(snapshots)}, int(dropped.sum()),
                          near_duplicates=near, sequence_links=frames,
                          sequence_rules=asdict(sequence_rules or SequenceRules()), label_conflicts=conflicts,
                          class_id_conflicts=class_id_conflicts(table), val_fraction=val_fraction,
                          benchmark_fraction=benchmark_fraction, retracted_images=retracted_rows,
                          class_registry=registry.digest if registry is not None else None,
                          groups_kept_in_train=too_large)


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


def data_yaml_text(class_names: list[str], root: str | None = None) -> str:
    """Ultralytics ``data.yaml``: ``path`` (when given), ``train``/``val`` image folders, the
    benchmark split as ``test`` (where Ultralytics' ``val(split="test")`` looks), ``names`` dict."""
    doc: dict = {"path": root} if root else {}
    doc.update(train="images/train", val="images/val", test="images/benchmark", nc=len(class_names),
               names=dict(enumerate(class_names)))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def pairs_table(pairs: list[tuple]) -> pa.Table:
    """Near-duplicate pairs ``(sha256_a, sha256_b, distance)`` as a :data:`PAIRS_SCHEMA` table."""
    a, b, distance = zip(*pairs, strict=True) if pairs else ((), (), ())
    return pa.table({"sha256_a": pa.array(a, pa.string()), "sha256_b": pa.array(b, pa.string()),
                     "distance": pa.array(distance, pa.int8())}, schema=PAIRS_SCHEMA)


def store_dataset(store: ObjectStore, dataset: DatasetVersion) -> None:
    """Write the near-duplicate pairs, ``data.yaml`` and, last, the dataset manifest (a dataset is
    stored once its manifest is: skipped when this dataset id's manifest already is)."""
    if store.exists(dataset.manifest_key):
        return
    meta = {"kind": "dataset", "dataset_id": dataset.dataset_id, "class_names": dataset.class_names,
            "snapshots": dataset.snapshots, "duplicates_dropped": dataset.duplicates_dropped,
            "near_duplicate_pairs": len(dataset.near_duplicates), "sequence_links": len(dataset.sequence_links),
            "sequence_rules": dataset.sequence_rules,
            "label_conflicts": dataset.label_conflicts,
            "class_id_conflicts": dataset.class_id_conflicts, "val_fraction": dataset.val_fraction,
            "benchmark_fraction": dataset.benchmark_fraction, "retracted_images": dataset.retracted_images,
            "class_registry": dataset.class_registry, "id_scheme": ID_SCHEME}
    store.put_bytes(dataset.near_duplicates_key, to_parquet_bytes(pairs_table(dataset.near_duplicates), PAIRS_SCHEMA,
                                                                 {"dataset_id": dataset.dataset_id}))
    store_links(store, dataset.dataset_id, dataset.sequence_links)
    store.put_bytes(dataset.data_yaml_key, data_yaml_text(dataset.class_names).encode())
    store.put_bytes(dataset.manifest_key, to_parquet_bytes(dataset.table, DATASET_SCHEMA, meta))


def _stored_pairs(store: ObjectStore, dataset_id: str) -> list[tuple]:
    """The dataset's near-duplicate pairs, from its ``near_duplicates.parquet``."""
    table = pq.read_table(io.BytesIO(store.get_bytes(dataset_near_duplicates_key(dataset_id))))
    return list(zip(*(table.column(c).to_pylist() for c in PAIRS_SCHEMA.names), strict=True))


def load_dataset(store: ObjectStore, dataset_id: str) -> DatasetVersion:
    """Read a stored dataset version back (what a training container does before staging), after
    :func:`verify_manifest`. Raises :class:`ManifestError` for a malformed id or a manifest that
    fails verification, ``ObjectNotFoundError`` when it (or its pairs) is not stored."""
    if not DATASET_ID_PATTERN.match(dataset_id):
        raise ManifestError(f"{dataset_id!r} is not a dataset id (16 hex digits)")
    stored, meta = read_with_footer(store.get_bytes(dataset_manifest_key(dataset_id)))
    schema = with_polygons(DATASET_SCHEMA, stored.column_names)
    table = stored.select(schema.names).cast(schema)  # Parquet names list items "element"
    verify_manifest(dataset_id, table, meta)
    return DatasetVersion(dataset_id, list(meta["class_names"]), table, dict(meta["snapshots"]),
                          int(meta.get("duplicates_dropped", 0)),
                          near_duplicates=_stored_pairs(store, dataset_id),
                          sequence_links=load_links(store, dataset_id),
                          sequence_rules=dict(meta.get("sequence_rules") or {}),
                          label_conflicts=list(meta.get("label_conflicts", [])),
                          class_id_conflicts=list(meta.get("class_id_conflicts", [])),
                          val_fraction=float(meta.get("val_fraction", DEFAULT_VAL_FRACTION)),
                          benchmark_fraction=float(meta.get("benchmark_fraction", 0.0)),
                          retracted_images=int(meta.get("retracted_images", 0)),
                          class_registry=meta.get("class_registry"))


def verify_manifest(dataset_id: str, table: pa.Table, meta: dict) -> None:
    """Check a dataset manifest (its ``table`` with the dataset schema, and footer ``meta``) before
    it is used: its content hashes to ``dataset_id`` (:func:`imgassets.core.versioning.manifest.manifest_id`,
    over the class names and the val fraction recorded in the footer), and every row has a split in
    :data:`SPLITS`, a 64-hex content hash and a supported format, so no value can lead a pull
    outside its destination. A footer without ``id_scheme`` is refused
    (:func:`~imgassets.core.versioning.manifest.check_manifest_id`). Raises :class:`ManifestError`
    naming the manifest and the fault (for a field, the first faulty row, from 1, and its value)."""
    from imgassets.core.images.inspect import SUPPORTED_FORMATS

    key = dataset_manifest_key(dataset_id)
    if not isinstance(meta.get("class_names"), list) or not isinstance(meta.get("snapshots"), dict):
        raise ManifestError(f"{key}: footer has no class_names list or snapshots map")
    header = {"class_names": meta["class_names"], "val_fraction": meta.get("val_fraction", DEFAULT_VAL_FRACTION)}
    check_manifest_id(key, table, header, meta, dataset_id)
    rules = (("split", pc.is_in(table.column("split"), pa.array(SPLITS)), f"not one of {', '.join(SPLITS)}"),
             ("sha256", pc.match_substring_regex(table.column("sha256"), r"^[0-9a-f]{64}$"), "not 64 hex digits"),
             ("format", pc.is_in(table.column("format"), pa.array(list(SUPPORTED_FORMATS))), "not a supported format"))
    names = {"split": "split", "sha256": "content hash", "format": "format"}
    for column, ok, reason in rules:
        bad = np.flatnonzero(~pc.fill_null(ok, False).to_numpy(zero_copy_only=False))
        if len(bad):
            value = table.column(column)[int(bad[0])].as_py()
            raise ManifestError(f"{key}: row {int(bad[0]) + 1} has {names[column]} {value!r}, {reason}")


def yolo_label_text(boxes: list[dict]) -> str:
    """YOLO txt for ``boxes``: one row ``class x_center y_center width height`` per box, 6 decimals."""
    return "".join(
        f"{b['class_id']} {b['x_center']:.6f} {b['y_center']:.6f} {b['width']:.6f} {b['height']:.6f}\n" for b in boxes
    )
