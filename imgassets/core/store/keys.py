"""Every object-store key imgassets writes or reads, built here and nowhere else.

| key | what |
|---|---|
| ``objects/sha256/<2 hex>/<64 hex>`` | an image (or, in move mode, a label file) by its content hash |
| ``snapshots/<scientist>/<snapshot_id>.parquet`` | a snapshot manifest |
| ``snapshots/<scientist>/<snapshot_id>.report.json`` | its quality report |
| ``datasets/<dataset_id>/manifest.parquet`` | a dataset manifest |
| ``datasets/<dataset_id>/data.yaml`` | the dataset's Ultralytics ``data.yaml`` |
| ``datasets/<dataset_id>/near_duplicates.parquet`` | the near-duplicate pairs its merge found |
| ``lineage/<2 hex>.parquet`` | the lineage index: manifest rows by the content hash's first two hex digits |
| ``refs/datasets/latest`` | the id of the dataset the last ``training_dataset`` built |
| ``refs/models/champion`` | the champion: the model a deployment serves, with the benchmark scores that won it |
| ``refs/log/datasets/<stamp>-<dataset_id>`` | the log of datasets built, one object each (``<stamp>``: 20-digit UTC ns) |
| ``refs/log/snapshots/<scientist>/<stamp>-<snapshot_id>`` | the log of a scientist's snapshots |
| ``refs/departed/<scientist>`` | since when the scientist's folder is missing from the drive |
| ``retractions/<retraction_id>.json`` | a retraction: content hashes (or a scientist) taken out of every later dataset, with the reason |
| ``registries/<sha256>.yaml`` | a class registry a dataset used, by the hash of its text |
| ``models/<dataset_id>/<model_id>/<file>`` | ``best.pt``, ``last.pt``, ``results.csv``, ``args.yaml``, ``model.json``, ``evaluation.parquet``, ``benchmark.json`` |
| ``labeling/queues/<scientist>.json`` | the scientist's latest labeling queue: unlabelled images ranked, with the champion's pre-annotations |
| ``labeling/prelabels/<scientist>.json`` | the pre-annotations handed to a labeling tool for the scientist's images, by content hash, with the champion that proposed them |
| ``labeling/scores/<model_id>/<scientist>.parquet`` | the champion's scores of the scientist's unlabelled images (boxes, uncertainty, embedding), by content hash |
| ``reviews/<scientist>.json`` | the latest model-assisted label review of the scientist's held-out images |
| ``archive/<scientist>/<snapshot_id>.json`` | move mode: the files removed from the drive |
| ``listings/<scientist>/<fingerprint>.zlib`` | the sensor's listing of a folder state, for the run it launched |
| ``indexes/<scientist>.parquet``, ``label_tables/<scientist>.parquet`` | tables kept for the next run |
| ``dagster/<asset path>/<partition>.parquet``, ``dagster/pickles/...`` | Dagster's stored values (production) |

A ``model_id`` is the Dagster run id of the training run. Names and ids are used as they are (a
scientist name is a folder name, at most 200 bytes; ids are hex).
"""

from __future__ import annotations

CONTENT_PREFIX = "objects/sha256"
SNAPSHOTS_PREFIX = "snapshots/"
DATASETS_PREFIX = "datasets/"
MODELS_PREFIX = "models/"
LATEST_DATASET_REF = "refs/datasets/latest"
CHAMPION_REF = "refs/models/champion"
LINEAGE_PREFIX = "lineage/"
LOG_PREFIX = "refs/log/"
DATASET_LOG_PREFIX = "refs/log/datasets/"
SNAPSHOT_LOG_PREFIX = "refs/log/snapshots/"
DEPARTED_PREFIX = "refs/departed/"
RETRACTIONS_PREFIX = "retractions/"
REGISTRIES_PREFIX = "registries/"
REVIEWS_PREFIX = "reviews/"
LABELING_PREFIX = "labeling/"
LABELING_QUEUES_PREFIX = "labeling/queues/"
ARCHIVE_PREFIX = "archive/"
IMAGE_INDEX_TABLES = "indexes"
LABEL_TABLES = "label_tables"
DAGSTER_PREFIX = "dagster"
DAGSTER_PICKLES_PREFIX = "dagster/pickles"
UNPARTITIONED = "__unpartitioned__"
MODEL_RECORD = "model.json"
EVALUATION = "evaluation.parquet"
BENCHMARK = "benchmark.json"
"""A model's benchmark scores, the champion's on the same images, and the promotion decision."""


def content_key(sha256: str) -> str:
    """Content-addressed key of an object: ``objects/sha256/<first 2 hex>/<64 hex>``. Raises
    ``ValueError`` for anything but 64 characters."""
    if len(sha256) != 64:
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return f"{CONTENT_PREFIX}/{sha256[:2]}/{sha256}"


def sha256_of_key(key: str) -> str | None:
    """The SHA-256 a content-addressed key names (:func:`content_key`), else ``None``."""
    if key.startswith(CONTENT_PREFIX + "/"):
        name = key.rsplit("/", 1)[-1]
        return name if len(name) == 64 else None
    return None


def snapshot_manifest_key(scientist: str, snapshot_id: str) -> str:
    """``snapshots/<scientist>/<snapshot_id>.parquet``."""
    return f"{SNAPSHOTS_PREFIX}{scientist}/{snapshot_id}.parquet"


def snapshot_of_key(key: str) -> tuple[str, str] | None:
    """``(scientist, snapshot_id)`` of a snapshot manifest key (:func:`snapshot_manifest_key`);
    ``None`` for any other key, a snapshot's companions (``.report.json``, ``.capture.parquet``)
    included."""
    if not key.startswith(SNAPSHOTS_PREFIX):
        return None
    scientist, _, name = key[len(SNAPSHOTS_PREFIX):].rpartition("/")
    snapshot_id, dot, extension = name.partition(".")
    return (scientist, snapshot_id) if scientist and dot and extension == "parquet" else None


def version_of_key(key: str) -> tuple[str, str] | None:
    """``(scientist, snapshot_id)`` of any key of a snapshot (its manifest and its companions,
    ``snapshots/<scientist>/<snapshot_id>.<anything>``), ``("", dataset_id)`` of any key under
    ``datasets/<dataset_id>/``; ``None`` for any other key."""
    if key.startswith(SNAPSHOTS_PREFIX):
        scientist, _, name = key[len(SNAPSHOTS_PREFIX):].rpartition("/")
        return (scientist, name.split(".", 1)[0]) if scientist else None
    if key.startswith(DATASETS_PREFIX):
        dataset_id, slash, _ = key[len(DATASETS_PREFIX):].partition("/")
        return ("", dataset_id) if slash else None
    return None


def model_dataset_of_key(key: str) -> str | None:
    """The dataset id of a model's file key (:func:`model_file_key`), else ``None``."""
    if not key.startswith(MODELS_PREFIX):
        return None
    dataset_id, slash, _ = key[len(MODELS_PREFIX):].partition("/")
    return dataset_id if slash else None


def log_scientist(prefix: str) -> str | None:
    """The scientist of a snapshot log prefix (:func:`snapshot_log_prefix`), else ``None``."""
    return prefix[len(SNAPSHOT_LOG_PREFIX):-1] if prefix.startswith(SNAPSHOT_LOG_PREFIX) else None


def snapshot_report_key(scientist: str, snapshot_id: str) -> str:
    """``snapshots/<scientist>/<snapshot_id>.report.json``: the quality report beside the manifest."""
    return f"{SNAPSHOTS_PREFIX}{scientist}/{snapshot_id}.report.json"


def snapshot_capture_key(scientist: str, snapshot_id: str) -> str:
    """Key of the EXIF capture facts of a snapshot's images (:mod:`imgassets.core.versioning.sequences`)."""
    return f"{SNAPSHOTS_PREFIX}{scientist}/{snapshot_id}.capture.parquet"


def dataset_sequences_key(dataset_id: str) -> str:
    """Key of the sequence links (bursts, sessions) a dataset's splits kept together."""
    return f"{DATASETS_PREFIX}{dataset_id}/sequences.parquet"


def dataset_manifest_key(dataset_id: str) -> str:
    """``datasets/<dataset_id>/manifest.parquet``."""
    return f"{DATASETS_PREFIX}{dataset_id}/manifest.parquet"


def dataset_data_yaml_key(dataset_id: str) -> str:
    """``datasets/<dataset_id>/data.yaml``."""
    return f"{DATASETS_PREFIX}{dataset_id}/data.yaml"


def lineage_shard_key(prefix: str) -> str:
    """``lineage/<prefix>.parquet``: the lineage index's shard of content hashes starting with ``prefix``."""
    return f"{LINEAGE_PREFIX}{prefix}.parquet"


def dataset_near_duplicates_key(dataset_id: str) -> str:
    """``datasets/<dataset_id>/near_duplicates.parquet``: the near-duplicate pairs the merge found."""
    return f"{DATASETS_PREFIX}{dataset_id}/near_duplicates.parquet"


def model_prefix(dataset_id: str, model_id: str) -> str:
    """``models/<dataset_id>/<model_id>``: where one trained model's files live."""
    return f"{MODELS_PREFIX}{dataset_id}/{model_id}"


def model_file_key(dataset_id: str, model_id: str, name: str) -> str:
    """``models/<dataset_id>/<model_id>/<name>`` (``best.pt``, :data:`MODEL_RECORD`, :data:`EVALUATION`...)."""
    return f"{model_prefix(dataset_id, model_id)}/{name}"


def review_key(scientist: str) -> str:
    """``reviews/<scientist>.json``: the latest model-assisted label review of the scientist's labels."""
    return f"{REVIEWS_PREFIX}{scientist}.json"


def labeling_queue_key(scientist: str) -> str:
    """``labeling/queues/<scientist>.json``: the scientist's latest labeling queue (a sealed record)."""
    return f"{LABELING_QUEUES_PREFIX}{scientist}.json"


def labeling_prelabels_key(scientist: str) -> str:
    """``labeling/prelabels/<scientist>.json``: the pre-annotations handed out for the scientist's images (sealed)."""
    return f"{LABELING_PREFIX}prelabels/{scientist}.json"


def labeling_scores_key(model_id: str, scientist: str) -> str:
    """``labeling/scores/<model_id>/<scientist>.parquet``: the champion ``model_id``'s scores of the
    scientist's unlabelled images."""
    return f"{LABELING_PREFIX}scores/{model_id}/{scientist}.parquet"


def archive_log_key(scientist: str, snapshot_id: str) -> str:
    """``archive/<scientist>/<snapshot_id>.json``: the files move mode removed for a snapshot."""
    return f"{ARCHIVE_PREFIX}{scientist}/{snapshot_id}.json"


def listings_prefix(scientist: str) -> str:
    """``listings/<scientist>/``: where the scientist's folder listings are kept."""
    return f"listings/{scientist}/"


def listing_key(scientist: str, fingerprint: str) -> str:
    """``listings/<scientist>/<fingerprint>.zlib``: the listing of one folder state."""
    return f"{listings_prefix(scientist)}{fingerprint}.zlib"


def kept_table_key(kind: str, scientist: str) -> str:
    """``<kind>/<scientist>.parquet``, ``kind`` :data:`IMAGE_INDEX_TABLES` or :data:`LABEL_TABLES`."""
    return f"{kind}/{scientist}.parquet"


def dagster_value_key(asset_path: list[str], partition: str | None) -> str:
    """``dagster/<asset path>/<partition or __unpartitioned__>.parquet``: a stored asset value."""
    return f"{DAGSTER_PREFIX}/{'/'.join(asset_path)}/{partition or UNPARTITIONED}.parquet"


def snapshot_log_prefix(scientist: str) -> str:
    """``refs/log/snapshots/<scientist>/``: the log of the scientist's snapshots."""
    return f"{SNAPSHOT_LOG_PREFIX}{scientist}/"


def log_entry_key(prefix: str, stamp_ns: int, version_id: str) -> str:
    """``<prefix><20-digit stamp>-<id>``: one entry of a version log (sorts by time)."""
    return f"{prefix}{stamp_ns:020d}-{version_id}"


def log_entry(key: str) -> tuple[str, str] | None:
    """``(log prefix, version id)`` of a version-log entry key (:func:`log_entry_key`), e.g.
    ``("refs/log/snapshots/ana/", "0a1b...")``; ``None`` for any other key."""
    if not key.startswith(LOG_PREFIX):
        return None
    prefix, _, name = key.rpartition("/")
    stamp, dash, version_id = name.partition("-")
    return (prefix + "/", version_id) if dash and stamp.isdigit() else None


def retraction_key(retraction_id: str) -> str:
    """``retractions/<retraction_id>.json``."""
    return f"{RETRACTIONS_PREFIX}{retraction_id}.json"


def class_registry_key(digest: str) -> str:
    """``registries/<sha256>.yaml``: a class registry, by the SHA-256 of its text."""
    return f"{REGISTRIES_PREFIX}{digest}.yaml"


def departed_key(scientist: str) -> str:
    """``refs/departed/<scientist>``: since when the scientist's folder is missing from the shared drive."""
    return f"{DEPARTED_PREFIX}{scientist}"
