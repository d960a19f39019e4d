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

Lookup order for a scientist's name: that scientist's aliases, the global aliases, the canonical
names, the names merged into another class. Matching is exact (``Car`` is not ``car``); near misses
(case, whitespace, ``_``/``-``, a plural ``s``/``es``) are only suggested (:meth:`ClassRegistry.suggest`).

The ids of a dataset are positions in its class-name list (Ultralytics needs ids ``0..nc-1``), so
a hole keeps a placeholder name there (:func:`hole_name`) and is never trained on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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
    the store keeps (:attr:`digest`)."""

    classes: dict[int, str]
    holes: dict[int, str] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    scientist_aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    text: bytes = b""

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
        found = []
        for scientist in sorted(names_by_scientist):
            for name in sorted(names_by_scientist[scientist]):
                if self.canonical(scientist, name) is not None:
                    continue
                if name in removed:
                    reason = f"class {name!r} was removed from the class registry"
                else:
                    hint = self.suggest(name)
                    reason = f"class {name!r} is not in the class registry" + (f" (did you mean {hint!r}?)" if hint else
                                                                               ": add it, or an alias")
                found.append((scientist, name, reason))
        return found


def parse_registry(text: bytes, source: str) -> ClassRegistry:
    """Parse a registry file's bytes (format in the module docstring; YAML aliases refused).
    Raises :class:`ClassRegistryError` naming ``source`` and the fault: not YAML, no ``classes``
    map, an id that is not a non-negative integer, a name given two ids, an alias to an unknown
    class or one that shadows a canonical name."""
    try:
        doc = load_yaml(text.decode("utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ClassRegistryError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), dict):
        raise ClassRegistryError(f"{source}: no 'classes' map (id: name)")
    classes: dict[int, str] = {}
    holes: dict[int, str] = {}
    merged: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for key, entry in doc["classes"].items():
        if not isinstance(key, int) or isinstance(key, bool) or key < 0:
            raise ClassRegistryError(f"{source}: class id {key!r} is not a non-negative integer")
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise ClassRegistryError(f"{source}: class {key} has no name")
        name = entry["name"]
        if entry.get("removed") or entry.get("merged_into"):
            holes[key] = name
            if entry.get("merged_into"):
                merged[name] = str(entry["merged_into"])
            continue
        if name in classes.values():
            raise ClassRegistryError(f"{source}: class {name!r} has two ids")
        classes[key] = name
        for alias in entry.get("aliases") or []:
            aliases[str(alias)] = name
    aliases.update({str(a): str(c) for a, c in (doc.get("aliases") or {}).items()})
    per_scientist = {str(s): {str(a): str(c) for a, c in (table or {}).items()}
                     for s, table in (doc.get("scientists") or {}).items()}
    live = set(classes.values())
    for where, table in [("aliases", aliases), ("merged_into", merged),
                         *((f"scientists.{s}", t) for s, t in per_scientist.items())]:
        for alias, target in table.items():
            if target not in live:
                raise ClassRegistryError(f"{source}: {where}: {alias!r} points at {target!r}, which is not a class")
            if alias in live and alias != target:
                raise ClassRegistryError(f"{source}: {where}: {alias!r} is itself a class name")
    return ClassRegistry(classes, holes, merged, aliases, per_scientist, text)


def load_registry(path: Path) -> ClassRegistry:
    """Read and parse the registry file at ``path`` (at most :data:`MAX_REGISTRY_BYTES`). Raises
    :class:`ClassRegistryError` naming the file when it cannot be read, is too large or is not a
    registry (:func:`parse_registry`)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_REGISTRY_BYTES + 1)
    except OSError as exc:
        raise ClassRegistryError(f"{path}: cannot be read: {exc.strerror or exc}") from None
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
