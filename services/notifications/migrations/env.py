from crm_kit.db import kit_metadata
from crm_kit.runtime import run_alembic_env
from crm_notifications.models import Base

run_alembic_env([Base.metadata, kit_metadata])
