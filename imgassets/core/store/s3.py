"""Object store on S3 / MinIO, built on the ``minio`` client.

Same behaviour as :class:`imgassets.core.store.local.LocalObjectStore` (the contract of :mod:`imgassets.core.store.base`), plus:

* the bucket is created when missing, for the deployments that write (an error names endpoint and
  bucket when the credentials may not create it); a reader (``create_bucket=False``: ``pull``,
  ``lineage``, ``models``) is refused with :class:`S3BucketError` instead, so a mistyped bucket
  name is reported, never created;
* ``sha256`` given to ``put_*`` is stored as user metadata ``x-amz-meta-sha256`` and every read of
  such an object is verified against it (content-addressed keys are also verified by their name);
* files larger than ``part_size`` go up as multipart uploads (the client does it);
* one connection pool, sized to ``max_connections`` (give it the upload thread count), with
  retries and exponential backoff on connection errors and HTTP 500/502/503/504;
* bounded waits: :data:`CONNECT_TIMEOUT_S` to connect, :data:`READ_TIMEOUT_S` for each response,
  ``retries`` more attempts (default 2), so a frozen endpoint fails one request after at most
  (1 + retries) x (connect + read) seconds plus backoff: about 105 s with the defaults;
* errors become :class:`ObjectStoreError` subclasses with the endpoint and bucket in the message
  (unreachable endpoint, bad credentials, access denied, missing bucket). The secret key is never
  part of a message, a ``repr`` or ``describe()``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.error import S3Error

from imgassets.core.store.atomic import atomic_path
from imgassets.core.store.base import (
    FRESH_ENOUGH_S,
    IntegrityError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStat,
    ObjectStoreError,
    verify_sha256,
)
from imgassets.core.store.hashing import sha256_file
from imgassets.core.store.keys import sha256_of_key

T = TypeVar("T")
SHA256_META = "x-amz-meta-sha256"
DEFAULT_PART_SIZE = 16 * 1024 * 1024
BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}


CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
"""Seconds to wait for a response (each attempt): a part of :data:`DEFAULT_PART_SIZE` must go up
within it, about 0.5 MB/s at the slowest."""

DEFAULT_UPLOAD_WORKERS = 8
"""Upload threads, and pooled connections, of the S3 store a Dagster deployment configures
without ``upload_workers`` (:mod:`imgassets.defs.resources`)."""


class S3ConnectionError(ObjectStoreError):
    """The endpoint cannot be reached."""


class S3CredentialsError(ObjectStoreError):
    """The access key or secret key is wrong."""


class S3AccessDeniedError(ObjectStoreError):
    """The credentials are valid but may not do this."""


class S3BucketError(ObjectStoreError):
    """The bucket is missing and cannot be created."""


class S3ObjectStore:
    """Objects in ``bucket`` at ``endpoint`` (``host:port``), over HTTP or HTTPS (``secure``)."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *, secure: bool = False,
                 region: str | None = None, max_connections: int = 16, retries: int = 2,
                 part_size: int = DEFAULT_PART_SIZE, create_bucket: bool = True, read_timeout: float = READ_TIMEOUT_S):
        self.endpoint = endpoint
        self.bucket = bucket
        self.upload_workers = max_connections  # one upload thread per pooled connection
        self.secure = secure
        self.part_size = part_size
        self.retries, self.read_timeout = retries, read_timeout
        http = urllib3.PoolManager(
            maxsize=max_connections, block=True,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=read_timeout),
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504],
                                  allowed_methods=None, raise_on_status=False),
        )
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
                             http_client=http)
        if create_bucket:
            self._ensure_bucket()
        elif not self._call("check the bucket", lambda: self._client.bucket_exists(self.bucket)):
            raise S3BucketError(f"{self.describe()}: bucket {self.bucket} does not exist (check IMGASSETS_S3_BUCKET)")

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.describe()!r})"

    def describe(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"S3 bucket {self.bucket} at {scheme}://{self.endpoint}"

    # -- error translation --------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T], key: str | None = None) -> T:
        try:
            return fn()
        except S3Error as exc:
            raise self._translate(what, exc.code, exc.message, key) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            reason = getattr(exc, "reason", None) or exc
            attempts = 1 + self.retries
            if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
                raise S3ConnectionError(f"{self.describe()}: endpoint did not answer within {self.read_timeout:g} s "
                                        f"(the read timeout, {attempts} attempts) while trying to {what}") from None
            if isinstance(reason, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
                    reason, urllib3.exceptions.NewConnectionError):  # urllib3 derives "refused" from the timeout
                raise S3ConnectionError(f"{self.describe()}: endpoint did not accept a connection within "
                                        f"{CONNECT_TIMEOUT_S} s ({attempts} attempts) while trying to {what}") from None
            raise S3ConnectionError(f"{self.describe()}: endpoint unreachable while trying to {what}: "
                                    f"{type(reason).__name__}") from None

    def _translate(self, what: str, code: str | None, message: str | None, key: str | None) -> ObjectStoreError:
        where = f"{self.describe()}: cannot {what}"
        if code in ("NoSuchKey", "NoSuchObject"):
            return ObjectNotFoundError(f"{key} not found in {self.describe()}")
        if code in BAD_CREDENTIALS:
            return S3CredentialsError(f"{where}: bad credentials (the access key or secret key is wrong; {code})")
        if code == "AccessDenied":
            return S3AccessDeniedError(f"{where}: access denied for these credentials")
        if code == "NoSuchBucket":
            return S3BucketError(f"{where}: bucket {self.bucket} does not exist")
        return ObjectStoreError(f"{where}: {code}: {message}")

    def _ensure_bucket(self) -> None:
        if self._call("check the bucket", lambda: self._client.bucket_exists(self.bucket)):
            return
        try:
            self._call("create the missing bucket", lambda: self._client.make_bucket(self.bucket))
        except S3AccessDeniedError:
            raise S3BucketError(f"{self.describe()}: bucket {self.bucket} does not exist and these credentials "
                                "may not create it") from None

    # -- interface ----------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
            return True
        except ObjectNotFoundError:
            return False

    def stat(self, key: str) -> ObjectStat:
        result = self._call(f"stat {key}", lambda: self._client.stat_object(self.bucket, key), key)
        return ObjectStat(key=key, size=int(result.size),
                          modified=result.last_modified.timestamp() if result.last_modified else 0.0)

    def _expected_sha(self, key: str, headers) -> str | None:
        return (headers or {}).get(SHA256_META) or sha256_of_key(key)

    def put_bytes(self, key: str, data: bytes, sha256: str | None = None) -> None:
        metadata = {"sha256": sha256} if sha256 else None
        self._call(f"put {key}", lambda: self._client.put_object(
            self.bucket, key, io.BytesIO(data), len(data), metadata=metadata, part_size=self.part_size,
            num_parallel_uploads=1))

    def put_file(self, key: str, path: str | Path, sha256: str | None = None) -> None:
        metadata = {"sha256": sha256} if sha256 else None
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} does not exist")
        self._call(f"put {key}", lambda: self._client.fput_object(
            self.bucket, key, str(path), metadata=metadata, part_size=self.part_size, num_parallel_uploads=1))

    def get_bytes(self, key: str) -> bytes:
        def read() -> tuple[bytes, dict]:
            response = self._client.get_object(self.bucket, key)
            try:
                return response.read(), dict(response.headers)
            finally:
                response.close()
                response.release_conn()

        data, headers = self._call(f"get {key}", read, key)
        headers = {k.lower(): v for k, v in headers.items()}
        return verify_sha256(self.describe(), key, data, self._expected_sha(key, headers))

    def get_file(self, key: str, dest: str | Path) -> None:
        """Download to ``dest`` atomically, verified; a corrupt download is removed, never kept."""
        with atomic_path(dest) as tmp:
            try:
                stat = self._call(f"get {key}", lambda: self._client.fget_object(
                    self.bucket, key, tmp, tmp_file_path=tmp + ".part"), key)
            finally:
                Path(tmp + ".part").unlink(missing_ok=True)
            metadata = {k.lower(): v for k, v in (stat.metadata or {}).items()}
            expected = self._expected_sha(key, metadata)
            if expected is not None and sha256_file(tmp) != expected:
                raise IntegrityError(f"{key} in {self.describe()}: downloaded content does not match SHA-256 {expected[:12]}…")

    def list_keys(self, prefix: str) -> Iterator[str]:
        objects = self._call(f"list {prefix}", lambda: list(self._client.list_objects(self.bucket, prefix=prefix, recursive=True)))
        yield from sorted(o.object_name for o in objects)

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """One paginated listing (ListObjectsV2, 1000 keys a page) under ``prefix``."""
        objects = self._call(f"list {prefix}", lambda: [
            ObjectInfo(o.object_name, int(o.size or 0), o.last_modified.timestamp() if o.last_modified else 0.0)
            for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)])
        yield from sorted(objects, key=lambda o: o.key)

    def touch(self, key: str, fresh_enough_s: float = FRESH_ENOUGH_S) -> bool:
        """A HEAD; for an object older than ``fresh_enough_s``, a server-side copy onto itself with
        its own user metadata (S3 has no other way to renew ``Last-Modified``; no byte travels)."""
        try:
            info = self._call(f"stat {key}", lambda: self._client.stat_object(self.bucket, key), key)
        except ObjectNotFoundError:
            return False
        return self._freshen(key, info, fresh_enough_s)

    def reuse(self, key: str, sha256: str) -> bool:
        try:
            info = self._call(f"stat {key}", lambda: self._client.stat_object(self.bucket, key), key)
        except ObjectNotFoundError:
            return False
        recorded = {k.lower(): v for k, v in (info.metadata or {}).items()}.get(SHA256_META)
        return recorded in (None, sha256) and self._freshen(key, info, FRESH_ENOUGH_S)

    def _freshen(self, key: str, info, fresh_enough_s: float) -> bool:
        """:meth:`touch` once the object's HEAD ``info`` is known."""
        modified = info.last_modified.timestamp() if info.last_modified else 0.0
        if time.time() - modified >= fresh_enough_s:
            metadata = {k[len("x-amz-meta-"):]: v for k, v in (info.metadata or {}).items()
                        if k.lower().startswith("x-amz-meta-")}
            try:
                self._call(f"touch {key}", lambda: self._client.copy_object(
                    self.bucket, key, CopySource(self.bucket, key), metadata=metadata or None,
                    metadata_directive=REPLACE), key)
            except ObjectNotFoundError:  # deleted between the HEAD and the copy
                return False
        return True

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", lambda: self._client.remove_object(self.bucket, key), key)
