"""Metadata shown in the Dagster UI: findings as Markdown tables, counts as numbers."""


from collections.abc import Iterable

import dagster as dg

from imgassets.core.labels.checks import Finding
from imgassets.core.training.benchmark import METRICS
from imgassets.core.versioning.archive import ArchiveResult

MAX_LISTED = 50
ASSET_GROUP = "images_to_models"
"""The one asset group: the whole lineage, drive to champion, is one graph. The UI draws several
groups collapsed when it opens; one group opens expanded."""


class Key:
    """Metadata keys written by the assets and read by the ``imgassets run`` summary
    (:mod:`imgassets.cli.run`): one name for the writer and the reader, so a renamed key fails the
    tests (the summary indexes a materialization's metadata by these, no silent zero)."""

    IMAGES = "images"
    IMAGES_VALID = "images_valid"
    BOXES = "boxes"
    UNLABELLED = "unlabelled_images"
    SNAPSHOT_ID = "snapshot_id"
    UPLOADED_OBJECTS = "uploaded_objects"
    LEFT_OUT = "left_out"
    DATASET_ID = "dataset_id"
    SNAPSHOTS = "snapshots"
    MODEL_KEY = "model_key"
    EPOCHS = "epochs"
    TRAINING_SECONDS = "training_seconds"
    DEVICE = "device"
    METRICS = METRICS
    """Ultralytics' metric names (:data:`imgassets.core.training.benchmark.METRICS`), each its own entry (in [0, 1])."""
    EVALUATION_KEY = "evaluation_key"
    MISSED_BOXES = "missed_boxes"
    SPURIOUS_BOXES = "spurious_boxes"
    BENCHMARK_KEY = "benchmark_key"
    PROMOTED = "promoted"
    DECISION = "promotion_decision"
    COUNT = "count"
    FINDINGS = "findings"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def findings_metadata(findings: list[Finding]) -> dict:
    """``count``, ``files`` and the first :data:`MAX_LISTED` findings (Markdown table and JSON)."""
    listed = findings[:MAX_LISTED]
    rows = "\n".join(f"| {_cell(f.file)} | {f.line or ''} | {_cell(f.reason)} |" for f in listed)
    table = "| file | line | reason |\n|---|---|---|\n" + rows if listed else "nothing to report"
    return {
        Key.COUNT: dg.MetadataValue.int(len(findings)),
        "files": dg.MetadataValue.int(len({f.file for f in findings})),
        "offending": dg.MetadataValue.md(table),
        Key.FINDINGS: dg.MetadataValue.json([{"file": f.file, "line": f.line, "reason": f.reason, "code": str(f.code)}
                                            for f in listed]),
    }


def check_result(findings: list[Finding], severity: dg.AssetCheckSeverity, what: str,
                 extra: dict | None = None, check_name: str | None = None,
                 asset_key: dg.AssetKey | None = None) -> dg.AssetCheckResult:
    """An asset check result: passed when ``findings`` is empty; ``what`` describes a finding;
    ``extra`` metadata is added to the findings' metadata. ``check_name`` and ``asset_key`` name
    the check when one step reports several (a multi-asset check)."""
    description = f"{len(findings)} {what}" if findings else f"no {what}"
    return dg.AssetCheckResult(passed=not findings, severity=severity, description=description,
                               metadata={**findings_metadata(findings), **(extra or {})},
                               check_name=check_name, asset_key=asset_key)


def markdown_table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> dg.MetadataValue:
    """A Markdown table for the UI."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def archive_metadata(result: ArchiveResult) -> dict:
    """Move mode: how many files left the drive, which stayed and why, and the archive log key."""
    return {
        "moved_files": len(result.moved),
        "kept_files": len(result.kept),
        "kept": markdown_table(["file", "why it stayed"], result.kept[:MAX_LISTED]),
        "archive_log": result.log_key or "",
    }


def prelabel_metadata(fared: dict) -> dict:
    """How the pre-annotations of a scientist's images fared (``quality_report``'s ``prelabels``: per
    champion, :func:`imgassets.core.labeling.provenance.provenance_summary`), as metadata: the whole
    record, and numbers over every champion (``prelabels/acceptance_rate``, ``prelabels/boxes_saved``,
    ``prelabels/proposed``) that the UI plots across materializations; nothing when no image was
    pre-labelled."""
    if not fared:
        return {}
    proposed = sum(f["proposed"] for f in fared.values())
    accepted = sum(f["accepted"] for f in fared.values())
    return {"prelabels": dg.MetadataValue.json(fared), "prelabels/proposed": proposed,
            "prelabels/boxes_saved": accepted,
            "prelabels/acceptance_rate": round(accepted / proposed, 4) if proposed else 0.0}
