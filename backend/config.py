"""Settings, read from ``HELPDESK_*`` environment variables (and an optional ``.env``).

With nothing set the service runs on its embedded default: an embedded PostgreSQL in
``data_dir``, Qdrant's in-process engine on disk, an in-process cache, a local folder as
object store and the offline embedding model. Each ``*_url`` switches one part to a server.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.retrieval.fusion import DEFAULT_FUSION_DENSE_WEIGHT
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
        default="*",
        description="Origins allowed to call the API from a browser (the widget), comma "
        "separated; '*' for any. Credentials are bearer tokens, never cookies.",
    )
    widget_dir: Path = Field(
        default=Path("frontend-widget/dist"),
        description="Built widget files, served at /widget/ when the folder exists.",
    )
    demo_mode: bool = Field(
        default=False, description="Serve /demo: the widget on a sample ticket (`helpdesk demo`)."
    )
    demo_company_id: str = "demo"
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
        default=None, description="JSON: fallback chains per task and per company."
    )
    llm_budgets: str | None = Field(
        default=None, description="JSON: monthly token/cost budgets per company."
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
    sync_stale_minutes: int = Field(
        default=30, description="A running sync without a page for this long lost its worker."
    )

    # --- Secrets ---------------------------------------------------------------------------
    encryption_key: SecretStr | None = Field(
        default=None,
        description=(
            "Base64 of 32 random bytes: AES-256-GCM key for connector credentials. Unset in "
            "development: a key is generated into data_dir."
        ),
    )

    @cached_property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def in_process_jobs(self) -> bool:
        return not (self.redis_url or self.redis_cluster_nodes)

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()
