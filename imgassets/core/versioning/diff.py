"""Semantic diff of two versions (two dataset manifests, or two snapshots of one scientist).

The manifests are joined on the content hash, so an image is the same image wherever its file
moved: per scientist, images **added** and **removed**, images **re-labelled** (same content,
other boxes), **boxes added and removed by class** (counted per image and class, so a box moved to
another class is one removed and one added), images whose **split** changed (none under the split
rules, which are append-only: the diff says so), and the **classes** added, renamed or removed
(by id, since ids are stable: :mod:`imgassets.core.labels.class_registry`).

Every step is columnar (Arrow, pandas groupbys, numpy): a box's identity is a 64-bit hash of its
class name and its coordinates rounded to 1e-4, and an image's box set is the sum of its boxes'
hashes (order-free), so two 500k-image versions are compared without a Python object per image
(``benchmarks/diff_scale.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from imgassets.core.labels.class_registry import is_hole

COORDINATE_STEP = 1e-4
"""Coordinates closer than this are the same (YOLO text keeps 6 decimals; tools round differently)."""


@dataclass
class VersionDiff:
    """What changed from version ``a`` to ``b`` (module docstring). ``scientists``: per scientist
    ``{added, removed, relabelled}`` image counts; ``boxes``: per class ``{added, removed}``;
    ``split_changes``: ``{sha256, scientist, path, before, after}``; ``classes``: ``added``,
    ``removed`` (``[id, name]``) and ``renamed`` (``[id, before, after]``)."""

    kind: str
    a: str
    b: str
    images_a: int
    images_b: int
    scientists: dict[str, dict[str, int]] = field(default_factory=dict)
    boxes: dict[str, dict[str, int]] = field(default_factory=dict)
    split_changes: list[dict] = field(default_factory=list)
    classes: dict[str, list] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    """Up to 5 ``scientist/path`` of each kind of change (``added``, ``removed``, ``relabelled``)."""

    def as_dict(self) -> dict:
        return asdict(self)

    def totals(self) -> dict[str, int]:
        """Images added, removed and re-labelled over every scientist, and boxes added and removed."""
        totals = {k: sum(s[k] for s in self.scientists.values()) for k in ("added", "removed", "relabelled")}
        totals["boxes_added"] = sum(c["added"] for c in self.boxes.values())
        totals["boxes_removed"] = sum(c["removed"] for c in self.boxes.values())
        return totals

    def text(self) -> str:
        """The diff for a person: one line per scientist and class, split changes, classes."""
        lines = [f"{self.kind} {self.a} -> {self.b}: {self.images_a} -> {self.images_b} images"]
        if not any(any(v.values()) for v in self.scientists.values()):
            lines.append("  images: no change")
        for scientist, counts in sorted(self.scientists.items()):
            if any(counts.values()):
                lines.append(f"  {scientist}: +{counts['added']} added, -{counts['removed']} removed, "
                             f"{counts['relabelled']} re-labelled")
        for what in ("added", "removed", "relabelled"):
            if self.examples.get(what):
                lines.append(f"    {what}: " + ", ".join(self.examples[what]))
        changed = {name: c for name, c in sorted(self.boxes.items()) if c["added"] or c["removed"]}
        lines.append("  boxes: " + ("; ".join(f"{name} +{c['added']} -{c['removed']}" for name, c in changed.items())
                                    if changed else "no change"))
        if self.kind == "dataset":
            lines.append("  split changes: " + (f"{len(self.split_changes)} (the split rules keep an image in its "
                                                 "split: these need a look)" if self.split_changes
                                                 else "none (every image kept its split)"))
            for change in self.split_changes[:10]:
                lines.append(f"    {change['scientist']}/{change['path']}: {change['before']} -> {change['after']}")
        if self.kind != "dataset":
            return "\n".join(lines)
        parts = [f"added {', '.join(f'{n} (id {i})' for i, n in self.classes.get('added', []))}"
                 if self.classes.get("added") else "",
                 f"renamed {', '.join(f'{i}: {x} -> {y}' for i, x, y in self.classes.get('renamed', []))}"
                 if self.classes.get("renamed") else "",
                 f"removed {', '.join(f'{n} (id {i})' for i, n in self.classes.get('removed', []))}"
                 if self.classes.get("removed") else ""]
        lines.append("  classes: " + ("; ".join(p for p in parts if p) or "no change"))
        return "\n".join(lines)


def _name_hashes(names: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each class name (computed once per distinct name)."""
    unique, inverse = np.unique(names.astype(str), return_inverse=True)
    table = np.array([int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "little") for n in unique],
                     dtype=np.uint64)
    return table[inverse] if len(unique) else np.zeros(0, np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads the bits of each 64-bit value."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _boxes(table: pa.Table) -> pd.DataFrame:
    """One row per box: ``image`` (row number), ``class_name``, ``key`` (the box's 64-bit hash)."""
    boxes = table.column("boxes").combine_chunks()
    flat = pc.list_flatten(boxes)
    names = flat.field("class_name").to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore"):
        key = _name_hashes(names)
        for i, column in enumerate(("x_center", "y_center", "width", "height")):
            coords = np.rint(flat.field(column).to_numpy(zero_copy_only=False) / COORDINATE_STEP).astype(np.int64)
            key = _mix(key ^ (coords.astype(np.uint64) + np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15)))
    return pd.DataFrame({"image": pc.list_parent_indices(boxes).to_numpy(zero_copy_only=False),
                         "class_name": names, "key": key})


def _images(table: pa.Table, scientist: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per image (first row of each content hash): sha256, scientist, path, split, box-set hash;
    and the per-image per-class box counts (``sha256``, ``class_name``, ``n``)."""
    columns = {"sha256": table.column("sha256").to_numpy(zero_copy_only=False),
               "path": table.column("path").to_numpy(zero_copy_only=False)}
    columns["scientist"] = (table.column("scientist").to_numpy(zero_copy_only=False) if "scientist" in table.column_names
                            else np.full(len(table), scientist, dtype=object))
    columns["split"] = (table.column("split").to_numpy(zero_copy_only=False) if "split" in table.column_names
                        else np.full(len(table), None, dtype=object))
    images = pd.DataFrame(columns)
    boxes = _boxes(table)
    signature = np.zeros(len(images), dtype=np.uint64)
    counts = np.bincount(boxes["image"].to_numpy(), minlength=len(images))
    if len(boxes):
        sums = boxes.groupby("image")["key"].sum()  # uint64 sums wrap: an order-free set hash
        signature[sums.index.to_numpy()] = sums.to_numpy(dtype=np.uint64)
    images["signature"], images["boxes"] = signature, counts
    first = ~images["sha256"].duplicated().to_numpy()
    per_class = boxes.assign(sha256=images["sha256"].to_numpy()[boxes["image"].to_numpy()])
    per_class = per_class[first[boxes["image"].to_numpy()]].groupby(["sha256", "class_name"]).size().rename("n")
    return images[first].set_index("sha256"), per_class.reset_index()


def diff_versions(a: pa.Table, b: pa.Table, kind: str, a_id: str, b_id: str, a_classes: list[str] | None = None,
                  b_classes: list[str] | None = None, scientist: str | None = None) -> VersionDiff:
    """The diff from manifest ``a`` to manifest ``b`` (module docstring): two dataset manifests
    (``kind="dataset"``, with their ``a_classes``/``b_classes`` names, id = position) or two
    snapshot manifests of ``scientist`` (``kind="snapshot"``)."""
    left, left_classes = _images(a, scientist)
    right, right_classes = _images(b, scientist)
    added = right.index.difference(left.index)
    removed = left.index.difference(right.index)
    common = left.index.intersection(right.index)
    l_common, r_common = left.loc[common], right.loc[common]
    relabelled = common[(l_common["signature"].to_numpy() != r_common["signature"].to_numpy())
                        | (l_common["boxes"].to_numpy() != r_common["boxes"].to_numpy())]
    result = VersionDiff(kind, a_id, b_id, len(left), len(right))
    for what, hashes, side in (("added", added, right), ("removed", removed, left), ("relabelled", relabelled, right)):
        owners = side.loc[hashes, "scientist"].value_counts()
        for name, count in owners.items():
            result.scientists.setdefault(str(name), {"added": 0, "removed": 0, "relabelled": 0})[what] = int(count)
        rows = side.loc[hashes].sort_values(["scientist", "path"]).head(5)
        result.examples[what] = [f"{s}/{p}" for s, p in zip(rows["scientist"], rows["path"], strict=True)]
    for name in set(left["scientist"]) | set(right["scientist"]):
        result.scientists.setdefault(str(name), {"added": 0, "removed": 0, "relabelled": 0})
    counts = pd.merge(left_classes, right_classes, on=["sha256", "class_name"], how="outer",
                      suffixes=("_a", "_b")).fillna(0)
    delta = counts["n_b"] - counts["n_a"]
    by_class = pd.DataFrame({"class_name": counts["class_name"], "added": delta.clip(lower=0),
                             "removed": (-delta).clip(lower=0)}).groupby("class_name")[["added", "removed"]].sum()
    result.boxes = {str(n): {"added": int(r.added), "removed": int(r.removed)} for n, r in by_class.iterrows()}
    if kind == "dataset":
        moved = common[l_common["split"].to_numpy() != r_common["split"].to_numpy()]
        result.split_changes = [{"sha256": sha, "scientist": right.at[sha, "scientist"], "path": right.at[sha, "path"],
                                 "before": left.at[sha, "split"], "after": right.at[sha, "split"]} for sha in moved]
        result.classes = class_changes(a_classes or [], b_classes or [])
    return result


def class_changes(before: list[str], after: list[str]) -> dict[str, list]:
    """Classes ``added`` (``[id, name]``: new ids), ``renamed`` (``[id, before, after]``) and
    ``removed`` (``[id, name]``: an id that became a hole) between two class-name lists (id = position)."""
    changes: dict[str, list] = {"added": [], "renamed": [], "removed": []}
    for class_id, name in enumerate(after):
        if class_id >= len(before):
            if not is_hole(name):
                changes["added"].append([class_id, name])
        elif before[class_id] != name:
            if is_hole(name) and not is_hole(before[class_id]):
                changes["removed"].append([class_id, before[class_id]])
            elif not is_hole(name):
                changes["renamed"].append([class_id, before[class_id], name])
    return changes


def diff_datasets(store, a_ref: str, b_ref: str) -> VersionDiff:
    """:func:`diff_versions` of two stored dataset versions (ids, ``latest`` or ``latest~N``), each
    verified against its id. Raises ``ManifestError`` or ``ObjectNotFoundError`` naming what is wrong."""
    from imgassets.core.versioning.dataset import load_dataset
    from imgassets.core.versioning.refs import resolve_dataset_id

    a, b = (load_dataset(store, resolve_dataset_id(store, ref)) for ref in (a_ref, b_ref))
    return diff_versions(a.table, b.table, "dataset", a.dataset_id, b.dataset_id, a.class_names, b.class_names)


def diff_snapshots(store, scientist: str, a_ref: str, b_ref: str) -> VersionDiff:
    """:func:`diff_versions` of two stored snapshots of ``scientist`` (ids, ``latest`` or
    ``latest~N``), each checked against its id."""
    from imgassets.core.store.keys import snapshot_manifest_key
    from imgassets.core.versioning.dataset import load_snapshot_table
    from imgassets.core.versioning.refs import resolve_snapshot_id

    ids = [resolve_snapshot_id(store, scientist, ref) for ref in (a_ref, b_ref)]
    a, b = (load_snapshot_table(store, snapshot_manifest_key(scientist, i)) for i in ids)
    return diff_versions(a, b, "snapshot", f"{scientist}/{ids[0]}", f"{scientist}/{ids[1]}", scientist=scientist)
