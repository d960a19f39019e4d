"""The commands on versions: ``imgassets pull`` (a dataset version to local disk), ``diff`` (what
changed between two versions), ``retract`` (take images out of every later dataset) and ``gc``
(delete what no retained version needs)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from imgassets import settings
from imgassets.cli.home import (
    open_instance,
    open_store,
    refuse_inside_shared_roots,
)
from imgassets.cli.usage import UsageError, emit, finite_float, positive_int


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
    refuse_inside_shared_roots(home_dir, [("DEST", args.dest), ("the cache", cache)])
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
    emit(args.json, summary, f"dataset {result.dataset_id}: {result.images} images in {args.dest} "
                             f"({result.downloaded} downloaded, {result.cache_hits} from cache; {result.hardlinked} "
                             f"hardlinked, {result.copied} copied); train with data={result.data_yaml}")
    if result.repaired:
        print(f"imgassets: warning: {len(result.repaired)} object(s) in {store.describe()} no longer matched their "
              f"SHA-256 and were replaced by the verified copies in the cache: {', '.join(result.repaired[:5])}"
              f"{' ...' if len(result.repaired) > 5 else ''}", file=sys.stderr)
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


def add_version_commands(sub: argparse._SubParsersAction) -> None:
    """The ``pull``, ``diff``, ``retract`` and ``gc`` sub-commands."""
    pull = sub.add_parser("pull", help="download one dataset version into DEST (Ultralytics layout) through the cache")
    pull.add_argument("dataset", metavar="DATASET_ID|latest|latest~N")
    pull.add_argument("dest", type=Path, metavar="DEST")
    pull.add_argument("--home", type=Path, help=f"imgassets home (default: ${settings.HOME_ENV}, else ~/.imgassets)")
    pull.add_argument("--cache", type=Path, help="content-addressed cache (default: <home>/cache)")
    pull.add_argument("--workers", type=positive_int, default=8, help="parallel downloads (default 8)")
    pull.add_argument("--verify", action="store_true", help="re-hash every cached object instead of trusting verified ones, and read every object in the "
                           "store too (a damaged one is replaced by its verified cached copy)")
    pull.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
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
