"""Directory users get a phone number (E.164), for SMS notifications.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 23:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("phone", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    op.drop_column("users", "phone")
