"""Directory users' working hours and days may be unset (empty): the tenant's default
working hours apply to them. Until now the directory filled in 09:00-18:00 and Monday to
Friday itself, so those exact values cannot be told apart from a choice; they become
unset. Nothing changes for anyone until a tenant sets a default other than those values.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 02:20:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("users", "working_hours_start", server_default="")
    op.alter_column("users", "working_hours_end", server_default="")
    op.alter_column("users", "working_days", server_default="{}")
    op.execute(
        "UPDATE users SET working_hours_start = '', working_hours_end = ''"
        " WHERE working_hours_start = '09:00' AND working_hours_end = '18:00'"
    )
    op.execute("UPDATE users SET working_days = '{}' WHERE working_days = '{1,2,3,4,5}'")


def downgrade() -> None:
    # The old schema had no "unset": write back the values the directory used to invent.
    op.execute(
        "UPDATE users SET working_hours_start = '09:00', working_hours_end = '18:00'"
        " WHERE working_hours_start = '' OR working_hours_end = ''"
    )
    op.execute("UPDATE users SET working_days = '{1,2,3,4,5}' WHERE working_days = '{}'")
    op.alter_column("users", "working_days", server_default=None)
    op.alter_column("users", "working_hours_end", server_default=None)
    op.alter_column("users", "working_hours_start", server_default=None)
