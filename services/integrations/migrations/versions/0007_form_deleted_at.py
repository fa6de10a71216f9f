"""A deleted form is kept (its submissions still complete) but no longer answers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 00:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("forms", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("forms", "deleted_at")
