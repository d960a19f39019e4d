"""The class registry: aliases, merges, holes, append-only ids; and stable ids without one."""

from __future__ import annotations

import pytest

from imgassets.core.labels.class_registry import (
    ClassRegistryError,
    check_append_only,
    hole_name,
    parse_registry,
    stable_class_names,
)
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.diff import diff_versions
from imgassets_tests.core.versioning.versions import box, build, commit

REGISTRY = b"""
classes:
  0: car
  1: {name: person, aliases: [pedestrian, people]}
  2: {name: truck, removed: true}
  3: {name: lorry, merged_into: car}
  4: bus
aliases: {automobile: car}
scientists:
  ana: {kitty: bus}
"""


def test_names_map_through_scientist_aliases_global_aliases_and_merges():
    registry = parse_registry(REGISTRY, "registry.yaml")
    assert registry.class_names() == ["car", "person", hole_name(2, "truck"), hole_name(3, "lorry"), "bus"]
    assert registry.canonical("ana", "kitty") == "bus" and registry.canonical("ben", "kitty") is None
    assert registry.canonical("ben", "automobile") == "car" and registry.canonical("ben", "lorry") == "car"
    assert registry.canonical("ben", "pedestrian") == "person"
    unknown = registry.unknown({"ben": {"Cars", "truck", "person", "tram"}})
    assert unknown == [("ben", "Cars", "class 'Cars' is not in the class registry (did you mean 'car'?)"),
                       ("ben", "tram", "class 'tram' is not in the class registry: add it, or an alias"),
                       ("ben", "truck", "class 'truck' was removed from the class registry")]


@pytest.mark.parametrize(("text", "fault"), [
    (b"classes: [car, bus]", "no 'classes' map"),
    (b"classes: {-1: car}", "not a non-negative integer"),
    (b"classes: {0: car, 1: car}", "has two ids"),
    (b"classes: {0: car}\naliases: {auto: bike}", "'auto' points at 'bike', which is not a class"),
    (b"classes: {0: car, 1: bus}\naliases: {bus: car}", "'bus' is itself a class name"),
    (b"classes: {0: &a car, 1: *a}", "not valid YAML"),
])
def test_a_broken_registry_is_refused_naming_the_file_and_the_fault(text, fault):
    with pytest.raises(ClassRegistryError, match="registry.yaml") as error:
        parse_registry(text, "registry.yaml")
    assert fault in str(error.value)


def test_ids_are_append_only_against_the_previous_dataset():
    registry = parse_registry(REGISTRY, "r.yaml")
    check_append_only(registry, ["car", "person", "truck"], "d1")  # truck's id is a hole now: allowed
    renamed = parse_registry(b"classes: {0: {name: automobile, aliases: [car]}, 1: person}", "r.yaml")
    check_append_only(renamed, ["car", "person"], "d1")  # a rename keeps the id
    with pytest.raises(ClassRegistryError, match="gives id 0 to 'person', but dataset d1 has 'car' there"):
        check_append_only(parse_registry(b"classes: {0: person, 1: car}", "r.yaml"), ["car", "person"], "d1")
    with pytest.raises(ClassRegistryError, match="id 1 .'person' in dataset d1. is missing"):
        check_append_only(parse_registry(b"classes: {0: car}", "r.yaml"), ["car", "person"], "d1")


def test_without_a_registry_a_class_keeps_its_id_when_a_new_class_arrives():
    assert stable_class_names(None, {"dog", "cat"}) == ["cat", "dog"]
    assert stable_class_names(["cat", "dog"], {"ant", "dog"}) == ["cat", "dog", "ant"]  # cat kept though unused


def test_datasets_keep_ids_across_versions_and_map_names_through_the_registry(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    s1 = commit(store, tmp_path / "d1", "ana", {"a": [box("dog")], "b": [box("emu")]})
    d1 = build(store, {"ana": s1})
    s2 = commit(store, tmp_path / "d2", "ana", {"a": [box("dog")], "b": [box("emu")], "c": [box("ant")]})
    d2 = build(store, {"ana": s2}, d1)
    assert d1.class_names == ["dog", "emu"] and d2.class_names == ["dog", "emu", "ant"]  # sorted would renumber
    ids = {b["class_name"]: b["class_id"] for row in d2.records for b in row["boxes"]}
    assert ids == {"dog": 0, "emu": 1, "ant": 2}
    registry = parse_registry(b"classes: {0: dog, 1: {name: emu, aliases: [Emu]}, 2: ant, 3: yak}", "r.yaml")
    s3 = commit(store, tmp_path / "d3", "ana", {"a": [box("dog")], "b": [box("Emu")], "c": [box("ant")]})
    d3 = build(store, {"ana": s3}, d2, registry=registry)
    assert d3.class_names == ["dog", "emu", "ant", "yak"] and d3.class_registry == registry.digest
    assert {b["class_name"] for row in d3.records for b in row["boxes"]} == {"dog", "emu", "ant"}
    changes = diff_versions(d2.table, d3.table, "dataset", d2.dataset_id, d3.dataset_id, d2.class_names, d3.class_names)
    assert changes.classes["added"] == [[3, "yak"]] and changes.totals()["relabelled"] == 0  # Emu is emu
    with pytest.raises(ClassRegistryError, match="ana: class 'tiger' is not in the class registry"):
        s4 = commit(store, tmp_path / "d4", "ana", {"a": [box("dog")], "t": [box("tiger")]})
        build(store, {"ana": s4}, d3, registry=registry)


@pytest.mark.parametrize(("text", "fault"), [
    (b"classes: {0: car}\naliases: [a, b]", "line 2: aliases: Input should be a valid dictionary"),
    (b"classes: {0: car}\nscientists: [ana]", "line 2: scientists: Input should be a valid dictionary"),
    (b"classes:\n  0: car\n  1: {name: vehicle, aliases: vehicle}", "line 3: classes.1.aliases: Input should be a valid list"),
    (b"classes: {0: car}\ncolours: {car: red}", "colours: Extra inputs are not permitted"),
    (b"classes: {9223372036854775807: car}", "not a non-negative integer up to 9999"),
    (b"classes: {0: car, 5000: bus}", "leave 4999 ids unnamed"),
    (b"classes:\n  0: {name: Platelets, removed: true}\n  1: RBC\n  3: Platelets",
     "line 4: class 'Platelets' was removed or merged at id 0 and is given id 3 again"),
    (b"classes: {0: car, 1: {name: lorry, merged_into: car}, 2: lorry}", "given id 2 again"),
    ("classes: {0: car}\naliases: {c\u0430r: car}".encode(), "differ only by look-alike characters ('\u0430' is CYRILLIC SMALL LETTER A)"),
])
def test_a_malformed_registry_is_refused_once_naming_the_key_and_line(text, fault):
    with pytest.raises(ClassRegistryError) as error:
        parse_registry(text, "registry.yaml")
    assert str(error.value).startswith("registry.yaml") and fault in str(error.value), str(error.value)


def test_a_registry_that_is_a_fifo_is_refused_without_hanging(tmp_path):
    import os
    import threading

    from imgassets.core.labels.class_registry import load_registry

    fifo = tmp_path / "registry.yaml"
    os.mkfifo(fifo)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(pytest.raises(ClassRegistryError, load_registry, fifo)))
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and "not a regular file" in str(outcome[0].value)


def test_a_label_name_with_a_look_alike_character_is_a_finding_that_says_so():
    registry = parse_registry(b"classes: {0: car, 1: person}", "r.yaml")
    [(_, _, reason)] = registry.unknown({"ana": {"c\u0430r", "car"}})
    assert reason == ("class 'c\u0430r' is not in the class registry: it looks like 'car' but differs by look-alike "
                      "characters ('\u0430' is CYRILLIC SMALL LETTER A): retype it")


def test_dataset_class_names_that_only_look_alike_are_named():
    from imgassets.core.labels.class_registry import look_alike_names

    assert look_alike_names(["car", "c\u0430r", "bus", "person"]) == [
        ("c\u0430r", "car", "'\u0430' is CYRILLIC SMALL LETTER A")]
    assert look_alike_names(["car", "Car", "cars"]) == []  # case and plurals are the registry's near misses
