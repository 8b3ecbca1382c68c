"""Where file imports may read: only below the operator's import root(s).

File-platform connectors (``file_export``, ``article_folder``, ``review_export``) read the
server's disk, so they are the operator's alone (``helpdesk ingest``), and even the
operator's stored paths are checked again at every sync, before a byte is read:

- a relative path is taken relative to the import root;
- the path is resolved to its real path (symlinks followed, ``..`` collapsed) and must lie
  below the (equally resolved) root;
- a path outside the root, a missing path and a path of the wrong type (a folder where a
  file is expected) all get the same error, so the answer tells nothing about what exists
  outside the root.

Inside a folder import, files reached through a symlink that leaves the root are skipped by
the folder adapter (see :func:`backend.adapters.files.folder.scan_folder`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from backend.errors import BadRequest

FILE_PLATFORMS = frozenset({"review_export", "file_export", "article_folder"})
"""Platforms that read the server's own disk."""

PATH_SETTING: dict[str, str] = {
    "file_export": "path",
    "review_export": "path",
    "article_folder": "root",
}
"""The settings field holding each file platform's server path."""

REFUSED_DETAIL = "the import path is not a readable file or folder below the import root"


def import_path_refused() -> BadRequest:
    # One error for every refusal (outside, missing, wrong type): no existence oracle.
    return BadRequest(REFUSED_DETAIL, code="import_path_refused")


class FileImportPolicy:
    """The import roots and the one check every file import passes."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = tuple(Path(os.path.realpath(root)) for root in roots)

    @classmethod
    def refuse_all(cls) -> FileImportPolicy:
        return cls(())

    def resolve(self, path: str, *, kind: Literal["file", "folder"]) -> Path:
        """The real path of ``path`` if it is a ``kind`` below a root; else the one error."""
        if not self.roots or not path or "\x00" in path:
            raise import_path_refused()
        candidate = Path(path).expanduser()
        for root in self.roots:
            joined = candidate if candidate.is_absolute() else root / candidate
            # realpath (not Path.resolve(strict=True)): the same code path whether or not it
            # exists, and the containment test comes before any existence test.
            real = Path(os.path.realpath(joined))
            if not real.is_relative_to(root):
                continue
            if (kind == "file" and real.is_file()) or (kind == "folder" and real.is_dir()):
                return real
        raise import_path_refused()

    def resolve_settings(self, platform: str, settings: dict[str, Any]) -> dict[str, Any]:
        """``settings`` with the server path replaced by its checked real path."""
        field = PATH_SETTING[platform]
        value = settings.get(field)
        kind: Literal["file", "folder"] = "folder" if platform == "article_folder" else "file"
        real = self.resolve(value if isinstance(value, str) else "", kind=kind)
        return {**settings, field: str(real)}

    def display_path(self, real: Path) -> str:
        """A checked path as the operator names it: relative to its import root."""
        for root in self.roots:
            if real.is_relative_to(root):
                return real.relative_to(root).as_posix() or "."
        return real.name


__all__ = [
    "FILE_PLATFORMS",
    "PATH_SETTING",
    "REFUSED_DETAIL",
    "FileImportPolicy",
    "import_path_refused",
]
