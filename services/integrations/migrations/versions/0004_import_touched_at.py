"""Imports remember when they were last touched, so abandoned uploads can expire.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("imports", sa.Column("touched_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("imports", "touched_at")
