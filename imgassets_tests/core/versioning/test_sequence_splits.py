"""Sequence-aware split groups: the frames of one burst (same camera, EXIF capture times within the
burst gap) or one recording-session folder go to one split whole, the stability rules still hold,
and the leakage check names a frame pair split apart."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image

from imgassets.core.labels.table import build_label_table
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.dataset_store import load_dataset, store_dataset
from imgassets.core.versioning.leakage import split_leaks
from imgassets.core.versioning.sequences import (
    SequenceRules,
    capture_table,
    load_captures,
    sequence_links,
    store_capture,
)
from imgassets.core.versioning.snapshot import snapshot_table
from imgassets_tests.conftest import build_image_index

T0 = "2024:05:01 10:00:{:02d}"


def _photo(seed: int, when: str | None = None, camera: tuple[str, str] | None = ("Canon", "EOS R5")) -> bytes:
    """A distinct 64x48 JPEG (no two are near-duplicates) with EXIF capture time and camera."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)).resize((64, 48), Image.BILINEAR)
    exif = Image.Exif()
    if camera:
        exif[271], exif[272] = camera
    if when:
        exif.get_ifd(0x8769)[36867] = when
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def _snapshot(root: Path, files: dict[str, bytes]):
    folder = root / "ana"
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
        (folder / path).with_suffix(".txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (folder / "classes.txt").write_text("thing\n")
    index = build_image_index(folder)
    return index, snapshot_table(index, build_label_table(folder, index))


def _split_of(dataset) -> dict[str, str]:
    return dict(zip(dataset.table.column("path").to_pylist(), dataset.table.column("split").to_pylist(), strict=True))


BURST = {f"burst/f{i}.jpg": _photo(i, T0.format(i)) for i in range(8)}  # 1 s apart: one burst
OTHERS = {f"single/s{i}.jpg": _photo(100 + i, T0.format(0).replace("10:00", f"1{i % 10}:3{i // 10}")) for i in range(40)}


def test_a_burst_goes_to_one_split_and_without_the_rule_it_scatters(tmp_path):
    index, manifest = _snapshot(tmp_path, {**BURST, **OTHERS})
    assert index["capture_time"].notna().sum() == 48 and set(index["camera"].dropna()) == {"Canon EOS R5"}
    captures = capture_table(index, manifest.column("sha256").to_pylist()).to_pandas().assign(scientist="ana")
    grouped = merge_snapshots({"ana": ("s1", manifest)}, val_fraction=0.3, benchmark_fraction=0.0, captures=captures)
    splits = _split_of(grouped)
    assert len({splits[p] for p in BURST}) == 1
    assert len(grouped.sequence_links) == 7 and all("one burst of Canon EOS R5 (1.0 s apart)" == r
                                                    for _, _, r in grouped.sequence_links)
    assert split_leaks(grouped.table, grouped.near_duplicates, frame_links=grouped.sequence_links) == []
    scattered = merge_snapshots({"ana": ("s1", manifest)}, val_fraction=0.3, benchmark_fraction=0.0, captures=captures,
                                sequence_rules=SequenceRules(burst_seconds=0))
    apart = _split_of(scattered)
    assert len({apart[p] for p in BURST}) == 2  # the leak the rule closes
    leaks = split_leaks(scattered.table, scattered.near_duplicates, frame_links=grouped.sequence_links)
    assert leaks and all("are frames of burst of Canon EOS R5" in leak for leak in leaks)


def test_frames_further_apart_or_of_another_camera_are_not_one_burst():
    shas = np.array(["a", "b", "c", "d"], dtype=object)
    captures = pd.DataFrame({"scientist": ["ana"] * 4, "sha256": list(shas), "capture_time": [0.0, 1.5, 10.0, 10.5],
                             "camera": ["Canon EOS R5", "Canon EOS R5", "Canon EOS R5", "Nikon Z6"]})
    table = pa.table({"scientist": ["ana"] * 4, "path": ["1.jpg", "2.jpg", "3.jpg", "4.jpg"], "sha256": list(shas)})
    links = sequence_links(table, captures, SequenceRules(burst_seconds=2))
    assert [(a, b) for a, b, _ in links] == [("a", "b")]


def test_session_folders_keep_a_recording_together_and_the_stability_rule_holds(tmp_path):
    frames = {f"recordings/run_{r}/frame_{i:03d}.jpg": _photo(1000 + 10 * r + i, camera=None) for r in range(12) for i in range(5)}
    _, manifest = _snapshot(tmp_path, frames)
    rules = SequenceRules(burst_seconds=2, session_folders="recordings/*")
    first = merge_snapshots({"ana": ("s1", manifest)}, val_fraction=0.5, benchmark_fraction=0.0, sequence_rules=rules)
    splits = _split_of(first)
    for r in range(12):
        assert len({splits[p] for p in frames if p.startswith(f"recordings/run_{r}/")}) == 1
    assert set(splits.values()) == {"train", "val"}
    assert len({p.rsplit("/", 1)[0] for p, s in splits.items() if s == "train"}) >= 2  # one can move, one stays
    # a frame that the previous version held in val pulls its whole session into val, never the reverse
    val_frame = next(p for p, s in splits.items() if s == "val")
    train_session = next(p.rsplit("/", 1)[0] for p, s in splits.items() if s == "train")
    sha_of = dict(zip(first.table.column("path").to_pylist(), first.table.column("sha256").to_pylist(), strict=True))
    previous = {sha_of[p]: s for p, s in splits.items()}
    previous[sha_of[f"{train_session}/frame_000.jpg"]] = "val"
    second = merge_snapshots({"ana": ("s1", manifest)}, val_fraction=0.5, benchmark_fraction=0.0, sequence_rules=rules,
                             previous_splits=previous)
    after = _split_of(second)
    assert after[val_frame] == "val" and {after[p] for p in frames if p.startswith(train_session + "/")} == {"val"}


def test_capture_facts_are_stored_beside_the_snapshot_and_links_with_the_dataset(tmp_path):
    index, manifest = _snapshot(tmp_path, {**BURST, **OTHERS})
    store = LocalObjectStore(tmp_path / "store")
    key = store_capture(store, "ana", "s1", capture_table(index, manifest.column("sha256").to_pylist()))
    assert key == "snapshots/ana/s1.capture.parquet"
    captures = load_captures(store, {"ana": "s1", "ben": "missing"})
    assert len(captures) == 48 and set(captures["scientist"]) == {"ana"}
    dataset = merge_snapshots({"ana": ("s1", manifest)}, val_fraction=0.3, benchmark_fraction=0.0, captures=captures)
    store_dataset(store, dataset)
    loaded = load_dataset(store, dataset.dataset_id)
    assert sorted(loaded.sequence_links) == sorted(dataset.sequence_links)
    assert loaded.sequence_rules == {"burst_seconds": 2.0, "session_folders": None}
    assert store_capture(store, "ben", "s2", pa.table({"sha256": pa.array([], pa.string()),
                                                       "capture_time": pa.array([], pa.float64()),
                                                       "camera": pa.array([], pa.string())})) is None


def test_the_sequence_settings_are_read_and_a_bad_one_is_named(monkeypatch):
    import pytest

    from imgassets import settings

    monkeypatch.setenv("IMGASSETS_BURST_SECONDS", "0.5")
    monkeypatch.setenv("IMGASSETS_SESSION_FOLDERS", "recordings/*")
    assert settings.sequence_rules() == SequenceRules(0.5, "recordings/*")
    monkeypatch.setenv("IMGASSETS_BURST_SECONDS", "-1")
    with pytest.raises(ValueError, match="IMGASSETS_BURST_SECONDS"):
        settings.sequence_rules()
    monkeypatch.setenv("IMGASSETS_BURST_SECONDS", "soon")
    with pytest.raises(ValueError, match="IMGASSETS_BURST_SECONDS must be a number"):
        settings.sequence_rules()


def test_capture_facts_beside_a_snapshot_are_not_taken_for_a_manifest(tmp_path):
    from imgassets.core.store.keys import snapshot_of_key
    from imgassets.core.training.models import lineage, resolve_image
    from imgassets.core.versioning.lineage_index import manifest_keys, update_lineage_index
    from imgassets.core.versioning.snapshot import commit_snapshot

    index, manifest = _snapshot(tmp_path, {**BURST, **OTHERS})
    store = LocalObjectStore(tmp_path / "store")
    result = commit_snapshot(store, "ana", tmp_path / "ana", manifest)
    store_capture(store, "ana", result.snapshot_id, capture_table(index, manifest.column("sha256").to_pylist()))
    assert snapshot_of_key(f"snapshots/ana/{result.snapshot_id}.parquet") == ("ana", result.snapshot_id)
    assert snapshot_of_key(f"snapshots/ana/{result.snapshot_id}.capture.parquet") is None
    assert manifest_keys(store) == [f"snapshots/ana/{result.snapshot_id}.parquet"]
    update_lineage_index(store)
    [sha] = resolve_image(store, "ana/burst/f0.jpg")  # a path is looked up in the manifests only
    assert [s["snapshot_id"] for s in lineage(store, sha).snapshots] == [result.snapshot_id]
