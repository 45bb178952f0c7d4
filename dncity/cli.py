"""``dncity``: run the platform, migrate, seed demo data, manage OAuth clients."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.db import Database
from shared.settings import DEFAULT_PORTS, SERVICE_NAMES, PlatformSettings, Profile, ServiceSettings

app = typer.Typer(help="Da Nang citizen super-app backend", no_args_is_help=True)
seed_app = typer.Typer(help="Load data", no_args_is_help=True)
clients_app = typer.Typer(help="OAuth clients (the identity service's registry)", no_args_is_help=True)
app.add_typer(seed_app, name="seed")
keys_app = typer.Typer(help="Token-signing keys of Da Nang ID", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")


def service_settings(name: str) -> ServiceSettings:
    module = importlib.import_module(f"services.{name}.settings")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value is not ServiceSettings:
            return value()
    raise LookupError(name)


def database_url(name: str, platform: PlatformSettings | None = None) -> str:
    return service_settings(name).resolved_database_url(platform or PlatformSettings())


def port_of(name: str) -> int:
    return int(os.environ.get(f"DNCITY_{name.upper()}_PORT", DEFAULT_PORTS[name]))


@app.command()
def migrate(service: Annotated[str | None, typer.Option(help="Only this service")] = None) -> None:
    """Bring every service's database to the latest migration."""
    from shared.migrations import upgrade

    for name in [service] if service else SERVICE_NAMES:
        upgrade(name, database_url(name))
        typer.echo(f"migrated {name}")


async def _with_identity_session(work: Any) -> Any:
    db = Database(database_url("identity"))
    try:
        async with db.sessionmaker() as session, session.begin():
            return await work(session)
    finally:
        await db.dispose()


@seed_app.command("demo")
def seed_demo() -> None:
    """Idempotently load the demo clients (and, as services land, demo lots, facilities, schools)."""
    platform = PlatformSettings()
    if platform.profile is Profile.prod:
        raise typer.BadParameter("demo data is refused in the prod profile")
    from dncity.seed import seed_clients

    shown = asyncio.run(_with_identity_session(lambda s: seed_clients(s, Path(platform.var_dir))))
    from dncity.seed import seed_accounts

    accounts = asyncio.run(_with_identity_session(lambda s: seed_accounts(s, Path(platform.var_dir))))
    from dncity.seed import seed_parking

    lots = asyncio.run(seed_parking(database_url("parking")))
    from dncity.seed import seed_tuition

    school = asyncio.run(seed_tuition(database_url("tuition")))
    from dncity.seed import seed_health

    facilities = asyncio.run(seed_health(database_url("health_booking")))
    typer.echo(
        json.dumps(
            {
                "accounts": accounts,
                "clients": shown,
                "parking_lots": lots,
                "school": school,
                "health_facilities": facilities,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


@clients_app.command("create")
def clients_create(
    name: Annotated[str, typer.Option(help="Display name shown on the consent page")],
    grant: Annotated[list[str], typer.Option(help="authorization_code | refresh_token | client_credentials")],
    scope: Annotated[str, typer.Option(help='Space-separated scopes, e.g. "openid profile"')],
    public: Annotated[bool, typer.Option("--public/--confidential", help="Client type")] = False,
    redirect_uri: Annotated[list[str] | None, typer.Option(help="Exact redirect URI (repeatable)")] = None,
    client_id: Annotated[str | None, typer.Option(help="Choose the client_id (default: random)")] = None,
) -> None:
    """Register an OAuth client; prints its client_id and (confidential only) client_secret as JSON."""
    from pydantic import ValidationError

    from services.identity.clients.schemas import ClientCreate
    from services.identity.clients.service import create_client
    from shared.errors import ProblemError

    try:
        data = ClientCreate(
            name=name,
            client_type="public" if public else "confidential",
            grant_types=grant,  # type: ignore[arg-type]
            redirect_uris=redirect_uri or [],
            scopes=scope.split(),
            client_id=client_id,
        )
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"] for e in exc.errors())) from exc
    try:
        created = asyncio.run(_with_identity_session(lambda s: create_client(s, data)))
    except ProblemError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(created.model_dump_json(indent=2))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Promote the published next keys to signing, retire the current ones, publish new next keys."""
    from datetime import timedelta

    from services.identity.keys.service import rotate
    from services.identity.settings import IdentitySettings

    settings = IdentitySettings()
    lifetime = timedelta(seconds=max(settings.access_token_ttl_s, settings.id_token_ttl_s) + 60)
    promoted = asyncio.run(_with_identity_session(lambda s: rotate(s, settings.key_encryption_secret, lifetime)))
    typer.echo(json.dumps({"now_signing": promoted}, indent=2))


payments_app = typer.Typer(help="Payments: reconciliation with the provider", no_args_is_help=True)
app.add_typer(payments_app, name="payments")


@payments_app.command("reconcile")
def payments_reconcile(
    date: Annotated[str, typer.Option("--date", help="Vietnam calendar day, YYYY-MM-DD")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Compare our ledger with the provider's list for one day; print every mismatch (exit 1 if any)."""
    from services.payments.reconciliation.cli import reconcile_command

    raise typer.Exit(reconcile_command(date, as_json))


@app.command()
def run(
    service: Annotated[str | None, typer.Option(help="Run only this process (as compose does)")] = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int | None, typer.Option()] = None,
    setup: Annotated[bool, typer.Option(help="Migrate and seed demo data first")] = True,
) -> None:
    """Start the whole platform (embedded profile) or, with --service, one process."""
    import uvicorn

    from dncity.processes import FACTORIES

    if service:
        if service not in FACTORIES:
            raise typer.BadParameter(f"unknown service {service}; one of {', '.join(FACTORIES)}")
        uvicorn.run(
            FACTORIES[service],
            factory=True,
            host=host,
            port=port or port_of(service),
            proxy_headers=True,
            log_level="warning",
            access_log=False,
        )
        return
    _run_platform(host, setup)


def _run_platform(host: str, setup: bool) -> None:
    from dncity import embedded_redis
    from dncity.processes import Supervisor, platform_specs, service_env

    platform = PlatformSettings()
    Path(platform.var_dir).mkdir(parents=True, exist_ok=True)
    if setup:
        migrate(None)
        if platform.profile is Profile.dev:
            seed_demo()
    ports = {name: port_of(name) for name in DEFAULT_PORTS}
    env = service_env(ports, host)
    if platform.profile is Profile.dev:
        from dncity.seed import service_credentials_env

        env.update(service_credentials_env(Path(platform.var_dir)))
    redis = None
    if not platform.redis_url:
        redis = embedded_redis.start(host, int(os.environ.get("DNCITY_EMBEDDED_REDIS_PORT", "0")))
        env["DNCITY_REDIS_URL"] = redis.url
    supervisor = Supervisor(platform_specs(ports), env, host)
    stopping = {"flag": False}

    def on_signal(signum: int, _frame: Any) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    supervisor.start()
    try:
        supervisor.wait_healthy()
        gateway = f"http://{host}:{ports['gateway']}"
        typer.echo(
            f"\nDa Nang super-app is running.\n  gateway  {gateway}\n  docs     {gateway}/docs\n"
            f"  health   {gateway}/healthz\n  redis    {env['DNCITY_REDIS_URL']}"
            f"{' (embedded)' if redis else ''}\nPress Ctrl-C to stop.\n"
        )
        while not stopping["flag"]:
            exited = supervisor.first_exit()
            if exited:
                typer.echo(f"{exited[0]} exited with code {exited[1]}; stopping the platform", err=True)
                raise typer.Exit(1)
            time.sleep(0.5)
    finally:
        typer.echo("stopping…")
        supervisor.stop()
        if redis is not None:
            redis.stop()


if __name__ == "__main__":
    app()
