"""Command line: ``imgassets run`` (materialize the whole graph once), ``imgassets pull`` (a dataset
version to local disk), ``imgassets lineage`` (which snapshots, datasets and models include an
image), ``imgassets models``, ``imgassets diff`` (what changed between two versions),
``imgassets retract`` (take images out of every later dataset), ``imgassets gc`` (delete what no
retained version needs) and ``imgassets ui`` (the Dagster UI).

Exit codes of ``run``: 0 everything materialized and every blocking check passed; 1 a blocking check
(or a failing step) stopped part of the graph; 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

from imgassets import settings
from imgassets.core.training.train import PRESETS, TrainingSettings
from imgassets.core.versioning.splits import DEFAULT_BENCHMARK_FRACTION, DEFAULT_VAL_FRACTION
from imgassets.errors import ImgassetsError

EXIT_USAGE = 2
DESCRIPTION = ("Turn the images on a shared drive into validated, versioned, traceable YOLO datasets and models: "
               "one Dagster asset graph from each scientist's folder to the champion model.")
REPO_ROOT = Path(__file__).resolve().parents[2]


class UsageError(ImgassetsError):
    """Bad usage or configuration: printed as ``imgassets: error: ...`` with exit code 2."""


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def _finite(value: str) -> float:
    """A finite number (``nan`` and ``inf`` refused: they would compare as a silent 0 or forever)."""
    number = float(value)
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {value}")
    return number


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
    run.add_argument("--epochs", type=_positive, help=f"training epochs (default {defaults.epochs}, Ultralytics'; "
                     f"{demo.epochs} on the demo drive)")
    run.add_argument("--imgsz", type=_positive, help=f"training image size in pixels (default {defaults.imgsz}; "
                     f"{demo.imgsz} on the demo drive)")
    run.add_argument("--batch", type=_positive, help=f"images per batch (default {defaults.batch})")
    run.add_argument("--model", help=f"Ultralytics model .yaml or a local .pt weights file (default {defaults.model})")
    run.add_argument("--device", help="cpu, 0, 0,1 ... (default: GPU when torch sees one)")
    run.add_argument("--val-fraction", type=_finite,
                     help=f"share of images in the val split (default {DEFAULT_VAL_FRACTION})")
    run.add_argument("--benchmark-fraction", type=_finite,
                     help=f"share of new images held out in the benchmark split (default {DEFAULT_BENCHMARK_FRACTION}; "
                          "topped up to a few images per class)")
    run.add_argument("--resplit", action="store_true",
                     help="split this run's dataset afresh, without the previous version's splits (recovers a "
                          "dataset whose train split is empty; the benchmark changes with it)")
    run.add_argument("--workers", type=_non_negative,
                     help=f"dataloader processes for training (default {defaults.workers}, capped at the CPUs)")
    run.add_argument("--patience", type=_positive,
                     help=f"epochs without improvement before training stops early (default {defaults.patience})")
    run.add_argument("--archive-mode", choices=["copy", "move"], help="copy (default: sources only read) or move "
                     "(sources removed once verified in the store); default $IMGASSETS_ARCHIVE_MODE or copy")
    pull = sub.add_parser("pull", help="download one dataset version into DEST (Ultralytics layout) through the cache")
    pull.add_argument("dataset", metavar="DATASET_ID|latest|latest~N")
    pull.add_argument("dest", type=Path, metavar="DEST")
    pull.add_argument("--home", type=Path, help=f"imgassets home (default: ${settings.HOME_ENV}, else ~/.imgassets)")
    pull.add_argument("--cache", type=Path, help="content-addressed cache (default: <home>/cache)")
    pull.add_argument("--workers", type=_positive, default=8, help="parallel downloads (default 8)")
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
    gc.add_argument("--keep-datasets", type=_positive, default=None,
                    help="last datasets kept besides those of models and refs (default $IMGASSETS_GC_KEEP_DATASETS "
                         f"or {int(gc_defaults['keep_datasets'])})")
    gc.add_argument("--keep-snapshots", type=_positive, default=None,
                    help=f"snapshots kept per scientist (default {int(gc_defaults['keep_snapshots'])})")
    gc.add_argument("--grace-hours", type=_finite, default=None,
                    help=f"never delete what is younger (default {gc_defaults['grace_hours']:g})")
    gc.add_argument("--home", type=Path, help=home_help)
    gc.add_argument("--json", action="store_true")
    ui = sub.add_parser("ui", parents=[common], help="open the Dagster UI (dagster dev) on this home")
    ui.add_argument("--port", type=int, default=3000)
    return parser


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_class_registry() -> None:
    """Validate ``$IMGASSETS_CLASS_REGISTRY`` once, before any run starts: a registry that cannot be
    used is one :class:`UsageError` (exit 2) naming the file, key and line, not a failure of every
    scientist's run."""
    from imgassets.core.labels.class_registry import ClassRegistryError, load_registry

    path = settings.class_registry_path()
    if path is not None:
        try:
            load_registry(path)
        except ClassRegistryError as exc:
            raise UsageError(f"class registry (${settings.CLASS_REGISTRY_ENV}): {exc}") from None


def recorded_shared_roots(home_dir: Path) -> list[Path]:
    """The shared drive roots ``home_dir`` has ingested (:func:`imgassets.settings.shared_roots_file`)."""
    try:
        text = settings.shared_roots_file(home_dir).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return []
    return [Path(line) for line in text.splitlines() if line.startswith("/")]


def record_shared_root(home_dir: Path, root: Path) -> None:
    """Add ``root`` (absolute, resolved) to the roots ``home_dir`` has ingested, once."""
    if root not in recorded_shared_roots(home_dir):
        try:
            home_dir.mkdir(parents=True, exist_ok=True)  # a production DAGSTER_HOME lives elsewhere
            with open(settings.shared_roots_file(home_dir), "a", encoding="utf-8", errors="surrogateescape") as handle:
                handle.write(f"{root}\n")
        except OSError as exc:
            raise UsageError(f"home {home_dir} is not writable: {exc.strerror or exc}") from None


def prepare_environment(shared_root: Path | None, home: Path | None, build_demo: bool = True) -> tuple[Path, Path]:
    """Resolve home and shared root, export them (and ``DAGSTER_HOME``) for the Dagster layer, write
    the instance's ``dagster.yaml`` when missing, and build the demo drive when no root is given.

    Every path is checked before anything is created: a home (or Dagster instance) inside the shared
    root, a shared root inside the home (other than the demo drive) or a missing shared root raise
    :class:`UsageError` with nothing written anywhere, so a refused command never leaves a folder in
    a scientist's drive (the sensor would see it as a change)."""
    home_dir = (home or settings.home()).expanduser().resolve()
    dagster_home = settings.dagster_home(home_dir)
    if shared_root is None and os.environ.get(settings.SHARED_ROOT_ENV):
        shared_root = Path(os.environ[settings.SHARED_ROOT_ENV])
    demo = shared_root is None
    root = settings.demo_drive(home_dir) if demo else shared_root.expanduser().resolve()
    if not demo:
        if not root.is_dir():
            raise UsageError(f"shared drive root {root} does not exist or is not a directory")
        for name, path in (("home", home_dir), ("Dagster instance (DAGSTER_HOME)", dagster_home.resolve())):
            if _inside(path, root):
                raise UsageError(f"{name} {path} must not be inside the shared drive root {root}: imgassets never "
                                 "writes into the shared drive, and it would be read as a scientist folder")
        if _inside(root, home_dir):
            raise UsageError(f"shared drive root {root} must not be inside the home {home_dir}: the object store's "
                             "folders would be read as scientists")
    try:
        dagster_home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=dagster_home):
            pass
    except OSError as exc:
        raise UsageError(f"home {home_dir} is not writable: {exc.strerror or exc}") from None
    record_shared_root(home_dir, root)
    if demo and build_demo:
        from imgassets.core.drive.demo import build_demo_drive

        build_demo_drive(root)
    os.environ[settings.HOME_ENV] = str(home_dir)
    os.environ[settings.SHARED_ROOT_ENV] = str(root)
    os.environ[settings.DAGSTER_HOME_ENV] = str(dagster_home)
    instance_yaml = dagster_home / "dagster.yaml"
    if not instance_yaml.exists():
        template = REPO_ROOT / "dagster.yaml"
        if template.is_file():
            shutil.copyfile(template, instance_yaml)
        else:
            instance_yaml.write_text("telemetry:\n  enabled: false\n")
    return home_dir, root


INSTANCE_LOCK_WAIT_S = 120
"""How long ``imgassets run`` waits for another process that is creating the same Dagster instance."""


@contextmanager
def open_instance(dagster_home: Path):
    """The Dagster instance at ``dagster_home``, created under an exclusive lock
    (``<dagster_home>/.imgassets-instance.lock``, ``flock``): two commands started at once on a
    fresh home would otherwise both create its SQLite databases and one fail on the schema
    version row. Waits up to :data:`INSTANCE_LOCK_WAIT_S` seconds for the other, then raises
    :class:`UsageError`."""
    import fcntl
    import time

    import dagster as dg

    with open(dagster_home / ".imgassets-instance.lock", "w") as lock:
        deadline = time.monotonic() + INSTANCE_LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UsageError(f"another process has been creating the Dagster instance at {dagster_home} "
                                     f"for {INSTANCE_LOCK_WAIT_S} s; try again when it is done") from None
                time.sleep(0.2)
        instance = dg.DagsterInstance.get()
        try:
            instance.get_runs(limit=1)  # every storage created and stamped while the lock is held
            instance.event_log_storage.get_concurrency_keys()
            fcntl.flock(lock, fcntl.LOCK_UN)
        except BaseException:
            instance.dispose()
            raise
    with instance:
        yield instance


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


def open_store(home: Path | None, create_bucket: bool = False):
    """The deployment's object store (``IMGASSETS_DEPLOYMENT``, read by :mod:`imgassets.settings`
    as the Dagster resources read it, without importing Dagster); ``home`` overrides
    ``IMGASSETS_HOME``. Returns (store, home directory). Raises :class:`UsageError` for an unknown
    deployment, a production one missing its endpoint or keys, a local home without a store, and an ``ObjectStoreError`` for a
    store that cannot be reached or, unless ``create_bucket``, a bucket that does not exist."""
    home_dir = (home or settings.home()).expanduser().resolve()
    os.environ[settings.HOME_ENV] = str(home_dir)
    try:
        name = settings.deployment()
        if name == "local":
            from imgassets.core.store.local import LocalObjectStore

            objects = settings.local_objects(home_dir)
            if not objects.is_dir():  # say so, rather than create an empty store in a mistyped home
                raise UsageError(f"home {home_dir} holds no object store ({objects} does not exist): run "
                                 f"'imgassets run --home {home_dir}' first, or name the right home with --home")
            return LocalObjectStore(objects), home_dir
        s3 = settings.s3_settings()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    access_key, secret_key = (os.environ.get(var) for var in (settings.S3_ACCESS_KEY_ENV, settings.S3_SECRET_KEY_ENV))
    if not (access_key and secret_key):
        raise UsageError(f"{settings.DEPLOYMENT_ENV}={name} needs {settings.S3_ACCESS_KEY_ENV} "
                         f"and {settings.S3_SECRET_KEY_ENV}")
    from imgassets.core.store.s3 import S3ObjectStore

    return S3ObjectStore(access_key=access_key, secret_key=secret_key, create_bucket=create_bucket, **s3), home_dir


def command_pull(args: argparse.Namespace) -> int:
    from imgassets.core.versioning.checkout import DestinationError
    from imgassets.core.versioning.dataset_store import DATASET_ID_PATTERN
    from imgassets.core.versioning.pull import pull_dataset
    from imgassets.core.versioning.refs import RELATIVE_REF

    if not RELATIVE_REF.match(args.dataset) and not DATASET_ID_PATTERN.match(args.dataset):
        raise UsageError(f"{args.dataset!r} is not a dataset id (16 hex digits, see 'imgassets models'), 'latest' "
                         "or 'latest~N'")
    store, home_dir = open_store(args.home)
    cache = args.cache or home_dir / "cache"
    roots = recorded_shared_roots(home_dir)  # the drive is only ever read, by every command
    if os.environ.get(settings.SHARED_ROOT_ENV):
        roots.append(settings.shared_root())
    for root in roots:
        for name, path in (("DEST", args.dest), ("the cache", cache)):
            if _inside(path.expanduser().resolve(), root):
                raise UsageError(f"{name} {path} is inside the shared drive root {root} (ingested by this home, or "
                                 f"${settings.SHARED_ROOT_ENV}): imgassets never writes into the shared drive")
    try:
        result = pull_dataset(store, args.dataset, args.dest, cache, args.workers,
                              args.verify, show_progress=sys.stderr.isatty())
    except DestinationError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # a full or read-only disk under DEST or the cache
        where = f" {exc.filename}" if exc.filename else ""
        print(f"imgassets: error: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    summary = {**{k: getattr(result, k) for k in result.__dataclass_fields__}, "data_yaml": str(result.data_yaml)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"dataset {result.dataset_id}: {result.images} images in {args.dest} "
              f"({result.downloaded} downloaded, {result.cache_hits} from cache; {result.hardlinked} hardlinked, "
              f"{result.copied} copied); train with data={result.data_yaml}")
    if result.repaired:
        print(f"imgassets: warning: {len(result.repaired)} object(s) in {store.describe()} no longer matched their "
              f"SHA-256 and were replaced by the verified copies in the cache: {', '.join(result.repaired[:5])}"
              f"{' ...' if len(result.repaired) > 5 else ''}", file=sys.stderr)
    return 0


def command_lineage(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from imgassets.cli.summary import format_metrics
    from imgassets.core.drive.paths import stored_path
    from imgassets.core.training.models import lineage, resolve_image

    store, _ = open_store(args.home)
    hashes = resolve_image(store, args.image)
    if not hashes:
        print(f"imgassets: {stored_path(args.image)} is in no snapshot (not a known path or content hash)",
              file=sys.stderr)
        return 1
    found = [lineage(store, sha) for sha in hashes]
    if args.json:
        print(json.dumps([asdict(f) for f in found], indent=2))
        return 0
    for item in found:
        print(f"image {item.sha256}")
        for retraction in item.retracted:
            print(f"  RETRACTED by {retraction['retraction_id']}: {retraction['reason']} (left out of every dataset "
                  "built since; the models below that trained on it should be retrained)")
        for s in item.snapshots:
            print(f"  snapshot {s['scientist']}/{s['snapshot_id']}: {s['path']}")
        for d in item.datasets:
            print(f"  dataset {d['dataset_id']} ({d['split']})")
        for m in item.models:
            print(f"  model {m['model_id']} on dataset {m['dataset_id']}: {format_metrics(m['metrics'])}  "
                  f"[{m['keys'].get('best.pt')}]")
    return 0


def command_models(args: argparse.Namespace) -> int:
    from imgassets.cli.summary import format_metrics
    from imgassets.core.training.models import list_models
    from imgassets.core.versioning.retraction import load_retractions, models_trained_on, shaped_by

    store, _ = open_store(args.home)
    records = list_models(store)
    retracted = load_retractions(store).hashes
    affected = {m["model_id"]: m for m in models_trained_on(store, retracted, records)}
    for record in records:
        shaped = affected.get(record["model_id"], {})
        record["retracted_images"], record["retracted_by_split"] = shaped.get("images", 0), shaped.get("by_split", {})
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for m in records:
        marker = "*" if m["champion"] else " "
        print(f"{marker} {m['created_at'][:19]}  model {m['model_id']}  dataset {m['dataset_id']}  {m['epochs']} "
              f"epoch(s) on {m['device']}  val: {format_metrics(m['metrics'])}  [{m['keys'].get('best.pt')}]")
        benchmark = m.get("benchmark") or {}
        if benchmark.get("challenger"):
            print(f"      benchmark ({benchmark['challenger']['images']} images): "
                  f"{format_metrics(benchmark['challenger']['overall'])}")
        champion = benchmark.get("champion") or {}
        if champion.get("scores"):
            print(f"      champion {champion['model_id']} on the same images: "
                  f"{format_metrics(champion['scores']['overall'])}")
        if benchmark.get("decision"):
            verdict = "promoted" if benchmark["decision"]["promoted"] else "not promoted"
            print(f"      {verdict}: {benchmark['decision']['reason']}")
        if m["retracted_images"]:
            print(f"      {shaped_by(m['retracted_by_split'], 'image(s) retracted since')}: retrain it")
    if records:
        print("* = champion (refs/models/champion: what 'imgassets pull-model champion' fetches)")
    if not records:
        print("no models yet")
    return 0


def command_pull_model(args: argparse.Namespace) -> int:
    from imgassets.core.training.models import ModelNotFoundError, pull_model

    store, _ = open_store(args.home)
    try:
        pulled = pull_model(store, args.model, args.dest)
    except ModelNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"model_id": pulled.model_id, "dataset_id": pulled.dataset_id, "path": str(pulled.path),
                          "sha256": pulled.sha256, "champion": pulled.champion}, indent=2))
    else:
        what = "champion" if pulled.champion else "model"
        print(f"{what} {pulled.model_id} (dataset {pulled.dataset_id}) -> {pulled.path} (sha256 {pulled.sha256}, verified)")
    return 0


def command_diff(args: argparse.Namespace) -> int:
    from imgassets.core.store.keys import dataset_manifest_key
    from imgassets.core.versioning.dataset_store import DATASET_ID_PATTERN
    from imgassets.core.versioning.diff import diff_datasets, diff_snapshots
    from imgassets.core.versioning.refs import RELATIVE_REF

    for ref in (args.a, args.b):
        if not RELATIVE_REF.match(ref) and not DATASET_ID_PATTERN.match(ref):
            what = "snapshot" if args.scientist else "dataset"
            raise UsageError(f"{ref!r} is not a {what} id (16 hex digits), 'latest' or 'latest~N'")
    store, _ = open_store(args.home)
    if args.scientist:
        _scientist_name(args.scientist, "--scientist")
        for ref in (args.a, args.b):
            _known_snapshot(store, args.scientist, ref)
        result = diff_snapshots(store, args.scientist, args.a, args.b)
    else:
        for ref in (args.a, args.b):
            if DATASET_ID_PATTERN.match(ref) and not store.exists(dataset_manifest_key(ref)):
                raise UsageError(f"no dataset {ref} in {store.describe()} (see 'imgassets models' for the datasets "
                                 "models were trained on, or use latest / latest~N)")
        result = diff_datasets(store, args.a, args.b)
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.text())
    return 0


def _scientist_name(name: str, option: str) -> str:
    """``name`` when it can be a scientist folder's name (one path component, not ``.``, ``..`` or
    hidden); else :class:`UsageError` naming ``option``."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        raise UsageError(f"{option}: {name!r} is not a scientist (the name of a folder in the shared drive)")
    return name


def _known_snapshot(store, scientist: str, ref: str) -> None:
    """Raise :class:`UsageError` when the snapshot id ``ref`` is not one of ``scientist``'s,
    naming the scientist it belongs to when there is one."""
    from imgassets.core.store.keys import SNAPSHOTS_PREFIX, snapshot_manifest_key, snapshot_of_key
    from imgassets.core.versioning.refs import SNAPSHOT_ID_PATTERN

    if not SNAPSHOT_ID_PATTERN.match(ref) or store.exists(snapshot_manifest_key(scientist, ref)):
        return
    owners = sorted({found[0] for key in store.list_keys(SNAPSHOTS_PREFIX)
                     if (found := snapshot_of_key(key)) and found[1] == ref})
    if owners:
        raise UsageError(f"snapshot {ref} is not one of {scientist}'s: it is {', '.join(owners)}'s "
                         f"(imgassets diff --scientist {owners[0]} ...)")
    raise UsageError(f"no scientist has a snapshot {ref} in {store.describe()}")


def command_retract(args: argparse.Namespace) -> int:
    from imgassets.core.drive.paths import stored_path
    from imgassets.core.store.keys import snapshot_manifest_key
    from imgassets.core.training.models import list_models, resolve_image
    from imgassets.core.versioning.lineage_index import manifests_holding
    from imgassets.core.versioning.refs import SNAPSHOT_ID_PATTERN
    from imgassets.core.versioning.retraction import RetractionError, models_trained_on, record_retraction, shaped_by
    from imgassets.core.versioning.snapshot import load_snapshot_table

    if not args.images and not args.snapshot:
        raise UsageError("name images (PATH_OR_HASH) or --snapshot SCIENTIST/SNAPSHOT_ID to retract")
    store, home_dir = open_store(args.home)
    hashes: set[str] = set()
    targets = []
    for image in args.images:
        found = [sha for sha in resolve_image(store, image) if manifests_holding(store, sha)]
        if not found:  # a hash no snapshot holds, or a file (anywhere) whose bytes no snapshot holds
            raise UsageError(f"{stored_path(image)} is in no snapshot (not a known path or content hash): nothing retracted")
        hashes.update(found)
        targets.append(stored_path(image))
    for snapshot in args.snapshot:
        scientist, _, snapshot_id = snapshot.partition("/")
        if not scientist or not snapshot_id:
            raise UsageError(f"--snapshot {snapshot!r}: expected SCIENTIST/SNAPSHOT_ID")
        _scientist_name(scientist, f"--snapshot {snapshot!r}")
        if not SNAPSHOT_ID_PATTERN.match(snapshot_id):
            raise UsageError(f"--snapshot {snapshot!r}: {snapshot_id!r} is not a snapshot id (16 hex digits)")
        if not store.exists(snapshot_manifest_key(scientist, snapshot_id)):
            raise UsageError(f"--snapshot {snapshot!r}: {scientist} has no such snapshot: nothing retracted")
        hashes.update(load_snapshot_table(store, snapshot_manifest_key(scientist, snapshot_id)).column("sha256").to_pylist())
        targets.append(f"snapshot {snapshot}")
    try:
        record = record_retraction(store, sorted(hashes), args.reason, targets)
    except RetractionError as exc:
        raise UsageError(str(exc)) from None
    affected = models_trained_on(store, set(record.hashes), list_models(store))
    materialized = _materialize_retractions(home_dir)
    if args.json:
        print(json.dumps({"retraction_id": record.retraction_id, "images": len(record.hashes), "reason": record.reason,
                          "models_to_retrain": affected, "asset_materialized": materialized}, indent=2))
        return 0
    print(f"retraction {record.retraction_id}: {len(record.hashes)} image(s) left out of every dataset built from now on "
          f"({record.reason})")
    for model in affected:
        star = " (the champion)" if model["champion"] else ""
        print(f"  model {model['model_id']}{star} on dataset {model['dataset_id']} "
              f"{shaped_by(model['by_split'], 'of them')}: retrain it")
    if not affected:
        print("  no model was trained on them")
    if not materialized:
        print("  the next 'imgassets run' (or the UI) records it as the retractions asset")
    return 0


def _materialize_retractions(home_dir: Path) -> bool:
    """Record the new retraction in the Dagster instance of the local home (the ``retractions``
    asset, so the UI and the automation see it). False when there is no local instance to use."""
    dagster_home = settings.dagster_home(home_dir)
    if settings.deployment() != "local" or not (dagster_home / "dagster.yaml").is_file():
        return False
    os.environ[settings.DAGSTER_HOME_ENV] = str(dagster_home)
    import dagster as dg

    from imgassets.cli.run import QUIET_LOGS
    from imgassets.definitions import defs

    with open_instance(dagster_home) as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("retractions")], raise_on_error=False, run_config=QUIET_LOGS)
    return result.success


def command_gc(args: argparse.Namespace) -> int:
    from imgassets.core.store.base import FRESH_ENOUGH_S
    from imgassets.core.versioning.gc import GarbageCollectionError, collect, plan_gc

    defaults = settings.gc_settings()
    keep_datasets = args.keep_datasets if args.keep_datasets is not None else int(defaults["keep_datasets"])
    keep_snapshots = args.keep_snapshots if args.keep_snapshots is not None else int(defaults["keep_snapshots"])
    grace = args.grace_hours if args.grace_hours is not None else defaults["grace_hours"]
    for name, value in (("--keep-datasets (IMGASSETS_GC_KEEP_DATASETS)", keep_datasets),
                        ("--keep-snapshots (IMGASSETS_GC_KEEP_SNAPSHOTS)", keep_snapshots)):
        if value < 1:
            raise UsageError(f"{name} must be 1 or more (the latest version is always kept), got {value}")
    if grace < 0:
        raise UsageError(f"--grace-hours must be 0 or more, got {grace:g}")
    if grace * 3600 < FRESH_ENOUGH_S:
        print(f"imgassets: warning: a grace period under {FRESH_ENOUGH_S / 3600:g} h does not protect a snapshot "
              "committing right now (it freshens only objects older than that): run it when no ingest runs",
              file=sys.stderr)
    store, _ = open_store(args.home)
    try:
        plan = plan_gc(store, keep_datasets, keep_snapshots, grace)
    except GarbageCollectionError as exc:
        print(f"imgassets: error: {exc}", file=sys.stderr)
        return 1
    report = {"dry_run": args.dry_run, "listed": plan.listed, "retained_datasets": plan.retained_datasets,
              "retained_snapshots": plan.retained_snapshots, "to_delete": plan.summary(),
              "bytes": plan.bytes, "spared_younger_than_grace": plan.spared_young}
    if not args.dry_run:
        result = collect(store, plan, grace)
        report.update(deleted=result.deleted, deleted_bytes=result.deleted_bytes,
                      spared_freshened=result.spared_freshened, lineage_rebuilt=result.lineage_rebuilt)
    if args.json:
        report["keys"] = [o.key for o in plan.delete]
        print(json.dumps(report, indent=2))
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    count = len(plan.delete) if args.dry_run else report["deleted"]
    size = plan.bytes if args.dry_run else report["deleted_bytes"]
    print(f"gc: listed {plan.listed} objects; kept {len(plan.retained_datasets)} dataset(s) and "
          f"{sum(len(v) for v in plan.retained_snapshots.values())} snapshot(s) of {len(plan.retained_snapshots)} "
          f"scientist(s); {verb} {count} object(s), {size / 2**20:.1f} MiB")
    for kind, counts in sorted(plan.summary().items()):
        print(f"  {kind}: {counts['objects']} object(s), {counts['bytes'] / 2**20:.1f} MiB")
    if args.dry_run:
        for info in plan.delete[:20]:
            print(f"  {info.key}")
        if len(plan.delete) > 20:
            print(f"  ... and {len(plan.delete) - 20} more (--json lists every key)")
    if plan.spared_young:
        print(f"  {plan.spared_young} unretained object(s) younger than {grace:g} h kept (the grace period)")
    if not args.dry_run and report["spared_freshened"]:
        print(f"  {report['spared_freshened']} object(s) reused by a commit during the collection kept")
    return 0


def command_ui(args: argparse.Namespace) -> int:
    if args.shared_root is None and not os.environ.get(settings.SHARED_ROOT_ENV):
        os.environ.setdefault(settings.TRAINING_PRESET_ENV, "demo")  # the automation trains what imgassets run would
    check_class_registry()
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
