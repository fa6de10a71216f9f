"""Saved views of the contacts list, private or shared with the owner's team.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 21:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_views",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("team", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("filters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sort", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_views")),
    )
    op.create_index("ix_contact_views_owner", "contact_views", ["tenant_id", "owner_id"])
    op.create_index(
        "ix_contact_views_team",
        "contact_views",
        ["tenant_id", "team"],
        postgresql_where=sa.text("shared"),
    )


def downgrade() -> None:
    op.drop_table("contact_views")
