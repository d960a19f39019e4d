"""Which YOLO label file annotates which image, for a whole folder at once, in Arrow.

The rule is :func:`imgassets.core.drive.layout.pair_labels` (Ultralytics ``img2label_paths``: the
``labels/`` sibling of the last ``images`` folder, then beside the image; an image claims the
first of those label files that exists and is not claimed by an image earlier by path). That
function walks every image in Python; this module gives the same pairs with Arrow compute
kernels, so that a run that changed 1% of a folder does not pay a Python loop over all of it.

Why it is exact: a candidate label is named ``<prefix><stem>.txt`` from the image's stem, so two
images can only compete for a label when they have the same stem. When every image's first
existing candidate is claimed by that image alone, each image keeps it (the greedy rule gives
the same); the images whose first choices collide, and every image and label of their stems,
are paired again by :func:`~imgassets.core.drive.layout.pair_labels` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from imgassets.core.drive import layout


def split_last(strings: pa.Array, separator: str) -> tuple[pa.Array, pa.Array]:
    """(``separator`` + what comes before the last ``separator``, what comes after) of each string,
    by a reverse split of the string with ``separator`` put in front (so every string has one)."""
    parts = pc.split_pattern(pc.binary_join_element_wise(separator, strings, ""), separator, max_splits=1,
                             reverse=True)
    return pc.list_element(parts, 0), pc.list_element(parts, 1)


def _parent_and_stem(paths: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(parent folder with a trailing ``/``, ``""`` at the top; stem) of each relative path, by
    the rules of :func:`imgassets.core.drive.layout._split` and ``_stem`` (the last dot, when it is
    neither the first nor the last character of the name). String kernels, no regular expression
    (a regex extraction cost three times as much)."""
    head, name = split_last(paths, "/")
    parent = pc.if_else(pc.equal(head, ""), "", pc.binary_join_element_wise(pc.utf8_slice_codeunits(head, 1), "/", ""))
    before, after = split_last(name, ".")
    has_stem = pc.and_(pc.greater(pc.utf8_length(before), 1), pc.greater(pc.utf8_length(after), 0))
    return parent, pc.if_else(has_stem, pc.utf8_slice_codeunits(before, 1), name)


def _sibling_prefixes(parents: pa.Array) -> pa.Array:
    """For each parent folder (``a/images/b/``), the ``labels/`` sibling of its last ``images``
    component (``a/labels/b/``), null when it has none: worked out once per distinct folder."""
    encoded = pc.dictionary_encode(parents)
    sibling = []
    for parent in encoded.dictionary.to_pylist():
        prefixes = layout.label_dirs(parent.rstrip("/"))
        sibling.append(prefixes[0] if len(prefixes) > 1 else None)
    return pc.take(pa.array(sibling, pa.string()), encoded.indices)


def label_images(image_paths: Sequence[str] | pa.Array, label_paths: Sequence[str] | pa.Array) -> pa.Array:
    """For each of ``label_paths``, the image it annotates (:func:`imgassets.core.drive.layout.pair_labels`),
    null for an orphan; a string array aligned with ``label_paths``. Paths are POSIX, relative to
    the scientist's folder (any character but NUL, a line break included: the kernels split on
    literal separators)."""
    images = pa.array(image_paths, pa.string())
    labels = pa.array(label_paths, pa.string())
    if not len(images) or not len(labels):
        return pa.nulls(len(labels), pa.string())
    parent, stem = _parent_and_stem(images)
    sibling = pc.binary_join_element_wise(_sibling_prefixes(parent), stem, ".txt", "")  # null: no sibling
    beside = pc.binary_join_element_wise(parent, stem, ".txt", "")
    claim = pc.if_else(pc.fill_null(pc.is_in(sibling, value_set=labels), False), sibling,
                       pc.if_else(pc.is_in(beside, value_set=labels), beside, pa.scalar(None, pa.string())))
    counts = pc.value_counts(pc.drop_null(claim))
    if len(counts) and pc.max(counts.field("counts")).as_py() > 1:  # first choices collide: those stems again
        taken_twice = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        stems = pc.unique(pc.filter(stem, pc.fill_null(pc.is_in(claim, value_set=taken_twice), False)))
        contested = pc.is_in(stem, value_set=stems)
        redo = layout.pair_labels(pc.filter(images, contested).to_pylist(), labels.to_pylist())
        claim = pc.if_else(contested, pa.nulls(len(images), pa.string()), claim)
        images, claim = (pa.concat_arrays([images, pa.array(list(redo.values()), pa.string())]),
                         pa.concat_arrays([claim, pa.array(list(redo), pa.string())]))
    at = pc.index_in(labels, value_set=claim)
    return pc.take(images, at)

