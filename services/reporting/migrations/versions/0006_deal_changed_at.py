"""When each projected deal's newest applied change happened (rm_deals.changed_at), so a
change redelivered after a newer one no longer moves the deal back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rm_deals", sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))
    # The deals already projected: their last change is not recorded, but it is no earlier
    # than their creation or their close. A lower bound keeps every newer change applying;
    # only an older one arriving later could still overwrite, as before this column.
    op.execute("UPDATE rm_deals SET changed_at = greatest(created_at, closed_at)")
    op.alter_column("rm_deals", "changed_at", nullable=False)


def downgrade() -> None:
    op.drop_column("rm_deals", "changed_at")
