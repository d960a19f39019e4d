"""``labeling_queue``: per scientist, their unlabelled images ranked by how much labeling them should
help, with the champion's boxes as pre-annotations (:mod:`imgassets.core.labeling.build`)."""

import dagster as dg
import pandas as pd

from imgassets.core.images.thumbnails import markdown_image, thumbnail
from imgassets.core.labeling.build import LabelingError, build_labeling_queue
from imgassets.core.labeling.queue import LabelingQueue
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import content_key
from imgassets.defs.metadata import ASSET_GROUP, Key, markdown_table
from imgassets.defs.partitions import scientists
from imgassets.defs.policies import LabelingPolicyResource
from imgassets.defs.resources import ObjectStoreResource
from imgassets.defs.training.assets import champion_model
from imgassets.defs.training.conditions import labeling_condition

PICTURES = 8
"""Top images of the queue shown as thumbnails with the champion's proposed boxes."""


def queue_pictures(store: ObjectStore, queue: LabelingQueue, limit: int = PICTURES) -> str:
    """Markdown thumbnails of the first ``limit`` queued images (read from the store by content
    hash), each with the champion's pre-annotations drawn and captioned with class and confidence."""
    parts = []
    for entry in queue.entries[:limit]:
        boxes = [(f"{b['class_name']} {b['confidence']:.2f}", b["x_center"], b["y_center"], b["width"], b["height"])
                 for b in entry["prelabels"]]
        caption = f"#{entry['rank']} {entry['path']} (uncertainty {entry['uncertainty']:.2f})"
        parts.append(f"**{caption}**\n\n" + markdown_image(caption, thumbnail(store.get_bytes(content_key(entry["sha256"])),
                                                                               predicted=boxes)))
    return "\n\n".join(parts) or "no image queued"


@dg.asset(partitions_def=scientists, group_name=ASSET_GROUP, kinds={"json"}, deps=[champion_model],
          automation_condition=labeling_condition)
def labeling_queue(context: dg.AssetExecutionContext, object_store: ObjectStoreResource,
                   labeling_policy: LabelingPolicyResource, image_index: pd.DataFrame,
                   image_snapshot: dict) -> dg.Output[dict]:
    """The scientist's unlabelled images (never trained on) ranked for labeling: the champion's
    uncertainty on each with diversity over its embedding (one forward pass per image, once per
    champion), near-duplicates of labelled images and image-quality outliers set aside; the top
    images' pre-annotations (the champion's boxes) are what ``imgassets prelabel`` writes for a
    labeling tool. Stored at ``labeling/queues/<scientist>.json``; ``imgassets queue`` prints it."""
    store = object_store.get_store()
    try:
        built = build_labeling_queue(store, context.partition_key, image_snapshot["manifest_key"], image_index,
                                     labeling_policy.policy())
    except LabelingError as exc:
        raise dg.Failure(str(exc)) from None
    queue = built.queue
    if queue.note:
        context.log.info(queue.note)
    rows = [[e["rank"], e["path"], f"{e['score']:.3f}", f"{e['uncertainty']:.3f}", f"{e['diversity']:.3f}",
             len(e["prelabels"])] for e in queue.entries[:50]]
    value = {"scientist": queue.scientist, "key": built.key, "queued": len(queue.entries),
             "model_id": queue.model_id}
    return dg.Output(value, metadata={
        Key.UNLABELLED: queue.candidates,
        "queued": len(queue.entries),
        "set_aside": len(queue.set_aside),
        "strategy": queue.strategy,
        "champion_model_id": queue.model_id or "none yet",
        "predicted_now": built.predicted,
        "scores_reused": built.reused,
        "queue_key": built.key,
        "queue": markdown_table(["rank", "image", "score", "uncertainty", "diversity", "pre-labels"], rows)
        if rows else dg.MetadataValue.md("no unlabelled image to rank"),
        "set_aside_images": dg.MetadataValue.json(queue.set_aside[:50]),
        "top_images": dg.MetadataValue.md(queue_pictures(store, queue)),
    })
