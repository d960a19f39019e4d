"""Training datasets: scientists' snapshots merged into one dataset version.

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
* **Split**: by :mod:`imgassets.core.versioning.splits`; **stored** by
  :mod:`imgassets.core.versioning.dataset_store`; the leakage proof is
  :mod:`imgassets.core.versioning.leakage`; building a version under the policies is
  :mod:`imgassets.core.versioning.build`.

* **Unlabelled images** (:mod:`imgassets.core.labels.unlabelled`) are left out and counted per
  scientist: never trained on, never in val or the benchmark.

Every step is a columnar operation on the Arrow table of the manifest (the dataset is never a
Python dict per image): concatenation, the first copy of each content hash, the class map, the
groups (only images in a near-duplicate pair leave their own group) and the split of each group.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from imgassets.core.images.duplicates import NEAR_DUPLICATE_DISTANCE, groups, near_duplicate_pairs
from imgassets.core.labels.class_registry import (
    ClassRegistry,
    ClassRegistryError,
    check_append_only,
    stable_class_names,
)
from imgassets.core.store.keys import (
    dataset_data_yaml_key,
    dataset_manifest_key,
    dataset_near_duplicates_key,
)
from imgassets.core.versioning.manifest import (
    BOX_TYPE,
    DATASET_SCHEMA,
    PROVENANCE_FIELD,
    UNLABELLED_FIELD,
    manifest_id,
    with_optional,
)
from imgassets.core.versioning.sequences import SequenceRules, sequence_links
from imgassets.core.versioning.snapshot import snapshot_rows_table
from imgassets.core.versioning.splits import (
    DEFAULT_BENCHMARK_FRACTION,
    DEFAULT_VAL_FRACTION,
    EmptyDatasetError,
    group_splits,
    refuse_nothing_to_train,
)


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
    unlabelled_images: dict[str, int] = field(default_factory=dict)
    """Per scientist, the images of their snapshot left out because they are unlabelled
    (:mod:`imgassets.core.labels.unlabelled`): never trained on, never in val or the benchmark."""
    flywheel: dict = field(default_factory=dict)
    """The labeling flywheel of this version (:func:`flywheel_counts`): images new since the previous
    version, how many of them were labelled from pre-annotations, and their boxes by provenance."""
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


def _concatenated(snapshots: dict[str, tuple[str, list[dict] | pa.Table]]) -> pa.Table:
    """Every snapshot's rows, scientists in name order and each one's rows by path, with the
    ``scientist`` and ``snapshot_id`` columns in front (the dataset schema's order)."""
    parts = []
    for scientist in sorted(snapshots):
        snapshot_id, rows = snapshots[scientist]
        table = snapshot_rows_table(rows).sort_by("path")  # by UTF-8 bytes: the order of code points
        parts.append(table.add_column(0, "snapshot_id", pa.array([snapshot_id] * len(table), pa.string()))
                     .add_column(0, "scientist", pa.array([scientist] * len(table), pa.string())))
    if not parts:
        return DATASET_SCHEMA.empty_table().drop_columns(["group", "split"])
    return pa.concat_tables(parts, promote_options="default").combine_chunks()  # polygons: null where none


def _without_unlabelled(table: pa.Table) -> tuple[pa.Table, dict[str, int]]:
    """``table`` (the concatenated snapshot rows) without its unlabelled images and without the
    ``unlabelled`` column, and how many each scientist had (only those with some)."""
    if UNLABELLED_FIELD.name not in table.column_names:
        return table, {}
    flag = pc.fill_null(table.column(UNLABELLED_FIELD.name), False)
    owners = pc.filter(table.column("scientist"), flag).to_pylist()
    counts = {s: owners.count(s) for s in sorted(set(owners))}
    return table.filter(pc.invert(flag)).drop_columns([UNLABELLED_FIELD.name]), counts


def flywheel_counts(table: pa.Table, previous_splits: dict[str, str] | None) -> dict:
    """Of the images of ``table`` (merged rows, one per content hash) new since the previous version
    (not in ``previous_splits``): ``labelled_images_added``, ``prelabelled_images_added`` (labelled
    from pre-annotations: a ``provenance`` value), their boxes ``accepted``, ``corrected``, ``added``
    and pre-annotations ``rejected``, and ``acceptance_rate`` (accepted / proposed, None when none were)."""
    shas = table.column("sha256").to_pylist()
    new = [sha not in (previous_splits or {}) for sha in shas]
    counts = {"labelled_images_added": sum(new), "prelabelled_images_added": 0, "accepted": 0, "corrected": 0,
              "added": 0, "rejected": 0}
    if PROVENANCE_FIELD.name in table.column_names:
        for is_new, value in zip(new, table.column(PROVENANCE_FIELD.name).to_pylist(), strict=True):
            if is_new and value is not None:
                counts["prelabelled_images_added"] += 1
                counts["rejected"] += value["rejected"]
                for kind in value["boxes"]:
                    counts[kind] = counts.get(kind, 0) + 1
    proposed = counts["accepted"] + counts["corrected"] + counts["rejected"]
    counts["acceptance_rate"] = round(counts["accepted"] / proposed, 4) if proposed else None
    return counts


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
    table, unlabelled = _without_unlabelled(_concatenated(snapshots))
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
        also = f" labelled (and {sum(unlabelled.values())} unlabelled, never trained on)" if unlabelled else ""
        raise EmptyDatasetError(f"the snapshots of {', '.join(sorted(snapshots)) or 'no scientist'} hold "
                                f"{len(merged)} valid{also} image(s); a dataset needs at least 2 (one train, one val)")
    used = set(pc.unique(pc.list_flatten(merged.column("boxes")).combine_chunks().field("class_name")).to_pylist())
    if not used:
        raise EmptyDatasetError(f"the {len(merged)} images of {', '.join(sorted(snapshots))} have no labelled box")
    class_names = registry.class_names() if registry is not None else stable_class_names(previous_class_names, used)
    flywheel = flywheel_counts(merged, previous_splits)
    if PROVENANCE_FIELD.name in merged.column_names:  # a snapshot's record, not the dataset's content
        merged = merged.drop_columns([PROVENANCE_FIELD.name])
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
    refuse_nothing_to_train(splits, boxes, snapshots, bool(previous_splits))
    columns = {name: merged.column(name) for name in merged.column_names}
    columns["boxes"] = _renumbered_boxes(merged.column("boxes"), class_names)
    columns["group"], columns["split"] = pa.array(group_of, pa.string()), pa.array(splits, pa.string())
    schema = with_optional(DATASET_SCHEMA, merged.column_names)
    dataset = pa.table({name: columns[name] for name in schema.names}, schema=schema)
    header = {"class_names": class_names, "val_fraction": val_fraction}
    return DatasetVersion(manifest_id(dataset, header), class_names, dataset,
                          {s: snapshots[s][0] for s in sorted(snapshots)}, int(dropped.sum()),
                          near_duplicates=near, sequence_links=frames,
                          sequence_rules=asdict(sequence_rules or SequenceRules()), label_conflicts=conflicts,
                          class_id_conflicts=class_id_conflicts(table), val_fraction=val_fraction,
                          benchmark_fraction=benchmark_fraction, retracted_images=retracted_rows,
                          class_registry=registry.digest if registry is not None else None,
                          unlabelled_images=unlabelled, flywheel=flywheel, groups_kept_in_train=too_large)
