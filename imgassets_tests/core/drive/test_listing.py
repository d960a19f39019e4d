"""The sensor's folder listing, stored per launched fingerprint and indexed by the run it launches."""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from imgassets.core.drive.listing import ListingError, decode_listing, encode_listing, load_listing
from imgassets.core.drive.walk import ListedFiles, scan_folder, walk_files
from imgassets.core.images.index import update_image_index
from imgassets.core.store.keys import listing_key
from imgassets.core.store.local import LocalObjectStore
from imgassets.defs.deployment import local_resources
from imgassets.defs.partitions import FINGERPRINT_TAG
from imgassets.defs.scientist.assets import image_index
from imgassets_tests.conftest import jpeg_bytes, sensor_tick


def _folder(root, name="ana", count=3):
    folder = root / name
    (folder / "images").mkdir(parents=True)
    for i in range(count):
        (folder / "images" / f"{i}.jpg").write_bytes(jpeg_bytes(color=(i, 9, 9)))
    return folder


def test_a_listing_round_trips_to_the_walk_and_hashes_to_its_fingerprint(tmp_path):
    folder = _folder(tmp_path)
    (folder / "images" / "two\nlines.jpg").write_bytes(b"x")  # a newline is legal in a POSIX name
    odd = os.fsencode(folder / "images") + b"/caf\xe9.txt"  # a Latin-1 name, not UTF-8
    with open(odd, "wb") as handle:
        handle.write(b"0 0.5 0.5 0.1 0.1\n")
    state = scan_folder(folder)
    files = decode_listing(encode_listing(state), state.fingerprint, "test")
    assert files.stats() == sorted(walk_files(folder), key=lambda s: s.path) == ListedFiles.of(walk_files(folder)).stats()
    assert {"images/caf\\xe9.txt", "images/two\nlines.jpg"} <= set(files.paths)  # stored form: lossless UTF-8
    assert files.sizes.dtype == files.mtimes_ns.dtype == files.inodes.dtype == np.int64


def test_a_listing_that_does_not_hash_to_its_name_is_refused(tmp_path):
    state = scan_folder(_folder(tmp_path))
    tampered = zlib.compress(state.listing.replace("images/0.jpg", "images/9.jpg").encode())
    with pytest.raises(ListingError, match=f"listings/ana/x: listing hashes to .*, not to its fingerprint {state.fingerprint}"):
        decode_listing(tampered, state.fingerprint, "listings/ana/x")
    with pytest.raises(ListingError, match="listings/ana/x: not a zlib-compressed listing"):
        decode_listing(b"plain text", state.fingerprint, "listings/ana/x")
    broken = "images/0.jpg\x0012\x00"
    fingerprint = hashlib.sha256(broken.encode()).hexdigest()[:16]  # hashes right, but a field is missing
    with pytest.raises(ListingError, match="listings/ana/y: not a sequence of 'path NUL size NUL mtime_ns NUL inode NUL' records"):
        decode_listing(zlib.compress(broken.encode()), fingerprint, "listings/ana/y")


@pytest.mark.parametrize(("text", "reason"), [
    ("images/0.jpg\x0012\x00x\x001\x00", "not a sequence of 'path NUL size NUL mtime_ns NUL inode NUL' records"),
    ("b.jpg\x001\x001\x001\x00a.jpg\x001\x001\x002\x00", "paths are not sorted, or one is listed twice"),
    ("a.jpg\x001\x001\x001\x00a.jpg\x001\x001\x002\x00", "paths are not sorted, or one is listed twice"),
])
def test_a_listing_that_hashes_right_but_is_malformed_is_refused(text, reason):
    fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
    with pytest.raises(ListingError, match=f"listings/ana/z: {re.escape(reason)}"):
        decode_listing(zlib.compress(text.encode()), fingerprint, "listings/ana/z")


def test_the_index_of_a_listing_holds_what_the_sensor_saw(tmp_path):
    folder = _folder(tmp_path)
    seen = scan_folder(folder)
    (folder / "images" / "late.jpg").write_bytes(jpeg_bytes(color=(1, 2, 3)))  # after the sensor looked
    listed = update_image_index(folder, None, workers=1, listing=decode_listing(encode_listing(seen), seen.fingerprint, "t"))
    assert listed.index["path"].tolist() == ["images/0.jpg", "images/1.jpg", "images/2.jpg"]
    walked = update_image_index(folder, listed.index, workers=1)
    assert (walked.reused, walked.indexed) == (3, 1)
    pd.testing.assert_frame_equal(walked.index[walked.index["path"] != "images/late.jpg"].reset_index(drop=True),
                                  listed.index)


def test_the_sensor_stores_the_listing_of_each_launched_run_and_the_run_indexes_and_deletes_it(tmp_path):
    root = tmp_path / "drive"
    folder = _folder(root)
    store = LocalObjectStore(f"{root}-home/objects")  # where conftest.sensor_tick's object store is
    with dg.instance_for_test() as instance:
        first = sensor_tick(instance, root, None)
        fingerprint = json.loads(first.cursor)["ana"][0]
        assert first.run_requests[0].tags[FINGERPRINT_TAG] == fingerprint
        assert list(store.list_keys("listings")) == [listing_key("ana", fingerprint)]
        assert load_listing(store, "ana", fingerprint).paths == sorted(s.path for s in walk_files(folder))
        assert load_listing(store, "ana", "0" * 16) is None
        assert sensor_tick(instance, root, first.cursor).run_requests == []
        assert len(list(store.list_keys("listings"))) == 1  # a no-change tick stores nothing

        (folder / "images" / "late.jpg").write_bytes(jpeg_bytes(color=(1, 2, 3)))  # after the tick
        resources = local_resources(home=f"{root}-home", shared_root=str(root))
        launched = dg.materialize([image_index], partition_key="ana", instance=instance, resources=resources,
                                  tags={FINGERPRINT_TAG: fingerprint})
        metadata = launched.asset_materializations_for_node("image_index")[0].metadata
        assert metadata["listed_by"].value == f"sensor listing {fingerprint}"
        assert "images/late.jpg" not in launched.output_for_node("image_index")["path"].tolist()
        assert list(store.list_keys("listings")) == []  # used once, then deleted: listings do not pile up

        by_hand = dg.materialize([image_index], partition_key="ana", instance=instance, resources=resources)
        assert by_hand.asset_materializations_for_node("image_index")[0].metadata["listed_by"].value == "walk of the folder"
        assert "images/late.jpg" in by_hand.output_for_node("image_index")["path"].tolist()


def test_a_failed_runs_listing_is_pruned_at_the_folders_next_change_and_its_run_walks(tmp_path):
    root = tmp_path / "drive"
    folder = _folder(root)
    store = LocalObjectStore(f"{root}-home/objects")
    with dg.instance_for_test() as instance:
        first = sensor_tick(instance, root, None)
        stale = json.loads(first.cursor)["ana"][0]  # its run failed: the listing was never used
        (folder / "images" / "late.jpg").write_bytes(jpeg_bytes(color=(1, 2, 3)))
        second = sensor_tick(instance, root, first.cursor)
        current = json.loads(second.cursor)["ana"][0]
        assert current != stale
        assert list(store.list_keys("listings")) == [listing_key("ana", current)]

        resources = local_resources(home=f"{root}-home", shared_root=str(root))
        retried = dg.materialize([image_index], partition_key="ana", instance=instance, resources=resources,
                                 tags={FINGERPRINT_TAG: stale})  # a queued run of the earlier state
        assert retried.asset_materializations_for_node("image_index")[0].metadata["listed_by"].value == "walk of the folder"
        assert "images/late.jpg" in retried.output_for_node("image_index")["path"].tolist()
