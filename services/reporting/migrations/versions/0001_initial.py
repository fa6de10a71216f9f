"""Initial schema: the read model (deal states, aggregates, open tasks, members) and
the kit's outbox, inbox, idempotency keys and audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 23:00:43.513901
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agg_activity",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "owner_id", "kind", name=op.f("pk_agg_activity")
        ),
    )
    op.create_table(
        "agg_closed",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("closed_day", sa.Date(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("deals", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=30, scale=4), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "closed_day",
            "pipeline_id",
            "owner_id",
            "owner_team",
            "source",
            "outcome",
            "currency",
            name=op.f("pk_agg_closed"),
        ),
    )
    op.create_table(
        "agg_cohort",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("created_day", sa.Date(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("deals", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "created_day",
            "pipeline_id",
            "owner_id",
            "owner_team",
            "source",
            "status",
            name=op.f("pk_agg_cohort"),
        ),
    )
    op.create_table(
        "agg_cycles",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("closed_day", sa.Date(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("deals", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "closed_day",
            "pipeline_id",
            "owner_id",
            "owner_team",
            "days",
            name=op.f("pk_agg_cycles"),
        ),
    )
    op.create_table(
        "agg_forecast",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("close_date", sa.Text(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("deals", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=30, scale=4), nullable=False),
        sa.Column("weighted", sa.Numeric(precision=32, scale=6), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "close_date",
            "pipeline_id",
            "owner_id",
            "owner_team",
            "currency",
            name=op.f("pk_agg_forecast"),
        ),
    )
    op.create_table(
        "agg_stage_now",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("created_day", sa.Date(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("stage_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("deals", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=30, scale=4), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "created_day",
            "pipeline_id",
            "owner_id",
            "owner_team",
            "stage_id",
            "currency",
            name=op.f("pk_agg_stage_now"),
        ),
    )
    op.create_table(
        "agg_stage_reach",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("created_day", sa.Date(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("stage_id", sa.Text(), nullable=False),
        sa.Column("deals", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "created_day",
            "pipeline_id",
            "owner_id",
            "owner_team",
            "stage_id",
            name=op.f("pk_agg_stage_reach"),
        ),
    )
    op.create_table(
        "rm_deals",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("deal_id", sa.Text(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("stage_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("expected_close_date", sa.Text(), nullable=False),
        sa.Column("win_probability", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reached", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "deal_id", name=op.f("pk_rm_deals")),
    )
    op.create_table(
        "rm_members",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("team", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_rm_members")),
    )
    op.create_table(
        "rm_open_tasks",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("assignee_id", sa.Text(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "task_id", name=op.f("pk_rm_open_tasks")),
    )
    op.create_index(
        "ix_rm_open_tasks_assignee", "rm_open_tasks", ["tenant_id", "assignee_id"], unique=False
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Text(), nullable=False),
        sa.Column("actor_home_region", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("audit_log_tenant_at", "audit_log", ["tenant_id", "at"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column(
            "headers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(
        "outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "outbox_unpublished", table_name="outbox", postgresql_where=sa.text("published_at IS NULL")
    )
    op.drop_table("outbox")
    op.drop_table("inbox")
    op.drop_table("idempotency_keys")
    op.drop_index("audit_log_tenant_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_rm_open_tasks_assignee", table_name="rm_open_tasks")
    op.drop_table("rm_open_tasks")
    op.drop_table("rm_members")
    op.drop_table("rm_deals")
    op.drop_table("agg_stage_reach")
    op.drop_table("agg_stage_now")
    op.drop_table("agg_forecast")
    op.drop_table("agg_cycles")
    op.drop_table("agg_cohort")
    op.drop_table("agg_closed")
    op.drop_table("agg_activity")
