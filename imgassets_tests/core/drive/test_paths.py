"""Stored paths: every file name, UTF-8 or not, gets one lossless UTF-8 form that names it alone."""

from __future__ import annotations

import os
import random

import pyarrow as pa
import pytest

from imgassets.core.drive.paths import native_path, source_path, stored_path
from imgassets.core.drive.walk import walk_files


def _names(count: int, seed: int) -> list[bytes]:
    """Random POSIX names (no NUL, no slash), biased towards the hard cases: Latin-1 bytes, valid
    multi-byte UTF-8, lone continuation bytes, literal backslashes and ``\\x`` sequences."""
    rng = random.Random(seed)
    pieces = [b"a", b"Z", b".jpg", b" ", b"\\", b"\\x", b"\\xef", b"\\x5c", b"x", b"e", b"f", b"5c",
              "é".encode(), "日本".encode(), b"\xef", b"\xff", b"\xe9", b"\x80", b"\xc3", b"\xa9", b"\xed\xa0\x80"]
    names = {b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))) for _ in range(count)}
    return sorted(names)


def test_every_name_round_trips_and_no_two_names_share_a_stored_form():
    names = _names(5000, seed=28)
    stored = [stored_path(os.fsdecode(name)) for name in names]
    assert pa.array(stored, pa.string())  # UTF-8: what Parquet, JSON and Postgres can hold
    assert len(set(stored)) == len(names)
    assert [os.fsencode(native_path(s)) for s in stored] == names


@pytest.mark.parametrize("name", ["images/a.jpg", "street survey/shot 001.JPG", "café/naïve.png", "日本/写真.webp",
                                  "back\\slash.jpg", "x\\y.jpg"])
def test_a_utf8_name_without_backslash_x_is_stored_as_it_is(name):
    """Ordinary drives keep their manifests, and so their snapshot and dataset ids, unchanged."""
    assert stored_path(name) == name and native_path(name) == name


def test_latin1_and_literal_escapes_are_stored_readably_and_apart():
    latin1 = os.fsdecode(b"na\xefve.jpg")
    literal = "na\\xefve.jpg"  # a UTF-8 name that happens to spell the escape
    assert stored_path(latin1) == "na\\xefve.jpg"
    assert stored_path(literal) == "na\\x5cxefve.jpg"
    assert native_path(stored_path(literal)) == literal and native_path(stored_path(latin1)) == latin1


def test_the_walk_lists_stored_forms_that_open_the_files(tmp_path):
    root = os.fsencode(tmp_path)
    os.makedirs(root + b"/caf\xe9 photos")
    for name, body in ((b"/caf\xe9 photos/na\xefve.jpg", b"latin-1"), (b"/na\\xefve.jpg", b"literal"),
                       (b"/plain.jpg", b"plain")):
        with open(root + name, "wb") as handle:
            handle.write(body)
    listed = {stat.path: stat.size for stat in walk_files(tmp_path)}
    assert listed == {"caf\\xe9 photos/na\\xefve.jpg": 7, "na\\x5cxefve.jpg": 7, "plain.jpg": 5}
    bodies = {path: open(source_path(tmp_path, path), "rb").read() for path in listed}
    assert bodies == {"caf\\xe9 photos/na\\xefve.jpg": b"latin-1", "na\\x5cxefve.jpg": b"literal", "plain.jpg": b"plain"}
