"""Semantic diff of two versions (two dataset manifests, or two snapshots of one scientist).

The manifests are joined on the content hash, so an image is the same image wherever its file
moved: per scientist, images **added** and **removed**, images **re-labelled** (same content,
other boxes), **boxes added and removed by class** (counted per image and class, so a box moved to
another class is one removed and one added), images whose **split** changed (none under the split
rules, which are append-only: the diff says so), and the **classes** added, renamed or removed
(by id, since ids are stable: :mod:`imgassets.core.labels.class_registry`).

Every step is columnar: content hashes and class names are dictionary-encoded once for both
versions, and everything after is integer arrays (numpy). A box's identity is a 64-bit hash of its
class name and its coordinates rounded to 1e-4, and an image's box set is the sum of its boxes'
hashes (order-free), so two 500k-image versions are compared without a Python object per image
(``benchmarks/versions_scale.py``).
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import asdict, dataclass, field

import numpy as np
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


def _name_hashes(names: list[str]) -> np.ndarray:
    """A 64-bit hash of each distinct class name (index = its dictionary code)."""
    return np.array([int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "little") for n in names], dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads the bits of each 64-bit value."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass
class _Side:
    """One version's images, indexed by the content hash's code (shared by both versions): for
    each code, whether this version holds it, its first row, its box-set hash and box count; and
    each box's (image code, class code)."""

    present: np.ndarray
    row: np.ndarray
    signature: np.ndarray
    boxes: np.ndarray
    box_image: np.ndarray
    box_class: np.ndarray
    scientist: np.ndarray
    path: np.ndarray
    split: np.ndarray


def _side(table: pa.Table, codes: np.ndarray, size: int, class_codes: np.ndarray, class_hashes: np.ndarray,
          scientist: str | None) -> _Side:
    """:class:`_Side` of ``table`` whose rows have the content-hash ``codes`` (``size`` codes in
    all) and whose boxes have the class-name ``class_codes`` (hashed by ``class_hashes``)."""
    boxes = table.column("boxes").combine_chunks()
    flat = pc.list_flatten(boxes)
    parent = pc.list_parent_indices(boxes).to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore"):
        key = class_hashes[class_codes]
        for i, column in enumerate(("x_center", "y_center", "width", "height")):
            coords = np.rint(flat.field(column).to_numpy(zero_copy_only=False) / COORDINATE_STEP).astype(np.int64)
            key = _mix(key ^ (coords.astype(np.uint64) + np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15)))
        counts = pc.list_value_length(boxes).to_numpy(zero_copy_only=False)
        per_row = np.zeros(len(table), dtype=np.uint64)
        starts = (np.cumsum(counts) - counts)[counts > 0]
        if len(starts):  # uint64 sums wrap: an order-free hash of each row's boxes
            per_row[counts > 0] = np.add.reduceat(key, starts)
    # the first row of each content hash stands for the image (a snapshot may hold the bytes twice)
    order = np.argsort(codes, kind="stable")
    first = order[np.r_[True, codes[order][1:] != codes[order][:-1]]] if len(codes) else order
    keep_row = np.zeros(len(table), dtype=bool)
    keep_row[first] = True
    side = _Side(present=np.zeros(size, dtype=bool), row=np.full(size, -1), signature=np.zeros(size, np.uint64),
                 boxes=np.zeros(size, np.int64), box_image=codes[parent][keep_row[parent]],
                 box_class=class_codes[keep_row[parent]],
                 scientist=(table.column("scientist").to_numpy(zero_copy_only=False) if "scientist" in table.column_names
                            else np.full(len(table), scientist, dtype=object)),
                 path=table.column("path").to_numpy(zero_copy_only=False),
                 split=(table.column("split").to_numpy(zero_copy_only=False) if "split" in table.column_names
                        else np.full(len(table), None, dtype=object)))
    side.present[codes[first]] = True
    side.row[codes[first]] = first
    side.signature[codes[first]] = per_row[first]
    side.boxes[codes[first]] = counts[first]
    return side


def diff_versions(a: pa.Table, b: pa.Table, kind: str, a_id: str, b_id: str, a_classes: list[str] | None = None,
                  b_classes: list[str] | None = None, scientist: str | None = None) -> VersionDiff:
    """The diff from manifest ``a`` to manifest ``b`` (module docstring): two dataset manifests
    (``kind="dataset"``, with their ``a_classes``/``b_classes`` names, id = position) or two
    snapshot manifests of ``scientist`` (``kind="snapshot"``). Content hashes and class names are
    dictionary-encoded once for both versions; everything after is integer arrays."""
    hashes = pa.concat_arrays([a.column("sha256").combine_chunks(), b.column("sha256").combine_chunks()])
    encoded = hashes.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    size = len(encoded.dictionary)
    flats = [pc.list_flatten(t.column("boxes").combine_chunks()).field("class_name") for t in (a, b)]
    names = pa.concat_arrays(flats).dictionary_encode()
    class_names = names.dictionary.to_pylist()
    class_codes = names.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    hashes_of = _name_hashes(class_names)
    left = _side(a, codes[: len(a)], size, class_codes[: len(flats[0])], hashes_of, scientist)
    right = _side(b, codes[len(a):], size, class_codes[len(flats[0]):], hashes_of, scientist)
    both = left.present & right.present
    changed = both & ((left.signature != right.signature) | (left.boxes != right.boxes))
    result = VersionDiff(kind, a_id, b_id, int(left.present.sum()), int(right.present.sum()))
    for name in sorted(set(left.scientist[left.row[left.present]]) | set(right.scientist[right.row[right.present]])):
        result.scientists[str(name)] = {"added": 0, "removed": 0, "relabelled": 0}
    for what, mask, side in (("added", right.present & ~left.present, right), ("removed", left.present & ~right.present,
                                                                             left), ("relabelled", changed, right)):
        rows = side.row[mask]
        owners, counts = np.unique(side.scientist[rows].astype(str), return_counts=True)
        for owner, count in zip(owners.tolist(), counts.tolist(), strict=True):
            result.scientists[owner][what] = int(count)
        shown = heapq.nsmallest(5, zip(side.scientist[rows].tolist(), side.path[rows].tolist(), strict=True))
        result.examples[what] = [f"{s}/{p}" for s, p in shown]
    # boxes by class: per (image, class), the count in b minus the count in a
    width = max(1, len(class_names))
    keys = np.concatenate([left.box_image * width + left.box_class, right.box_image * width + right.box_class])
    signs = np.concatenate([-np.ones(len(left.box_image), np.int64), np.ones(len(right.box_image), np.int64)])
    unique, inverse = np.unique(keys, return_inverse=True)
    delta = np.bincount(inverse, weights=signs, minlength=len(unique)).astype(np.int64)
    klass = unique % width
    added = np.bincount(klass, weights=np.clip(delta, 0, None), minlength=width).astype(np.int64)
    removed = np.bincount(klass, weights=np.clip(-delta, 0, None), minlength=width).astype(np.int64)
    result.boxes = {name: {"added": int(added[i]), "removed": int(removed[i])}
                    for i, name in sorted(enumerate(class_names), key=lambda item: item[1])}
    if kind == "dataset":
        common = np.flatnonzero(both)
        moved = common[left.split[left.row[common]] != right.split[right.row[common]]]
        dictionary = encoded.dictionary
        result.split_changes = [{"sha256": dictionary[int(c)].as_py(), "scientist": right.scientist[right.row[c]],
                                 "path": right.path[right.row[c]], "before": left.split[left.row[c]],
                                 "after": right.split[right.row[c]]} for c in moved.tolist()]
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
    from imgassets.core.versioning.dataset_store import load_dataset
    from imgassets.core.versioning.refs import resolve_dataset_id

    a, b = (load_dataset(store, resolve_dataset_id(store, ref)) for ref in (a_ref, b_ref))
    return diff_versions(a.table, b.table, "dataset", a.dataset_id, b.dataset_id, a.class_names, b.class_names)


def diff_snapshots(store, scientist: str, a_ref: str, b_ref: str) -> VersionDiff:
    """:func:`diff_versions` of two stored snapshots of ``scientist`` (ids, ``latest`` or
    ``latest~N``), each checked against its id."""
    from imgassets.core.store.keys import snapshot_manifest_key
    from imgassets.core.versioning.refs import resolve_snapshot_id
    from imgassets.core.versioning.snapshot import load_snapshot_table

    ids = [resolve_snapshot_id(store, scientist, ref) for ref in (a_ref, b_ref)]
    a, b = (load_snapshot_table(store, snapshot_manifest_key(scientist, i)) for i in ids)
    return diff_versions(a, b, "snapshot", f"{scientist}/{ids[0]}", f"{scientist}/{ids[1]}", scientist=scientist)
