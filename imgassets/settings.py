"""Where imgassets keeps its state, from the environment (no Dagster import).

* ``IMGASSETS_HOME`` (default ``~/.imgassets``): the local object store (``objects/``...), the
  Dagster instance (``dagster/``), staged datasets (``staging/``), training runs (``training/``)
  and Dagster's stored asset values (``storage/``).
* ``IMGASSETS_SHARED_ROOT`` (default ``<home>/demo-drive``, built by ``imgassets run``): the shared
  drive, one folder per scientist.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "IMGASSETS_HOME"
SHARED_ROOT_ENV = "IMGASSETS_SHARED_ROOT"


def home() -> Path:
    """The imgassets home directory (``IMGASSETS_HOME`` or ``~/.imgassets``), absolute."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".imgassets").expanduser().resolve()


def demo_drive(home_dir: Path | None = None) -> Path:
    """Where the demo shared drive is built: ``<home>/demo-drive``."""
    return (home_dir or home()) / "demo-drive"


def shared_root() -> Path:
    """The shared drive root (``IMGASSETS_SHARED_ROOT`` or the demo drive), absolute."""
    value = os.environ.get(SHARED_ROOT_ENV)
    return Path(value).expanduser().resolve() if value else demo_drive()


def dagster_home(home_dir: Path | None = None) -> Path:
    """The Dagster instance directory (``DAGSTER_HOME``) inside the imgassets home."""
    return (home_dir or home()) / "dagster"
