"""The alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

import crm_integrations
from crm_cli.cluster import Cluster
from crm_kit.runtime import migrate, migrations_dir


def test_migrations_match_the_models(cluster: Cluster) -> None:
    cluster.postgres.ensure_database("integrations_migration_check")
    url = cluster.postgres.url("integrations_migration_check")
    migrate(crm_integrations, url)
    migrate(crm_integrations, url)  # idempotent: a second run is a no-op
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(crm_integrations)))
    config.set_main_option("sqlalchemy.url", url)
    command.check(config)  # raises if autogenerate would find a difference
