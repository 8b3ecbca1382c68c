"""What a credential may call: API key scopes and console roles, decided per route.

One table instead of a check in every handler: the auth dependency looks up the matched
route's path template here, so a route added later falls under a rule without touching it
(anything not named below needs the ``assistant`` scope, the least powerful one that
exists on every key made before scopes).

- API keys carry scopes: ``assistant`` (search, answers, drafts, feedback, tickets, triage),
  ``ingest`` (connectors, syncs, documents, re-index), ``admin`` (keys, settings, audit log,
  usage, analytics, insights, evaluation runs, privacy requests, the assistant preview, and
  re-index too), ``widget-mint`` (widget tokens). A key lacking the route's scope gets 403
  ``insufficient_scope``.
- Console users carry a role: ``owner`` and ``admin`` may call everything (who may manage
  whom is decided by the user endpoints), ``agent`` may use the assistant and read the
  knowledge (documents), nothing else: no connectors, settings, keys or users.
- Widget tokens keep their own rules (``require_api_key``, the audience checks).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Scope = Literal["assistant", "ingest", "admin", "widget-mint"]
ALL_SCOPES: Final[frozenset[str]] = frozenset(get_args(Scope))

Role = Literal["owner", "admin", "agent"]
ROLES: Final[tuple[str, ...]] = get_args(Role)

# (path prefix, scope): the first matching prefix wins, so longer prefixes come first.
_ROUTE_SCOPES: Final[tuple[tuple[str, Scope], ...]] = (
    ("/v1/company/api-keys", "admin"),
    ("/v1/company/settings", "admin"),
    ("/v1/assistant/preview", "admin"),
    ("/v1/audit-log", "admin"),
    ("/v1/usage", "admin"),
    ("/v1/analytics", "admin"),
    ("/v1/insights", "admin"),
    ("/v1/privacy", "admin"),
    ("/v1/evaluation", "admin"),
    ("/v1/widget-tokens", "widget-mint"),
    ("/v1/connectors", "ingest"),
    ("/v1/sync-runs", "ingest"),
    ("/v1/documents", "ingest"),
    ("/v1/knowledge", "ingest"),
)

# Routes an ``admin`` key may call besides keys with the route's own scope: re-indexing is
# both knowledge work (``ingest``) and the upkeep an administrator does after a model change.
_ADMIN_ALSO: Final[frozenset[str]] = frozenset(
    {"/v1/documents/{document_id}/reindex", "/v1/knowledge/reindex"}
)

# What an agent may read beyond the assistant: the knowledge it answers from.
_AGENT_READABLE: Final[tuple[str, ...]] = ("/v1/documents",)
_READ_METHODS: Final[frozenset[str]] = frozenset({"GET", "HEAD"})


def required_scope(path_template: str) -> Scope:
    """The scope a route needs, by its path template (``/v1/connectors/{connector_id}``)."""
    for prefix, scope in _ROUTE_SCOPES:
        if path_template == prefix or path_template.startswith(prefix + "/"):
            return scope
    return "assistant"


def accepted_scopes(path_template: str) -> frozenset[str]:
    """Any one of these scopes lets an API key call the route."""
    scope = required_scope(path_template)
    return frozenset({scope, "admin"}) if path_template in _ADMIN_ALSO else frozenset({scope})


def role_allows(role: str, method: str, path_template: str) -> bool:
    """Whether a console user of ``role`` may call the route."""
    if role in ("owner", "admin"):
        return True
    if role != "agent":
        return False
    if required_scope(path_template) == "assistant":
        return True
    return method.upper() in _READ_METHODS and any(
        path_template == p or path_template.startswith(p + "/") for p in _AGENT_READABLE
    )


def normalize_scopes(scopes: list[str] | None) -> frozenset[str]:
    """A stored key's scopes (``None``: a key from before scopes, which has them all)."""
    if scopes is None:
        return ALL_SCOPES
    return frozenset(s for s in scopes if s in ALL_SCOPES)
