"""Campaigns by SMS: the channel a campaign's messages go out on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 18:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "campaigns", sa.Column("channel", sa.Text(), server_default="email", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("campaigns", "channel")
