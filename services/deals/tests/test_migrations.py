"""The alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config

import crm_deals
from crm_kit.runtime import migrate, migrations_dir


def test_migrations_match_the_models(deals_system: Any) -> None:
    deals_system.postgres.ensure_database("deals_migration_check")
    url = deals_system.postgres.url("deals_migration_check")
    migrate(crm_deals, url)
    migrate(crm_deals, url)  # idempotent: a second run is a no-op
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(crm_deals)))
    config.set_main_option("sqlalchemy.url", url)
    command.check(config)  # raises if autogenerate would find a difference
