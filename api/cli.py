"""The `scrm` command."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from functools import partial
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from infra.bootstrap import Container, bootstrap
from infra.settings import Settings

app = typer.Typer(help="scrm: event-sourced social CRM", no_args_is_help=True)
token_app = typer.Typer(help="API tokens", no_args_is_help=True)
app.add_typer(token_app, name="token")
err = Console(stderr=True)


def _container() -> Container:
    return bootstrap(Settings())


def _serve(host: str, port: int, container: Container | None = None) -> None:
    import uvicorn

    from api.main import create_app

    uvicorn.run(
        create_app(container=container) if container else create_app(Settings()),
        host=host,
        port=port,
        log_level="info",
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1", port: Annotated[int, typer.Option()] = 8000
) -> None:
    """Run the HTTP API (in embedded mode it also keeps the read models current)."""
    _serve(host, port)


def _run_async(runner: object) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.stop)  # type: ignore[attr-defined]
    loop.run_until_complete(runner.run())  # type: ignore[attr-defined]


@app.command()
def relay() -> None:
    """Publish the store's events, in order, to the JetStream stream."""
    c = _container()
    if not c.settings.nats_url:
        err.print("[red]scrm relay needs SCRM_NATS_URL (and SCRM_DATABASE_URL)[/red]")
        raise typer.Exit(2)
    _run_async(c.relay())


@app.command()
def project() -> None:
    """Keep the read models current from JetStream (a durable consumer)."""
    c = _container()
    if not c.settings.nats_url:
        err.print(
            "[red]scrm project needs SCRM_NATS_URL; without a bus, `scrm serve` projects "
            "in-process[/red]"
        )
        raise typer.Exit(2)
    _run_async(c.projector())


@app.command()
def rebuild(
    name: Annotated[str | None, typer.Argument(help="one read model; all if omitted")] = None,
) -> None:
    """Drop read models and replay them from the start of the log."""
    c = _container()
    names = [name] if name else list(c.engine.projections)
    unknown = [n for n in names if n not in c.engine.projections]
    if unknown:
        err.print(
            f"[red]unknown read model {unknown[0]!r}; known: "
            f"{', '.join(c.engine.projections)}[/red]"
        )
        raise typer.Exit(2)
    head = c.head()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as progress:
        task = progress.add_task(f"rebuild {', '.join(names)}", total=head)
        count = c.engine.rebuild(names, c.log_batches(), partial(progress.advance, task))
        progress.update(task, completed=count, total=max(count, 1))
    typer.echo(f"rebuilt {', '.join(names)} from {head} events")
    c.close()


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, manager, staff, auditor or regulator")],
    staff: Annotated[str | None, typer.Option(help="the staff id (role staff)")] = None,
    department: Annotated[str | None, typer.Option(help="the department (role manager)")] = None,
    subject: Annotated[str | None, typer.Option(help="who the token is for")] = None,
) -> None:
    """Print a bearer token (alone on the last line)."""
    settings = Settings()
    from infra.tokens import TokenIssuer

    try:
        token = TokenIssuer(settings.master_key_bytes(), settings.token_ttl_days).create(
            role, staff_id=staff, department=department, subject=subject
        )
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    typer.echo(token)


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Load demo data (once), print an admin token and examples, then serve the API."""
    from api.demo import load_demo

    c = _container()
    if c.head() == 0:
        ids = load_demo(c.customers)
        c.extras["demo"] = ids
        typer.echo(f"Loaded demo data into {c.settings.data_dir}/ ({c.head()} events).")
    else:
        typer.echo(f"Demo data already present ({c.head()} events in {c.settings.data_dir}/).")
    c.start_follower().catch_up()
    token = c.tokens.create("admin", subject="demo-admin")
    base = f"http://{host}:{port}"
    code = c.read_db.query("SELECT code_id FROM channel_stats_codes ORDER BY created_at LIMIT 1")
    code_id = code[0][0] if code else "<code-id>"
    typer.echo(f"""
Admin token:
  export TOKEN={token}

Try:
  curl -s {base}/v1/dashboards/channels -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/customers?tag=VIP" -H "Authorization: Bearer $TOKEN"
  curl -s -X POST {base}/v1/channel-codes/{code_id}/scans -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"visitor": {{"openid": "oNewVisitor"}}}}'
  curl -s {base}/v1/channel-codes/{code_id}/stats -H "Authorization: Bearer $TOKEN"
  open {base}/docs   (OpenAPI)
""")
    if serve_api:
        _serve(host, port, c)


@app.command()
def bench(
    quick: Annotated[bool, typer.Option(help="smaller runs, for a smoke test")] = False,
) -> None:
    """Benchmarks against raw baselines measured in the same run (needs PostgreSQL + NATS)."""
    from api.bench import run_bench

    sys.exit(run_bench(Settings(), quick=quick))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
