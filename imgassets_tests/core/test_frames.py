"""The pandas helpers behind the tables: plain values of every dtype the tables use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imgassets.core.frames import has_dtypes, plain_values, typed_frame


@pytest.mark.parametrize("values,dtype,expected", [
    (["a", None], "string", ["a", None]),
    ([1, None], "Int64", [1, None]),
    ([1.5, np.nan], "float64", [1.5, None]),
    ([1.5, 2.0], "float64", [1.5, 2.0]),
    ([3, 4], "int64", [3, 4]),
    ([True, False], "bool", [True, False]),
    (["a", None, np.nan, pd.NA], object, ["a", None, None, None]),
])
def test_plain_values_are_python_scalars_with_none_for_every_null(values, dtype, expected):
    plain = plain_values(pd.Series(values, dtype=dtype))
    assert plain == expected
    # the manifest's canonical JSON hash depends on the Python types (a numpy int64 would hash as a string)
    assert [type(v) for v in plain] == [type(v) for v in expected]


def test_typed_frame_fills_missing_keys_with_nulls_and_has_the_dtypes():
    dtypes = {"path": "string", "width": "Int64", "x": "float64"}
    frame = typed_frame([{"path": "a", "width": 3}, {"path": "b", "x": 0.5}], dtypes)
    assert has_dtypes(frame, dtypes)
    assert [plain_values(frame[c]) for c in dtypes] == [["a", "b"], [3, None], [None, 0.5]]
