"""What the integrations service reads from the environment besides the common settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntegrationsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_INTEGRATIONS_", extra="ignore")

    # Seconds between passes of the workers (pending submissions, imports, deliveries).
    worker_interval: float = Field(default=0.5, gt=0)
    # First retry of a stored submission or a webhook delivery, seconds (then doubling).
    retry_base_seconds: float = Field(default=10.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    # A delivery is given up after this many attempts ...
    delivery_max_attempts: int = Field(default=5, ge=1)
    # ... and an endpoint is disabled after this many failed deliveries in a row.
    disable_after_failures: int = Field(default=3, ge=1)
    webhook_timeout: float = Field(default=5.0, gt=0)
    # Rows of an import read per batch; written in groups of `import_group_size` rows (one
    # contacts call, one transaction each), `import_concurrency` groups at a time.
    import_batch_size: int = Field(default=200, ge=1)
    import_group_size: int = Field(default=50, ge=1)
    import_concurrency: int = Field(default=4, ge=1)
    # Deadline of one group write (a transaction of up to `import_group_size` contacts).
    import_write_timeout: float = Field(default=60.0, gt=0)
    # An upload not finished, or a file not imported, this many seconds after it was last
    # touched is expired and its file removed; the sweep looks every `import_sweep_interval`.
    import_abandoned_after: float = Field(default=24 * 3600.0, gt=0)
    import_sweep_interval: float = Field(default=5.0, gt=0)
    # How far an uploaded XLSX may expand once uncompressed (see tabular.XlsxLimits): the
    # shared-strings table and other parts openpyxl loads whole, each worksheet, the whole.
    import_xlsx_max_table_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    import_xlsx_max_sheet_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    import_xlsx_max_total_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)
    import_xlsx_max_parts: int = Field(default=1000, ge=1)
