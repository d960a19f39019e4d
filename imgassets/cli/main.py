"""Command line: ``imgassets run`` (materialize the whole graph once), ``imgassets pull`` (a dataset
version to local disk), ``imgassets lineage`` (which snapshots, datasets and models include an
image), ``imgassets models``, ``imgassets diff`` (what changed between two versions),
``imgassets retract`` (take images out of every later dataset), ``imgassets gc`` (delete what no
retained version needs), ``imgassets queue`` (what to label next), ``imgassets prelabel`` (the
queued images with the champion's boxes for a labeling tool) and ``imgassets ui`` (the Dagster UI).

One module per command group: :mod:`imgassets.cli.cmd_run`, :mod:`imgassets.cli.cmd_versions`,
:mod:`imgassets.cli.cmd_models`, :mod:`imgassets.cli.cmd_labeling`; the home, instance and store they share in :mod:`imgassets.cli.home`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from imgassets import settings
from imgassets.cli.cmd_labeling import add_labeling_commands, command_label, command_prelabel, command_queue
from imgassets.cli.cmd_models import add_model_commands, command_lineage, command_models, command_pull_model
from imgassets.cli.cmd_run import add_run_commands, command_run, command_ui
from imgassets.cli.cmd_versions import add_version_commands, command_diff, command_gc, command_pull, command_retract
from imgassets.cli.usage import EXIT_USAGE, UsageError
from imgassets.errors import ImgassetsError

DESCRIPTION = ("Turn the images on a shared drive into validated, versioned, traceable YOLO datasets and models: "
               "one Dagster asset graph from each scientist's folder to the champion model.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgassets", description=DESCRIPTION,
                                     epilog="Exit codes of run: 0 everything materialized and every blocking check "
                                            "passed; 1 a blocking check (or a failing step) stopped part of the graph; "
                                            "2 bad usage or configuration.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--shared-root", type=Path, help="shared drive root, one folder per scientist "
                        f"(default: ${settings.SHARED_ROOT_ENV}, else a demo drive built offline under the home)")
    common.add_argument("--home", type=Path, help=f"where the object store and Dagster instance live "
                        f"(default: ${settings.HOME_ENV}, else ~/.imgassets)")
    add_run_commands(sub, common)
    add_version_commands(sub)
    add_model_commands(sub)
    add_labeling_commands(sub)
    return parser


EXIT_BROKEN_PIPE = 141
"""Exit code when the reader of stdout closed it early (128 + SIGPIPE, as a shell reports it)."""


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return its exit code. A :class:`UsageError` is exit 2;
    any other :class:`imgassets.errors.ImgassetsError` (a store that fails, a manifest refused,
    a setting that cannot work...) is exit 1; both print one line ``imgassets: error: ...`` on
    stderr, naming the file, key, endpoint or setting, and no traceback."""
    try:
        parser = build_parser()  # reads the settings whose values the help shows as defaults
    except ValueError as exc:  # a setting that is not a (finite) number, named by settings
        print(f"imgassets: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    try:
        commands = {"run": command_run, "pull": command_pull, "pull-model": command_pull_model,
                    "lineage": command_lineage, "models": command_models, "diff": command_diff,
                    "retract": command_retract, "gc": command_gc, "ui": command_ui, "queue": command_queue,
                    "prelabel": command_prelabel, "label": command_label}
        return commands[args.command](args)
    except BrokenPipeError:  # `imgassets gc --dry-run | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_BROKEN_PIPE
    except (UsageError, settings.SettingsError) as exc:  # a setting read when the definitions load
        print(f"imgassets: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImgassetsError as exc:
        print(f"imgassets: error: {exc}", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``imgassets`` console script: :func:`main`, then :func:`imgassets.cli.exit.exit_now`
    so that native thread pools torn down at interpreter exit cannot turn a finished command into
    a SIGABRT."""
    from imgassets.cli.exit import exit_now

    try:
        code: object = main()
    except SystemExit as exc:  # argparse: --help, bad arguments
        code = exc.code
    exit_now(code)


if __name__ == "__main__":
    entry()
