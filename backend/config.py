"""Settings, read from ``HELPDESK_*`` environment variables (and an optional ``.env``).

With nothing set the service runs on its embedded default: an embedded PostgreSQL in
``data_dir``, Qdrant's in-process engine on disk, an in-process cache, a local folder as
object store and the offline embedding model. Each ``*_url`` switches one part to a server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.retrieval.fusion import DEFAULT_FUSION_DENSE_WEIGHT
from backend.tenancy.company_id import CompanyId, CompanyIdField
from backend.vectors.store import DEFAULT_DENSE_WEIGHT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HELPDESK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- process -----------------------------------------------------------------------
    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(
        default=Path(".helpdesk-data"),
        description="Where the embedded default keeps Postgres, Qdrant and object-store files.",
    )
    log_level: str = "INFO"
    log_json: bool = True
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxies whose X-Forwarded-* headers are trusted (comma list, or '*').",
    )
    cors_allow_origins: str = Field(
        default="",
        description="Origins allowed to call the API from a browser for every company, comma "
        "separated (on top of each company's own `widget_origins` setting and its helpdesk "
        "domain); '*' for any. Credentials are bearer tokens, never cookies.",
    )
    widget_dir: Path = Field(
        default=Path("frontend-widget/dist"),
        description="Built widget files, served at /widget/ when the folder exists.",
    )
    console_dir: Path = Field(
        default=Path("frontend-console/dist"),
        description="Built company console (`make console`), served at /console/ when the "
        "folder exists.",
    )
    demo_mode: bool = Field(
        default=False, description="Serve /demo: the widget on a sample ticket (`helpdesk demo`)."
    )
    demo_company_id: CompanyIdField = CompanyId("demo")
    public_base_url: str | None = Field(
        default=None, description="Externally visible base URL (used in links the API prints)."
    )

    # --- platform administration ---------------------------------------------------------
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /admin endpoints. Unset: the admin API is disabled.",
    )

    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Remember resolved API keys/widget tokens this long per process (a key "
        "revoked in another process keeps working here at most this long); 0 disables.",
    )

    # --- company console ------------------------------------------------------------------
    console_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="A console sign-in lasts this long; then the user signs in again.",
    )
    console_login_attempts: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Console sign-in attempts allowed per e-mail and per client IP within "
        "console_login_window_seconds (429 `rate_limited` beyond).",
    )
    console_login_window_seconds: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="The window of console_login_attempts, in seconds.",
    )
    console_invite_hours: float = Field(
        default=72.0,
        gt=0,
        le=24 * 30,
        description="How long a console invitation token can be accepted.",
    )

    # --- Postgres --------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description=(
            "Runtime connection (a role that owns nothing and cannot bypass RLS), e.g. "
            "postgresql+asyncpg://helpdesk_app:pw@db:5432/helpdesk. Unset: embedded Postgres."
        ),
    )
    database_owner_url: str | None = Field(
        default=None,
        description=(
            "Connection of the schema owner, used only to run migrations and create the "
            "runtime role. Unset with database_url set: migrations are not run at start."
        ),
    )
    database_app_role: str = "helpdesk_app"
    database_app_password: SecretStr | None = None
    database_pool_size: int = 10
    database_pooler: Literal["none", "transaction"] = Field(
        default="none",
        description="'transaction' when HELPDESK_DATABASE_URL points at a transaction pooler "
        "(PgBouncer pool_mode = transaction): no prepared statement outlives a transaction.",
    )
    auto_migrate: bool = Field(
        default=True, description="Run migrations at start when an owner connection is known."
    )

    # --- Redis (cache, job queue) ------------------------------------------------------------
    redis_url: str | None = Field(default=None, description="redis://host:6379/0 (standalone).")
    redis_cluster_nodes: str | None = Field(
        default=None, description="Comma-separated host:port seeds of a Redis Cluster."
    )

    # --- Qdrant ------------------------------------------------------------------------------
    qdrant_url: str | None = Field(default=None, description="Qdrant server URL. Unset: embedded.")
    qdrant_api_key: SecretStr | None = None
    qdrant_layout: Literal["shared", "per_company"] = Field(
        default="shared",
        description="Server engine: one collection for every company, partitioned by a "
        "company_id tenant index (shared), or one collection per company (per_company).",
    )
    qdrant_custom_sharding: bool = Field(
        default=False,
        description="Shared layout on a Qdrant cluster (distributed mode, >= 1.16): create the "
        "shared collection with custom sharding so large companies can be promoted to their "
        "own shard. Fixed when the collection is created.",
    )
    edge_max_open_shards: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Embedded engine: company shards kept open at once; past it the least "
        "recently used idle shard is closed (each open shard holds a file descriptor).",
    )
    edge_open_shards_memory_mb: int = Field(
        default=4096,
        ge=1,
        description="Embedded engine: memory the open shards may cost together (measured as "
        "resident-memory growth when each opened); past it the least recently used closes.",
    )
    search_dense_weight: float = Field(
        default=DEFAULT_DENSE_WEIGHT,
        gt=0,
        le=10,
        description="Weight of the dense list against the lexical one in hybrid fusion (RRF).",
    )
    search_fusion: Literal["convex", "rrf"] = Field(
        default="convex",
        description="How searches fuse the dense and lexical lists: on their scores (convex) "
        "or on their ranks (rrf).",
    )
    search_fusion_dense_weight: float = Field(
        default=DEFAULT_FUSION_DENSE_WEIGHT,
        gt=0,
        le=100,
        description="The dense list's weight in the searches' fusion (share w / (w + 1)); "
        "a company's tuned weight (helpdesk eval tune) overrides it.",
    )

    # --- Object store --------------------------------------------------------------------------
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = Field(default=None, description="Set to use S3; unset: local folder.")
    s3_prefix: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None

    # --- Embeddings ------------------------------------------------------------------------------
    embedding_provider: Literal["local", "openai"] = "local"
    embedding_url: str | None = Field(
        default=None, description="OpenAI-compatible /v1/embeddings base URL for 'openai'."
    )
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_api_key: SecretStr | None = None
    embedding_batch_size: int = 64
    torch_threads: int = 1
    embedding_query_runtime: Literal["onnx-int8", "onnx", "torch"] = Field(
        default="onnx-int8",
        description="How the local model encodes search queries: ONNX Runtime int8 (fastest), "
        "ONNX fp32 (the exact vectors), or PyTorch.",
    )
    embedding_document_runtime: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="How the local model encodes documents: ONNX Runtime fp32 (PyTorch's "
        "vectors, checked at start, about 1.5x faster on one core) or PyTorch.",
    )
    embedding_int8_weights: Literal["auto", "s8", "u8"] = Field(
        default="auto",
        description="int8 query model weights: auto picks s8 where the CPU has VNNI/AMX and u8 "
        "elsewhere (the AVX2 u8×s8 kernel saturates); s8 or u8 forces one.",
    )
    model_cache_dir: Path | None = Field(
        default=None, description="Where exported query models are kept. Unset: data_dir/models."
    )

    # --- LLM router ---------------------------------------------------------------------------
    # Nothing set: the extractive composer (no model) answers, and says so in every response.
    llm_openai_base_url: str | None = Field(
        default=None, description="Any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp…)."
    )
    llm_openai_api_key: SecretStr | None = None
    llm_openai_model: str = "gpt-4o-mini"
    llm_anthropic_api_key: SecretStr | None = None
    llm_anthropic_base_url: str = "https://api.anthropic.com"
    llm_anthropic_model: str = "claude-haiku-4-5"
    llm_local_base_url: str | None = Field(
        default=None, description="A model server on your own machines (no key), e.g. Ollama."
    )
    llm_local_model: str = "local"
    llm_routes: str | None = Field(
        default=None,
        description="JSON: fallback chains per task and per company (a company's own "
        "`llm` setting may reorder or narrow them among the configured providers).",
    )
    llm_budgets: str | None = Field(
        default=None,
        description="JSON: monthly token/cost budgets per company (a company's own "
        "`llm.monthly_budget_usd` can only make its cost limit lower).",
    )
    llm_prices: str | None = Field(default=None, description="JSON: USD per million tokens.")
    llm_timeout_s: float = 30.0
    llm_connect_timeout_s: float = 5.0
    llm_max_attempts: int = 2
    llm_max_retry_after_s: float = 10.0
    llm_breaker_failures: int = 5
    llm_breaker_cooldown_s: float = 30.0
    answer_cache_ttl_s: int = Field(
        default=86_400, description="How long cached answers live (a new sync voids them)."
    )
    widget_token_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key for widget tokens. Unset: derived from the encryption key.",
    )

    # --- Ingest -----------------------------------------------------------------------------
    scheduler_enabled: bool = Field(
        default=True,
        description="Enqueue scheduled connector syncs (in the API process in the embedded "
        "default, in `helpdesk worker` when Redis is configured).",
    )
    sync_heartbeat_s: float = Field(
        default=10.0,
        gt=0,
        description="How often a running sync proves its worker is alive (besides each page).",
    )
    sync_takeover_s: float = Field(
        default=45.0,
        gt=0,
        description="A running sync whose heartbeat is older than this lost its worker: it is "
        "marked abandoned and a new run resumes from its checkpoint. Keep it a few heartbeats "
        "long.",
    )
    sync_reaper_interval_s: float = Field(
        default=10.0,
        gt=0,
        description="How often the scheduler process looks for syncs whose worker died (so a "
        "takeover happens within sync_takeover_s + this of the last heartbeat).",
    )

    # --- Webhooks in (POST /v1/webhooks/{connector_id}) ------------------------------------
    webhook_max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest webhook body read (413 above it); webhooks only name items.",
    )
    webhook_replay_window_s: float = Field(
        default=300.0,
        gt=0,
        description="A signed webhook timestamp further than this from our clock is refused "
        "(401 stale_webhook); event ids are remembered for twice this long.",
    )
    webhook_rotation_grace_s: float = Field(
        default=24 * 3600.0,
        ge=0,
        description="After a webhook secret is rotated, the previous one is still accepted "
        "this long (time to update the platform's side).",
    )
    webhook_coalesce_s: float = Field(
        default=0.25,
        ge=0,
        description="A drain job waits this long before re-fetching, so a burst of events for "
        "the same items becomes one fetch per item.",
    )
    webhook_drain_batch: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Items a drain re-fetches and indexes together (one embedding batch).",
    )
    webhook_fetch_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Items of one connector re-fetched at the same time by a drain.",
    )
    webhook_keywords_first: bool = Field(
        default=True,
        description="Index a webhook's item for keyword search first (searchable in about a "
        "second) and add its dense vectors right after; false writes both at once (an item "
        "becomes searchable only after the model has encoded it).",
    )

    # --- Egress and file imports (what tenants can make the server reach) ---------------------
    import_root: Path | None = Field(
        default=None,
        description="File imports (`helpdesk ingest file|folder|reviews` and the connectors "
        "they store) read only below this folder, checked at every sync. Unset: "
        "data_dir/imports.",
    )
    egress_allowed_hosts: str | None = Field(
        default=None,
        description="Comma list of extra connector hosts (custom helpdesk domains): "
        "help.acme.com exactly, or *.acme.com for its subdomains. https and public "
        "addresses are still required.",
    )
    egress_max_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest response body one connector request may return; the read is "
        "aborted past it.",
    )
    egress_allow_loopback_for_tests: bool = Field(
        default=False,
        description="TESTS ONLY: let connectors reach http and loopback replay servers. "
        "Refused when environment is production.",
    )

    # --- Replies out: review replies, alerts, ticket notes (backend/replies) --------------
    reply_alert_rating_threshold: float = Field(
        default=2.0,
        ge=0,
        le=5,
        description="Stars out of 5 at or below which a new review alerts the company's "
        "webhook (a company may set its own).",
    )
    reply_max_review_age_days: float = Field(
        default=30.0,
        gt=0,
        description="Reviews written longer ago than this get no draft and no alert when "
        "ingested (a first sync's backlog).",
    )
    reply_max_chars: int = Field(
        default=4000,
        ge=100,
        le=20_000,
        description="Longest review reply (Google Business Profile accepts 4096 bytes).",
    )
    reply_max_attempts: int = Field(
        default=4,
        ge=1,
        le=10,
        description="Tries per publish, note or alert call (429 and 5xx are retried).",
    )
    reply_max_retry_after_s: float = Field(
        default=60.0,
        ge=0,
        description="Longest Retry-After a publish, note or alert call waits out; a longer "
        "one fails the call (retryable).",
    )
    reply_answer_excerpt_chars: int = Field(
        default=1000,
        ge=0,
        le=10_000,
        description="How much of a platform's answer to a publish is recorded.",
    )

    # --- Secrets ---------------------------------------------------------------------------
    encryption_key: SecretStr | None = Field(
        default=None,
        description=(
            "Base64 of 32 random bytes: AES-256-GCM key for connector credentials. Unset in "
            "development: a key is generated into data_dir."
        ),
    )

    # --- Privacy -----------------------------------------------------------------------------
    privacy_phone_region: str | None = Field(
        default="US",
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166 region for requester phone numbers written without a country "
        "code; requester identifiers are stored in one canonical form (e-mails lower-cased, "
        "phones E.164) so erasure and access requests find them.",
    )

    @model_validator(mode="after")
    def _heartbeat_well_inside_takeover(self) -> Settings:
        # A live sync must beat several times per takeover window, or it is taken over
        # while it works (and again, and again).
        if self.sync_heartbeat_s * 3 > self.sync_takeover_s:
            raise ValueError(
                "HELPDESK_SYNC_HEARTBEAT_S must be at most a third of HELPDESK_SYNC_TAKEOVER_S"
            )
        return self

    # --- Abuse controls: plans, rate limits, bounded input ---------------------------------
    max_request_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="Largest request body the API reads (413 above it, checked from "
        "Content-Length and while the body streams in); nginx.conf sets the same limit.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token Prometheus must send to /metrics on the API port. Unset: "
        "/metrics there answers 404 (use HELPDESK_METRICS_BIND).",
    )
    metrics_bind: str | None = Field(
        default=None,
        description="host:port of a separate metrics listener (Prometheus text at /metrics, "
        "no token), e.g. 127.0.0.1:9464 on a private interface. Unset: none.",
    )
    plan_default_requests_per_minute: int | None = Field(
        default=600,
        ge=1,
        description="API requests per minute per company when its plan does not say "
        "(sliding window; 429 with Retry-After above it). Empty: unlimited.",
    )
    plan_default_assistant_calls_per_month: int | None = Field(
        default=None,
        ge=0,
        description="Assistant calls (answers, drafts, review replies, summaries) per "
        "calendar month (UTC) per company when its plan does not say. Empty: unlimited.",
    )
    plan_default_documents: int | None = Field(
        default=None,
        ge=0,
        description="Indexed documents per company when its plan does not say. Empty: unlimited.",
    )
    plan_default_connectors: int | None = Field(
        default=25,
        ge=0,
        description="Connectors per company when its plan does not say (409 "
        "`plan_limit_connectors` beyond it). Empty: unlimited.",
    )
    plan_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a process remembers a company's plan, CORS origins and LLM "
        "routes and budget (a change made through another process applies here at most "
        "this late).",
    )

    @field_validator(
        "plan_default_requests_per_minute",
        "plan_default_assistant_calls_per_month",
        "plan_default_documents",
        "plan_default_connectors",
        mode="before",
    )
    @classmethod
    def _unlimited_plan_default(cls, value: object) -> object:
        # HELPDESK_PLAN_DEFAULT_REQUESTS_PER_MINUTE=unlimited (or empty) lifts the default.
        if isinstance(value, str) and value.strip().lower() in ("", "unlimited", "none"):
            return None
        return value

    @property
    def in_process_jobs(self) -> bool:
        """Whether sync jobs run inside the API process. Without Redis there is no shared
        queue; with the embedded vector engine only one process may open its files (see
        backend.vectors.edge), and that process is the API — so a separate worker could
        not write the vectors the API searches."""
        return not (self.redis_url or self.redis_cluster_nodes) or self.qdrant_url is None

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_import_root(self) -> Path:
        root = self.import_root if self.import_root is not None else self.data_dir / "imports"
        return root.expanduser().resolve()

    @model_validator(mode="after")
    def _no_test_egress_in_production(self) -> Settings:
        if self.environment == "production" and self.egress_allow_loopback_for_tests:
            raise ValueError("HELPDESK_EGRESS_ALLOW_LOOPBACK_FOR_TESTS is refused in production")
        return self
