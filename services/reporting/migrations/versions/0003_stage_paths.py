"""Funnel conversion from the set of stages each deal entered (agg_stage_paths).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 17:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agg_stage_paths",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("created_day", sa.Date(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("deals", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "created_day",
            "pipeline_id",
            "owner_id",
            "owner_team",
            "path",
            name=op.f("pk_agg_stage_paths"),
        ),
    )
    # The deals already projected: their entered stages are in rm_deals.reached, sorted
    # bytewise like Python's sorted() in projector.path_of.
    op.execute(
        """
        INSERT INTO agg_stage_paths
            (tenant_id, created_day, pipeline_id, owner_id, owner_team, path, deals)
        SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, pipeline_id, owner_id,
               owner_team,
               array_to_string(
                   ARRAY(SELECT DISTINCT s COLLATE "C" FROM unnest(reached) AS s ORDER BY 1),
                   ','),
               count(*)
        FROM rm_deals
        GROUP BY 1, 2, 3, 4, 5, 6
        """
    )


def downgrade() -> None:
    op.drop_table("agg_stage_paths")
