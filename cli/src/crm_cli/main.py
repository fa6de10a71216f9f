"""`crm`: run Atlas CRM locally, mint development tokens, load a demo tenant."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import typer

from crm_cli.cluster import CannotStayUp, Cluster, ClusterConfig
from crm_kit.auth import mint_token
from crm_kit.context import ROLES

app = typer.Typer(help="Atlas CRM developer command line.", no_args_is_help=True)

DEFAULT_STATE = Path(os.environ.get("CRM_STATE_DIR", ".state"))


def _regions(value: str) -> list[str]:
    return [r.strip() for r in value.split(",") if r.strip()]


@app.command()
def up(
    state_dir: Path = typer.Option(DEFAULT_STATE, help="where PostgreSQL and NATS keep their data"),
    regions: str = typer.Option("eu,br,us", envvar="CRM_REGIONS", help="comma-separated regions"),
    port: int = typer.Option(8000, help="gateway HTTP port"),
    nats_port: int = typer.Option(4222),
    grpc_port_base: int = typer.Option(
        0,
        help="service i in region j serves gRPC on this + 10*i + j and metrics 1000 above; "
        "0: free ports",
    ),
) -> None:
    """Start PostgreSQL, NATS, every service in every region, and the gateway.

    A process that dies is restarted after a back-off (1 s, doubling); `crm up` stops
    everything on Ctrl-C, or when a process cannot stay up (its port is taken, or it
    crashed 5 times within 2 minutes).
    """
    cluster = Cluster(
        ClusterConfig(
            state_dir=state_dir,
            regions=_regions(regions),
            gateway_port=port,
            nats_port=nats_port,
            grpc_base=grpc_port_base,
        )
    )
    cluster.report = lambda line: typer.echo(line, err=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        typer.echo(f"starting Atlas CRM (state in {state_dir.resolve()}) ...")
        try:
            cluster.start()
        except RuntimeError as exc:  # CannotStayUp included: say why, without a traceback
            typer.echo(f"{exc}\ncannot start; see {cluster.log_dir}", err=True)
            raise typer.Exit(1) from exc
        _print_status(cluster)
        url = cluster.gateway_url
        web = (
            f"Web app:  {url}/   (development sign-in: pick a user and a role)\n"
            if cluster.web_dir
            else "Web app:  not built (run `make install`)\n"
        )
        typer.echo(
            f"\nGateway:  {url}   (API docs: {url}/docs)\n"
            + web
            + "Token:    TOKEN=$(.venv/bin/crm token --role admin --region eu)\n"
            + f'Try:      curl -H "Authorization: Bearer $TOKEN" {url}/v1/contacts\n'
            "Demo data: .venv/bin/crm seed\n"
            f"Mail:     tail -f {cluster.log_dir}/mail.log   (messages in {cluster.mail_dir})\n"
            "Stop with Ctrl-C."
        )
        while not stopping:
            time.sleep(0.5)
            try:
                for line in cluster.supervise():
                    typer.echo(line, err=True)
            except CannotStayUp as exc:
                typer.echo(f"{exc}\nstopping everything", err=True)
                _print_status(cluster)
                raise typer.Exit(1) from exc
    finally:
        typer.echo("stopping ...")
        cluster.stop()
        typer.echo("stopped")


def _print_status(cluster: Cluster) -> None:
    typer.echo(f"\n{'process':<22}{'port':<8}state")
    for name, port, state in cluster.status():
        typer.echo(f"{name:<22}{port:<8}{state}")


@app.command()
def token(
    tenant: str = typer.Option("demo", help="tenant id"),
    user: str = typer.Option("admin", help="user id (the token's subject)"),
    role: list[str] = typer.Option(["admin"], help=f"one or more of {', '.join(ROLES)}"),
    region: str = typer.Option("eu", help="the user's home region"),
    team: str = typer.Option("", help="the user's team (managers see their team's records)"),
    state_dir: Path = typer.Option(DEFAULT_STATE),
    ttl: int = typer.Option(8 * 3600, help="seconds"),
) -> None:
    """Print a development JWT signed with the local key of `crm up`."""
    secret_file = state_dir / "dev-jwt-secret"
    secret = os.environ.get("CRM_JWT_SECRET") or (
        secret_file.read_text().strip() if secret_file.exists() else ""
    )
    if not secret:
        typer.echo(f"no signing key: run `crm up` first (it creates {secret_file})", err=True)
        raise typer.Exit(1)
    try:
        typer.echo(
            mint_token(
                secret,
                tenant=tenant,
                user=user,
                roles=role,
                home_region=region,
                team=team,
                ttl_seconds=ttl,
            )
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.command()
def seed(
    url: str = typer.Option("http://127.0.0.1:8000", help="gateway URL"),
    tenant: str = typer.Option("demo"),
    people: int = typer.Option(400, help="how many people"),
    companies: int = typer.Option(120, help="how many companies"),
    state_dir: Path = typer.Option(DEFAULT_STATE),
) -> None:
    """Load a realistic demo tenant through the gateway."""
    import asyncio

    from crm_cli.seed import load_demo_tenant

    secret = (state_dir / "dev-jwt-secret").read_text().strip()
    counts = asyncio.run(load_demo_tenant(url, secret, tenant, people=people, companies=companies))
    for region, (n_people, n_companies) in sorted(counts.items()):
        typer.echo(f"{region}: {n_people} people, {n_companies} companies")


if __name__ == "__main__":
    app()
