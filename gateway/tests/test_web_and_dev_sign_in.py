"""The gateway serves the built web application at its origin, and offers the
development sign-in only while the development signing key is in use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings


def _client(config: GatewaySettings) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(config))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(
        '<!doctype html><meta name="csp-nonce" content="__CSP_NONCE__"><div id="root"></div>'
    )
    (tmp_path / "assets" / "index-Ab12Cd.js").write_text("console.log('app')")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return tmp_path


@pytest.fixture
async def web(web_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(GatewaySettings(jwt_secret="dev", web_dir=str(web_dir))) as client:
        yield client


async def test_client_side_routes_load_the_application(web: httpx.AsyncClient) -> None:
    for path in ("/", "/contacts", "/contacts/eu_01JD0000000000000000000000", "/board?x=1"):
        reply = await web.get(path)
        assert reply.status_code == 200, path
        assert '<div id="root">' in reply.text
        assert reply.headers["cache-control"] == "no-cache"
        csp = reply.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        # The nonce that Mantine's <style> carries is the one the policy allows.
        nonce = reply.text.split('content="')[1].split('"')[0]
        assert nonce != "__CSP_NONCE__" and f"'nonce-{nonce}'" in csp
    first, second = await web.get("/"), await web.get("/")
    assert first.headers["content-security-policy"] != second.headers["content-security-policy"]


async def test_hashed_assets_are_cached_for_a_year(web: httpx.AsyncClient) -> None:
    reply = await web.get("/assets/index-Ab12Cd.js")
    assert reply.status_code == 200 and reply.text == "console.log('app')"
    assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert (await web.get("/favicon.svg")).headers["cache-control"] == "no-cache"
    # A stale asset is a 404, never index.html served as JavaScript.
    assert (await web.get("/assets/index-Old000.js")).status_code == 404
    assert "root:" not in (await web.get("/assets/../../../../etc/passwd")).text


async def test_the_api_paths_are_unchanged(web: httpx.AsyncClient) -> None:
    assert (await web.get("/healthz")).json() == {"status": "ok"}
    assert (await web.get("/openapi.json")).json()["info"]["title"] == "Atlas CRM"
    assert (await web.get("/metrics", follow_redirects=True)).status_code == 200
    missing = await web.get("/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    unauthenticated = await web.get("/v1/contacts")
    assert unauthenticated.status_code == 401
    assert (await web.post("/v1/contacts", json={})).status_code == 401
    # Not a GET: never the application.
    assert (await web.post("/contacts")).status_code == 404


async def test_without_a_build_only_the_api_is_served() -> None:
    async with _client(GatewaySettings(jwt_secret="dev")) as client:
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/contacts")).status_code == 404


def test_a_web_dir_without_a_build_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"index\.html"):
        create_app(GatewaySettings(jwt_secret="dev", web_dir=str(tmp_path)))


async def test_dev_sign_in_does_not_exist_with_the_identity_providers_keys() -> None:
    production = GatewaySettings(
        jwks_url="https://login.example.com/.well-known/jwks.json",
        jwt_issuer="https://login.example.com/",
    )
    async with _client(production) as client:
        assert (await client.get("/v1/dev/users", params={"tenant": "demo"})).status_code == 404
        reply = await client.post(
            "/v1/dev/token",
            json={"tenant": "demo", "user": "alice", "role": "admin", "region": "eu"},
        )
        assert reply.status_code == 404
        assert "/v1/dev/token" not in (await client.get("/openapi.json")).json()["paths"]


async def test_dev_token_refuses_an_unknown_role_or_region_by_field() -> None:
    async with _client(GatewaySettings(jwt_secret="dev")) as client:
        reply = await client.post(
            "/v1/dev/token",
            json={"tenant": "demo", "user": "alice", "role": "owner", "region": "eu"},
        )
        assert reply.status_code == 422
        assert [e["field"] for e in reply.json()["errors"]] == ["role"]
        reply = await client.post(
            "/v1/dev/token",
            json={"tenant": "demo", "user": "alice", "role": "admin", "region": "mars"},
        )
        assert reply.status_code == 422
        assert [e["field"] for e in reply.json()["errors"]] == ["region"]
