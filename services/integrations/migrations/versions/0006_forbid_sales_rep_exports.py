"""A tenant setting that forbids exports to the sales_rep role.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tenant_settings",
        sa.Column(
            "forbid_sales_rep_exports", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("tenant_settings", "forbid_sales_rep_exports")
