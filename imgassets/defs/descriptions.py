"""What the Dagster UI shows as an asset's or a check's description: the docstring, written for
developers in reStructuredText, turned into the Markdown the UI renders for people.

``:mod:`imgassets.core.training.benchmark``` becomes `` `benchmark` `` (the last name of a
cross-reference, as code), ````refs/models/champion```` becomes `` `refs/models/champion` ``, and
the docstring's indentation is removed (``inspect.cleandoc``), so no role, double backtick or
indented line (a Markdown code block) reaches the page.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence

import dagster as dg

ROLE = re.compile(r":(?:mod|func|data|class|meth|attr|exc|obj|py:\w+):`~?(?:[^`<]*<)?([^`>]+)>?`")
"""A Sphinx cross-reference role, ``:role:`target``` or ``:role:`text <target>```."""
LITERAL = re.compile(r"``(.+?)``", re.S)


def for_people(docstring: str | None) -> str | None:
    """``docstring`` (reStructuredText) as Markdown for the UI, per the module docstring;
    ``None`` stays ``None``."""
    if docstring is None:
        return None
    text = inspect.cleandoc(docstring)
    text = ROLE.sub(lambda m: f"`{m.group(1).rpartition('.')[2].lstrip('_') or m.group(1)}`", text)
    return LITERAL.sub(lambda m: f"`{m.group(1)}`", text)


def readable_assets(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """``assets`` with every asset's description passed through :func:`for_people`."""
    return dg.map_asset_specs(lambda spec: spec.replace_attributes(description=for_people(spec.description)),
                              list(assets))
