"""The tenant's lost-reason categories: what deal events and reports may carry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 18:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deal_settings",
        sa.Column("lost_reasons", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("deal_settings", "lost_reasons")
