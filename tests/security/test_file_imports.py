"""The import root: path escapes (``..``, symlinks, absolute paths) are refused with one
error whether or not the target exists, and a folder import skips files that leave it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend.adapters.files import ArticleFolderAdapter, ArticleFolderSettings
from backend.errors import BadRequest
from backend.ingest.file_imports import REFUSED_DETAIL, FileImportPolicy


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "imports"
    outside = tmp_path / "elsewhere"
    (root / "acme").mkdir(parents=True)
    outside.mkdir()
    (root / "acme" / "kb.jsonl").write_text("{}\n", encoding="utf-8")
    (outside / "secret.jsonl").write_text('{"token": "s3cr3t"}\n', encoding="utf-8")
    os.symlink(outside / "secret.jsonl", root / "acme" / "link.jsonl")
    os.symlink(outside, root / "acme" / "linked-dir")
    return root, outside


def refusal(policy: FileImportPolicy, path: str, kind: str = "file") -> tuple[str, object]:
    with pytest.raises(BadRequest) as caught:
        policy.resolve(path, kind=kind)  # type: ignore[arg-type]
    return caught.value.code, caught.value.detail


def test_paths_below_the_root_resolve_to_their_real_path(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    policy = FileImportPolicy([root])
    assert policy.resolve("acme/kb.jsonl", kind="file") == (root / "acme" / "kb.jsonl").resolve()
    assert policy.resolve(str(root / "acme" / "kb.jsonl"), kind="file").is_file()
    assert policy.resolve("acme", kind="folder") == (root / "acme").resolve()


def test_every_escape_gets_the_same_error_as_a_missing_file(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    policy = FileImportPolicy([root])
    expected = ("import_path_refused", REFUSED_DETAIL)
    escapes = [
        "/etc/passwd",  # absolute, exists
        "/etc/no-such-file",  # absolute, missing
        str(outside / "secret.jsonl"),  # exists, outside
        str(outside / "missing.jsonl"),  # missing, outside
        "../elsewhere/secret.jsonl",  # .. escape
        "acme/../../elsewhere/secret.jsonl",
        "acme/link.jsonl",  # symlink inside the root pointing out
        "acme/linked-dir/secret.jsonl",  # through a symlinked folder
        "acme/missing.jsonl",  # inside, missing
        "acme",  # a folder where a file is expected
        "",
        "acme/kb.jsonl\x00.csv",
    ]
    for path in escapes:
        assert refusal(policy, path) == expected, path
    assert refusal(policy, "acme/linked-dir", kind="folder") == expected
    assert refusal(FileImportPolicy.refuse_all(), str(root / "acme" / "kb.jsonl")) == expected


async def test_a_folder_import_skips_files_that_leave_the_folder(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "reset.md").write_text("# Reset\n\nHold the button.\n", encoding="utf-8")
    secret = tmp_path / "passwd.md"
    secret.write_text("# root\n\nroot:x:0:0\n", encoding="utf-8")
    os.symlink(secret, kb / "passwd.md")
    adapter = ArticleFolderAdapter(settings=ArticleFolderSettings(root=str(kb)))
    page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert [d.external_id for d in page.documents] == ["article:reset.md"]
    assert all("root:x" not in part.text for d in page.documents for part in d.parts)
