"""Bearer JWTs: verified by the gateway, minted locally by `crm token`.

Production verifies RS256/ES256 tokens from the identity provider's JWKS
(CRM_JWKS_URL) issued by that provider (CRM_JWT_ISSUER); development uses a shared
HS256 signing key (CRM_JWT_SECRET). Either way a token must name its audience, issuer,
subject and expiry: a token that omits a claim is not trusted for lacking it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jwt

from crm_kit.context import ROLES, Principal

AUDIENCE = "atlas-crm"
DEV_ISSUER = "atlas-crm-dev"
REQUIRED_CLAIMS = ["aud", "iss", "sub", "exp"]
# Clocks of the identity provider and of the gateway may differ a little.
LEEWAY_SECONDS = 30


class InvalidToken(Exception):
    pass


def mint_token(
    secret: str,
    *,
    tenant: str,
    user: str,
    roles: Sequence[str],
    home_region: str,
    team: str = "",
    ttl_seconds: int = 8 * 3600,
) -> str:
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; roles are {', '.join(ROLES)}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "aud": AUDIENCE,
        "sub": user,
        "tenant": tenant,
        "roles": list(roles),
        "team": team,
        "region": home_region,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class TokenVerifier:
    def __init__(
        self,
        *,
        secret: str = "",
        jwks_url: str = "",
        issuer: str = "",
        regions: Sequence[str] = (),
    ) -> None:
        if not secret and not jwks_url:
            raise ValueError("configure CRM_JWT_SECRET (development) or CRM_JWKS_URL")
        if jwks_url and not issuer:
            # Any tenant of a shared identity provider could otherwise sign in here.
            raise ValueError("CRM_JWKS_URL needs CRM_JWT_ISSUER, the provider's issuer")
        self.secret = secret
        self.issuer = issuer or DEV_ISSUER
        self.regions = tuple(regions)
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None

    @property
    def fetches_keys(self) -> bool:
        """True when verifying may fetch the provider's keys (blocking I/O)."""
        return self._jwks is not None

    @staticmethod
    def _signing_key(token: str, jwks: jwt.PyJWKClient) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid:
            return jwks.get_signing_key(kid).key
        # `kid` is optional (RFC 7515): a provider with one signing key may leave it out.
        keys = jwks.get_signing_keys()
        if len(keys) != 1:
            raise jwt.InvalidTokenError("the token names no key (kid) and the provider has several")
        return keys[0].key

    def verify(self, token: str) -> Principal:
        try:
            if self._jwks is not None:
                # Only asymmetric algorithms: a token "signed" with the public key as an
                # HMAC secret, or with alg "none", never gets this far.
                key: Any = self._signing_key(token, self._jwks)
                algorithms = ["RS256", "ES256"]
            else:
                key, algorithms = self.secret, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=AUDIENCE,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        tenant, user, region = claims.get("tenant"), claims.get("sub"), claims.get("region")
        roles = tuple(r for r in claims.get("roles", []) if r in ROLES)
        if not tenant or not user or not roles:
            raise InvalidToken("token lacks tenant, sub or a known role")
        if not region or (self.regions and region not in self.regions):
            raise InvalidToken(f"token home region {region!r} is not one of {self.regions}")
        return Principal(
            tenant_id=str(tenant),
            user_id=str(user),
            roles=roles,
            team=str(claims.get("team") or ""),
            home_region=str(region),
        )
