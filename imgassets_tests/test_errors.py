"""One exception base: every error imgassets raises on purpose is an ImgassetsError, and each
finding carries a reason code."""

from __future__ import annotations

import pytest

from imgassets.errors import ImgassetsError, Reason


@pytest.mark.parametrize("path", [
    "imgassets.core.store.base:ObjectStoreError", "imgassets.core.store.base:ObjectNotFoundError",
    "imgassets.core.store.base:IntegrityError", "imgassets.core.store.s3:S3ConnectionError",
    "imgassets.core.drive.source_files:SourceFileError", "imgassets.core.drive.listing:ListingError",
    "imgassets.core.labels.class_map:ClassMapError", "imgassets.core.versioning.snapshot:SnapshotError",
    "imgassets.core.versioning.manifest:ManifestError", "imgassets.core.versioning.splits:EmptyDatasetError",
    "imgassets.core.versioning.checkout:DestinationError", "imgassets.core.training.train:TrainingConfigError",
    "imgassets.core.labels.class_registry:ClassRegistryError", "imgassets.core.versioning.retraction:RetractionError",
    "imgassets.core.versioning.departed:DepartedPolicyError", "imgassets.core.versioning.gc:GarbageCollectionError",
    "imgassets.cli.usage:UsageError", "imgassets.core.versioning.build:DatasetBuildError",
    "imgassets.settings:SettingsError",
])
def test_every_domain_error_is_an_imgassets_error(path):
    import importlib

    module, _, name = path.partition(":")
    assert issubclass(getattr(importlib.import_module(module), name), ImgassetsError)


def test_a_finding_names_its_rule(tmp_path):
    from imgassets.core.labels import checks
    from imgassets.core.labels.table import build_label_table
    from imgassets_tests.conftest import build_image_index, jpeg_bytes

    (tmp_path / "ana").mkdir()
    (tmp_path / "ana" / "a.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "ana" / "a.txt").write_text("0 0.9 0.5 0.4 0.4\n0 0.5 0.5 0 0.2\n")
    (tmp_path / "ana" / "classes.txt").write_text("cat\n")
    table = build_label_table(tmp_path / "ana", build_image_index(tmp_path / "ana"))
    assert [f.code for f in checks.geometry_failures(table)] == [Reason.BOX_OUTSIDE_IMAGE, Reason.ZERO_AREA_BOX]
