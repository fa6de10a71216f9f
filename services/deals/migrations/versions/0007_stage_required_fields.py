"""The deal custom fields a stage requires before a deal may enter it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 00:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "stages",
        sa.Column(
            "required_fields", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("stages", "required_fields")
