"""deliveries.sending_since: set before a provider is asked to send, so a delivery whose
sender died mid-send is dead-lettered instead of sent a second time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 00:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deliveries", sa.Column("sending_since", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("deliveries", "sending_since")
