"""Bearer tokens in production (JWKS) mode: only a token the identity provider signed
for us, naming our audience and its issuer, within its validity, with a known role and
region, gets past the gateway; every other one is a 401 problem+json saying why."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings
from crm_kit.auth import AUDIENCE, InvalidToken, TokenVerifier

ISSUER = "https://login.example.test/"
PROVIDER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PROVIDER_EC_KEY = ec.generate_private_key(ec.SECP256R1())
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: Any, kid: str, algorithm: Any) -> dict[str, Any]:
    public = json.loads(algorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig"}


@contextmanager
def _key_set(*keys: dict[str, Any]) -> Iterator[str]:
    """An identity provider's key set, served over HTTP on loopback (a real peer)."""
    body = json.dumps({"keys": list(keys)}).encode()

    class KeySet(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeySet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    with _key_set(
        _jwk(PROVIDER_KEY, "rsa-1", RSAAlgorithm), _jwk(PROVIDER_EC_KEY, "ec-1", ECAlgorithm)
    ) as url:
        yield url


@pytest.fixture
async def gateway(jwks_url: str) -> AsyncIterator[httpx.AsyncClient]:
    config = GatewaySettings(jwt_secret="", jwks_url=jwks_url, jwt_issuer=ISSUER, web_dir="")
    transport = httpx.ASGITransport(app=create_app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u_anna",
        "tenant": "acme",
        "roles": ["sales_rep"],
        "region": "eu",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims: dict[str, Any], key: Any = PROVIDER_KEY, kid: str = "rsa-1") -> str:
    algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'rsa-1'})}.{part(claims)}."


def _hs256_with_the_public_key(claims: dict[str, Any]) -> str:
    # The classic confusion attack: the public key (which anyone may fetch) as an HMAC
    # secret. PyJWT refuses to sign with a PEM key, so the signature is made by hand.
    import hashlib
    import hmac

    pem = PROVIDER_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = part(json.dumps(claims).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{part(signature)}"


async def _answer(gateway: httpx.AsyncClient, token: str) -> httpx.Response:
    return await gateway.get("/v1/contacts", headers={"Authorization": f"Bearer {token}"})


async def test_a_token_the_provider_signed_for_us_gets_past_authentication(
    gateway: httpx.AsyncClient,
) -> None:
    for token in (_signed(_claims()), _signed(_claims(), PROVIDER_EC_KEY, "ec-1")):
        reply = await _answer(gateway, token)
        # Past authentication: no service is configured behind this gateway, so the
        # request ends where the services would be, not at the door (401).
        assert reply.status_code == 404, reply.text
        assert "no contacts service is configured" in reply.json()["detail"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("alg none", "alg"),
        ("HS256 signed with the public key", "alg"),
        ("signed by a stranger's key", "signing key"),
        ("stranger's key under our kid", "signature"),
        ("no kid, and the provider has several keys", "names no key"),
        ("wrong audience", "audience"),
        ("wrong issuer", "issuer"),
        ("no issuer", "iss"),
        ("no expiry", "exp"),
        ("expired", "expired"),
        ("not yet valid", "not yet valid"),
        ("unknown role", "role"),
        ("unknown home region", "region"),
    ],
)
async def test_every_other_token_is_refused_saying_why(
    gateway: httpx.AsyncClient, case: str, expected: str
) -> None:
    now = int(time.time())
    token = {
        "alg none": lambda: _unsigned(_claims()),
        "HS256 signed with the public key": lambda: _hs256_with_the_public_key(_claims()),
        "signed by a stranger's key": lambda: _signed(_claims(), STRANGER_KEY, "other"),
        "stranger's key under our kid": lambda: _signed(_claims(), STRANGER_KEY, "rsa-1"),
        "no kid, and the provider has several keys": lambda: jwt.encode(
            _claims(), PROVIDER_KEY, algorithm="RS256"
        ),
        "wrong audience": lambda: _signed(_claims(aud="another-app")),
        "wrong issuer": lambda: _signed(_claims(iss="https://evil.example.test/")),
        "no issuer": lambda: _signed(_claims(iss=None)),
        "no expiry": lambda: _signed(_claims(exp=None)),
        "expired": lambda: _signed(_claims(iat=now - 7200, exp=now - 3600)),
        "not yet valid": lambda: _signed(_claims(nbf=now + 3600)),
        "unknown role": lambda: _signed(_claims(roles=["superuser"])),
        "unknown home region": lambda: _signed(_claims(region="mars")),
    }[case]()
    reply = await _answer(gateway, token)
    assert reply.status_code == 401, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["www-authenticate"] == "Bearer"
    assert expected in reply.json()["detail"].lower(), reply.json()["detail"]


def test_a_provider_with_one_key_may_leave_kid_out() -> None:
    """RFC 7515 makes `kid` optional; a provider with a single key (oidc-provider-mock,
    small Keycloak realms) signs without it, and only that key may have signed."""
    with _key_set(_jwk(PROVIDER_KEY, "only", RSAAlgorithm)) as url:
        verifier = TokenVerifier(jwks_url=url, issuer=ISSUER, regions=["eu"])
        principal = verifier.verify(jwt.encode(_claims(), PROVIDER_KEY, algorithm="RS256"))
        assert (principal.tenant_id, principal.user_id) == ("acme", "u_anna")
        with pytest.raises(InvalidToken, match="Signature verification failed"):
            verifier.verify(jwt.encode(_claims(), STRANGER_KEY, algorithm="RS256"))


def test_jwks_without_an_issuer_does_not_start(jwks_url: str) -> None:
    with pytest.raises(ValueError, match="CRM_JWT_ISSUER"):
        TokenVerifier(jwks_url=jwks_url)
