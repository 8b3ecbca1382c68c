"""Local file sources: CSV/TSV/JSON/JSONL record exports and folders of Markdown/HTML articles."""

from backend.adapters.files.folder import (
    ArticleFolderAdapter,
    ArticleFolderCheckpoint,
    ArticleFolderSettings,
)
from backend.adapters.files.records import (
    FileCredentials,
    RecordColumns,
    RecordExportAdapter,
    RecordExportCheckpoint,
    RecordExportSettings,
)

__all__ = [
    "ArticleFolderAdapter",
    "ArticleFolderCheckpoint",
    "ArticleFolderSettings",
    "FileCredentials",
    "RecordColumns",
    "RecordExportAdapter",
    "RecordExportCheckpoint",
    "RecordExportSettings",
]
