"""Content hashes: SHA-256 over bytes, and a canonical hash over JSON-able records."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def sha256_bytes(data: bytes) -> str:
    """Return the lowercase hex SHA-256 (64 chars) of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str, chunk_size: int = 1 << 20) -> str:
    """Return the lowercase hex SHA-256 of the file at ``path``, read in ``chunk_size`` chunks.

    Raises ``OSError`` when the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_hash(payload: Any) -> str:
    """Hash a JSON-able value independently of dict key order and whitespace.

    Used for snapshot and dataset ids: the id names the *content* of a manifest, never the bytes of
    a Parquet file (whose footer carries writer versions). Floats are serialised by ``json`` with
    ``repr`` precision, so equal values give equal ids.
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return sha256_bytes(text.encode("ascii"))
