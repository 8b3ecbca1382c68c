"""The object store: each raw source payload as fetched, so a re-index never calls the platform.

A :class:`BlobStore` holds JSON documents under ``/``-separated keys, in a local folder
(:class:`LocalBlobStore`, the embedded default) or any S3-compatible bucket
(:class:`S3BlobStore`: AWS, MinIO, Ceph, R2...). Application code reaches it only through
:class:`TenantBlobs`, which composes every key as ``{company_id}/{source}/{document_id}.json``
from validated parts, so one company can neither name nor list another company's objects.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import string
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backend.errors import BadRequest, Unavailable
from backend.tenancy.company_id import validate_company_id

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "TenantBlobs",
    "decode_document_id",
    "encode_document_id",
]

T = TypeVar("T")

_SOURCE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
# Characters left as they are in a document id; everything else (".", "/", "%", spaces,
# non-ASCII...) is percent-encoded, so ".." or "a/b" can never become a path step.
_SAFE_ID_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_-")
# File systems cap a name at 255 bytes; keep room for ".json" and temporary suffixes.
_MAX_ENCODED_ID = 200
_SUFFIX: Final = ".json"
_S3_DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys per call.


@runtime_checkable
class BlobStore(Protocol):
    """JSON objects under ``/``-separated keys. Reached only through :class:`TenantBlobs`.

    Missing objects read as ``None``; deleting a missing object is not an error. Failures
    of the store itself raise :class:`backend.errors.Unavailable` (``blob_store_unavailable``).
    """

    async def put_json(self, key: str, value: Any) -> None: ...

    async def put_json_many(self, items: Sequence[tuple[str, Any]]) -> None:
        """Store several objects (key, value); each is written whole or not at all."""
        ...

    async def get_json(self, key: str) -> Any | None: ...

    async def delete(self, key: str) -> None: ...

    def list_keys(self, prefix: str) -> AsyncIterator[str]:
        """Every key starting with ``prefix``, in lexicographic order."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; return how many were deleted."""
        ...


def _check_store_key(key: str) -> str:
    """Defence in depth for raw keys: relative, no empty, ``.`` or ``..`` segments."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise BadRequest(f"invalid object key {key!r}", code="invalid_blob_key")
    if "\\" in key or "\x00" in key:
        raise BadRequest(f"invalid object key {key!r}", code="invalid_blob_key")
    return key


def _check_prefix(prefix: str) -> str:
    if prefix and (prefix.startswith("/") or ".." in prefix.split("/") or "\\" in prefix):
        raise BadRequest(f"invalid object prefix {prefix!r}", code="invalid_blob_key")
    return prefix


# --- Local folder ----------------------------------------------------------------------------


class LocalBlobStore:
    """Objects as files under ``root`` (``root/<key>``), written atomically.

    Blocking file work runs in worker threads so the event loop keeps serving requests.
    """

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root).expanduser().resolve()

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        path = (self._root / _check_store_key(key)).resolve()
        if not path.is_relative_to(self._root):
            raise BadRequest(f"invalid object key {key!r}", code="invalid_blob_key")
        return path

    async def put_json(self, key: str, value: Any) -> None:
        data = orjson.dumps(value)
        await asyncio.to_thread(self._write, self._path(key), data)

    async def put_json_many(self, items: Sequence[tuple[str, Any]]) -> None:
        # One worker thread for the whole batch: a page of one-line tickets is hundreds of
        # tiny files, where a thread hand-off and a path resolution on the event loop per
        # file cost more than the write itself.
        def write_all() -> None:
            for key, value in items:
                self._write(self._path(key), orjson.dumps(value))

        if items:
            await asyncio.to_thread(write_all)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a reader never sees half a payload, even if the process dies.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get_json(self, key: str) -> Any | None:
        path = self._path(key)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        return orjson.loads(data)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._remove, self._path(key))

    def _remove(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        """Remove directories left empty, up to (not including) the root."""
        while directory != self._root and directory.is_relative_to(self._root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _walk(self, prefix: str) -> list[str]:
        _check_prefix(prefix)
        # Start at the deepest directory the prefix names, then filter by the remainder.
        base = self._root / prefix.rpartition("/")[0] if "/" in prefix else self._root
        if not base.is_dir():
            return []
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                key = Path(dirpath, name).relative_to(self._root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    async def list_keys(self, prefix: str) -> AsyncIterator[str]:
        for key in await asyncio.to_thread(self._walk, prefix):
            yield key

    async def delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self._delete_prefix, prefix)

    def _delete_prefix(self, prefix: str) -> int:
        keys = self._walk(prefix)
        for key in keys:
            self._remove(self._root / key)
        return len(keys)


# --- S3 --------------------------------------------------------------------------------------


def _is_missing(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return code in ("NoSuchKey", "404", "NotFound")


class S3BlobStore:
    """Objects in an S3-compatible bucket, optionally under a key ``prefix``.

    boto3 is synchronous; every call runs in a worker thread (boto3 clients, unlike
    sessions, are thread-safe), so the event loop is never blocked on the network.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        *,
        page_size: int = 1000,
        delete_batch_size: int = _S3_DELETE_BATCH,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        if not 1 <= page_size <= 1000 or not 1 <= delete_batch_size <= _S3_DELETE_BATCH:
            raise ValueError("S3 pages and delete batches hold 1 to 1000 keys")
        self._page_size = page_size
        self._delete_batch_size = delete_batch_size
        self._client = client
        self._bucket = bucket
        prefix = prefix.strip("/")
        self._prefix = f"{_check_prefix(prefix)}/" if prefix else ""

    @classmethod
    def from_settings(
        cls,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> S3BlobStore:
        """Build a client for AWS (no endpoint) or any S3-compatible endpoint."""
        config = Config(
            region_name=region,
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 4, "mode": "standard"},
            # Path-style addressing works with MinIO, Ceph and loopback endpoints, where the
            # bucket cannot be a DNS sub-domain of the endpoint host.
            s3={"addressing_style": "path"} if endpoint_url else None,
            # botocore >= 1.36 sends CRC checksums on every upload by default; several
            # S3-compatible stores reject them, so only send them where S3 requires one.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
        return cls(client, bucket, prefix)

    async def _call(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except ClientError as exc:
            raise Unavailable(
                f"object store error: {exc.response.get('Error', {}).get('Code', 'unknown')}",
                code="blob_store_unavailable",
            ) from exc
        except BotoCoreError as exc:
            raise Unavailable("object store unreachable", code="blob_store_unavailable") from exc

    def _object_key(self, key: str) -> str:
        return self._prefix + _check_store_key(key)

    async def put_json_many(self, items: Sequence[tuple[str, Any]]) -> None:
        # S3 has no multi-object put: the objects go up concurrently instead.
        await asyncio.gather(*(self.put_json(key, value) for key, value in items))

    async def put_json(self, key: str, value: Any) -> None:
        body = orjson.dumps(value)
        object_key = self._object_key(key)
        await self._call(
            lambda: self._client.put_object(
                Bucket=self._bucket, Key=object_key, Body=body, ContentType="application/json"
            )
        )

    async def get_json(self, key: str) -> Any | None:
        object_key = self._object_key(key)

        def fetch() -> bytes | None:
            try:
                response = self._client.get_object(Bucket=self._bucket, Key=object_key)
            except ClientError as exc:
                if _is_missing(exc):
                    return None
                raise
            return response["Body"].read()

        data = await self._call(fetch)
        return None if data is None else orjson.loads(data)

    async def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        await self._call(lambda: self._client.delete_object(Bucket=self._bucket, Key=object_key))

    def _pages(self, prefix: str) -> Iterator[list[str]]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self._bucket,
            Prefix=self._prefix + prefix,
            PaginationConfig={"PageSize": self._page_size},
        )
        for page in pages:
            yield [item["Key"] for item in page.get("Contents", []) if "Key" in item]

    async def list_keys(self, prefix: str) -> AsyncIterator[str]:
        _check_prefix(prefix)
        pages = self._pages(prefix)
        sentinel: list[str] | None = None
        while True:
            page = await self._call(lambda: next(pages, sentinel))
            if page is None:
                return
            for object_key in page:
                yield object_key[len(self._prefix) :]

    def _delete_batch(self, object_keys: list[str]) -> list[Any]:
        response = self._client.delete_objects(
            Bucket=self._bucket,
            Delete={"Objects": [{"Key": key} for key in object_keys], "Quiet": True},
        )
        # DeleteObjects answers 200 even when some keys failed; the failures are listed.
        return list(response.get("Errors", []))

    async def delete_prefix(self, prefix: str) -> int:
        _check_prefix(prefix)
        keys = [self._prefix + key async for key in self.list_keys(prefix)]
        deleted = 0
        for start in range(0, len(keys), self._delete_batch_size):
            batch = keys[start : start + self._delete_batch_size]
            errors = await self._call(functools.partial(self._delete_batch, batch))
            if errors:
                raise Unavailable(
                    f"object store refused to delete {len(errors)} objects",
                    code="blob_store_unavailable",
                )
            deleted += len(batch)
        return deleted


# --- Tenant view -----------------------------------------------------------------------------


def encode_document_id(document_id: str) -> str:
    """Percent-encode every character outside ``[A-Za-z0-9_-]`` (UTF-8), reversibly.

    ``"../x"`` becomes ``"%2E%2E%2Fx"``: no document id can become a path step.
    """
    if not document_id:
        raise BadRequest("document id must not be empty", code="invalid_blob_key")
    encoded = "".join(
        char if char in _SAFE_ID_CHARS else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in document_id
    )
    if len(encoded) > _MAX_ENCODED_ID:
        raise BadRequest(
            f"document id is too long to store ({len(encoded)} > {_MAX_ENCODED_ID} encoded)",
            code="invalid_blob_key",
        )
    return encoded


def decode_document_id(encoded: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(encoded):
        if encoded[i] == "%":
            raw.append(int(encoded[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(encoded[i].encode())
            i += 1
    return raw.decode()


def _check_source(source: str) -> str:
    if not _SOURCE_RE.fullmatch(source):
        raise BadRequest(
            "source must be 1-64 characters of a-z, 0-9, '_' and '-'", code="invalid_blob_key"
        )
    return source


class TenantBlobs:
    """One company's raw payloads: ``{company_id}/{source}/{document_id}.json``.

    The only way application code reaches the object store. Every key is built here from a
    validated company id and source and an encoded document id, so holding company A's
    ``TenantBlobs`` gives no way to read, list or delete company B's objects.
    """

    def __init__(self, store: BlobStore, company_id: str) -> None:
        self._store = store
        self._company_id = validate_company_id(company_id)

    @property
    def company_id(self) -> str:
        return self._company_id

    def key(self, source: str, document_id: str) -> str:
        """The object key of one document (for logs and tests)."""
        return (
            f"{self._company_id}/{_check_source(source)}/{encode_document_id(document_id)}{_SUFFIX}"
        )

    async def put_document(self, source: str, document_id: str, payload: Any) -> str:
        """Store ``payload`` (JSON-serializable) as fetched; return its key."""
        key = self.key(source, document_id)
        await self._store.put_json(key, payload)
        return key

    async def put_documents(self, documents: Sequence[tuple[str, str, Any]]) -> list[str]:
        """Store several payloads (source, document id, payload) at once; return their keys."""
        items = [(self.key(source, doc_id), payload) for source, doc_id, payload in documents]
        await self._store.put_json_many(items)
        return [key for key, _ in items]

    async def get_document(self, source: str, document_id: str) -> Any | None:
        return await self._store.get_json(self.key(source, document_id))

    async def delete_document(self, source: str, document_id: str) -> None:
        """GDPR erasure of one document's raw payload; a missing one is not an error."""
        await self._store.delete(self.key(source, document_id))

    async def list_documents(self, source: str) -> AsyncIterator[str]:
        """The (decoded) ids of this company's stored documents from ``source``."""
        prefix = f"{self._company_id}/{_check_source(source)}/"
        async for key in self._store.list_keys(prefix):
            name = key[len(prefix) :]
            if "/" not in name and name.endswith(_SUFFIX):
                yield decode_document_id(name[: -len(_SUFFIX)])

    async def list_sources(self) -> list[str]:
        prefix = f"{self._company_id}/"
        sources: set[str] = set()
        async for key in self._store.list_keys(prefix):
            sources.add(key[len(prefix) :].split("/", 1)[0])
        return sorted(sources)

    async def delete_source(self, source: str) -> int:
        """Delete every payload from one source (a removed connector)."""
        return await self._store.delete_prefix(f"{self._company_id}/{_check_source(source)}/")

    async def delete_company(self) -> int:
        """Delete every payload of this company (tenant removal, GDPR)."""
        return await self._store.delete_prefix(f"{self._company_id}/")
