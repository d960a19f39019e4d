"""Findings on a label table: what is wrong, in which file and line, and why.

Each function returns a list of :class:`Finding` (empty when the check passes). The Dagster asset
checks report them; the snapshot refuses any row that has one. Geometry rule: a box must have
positive area and lie inside the image, its corners ``x_center +- width/2`` and
``y_center +- height/2`` within [0, 1] up to :data:`BOX_TOLERANCE` (label exporters round to six
decimals, so edge-touching boxes overshoot by about 5e-7).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.errors

from imgassets.core.frames import has_dtypes
from imgassets.core.labels.class_registry import ClassRegistry
from imgassets.core.labels.table import LABEL_DTYPES, LabelTableSchema, attached_rows
from imgassets.errors import Reason

BOX_TOLERANCE = 1e-4
"""Allowed overshoot of a box corner past the image edge, in normalized units (0.064 px at 640 px)."""


@dataclass(frozen=True)
class Finding:
    """One problem: ``file`` (relative to the scientist's folder), ``line`` (0 = whole file), ``reason``
    (a sentence for the scientist) and ``code`` (:class:`imgassets.errors.Reason`: the rule broken)."""

    file: str
    line: int
    reason: str
    code: Reason

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}" if self.line else f"{self.file}: {self.reason}"


_SCHEMA = LabelTableSchema.to_schema()
# For a table whose dtypes `has_dtypes` has already confirmed: the schema's value checks without
# its per-column dtype checks (pandera 0.35 formats an empty failure-case frame for every passing
# string column, most of a validation's time) and without coercion.
_TYPED_SCHEMA = _SCHEMA.update_columns({column: {"dtype": None} for column in _SCHEMA.columns})
_TYPED_SCHEMA.coerce = False


def schema_failures(table: pd.DataFrame) -> list[Finding]:
    """Rows failing :class:`LabelTableSchema` (unparseable lines, nulls, coordinates outside [0, 1]).

    A table that already has the label table's dtypes (:data:`LABEL_DTYPES`, as built; checked by
    :func:`imgassets.core.frames.has_dtypes`) gets only the value checks, in place (no conversion,
    no second dtype check); any other (e.g. read back from Parquet
    with other dtypes) is coerced on a copy first and checked in full, as the schema's config says."""
    typed = has_dtypes(table, LABEL_DTYPES)
    try:
        with warnings.catch_warnings():  # pandera's own concat of failure cases warns on pandas 2.x
            warnings.filterwarnings("ignore", category=FutureWarning, module="pandera")
            if typed:
                _TYPED_SCHEMA.validate(table, lazy=True, inplace=True)
            else:
                _SCHEMA.validate(table, lazy=True)
        return []
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    findings: dict[int, Finding] = {}
    for case in cases.itertuples():
        idx = case.index
        if idx is None or pd.isna(idx) or int(idx) in findings:
            continue
        row = table.loc[int(idx)]
        reason = row["parse_error"] if pd.notna(row["parse_error"]) else (
            f"{case.column} = {case.failure_case} fails {case.check}")
        findings[int(idx)] = Finding(row["label_file"], int(row["line"]), reason, Reason.LABEL_SCHEMA)
    table_level = [c for c in cases.itertuples() if c.index is None or pd.isna(c.index)]
    extra = [Finding("<label table>", 0, f"{c.column}: {c.check} ({c.failure_case})", Reason.LABEL_SCHEMA) for c in table_level]
    return [findings[i] for i in sorted(findings)] + extra


def _rows(table: pd.DataFrame, mask: pd.Series | np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the rows of ``table`` where ``mask`` holds (no copy of the other columns;
    the checks below only visit the rows that fail, which are few or none)."""
    return table.loc[np.asarray(mask, dtype=bool), columns]


def geometry_failures(table: pd.DataFrame, tolerance: float = BOX_TOLERANCE) -> list[Finding]:
    """Parsed boxes with zero (or negative) area, or extending outside the image (the rows are
    tested column-wise; only failing rows are visited)."""
    x, y = table["x_center"].to_numpy("float64", na_value=np.nan), table["y_center"].to_numpy("float64", na_value=np.nan)
    w, h = table["width"].to_numpy("float64", na_value=np.nan), table["height"].to_numpy("float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        flat = (w <= 0) | (h <= 0)
        outside = (np.minimum(x - w / 2, y - h / 2) < -tolerance) | (np.maximum(x + w / 2, y + h / 2) > 1 + tolerance)
    failing = (flat | outside) & table["parse_error"].isna().to_numpy(bool)
    if not failing.any():
        return []
    findings = []
    for row in _rows(table, failing, ["label_file", "line", "x_center", "y_center", "width", "height"]).itertuples():
        x0, x1 = row.x_center - row.width / 2, row.x_center + row.width / 2
        y0, y1 = row.y_center - row.height / 2, row.y_center + row.height / 2
        if row.width <= 0 or row.height <= 0:
            findings.append(Finding(row.label_file, row.line, f"zero-area box (width {row.width:g}, height {row.height:g})",
                                    Reason.ZERO_AREA_BOX))
        else:
            findings.append(Finding(row.label_file, row.line,
                                    f"box outside the image: x {_edge(x0)}..{_edge(x1)}, y {_edge(y0)}..{_edge(y1)} (must be within 0..1)",
                                    Reason.BOX_OUTSIDE_IMAGE))
    return findings


def class_map_failures(table: pd.DataFrame) -> list[Finding]:
    """Parsed boxes whose class id has no name in the label file's class map (or no class map)."""
    unnamed = table["parse_error"].isna() & table["class_name"].isna()
    if not unnamed.any():
        return []
    findings = []
    for row in _rows(table, unnamed, ["label_file", "line", "class_id", "class_map_file"]).itertuples():
        if pd.isna(row.class_map_file):
            reason = f"class id {row.class_id} has no name: no data.yaml or classes.txt in this folder or above"
        else:
            reason = f"class id {row.class_id} is not in the class map {row.class_map_file}"
        findings.append(Finding(row.label_file, row.line, reason, Reason.UNKNOWN_CLASS))
    return findings


def orphan_label_files(table: pd.DataFrame) -> list[Finding]:
    """Labels whose image does not exist, or was rejected by the image index: one finding per label
    file and image it names (a COCO or CSV file names many), at its first line, in every format."""
    missing = table["image_path"].isna() & (table["line"] > 0) & table["parse_error"].isna()
    rejected = table["image_rejected"].notna()
    findings = []
    if missing.any():
        orphans = _rows(table, missing, ["label_file", "image_ref", "line"])
        for (label_file, ref), group in orphans.groupby(["label_file", orphans["image_ref"].fillna("")], sort=True):
            where = f" {ref}" if ref else ""
            findings.append(Finding(label_file, int(group["line"].min()) if ref else 0,
                                    f"no image{where} found for this label file ({len(group)} boxes unused)",
                                    Reason.LABEL_WITHOUT_IMAGE))
    if rejected.any():
        left_out = _rows(table, rejected, ["label_file", "image_path", "line", "image_rejected"])
        for (label_file, image), group in left_out.groupby(["label_file", "image_path"], sort=True):
            findings.append(Finding(label_file, int(group["line"].min()),
                                    f"its image {image} is left out ({group['image_rejected'].iloc[0]}): "
                                    f"{len(group)} boxes unused", Reason.LABEL_IMAGE_REJECTED))
    return sorted(findings, key=lambda f: (f.file, f.line))


def frame_failures(table: pd.DataFrame) -> list[Finding]:
    """Label files whose declared image size is not the image's displayed size (one per file)."""
    mask = table["frame_error"].notna()
    if not mask.any():
        return []
    bad = _rows(table, mask, ["label_file", "line", "frame_error"])
    return [Finding(f, int(g["line"].min()), g["frame_error"].iloc[0], Reason.LABEL_FRAME)
            for f, g in bad.groupby("label_file", sort=True)]


def source_conflicts(table: pd.DataFrame) -> list[Finding]:
    """Images whose label files disagree (one finding per image)."""
    mask = table["source_conflict"].notna()
    if not mask.any():
        return []
    bad = _rows(table, mask, ["image_path", "source_conflict"])
    return [Finding(image, 0, g["source_conflict"].iloc[0], Reason.SOURCES_DISAGREE)
            for image, g in bad.groupby("image_path", sort=True)]


CHECKS = {"label_schema": schema_failures, "box_geometry": geometry_failures,
          "class_ids_in_class_map": class_map_failures, "label_frame": frame_failures,
          "label_sources_agree": source_conflicts, "label_files_have_images": orphan_label_files}
"""Each label check (named as its Dagster asset check) and the function that finds its problems."""
BLOCKING = ("label_schema", "box_geometry", "class_ids_in_class_map", "label_frame", "label_sources_agree")
"""The checks whose findings keep a label table out of a snapshot."""


@dataclass(frozen=True)
class LabelFindings:
    """Every finding of a label table, by check (:data:`CHECKS`): plain data, computed from the
    table when needed (0.4 s at 500,000 rows). The label table asset reports them as its asset
    check results and in the quality report; the snapshot computes them again to refuse bad labels
    (the table is never trusted to carry its own verdict)."""

    by_check: dict[str, list[Finding]]

    @classmethod
    def of(cls, table: pd.DataFrame) -> LabelFindings:
        """Compute every check on ``table``: the blocking ones on its rows that are judged
        (:func:`imgassets.core.labels.table.attached_rows`: not the boxes of rejected images, which
        ``label_files_have_images`` reports), the warnings on every row."""
        attached = attached_rows(table)
        judged = table if attached.all() else table[attached]
        return cls({name: check(judged if name in BLOCKING else table) for name, check in CHECKS.items()})

    @property
    def blocking(self) -> list[Finding]:
        """The findings of the :data:`BLOCKING` checks, in that order."""
        return [f for name in BLOCKING for f in self.by_check[name]]


def blocking_findings(table: pd.DataFrame) -> list[Finding]:
    """Every finding that must keep the table out of a snapshot (schema, geometry, class map,
    frame, conflicting label sources): :attr:`LabelFindings.blocking`."""
    return LabelFindings.of(table).blocking


def unknown_class_findings(registry: ClassRegistry, scientist: str, table: pd.DataFrame) -> list[Finding]:
    """One finding per class name of ``table`` (the scientist's label table) that ``registry``
    cannot map (:meth:`~imgassets.core.labels.class_registry.ClassRegistry.unknown`), at the first
    label file and line using it."""
    named = table[table["class_name"].notna()]
    first = named.drop_duplicates("class_name").set_index("class_name")
    return [Finding(first.at[name, "label_file"], int(first.at[name, "line"]), reason, Reason.UNKNOWN_CLASS_NAME)
            for _, name, reason in registry.unknown({scientist: set(named["class_name"])})]


def _edge(value: float) -> str:
    """A normalized box edge for a message: four decimals, or a short exponent form for an edge
    far outside the image (``1e+308``, ``inf``)."""
    return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"
