"""Every box knows where it came from (imgassets.core.labeling.provenance): labels that arrive for a
pre-labelled image, compared with what was handed out, through the label table, the snapshot
manifest and the dataset's flywheel counts."""

from __future__ import annotations

import numpy as np
import pytest

from imgassets.core.labeling.provenance import (
    ACCEPTED,
    ADDED,
    CORRECTED,
    classify,
    load_prelabels,
    provenance_summary,
    record_prelabels,
    rubber_stamp_findings,
    with_provenance,
)
from imgassets.core.labeling.queue import Candidate, rank_queue
from imgassets.core.labeling.scoring import ImageScore
from imgassets.core.labels.table import build_label_table
from imgassets.core.store.hashing import sha256_file
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.manifest import manifest_id
from imgassets.core.versioning.snapshot import snapshot_table
from imgassets_tests.conftest import build_image_index, noise_image


def test_each_box_is_accepted_corrected_or_added_and_each_unmatched_proposal_rejected():
    proposed = [("cat", (0.3, 0.3, 0.2, 0.2)), ("dog", (0.7, 0.7, 0.2, 0.2)), ("cat", (0.1, 0.9, 0.1, 0.1))]
    labelled = [("cat", (0.3, 0.3, 0.2, 0.2)),  # unchanged
                ("dog", (0.72, 0.7, 0.2, 0.2)),  # moved a little
                ("bird", (0.5, 0.1, 0.1, 0.1))]  # drawn by hand
    kinds, rejected = classify(labelled, proposed)
    assert kinds == [ACCEPTED, CORRECTED, ADDED] and rejected == 1
    assert classify([("dog", (0.3, 0.3, 0.2, 0.2))], proposed[:1]) == ([CORRECTED], 0)  # reclassed
    assert classify([], proposed) == ([], 3)
    assert classify(labelled, []) == ([ADDED] * 3, 0)


def _image(folder, name: str, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    noise_image((100, 80), seed).save(folder / name)


@pytest.fixture
def pre_labelled(tmp_path):
    """A scientist whose three images were handed out with pre-annotations (recorded in a store), two
    of them labelled since: one accepted as proposed, one with a box moved and one deleted."""
    folder = tmp_path / "nina"
    for i in range(3):
        _image(folder / "captures", f"c{i}.png", i)
    (folder / "captures" / "classes.txt").write_text("cat\ndog\n")
    shas = [sha256_file(str(folder / "captures" / f"c{i}.png")) for i in range(3)]
    boxes = {0: [(0, 0.3, 0.3, 0.2, 0.2, 0.9)], 1: [(0, 0.3, 0.3, 0.2, 0.2, 0.8), (1, 0.7, 0.7, 0.2, 0.2, 0.6)],
             2: [(1, 0.5, 0.5, 0.3, 0.3, 0.7)]}
    scores = {shas[i]: ImageScore(shas[i], 0.5, 0.9, [dict(zip(("class_id", "x_center", "y_center", "width", "height",
                                                                "confidence"), b, strict=True)) for b in boxes[i]],
                                  np.ones(2, np.float32) / np.sqrt(2)) for i in range(3)}
    queue = rank_queue("nina", [Candidate(shas[i], f"captures/c{i}.png", 100, 80, None) for i in range(3)], scores,
                       {}, {}, class_names=["cat", "dog"], model_id="champ-7")
    store = LocalObjectStore(tmp_path / "objects")
    assert record_prelabels(store, queue) == 3
    (folder / "captures" / "c0.txt").write_text("0 0.300000 0.300000 0.200000 0.200000\n")
    (folder / "captures" / "c1.txt").write_text("0 0.330000 0.300000 0.200000 0.200000\n")  # moved; the dog deleted
    return folder, store


def test_labels_of_pre_labelled_images_carry_their_provenance_into_the_snapshot(pre_labelled):
    folder, store = pre_labelled
    index = build_image_index(folder)
    table = with_provenance(build_label_table(folder, index), load_prelabels(store, "nina"))
    by_image = dict(zip(table["image_path"], table["provenance"], strict=True))
    assert by_image == {"captures/c0.png": ACCEPTED, "captures/c1.png": CORRECTED}
    summary = provenance_summary(table)["champ-7"]
    assert (summary["images"], summary[ACCEPTED], summary[CORRECTED], summary["rejected"], summary[ADDED]) == (2, 1, 1, 1, 0)
    assert summary["proposed"] == 3 and summary["acceptance_rate"] == pytest.approx(1 / 3, abs=1e-4) and summary["boxes_saved"] == 1
    assert summary["by_class"] == {"cat": {"proposed": 2, "accepted": 1, "acceptance_rate": 0.5}}

    manifest = snapshot_table(index, table)
    rows = {r["path"]: r for r in manifest.to_pylist()}
    assert rows["captures/c0.png"]["provenance"] == {"model_id": "champ-7", "rejected": 0, "boxes": [ACCEPTED]}
    assert rows["captures/c1.png"]["provenance"] == {"model_id": "champ-7", "rejected": 1, "boxes": [CORRECTED]}
    assert rows["captures/c2.png"]["provenance"] is None and rows["captures/c2.png"]["boxes"] == []

    dataset = merge_snapshots({"nina": ("s1", manifest), "other": ("s2", _other(folder.parent))})
    assert dataset.flywheel["prelabelled_images_added"] == 2
    assert (dataset.flywheel["accepted"], dataset.flywheel["corrected"], dataset.flywheel["rejected"]) == (1, 1, 1)
    assert "provenance" not in dataset.table.column_names


def _other(base):
    folder = base / "other"
    for i in range(4):
        _image(folder, f"o{i}.png", 10 + i)
        (folder / f"o{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (folder / "classes.txt").write_text("cat\n")
    index = build_image_index(folder)
    return snapshot_table(index, build_label_table(folder, index))


def test_a_snapshot_without_pre_labelled_images_has_no_provenance_column_and_the_same_id(pre_labelled):
    folder, store = pre_labelled
    index = build_image_index(folder)
    plain = build_label_table(folder, index)
    with_none = with_provenance(build_label_table(folder, index), {})
    assert "provenance" not in snapshot_table(index, with_none).column_names
    assert manifest_id(snapshot_table(index, with_none), {}) == manifest_id(snapshot_table(index, plain), {})


def test_pre_annotations_accepted_blindly_on_images_the_review_finds_wrong_are_flagged(pre_labelled, monkeypatch):
    folder, store = pre_labelled
    index = build_image_index(folder)
    table = with_provenance(build_label_table(folder, index), load_prelabels(store, "nina"))
    review = [{"image": "captures/c1.png"}]
    assert rubber_stamp_findings("nina", table, review) == []  # 1 of 3 accepted: looked at
    from imgassets.core.labeling import provenance

    monkeypatch.setattr(provenance, "RUBBER_STAMP_MIN_BOXES", 1)
    (folder / "captures" / "c1.txt").write_text("0 0.300000 0.300000 0.200000 0.200000\n1 0.700000 0.700000 0.200000 0.200000\n")
    index = build_image_index(folder)
    table = with_provenance(build_label_table(folder, index), load_prelabels(store, "nina"))
    assert provenance_summary(table)["champ-7"]["acceptance_rate"] == 1.0
    found = rubber_stamp_findings("nina", table, review)
    assert len(found) == 1 and "3 of 3 pre-annotations of champion champ-7 accepted unchanged" in found[0].reason
    assert rubber_stamp_findings("nina", table, []) == []  # accepted, and the review agrees: fine
