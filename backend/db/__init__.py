"""Postgres, the system of record: engines, the tenant-scoped session, models and repositories.

Everything that reads or writes tenant rows goes through :func:`tenant_session`, which sets
``app.company_id`` for one transaction; row-level security does the rest.
"""

from backend.db.session import Database, platform_session, tenant_session

__all__ = ["Database", "platform_session", "tenant_session"]
