"""Open tasks' assignees and links, for reads by field staff (crm_kit.task_access).

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
    op.create_table(
        "task_grants",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("assignee_id", sa.Text(), nullable=False),
        sa.Column("deal_id", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "task_id", name=op.f("pk_task_grants")),
    )


def downgrade() -> None:
    op.drop_table("task_grants")
