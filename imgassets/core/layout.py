"""Which file is what on a scientist's folder, and which label file belongs to which image.

Paths are POSIX strings relative to the scientist's folder. Rules:

* **image**: the extension is one Ultralytics trains on (case-insensitive): ``.jpg .jpeg .png .bmp
  .tif .tiff .webp .mpo``. The bytes decide the real format later (:mod:`imgassets.core.imaging`).
* **class_map**: ``data.yaml`` or ``data.yml`` (Ultralytics), ``classes.txt`` and ``obj.names``
  (Darknet; both one name per line).
* **label**, in one of three formats (:func:`label_format`):

  - YOLO txt: a ``.txt`` file, other than ``classes.txt`` and ``README*``, that either lies under a
    folder named ``labels`` (the Ultralytics ``images/`` -> ``labels/`` sibling layout) or lies in a
    folder that also holds images (labels beside images);
  - Pascal VOC: a ``.xml`` file under a folder named ``Annotations`` or beside images;
  - COCO: any ``.json`` file (one that turns out not to be COCO is ignored by the label table);
  - box CSV (DeepForest, keras-retinanet): any ``.csv`` file (ignored unless its header is
    ``image_path,xmin,ymin,xmax,ymax,label``).
* **other**: everything else. Listed in the image index, never failed.

Pairing follows Ultralytics' ``img2label_paths``: the label of ``a/images/b/x.jpg`` is
``a/labels/b/x.txt`` (last ``images`` component swapped); when that does not exist, the label beside
the image, ``a/images/b/x.txt``, is used.
"""

from __future__ import annotations

import posixpath
from pathlib import PurePosixPath

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".mpo"})
CLASS_MAP_NAMES = frozenset({"data.yaml", "data.yml", "classes.txt", "obj.names"})

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


def classify_paths(paths: list[str]) -> dict[str, str]:
    """Map each relative path to ``image``, ``label``, ``class_map`` or ``other`` (rules above)."""
    split = {}  # path -> (parent ("" at the top), name, suffix)
    for path in paths:
        parent, _, name = path.rpartition("/")
        split[path] = (parent, name, _suffix(name))
    dirs_with_images = {parent for parent, _, suffix in split.values() if suffix in IMAGE_EXTENSIONS}
    kinds: dict[str, str] = {}
    for path, (parent, name, suffix) in split.items():
        lower = name.lower()
        parts = parent.split("/")
        if suffix in IMAGE_EXTENSIONS:
            kinds[path] = IMAGE
        elif lower in CLASS_MAP_NAMES:
            kinds[path] = CLASS_MAP
        elif suffix == ".txt" and not lower.startswith("readme") and ("labels" in parts or parent in dirs_with_images):
            kinds[path] = LABEL
        elif suffix == ".xml" and ("annotations" in (p.lower() for p in parts) or parent in dirs_with_images):
            kinds[path] = LABEL
        elif suffix in (".json", ".csv"):
            kinds[path] = LABEL
        else:
            kinds[path] = OTHER
    return kinds


YOLO, VOC, COCO, CSV = "yolo", "voc", "coco", "csv"


def label_format(path: str) -> str:
    """``yolo``, ``voc``, ``coco`` or ``csv`` for a label path (by extension: .txt, .xml, .json, .csv)."""
    return {".txt": YOLO, ".xml": VOC, ".json": COCO, ".csv": CSV}[_suffix(path.rpartition("/")[2])]


def voc_image_candidates(xml_path: str, filename: str | None) -> list[str]:
    """Images a VOC file may describe, in order: its ``<filename>`` beside it, in a sibling
    ``JPEGImages``/``images`` folder, then any image with the XML's stem in those places."""
    pure = PurePosixPath(xml_path)
    folders = [pure.parent, pure.parent.parent / "JPEGImages", pure.parent.parent / "images"]
    names = [PurePosixPath(filename).name] if filename else []
    candidates = [str(folder / name) for name in names for folder in folders]
    candidates += [f"{folder / pure.stem}{ext}" for folder in folders for ext in sorted(IMAGE_EXTENSIONS)]
    return [c[2:] if c.startswith("./") else c for c in candidates]


def label_candidates(image_path: str) -> list[str]:
    """Label paths tried for ``image_path``, in order: ``labels/`` sibling layout, then beside."""
    parent, _, name = image_path.rpartition("/")
    stem = name[: name.rfind(".")] if _suffix(name) else name
    parts = parent.split("/") if parent else []
    candidates: list[str] = []
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        candidates.append("/".join([*parts[:i], "labels", *parts[i + 1:], f"{stem}.txt"]))
    candidates.append(f"{parent}/{stem}.txt" if parent else f"{stem}.txt")
    return candidates


def pair_labels(image_paths: list[str], label_paths: list[str]) -> dict[str, str]:
    """Map each YOLO label path to the image it annotates. Label paths absent from the result are
    orphans (a label file with no image); images absent from the values are background images."""
    labels = {p for p in label_paths if _suffix(p.rpartition("/")[2]) == ".txt"}
    paired: dict[str, str] = {}
    for image in sorted(image_paths):
        for candidate in label_candidates(image):
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
