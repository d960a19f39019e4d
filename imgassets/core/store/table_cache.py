"""Tables kept between runs for incremental work, in the object store as Parquet.

``indexes/<scientist>.parquet`` holds the scientist's last image index (unchanged files are not
read again) and ``label_tables/<scientist>.parquet`` the last label table (unchanged YOLO files are
not parsed again). Each is overwritten by the next run; losing one only costs a full rebuild.
"""

from __future__ import annotations

import io

import pandas as pd

from imgassets.core.store import keys
from imgassets.core.store.base import ObjectStore

IMAGE_INDEX = keys.IMAGE_INDEX_TABLES
LABEL_TABLE = keys.LABEL_TABLES


def load_cached_table(store: ObjectStore, kind: str, scientist: str) -> pd.DataFrame | None:
    """The scientist's kept table of ``kind``, or ``None`` on the first run."""
    key = keys.kept_table_key(kind, scientist)
    return pd.read_parquet(io.BytesIO(store.get_bytes(key))) if store.exists(key) else None


def save_cached_table(store: ObjectStore, kind: str, scientist: str, table: pd.DataFrame) -> None:
    """Keep ``table`` for the scientist's next run (replaces the previous one atomically)."""
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    store.put_bytes(keys.kept_table_key(kind, scientist), buffer.getvalue())
