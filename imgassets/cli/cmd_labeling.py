"""The commands on labeling: ``imgassets queue`` (what to label next, per scientist), ``prelabel``
(the queued images with the champion's boxes, in a format a labeling tool imports) and ``label
push`` (the queue into a Label Studio project)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imgassets import settings
from imgassets.cli.home import open_store, refuse_inside_shared_roots
from imgassets.cli.usage import UsageError, emit, positive_int


def _queues(store, scientist: str | None) -> list:
    """The stored queues of ``scientist`` (a :class:`~imgassets.core.labeling.build.LabelingError`,
    exit 1, when it has none), or of every scientist that has one (by name)."""
    from imgassets.core.labeling.build import read_labeling_queue
    from imgassets.core.store.keys import LABELING_QUEUES_PREFIX

    if scientist:
        return [read_labeling_queue(store, scientist)]
    names = sorted(k[len(LABELING_QUEUES_PREFIX):-len(".json")] for k in store.list_keys(LABELING_QUEUES_PREFIX)
                   if k.endswith(".json"))
    return [read_labeling_queue(store, name) for name in names]


def command_queue(args: argparse.Namespace) -> int:
    store, _ = open_store(args.home)
    queues = _queues(store, args.scientist)
    if args.json:
        records = [q.to_record() for q in queues]
        for record in records:
            record["entries"] = record["entries"][:args.top] if args.top else record["entries"]
        print(json.dumps(records if not args.scientist else records[0], indent=2))
        return 0
    if not queues:
        print("no labeling queue yet: `imgassets run` ranks the unlabelled images of every scientist that has some")
    for queue in queues:
        by = f"champion {queue.model_id}" if queue.model_id else "nobody (no champion yet)"
        print(f"{queue.scientist}: {queue.candidates} unlabelled image(s), {len(queue.entries)} queued by "
              f"{queue.strategy} ({by}), {len(queue.set_aside)} set aside")
        if queue.note:
            print(f"  {queue.note}")
        for entry in queue.entries[:args.top or None]:
            proposed = ", ".join(f"{b['class_name']} {b['confidence']:.2f}" for b in entry["prelabels"][:4]) or "no box"
            more = f" (+{len(entry['prelabels']) - 4})" if len(entry["prelabels"]) > 4 else ""
            print(f"  {entry['rank']:>4}  {entry['path']}  score {entry['score']:.3f}  uncertainty "
                  f"{entry['uncertainty']:.3f}  diversity {entry['diversity']:.3f}  champion sees: {proposed}{more}")
        for aside in queue.set_aside[:args.top or None]:
            print(f"  set aside  {aside['path']}: {aside['reason']}")
    return 0


def command_prelabel(args: argparse.Namespace) -> int:
    from imgassets.core.labeling.exports import ExportError, write_prelabels
    from imgassets.core.labeling.provenance import record_prelabels

    store, home_dir = open_store(args.home)
    refuse_inside_shared_roots(home_dir, [("DEST", args.dest)])
    queue = _queues(store, args.scientist)[0]
    if args.top:
        queue.entries = queue.entries[:args.top]
    try:
        written = write_prelabels(store, queue, args.format, args.dest, args.image_url)
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    record_prelabels(store, queue)  # what comes back is compared with what was handed out
    boxes = sum(len(e["prelabels"]) for e in queue.entries)
    summary = {"scientist": queue.scientist, "format": args.format, "dest": str(args.dest), "images": len(queue.entries),
               "prelabels": boxes, "model_id": queue.model_id, "files": [str(p) for p in written[len(queue.entries):]]}
    emit(args.json, summary, f"{len(queue.entries)} queued image(s) of {queue.scientist} with {boxes} pre-annotation(s) "
                             f"from {'champion ' + queue.model_id if queue.model_id else 'no champion'} -> {args.dest} "
                             f"({', '.join(summary['files'])})")
    return 0


def command_label(args: argparse.Namespace) -> int:
    from imgassets.core.labeling.label_studio_client import LabelStudioClient, push_queue

    url = args.url or settings.label_studio_url()
    if not url:
        raise UsageError(f"no Label Studio server: give --url or set ${settings.LABEL_STUDIO_URL_ENV}")
    token = settings.label_studio_token()
    store, _ = open_store(args.home)
    queue = _queues(store, args.scientist)[0]
    if args.top:
        queue.entries = queue.entries[:args.top]
    pushed = push_queue(LabelStudioClient(url, token), store, queue)
    summary = {"scientist": queue.scientist, "url": url, "project": pushed.project,
               "project_created": pushed.project_created, "created": len(pushed.created),
               "updated": len(pushed.updated), "unchanged": len(pushed.unchanged), "model_id": queue.model_id}
    emit(args.json, summary, f"{queue.scientist}: project {pushed.project} at {url} "
                             f"({'created' if pushed.project_created else 'found'}): {len(pushed.created)} task(s) created, "
                             f"{len(pushed.updated)} given the champion's new pre-annotations, {len(pushed.unchanged)} "
                             f"unchanged. Export the project as JSON into {queue.scientist}'s folder when labelled: the "
                             "next run reads the annotations")
    return 0


def add_labeling_commands(sub: argparse._SubParsersAction) -> None:
    """The ``queue`` and ``prelabel`` sub-commands."""
    from imgassets.core.labeling.exports import FORMATS, IMAGES

    home_help = f"imgassets home (default: ${settings.HOME_ENV}, else ~/.imgassets)"
    queue = sub.add_parser("queue", help="what to label next: each scientist's unlabelled images ranked by the "
                           "champion's uncertainty and diversity")
    queue.add_argument("--scientist", help="one scientist (default: every scientist with a queue)")
    queue.add_argument("--top", type=positive_int, help="show the first N images")
    queue.add_argument("--home", type=Path, help=home_help)
    queue.add_argument("--json", action="store_true")
    prelabel = sub.add_parser("prelabel", help="write a scientist's queued images with the champion's boxes as "
                              "pre-annotations a labeling tool imports (never into the shared drive)")
    prelabel.add_argument("dest", metavar="DEST", type=Path, help="folder to write (outside the shared drive)")
    prelabel.add_argument("--scientist", required=True)
    prelabel.add_argument("--format", choices=FORMATS, required=True)
    prelabel.add_argument("--top", type=positive_int, help="only the first N images of the queue")
    prelabel.add_argument("--image-url", default=f"{IMAGES}/",
                          help="label-studio: prefix of each task's image URL before the image's path "
                               f"(default {IMAGES}/, relative to DEST; e.g. /data/local-files/?d=prelabels/{IMAGES}/)")
    prelabel.add_argument("--home", type=Path, help=home_help)
    prelabel.add_argument("--json", action="store_true")
    label = sub.add_parser("label", help="talk to a labeling tool: push a scientist's queue to Label Studio")
    actions = label.add_subparsers(dest="action", required=True)
    push = actions.add_parser("push", help="create or update the scientist's Label Studio project with the queued "
                              f"images and the champion's pre-annotations (token: ${settings.LABEL_STUDIO_TOKEN_ENV})")
    push.add_argument("--scientist", required=True)
    push.add_argument("--url", help=f"the server, http://host:port (default ${settings.LABEL_STUDIO_URL_ENV})")
    push.add_argument("--top", type=positive_int, help="only the first N images of the queue")
    push.add_argument("--home", type=Path, help=home_help)
    push.add_argument("--json", action="store_true")
