"""Command line: ``imgassets run`` (materialize the whole graph once), ``imgassets pull`` (a dataset
version to local disk), ``imgassets lineage`` (which snapshots, datasets and models include an
image), ``imgassets models``, ``imgassets diff`` (what changed between two versions),
``imgassets retract`` (take images out of every later dataset), ``imgassets gc`` (delete what no
retained version needs) and ``imgassets ui`` (the Dagster UI).

One module per command group: :mod:`imgassets.cli.cmd_run`, :mod:`imgassets.cli.cmd_versions`,
:mod:`imgassets.cli.cmd_models`; the home, instance and store they share in :mod:`imgassets.cli.home`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from imgassets import settings
from imgassets.cli.cmd_models import command_lineage, command_models, command_pull_model
from imgassets.cli.cmd_run import command_run, command_ui
from imgassets.cli.cmd_versions import command_diff, command_gc, command_pull, command_retract
from imgassets.cli.usage import EXIT_USAGE, UsageError, finite_float, non_negative_int, positive_int
from imgassets.core.training.train import PRESETS, TrainingSettings
from imgassets.core.versioning.splits import DEFAULT_BENCHMARK_FRACTION, DEFAULT_VAL_FRACTION
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
    run = sub.add_parser("run", parents=[common], help="materialize the whole graph once and print a summary")
    run.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    run.add_argument("--verbose", action="store_true", help="also print Dagster's log on stderr, tracebacks included "
                     "(default: only progress and the findings or errors that stopped a run)")
    defaults, demo, smoke = TrainingSettings(), PRESETS["demo"], PRESETS["smoke"]  # each default defined once
    run.add_argument("--smoke", action="store_true", help=f"train {smoke.epochs} epoch at {smoke.imgsz} px: proves "
                     "the pipeline in seconds, trains nothing useful (flags given still apply)")
    run.add_argument("--epochs", type=positive_int, help=f"training epochs (default {defaults.epochs}, Ultralytics'; "
                     f"{demo.epochs} on the demo drive)")
    run.add_argument("--imgsz", type=positive_int, help=f"training image size in pixels (default {defaults.imgsz}; "
                     f"{demo.imgsz} on the demo drive)")
    run.add_argument("--batch", type=positive_int, help=f"images per batch (default {defaults.batch})")
    run.add_argument("--model", help=f"Ultralytics model .yaml or a local .pt weights file (default {defaults.model})")
    run.add_argument("--device", help="cpu, 0, 0,1 ... (default: GPU when torch sees one)")
    run.add_argument("--val-fraction", type=finite_float,
                     help=f"share of images in the val split (default {DEFAULT_VAL_FRACTION})")
    run.add_argument("--benchmark-fraction", type=finite_float,
                     help=f"share of new images held out in the benchmark split (default {DEFAULT_BENCHMARK_FRACTION}; "
                          "topped up to a few images per class)")
    run.add_argument("--resplit", action="store_true",
                     help="split this run's dataset afresh, without the previous version's splits (recovers a "
                          "dataset whose train split is empty; the benchmark changes with it)")
    run.add_argument("--workers", type=non_negative_int,
                     help=f"dataloader processes for training (default {defaults.workers}, capped at the CPUs)")
    run.add_argument("--patience", type=positive_int,
                     help=f"epochs without improvement before training stops early (default {defaults.patience})")
    run.add_argument("--archive-mode", choices=["copy", "move"], help="copy (default: sources only read) or move "
                     "(sources removed once verified in the store); default $IMGASSETS_ARCHIVE_MODE or copy")
    pull = sub.add_parser("pull", help="download one dataset version into DEST (Ultralytics layout) through the cache")
    pull.add_argument("dataset", metavar="DATASET_ID|latest|latest~N")
    pull.add_argument("dest", type=Path, metavar="DEST")
    pull.add_argument("--home", type=Path, help=f"imgassets home (default: ${settings.HOME_ENV}, else ~/.imgassets)")
    pull.add_argument("--cache", type=Path, help="content-addressed cache (default: <home>/cache)")
    pull.add_argument("--workers", type=positive_int, default=8, help="parallel downloads (default 8)")
    pull.add_argument("--verify", action="store_true", help="re-hash every cached object instead of trusting verified ones, and read every object in the "
                           "store too (a damaged one is replaced by its verified cached copy)")
    pull.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    lineage = sub.add_parser("lineage", help="which snapshots, datasets and models include an image")
    lineage.add_argument("image", metavar="PATH_OR_HASH", help="a file on disk, a SHA-256, or a path as recorded "
                         "(images/a.jpg or <scientist>/images/a.jpg)")
    lineage.add_argument("--home", type=Path, help=f"imgassets home (default: ${settings.HOME_ENV}, else ~/.imgassets)")
    lineage.add_argument("--json", action="store_true")
    pull_model = sub.add_parser("pull-model", help="fetch the weights a deployment serves (the champion, or a "
                                "model id), verified against their recorded SHA-256")
    pull_model.add_argument("model", metavar="champion|MODEL_ID")
    pull_model.add_argument("dest", metavar="DEST",
                            help="file to write (an existing folder, or a path ending in '/', gets <model_id>.pt)")
    pull_model.add_argument("--home", type=Path, help=f"imgassets home (default: ${settings.HOME_ENV}, else ~/.imgassets)")
    pull_model.add_argument("--json", action="store_true")
    models = sub.add_parser("models", help="list trained models with their metrics, benchmark scores and the "
                            "champion")
    models.add_argument("--home", type=Path, help=f"imgassets home (default: ${settings.HOME_ENV}, else ~/.imgassets)")
    models.add_argument("--json", action="store_true")
    home_help = f"imgassets home (default: ${settings.HOME_ENV}, else ~/.imgassets)"
    diff = sub.add_parser("diff", help="what changed between two dataset versions (or two snapshots of one scientist): "
                          "images added, removed, re-labelled, boxes by class, split changes, classes")
    diff.add_argument("a", metavar="A", help="a dataset id, 'latest' or 'latest~N' (with --scientist: a snapshot id)")
    diff.add_argument("b", metavar="B", nargs="?", default="latest", help="the same kinds (default: latest)")
    diff.add_argument("--scientist", help="compare two snapshots of this scientist instead of two datasets")
    diff.add_argument("--home", type=Path, help=home_help)
    diff.add_argument("--json", action="store_true")
    retract = sub.add_parser("retract", help="take images out of every dataset built from now on (by path, content "
                             "hash or whole snapshot), with a reason; lists the models trained on them")
    retract.add_argument("images", nargs="*", metavar="PATH_OR_HASH", help="as for 'imgassets lineage'")
    retract.add_argument("--snapshot", action="append", default=[], metavar="SCIENTIST/SNAPSHOT_ID",
                         help="retract every image of that snapshot (repeatable)")
    retract.add_argument("--reason", required=True, help="why (kept in the record, shown in lineage and the UI)")
    retract.add_argument("--home", type=Path, help=home_help)
    retract.add_argument("--json", action="store_true")
    gc = sub.add_parser("gc", help="delete the snapshots, datasets and content no retained version needs "
                        "(models, refs, the last N versions), after a grace period")
    gc_defaults = settings.gc_settings()
    gc.add_argument("--dry-run", action="store_true", help="list what would be deleted and how many bytes; delete nothing")
    gc.add_argument("--keep-datasets", type=positive_int, default=None,
                    help="last datasets kept besides those of models and refs (default $IMGASSETS_GC_KEEP_DATASETS "
                         f"or {int(gc_defaults['keep_datasets'])})")
    gc.add_argument("--keep-snapshots", type=positive_int, default=None,
                    help=f"snapshots kept per scientist (default {int(gc_defaults['keep_snapshots'])})")
    gc.add_argument("--grace-hours", type=finite_float, default=None,
                    help=f"never delete what is younger (default {gc_defaults['grace_hours']:g})")
    gc.add_argument("--home", type=Path, help=home_help)
    gc.add_argument("--json", action="store_true")
    ui = sub.add_parser("ui", parents=[common], help="open the Dagster UI (dagster dev) on this home")
    ui.add_argument("--port", type=int, default=3000)
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
                    "retract": command_retract, "gc": command_gc, "ui": command_ui}
        return commands[args.command](args)
    except BrokenPipeError:  # `imgassets gc --dry-run | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_BROKEN_PIPE
    except UsageError as exc:
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
