"""Tenant default working hours, for users without their own and campaign contacts.

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
    op.create_table(
        "working_hours_defaults",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("start", sa.Text(), nullable=False),
        sa.Column("end", sa.Text(), nullable=False),
        sa.Column("days", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_working_hours_defaults")),
    )


def downgrade() -> None:
    op.drop_table("working_hours_defaults")
