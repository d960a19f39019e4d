"""The per-scientist quality report: what was found, what was rejected and why, what the labels
look like. Stored as JSON next to the snapshot (``snapshots/<scientist>/<snapshot_id>.report.json``)
and shown as asset metadata.

Also :func:`data_yaml_findings`: ``train``/``val``/``test`` entries of a ``data.yaml`` that point
at folders that do not exist (harmless here -- imgassets makes its own split -- but a sign that
the export is incomplete). Entries resolve against ``path`` (or the yaml's folder), and a leading
``../`` is also tried without it, as Ultralytics' ``check_det_dataset`` does for Roboflow exports.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pandas as pd
import yaml

from imgassets.core.drive import layout
from imgassets.core.drive.source_files import read_source
from imgassets.core.images.inspect import OK
from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.checks import Finding
from imgassets.core.labels.class_map import MAX_CLASS_MAP_BYTES, load_yaml
from imgassets.core.labels.table import usable_boxes
from imgassets.core.labels.unlabelled import mostly_unlabelled_note, unlabelled_mask
from imgassets.errors import Reason

MAX_REJECTED = 200


def data_yaml_findings(folder: str | Path, index: pd.DataFrame) -> list[Finding]:
    """``data.yaml`` split entries naming folders with no file under them."""
    folder = Path(folder)
    paths = index["path"].tolist()
    findings = []
    for rel in index.loc[index["kind"] == layout.CLASS_MAP, "path"]:
        if PurePosixPath(rel).suffix.lower() not in (".yaml", ".yml"):
            continue
        try:
            doc = load_yaml(read_source(folder, rel, max_bytes=MAX_CLASS_MAP_BYTES).decode("utf-8-sig")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # reported by the label table as an unusable class map
        if not isinstance(doc, dict):
            continue
        base = posixpath.normpath(posixpath.join(str(PurePosixPath(rel).parent), str(doc.get("path") or ".")))
        for split in ("train", "val", "test"):
            entries = doc.get(split)
            for entry in entries if isinstance(entries, list) else [entries]:
                if not isinstance(entry, str):
                    continue
                targets = [posixpath.normpath(posixpath.join(base, entry))]
                if entry.startswith("../"):  # Ultralytics' fallback for Roboflow exports
                    targets.append(posixpath.normpath(posixpath.join(base, entry[3:])))
                if not any(p == t or p.startswith(t.rstrip("/") + "/") for p in paths for t in targets):
                    findings.append(Finding(rel, 0, f"{split}: {entry} does not exist in this folder "
                                                    "(ignored: imgassets makes its own split)", Reason.DATA_YAML_PATH))
    return findings


def _stats(series: pd.Series) -> dict:
    if series.empty:
        return {}
    q = series.quantile([0.05, 0.5, 0.95])
    return {"min": round(float(series.min()), 4), "p5": round(float(q[0.05]), 4), "median": round(float(q[0.5]), 4),
            "p95": round(float(q[0.95]), 4), "max": round(float(series.max()), 4)}


def quality_report(scientist: str, folder: str | Path, index: pd.DataFrame, labels: pd.DataFrame,
                   label_findings: label_checks.LabelFindings | None = None,
                   review: tuple[list[dict], str] | None = None,
                   data_yaml: list[Finding] | None = None, prelabels: dict | None = None,
                   declared: Callable[[str], bool] | None = None) -> dict:
    """The report (a JSON-able dict): file counts by kind and status, rejected images with reasons,
    label formats, class histogram, box sizes (normalized width, height, area) and boxes per image,
    and every label finding by check (``label_findings``, default: computed from ``labels``,
    :meth:`~imgassets.core.labels.checks.LabelFindings.of`); ``review``: the model-assisted
    label review's standing findings and who reviewed (``label_review``, ranked by confidence);
    ``data_yaml``: :func:`data_yaml_findings` when the caller has them already; ``prelabels``: per
    champion, how its pre-annotations fared (:func:`imgassets.core.labeling.provenance.provenance_summary`);
    ``declared``: the folders the setting declares unlabelled (:func:`imgassets.core.labels.unlabelled.declared_folders`)."""
    images = index[index["kind"] == layout.IMAGE]
    rejected = images[images["status"] != OK]
    boxes = labels[usable_boxes(labels)]
    valid = images.loc[images["status"] == OK, "path"]
    per_image = boxes.groupby("image_path").size().reindex(valid, fill_value=0)
    unlabelled = unlabelled_mask(valid.to_numpy(object), index, labels, declared)
    findings = {**(label_findings or label_checks.LabelFindings.of(labels)).by_check,
                "data_yaml_paths": data_yaml_findings(folder, index) if data_yaml is None else data_yaml}
    return {
        "scientist": scientist,
        "files": {f"{k}/{s}": int(n) for (k, s), n in index.groupby(["kind", "status"]).size().items()},
        "images": {"found": len(images), "valid": len(images) - len(rejected), "rejected": len(rejected),
                   "background": int((per_image == 0).sum()) - int(unlabelled.sum()),
                   "unlabelled": int(unlabelled.sum())},
        "unlabelled_note": mostly_unlabelled_note(scientist, int(unlabelled.sum()), len(valid)),
        "rejected": [{"path": r.path, "status": r.status, "reason": r.reason} for r in rejected.head(MAX_REJECTED).itertuples()],
        "label_formats": {str(k): int(v) for k, v in labels["label_format"].value_counts().items()},
        "class_histogram": {str(k): int(v) for k, v in boxes["class_name"].value_counts().items()},
        "box_size": {"width": _stats(boxes["width"]), "height": _stats(boxes["height"]),
                     "area": _stats(boxes["width"] * boxes["height"])},
        "boxes_per_image": _stats(per_image.astype(float)),
        "findings": {check: [str(f) for f in found[:MAX_REJECTED]] for check, found in findings.items()},
        "finding_counts": {check: len(found) for check, found in findings.items()},
        "prelabels": prelabels or {},
        "label_review": {"reviewed_by": review[1] if review else "not reviewed", "count": len(review[0]) if review else 0,
                         "findings": [f"{f['file']}:{f['line']}: {f['kind']} ({f['confidence']:.2f}): {f['reason']}"
                                      for f in (review[0] if review else [])[:MAX_REJECTED]]},
    }


WEAK_CLASS_MIN_PROPOSED = 5
"""Pre-annotations of a class needed before its acceptance rate is shown among the weakest."""


def report_markdown(report: dict) -> str:
    """A short Markdown rendering of :func:`quality_report` for the Dagster UI."""
    lines = [f"**{report['scientist']}**: {report['images']['valid']} valid of {report['images']['found']} images "
             f"({report['images']['background']} background, {report['images'].get('unlabelled', 0)} unlabelled), "
             f"{sum(report['class_histogram'].values())} boxes",
             *(["", f"**{report['unlabelled_note']}**"] if report.get("unlabelled_note") else []),
             "", "| class | boxes |", "|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in report["class_histogram"].items()]
    size = report["box_size"].get("area", {})
    if size:
        lines += ["", f"box area (fraction of image): min {size['min']}, median {size['median']}, max {size['max']}"]
    problems = {k: v for k, v in report["finding_counts"].items() if v}
    lines += ["", "label findings: " + (", ".join(f"{k} {v}" for k, v in problems.items()) or "none")]
    for model_id, fared in (report.get("prelabels") or {}).items():
        rate = fared.get("acceptance_rate")
        lines += ["", f"pre-annotations of champion {model_id} on {fared['images']} image(s): {fared['accepted']} "
                      f"accepted unchanged ({'n/a' if rate is None else f'{rate:.0%}'}), {fared['corrected']} corrected, "
                      f"{fared['rejected']} rejected, {fared['added']} box(es) added by hand"]
        weak = sorted((c for c in fared.get("by_class", {}).items() if c[1]["proposed"] >= WEAK_CLASS_MIN_PROPOSED),
                      key=lambda c: c[1]["acceptance_rate"])[:3]
        if weak:
            lines.append("lowest acceptance by class (where the model is weakest): " + ", ".join(
                f"{name} {c['acceptance_rate']:.0%} of {c['proposed']}" for name, c in weak))
    review = report.get("label_review") or {}
    if review.get("count"):
        lines += ["", f"label review by {review['reviewed_by']}: the model disagrees with {review['count']} label(s) "
                      "(the label_review check lists them)"]
    return "\n".join(lines)
