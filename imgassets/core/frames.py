"""Small pandas helpers shared by the tables (image index, label table): typed construction and
dtype checks, written for speed on the incremental path where the same tables are rebuilt often."""

from __future__ import annotations

import numpy as np
import pandas as pd


def typed_frame(rows: list[dict], dtypes: dict[str, str]) -> pd.DataFrame:
    """``rows`` (dicts; a missing key is null) as a DataFrame with the columns and dtypes of
    ``dtypes`` (in its order), built column by column: the same values as
    ``DataFrame(rows).astype(dtypes)`` without the conversion pass. An ``object`` column holds each
    value as it is (a tuple stays one value, never a row of a 2-D array)."""
    return pd.DataFrame({c: pd.array([r.get(c) for r in rows], dtype=t) if t != "object" else _objects([r.get(c) for r in rows])
                         for c, t in dtypes.items()})


def _objects(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)  # every slot None
    for i, value in enumerate(values):
        array[i] = value
    return array


def has_dtypes(frame: pd.DataFrame, dtypes: dict[str, str]) -> bool:
    """True when ``frame`` has exactly the columns of ``dtypes``, in order, with those dtypes."""
    return list(frame.columns) == list(dtypes) and all(str(t) == dtypes[c] for c, t in frame.dtypes.items())


def plain_values(column: pd.Series) -> list:
    """A column as plain Python values (int, float, str), ``None`` for every kind of null (``NaN``,
    ``pd.NA``): what manifests, JSON and tuple comparisons need (``pd.NA == x`` is not a bool)."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind != "O":  # numpy: only floats and times hold nulls
        nullable = column.dtype.kind in "fmM" and column.isna().any()
        return (column.astype(object).where(column.notna(), None) if nullable else column).tolist()
    # extension dtypes (string, Int64) and object: one pass with every null as None (no
    # intermediate columns, as astype(object).where(...) would build)
    return column.to_numpy(dtype=object, na_value=None).tolist()


def merge_sorted(first: pd.DataFrame, second: pd.DataFrame, key: str, rows: np.ndarray) -> pd.DataFrame:
    """The rows of ``first`` at positions ``rows`` (ascending) and every row of ``second`` (the same
    columns, each sorted by ``key``, no value of ``key`` in both) in one frame sorted by ``key``,
    each frame's rows in their order, with a fresh 0..n-1 index. The rows of ``second`` are placed
    by binary search and the frame built in one take: no sort of the strings."""
    at = np.searchsorted(first[key].to_numpy(object)[rows], second[key].to_numpy(object), side="left")
    order = np.insert(rows, at, len(first) + np.arange(len(second)))
    return pd.concat([first, second], ignore_index=True).take(order).reset_index(drop=True)
