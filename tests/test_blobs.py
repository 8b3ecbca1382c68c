"""The object store against a local folder and a real S3-protocol server (moto) on loopback."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from backend.blobs import (
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    TenantBlobs,
    decode_document_id,
    encode_document_id,
)
from backend.errors import AppError, InvalidCompanyId, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port: real HTTP, real S3 wire protocol."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_client(endpoint: str, *, max_attempts: int = 4) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            region_name="us-east-1",
            s3={"addressing_style": "path"},
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=1,
        ),
    )


def new_bucket(endpoint: str) -> str:
    bucket = f"hd-test-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    endpoint: str = request.getfixturevalue("s3_endpoint")
    yield S3BlobStore.from_settings(
        bucket=new_bucket(endpoint),
        prefix="raw/",
        endpoint_url=endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )


def files_under(path: Path, root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in path.rglob("*") if p.is_file())


async def collect(items: AsyncIterator[str]) -> list[str]:
    return [item async for item in items]


PAYLOAD = {
    "id": 42,
    "subject": "결제 오류",
    "description_text": "カードが拒否されました",
    "tags": ["billing"],
}


async def test_round_trip_and_missing_documents(store: BlobStore) -> None:
    blobs = TenantBlobs(store, "acme")
    key = await blobs.put_document("freshdesk", "42", PAYLOAD)
    assert key == "acme/freshdesk/42.json"
    assert await blobs.get_document("freshdesk", "42") == PAYLOAD
    assert await blobs.get_document("freshdesk", "43") is None

    await blobs.put_document("freshdesk", "42", {**PAYLOAD, "status": 5})
    assert (await blobs.get_document("freshdesk", "42"))["status"] == 5

    await blobs.delete_document("freshdesk", "42")
    assert await blobs.get_document("freshdesk", "42") is None
    await blobs.delete_document("freshdesk", "42")  # deleting twice is not an error


async def test_put_documents_stores_a_batch_under_the_companys_keys(store: BlobStore) -> None:
    acme, beta = TenantBlobs(store, "acme"), TenantBlobs(store, "beta")
    await beta.put_document("freshdesk", "1", {"owner": "beta"})
    keys = await acme.put_documents(
        [("freshdesk", "1", PAYLOAD), ("freshdesk", "../../beta/freshdesk/1", {"n": 2})]
    )
    assert keys[0] == "acme/freshdesk/1.json"
    assert all(key.startswith("acme/freshdesk/") and key.count("/") == 2 for key in keys)
    assert await acme.get_document("freshdesk", "1") == PAYLOAD
    assert await acme.get_document("freshdesk", "../../beta/freshdesk/1") == {"n": 2}
    # A batch can neither overwrite nor reach another company's objects.
    assert await beta.get_document("freshdesk", "1") == {"owner": "beta"}
    assert await acme.put_documents([]) == []


async def test_unsafe_document_ids_are_encoded_and_listed_back(store: BlobStore) -> None:
    blobs = TenantBlobs(store, "acme")
    ids = ["../../beta/freshdesk/1", "a/b", "KB0010001", "한국어 문서.md", "%2E%2E", "."]
    for document_id in ids:
        key = await blobs.put_document("files", document_id, {"id": document_id})
        assert key.startswith("acme/files/")
        assert key.count("/") == 2
    assert sorted(await collect(blobs.list_documents("files"))) == sorted(ids)
    for document_id in ids:
        assert await blobs.get_document("files", document_id) == {"id": document_id}
    assert await blobs.list_sources() == ["files"]


async def test_another_company_cannot_read_list_or_delete(store: BlobStore) -> None:
    a, b = TenantBlobs(store, "acme"), TenantBlobs(store, "acme-2")
    await a.put_document("freshdesk", "1", {"owner": "acme"})
    await a.put_document("reviews", "r1", {"owner": "acme"})
    await b.put_document("freshdesk", "1", {"owner": "acme-2"})

    assert await b.get_document("freshdesk", "1") == {"owner": "acme-2"}
    assert await b.get_document("reviews", "r1") is None
    assert await b.get_document("freshdesk", "../../acme/freshdesk/1") is None
    assert await collect(b.list_documents("reviews")) == []
    assert await b.list_sources() == ["freshdesk"]

    await b.delete_document("reviews", "r1")
    await b.delete_document("freshdesk", "../acme/freshdesk/1")
    assert await b.delete_company() == 1
    assert await a.get_document("freshdesk", "1") == {"owner": "acme"}
    assert await a.get_document("reviews", "r1") == {"owner": "acme"}
    assert await a.list_sources() == ["freshdesk", "reviews"]


async def test_delete_source_and_company(store: BlobStore) -> None:
    blobs = TenantBlobs(store, "acme")
    for i in range(3):
        await blobs.put_document("zendesk", str(i), {"i": i})
    await blobs.put_document("reviews", "g-1", {"stars": 5})
    assert await blobs.delete_source("zendesk") == 3
    assert await collect(blobs.list_documents("zendesk")) == []
    assert await collect(blobs.list_documents("reviews")) == ["g-1"]
    assert await blobs.delete_company() == 1
    assert await blobs.list_sources() == []


@pytest.mark.parametrize("source", ["", "../x", "Freshdesk", "a/b", "free desk", "x" * 65, "-a"])
async def test_malformed_sources_are_rejected(store: BlobStore, source: str) -> None:
    blobs = TenantBlobs(store, "acme")
    with pytest.raises(AppError) as caught:
        await blobs.put_document(source, "1", {})
    assert caught.value.code == "invalid_blob_key"


async def test_empty_or_oversized_document_ids_are_rejected(store: BlobStore) -> None:
    blobs = TenantBlobs(store, "acme")
    for document_id in ("", "가" * 30):  # 30 Hangul syllables encode to 270 characters
        with pytest.raises(AppError) as caught:
            await blobs.put_document("files", document_id, {})
        assert caught.value.code == "invalid_blob_key"


def test_company_id_is_validated(tmp_path: Path) -> None:
    with pytest.raises(InvalidCompanyId):
        TenantBlobs(LocalBlobStore(tmp_path), "../acme")


def test_document_id_encoding_is_reversible() -> None:
    for document_id in ("../x", "a b/c%", "日本語", "sys_id-9f8e", "."):
        encoded = encode_document_id(document_id)
        assert "/" not in encoded
        assert "." not in encoded
        assert decode_document_id(encoded) == document_id


async def test_local_store_writes_only_under_its_root(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    await TenantBlobs(store, "acme").put_document("files", "../../../escape", {"x": 1})
    assert files_under(tmp_path, root) == ["acme/files/%2E%2E%2F%2E%2E%2F%2E%2E%2Fescape.json"]
    for raw_key in ("../outside.json", "/etc/passwd", "a/../../b.json", "a//b.json", ""):
        with pytest.raises(AppError):
            await store.put_json(raw_key, {})
    # Deleting the last document removes the folders it left empty.
    await TenantBlobs(store, "acme").delete_company()
    assert files_under(root, root) == []
    assert not any(root.iterdir())


async def test_s3_objects_live_under_the_configured_prefix(s3_endpoint: str) -> None:
    bucket = new_bucket(s3_endpoint)
    store = S3BlobStore(s3_client(s3_endpoint), bucket, prefix="/helpdesk/raw/")
    await TenantBlobs(store, "acme").put_document("freshdesk", "7", PAYLOAD)
    listed = s3_client(s3_endpoint).list_objects_v2(Bucket=bucket)
    assert [item.get("Key") for item in listed.get("Contents", [])] == [
        "helpdesk/raw/acme/freshdesk/7.json"
    ]
    head = s3_client(s3_endpoint).head_object(
        Bucket=bucket, Key="helpdesk/raw/acme/freshdesk/7.json"
    )
    assert head["ContentType"] == "application/json"


async def test_s3_listing_and_purge_follow_pages(s3_endpoint: str) -> None:
    """ListObjectsV2 pages (1000 keys at most) and DeleteObjects batches must be followed."""
    bucket = new_bucket(s3_endpoint)
    raw = s3_client(s3_endpoint)
    store = S3BlobStore(raw, bucket, page_size=3, delete_batch_size=2)
    blobs = TenantBlobs(store, "acme")
    for i in range(8):
        await blobs.put_document("files", f"doc-{i}", {"i": i})
    await TenantBlobs(store, "beta").put_document("files", "doc-0", {"i": 0})
    assert sorted(await collect(blobs.list_documents("files"))) == [f"doc-{i}" for i in range(8)]
    assert await blobs.delete_company() == 8
    remaining = raw.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [item.get("Key") for item in remaining] == ["beta/files/doc-0.json"]


async def test_unreachable_s3_raises_unavailable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3BlobStore(s3_client(f"http://127.0.0.1:{port}", max_attempts=1), "bucket")
    blobs = TenantBlobs(store, "acme")
    with pytest.raises(Unavailable) as caught:
        await blobs.get_document("freshdesk", "1")
    assert caught.value.code == "blob_store_unavailable"
    with pytest.raises(Unavailable):
        await blobs.put_document("freshdesk", "1", {})


async def test_missing_bucket_raises_unavailable(s3_endpoint: str) -> None:
    store = S3BlobStore(s3_client(s3_endpoint), "no-such-bucket-here")
    with pytest.raises(Unavailable):
        await TenantBlobs(store, "acme").put_document("freshdesk", "1", {})
