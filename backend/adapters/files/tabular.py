"""Reading CSV, TSV, JSON and JSONL exports into records, row by row, failures as values.

Everything here is synchronous file I/O: adapters call :func:`load_export` through
``asyncio.to_thread`` so the event loop never blocks on a disk.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict

from backend.adapters.base import FetchFailure

ExportFormat = Literal["csv", "tsv", "json", "jsonl"]

_SUFFIX_FORMATS: dict[str, ExportFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
# A JSON export is a list of records, or an object holding that list under one of these keys.
_JSON_LIST_KEYS = ("reviews", "data", "items", "records", "results", "rows", "tickets", "articles")


@dataclass(frozen=True)
class ExportRecord:
    """One row (CSV/TSV), line (JSONL) or list item (JSON) of an export."""

    number: int
    """1-based: data row for CSV/TSV (header excluded), line for JSONL, item for JSON."""
    fields: dict[str, Any]


@dataclass(frozen=True)
class ExportSnapshot:
    """An export file as read at one moment."""

    fingerprint: str
    """Size and modification time: a replaced export has a new one."""
    items: list[ExportRecord | FetchFailure]


def infer_format(path: Path, declared: ExportFormat | None) -> ExportFormat:
    if declared is not None:
        return declared
    try:
        return _SUFFIX_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"cannot tell the format of {path.name}: name it .csv/.tsv/.json/.jsonl "
            "or set the format"
        ) from None


def file_fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def load_export(
    path: Path,
    *,
    declared_format: ExportFormat | None = None,
    encoding: str = "utf-8-sig",
    delimiter: str | None = None,
) -> ExportSnapshot | FetchFailure:
    """Read a whole export. A malformed row is a failure item; an unreadable file one failure."""
    # The file's name only: sync-run errors are shown to the tenant, the server path is not.
    where = path.name
    try:
        export_format = infer_format(path, declared_format)
        fingerprint = file_fingerprint(path)
        # utf-8-sig drops the byte-order mark Excel writes in front of Korean CSVs.
        text = path.read_text(encoding=encoding)
    except FileNotFoundError:
        return FetchFailure(where=where, message="file not found", retryable=False)
    except UnicodeDecodeError as exc:
        return FetchFailure(
            where=where, message=f"not {encoding} text: {exc.reason}", retryable=False
        )
    except OSError as exc:
        return FetchFailure(
            where=where, message=f"cannot read the file ({type(exc).__name__})", retryable=True
        )
    except ValueError as exc:
        return FetchFailure(where=where, message=str(exc), retryable=False)
    if export_format == "jsonl":
        items = list(_jsonl_records(text, path.name))
    elif export_format == "json":
        parsed = _json_records(text, path.name)
        if isinstance(parsed, FetchFailure):
            return parsed
        items = parsed
    else:
        separator = delimiter or ("\t" if export_format == "tsv" else ",")
        items = list(_delimited_records(text, separator, path.name))
    return ExportSnapshot(fingerprint=fingerprint, items=items)


def _row_failure(file_name: str, number: int, message: str) -> FetchFailure:
    return FetchFailure(where=f"{file_name}:{number}", message=message, retryable=False)


def _jsonl_records(text: str, file_name: str) -> Iterable[ExportRecord | FetchFailure]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _row_failure(file_name, number, f"invalid JSON: {exc.msg}")
            continue
        if not isinstance(value, dict):
            yield _row_failure(file_name, number, "line is not a JSON object")
            continue
        yield ExportRecord(number=number, fields=value)


def _json_records(text: str, file_name: str) -> list[ExportRecord | FetchFailure] | FetchFailure:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return FetchFailure(
            where=file_name,
            message=f"invalid JSON at line {exc.lineno}: {exc.msg}",
            retryable=False,
        )
    if isinstance(value, dict):
        value = next(
            (value[key] for key in _JSON_LIST_KEYS if isinstance(value.get(key), list)), None
        )
    if not isinstance(value, list):
        return FetchFailure(
            where=file_name, message="expected a list of records at the top", retryable=False
        )
    items: list[ExportRecord | FetchFailure] = []
    for number, item in enumerate(value, start=1):
        if isinstance(item, dict):
            items.append(ExportRecord(number=number, fields=item))
        else:
            items.append(_row_failure(file_name, number, "item is not an object"))
    return items


def _delimited_records(
    text: str, delimiter: str, file_name: str
) -> Iterable[ExportRecord | FetchFailure]:
    rows = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    header: list[str] | None = None
    number = 0
    try:
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                continue
            number += 1
            if len(row) != len(header):
                # A shifted row would put text under the wrong column: refuse it.
                yield _row_failure(
                    file_name, number, f"expected {len(header)} columns, found {len(row)}"
                )
                continue
            yield ExportRecord(number=number, fields=dict(zip(header, row, strict=True)))
    except csv.Error as exc:
        yield _row_failure(file_name, number + 1, f"unreadable CSV: {exc}")


def _key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name).casefold()


def pick(fields: Mapping[str, Any], candidates: Sequence[str]) -> tuple[str | None, Any]:
    """(column name, value) of the first candidate column present and non-blank in ``fields``.

    Column names compare without case, spaces, dashes, dots or underscores, so ``Review ID``,
    ``review_id`` and ``reviewId`` all match the candidate ``review_id``.
    """
    by_key = {_key(name): name for name in fields}
    for candidate in candidates:
        name = by_key.get(_key(candidate))
        if name is None:
            continue
        value = fields[name]
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        return name, value
    return None, None


_DOTTED = re.compile(r"^(\d{2}|\d{4})[./-](\d{1,2})[./-](\d{1,2})\.?(?:\s+(\d{1,2}):(\d{2}))?$")
_KOREAN = re.compile(r"^(\d{4})년\s*(\d{1,2})월\s*(\d{1,2})일(?:\s*(\d{1,2}):(\d{2}))?$")


def parse_export_date(
    value: Any, *, formats: Sequence[str] = (), zone: tzinfo = UTC
) -> datetime | None:
    """A timestamp from an export cell; ``None`` when blank. Raises ValueError when unreadable.

    Understands epoch seconds/milliseconds, ISO 8601, the given ``strptime`` formats,
    ``2024.03.01``/``2024-3-1``/``2024/03/01`` (optionally with ``HH:MM``), Naver's two-digit
    year ``24.03.01`` (yy.mm.dd) and Korean ``2024년 3월 1일``. Times without a zone are in
    ``zone`` (the platform's local time, e.g. Asia/Seoul).
    """
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e12 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit() and len(text) >= 9:
        return parse_export_date(int(text), zone=zone)
    for fmt in formats:
        try:
            return _in_zone(datetime.strptime(text, fmt), zone)
        except ValueError:
            continue
    try:
        return _in_zone(datetime.fromisoformat(text.replace("Z", "+00:00")), zone)
    except ValueError:
        pass
    match = _DOTTED.match(text) or _KOREAN.match(text)
    if match:
        year, month, day, hour, minute = match.groups()
        full_year = int(year) + 2000 if len(year) == 2 else int(year)
        return _in_zone(
            datetime(full_year, int(month), int(day), int(hour or 0), int(minute or 0)), zone
        )
    raise ValueError(f"unrecognized date {text!r}")


def _in_zone(value: datetime, zone: tzinfo) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA zone name (``Asia/Seoul``), checked against the tz database."""


class NoCredentials(BaseModel):
    """Local files need no credentials; the type keeps every adapter built the same way."""

    model_config = ConfigDict(frozen=True)
