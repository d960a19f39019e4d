"""Exact and near-duplicate images, and the groups that must share a split.

* Exact duplicates: equal SHA-256.
* Near-duplicates: perceptual hashes (``imagehash.phash``, 64 bits, on the displayed frame) at a
  Hamming distance of at most :data:`NEAR_DUPLICATE_DISTANCE`. Candidate pairs are found by
  banding: the 64 bits are cut into 8 bands of 8 bits, and by the pigeonhole principle two hashes
  within distance 7 share at least one band exactly, so only images sharing a band are compared.
* Groups: connected components of both relations (union-find). A group goes to one split whole.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable

from PIL import Image

NEAR_DUPLICATE_DISTANCE = 6
BANDS = 8


def perceptual_hash(image: Image.Image) -> str:
    """16 hex digits: the 64-bit DCT perceptual hash of ``image`` (already in its displayed frame).
    ``imagehash`` (and the ``scipy.fftpack`` it loads) is imported here, not with the module: a
    dataset pull groups duplicates by their stored hashes and never pays the 0.5 s import; the
    image index imports both up front, so its pool workers start warm."""
    import imagehash

    return str(imagehash.phash(image))


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex perceptual hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def near_duplicate_pairs(phashes: dict[Hashable, str], max_distance: int = NEAR_DUPLICATE_DISTANCE) -> list[tuple]:
    """``(key_a, key_b, distance)`` for every pair within ``max_distance`` (at most 7), keys sorted."""
    if max_distance >= BANDS:
        raise ValueError(f"max_distance must be below {BANDS} for banded search")
    buckets: dict[tuple[int, str], list] = defaultdict(list)
    for key, value in phashes.items():
        for band in range(BANDS):
            buckets[(band, value[band * 2:band * 2 + 2])].append(key)
    pairs: dict[tuple, int] = {}
    for members in buckets.values():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                pair = (a, b) if str(a) < str(b) else (b, a)
                if pair not in pairs:
                    distance = hamming(phashes[a], phashes[b])
                    if distance <= max_distance:
                        pairs[pair] = distance
    return sorted((a, b, d) for (a, b), d in pairs.items())


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
