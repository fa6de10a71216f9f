"""`python -m crm_gateway`: serve the REST API with uvicorn."""

from __future__ import annotations

import uvicorn

from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings
from crm_kit import telemetry


def main() -> None:
    config = GatewaySettings()
    telemetry.setup("gateway", log_level=config.log_level)
    app = create_app(config)
    uvicorn.run(
        app,
        host=config.http_host,
        port=config.http_port,
        log_config=None,
        access_log=False,
        # Forwarded headers are handled by the app, trusted only from CRM_TRUSTED_PROXIES
        # (uvicorn's own default would trust any local peer).
        proxy_headers=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
