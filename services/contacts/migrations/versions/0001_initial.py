"""Initial schema: contacts, companies, members, timeline, consents, custom fields,
tenant policies, and the kit's outbox, inbox, idempotency and audit tables.

Revision ID: 0001
"""

from alembic import op
from crm_contacts.models import Base
from crm_kit.db import create_kit_tables, drop_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Trigram search tolerant of typos; the extension ships with PostgreSQL contrib.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    bind = op.get_bind()
    create_kit_tables(bind)
    Base.metadata.create_all(bind)


def downgrade() -> None:
    bind = op.get_bind()
    Base.metadata.drop_all(bind)
    drop_kit_tables(bind)
