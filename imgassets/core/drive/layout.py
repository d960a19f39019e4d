"""Which file is what on a scientist's folder, and which label file belongs to which image.

Paths are POSIX strings relative to the scientist's folder. Rules:

* **image**: the extension is one Ultralytics trains on (case-insensitive): ``.jpg .jpeg .png .bmp
  .tif .tiff .webp .mpo``. The bytes decide the real format later (:mod:`imgassets.core.images.inspect`).
* **class_map**: ``data.yaml`` or ``data.yml`` (Ultralytics), ``classes.txt`` and ``obj.names``
  (Darknet; both one name per line).
* **label**, in one of these formats (:func:`label_format`; the modules of
  :mod:`imgassets.core.labels.formats`):

  - YOLO txt (detection, segmentation, OBB rows): a ``.txt`` file, other than ``classes.txt`` and
    ``README*``, that either lies under a folder named ``labels`` (the Ultralytics ``images/`` ->
    ``labels/`` sibling layout) or lies in a folder that also holds images (labels beside images);
  - DOTA oriented boxes: a ``.txt`` file under a folder named ``labelTxt`` (beside ``images/``);
  - Pascal VOC or CVAT for images (by the root element): a ``.xml`` file under a folder named
    ``Annotations``, beside images, or named ``annotations.xml``;
  - COCO or Label Studio (by the document's shape): any ``.json`` file (one that is neither is
    ignored by the label table);
  - box CSV (DeepForest, keras-retinanet): any ``.csv`` file (ignored unless its header is
    ``image_path,xmin,ymin,xmax,ymax,label``).
* **other**: everything else. Listed in the image index, never failed.

Pairing follows Ultralytics' ``img2label_paths``: the label of ``a/images/b/x.jpg`` is
``a/labels/b/x.txt`` (last ``images`` component swapped); when that does not exist, the label beside
the image, ``a/images/b/x.txt``, is used.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable
from pathlib import PurePosixPath

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".mpo"})
CLASS_MAP_NAMES = frozenset({"data.yaml", "data.yml", "classes.txt", "obj.names"})

DOTA_FOLDER = "labelTxt"
"""The folder DOTA-style oriented-box text files are kept in, beside ``images/``."""
IMAGE = "image"
LABEL = "label"
CLASS_MAP = "class_map"
OTHER = "other"


def _suffix(name: str) -> str:
    """The lower-cased extension of a file name, as ``PurePosixPath.suffix`` gives it (``""`` for
    ``.hidden`` or a name ending in a dot); the same rule as :mod:`pathlib`."""
    i = name.rfind(".")
    return name[i:].lower() if 0 < i < len(name) - 1 else ""


def is_image_path(path: str) -> bool:
    """True when ``path`` has an image extension (case-insensitive)."""
    return _suffix(path.rpartition("/")[2]) in IMAGE_EXTENSIONS


def _split(path: str) -> tuple[str, str, str]:
    """(parent folder, ``""`` at the top; file name; lower-cased extension) of a relative path."""
    parent, _, name = path.rpartition("/")
    return parent, name, _suffix(name)


def _kind(parent: str, name: str, suffix: str, dirs_with_images: set[str]) -> str:
    """The kind of one path (rules above); ``dirs_with_images``: the folders holding an image."""
    lower = name.lower()
    if suffix in IMAGE_EXTENSIONS:
        return IMAGE
    if lower in CLASS_MAP_NAMES:
        return CLASS_MAP
    parts = parent.split("/")
    if suffix == ".txt" and not lower.startswith("readme") and (
            "labels" in parts or DOTA_FOLDER in parts or parent in dirs_with_images):
        return LABEL
    if suffix == ".xml" and (lower == "annotations.xml" or "annotations" in (p.lower() for p in parts)
                             or parent in dirs_with_images):
        return LABEL
    if suffix in (".json", ".csv"):
        return LABEL
    return OTHER


def classify_paths(paths: list[str]) -> dict[str, str]:
    """Map each relative path to ``image``, ``label``, ``class_map`` or ``other`` (rules above).
    (The image index carries kinds over from its previous rows and classifies only what a change
    needs: :func:`imgassets.core.images.index.path_kinds`.)"""
    split = {path: _split(path) for path in paths}
    dirs_with_images = {parent for parent, _, suffix in split.values() if suffix in IMAGE_EXTENSIONS}
    return {path: _kind(*parts, dirs_with_images) for path, parts in split.items()}


def image_dirs(image_paths: Iterable[str]) -> set[str]:
    """The folders (``""`` at the top) holding the images of ``image_paths`` (image paths only)."""
    return {path.rpartition("/")[0] for path in image_paths}


def classify_path(path: str, dirs_with_images: set[str]) -> str:
    """The kind of one path (rules above), given the folders that hold an image (:func:`image_dirs`)."""
    return _kind(*_split(path), dirs_with_images)


RULE_PROBES = (
    "a.jpg", "a.JPEG", "a.png", "a.bmp", "a.tif", "a.tiff", "a.webp", "a.mpo", "a.heic", "a.gif", "a.jp2",
    "data.yaml", "data.yml", "classes.txt", "obj.names", "notes/classes.txt",
    "labels/a.txt", "labels/train/a.txt", "a.txt", "README.txt", "readme.md", "notes/a.txt",
    "labelTxt/a.txt", "x/labelTxt/a.txt", "annotations.xml", "x/annotations.xml",
    "Annotations/a.xml", "annotations/a.xml", "a.xml", "notes/a.xml", "coco.json", "notes/x.json", "boxes.csv",
    "images/a.jpg", "images/a.txt", "images/a.xml", "x/a.JPG", "x/a.txt", "x/.a", "x/a.", "a.pdf", "a.mp4",
)
"""Paths classified to fingerprint these rules (:data:`RULES_FINGERPRINT`): every extension and
name the rules mention, in and out of ``labels``/``Annotations`` folders and beside images. Add a
probe with any new rule."""

RULES_FINGERPRINT = hashlib.sha256(json.dumps(
    [sorted(IMAGE_EXTENSIONS), sorted(CLASS_MAP_NAMES), classify_paths(list(RULE_PROBES))], sort_keys=True).encode()
).hexdigest()[:12]
"""Changes whenever a rule above classifies a probe differently. An image index records the
fingerprint its kinds were made by; a later index reuses those kinds (and the rows of those files)
only under the same fingerprint, so a release that changes the rules (a new image extension) sees
every path classified again and reads the files whose kind changed."""


YOLO, VOC, COCO, CSV = "yolo", "voc", "coco", "csv"
DOTA, CVAT, LABEL_STUDIO = "dota", "cvat", "label_studio"
FORMATS = (YOLO, VOC, COCO, CSV, DOTA, CVAT, LABEL_STUDIO)
"""Every label format a label table row can come from (its ``label_format``)."""

LABEL_FORMATS = {".txt": YOLO, ".xml": VOC, ".json": COCO, ".csv": CSV}
"""Label format by extension; an XML or JSON file's content decides between VOC and CVAT, COCO and
Label Studio (:mod:`imgassets.core.labels.formats`)."""


FORMAT_FAMILIES = {VOC: "Pascal VOC or CVAT XML", COCO: "COCO or Label Studio JSON", YOLO: "YOLO txt",
                   DOTA: "DOTA txt", CSV: "box CSV"}
"""What a label file's extension says it is: an XML or JSON file's format is decided by its content
(:func:`imgassets.core.labels.table.parse_label_file`), so a message about a file not yet parsed
names the family."""


def label_format(path: str) -> str:
    """``yolo``, ``voc``, ``coco`` or ``csv`` for a label path by its extension (.txt, .xml, .json,
    .csv), ``dota`` for a .txt file inside a :data:`DOTA_FOLDER` folder: the family's first
    member (:data:`FORMAT_FAMILIES`); an XML or JSON file's rows carry the format its parser
    recognised (``cvat``, ``label_studio``)."""
    fmt = LABEL_FORMATS[_suffix(path.rpartition("/")[2])]
    return DOTA if fmt == YOLO and is_dota_path(path) else fmt


def is_dota_path(path: str) -> bool:
    """Whether ``path`` lies inside a :data:`DOTA_FOLDER` folder."""
    return path.startswith(f"{DOTA_FOLDER}/") or f"/{DOTA_FOLDER}/" in path


def dota_image_candidates(txt_path: str) -> list[str]:
    """Images a DOTA file ``labelTxt/<stem>.txt`` may describe, in order: ``<stem>`` with each image
    extension in the ``images`` folder beside ``labelTxt``, then beside the file."""
    pure = PurePosixPath(txt_path)
    folders = [pure.parent.parent / "images", pure.parent]
    candidates = [f"{folder / pure.stem}{ext}" for folder in folders for ext in sorted(IMAGE_EXTENSIONS)]
    return [c[2:] if c.startswith("./") else c for c in candidates]


def voc_image_candidates(xml_path: str, filename: str | None) -> list[str]:
    """Images a VOC file may describe, in order: its ``<filename>`` beside it, in a sibling
    ``JPEGImages``/``images`` folder, then any image with the XML's stem in those places."""
    pure = PurePosixPath(xml_path)
    folders = [pure.parent, pure.parent.parent / "JPEGImages", pure.parent.parent / "images"]
    names = [PurePosixPath(filename).name] if filename else []
    candidates = [str(folder / name) for name in names for folder in folders]
    candidates += [f"{folder / pure.stem}{ext}" for folder in folders for ext in sorted(IMAGE_EXTENSIONS)]
    return [c[2:] if c.startswith("./") else c for c in candidates]


def label_dirs(parent: str) -> list[str]:
    """Folder prefixes (``""`` or ending in ``/``) where the label of an image in ``parent`` is
    looked for, in order: the ``labels/`` sibling of the last ``images`` component, then ``parent``."""
    parts = parent.split("/") if parent else []
    prefixes = []
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        prefixes.append("/".join([*parts[:i], "labels", *parts[i + 1:]]) + "/")
    prefixes.append(f"{parent}/" if parent else "")
    return prefixes


def _stem(name: str) -> str:
    """A file name without its extension (as ``PurePosixPath.stem``, by the rule of :func:`_suffix`)."""
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def pair_labels(image_paths: list[str], label_paths: list[str]) -> dict[str, str]:
    """Map each YOLO label path to the image it annotates (the first image, by path, whose
    :func:`label_candidates` name it). Label paths absent from the result are orphans (a label file
    with no image); images absent from the values are background images. The candidate folders
    are worked out once per image folder, not once per image."""
    labels = {p for p in label_paths if _suffix(p.rpartition("/")[2]) == ".txt"}
    prefixes_of: dict[str, list[str]] = {}
    paired: dict[str, str] = {}
    for image in sorted(image_paths):
        parent, _, name = image.rpartition("/")
        prefixes = prefixes_of.get(parent)
        if prefixes is None:
            prefixes = prefixes_of[parent] = label_dirs(parent)
        stem = _stem(name)
        for prefix in prefixes:
            candidate = f"{prefix}{stem}.txt"
            if candidate in labels and candidate not in paired:
                paired[candidate] = image
                break
    return paired


def resolve_image_reference(reference: str, label_dir: str, known: set[str]) -> tuple[str | None, str | None]:
    """(image path relative to the scientist's folder, error) for an image named inside a label
    file (COCO ``file_name``, CSV ``image_path``): tried against the label file's folder, then the
    scientist's folder. Absolute names and names that leave the scientist's folder are errors."""
    name = reference.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None, f"image reference {reference!r} is an absolute path: it must be relative to the scientist's folder"
    for base in (label_dir, ""):
        candidate = posixpath.normpath(posixpath.join(base, name) if base not in ("", ".") else name)
        if candidate == ".." or candidate.startswith("../"):
            return None, f"image reference {reference!r} escapes the scientist's folder"
        if candidate in known:
            return candidate, None
    return None, None
