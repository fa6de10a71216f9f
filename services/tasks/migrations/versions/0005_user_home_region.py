"""Directory users get a home region (role assignment prefers the client's region).

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
    op.add_column("users", sa.Column("home_region", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    op.drop_column("users", "home_region")
