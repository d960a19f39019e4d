"""Hostile drive content: links out of the shared root, FIFOs, huge files, YAML bombs, folder names
no partition can hold. Each is refused with a reason naming the file; nothing outside the root is
read or uploaded; indexing ends and memory stays bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from imgassets.core.drive.source_files import LINK_OUTSIDE_ROOT, NOT_A_FILE, TOO_LARGE, SourceFileError, read_source
from imgassets.core.drive.walk import MAX_NAME_BYTES, scientist_folders
from imgassets.core.labels.table import MAX_LABEL_BYTES, build_label_table
from imgassets_tests.conftest import build_image_index, graph_on, jpeg_bytes


@pytest.fixture
def drive(tmp_path):
    """``tmp_path/root/ana`` with one real image, and a private image outside the root."""
    root = tmp_path / "root"
    (root / "ana" / "images").mkdir(parents=True)
    (root / "ana" / "images" / "own.jpg").write_bytes(jpeg_bytes(color=(10, 200, 10)))
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "secret.jpg").write_bytes(jpeg_bytes(color=(250, 250, 0)))
    (tmp_path / "private" / "sub").mkdir()
    (tmp_path / "private" / "sub" / "deep.jpg").write_bytes(jpeg_bytes(color=(0, 0, 250)))
    return root


def _rows(index):
    return {r.path: r for r in index.itertuples()}


def test_links_out_of_the_root_are_refused_and_links_inside_it_are_read(drive, tmp_path):
    images = drive / "ana" / "images"
    secret = tmp_path / "private" / "secret.jpg"
    os.symlink(secret, images / "absolute.jpg")
    os.symlink("../../../private/secret.jpg", images / "relative.jpg")
    os.symlink("absolute.jpg", images / "chain.jpg")  # a link to a link that leaves the root
    os.symlink(tmp_path / "private" / "sub", images / "outside_folder")
    (drive / "ben").mkdir()
    (drive / "ben" / "shared.jpg").write_bytes(jpeg_bytes(color=(1, 2, 3)))
    os.symlink("../../ben/shared.jpg", images / "inside.jpg")  # another scientist's file: inside the root
    os.link(images / "own.jpg", images / "hardlink.jpg")
    rows = _rows(build_image_index(drive / "ana"))
    for name in ("absolute.jpg", "relative.jpg", "chain.jpg", "outside_folder"):
        row = rows[f"images/{name}"]
        assert row.status == LINK_OUTSIDE_ROOT, name
        assert "outside the shared drive root" in row.reason and pd.isna(row.sha256)
    assert "images/outside_folder/deep.jpg" not in rows  # a linked folder is never walked
    assert rows["images/inside.jpg"].status == "ok" and rows["images/hardlink.jpg"].status == "ok"
    assert rows["images/hardlink.jpg"].sha256 == rows["images/own.jpg"].sha256


def test_a_folder_on_the_path_replaced_by_a_link_is_refused_not_followed(drive, tmp_path):
    """The walk saw ``images/`` as a folder; it is then renamed and a link to an outside folder put in
    its place (or one of the scientist's own folders is): every read is refused, naming the folder."""
    (tmp_path / "private" / "own.jpg").write_bytes(jpeg_bytes(color=(250, 0, 250)))
    os.rename(drive / "ana" / "images", drive / "ana" / "images_real")
    os.symlink(tmp_path / "private", drive / "ana" / "images")
    with pytest.raises(SourceFileError) as refused:
        read_source(drive / "ana", "images/own.jpg")
    assert refused.value.code == LINK_OUTSIDE_ROOT and "'images' on its path is a symbolic link" in refused.value.reason
    os.symlink(drive / "ana", drive / "carl")  # a scientist folder that is a link, inside the root
    with pytest.raises(SourceFileError, match="'carl' on its path is a symbolic link"):
        read_source(drive / "carl", "images_real/own.jpg")
    with pytest.raises(SourceFileError, match="outside the shared drive root"):
        read_source(drive / "ana", "../../private/own.jpg")


def test_a_sub_folder_swapped_for_a_link_between_its_listing_and_its_scan_is_not_walked(drive, tmp_path):
    """The walk lists ``ana/`` (``images`` is a folder), then ``images`` becomes a link to an outside
    folder before the walk scans it: its files are not listed."""
    from unittest import mock

    from imgassets.core.drive import walk

    real_scandir, scans = os.scandir, []

    def scandir(target):
        scans.append(target)
        if len(scans) > 1:
            return real_scandir(target)
        entries = _Listed(real_scandir(target))  # ana/ listed: ``images`` is a folder
        os.rename(drive / "ana" / "images", drive / "ana" / "images_parked")
        os.symlink(tmp_path / "private", drive / "ana" / "images")
        return entries

    with mock.patch.object(walk.os, "scandir", scandir):
        listed = [f.path for f in walk.walk_files(drive / "ana")]
    assert not any(path.startswith("images/") for path in listed), listed


class _Listed(list):
    """A folder's entries, listed already, usable where ``os.scandir``'s context manager is."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.slow  # processes, servers or a timed race: the full suite runs it
def test_a_fifo_a_device_link_and_a_huge_file_never_hang_or_fill_memory(drive, tmp_path):
    folder = drive / "ana"
    os.mkfifo(folder / "notes.md")
    os.mkfifo(folder / "images" / "pipe.jpg")
    os.symlink("/dev/zero", folder / "zero.txt")
    with open(folder / "huge.bin", "wb") as handle:  # 2 GiB, sparse: costs no disk
        handle.truncate(2 * 2**30)
    probe = textwrap.dedent(f"""
        import resource, sys
        from imgassets.core.images.index import update_image_index
        index = update_image_index({str(folder)!r}, workers=1).index
        for row in index.itertuples():
            print(row.path, row.status, row.sha256, sep="|")
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
    """)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[0]: line.split("|")[1:] for line in proc.stdout.splitlines()}
    assert rows["notes.md"][0] == rows["images/pipe.jpg"][0] == NOT_A_FILE
    assert rows["zero.txt"][0] == LINK_OUTSIDE_ROOT
    assert rows["huge.bin"][0] == "ok" and len(rows["huge.bin"][1]) == 64  # hashed in blocks
    peak_kib = int(proc.stderr.strip().splitlines()[-1])
    assert peak_kib < 1024 * 1024, f"peak RSS {peak_kib} KiB while indexing a 2 GiB file"


def test_a_unix_socket_is_not_a_regular_file(drive):
    """A socket cannot even be opened (ENXIO): refused as what it is, as FIFOs and devices are."""
    import socket

    from imgassets.core.images.index import update_image_index

    folder = drive / "ana"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "images" / "agent.jpg"))
        index = update_image_index(folder, workers=1).index
    [row] = index[index["path"] == "images/agent.jpg"].itertuples()
    assert row.status == NOT_A_FILE and row.reason == "a socket, not a regular file: not read"


def test_read_source_refuses_what_it_must(tmp_path):
    (tmp_path / "ana").mkdir()
    (tmp_path / "ana" / "big.txt").write_bytes(b"x" * 101)
    with pytest.raises(SourceFileError) as too_large:
        read_source(tmp_path / "ana", "big.txt", max_bytes=100)
    assert too_large.value.code == TOO_LARGE and "101 bytes" in too_large.value.reason
    assert read_source(tmp_path / "ana", "big.txt", max_bytes=101) == b"x" * 101


def test_a_file_that_grows_after_its_fstat_is_read_whole_or_refused(tmp_path, monkeypatch):
    import os

    from imgassets.core.drive import source_files

    (tmp_path / "ana").mkdir()
    (tmp_path / "ana" / "growing.jpg").write_bytes(b"y" * 101)
    real_fstat = os.fstat

    def fstat_before_growth(descriptor):  # the size the file had when it was opened
        info = real_fstat(descriptor)
        return os.stat_result((info.st_mode, *info[1:6], 50, *info[7:]))

    monkeypatch.setattr(source_files.os, "fstat", fstat_before_growth)
    assert read_source(tmp_path / "ana", "growing.jpg", max_bytes=200) == b"y" * 101  # not cut at 51 bytes
    with pytest.raises(SourceFileError) as grown:
        read_source(tmp_path / "ana", "growing.jpg", max_bytes=100)
    assert grown.value.code == TOO_LARGE


def test_oversized_labels_and_yaml_bombs_are_findings(drive):
    folder = drive / "ana"
    (folder / "labels").mkdir()
    line = b"0 0.5 0.5 0.1 0.1\n"
    (folder / "labels" / "own.txt").write_bytes(line * (MAX_LABEL_BYTES["yolo"] // len(line) + 1))
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)) + "names: *i\n"
    (folder / "data.yaml").write_text(bomb)
    index = build_image_index(folder)
    table = build_label_table(folder, index)
    errors = dict(zip(table["label_file"], table["parse_error"], strict=True))
    assert "above the limit" in errors["labels/own.txt"]
    assert "YAML aliases are not accepted" in errors["data.yaml"]


def test_folders_no_partition_can_hold_are_skipped_with_reasons(tmp_path):
    root = tmp_path / "root"
    (root / "ana").mkdir(parents=True)
    (tmp_path / "private").mkdir()
    os.symlink(tmp_path / "private", root / "mallory")
    os.mkdir(os.fsencode(root) + b"/caf\xe9")  # Latin-1, not UTF-8
    long_name = "n" * (MAX_NAME_BYTES + 20)
    (root / long_name).mkdir()
    names, skipped = scientist_folders(root)
    assert names == ["ana"]
    reasons = dict(skipped)
    assert reasons["mallory"] == "a symbolic link, not a folder: not followed"
    assert "not valid UTF-8" in reasons["caf\\xe9"]
    assert "above the limit" in reasons[long_name]


def test_a_link_out_of_the_root_is_never_uploaded(drive, tmp_path):
    os.symlink(tmp_path / "private" / "secret.jpg", drive / "ana" / "images" / "stolen.jpg")
    home = tmp_path / "home"
    with graph_on(tmp_path, drive, home, ["ana"]) as (defs, instance):
        result = defs.resolve_job_def("scientist_job").execute_in_process(partition_key="ana", instance=instance,
                                                                          raise_on_error=False)
    assert result.success
    decode = next(e for e in result.get_asset_check_evaluations() if e.check_name == "images_decode")
    findings = decode.metadata["findings"].value
    assert [f["file"] for f in findings] == ["images/stolen.jpg"] and LINK_OUTSIDE_ROOT in findings[0]["reason"]
    from imgassets.core.store.hashing import sha256_bytes

    secret_sha = sha256_bytes((tmp_path / "private" / "secret.jpg").read_bytes())
    stored = {p.name for p in (home / "objects").rglob("*") if p.is_file()}
    assert secret_sha not in stored and sha256_bytes((drive / "ana" / "images" / "own.jpg").read_bytes()) in stored
