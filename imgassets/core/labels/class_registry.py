"""The class registry: one list of classes for every scientist, with stable, append-only ids.

A dataset merges every scientist's boxes by class *name*. Without a registry the names are used as
written and ids stay stable from one dataset version to the next (:func:`stable_class_names`: a
class keeps the id it had in the previous version; new names are appended in sorted order). With a
registry (a YAML file the team edits, ``$IMGASSETS_CLASS_REGISTRY``), every name a scientist uses
is mapped through it, and a name it does not know blocks, with a suggestion when it is a near miss.

Format (``classes`` is required; ids are the keys, and an id once given is never reused)::

    classes:
      0: car                                   # id: canonical name
      1: {name: person, aliases: [pedestrian, people]}
      2: {name: truck, removed: true}          # a hole: boxes named truck are refused
      3: {name: lorry, merged_into: car}       # a hole: lorry boxes become car (id 0)
    aliases: {automobile: car}                 # global aliases
    scientists:                                # aliases of one scientist only
      ana: {kitty: cat}
    groups:                                    # class groups: benchmark slices of their own
      vehicles: [car, truck]

Lookup order for a scientist's name: that scientist's aliases, the global aliases, the canonical
names, the names merged into another class. Matching is exact (``Car`` is not ``car``); near misses
(case, whitespace, ``_``/``-``, a plural ``s``/``es``) are only suggested (:meth:`ClassRegistry.suggest`).

The ids of a dataset are positions in its class-name list (Ultralytics needs ids ``0..nc-1``), so
a hole keeps a placeholder name there (:func:`hole_name`) and is never trained on.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from confusable_homoglyphs import confusables
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imgassets.core.labels.class_map import load_yaml
from imgassets.errors import ImgassetsError

MAX_REGISTRY_BYTES = 2**20
"""Largest class registry read, in bytes."""


class ClassRegistryError(ImgassetsError, ValueError):
    """A registry that cannot be used, or one that would change an existing class id; the message
    names the file (or the dataset) and the reason."""


def hole_name(class_id: int, name: str) -> str:
    """The placeholder kept at a hole's position in a dataset's class names: ``__removed_<id>_<name>``."""
    return f"__removed_{class_id}_{name}"


def is_hole(name: str) -> bool:
    """Whether a dataset class name is a hole's placeholder (:func:`hole_name`)."""
    return name.startswith("__removed_")


def _normal(name: str) -> str:
    """The near-miss key of a name: lower case, runs of whitespace, ``_`` and ``-`` as one space,
    a plural ``es``/``s`` dropped."""
    key = re.sub(r"[\s_\-]+", " ", name.strip().lower())
    for suffix in ("es", "s"):
        if key.endswith(suffix) and len(key) > len(suffix) + 2:
            return key[: -len(suffix)]
    return key


@dataclass(frozen=True)
class ClassRegistry:
    """A parsed registry (format in the module docstring). ``classes``: id -> canonical name of
    every live class; ``holes``: id -> name of removed and merged classes; ``merged``: merged name
    -> canonical name it became; ``aliases``: global alias -> canonical name;
    ``scientist_aliases``: scientist -> alias -> canonical name; ``text``: the file's bytes, which
    the store keeps (:attr:`digest`); ``groups``: class group -> its canonical class names (the
    evaluation scores each group as a benchmark slice, :mod:`imgassets.core.training.slices`)."""

    classes: dict[int, str]
    holes: dict[int, str] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    scientist_aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    text: bytes = b""
    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """SHA-256 of the registry's text: the name the store keeps it under."""
        return hashlib.sha256(self.text).hexdigest()

    def canonical(self, scientist: str, name: str) -> str | None:
        """The canonical class ``name`` stands for in ``scientist``'s labels, or ``None`` when the
        registry does not know it (or names a removed class)."""
        ids = {n: i for i, n in self.classes.items()}
        for table in (self.scientist_aliases.get(scientist, {}), self.aliases):
            if name in table:
                return table[name]
        if name in ids:
            return name
        return self.merged.get(name)

    def suggest(self, name: str) -> str | None:
        """A known name (canonical or alias) that ``name`` nearly matches (:func:`_normal`), else ``None``."""
        key = _normal(name)
        known = [*self.classes.values(), *self.aliases, *self.merged]
        return next((k for k in sorted(known) if _normal(k) == key), None)

    def class_names(self) -> list[str]:
        """Names by id, ``0..max id``: canonical names, and a placeholder (:func:`hole_name`) at holes."""
        top = max([*self.classes, *self.holes], default=-1)
        return [self.classes[i] if i in self.classes else hole_name(i, self.holes.get(i, "")) for i in range(top + 1)]

    def unknown(self, names_by_scientist: dict[str, set[str]]) -> list[tuple[str, str, str]]:
        """``(scientist, name, reason)`` for every name the registry cannot map, sorted; the reason
        says when the class was removed and suggests a near miss."""
        removed = set(self.holes.values()) - set(self.merged)
        by_skeleton: dict[str, str] = {}
        for known in sorted({*self.classes.values(), *self.aliases, *self.merged}):
            by_skeleton.setdefault(confusable_skeleton(known), known)
        found = []
        for scientist in sorted(names_by_scientist):
            for name in sorted(names_by_scientist[scientist]):
                if self.canonical(scientist, name) is not None:
                    continue
                twin = by_skeleton.get(confusable_skeleton(name))
                if name in removed:
                    reason = f"class {name!r} was removed from the class registry"
                elif twin is not None:
                    reason = (f"class {name!r} is not in the class registry: it looks like {twin!r} but differs by "
                              f"look-alike characters ({look_alike(name, twin)}): retype it")
                else:
                    hint = self.suggest(name)
                    reason = f"class {name!r} is not in the class registry" + (f" (did you mean {hint!r}?)" if hint else
                                                                               ": add it, or an alias")
                found.append((scientist, name, reason))
        return found


MAX_CLASS_ID = 9_999
"""Largest class id a registry may give (Ultralytics trains ids ``0..nc-1``: a dataset holds a
placeholder for every hole below the largest id)."""
MAX_HOLES = 1_000
"""Most ids below the largest one that no entry names (an id far beyond the classes in use is a typo)."""


class _Entry(BaseModel):
    """A ``classes`` entry in its long form."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    removed: bool = False
    merged_into: str | None = None


class _RegistryFile(BaseModel):
    """The registry file's schema (module docstring): pydantic validates types and keys once."""

    model_config = ConfigDict(extra="forbid", strict=True)
    classes: dict[int, str | _Entry]
    aliases: dict[str, str] = Field(default_factory=dict)
    scientists: dict[str, dict[str, str]] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)


def _line_of(text: str, location: tuple) -> int:
    """The 1-based line of the YAML node at ``location`` (a pydantic error's ``loc``: keys and
    indexes), or of the deepest node found on the way; 0 when the text does not compose."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return 0
    line = node.start_mark.line + 1 if node is not None else 0
    for part in location:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if str(k.value) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            found = node.value[part]
        else:
            found = None
        if found is None:
            break
        node, line = found, found.start_mark.line + 1
    return line


def confusable_skeleton(name: str) -> str:
    """``name`` with each character that looks like a Latin one (Unicode's confusables data, through
    ``confusable_homoglyphs``) written as that Latin character: ``cаr`` with a Cyrillic ``а`` gives
    ``car``. Two names with one skeleton and different text differ only by look-alike characters."""
    found = confusables.is_confusable(name, greedy=True, preferred_aliases=["latin"]) or []
    table = {f["character"]: f["homoglyphs"][0]["c"] for f in found if f.get("homoglyphs")}
    return "".join(table.get(c, c) for c in name)


def look_alike_names(names: list[str]) -> list[tuple[str, str, str]]:
    """``(name, other, why)`` for each name of ``names`` that differs from an earlier one (sorted)
    only by look-alike characters (:func:`confusable_skeleton`): without a class registry the two
    train as two classes."""
    first: dict[str, str] = {}
    found = []
    for name in sorted(set(names)):
        other = first.setdefault(confusable_skeleton(name), name)
        if other != name:
            found.append((name, other, look_alike(name, other) or look_alike(other, name)))
    return found


def look_alike(name: str, known: str) -> str:
    """Why ``name`` is not ``known`` though it looks the same: ``'а' is CYRILLIC SMALL LETTER A``."""
    return ", ".join(f"{a!r} is {unicodedata.name(a, f'U+{ord(a):04X}')}" for a, b in zip(name, known, strict=False)
                     if a != b)


def parse_registry(text: bytes, source: str) -> ClassRegistry:
    """Parse a registry file's bytes (format in the module docstring; YAML aliases refused),
    validated by a pydantic schema. Raises :class:`ClassRegistryError` naming ``source``, the key and
    its line: not YAML, a field of the wrong type (``aliases: vehicle``, a list where a map goes), an
    unknown key, an id that is not a non-negative integer or beyond :data:`MAX_CLASS_ID` or
    :data:`MAX_HOLES` past the classes in use, a name given two ids or brought back under a new id
    after it was removed or merged, an alias to an unknown class or one that shadows a canonical
    name, a group member that is not a class, two names that differ only by look-alike characters."""
    try:
        decoded = text.decode("utf-8-sig")
        doc = load_yaml(decoded)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ClassRegistryError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), dict):
        raise ClassRegistryError(f"{source}: no 'classes' map (id: name)")
    try:
        parsed = _RegistryFile.model_validate(doc)
    except ValidationError as exc:
        first = max(exc.errors(), key=lambda e: len(e["loc"]))  # of a union, the branch that got furthest
        where = ".".join(str(p) for p in first["loc"] if p not in ("str", "_Entry"))
        raise ClassRegistryError(f"{source}, line {_line_of(decoded, first['loc'])}: {where}: {first['msg']}"
                                 f"{f' (and {exc.error_count() - 1} more)' if exc.error_count() > 1 else ''}") from None
    classes: dict[int, str] = {}
    holes: dict[int, str] = {}
    merged: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for key, entry in parsed.classes.items():
        if key < 0 or key > MAX_CLASS_ID:
            raise ClassRegistryError(f"{source}, line {_line_of(decoded, ('classes', key))}: class id {key} is not a "
                                     f"non-negative integer up to {MAX_CLASS_ID}")
        entry = _Entry(name=entry) if isinstance(entry, str) else entry
        name = entry.name
        if entry.removed or entry.merged_into:
            holes[key] = name
            if entry.merged_into:
                merged[name] = entry.merged_into
            continue
        if name in classes.values():
            raise ClassRegistryError(f"{source}, line {_line_of(decoded, ('classes', key))}: class {name!r} has two ids")
        classes[key] = name
        for alias in entry.aliases:
            aliases[alias] = name
    unused = max([*classes, *holes], default=-1) + 1 - len(classes) - len(holes)
    if unused > MAX_HOLES:
        raise ClassRegistryError(f"{source}: ids up to {max([*classes, *holes])} leave {unused} ids unnamed (at most "
                                 f"{MAX_HOLES}): a typo in an id? ids are positions, 0..number of classes")
    for key, name in holes.items():
        live = [i for i, n in classes.items() if n == name]
        if live:
            raise ClassRegistryError(f"{source}, line {_line_of(decoded, ('classes', live[0]))}: class {name!r} was "
                                     f"removed or merged at id {key} and is given id {live[0]} again: a class keeps its "
                                     f"id forever (bring it back at id {key} by removing `removed`/`merged_into`)")
    aliases.update(parsed.aliases)
    per_scientist = parsed.scientists
    live = set(classes.values())
    for where, table in [("aliases", aliases), ("merged_into", merged),
                         *((f"scientists.{s}", t) for s, t in per_scientist.items())]:
        for alias, target in table.items():
            if target not in live:
                raise ClassRegistryError(f"{source}: {where}: {alias!r} points at {target!r}, which is not a class")
            if alias in live and alias != target:
                raise ClassRegistryError(f"{source}: {where}: {alias!r} is itself a class name")
    for group, members in parsed.groups.items():
        strangers = [m for m in members if m not in live]
        if strangers:
            raise ClassRegistryError(f"{source}: groups.{group}: {', '.join(map(repr, strangers))} is not a class")
    twins = look_alike_names([*live, *aliases, *merged, *(a for t in per_scientist.values() for a in t)])
    if twins:
        name, other, why = twins[0]
        raise ClassRegistryError(f"{source}: names {other!r} and {name!r} differ only by look-alike characters "
                                 f"({why}): use one spelling")
    return ClassRegistry(classes, holes, merged, aliases, per_scientist, text, dict(parsed.groups))


def load_registry(path: Path) -> ClassRegistry:
    """Read and parse the registry file at ``path`` (at most :data:`MAX_REGISTRY_BYTES`, a regular
    file: opened non-blocking, so a FIFO put there never hangs a run). Raises
    :class:`ClassRegistryError` naming the file when it cannot be read, is not a regular file, is
    too large or is not a registry (:func:`parse_registry`)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ClassRegistryError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ClassRegistryError(f"{path}: not a regular file (a FIFO, device or folder): not read")
        os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            text = handle.read(MAX_REGISTRY_BYTES + 1)
    except OSError as exc:
        raise ClassRegistryError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)
    if len(text) > MAX_REGISTRY_BYTES:
        raise ClassRegistryError(f"{path}: larger than {MAX_REGISTRY_BYTES} bytes")
    return parse_registry(text, str(path))


def check_append_only(registry: ClassRegistry, previous: list[str], previous_id: str) -> None:
    """Refuse a registry that would give an existing class another id: every class (not a hole)
    of the previous dataset version ``previous_id`` (its class names, id = position) must be known
    to the registry at the same id (as its canonical name, or as the name of a hole there: a class
    removed or merged keeps its id as a hole), and no id of the previous version may be missing.
    Raises :class:`ClassRegistryError` naming both."""
    names = registry.class_names()
    for class_id, name in enumerate(previous):
        if is_hole(name):
            continue
        here = registry.classes.get(class_id, registry.holes.get(class_id))
        if here is None:
            raise ClassRegistryError(f"class registry: id {class_id} ({name!r} in dataset {previous_id}) is missing; "
                                     "ids are never reused or dropped: keep it, mark it removed or merged_into")
        if here != name and registry.canonical("", name) != names[class_id]:
            raise ClassRegistryError(f"class registry gives id {class_id} to {here!r}, but dataset {previous_id} "
                                     f"has {name!r} there: a class keeps its id forever (rename with an alias)")


def stable_class_names(previous: list[str] | None, used: set[str]) -> list[str]:
    """Class names for a dataset without a registry: the previous version's names in their order
    (a class seen once keeps its id, boxes or not), then the new names in sorted order."""
    names = list(previous or [])
    known = set(names)
    return names + sorted(n for n in used if n not in known)
