"""Imports across regions: a forwarded import knows its parent, a parent its children.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Whose rights a forwarded import writes with: the importer's home region and the
    # grant that lets them write here, so every write is audited as a transfer.
    op.add_column("imports", sa.Column("home_region", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "imports", sa.Column("cross_region_basis", sa.Text(), server_default="", nullable=False)
    )
    op.add_column("imports", sa.Column("parent_id", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "imports",
        sa.Column("child_ids", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("imports", "child_ids")
    op.drop_column("imports", "parent_id")
    op.drop_column("imports", "cross_region_basis")
    op.drop_column("imports", "home_region")
