"""Lost reasons: the reason on each projected deal and deals lost per reason (agg_lost).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 18:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "rm_deals", sa.Column("lost_reason", sa.Text(), server_default="", nullable=False)
    )
    op.create_table(
        "agg_lost",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("closed_day", sa.Date(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("deals", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=30, scale=4), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "closed_day",
            "pipeline_id",
            "owner_id",
            "owner_team",
            "reason",
            "currency",
            name=op.f("pk_agg_lost"),
        ),
    )
    # Deals lost before the events carried a reason: counted under "" (no reason known),
    # matching their rm_deals row, so later changes subtract what was added here. A
    # rebuild (POST /v1/reports/rebuild) reads the reasons of newer events.
    op.execute(
        """
        INSERT INTO agg_lost
            (tenant_id, closed_day, pipeline_id, owner_id, owner_team, reason, currency,
             deals, amount)
        SELECT tenant_id, (closed_at AT TIME ZONE 'UTC')::date, pipeline_id, owner_id,
               owner_team, '', currency, count(*), sum(amount)
        FROM rm_deals
        WHERE status = 'lost' AND closed_at IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        """
    )


def downgrade() -> None:
    op.drop_table("agg_lost")
    op.drop_column("rm_deals", "lost_reason")
