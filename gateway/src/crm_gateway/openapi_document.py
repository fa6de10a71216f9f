"""`python -m crm_gateway.openapi_document FILE`: the gateway's OpenAPI document, as
the web application's generated types are made from it (`make web-types`).

Builds the application object and asks it for its document: no server, no backing
service. A development key is configured so the development sign-in (which the web
application calls) is part of the document.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings


def document() -> dict[str, Any]:
    # Not a secret: no token is ever checked against it.
    config = GatewaySettings(jwt_secret="openapi-document", jwks_url="", web_dir="")  # noqa: S106
    return create_app(config).openapi()


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m crm_gateway.openapi_document FILE")
    Path(sys.argv[1]).write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
