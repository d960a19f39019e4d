"""Class maps: class id -> class name, read from the files labelling tools write.

Formats:

* Ultralytics ``data.yaml``: ``names`` as a list (``[person, car]``, id = position) or a dict
  (``{0: person, 1: car}``); ``nc``, when present, must equal the number of names.
* ``classes.txt`` (YOLO export of LabelImg and others) and Darknet's ``obj.names``: one name per
  line, id = line number - 1, blank lines ignored.

A label file uses the class map nearest to it: the one in its own folder, else its parent's, up to
the scientist's folder. In the Ultralytics layout, ``data.yaml`` at the dataset root serves
``labels/train/x.txt``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml

from imgassets.core.drive.source_files import SourceFileError, read_source
from imgassets.errors import ImgassetsError

MAX_CLASS_MAP_BYTES = 2**20
"""Largest class-map file read, in bytes (a ``data.yaml`` of 1000 classes is about 20 KB)."""


class ClassMapError(ImgassetsError, ValueError):
    """A class-map file that cannot be used; the message names the file and the reason."""


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader refusing anchors' aliases (``*name``): a few hundred bytes of nested
    aliases expand to gigabytes ("billion laughs"); no labelling tool writes them in a ``data.yaml``."""

    def compose_node(self, parent, index):  # noqa: ANN001 -- PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not accepted", event.start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str) -> object:
    """``yaml.safe_load`` of ``text`` with aliases refused (:class:`_NoAliasLoader`). Raises
    ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 -- a SafeLoader subclass


def parse_data_yaml(text: str, source: str) -> dict[int, str]:
    """Class map from the text of an Ultralytics ``data.yaml`` (``names`` list or dict form; YAML
    aliases refused, :func:`load_yaml`). Raises :class:`ClassMapError` naming ``source``."""
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ClassMapError(f"{source}: not valid YAML: {exc}") from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, list):
        mapping = {i: str(n) for i, n in enumerate(names)}
    elif isinstance(names, dict):
        try:
            mapping = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise ClassMapError(f"{source}: 'names' keys must be integer class ids") from None
    else:
        raise ClassMapError(f"{source}: no 'names' list or dict")
    nc = doc.get("nc")
    if nc is not None and nc != len(mapping):
        raise ClassMapError(f"{source}: nc is {nc} but {len(mapping)} names are listed")
    return mapping


def parse_classes_txt(text: str) -> dict[int, str]:
    """Class map from ``classes.txt``: one name per non-blank line, ids from 0."""
    names = [line.strip() for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    return dict(enumerate(names))


def read_class_map(folder: Path, rel_path: str) -> dict[int, str]:
    """Read the class-map file ``folder/rel_path`` (through
    :func:`imgassets.core.drive.source_files.read_source`, at most :data:`MAX_CLASS_MAP_BYTES`);
    ``rel_path`` names it in errors. Raises :class:`ClassMapError`."""
    try:
        text = read_source(folder, rel_path, max_bytes=MAX_CLASS_MAP_BYTES).decode("utf-8-sig")
    except SourceFileError as exc:
        raise ClassMapError(f"{rel_path}: not read: {exc.reason}") from None
    except UnicodeDecodeError as exc:
        raise ClassMapError(f"{rel_path}: cannot read: {exc}") from None
    path = PurePosixPath(rel_path)
    if path.suffix.lower() in (".txt", ".names"):
        return parse_classes_txt(text)
    return parse_data_yaml(text, rel_path)


def class_maps_by_folder(class_map_paths: list[str]) -> dict[str, str]:
    """``{folder: class map}`` (``"."`` at the top): the class map each folder holding one offers
    its label files, ``data.yaml`` before ``classes.txt``/``obj.names`` (then by path)."""
    by_folder: dict[str, str] = {}
    for p in sorted(class_map_paths, key=lambda p: (PurePosixPath(p).suffix.lower() in (".txt", ".names"), p)):
        by_folder.setdefault(str(PurePosixPath(p).parent), p)
    return by_folder


def folder_class_map(folder: str, by_folder: dict[str, str]) -> str | None:
    """The class map of the label files in ``folder`` (relative, ``"."`` at the top), given
    :func:`class_maps_by_folder`: the nearest class map at or above it, which depends only on the label's
    folder. Built once per folder, looked up per folder: no pass over every class map per folder."""
    parent = PurePosixPath(folder)
    for candidate in [parent, *parent.parents]:
        if str(candidate) in by_folder:
            return by_folder[str(candidate)]
    return None
