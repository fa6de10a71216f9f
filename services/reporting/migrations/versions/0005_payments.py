"""Payments received: the aggregate of the payments report and each counted payment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 17:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agg_payments",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("paid_day", sa.Date(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("payments", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=30, scale=4), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "paid_day",
            "pipeline_id",
            "owner_id",
            "owner_team",
            "method",
            "currency",
            name=op.f("pk_agg_payments"),
        ),
    )
    op.create_table(
        "rm_payments",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("paid_day", sa.Date(), nullable=False),
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("owner_team", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "payment_id", name=op.f("pk_rm_payments")),
    )


def downgrade() -> None:
    op.drop_table("rm_payments")
    op.drop_table("agg_payments")
