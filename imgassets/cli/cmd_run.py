"""``imgassets run`` (materialize the whole graph once and print a summary) and ``imgassets ui``
(the Dagster UI on this home).

Exit codes of ``run``: 0 everything materialized and every blocking check passed; 1 a blocking check
(or a failing step) stopped part of the graph; 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from pathlib import Path

from imgassets import settings
from imgassets.cli.home import (
    REPO_ROOT,
    check_class_registry,
    check_policy_settings,
    open_instance,
    prepare_environment,
)
from imgassets.cli.usage import UsageError, finite_float, non_negative_int, positive_int
from imgassets.core.training.train import PRESETS, TrainingSettings
from imgassets.core.versioning.splits import DEFAULT_BENCHMARK_FRACTION, DEFAULT_VAL_FRACTION


def training_preset(args: argparse.Namespace) -> TrainingSettings:
    """The training defaults of ``imgassets run``: ``smoke`` with ``--smoke``; else
    ``$IMGASSETS_TRAINING_PRESET`` when set; else ``demo`` on the demo drive (no shared root given)
    and Ultralytics' own on a real drive (:data:`imgassets.core.training.train.PRESETS`)."""
    from imgassets.core.training.train import TrainingConfigError, preset

    if args.smoke:
        name = "smoke"
    elif os.environ.get(settings.TRAINING_PRESET_ENV):
        name = settings.training_preset()
    else:
        name = "demo" if args.shared_root is None and not os.environ.get(settings.SHARED_ROOT_ENV) else "ultralytics"
    try:
        return preset(name)
    except TrainingConfigError as exc:
        raise UsageError(f"{settings.TRAINING_PRESET_ENV}: {exc}") from None


def command_run(args: argparse.Namespace) -> int:
    from imgassets.core.drive.walk import scientist_folders
    from imgassets.core.training.train import TrainingConfigError, check_model_source

    if args.val_fraction is not None and not 0 < args.val_fraction < 1:
        raise UsageError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    if args.benchmark_fraction is not None and not 0 <= args.benchmark_fraction < 1:
        raise UsageError(f"--benchmark-fraction must be at least 0 and below 1, got {args.benchmark_fraction}")
    given = {name: getattr(args, name) for name in ("model", "epochs", "imgsz", "batch", "device", "patience",
                                                 "workers")}
    training = training_preset(args).overridden(**given)
    try:
        check_model_source(training.model)
    except TrainingConfigError as exc:
        raise UsageError(str(exc)) from None
    check_class_registry()
    check_policy_settings()
    if not args.verbose:  # numpy's RuntimeWarnings (a constant image's zero variance) say nothing to a scientist
        warnings.simplefilter("ignore", RuntimeWarning)
    home_dir, root = prepare_environment(args.shared_root, args.home)
    if args.archive_mode:
        os.environ[settings.ARCHIVE_MODE_ENV] = args.archive_mode
    names, skipped = scientist_folders(root)
    for name, reason in skipped:
        print(f"imgassets: folder {name!r} skipped: {reason}", file=sys.stderr)
    if not names:
        raise UsageError(f"shared drive root {root} has no scientist folders (expected {root}/<scientist>/...)")

    os.environ.setdefault("YOLO_VERBOSE", "False")
    from imgassets.cli.run import materialize_all
    from imgassets.cli.summary import print_summary
    from imgassets.definitions import defs

    def progress(message: str) -> None:
        print(f"imgassets: {message}", file=sys.stderr, flush=True)

    from imgassets.cli.progress import shown_on_stderr

    with open_instance(Path(os.environ[settings.DAGSTER_HOME_ENV])) as instance, shown_on_stderr():
        summary = materialize_all(defs, instance, str(root), str(home_dir), names, training, progress,
                                  val_fraction=args.val_fraction, verbose=args.verbose,
                                  benchmark_fraction=args.benchmark_fraction, resplit=args.resplit)
    summary.skipped_folders = [{"folder": name, "reason": reason} for name, reason in skipped]
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print_summary(summary)
    return summary.exit_code


def command_ui(args: argparse.Namespace) -> int:
    if args.shared_root is None and not os.environ.get(settings.SHARED_ROOT_ENV):
        os.environ.setdefault(settings.TRAINING_PRESET_ENV, "demo")  # the automation trains what imgassets run would
    check_class_registry()
    check_policy_settings()
    prepare_environment(args.shared_root, args.home)
    workspace = REPO_ROOT / "workspace.yaml"
    # `dg dev`, as Dagster now recommends starting the UI and its daemon (`dagster dev` warns that it
    # is superseded), from this interpreter whether or not its environment is activated (on PATH)
    argv = [sys.executable, "-m", "dagster_dg_cli.cli", "dev", "-p", str(args.port)]
    if workspace.is_file():
        argv += ["-w", str(workspace)]
    else:
        argv += ["-m", "imgassets.definitions"]
    print(f"imgassets: DAGSTER_HOME={os.environ['DAGSTER_HOME']}; starting dg {' '.join(argv[3:])}", file=sys.stderr,
          flush=True)
    # From the instance's own folder: started where another dagster.yaml lies (this repository's),
    # Dagster would warn that that file is not used.
    os.chdir(os.environ["DAGSTER_HOME"])
    # An ignored signal stays ignored across exec, and dagster dev maps SIGTERM to whatever SIGINT
    # does: started by a parent that ignores SIGINT (a background job of a non-interactive shell),
    # it would ignore SIGTERM and never stop. Both back to their defaults before the exec.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
    os.execv(argv[0], argv)
    return 0


def add_run_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``run`` and ``ui`` sub-commands, with the ``common`` options (shared root, home)."""
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
    ui = sub.add_parser("ui", parents=[common], help="open the Dagster UI (dagster dev) on this home")
    ui.add_argument("--port", type=int, default=3000)
