from crm_integrations.models import Base
from crm_kit.db import kit_metadata
from crm_kit.runtime import run_alembic_env

run_alembic_env([Base.metadata, kit_metadata])
