"""The Definitions load, and the asset graph has the promised shape and checks."""

from __future__ import annotations

import dagster as dg

from imgassets.definitions import defs


def test_definitions_load_with_the_whole_lineage_graph():
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey
    assert graph.get_all_asset_keys() == {key("image_index"), key("label_table"), key("image_snapshot"),
                                          key("training_dataset"), key("yolo_model"), key("model_evaluation")}
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}
    assert parents == {
        "image_index": set(), "label_table": {"image_index"}, "image_snapshot": {"image_index", "label_table"},
        "training_dataset": {"image_snapshot"}, "yolo_model": {"training_dataset"},
        "model_evaluation": {"yolo_model"},
    }
    for name in ("image_index", "label_table", "image_snapshot"):
        assert graph.get(key(name)).partitions_def.name == "scientists"
    assert graph.get(key("training_dataset")).partitions_def is None


def test_blocking_checks_guard_labels_and_the_split():
    specs = {spec.name: spec for checks in defs.asset_checks for spec in checks.check_specs}
    blocking = {name for name, spec in specs.items() if spec.blocking}
    assert blocking == {"label_schema", "box_geometry", "class_ids_in_class_map", "label_frame", "label_sources_agree",
                        "no_split_leakage", "weights_predict"}
    assert {name for name, spec in specs.items() if not spec.blocking} == {
        "images_decode", "duplicate_images", "data_yaml_paths", "label_files_have_images", "duplicate_labels_agree",
        "class_ids_consistent", "map_not_regressed"}
    assert {specs[n].asset_key.to_user_string() for n in blocking} == {"label_table", "training_dataset", "yolo_model"}


def test_jobs_and_sensor_are_defined():
    assert defs.resolve_job_def("scientist_job").partitions_def.name == "scientists"
    training = defs.resolve_job_def("training_job")
    assert {key.to_user_string() for key in training.asset_layer.selected_asset_keys} == {
        "training_dataset", "yolo_model", "model_evaluation"}
    assert defs.resolve_sensor_def("shared_drive_sensor").job_name == "scientist_job"
