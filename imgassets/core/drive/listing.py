"""Folder listings: the sensor's stat walk of a scientist's folder, handed to the run it launches.

The sensor walks every folder on every tick to fingerprint it; the run it launches would walk the
same folder again to index it. Instead, when the sensor launches a run for fingerprint ``F`` it
stores the listing behind ``F``, and the run's image index reads that listing instead of walking:
the run indexes exactly the folder state that the sensor decided to ingest, and the tree is walked
once per change instead of twice. A listing is used by one run only (the sensor's run key
``<scientist>:<fingerprint>`` never launches the same folder state twice, and a re-execution walks
the folder), so that run deletes it once its index is kept (:func:`discard_listing`): listings do
not pile up. A run that fails before that leaves its listing behind (about 1 MB per 100,000 files)
until the sensor stores the folder's next listing (:func:`prune_listings`).

Format (the fingerprint text of :func:`imgassets.core.drive.walk.listing_text`): one record per file,
sorted by path, ``path NUL size NUL mtime_ns NUL inode NUL``, UTF-8 with ``surrogateescape`` for
undecodable names; stored zlib-compressed at ``listings/<scientist>/<fingerprint>.zlib``. The
fingerprint is the first 16 hex digits of the SHA-256 of the uncompressed text, so a listing is
self-verifying: :func:`decode_listing` refuses one whose text does not hash to its name.
"""

from __future__ import annotations

import hashlib
import operator
import zlib
from itertools import islice

import pyarrow as pa
import pyarrow.compute as pc

from imgassets.core.drive.walk import FINGERPRINT_LENGTH, FolderState, ListedFiles
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import listing_key, listings_prefix
from imgassets.errors import ImgassetsError

COMPRESSION_LEVEL = 1
"""zlib level: a 100,000-file listing is about 6 MB of text and 1 MB compressed at level 1."""


class ListingError(ImgassetsError, ValueError):
    """A stored listing that cannot be used; the message names the key and the reason."""


def encode_listing(state: FolderState) -> bytes:
    """The compressed listing text of ``state`` (a :func:`~imgassets.core.drive.walk.scan_folder` result)."""
    return zlib.compress(state.listing.encode("utf-8", "surrogateescape"), COMPRESSION_LEVEL)


def decode_listing(data: bytes, fingerprint: str, source: str) -> ListedFiles:
    """The files of a stored listing, as columns sorted by path. ``source`` names it in errors.
    The numbers are parsed by Arrow, column by column: no Python object per file but its path.

    Raises :class:`ListingError` when ``data`` does not decompress, its text does not hash to
    ``fingerprint``, it is not ``path NUL size NUL mtime_ns NUL inode NUL`` records, or its paths
    are not sorted and unique (what :func:`imgassets.core.drive.walk.scan_folder` writes).
    """
    try:
        raw = zlib.decompress(data)
    except zlib.error as exc:
        raise ListingError(f"{source}: not a zlib-compressed listing ({exc})") from None
    actual = hashlib.sha256(raw).hexdigest()[:FINGERPRINT_LENGTH]
    if actual != fingerprint:
        raise ListingError(f"{source}: listing hashes to {actual}, not to its fingerprint {fingerprint}")
    fields = raw.decode("utf-8", "surrogateescape").split("\0")
    try:
        if fields[-1] or (len(fields) - 1) % 4:
            raise ValueError
        numbers = [pc.cast(pa.array(fields[i::4], pa.string()), pa.int64()).to_numpy() for i in (1, 2, 3)]
    except (ValueError, pa.ArrowException):
        raise ListingError(f"{source}: not a sequence of 'path NUL size NUL mtime_ns NUL inode NUL' records") from None
    paths = fields[0:-1:4]
    if any(map(operator.ge, paths, islice(paths, 1, None))):
        raise ListingError(f"{source}: paths are not sorted, or one is listed twice")
    return ListedFiles(paths, *numbers)


def save_listing(store: ObjectStore, scientist: str, state: FolderState) -> str:
    """Store the listing of ``state`` (once: listings are immutable, named by content); its key."""
    key = listing_key(scientist, state.fingerprint)
    if not store.exists(key):
        store.put_bytes(key, encode_listing(state))
    return key


def prune_listings(store: ObjectStore, scientist: str, keep: str) -> int:
    """Delete the scientist's stored listings but ``keep`` (a key from :func:`save_listing`); return
    how many. The others are of earlier folder states: their runs used and deleted them already,
    failed before they could, or are still queued, and such a run walks the folder instead (a
    missing listing is walked). So a failed run's listing lasts until the folder's next change."""
    stale = [key for key in store.list_keys(listings_prefix(scientist)) if key != keep]
    for key in stale:
        store.delete(key)
    return len(stale)


def load_listing(store: ObjectStore, scientist: str, fingerprint: str) -> ListedFiles | None:
    """The stored listing of the scientist's folder at ``fingerprint``, or ``None`` when the store
    has none (a run launched by hand, or before listings were kept). Raises :class:`ListingError`
    for a listing that is corrupt (see :func:`decode_listing`)."""
    key = listing_key(scientist, fingerprint)
    if not store.exists(key):
        return None
    return decode_listing(store.get_bytes(key), fingerprint, f"{key} in {store.describe()}")


def discard_listing(store: ObjectStore, scientist: str, fingerprint: str) -> None:
    """Delete the stored listing of the scientist's folder at ``fingerprint`` once its run has
    indexed it (nothing happens when there is none)."""
    store.delete(listing_key(scientist, fingerprint))
