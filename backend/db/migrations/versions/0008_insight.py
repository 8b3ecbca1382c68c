"""Insight: triage suggestions and their feedback, draft outcomes, and the analytics rollups.

The rollups are kept by triggers, incrementally, in the same transaction as the rows they
count: an analytics query reads a few hundred rollup rows per company and day instead of
scanning raw interactions. Interactions and feedback arrive in batches (the recorder writes
hundreds of rows per statement), so their triggers are statement-level with a transition
table: one grouped upsert per batch, not one per row. Reviews (upserted and deleted one row
at a time by ingest) and sync runs (finished one at a time) use row triggers that subtract
the old row's contribution and add the new one's.

Every table follows the tenancy rule of 0001: ``company_id``, RLS enabled and forced, one
policy with ``USING`` and ``WITH CHECK``, an index leading with ``company_id``. Trigger
functions run as the caller (the runtime role), so RLS binds what they write too.

Revision ID: 0008
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "current_setting('app.company_id', true)"

NEW_TABLES = (
    "triage_suggestions",
    "triage_feedback",
    "analytics_calls_daily",
    "analytics_questions_weekly",
    "analytics_feedback_daily",
    "analytics_triage_daily",
    "analytics_reviews_daily",
    "analytics_sync_daily",
)


def _company_fk() -> sa.Column[object]:
    return sa.Column(
        "company_id",
        sa.Text,
        sa.ForeignKey("companies.company_id", ondelete="CASCADE"),
        nullable=False,
    )


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _count(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def enable_tenant_rls(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING (company_id = {TENANT}) WITH CHECK (company_id = {TENANT})"
    )


# Latency histograms: bucket b holds latencies with floor(ln(1 + ms) * 10) = b, about 10%
# wide at every scale (0..138 up to 1,000 s); -1 holds calls without a latency.
_FUNCTIONS = """
CREATE FUNCTION insight_rollup_interactions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- One row per day, task and provider, whatever the volume: calls, cache hits, usage,
    -- and the latency histogram as {bucket: calls}, merged key by key.
    INSERT INTO analytics_calls_daily AS t
        (company_id, day, task, provider, calls, cache_hits, prompt_tokens,
         completion_tokens, cost_usd, latency_histogram)
    SELECT company_id, day, task, provider, sum(calls), sum(cache_hits), sum(prompt_tokens),
           sum(completion_tokens), sum(cost_usd), jsonb_object_agg(bucket, calls)
    FROM (
        SELECT company_id, (created_at AT TIME ZONE 'UTC')::date AS day, task,
               coalesce(provider, '') AS provider,
               coalesce(floor(ln(1 + greatest(latency_ms, 0)) * 10)::int, -1) AS bucket,
               count(*) AS calls, count(*) FILTER (WHERE cache_hit) AS cache_hits,
               sum(prompt_tokens) AS prompt_tokens,
               sum(completion_tokens) AS completion_tokens, sum(cost_usd) AS cost_usd
        FROM new_rows
        GROUP BY 1, 2, 3, 4, 5
    ) AS per_bucket
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (company_id, day, task, provider) DO UPDATE SET
        calls = t.calls + excluded.calls,
        cache_hits = t.cache_hits + excluded.cache_hits,
        prompt_tokens = t.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = t.completion_tokens + excluded.completion_tokens,
        cost_usd = t.cost_usd + excluded.cost_usd,
        latency_histogram = (
            SELECT jsonb_object_agg(bucket, total) FROM (
                SELECT bucket, sum(calls::bigint) AS total
                FROM (SELECT * FROM jsonb_each_text(t.latency_histogram)
                      UNION ALL
                      SELECT * FROM jsonb_each_text(excluded.latency_histogram))
                     AS both_histograms(bucket, calls)
                GROUP BY bucket
            ) AS merged
        );

    -- Questions by week: a window's top questions read one row per week and question.
    -- Only what people ask: agents' questions and the subjects of tickets drafted for
    -- (review texts and summaries are not questions).
    INSERT INTO analytics_questions_weekly AS t
        (company_id, week, task, question_hash, question, asks)
    SELECT company_id, date_trunc('week', created_at AT TIME ZONE 'UTC')::date, task,
           md5(lower(btrim(question))), min(left(btrim(question), 500)), count(*)
    FROM new_rows
    WHERE task IN ('answer', 'draft_reply') AND btrim(question) <> ''
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (company_id, week, task, question_hash) DO UPDATE SET
        asks = t.asks + excluded.asks;
    RETURN NULL;
END $$;


CREATE FUNCTION insight_forget_questions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A deleted interaction (a GDPR erasure) takes its ask back from the weekly questions,
    -- and a question nobody else asked that week leaves the rollup with its text: personal
    -- data must not outlive its erasure in an aggregate. Call counts, latency and cost
    -- carry no personal data and stay as they were.
    UPDATE analytics_questions_weekly AS t SET asks = t.asks - gone.asks
    FROM (
        SELECT company_id, date_trunc('week', created_at AT TIME ZONE 'UTC')::date AS week,
               task, md5(lower(btrim(question))) AS question_hash, count(*) AS asks
        FROM old_rows
        WHERE task IN ('answer', 'draft_reply') AND btrim(question) <> ''
        GROUP BY 1, 2, 3, 4
    ) AS gone
    WHERE t.company_id = gone.company_id AND t.week = gone.week AND t.task = gone.task
          AND t.question_hash = gone.question_hash;
    DELETE FROM analytics_questions_weekly
    WHERE asks <= 0 AND company_id IN (SELECT DISTINCT company_id FROM old_rows);
    RETURN NULL;
END $$;


CREATE FUNCTION insight_rollup_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_feedback_daily AS t
        (company_id, day, task, rating, reason, outcome, entries)
    SELECT f.company_id, (f.created_at AT TIME ZONE 'UTC')::date, coalesce(i.task, ''),
           coalesce(f.rating, ''), coalesce(f.reason, ''),
           coalesce(f.outcome, CASE WHEN f.inserted THEN 'inserted' ELSE '' END), count(*)
    FROM new_rows f
    LEFT JOIN interactions i ON i.id = f.interaction_id
    GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (company_id, day, task, rating, reason, outcome) DO UPDATE SET
        entries = t.entries + excluded.entries;
    RETURN NULL;
END $$;


CREATE FUNCTION insight_rollup_triage_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_triage_daily AS t (company_id, day, field, accepted, overridden)
    SELECT company_id, (created_at AT TIME ZONE 'UTC')::date, field,
           count(*) FILTER (WHERE accepted), count(*) FILTER (WHERE NOT accepted)
    FROM new_rows
    GROUP BY 1, 2, 3
    ON CONFLICT (company_id, day, field) DO UPDATE SET
        accepted = t.accepted + excluded.accepted,
        overridden = t.overridden + excluded.overridden;
    RETURN NULL;
END $$;


-- One review's contribution (direction +1 or -1) to its day, platform and location. Sentiment
-- follows the star rating (4-5 positive, 3 neutral, 1-2 negative) or, without one, the
-- sentiment ingest stored in the metadata.
CREATE FUNCTION insight_add_review(r documents, direction integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    rating numeric := CASE WHEN jsonb_typeof(r.metadata -> 'rating') = 'number'
                           THEN (r.metadata ->> 'rating')::numeric END;
    mood text := CASE
        WHEN rating IS NOT NULL AND rating >= 4 THEN 'positive'
        WHEN rating IS NOT NULL AND rating >= 3 THEN 'neutral'
        WHEN rating IS NOT NULL THEN 'negative'
        ELSE coalesce(r.metadata ->> 'sentiment', '') END;
BEGIN
    INSERT INTO analytics_reviews_daily AS t
        (company_id, day, platform, location, reviews, rated, rating_sum,
         positive, neutral, negative)
    VALUES (
        r.company_id,
        (coalesce(r.source_created_at, r.created_at) AT TIME ZONE 'UTC')::date,
        coalesce(nullif(r.metadata ->> 'platform', ''), r.source),
        coalesce(r.metadata ->> 'location', ''),
        direction,
        CASE WHEN rating IS NULL THEN 0 ELSE direction END,
        coalesce(rating, 0) * direction,
        CASE WHEN mood = 'positive' THEN direction ELSE 0 END,
        CASE WHEN mood = 'neutral' THEN direction ELSE 0 END,
        CASE WHEN mood = 'negative' THEN direction ELSE 0 END)
    ON CONFLICT (company_id, day, platform, location) DO UPDATE SET
        reviews = t.reviews + excluded.reviews,
        rated = t.rated + excluded.rated,
        rating_sum = t.rating_sum + excluded.rating_sum,
        positive = t.positive + excluded.positive,
        neutral = t.neutral + excluded.neutral,
        negative = t.negative + excluded.negative;
END $$;


CREATE FUNCTION insight_rollup_reviews() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.kind = 'review' THEN
        PERFORM insight_add_review(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.kind = 'review' THEN
        PERFORM insight_add_review(NEW, 1);
    END IF;
    RETURN NULL;
END $$;


-- A sync run counts once, on the day it finished, when it reaches a final status.
CREATE FUNCTION insight_rollup_sync_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('succeeded', 'failed', 'cancelled')
       AND OLD.status NOT IN ('succeeded', 'failed', 'cancelled') THEN
        INSERT INTO analytics_sync_daily AS t
            (company_id, day, connector_id, runs, succeeded, failed_runs, fetched, upserted,
             deleted, failed_items, duration_ms, last_status, last_finished_at)
        VALUES (
            NEW.company_id,
            (coalesce(NEW.finished_at, now()) AT TIME ZONE 'UTC')::date,
            NEW.connector_id, 1,
            (NEW.status = 'succeeded')::int, (NEW.status = 'failed')::int,
            NEW.fetched, NEW.upserted, NEW.deleted, NEW.failed,
            coalesce(extract(epoch FROM NEW.finished_at - NEW.started_at) * 1000, 0)::bigint,
            NEW.status, coalesce(NEW.finished_at, now()))
        ON CONFLICT (company_id, day, connector_id) DO UPDATE SET
            runs = t.runs + 1,
            succeeded = t.succeeded + excluded.succeeded,
            failed_runs = t.failed_runs + excluded.failed_runs,
            fetched = t.fetched + excluded.fetched,
            upserted = t.upserted + excluded.upserted,
            deleted = t.deleted + excluded.deleted,
            failed_items = t.failed_items + excluded.failed_items,
            duration_ms = t.duration_ms + excluded.duration_ms,
            last_status = CASE WHEN excluded.last_finished_at >= t.last_finished_at
                               THEN excluded.last_status ELSE t.last_status END,
            last_finished_at = greatest(t.last_finished_at, excluded.last_finished_at);
    END IF;
    RETURN NULL;
END $$;
"""

_TRIGGERS = """
CREATE TRIGGER insight_interactions AFTER INSERT ON interactions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION insight_rollup_interactions();
CREATE TRIGGER insight_interactions_erased AFTER DELETE ON interactions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION insight_forget_questions();
CREATE TRIGGER insight_feedback AFTER INSERT ON feedback
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION insight_rollup_feedback();
CREATE TRIGGER insight_triage_feedback AFTER INSERT ON triage_feedback
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION insight_rollup_triage_feedback();
CREATE TRIGGER insight_reviews AFTER INSERT OR UPDATE OR DELETE ON documents
    FOR EACH ROW EXECUTE FUNCTION insight_rollup_reviews();
CREATE TRIGGER insight_sync_runs AFTER UPDATE OF status ON sync_runs
    FOR EACH ROW EXECUTE FUNCTION insight_rollup_sync_runs();
"""


def upgrade() -> None:
    # What the widget reports about a draft: inserted as is, inserted then edited, discarded.
    op.add_column("feedback", sa.Column("outcome", sa.Text))
    op.create_check_constraint(
        "feedback_outcome",
        "feedback",
        "outcome IS NULL OR outcome IN ('inserted', 'edited', 'discarded')",
    )

    op.create_table(
        "triage_suggestions",
        _company_fk(),
        sa.Column(
            "document_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("suggestions", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("neighbors", pg.JSONB, nullable=False, server_default="[]"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("company_id", "document_id"),
    )
    op.create_index(
        "ix_triage_suggestions_external", "triage_suggestions", ["company_id", "external_id"]
    )
    op.create_table(
        "triage_feedback",
        sa.Column(
            "id",
            pg.UUID(as_uuid=True),
            primary_key=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        _company_fk(),
        sa.Column("external_id", sa.Text),
        sa.Column("field", sa.Text, nullable=False),
        sa.Column("suggested", sa.Text, nullable=False),
        sa.Column("chosen", sa.Text),
        sa.Column("accepted", sa.Boolean, nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(
            "field IN ('category', 'tags', 'group', 'priority', 'sentiment', 'language')",
            name="triage_feedback_field",
        ),
    )
    op.create_index("ix_triage_feedback_company", "triage_feedback", ["company_id", "created_at"])

    op.create_table(
        "analytics_calls_daily",
        _company_fk(),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("task", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        _count("calls"),
        _count("cache_hits"),
        _count("prompt_tokens"),
        _count("completion_tokens"),
        sa.Column("cost_usd", sa.Numeric(16, 6), nullable=False, server_default="0"),
        # {bucket: calls}, bucket = floor(ln(1 + latency_ms) * 10), -1 = no latency.
        sa.Column("latency_histogram", pg.JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("company_id", "day", "task", "provider"),
    )
    op.create_table(
        "analytics_questions_weekly",
        _company_fk(),
        sa.Column("week", sa.Date, nullable=False),
        sa.Column("task", sa.Text, nullable=False),
        sa.Column("question_hash", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        _count("asks"),
        sa.PrimaryKeyConstraint("company_id", "week", "task", "question_hash"),
    )
    # The top questions' texts are fetched by hash, after ranking.
    op.create_index(
        "ix_questions_weekly_hash", "analytics_questions_weekly", ["company_id", "question_hash"]
    )
    op.create_table(
        "analytics_feedback_daily",
        _company_fk(),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("task", sa.Text, nullable=False),
        sa.Column("rating", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        _count("entries"),
        sa.PrimaryKeyConstraint("company_id", "day", "task", "rating", "reason", "outcome"),
    )
    op.create_table(
        "analytics_triage_daily",
        _company_fk(),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("field", sa.Text, nullable=False),
        _count("accepted"),
        _count("overridden"),
        sa.PrimaryKeyConstraint("company_id", "day", "field"),
    )
    op.create_table(
        "analytics_reviews_daily",
        _company_fk(),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        _count("reviews"),
        _count("rated"),
        sa.Column("rating_sum", sa.Numeric(16, 2), nullable=False, server_default="0"),
        _count("positive"),
        _count("neutral"),
        _count("negative"),
        sa.PrimaryKeyConstraint("company_id", "day", "platform", "location"),
    )
    op.create_table(
        "analytics_sync_daily",
        _company_fk(),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("connector_id", pg.UUID(as_uuid=True), nullable=False),
        _count("runs"),
        _count("succeeded"),
        _count("failed_runs"),
        _count("fetched"),
        _count("upserted"),
        _count("deleted"),
        _count("failed_items"),
        _count("duration_ms"),
        sa.Column("last_status", sa.Text, nullable=False),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "day", "connector_id"),
    )
    for table in NEW_TABLES:
        enable_tenant_rls(table)
    # One statement per call: asyncpg prepares each, and a prepared statement holds one.
    for statement in (*_FUNCTIONS.split("\n\n\n"), *_TRIGGERS.strip().split(";\n")):
        op.execute(statement)


def downgrade() -> None:
    for trigger, table in (
        ("insight_interactions", "interactions"),
        ("insight_interactions_erased", "interactions"),
        ("insight_feedback", "feedback"),
        ("insight_reviews", "documents"),
        ("insight_sync_runs", "sync_runs"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    for table in reversed(NEW_TABLES):
        op.drop_table(table)
    for function in (
        "insight_rollup_interactions()",
        "insight_forget_questions()",
        "insight_rollup_feedback()",
        "insight_rollup_triage_feedback()",
        "insight_rollup_reviews()",
        "insight_add_review(documents, integer)",
        "insight_rollup_sync_runs()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_constraint("feedback_outcome", "feedback", type_="check")
    op.drop_column("feedback", "outcome")
