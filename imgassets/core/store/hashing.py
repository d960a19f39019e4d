"""Content hashes: SHA-256 over bytes and files, and canonical JSON text for hashing JSON-able values."""

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


def canonical_json(payload: Any) -> str:
    """``payload`` as JSON text independent of dict key order and whitespace: sorted keys, no
    spaces, ASCII only (``\\u`` escapes), ``str()`` of values JSON cannot hold, floats at ``repr``
    precision (equal values, equal text). Hashed as the header of a manifest id
    (:func:`imgassets.core.versioning.manifest.manifest_id`)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
