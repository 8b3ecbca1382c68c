"""ServiceNow Table API adapter: knowledge articles, then incidents with their journal.

Platform rules this follows (Table API, ``GET /api/now/table/{table}``):

- ``sysparm_query`` is an encoded query; ``sys_updated_on>=X^ORDERBYsys_updated_on`` lists
  records changed since X, oldest first (``^ORDERBYsys_id`` makes ties stable across requests).
- ``sysparm_limit`` rows are read *before* ACLs remove the ones the API user may not see, so a
  page can be short, even empty, in the middle of a listing. Only the absence of a
  ``Link: <...>; rel="next"`` header means the end.
- Comments and work notes live in ``sys_journal_field`` (``element`` = ``comments`` for
  customer-visible entries, ``work_notes`` for internal ones, ``element_id`` = the record's
  sys_id); they are read for a whole page of incidents at once with ``element_idIN``.
- ``429`` + ``Retry-After`` when the instance's rate-limit rules trip (see :mod:`..http`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from backend.adapters.attachments import AttachmentReader, AttachmentResults, AttachmentSettings
from backend.adapters.base import (
    Checkpoint,
    Clock,
    Deletion,
    FetchedItem,
    FetchFailure,
    Page,
    SourceDocument,
    unreadable_item,
)
from backend.adapters.http import RateLimiter, get_json, next_link, normalize_hostname
from backend.adapters.servicenow.documents import (
    ATTACHMENT_FIELDS,
    INCIDENT_FIELDS,
    JOURNAL_FIELDS,
    KB_FIELDS,
    PUBLISHED_KB_STATES,
    SOURCE,
    article_deletion,
    article_document,
    attachment_refs,
    format_time,
    incident_document,
    incident_external_id,
    parse_time,
)
from backend.adapters.windowing import EdgeRow, UpdatedWindow, record_digest

FULL_SYNC_SINCE = datetime(1970, 1, 1, tzinfo=UTC)


class ServiceNowSettings(BaseModel):
    """Non-secret connector settings."""

    model_config = ConfigDict(extra="forbid")

    instance: str = Field(description="Instance host, e.g. acme.service-now.com (or just acme).")
    page_size: int = Field(default=100, ge=1, le=10_000)
    journal_batch_size: int = Field(
        default=50, ge=1, le=100, description="Incidents per sys_journal_field request."
    )
    include_articles: bool = True
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
    """Which files on incidents and articles (``sys_attachment``) are downloaded and indexed."""
    max_attempts: int = Field(default=5, ge=1, le=10)

    @field_validator("instance")
    @classmethod
    def _valid_instance(cls, value: str) -> str:
        return normalize_hostname(value, default_suffix=".service-now.com")


class ServiceNowCredentials(BaseModel):
    """Basic auth (``username`` + ``password``) or an OAuth access ``token``: exactly one."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> Self:
        basic = self.username is not None or self.password is not None
        if basic and self.token is not None:
            raise ValueError("give either username and password, or token, not both")
        if self.token is None and not (self.username and self.password):
            raise ValueError("username and password are required unless a token is given")
        return self

    def auth_headers(self) -> dict[str, str]:
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token.get_secret_value()}"}
        return {}

    def basic_auth(self) -> tuple[str, str] | None:
        if self.token is None and self.username and self.password is not None:
            return (self.username, self.password.get_secret_value())
        return None


class ServiceNowPhase(StrEnum):
    ARTICLES = "articles"
    INCIDENTS = "incidents"
    DONE = "done"


class ServiceNowCheckpoint(Checkpoint):
    """Where a ServiceNow sync continues: one rolling ``sys_updated_on>=`` window per table.

    A finished checkpoint (``has_more=False``, phase ``done``) passed back to ``fetch_page``
    starts the next incremental round, articles then incidents, each from its saved window:
    ``since`` is the newest ``sys_updated_on`` listed so far and ``edge`` the records
    already emitted at exactly that second with a digest of each, which the inclusive bound
    lists again: unchanged ones are skipped, ones changed again within that same second
    (``sys_updated_on`` has one-second resolution) are emitted. Retired or unpublished
    articles come back as deletions when they change; hard-deleted records are not listed by
    the Table API.
    """

    phase: ServiceNowPhase = ServiceNowPhase.ARTICLES
    articles: UpdatedWindow
    incidents: UpdatedWindow


class ServiceNowAdapter:
    source: ClassVar[str] = SOURCE
    checkpoint_type: type[ServiceNowCheckpoint] = ServiceNowCheckpoint

    def __init__(
        self,
        *,
        settings: ServiceNowSettings,
        credentials: ServiceNowCredentials,
        client: httpx.AsyncClient,
        limiter: RateLimiter,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self._client = client
        self._limiter = limiter
        self._clock = clock
        self._base = f"https://{settings.instance}/api/now/table"
        # Same client, limiter and clock as the Table API calls: one egress policy for both.
        self._attachments = AttachmentReader(
            settings.attachments,
            client=client,
            limiter=limiter,
            clock=clock,
            max_attempts=settings.max_attempts,
        )

    def initial_checkpoint(self, since: datetime | None = None) -> ServiceNowCheckpoint:
        start = (since.astimezone(UTC) if since is not None else FULL_SYNC_SINCE).replace(
            microsecond=0
        )
        phase = ServiceNowPhase.INCIDENTS
        if self.settings.include_articles:
            phase = ServiceNowPhase.ARTICLES
        return ServiceNowCheckpoint(
            phase=phase, articles=UpdatedWindow(since=start), incidents=UpdatedWindow(since=start)
        )

    async def fetch_page(self, checkpoint: ServiceNowCheckpoint) -> Page[ServiceNowCheckpoint]:
        if not checkpoint.has_more:
            # The ingest pipeline hands back the last checkpoint of the previous sync: a
            # finished round means "continue incrementally from its windows".
            checkpoint = self._next_round(checkpoint)
        match checkpoint.phase:
            case ServiceNowPhase.ARTICLES:
                return await self._articles_step(checkpoint)
            case ServiceNowPhase.INCIDENTS:
                return await self._incidents_step(checkpoint)
            case ServiceNowPhase.DONE:
                return Page(checkpoint=checkpoint.model_copy(update={"has_more": False}))

    def _next_round(self, finished: ServiceNowCheckpoint) -> ServiceNowCheckpoint:
        """The start of the incremental round that follows the finished round ``finished``."""
        return self.initial_checkpoint().model_copy(
            update={
                # Page 1 of each saved window: a round can end on a later page of the same
                # window (an empty or all-edge last page), and new records sort onto page 1.
                "articles": finished.articles.model_copy(update={"page": 1}),
                "incidents": finished.incidents.model_copy(update={"page": 1}),
            }
        )

    async def fetch_item(self, item_ref: str) -> FetchedItem:
        """One incident with its journal (``incident:<sys_id>``): ``GET
        /api/now/table/incident/<sys_id>``; or one knowledge article (``article:<sys_id>``,
        :meth:`_fetch_article`). A 404 (deleted, or no longer readable by the integration
        user) comes back as a deletion."""
        kind, _, sys_id = item_ref.partition(":")
        if kind == "article" and sys_id.isalnum():
            return await self._fetch_article(item_ref, sys_id)
        if kind != "incident" or not sys_id.isalnum():
            failure = FetchFailure(
                where=item_ref, message="not an incident or an article", retryable=False
            )
            return FetchedItem(failures=[failure])
        record = await self._read_record("incident", sys_id, INCIDENT_FIELDS, item_ref)
        if isinstance(record, FetchedItem):
            return record
        failures: list[FetchFailure] = []
        journal = await self._journal([sys_id])
        if isinstance(journal, FetchFailure):
            if journal.retryable:
                return FetchedItem(failures=[journal])
            failures.append(journal)
            journal = {}
        counts: Counter[str] = Counter()
        files = await self._files("incident", [record], counts, failures)
        if files is None:
            return FetchedItem(failures=failures)
        document = incident_document(
            record,
            journal.get(sys_id, []),
            instance=self.settings.instance,
            attachments=files[sys_id],
        )
        return FetchedItem(documents=[document], failures=failures, counts=dict(counts))

    async def _read_record(
        self, table: str, sys_id: str, fields: Sequence[str], item_ref: str
    ) -> dict[str, Any] | FetchedItem:
        """``GET /api/now/table/<table>/<sys_id>`` with ``fields``: the record, or what to
        return instead (a 404 as the item's deletion, another failure, a foreign payload)."""
        params = {
            "sysparm_display_value": "false",
            "sysparm_exclude_reference_link": "true",
            "sysparm_fields": ",".join(fields),
        }
        result = await self._get(f"{self._base}/{table}/{sys_id}", params, item_ref)
        if isinstance(result, FetchFailure):
            return unreadable_item(result, source=SOURCE, external_id=item_ref)
        body, _ = result
        record = body.get("result") if isinstance(body, dict) else None
        if not isinstance(record, dict) or str(record.get("sys_id")) != sys_id:
            failure = FetchFailure(where=item_ref, message="unexpected payload", retryable=False)
            return FetchedItem(failures=[failure])
        return record

    async def _fetch_article(self, item_ref: str, sys_id: str) -> FetchedItem:
        """``GET /api/now/table/kb_knowledge/<sys_id>`` with the fields the sync lists; a
        published article becomes its document (with its files), any other workflow state
        (draft, review, retired, outdated) a deletion, as in the sync's article pages."""
        if not self.settings.include_articles:
            # The sync indexes no articles for this connector; a webhook adds none either.
            return FetchedItem(counts={"skipped.article_not_included": 1})
        record = await self._read_record("kb_knowledge", sys_id, KB_FIELDS, item_ref)
        if isinstance(record, FetchedItem):
            return record
        if record.get("workflow_state") not in PUBLISHED_KB_STATES:
            counts = {"skipped.unpublished_article": 1}
            return FetchedItem(deletions=[article_deletion(record)], counts=counts)
        failures: list[FetchFailure] = []
        file_counts: Counter[str] = Counter()
        files = await self._files("kb_knowledge", [record], file_counts, failures)
        if files is None:
            return FetchedItem(failures=failures)
        document = article_document(
            record, instance=self.settings.instance, attachments=files[sys_id]
        )
        return FetchedItem(documents=[document], failures=failures, counts=dict(file_counts))

    # -- HTTP -------------------------------------------------------------------------------

    async def _get(
        self, url: str, params: dict[str, Any] | None, where: str
    ) -> tuple[Any, httpx.Response] | FetchFailure:
        return await get_json(
            self._client,
            url,
            limiter=self._limiter,
            clock=self._clock,
            where=where,
            params=params,
            headers={"Accept": "application/json", **self.credentials.auth_headers()},
            auth=self.credentials.basic_auth(),
            max_attempts=self.settings.max_attempts,
        )

    async def _list_window(
        self, table: str, window: UpdatedWindow, fields: tuple[str, ...], extra_query: str = ""
    ) -> tuple[list[dict[str, Any]], bool] | FetchFailure:
        """One page of ``table`` updated at or after the window start; (records, more?)."""
        query = f"sys_updated_on>={format_time(window.since)}{extra_query}"
        params = {
            # Date-times in encoded queries are compared in the internal (UTC) format.
            "sysparm_query": f"{query}^ORDERBYsys_updated_on^ORDERBYsys_id",
            "sysparm_limit": self.settings.page_size,
            "sysparm_offset": (window.page - 1) * self.settings.page_size,
            "sysparm_display_value": "false",
            "sysparm_exclude_reference_link": "true",
            "sysparm_fields": ",".join(fields),
        }
        result = await self._get(f"{self._base}/{table}", params, f"{table}?{query}")
        if isinstance(result, FetchFailure):
            return result
        body, response = result
        records = body.get("result") if isinstance(body, dict) else None
        if not isinstance(records, list):
            return FetchFailure(
                where=f"{table}?{query}",
                message="response has no result list",
                status_code=response.status_code,
                retryable=False,
            )
        # A short (even empty) page is not the end: rows are counted before ACLs drop them.
        return records, next_link(response) is not None

    @staticmethod
    def _seen(records: list[dict[str, Any]]) -> tuple[list[EdgeRow], list[str]]:
        """(id, updated, digest) of records with a valid timestamp, and ids of those without."""
        seen: list[EdgeRow] = []
        invalid: list[str] = []
        for record in records:
            updated = parse_time(record.get("sys_updated_on"))
            if updated is None:
                invalid.append(str(record.get("sys_id")))
            else:
                seen.append((str(record["sys_id"]), updated, record_digest(record)))
        return seen, invalid

    # -- steps ------------------------------------------------------------------------------

    async def _articles_step(self, checkpoint: ServiceNowCheckpoint) -> Page[ServiceNowCheckpoint]:
        window = checkpoint.articles
        listed = await self._list_window("kb_knowledge", window, KB_FIELDS)
        if isinstance(listed, FetchFailure):
            return Page(failures=[listed], checkpoint=checkpoint, blocked=True)
        records, more = listed
        seen, invalid = self._seen(records)
        fresh_ids = {key for key, updated, digest in seen if window.is_new(key, updated, digest)}
        documents: list[SourceDocument] = []
        deletions: list[Deletion] = []
        failures = _invalid_timestamps("kb_knowledge", invalid)
        counts: Counter[str] = Counter()
        published: list[dict[str, Any]] = []
        for record in records:
            if str(record.get("sys_id")) not in fresh_ids:
                continue
            if record.get("workflow_state") in PUBLISHED_KB_STATES:
                published.append(record)
            else:
                deletions.append(article_deletion(record))
                counts["skipped.unpublished_article"] += 1
        files = await self._files("kb_knowledge", published, counts, failures)
        if files is None:
            return Page(failures=failures, checkpoint=checkpoint, blocked=True)
        documents = [
            article_document(
                record, instance=self.settings.instance, attachments=files[str(record["sys_id"])]
            )
            for record in published
        ]
        following = checkpoint.model_copy(update={"articles": window.advance(seen)})
        if not more:
            following = following.model_copy(update={"phase": ServiceNowPhase.INCIDENTS})
        return Page(
            documents=documents,
            deletions=deletions,
            failures=failures,
            counts=dict(counts),
            checkpoint=following,
        )

    async def _files(
        self,
        table: str,
        records: list[dict[str, Any]],
        counts: Counter[str],
        failures: list[FetchFailure],
    ) -> dict[str, AttachmentResults] | None:
        """Attachments of ``records`` (sys_id → results); ``None`` when the page must wait.

        Counts and failures are added to ``counts`` and ``failures``. A listing the API user
        may not read (no role on sys_attachment) is reported and the records are indexed
        without their files; a transient failure blocks the page so it is tried again.
        """
        results = {str(record["sys_id"]): AttachmentResults() for record in records}
        if not records or not self.settings.attachments.enabled:
            return results
        listed = await self._attachment_rows(table, list(results))
        if isinstance(listed, FetchFailure):
            if listed.retryable:
                failures.append(listed)
                return None
            failures.append(listed)
            return results
        auth_headers = {"Accept": "*/*", **self.credentials.auth_headers()}
        for sys_id in results:
            rows = listed.get(sys_id, [])
            if not rows:
                continue
            read = await self._attachments.read_all(
                attachment_refs(rows, instance=self.settings.instance),
                where=f"{table}:{sys_id}",
                headers=auth_headers,
                auth=self.credentials.basic_auth(),
                credentials_host=self.settings.instance,
            )
            results[sys_id] = read
            counts.update(read.counts)
            failures.extend(read.failures)
        return results

    async def _attachment_rows(
        self, table: str, record_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]] | FetchFailure:
        """``sys_attachment`` rows of ``record_ids`` in ``table``, grouped by record."""
        rows: dict[str, list[dict[str, Any]]] = {}
        size = self.settings.journal_batch_size
        for start in range(0, len(record_ids), size):
            batch = record_ids[start : start + size]
            url: str | None = f"{self._base}/sys_attachment"
            params: dict[str, Any] | None = {
                "sysparm_query": f"table_name={table}^table_sys_idIN{','.join(batch)}"
                "^ORDERBYsys_created_on",
                "sysparm_limit": 1000,
                "sysparm_display_value": "false",
                "sysparm_fields": ",".join(ATTACHMENT_FIELDS),
            }
            where = f"sys_attachment:{table}:{batch[0]}+{len(batch) - 1}"
            while url is not None:
                result = await self._get(url, params, where)
                if isinstance(result, FetchFailure):
                    return result
                body, response = result
                records = body.get("result") if isinstance(body, dict) else None
                for row in records if isinstance(records, list) else []:
                    rows.setdefault(str(row.get("table_sys_id")), []).append(row)
                url = next_link(response)  # short pages are not the end (ACLs)
                params = None
        return rows

    async def _incidents_step(self, checkpoint: ServiceNowCheckpoint) -> Page[ServiceNowCheckpoint]:
        window = checkpoint.incidents
        listed = await self._list_window("incident", window, INCIDENT_FIELDS)
        if isinstance(listed, FetchFailure):
            return Page(failures=[listed], checkpoint=checkpoint, blocked=True)
        records, more = listed
        seen, invalid = self._seen(records)
        fresh_ids = {key for key, updated, digest in seen if window.is_new(key, updated, digest)}
        fresh = [record for record in records if str(record.get("sys_id")) in fresh_ids]
        failures = _invalid_timestamps("incident", invalid)

        journal = await self._journal([str(record["sys_id"]) for record in fresh])
        if isinstance(journal, FetchFailure):
            if journal.retryable:
                # Try the whole page again later rather than index threads without comments.
                return Page(failures=[journal], checkpoint=checkpoint, blocked=True)
            # Not allowed to read sys_journal_field (a missing role): index what we can see,
            # and say that the threads are missing.
            failures.append(journal)
            journal = {}

        counts: Counter[str] = Counter()
        files = await self._files("incident", fresh, counts, failures)
        if files is None:
            return Page(failures=failures, checkpoint=checkpoint, blocked=True)
        documents = [
            incident_document(
                record,
                journal.get(str(record["sys_id"]), []),
                instance=self.settings.instance,
                attachments=files[str(record["sys_id"])],
            )
            for record in fresh
        ]
        following = checkpoint.model_copy(update={"incidents": window.advance(seen)})
        if not more:
            following = following.model_copy(
                update={"phase": ServiceNowPhase.DONE, "has_more": False}
            )
        return Page(
            documents=documents, failures=failures, counts=dict(counts), checkpoint=following
        )

    async def _journal(
        self, incident_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]] | FetchFailure:
        """Comments and work notes of ``incident_ids``, grouped by incident sys_id."""
        entries: dict[str, list[dict[str, Any]]] = {}
        size = self.settings.journal_batch_size
        for start in range(0, len(incident_ids), size):
            batch = incident_ids[start : start + size]
            query = (
                f"name=incident^element_idIN{','.join(batch)}"
                "^elementINcomments,work_notes^ORDERBYsys_created_on"
            )
            url: str | None = f"{self._base}/sys_journal_field"
            params: dict[str, Any] | None = {
                "sysparm_query": query,
                "sysparm_limit": 1000,
                "sysparm_display_value": "false",
                "sysparm_fields": ",".join(JOURNAL_FIELDS),
            }
            where = f"sys_journal_field:{incident_external_id(batch[0])}+{len(batch) - 1}"
            while url is not None:
                result = await self._get(url, params, where)
                if isinstance(result, FetchFailure):
                    return result
                body, response = result
                records = body.get("result") if isinstance(body, dict) else None
                for entry in records if isinstance(records, list) else []:
                    entries.setdefault(str(entry.get("element_id")), []).append(entry)
                # Follow rel="next" even after a short page (ACLs filter after the limit).
                url = next_link(response)
                params = None
        return entries


def _invalid_timestamps(table: str, sys_ids: list[str]) -> list[FetchFailure]:
    return [
        FetchFailure(
            where=f"{table}:{sys_id}",
            message="record without a valid sys_updated_on",
            retryable=False,
        )
        for sys_id in sys_ids
    ]
