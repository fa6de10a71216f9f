"""The built web application (web/dist), served at the gateway's origin.

Locally `crm up` sets CRM_WEB_DIR, so the browser talks to the API on the same origin
and there is no CORS to configure. Every GET or HEAD outside the API's own paths is
the application: a file of the build when one matches, else index.html, so client-side
routes (/contacts/eu_01…) load the application, which then routes in the browser.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

# Paths that stay the API's, answered exactly as without the web application.
API_PREFIXES = (
    "/v1",
    "/public",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
)
# Vite names every file under assets/ by its content hash: it never changes.
IMMUTABLE = "public, max-age=31536000, immutable"
NONCE_PLACEHOLDER = "__CSP_NONCE__"


def content_security_policy(nonce: str, sign_in_origin: str = "") -> str:
    """Only the gateway's own origin. Mantine writes its theme variables into a <style>
    element, which carries this response's nonce; nothing else inline is allowed. With
    an identity provider, the application also fetches its discovery document and
    token endpoint (authorization code with PKCE), so `connect-src` names its origin."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data: blob:",
            "font-src 'self'",
            f"connect-src 'self' {sign_in_origin}".rstrip(),
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL: what a CSP source names."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _security_headers(nonce: str = "", sign_in_origin: str = "") -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(
            nonce or secrets.token_urlsafe(16), sign_in_origin
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def check_build(web_dir: str) -> None:
    """Refuses to start on a folder without a build, rather than serve 404s at `/`."""
    if not (Path(web_dir) / "index.html").is_file():
        raise ValueError(f"CRM_WEB_DIR={web_dir} holds no index.html: build web/ first")


class WebApp:
    """ASGI middleware: the API first for its paths, the web application for the rest."""

    def __init__(self, app: ASGIApp, web_dir: str, sign_in_origin: str = "") -> None:
        self.app = app
        self.root = Path(web_dir).resolve()
        self.sign_in_origin = sign_in_origin

    def _is_api(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in API_PREFIXES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or self._is_api(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        await self.response(scope["path"])(scope, receive, send)

    def response(self, path: str) -> Response:
        relative = path.lstrip("/")
        candidate = (self.root / relative).resolve()
        if relative and candidate.is_relative_to(self.root) and candidate.is_file():
            if candidate.name == "index.html":
                return self.index_response()
            hashed = candidate.parent == self.root / "assets"
            return FileResponse(
                candidate,
                headers={
                    "Cache-Control": IMMUTABLE if hashed else "no-cache",
                    **_security_headers(sign_in_origin=self.sign_in_origin),
                },
            )
        if relative.startswith("assets/") or Path(relative).suffix:
            # A missing file is not a route of the application: a stale hashed asset must
            # fail loudly, not load index.html as JavaScript.
            return PlainTextResponse(
                "not found", status_code=404, headers={"Cache-Control": "no-cache"}
            )
        return self.index_response()

    def index_response(self) -> Response:
        nonce = secrets.token_urlsafe(16)
        # Read each time: a rebuild while the gateway runs is served at once.
        index = (self.root / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(
            index.replace(NONCE_PLACEHOLDER, nonce),
            headers={
                "Cache-Control": "no-cache",
                **_security_headers(nonce, self.sign_in_origin),
            },
        )
