"""The alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config

import crm_contacts
from crm_kit.runtime import migrate, migrations_dir


def test_migrations_match_the_models(engines: Any) -> None:
    engines.postgres.ensure_database("contacts_migration_check")
    url = engines.postgres.url("contacts_migration_check")
    migrate(crm_contacts, url)
    migrate(crm_contacts, url)  # idempotent: a second run is a no-op
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(crm_contacts)))
    config.set_main_option("sqlalchemy.url", url)
    command.check(config)  # raises if autogenerate would find a difference
