"""The Definitions load, and the asset graph has the promised shape and checks."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from imgassets.definitions import defs


def test_definitions_load_with_the_whole_lineage_graph():
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey
    assert graph.get_all_asset_keys() == {key("image_index"), key("label_table"), key("image_snapshot"),
                                          key("training_dataset"), key("yolo_model"), key("model_evaluation"),
                                          key("champion_model"), key("retractions"), key("labeling_queue")}
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}
    assert parents == {
        "image_index": set(), "label_table": {"image_index"}, "image_snapshot": {"image_index", "label_table"},
        "retractions": set(), "training_dataset": {"image_snapshot", "retractions"}, "yolo_model": {"training_dataset"},
        "model_evaluation": {"yolo_model"}, "champion_model": {"yolo_model", "model_evaluation"},
        "labeling_queue": {"image_index", "image_snapshot", "champion_model"},
    }
    for name in ("image_index", "label_table", "image_snapshot"):
        assert graph.get(key(name)).partitions_def.name == "scientists"
    assert graph.get(key("training_dataset")).partitions_def is None


def test_blocking_checks_guard_labels_and_the_split():
    graph = defs.resolve_asset_graph()
    specs = {spec.name: spec for key in graph.asset_check_keys for spec in [graph.get_check_spec(key)]}
    blocking = {name for name, spec in specs.items() if spec.blocking}
    assert blocking == {"label_schema", "box_geometry", "class_ids_in_class_map", "label_frame", "label_sources_agree",
                        "classes_in_registry", "no_split_leakage", "weights_predict"}
    assert {name for name, spec in specs.items() if not spec.blocking} == {
        "images_decode", "duplicate_images", "image_quality", "data_yaml_paths", "label_files_have_images", "duplicate_labels_agree",
        "class_ids_consistent", "label_review", "classes_measurable", "beats_champion",
        "prelabels_not_rubber_stamped", "no_slice_regressed"}
    assert {specs[n].asset_key.to_user_string() for n in blocking} == {"label_table", "training_dataset", "yolo_model"}


def test_jobs_and_sensor_are_defined():
    assert defs.resolve_job_def("scientist_job").partitions_def.name == "scientists"
    training = defs.resolve_job_def("training_job")
    assert {key.to_user_string() for key in training.asset_layer.selected_asset_keys} == {
        "retractions", "training_dataset", "yolo_model", "model_evaluation", "champion_model"}
    assert defs.resolve_sensor_def("shared_drive_sensor").job_name == "scientist_job"


def test_a_scientists_label_findings_are_computed_once_per_step_and_travel_as_check_results(tmp_path, monkeypatch):
    """The label checks run once in the label table's step (its check results and quality report
    read that one computation) and once in the snapshot's (its refusal never trusts a verdict
    stored with the table); the table itself carries no findings."""
    from imgassets.core.labels import checks as label_checks
    from imgassets_tests.conftest import graph_on, small_books

    calls: dict[str, int] = {}

    def counted(name, check):
        def wrapper(table):
            calls[name] = calls.get(name, 0) + 1
            return check(table)
        return wrapper

    monkeypatch.setattr(label_checks, "CHECKS", {n: counted(n, c) for n, c in label_checks.CHECKS.items()})
    small_books(tmp_path / "drive" / "ana", count=4)
    with graph_on(tmp_path, tmp_path / "drive", scientists=["ana"]) as (defs, instance):
        result = defs.resolve_job_def("scientist_job").execute_in_process(partition_key="ana", instance=instance)
    assert result.success
    assert calls == {name: 2 for name in label_checks.CHECKS}
    evaluations = {e.check_name for e in result.get_asset_check_evaluations()}
    assert set(label_checks.CHECKS) <= evaluations
    label_step = {e.step_key for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
                  and e.event_specific_data.check_name in label_checks.CHECKS}
    assert label_step == {"label_table"}
    stored = pd.read_parquet(tmp_path / "home" / "storage" / "label_table" / "ana.parquet")
    assert "label_findings" not in stored.attrs and "quality_report" not in stored.attrs


def test_the_store_client_is_built_once_per_resource(s3_endpoint):
    from imgassets.defs.resources import ObjectStoreResource, S3ObjectStoreResource
    from imgassets_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY

    resource = S3ObjectStoreResource(endpoint=s3_endpoint, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY,
                                     bucket="once-per-run")
    first = resource.get_store()
    assert resource.get_store() is first and first.bucket == "once-per-run"
    with pytest.raises(TypeError, match="abstract"):
        ObjectStoreResource()


def test_descriptions_are_written_for_people():
    """The UI renders descriptions as Markdown: no Sphinx role or reST literal reaches it."""
    import re

    graph = defs.resolve_asset_graph()
    markup = re.compile(r":(mod|func|data|class|meth|attr|exc):`|``")
    texts = {k.to_user_string(): graph.get(k).description for k in graph.get_all_asset_keys()}
    texts |= {key.name: graph.get_check_spec(key).description for key in graph.asset_check_keys}
    assert all(texts.values()), [name for name, text in texts.items() if not text]
    assert {name for name, text in texts.items() if markup.search(text)} == set()
    assert "`refs/models/champion`" in texts["champion_model"]


def test_the_store_kind_tag_names_the_deployment_s_store():
    from imgassets.defs.deployment import store_kind

    graph = defs.resolve_asset_graph()  # the local deployment: a folder, not S3
    kinds = {k.to_user_string(): graph.get(k).kinds for k in graph.get_all_asset_keys()}
    assert kinds["image_snapshot"] == kinds["retractions"] == kinds["champion_model"] == {"filesystem"}
    assert store_kind("production") == store_kind("kubernetes") == "s3"


def test_a_class_id_conflict_says_boxes_are_matched_by_name():
    from imgassets.defs.training.checks import class_id_conflict_reason

    reason = class_id_conflict_reason({"class_id": 0, "names": {"ana": ["circle"], "ben": ["square"],
                                                                 "chloe": ["circle"]}})
    assert reason.startswith("class id 0 means 'circle' for ana, chloe and 'square' for ben; boxes are matched by "
                             "class name")


def test_the_whole_lineage_is_one_group_so_the_ui_opens_it_expanded():
    graph = defs.resolve_asset_graph()
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys()} == {"images_to_models"}


def test_policy_settings_are_resources_built_from_the_environment(monkeypatch, tmp_path):
    """The policies every run uses are resources (shown on the UI's resource page), built from the
    environment when the definitions load; the core receives them as plain policy objects."""
    from imgassets.definitions import build_defs
    from imgassets.defs.deployment import local_resources

    monkeypatch.setenv("IMGASSETS_CHAMPION_MARGIN", "0.03")
    monkeypatch.setenv("IMGASSETS_REVIEW_FOLDS", "2")
    monkeypatch.setenv("IMGASSETS_DEPARTED_POLICY", "retract")
    monkeypatch.setenv("IMGASSETS_BURST_SECONDS", "0")
    monkeypatch.setenv("IMGASSETS_TRAINING_PRESET", "demo")
    defs = build_defs(local_resources(home=str(tmp_path / "home"), shared_root=str(tmp_path / "drive")))
    resources = defs.resources
    evaluation = resources["evaluation_policy"].policy()
    assert (evaluation.margin, evaluation.review_folds) == (0.03, 2)
    dataset = resources["dataset_policy"].policy()
    assert dataset.departed == "retract" and dataset.sequence_rules.burst_seconds == 0
    assert dataset.class_registry is None
    assert resources["training_preset"].preset == "demo"
    required = {key for assets_def in defs.assets for key in assets_def.required_resource_keys}
    assert {"dataset_policy", "evaluation_policy", "training_preset"} <= required
