"""Exact and near-duplicate images, and the groups that must share a split.

* Exact duplicates: equal SHA-256.
* Near-duplicates: perceptual hashes (``imagehash.phash``, 64 bits, on the displayed frame) at a
  Hamming distance of at most :data:`NEAR_DUPLICATE_DISTANCE`, found by multi-index hashing
  (Norouzi, Punjani and Fleet, "Fast search in Hamming space with multi-index hashing", CVPR 2012)
  on faiss's binary hash index: the 64 bits are cut into :data:`SUBSTRINGS` substrings of 16 bits,
  each the key of one ``IndexBinaryHash``; two hashes within distance ``r`` differ in at most
  ``r // 4`` bits of some substring (pigeonhole), so probing each substring with every flip of up
  to that many bits finds every pair, and each candidate is checked on all 64 bits: exact, with
  work that grows with the bucket sizes, not with the square of the images. (faiss's own
  ``IndexBinaryMultiHash`` does the same but keeps a visited set the size of the index per query:
  quadratic, measured in ``docs/benchmarks.md``.)
* Groups: connected components of both relations (union-find). A group goes to one split whole.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
from PIL import Image

NEAR_DUPLICATE_DISTANCE = 6
SUBSTRINGS = 4
"""Substrings of the multi-index hash (16 bits each, 65,536 buckets a substring)."""
MAX_SEARCH_DISTANCE = 11
"""Largest distance searched (probing each substring with up to two flipped bits)."""


def perceptual_hash(image: Image.Image) -> str:
    """16 hex digits: the 64-bit DCT perceptual hash of ``image`` (already in its displayed frame).
    ``imagehash`` (and the ``scipy.fftpack`` it loads) is imported here, not with the module: a
    dataset pull groups duplicates by their stored hashes and never pays the 0.5 s import; the
    image index imports both up front, so its pool workers start warm."""
    import imagehash

    # The hex of the bits in row-major order, first bit most significant: what str() of the
    # ImageHash gives, without its 64 Python-level str() calls.
    return np.packbits(imagehash.phash(image).hash).tobytes().hex()


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex perceptual hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _codes(hashes: list[str]) -> np.ndarray:
    """Hex perceptual hashes as an ``(n, 8)`` uint8 array. Raises ``ValueError`` for a hash that is
    not 16 hex digits."""
    try:
        codes = np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint8)
    except ValueError:
        raise ValueError("perceptual hashes must be 16 hex digits") from None
    if codes.size != 8 * len(hashes):
        raise ValueError("perceptual hashes must be 16 hex digits")
    return codes.reshape(len(hashes), 8)


def _search(targets: np.ndarray, queries: np.ndarray, max_distance: int) -> np.ndarray:
    """Rows ``(query, target, distance)`` (positions in the two code arrays) of every query within
    ``max_distance`` bits of a target, each once, by multi-index hashing (module docstring)."""
    if not 0 <= max_distance <= MAX_SEARCH_DISTANCE:
        raise ValueError(f"max_distance must be between 0 and {MAX_SEARCH_DISTANCE}, got {max_distance}")
    if not len(targets) or not len(queries):
        return np.zeros((0, 3), dtype=np.int64)
    import faiss

    found_pairs = []
    for substring in range(SUBSTRINGS):  # one hash index per substring: the bytes rotated to put it first
        shift = -substring * 8 // SUBSTRINGS
        index = faiss.IndexBinaryHash(64, 64 // SUBSTRINGS)  # hashes the first 16 bits
        index.nflip = max_distance // SUBSTRINGS
        index.add(np.ascontiguousarray(np.roll(targets, shift, axis=1)))
        limits, distances, found = index.range_search(np.ascontiguousarray(np.roll(queries, shift, axis=1)),
                                                      max_distance + 1)  # distance < radius
        query = np.repeat(np.arange(len(queries)), np.diff(limits.astype(np.int64)))
        found_pairs.append(np.stack([query, found, distances.astype(np.int64)], axis=1))
    return np.unique(np.concatenate(found_pairs), axis=0)  # a pair found through several substrings


def near_duplicate_pairs(phashes: dict[Hashable, str], max_distance: int = NEAR_DUPLICATE_DISTANCE) -> list[tuple]:
    """``(key_a, key_b, distance)`` for every pair of ``phashes`` (key -> 16 hex digits) within
    ``max_distance`` bits (at most :data:`MAX_SEARCH_DISTANCE`), each pair once with its keys in
    ``str`` order, the list sorted. Exact (see the module docstring). Raises ``ValueError`` for a
    larger distance or a hash that is not 16 hex digits."""
    keys = list(phashes)
    codes = _codes([phashes[k] for k in keys])
    found = _search(codes, codes, max_distance)
    found = found[found[:, 1] > found[:, 0]]  # each pair once (and not an image with itself)
    pairs = []
    for q, t, d in found.tolist():
        a, b = keys[q], keys[t]
        pairs.append((a, b, d) if str(a) < str(b) else (b, a, d))
    return sorted(pairs)


def cross_pairs(first: dict[Hashable, str], second: dict[Hashable, str],
                max_distance: int = NEAR_DUPLICATE_DISTANCE) -> list[tuple]:
    """Like :func:`near_duplicate_pairs`, but only the pairs with one key from ``first`` and one
    from ``second`` (each key -> 16 hex digits): ``(key_a, key_b, distance)`` in ``str`` order,
    sorted. The index is built on the smaller set and probed with the other, so the cost follows
    the two sets, never their product. Exact; raises ``ValueError`` as :func:`near_duplicate_pairs`."""
    small, large = (first, second) if len(first) <= len(second) else (second, first)
    small_keys, large_keys = list(small), list(large)
    found = _search(_codes([small[k] for k in small_keys]), _codes([large[k] for k in large_keys]), max_distance)
    pairs = []
    for q, t, d in found.tolist():
        a, b = large_keys[q], small_keys[t]
        if a != b:
            pairs.append((a, b, d) if str(a) < str(b) else (b, a, d))
    return sorted(set(pairs))


def groups(keys: Iterable[Hashable], linked: Iterable[tuple]) -> dict[Hashable, Hashable]:
    """Union-find: key -> representative (the smallest key of its component, by ``str``)."""
    parent = {k: k for k in keys}

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b, *_ in linked:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb, key=str)] = min(ra, rb, key=str)
    return {k: find(k) for k in parent}


def duplicate_report(items: list[tuple[str, str, str | None]], max_distance: int = NEAR_DUPLICATE_DISTANCE) -> list[tuple[str, str]]:
    """``(path, reason)`` for every image that duplicates an earlier one (by path) among
    ``items`` = ``(path, sha256, phash)``: exact copies first, then near-duplicates."""
    first_of: dict[str, str] = {}
    report: list[tuple[str, str]] = []
    for path, sha, _ in sorted(items):
        if sha in first_of:
            report.append((path, f"exact duplicate of {first_of[sha]} (same SHA-256)"))
        else:
            first_of[sha] = path
    unique = {path: phash for path, sha, phash in sorted(items) if phash and first_of.get(sha) == path}
    for a, b, distance in near_duplicate_pairs(unique, max_distance):
        report.append((b, f"near-duplicate of {a} (perceptual hash distance {distance})"))
    return report
