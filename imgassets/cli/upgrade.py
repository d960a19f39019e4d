"""``python -m imgassets.cli.upgrade [--home HOME]``: seal the records of a store made before records
were sealed (:mod:`imgassets.core.store.sealed`), once, on a store the operator trusts; prints the
keys sealed. Exit 0; 2 for a home without a store (as every command)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgassets.cli.home import open_store
from imgassets.cli.usage import EXIT_USAGE, UsageError
from imgassets.core.store.sealed import seal_unsealed


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, seal the home's unsealed records, print what was sealed; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m imgassets.cli.upgrade", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="imgassets home (default: $IMGASSETS_HOME, else ~/.imgassets)")
    args = parser.parse_args(argv)
    try:
        store, _ = open_store(args.home)
    except UsageError as exc:
        print(f"imgassets: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sealed = seal_unsealed(store)
    for key in sealed:
        print(f"sealed {key}")
    print(f"{len(sealed)} record(s) sealed in {store.describe()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
