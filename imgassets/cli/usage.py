"""Bad usage of the command line: :class:`UsageError` (exit code 2) and the argument types."""

from __future__ import annotations

import argparse
import json
import math

from imgassets.errors import ImgassetsError

EXIT_USAGE = 2


class UsageError(ImgassetsError):
    """Bad usage or configuration: printed as ``imgassets: error: ...`` with exit code 2."""


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def finite_float(value: str) -> float:
    """A finite number (``nan`` and ``inf`` refused: they would compare as a silent 0 or forever)."""
    number = float(value)
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return number


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {value}")
    return number


def emit(as_json: bool, record: object, text: str) -> None:
    """Print a command's result on stdout: ``record`` as indented JSON (``--json``), else ``text``."""
    print(json.dumps(record, indent=2) if as_json else text)
