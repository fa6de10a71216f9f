"""Click-to-call: a telephony provider's call URL and signing secret, and the calls it
accepted (provider call id -> contact and the user who clicked).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("providers", sa.Column("call_url", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "providers", sa.Column("call_secret", sa.Text(), server_default="", nullable=False)
    )
    op.create_table(
        "call_requests",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("from_number", sa.Text(), nullable=False),
        sa.Column("to_number", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_requests")),
        sa.UniqueConstraint(
            "provider_id", "external_id", name=op.f("uq_call_requests_provider_id_external_id")
        ),
    )
    op.create_index("ix_call_requests_tenant_contact", "call_requests", ["tenant_id", "contact_id"])


def downgrade() -> None:
    op.drop_index("ix_call_requests_tenant_contact", table_name="call_requests")
    op.drop_table("call_requests")
    op.drop_column("providers", "call_secret")
    op.drop_column("providers", "call_url")
