"""The commands on models and lineage: ``imgassets lineage`` (which snapshots, datasets and models
include an image), ``models`` (trained models, scores, the champion) and ``pull-model`` (the
weights a deployment serves)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imgassets import settings
from imgassets.cli.home import (
    open_store,
)
from imgassets.cli.usage import UsageError, emit


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
        point = benchmark.get("operating_point")
        if point:
            at = point.get("benchmark") or {}
            reported = (f"; on the benchmark precision {at['precision']:.3f}, recall {at['recall']:.3f}"
                        if at else "")
            print(f"      operating point (chosen on val): confidence {point['confidence']}{reported}")
        regressed = (benchmark.get("analysis") or {}).get("regressed")
        if regressed:
            print(f"      slices worse than the champion: {', '.join(regressed)}")
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
    what = "champion" if pulled.champion else "model"
    emit(args.json, {"model_id": pulled.model_id, "dataset_id": pulled.dataset_id, "path": str(pulled.path),
                     "sha256": pulled.sha256, "champion": pulled.champion,
                     "operating_point": str(pulled.operating_point) if pulled.operating_point else None},
         f"{what} {pulled.model_id} (dataset {pulled.dataset_id}) -> {pulled.path} (sha256 {pulled.sha256}, verified)"
         + (f"; operating point -> {pulled.operating_point}" if pulled.operating_point else ""))
    return 0


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    """The ``lineage``, ``pull-model`` and ``models`` sub-commands."""
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
