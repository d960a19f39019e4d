"""The docs name only what exists: every file path, module, function and class written in code
style in the README and ``docs/*.md`` resolves, the architecture's graph draws every asset, and its
check table lists exactly the checks of the definitions."""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import imgassets

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CODE = re.compile(r"`([^`\n]+)`")
FILE_SUFFIXES = {"json", "parquet", "yaml", "yml", "txt", "md", "py", "pt", "csv", "xml", "zlib", "cache"}
PATH = re.compile(r"^(?:imgassets/|imgassets_tests/|benchmarks/|core/|defs/|cli/|deploy/|docs/)[\w/.-]*\.(?:py|md|yaml|yml)$")


def _modules() -> dict[str, list[str]]:
    """Every imgassets module by its last one or two dotted parts (``gc``, ``versioning.gc``)."""
    names: dict[str, list[str]] = {}
    for info in pkgutil.walk_packages(imgassets.__path__, "imgassets."):
        parts = info.name.split(".")
        for k in (1, 2, 3):
            names.setdefault(".".join(parts[-k:]), []).append(info.name)
    return names


def _resolves(dotted: str, modules: dict[str, list[str]]) -> bool:
    """Whether ``dotted`` (``imgassets.a.b.attr``, or a module's last parts then attributes:
    ``gc.plan_gc``, ``cli.home.open_instance``) names a module or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        head, attrs = ".".join(parts[:cut]), parts[cut:]
        for module in ([head] if head.startswith("imgassets") else modules.get(head, [])):
            try:
                obj = importlib.import_module(module)
            except ImportError:
                continue
            if all((obj := getattr(obj, a, None)) is not None for a in attrs):
                return True
    return False


def _resolves_in_stdlib(dotted: str) -> bool:
    head, *attrs = dotted.split(".")
    obj = importlib.import_module(head)
    return all((obj := getattr(obj, a, None)) is not None for a in attrs)


def _code_spans(doc: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)  # diagrams and shell sessions aside
    return CODE.findall(text)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_in_the_docs_exists(doc):
    missing = []
    for span in _code_spans(doc):
        path = span.split(":")[0].split(" ")[0]
        if PATH.match(path):
            candidates = [REPO / path, REPO / "imgassets" / path]
            if not any(c.exists() for c in candidates):
                missing.append(path)
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_module_and_function_in_the_docs_exists(doc):
    modules = _modules()
    missing = []
    for span in _code_spans(doc):
        name = span.removesuffix("()")
        if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+", name):
            continue
        head = name.split(".")[0]
        if name.rsplit(".", 1)[1] in FILE_SUFFIXES or (head != "imgassets" and head not in modules):
            continue  # a file name, or another library's name (pa.string, dg.EnvVar)
        if head in sys.stdlib_module_names and _resolves_in_stdlib(name):
            continue  # gc.freeze: Python's gc, not imgassets' versioning.gc
        if not _resolves(name, modules):
            missing.append(name)
    assert not missing, f"{doc.name} names modules or functions that do not exist: {missing}"


def test_the_architecture_draws_every_asset_and_lists_every_check():
    from imgassets.definitions import defs

    text = (REPO / "docs" / "architecture.md").read_text()
    graph = text[text.index("## The graph"):text.index("## Layers")]
    assets = {key.path[-1] for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {a for a in assets if a not in graph} == set()
    table = text[text.index("## Asset checks"):]
    listed = set(re.findall(r"(?m)^\| `(\w+)` \| \w+ \|", table))
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert listed == checks, (sorted(checks - listed), sorted(listed - checks))


def test_every_cross_reference_in_a_docstring_resolves():
    """``:mod:``, ``:func:``, ``:class:``, ``:data:`` and ``:meth:`` references to imgassets in the
    code's docstrings name something that exists (they are how a reader follows the code)."""
    modules = _modules()
    role = re.compile(r":(?:mod|func|class|data|meth|attr|exc):`~?(imgassets\.[\w.]+)`")
    missing = sorted({(str(p.relative_to(REPO)), name) for p in (REPO / "imgassets").rglob("*.py")
                      for name in role.findall(p.read_text()) if not _resolves(name, modules)})
    assert not missing, missing
