"""The `scrm` command."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import uuid
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from infra.bootstrap import Container, bootstrap
from infra.settings import Settings

app = typer.Typer(help="scrm: event-sourced social CRM", no_args_is_help=True)
token_app = typer.Typer(help="API tokens", no_args_is_help=True)
app.add_typer(token_app, name="token")
archive_app = typer.Typer(help="The conversation archive (会话内容存档)", no_args_is_help=True)
app.add_typer(archive_app, name="archive")
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
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes sharing the port (server mode only: SCRM_DATABASE_URL and "
            "SCRM_NATS_URL set; embedded mode projects inside its one process)",
        ),
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="log every request")] = True,
) -> None:
    """Run the HTTP API (in embedded mode it also keeps the read models current)."""
    if workers == 1 and access_log:
        _serve(host, port)
        return
    settings = Settings()
    if workers > 1 and not (settings.database_url and settings.nats_url):
        err.print(
            "[red]--workers needs server mode (SCRM_DATABASE_URL and SCRM_NATS_URL): the "
            "embedded default keeps its read models current inside its one process[/red]"
        )
        raise typer.Exit(2)
    import uvicorn

    # Each worker builds its own container from the environment (bootstrap serialises their
    # table creation); everything they share lives in PostgreSQL (store, read models, key
    # store, callback nonces, locks) and the scheduled jobs are idempotent.
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )


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
    c.start_log_processes()  # segments and routing follow the projector's batches
    _run_async(c.projector())


@app.command()
def rebuild(
    name: Annotated[str | None, typer.Argument(help="one read model; all if omitted")] = None,
) -> None:
    """Drop read models and replay them from the start of the log."""
    from api.cli_support import log_progress

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
    with log_progress(f"rebuild {', '.join(names)}", total=head) as bar:
        c.engine.rebuild(names, c.log_batches(), bar.advance)
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


@archive_app.command("ingest")
def archive_ingest(
    file: Annotated[Path, typer.Argument(help="decrypted msgaudit records, JSON Lines")],
    batch: Annotated[int, typer.Option(min=1, max=5000, help="records per transaction")] = 1000,
) -> None:
    """Archive a file of msgaudit records, one transaction per batch; re-running it changes
    nothing."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from api.routes.conversations import parse_json_lines
    from domain.shared import DomainError, Meta

    c = _container()
    records = parse_json_lines(file.read_bytes())
    totals = {"archived": 0, "duplicates": 0, "recalls": 0}
    correlation = str(uuid4())
    try:
        for start in range(0, len(records), batch):
            meta = Meta(
                occurred_at=datetime.now(UTC),
                actor="system:archive-ingest",
                source="msgaudit",
                correlation_id=correlation,
                causation_id=f"cli:archive ingest {file.name}:{start}",
            )
            result = c.conversations.ingest(records[start : start + batch], meta)
            totals["archived"] += result.archived
            totals["duplicates"] += result.duplicates
            totals["recalls"] += result.recalls
        last_seq = c.conversations.last_seq()
    except DomainError as exc:
        err.print(f"[red]{exc.detail}[/red] (field {exc.field}); batches before it are kept")
        raise typer.Exit(2) from None
    finally:
        c.close()
    typer.echo(
        f"archived {totals['archived']}, duplicates {totals['duplicates']}, "
        f"recalls {totals['recalls']}, last seq {last_seq}"
    )


@archive_app.command("pull")
def archive_pull(
    from_file: Annotated[
        Path,
        typer.Option(
            "--from-file",
            help="decrypted msgaudit records with their seq, JSON Lines (a file, or a "
            "directory of *.jsonl)",
        ),
    ],
    batch: Annotated[int, typer.Option(min=1, max=5000, help="records per transaction")] = 1000,
) -> None:
    """Pull the msgaudit feed from after the last seq stored, one transaction per batch,
    until it is empty. After a crash, run it again: it resumes from the stored cursor, and
    nothing already stored changes."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from domain.conversations.feed import pull
    from domain.shared import DomainError, Meta
    from infra.wecom.archive_feed import FeedFileError, JsonLinesFeed

    try:
        feed = JsonLinesFeed(from_file)
    except (OSError, FeedFileError) as exc:
        err.print(f"[red]cannot read the feed: {exc}[/red]")
        raise typer.Exit(2) from None
    c = _container()
    meta = Meta(
        occurred_at=datetime.now(UTC),
        actor="system:archive-pull",
        source="msgaudit",
        correlation_id=str(uuid4()),
        causation_id=f"cli:archive pull {from_file.name}",
    )
    try:
        result = pull(c.conversations, feed, meta, batch=batch)
    except DomainError as exc:
        err.print(
            f"[red]{exc.detail}[/red] (field {exc.field}); batches before it are kept, and "
            f"the next pull resumes after seq {c.conversations.last_seq()}"
        )
        raise typer.Exit(2) from None
    finally:
        c.close()
    typer.echo(
        f"batches {result.batches}, messages {result.messages}, archived {result.archived}, "
        f"duplicates {result.duplicates}, recalls {result.recalls}, last seq {result.last_seq}"
    )


@archive_app.command("bench")
def archive_bench(
    quick: Annotated[bool, typer.Option(help="5,000 messages instead of 20,000")] = False,
) -> None:
    """The archive phase of `scrm bench` alone: ingest (sealed, scanned) on a scratch
    PostgreSQL database and a scratch SQLite directory, each beside raw batched inserts
    measured in the same run. Needs PostgreSQL (SCRM_DATABASE_URL's server, or :5432)."""
    from api.bench import run_archive_bench

    sys.exit(run_archive_bench(Settings(), quick=quick))


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Load demo data (once), print an admin token and examples, then serve the API."""
    from api.demo import load_everything

    c = _container()
    if c.head() == 0:
        c.extras["demo"] = load_everything(c)
        if c.notary is not None:  # the store's seals, signed: `scrm audit verify` checks them
            c.notary.checkpoint()
        typer.echo(f"Loaded demo data into {c.settings.data_dir}/ ({c.head()} events).")
    else:
        typer.echo(f"Demo data already present ({c.head()} events in {c.settings.data_dir}/).")
    c.start_follower().catch_up()
    if c.segment_evaluator is not None:  # the demo segments' members, before serving
        c.segment_evaluator.run_until_caught_up()
        c.start_follower().catch_up()
    token = c.tokens.create("admin", subject="demo-admin")
    base = f"http://{host}:{port}"
    code = c.read_db.query("SELECT code_id FROM channel_stats_codes ORDER BY created_at LIMIT 1")
    code_id = code[0][0] if code else "<code-id>"
    found = c.read_db.query("SELECT segment_id FROM segments_definitions ORDER BY position")
    segment_id = found[0][0] if found else "<segment-id>"
    closed = c.read_db.query(
        "SELECT group_key, period FROM settlement_closed ORDER BY period DESC LIMIT 1"
    )
    statement = f"{closed[0][0]}/{closed[0][1]}" if closed else "<group>/<period>"
    points = c.read_db.query("SELECT customer_id FROM promotions_points ORDER BY position LIMIT 1")
    member = points[0][0] if points else "<customer-id>"
    typer.echo(f"""
Admin token:
  export TOKEN={token}

Try:
  curl -s {base}/v1/dashboards/channels -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/customers?tag=VIP" -H "Authorization: Bearer $TOKEN"
  curl -s -X POST {base}/v1/channel-codes/{code_id}/scans -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"visitor": {{"openid": "oNewVisitor"}}}}'
  curl -s {base}/v1/channel-codes/{code_id}/stats -H "Authorization: Bearer $TOKEN"
  curl -s -G {base}/v1/conversations --data-urlencode keyword=保本 \\
       --data-urlencode purpose=合规抽查 -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/dashboards/compliance?by=rule" -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/compliance/alerts -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/dashboards/orders?by=platform" -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/dashboards/identity -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/segments -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/segments/{segment_id}/members -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/tickets?open=true" -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/workers -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/dashboards/sla?by=state" -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/payees/zhao.shifu/earnings -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/payees/zhao.shifu/statements/{statement} -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/ledger/check -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/ledger/balances -H "Authorization: Bearer $TOKEN"
  curl -s -X POST {base}/v1/audit/verifications -H "Authorization: Bearer $TOKEN"
  curl -s -X POST {base}/v1/exports -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d '{{"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}}'
  curl -s "{base}/v1/customers/{member}/points" -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/coupons?customer_id={member}" -H "Authorization: Bearer $TOKEN"
  curl -s {base}/v1/channel-anomalies -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/dashboards/funnel?by=code" -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/dashboards/regions?level=city" -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/dashboards/staff?order_by=response" -H "Authorization: Bearer $TOKEN"
  curl -s "{base}/v1/customers/{member}/membership" -H "Authorization: Bearer $TOKEN"
  curl -s -X POST {base}/v1/quotes -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d '{{"strategy": "default", "region": "621100",
            "lines": [{{"sku": "LOCK-X2", "quantity": 2, "trade_in": 1}}]}}'
  open {base}/docs   (OpenAPI)
""")
    if serve_api:
        _serve(host, port, c)


bench_app = typer.Typer(help="Benchmarks", invoke_without_command=True)
app.add_typer(bench_app, name="bench")


@bench_app.callback()
def bench(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option(help="smaller runs, for a smoke test")] = False,
) -> None:
    """Benchmarks against raw baselines measured in the same run (needs PostgreSQL + NATS);
    `scrm bench dashboards` and `scrm bench automation-sweep` run over a `scrm seed` store."""
    if ctx.invoked_subcommand is not None:
        return
    from api.bench import run_bench

    sys.exit(run_bench(Settings(), quick=quick))


compliance_app = typer.Typer(help="Compliance: sensitive-word alerts", no_args_is_help=True)
app.add_typer(compliance_app, name="compliance")


def _utc_text(value: str | None, option: str) -> str | None:
    """An ISO-8601 time with a timezone, as the read model stores times."""
    from datetime import datetime

    from infra.events import sortable_time

    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 time", param_hint=option) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} needs a timezone, e.g. 2026-01-01T00:00:00+08:00", param_hint=option
        )
    return sortable_time(moment)


@compliance_app.command("report")
def compliance_report(
    by: Annotated[
        Literal["staff", "department", "rule", "day"], typer.Option(help="what to group by")
    ] = "rule",
    since: Annotated[
        str | None, typer.Option(help="messages sent at or after (ISO-8601 with a timezone)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="messages sent before (ISO-8601 with a timezone)")
    ] = None,
    severity: Annotated[Literal["low", "medium", "high", "critical"] | None, typer.Option()] = None,
    status: Annotated[Literal["open", "acknowledged", "resolved"] | None, typer.Option()] = None,
    pack_id: Annotated[str | None, typer.Option(help="one pack")] = None,
) -> None:
    """Alerts per staff member, department, rule or UTC day, from the compliance read model
    (as GET /v1/dashboards/compliance shows an admin). Without a bus the read models are
    first brought up to date from the log."""
    from rich.table import Table

    from projections.conversations.alerts import compliance_dashboard
    from projections.follower import StoreFollower

    window = _utc_text(since, "--since"), _utc_text(until, "--until")
    c = _container()
    try:
        if c.in_process_projections:
            StoreFollower(c.engine, c.read_log).catch_up()
        report = compliance_dashboard(
            c.read_db,
            by,
            since=window[0],
            until=window[1],
            severity=severity,
            status=status,
            pack_id=pack_id,
        )
    finally:
        c.close()
    keys = {
        "staff": ["staff_id", "department"],
        "department": ["department"],
        "rule": ["pack_id", "word", "versions", "severity"],
        "day": ["day"],
    }[by]
    counts = ["total", "open", "acknowledged", "resolved"]
    severities = list(report["totals"]["by_severity"])
    table = Table(title=f"compliance alerts by {by}")
    for name in keys:
        table.add_column(name)
    for name in counts + severities:
        table.add_column(name, justify="right")

    def cells(row: dict[str, object], label: list[str]) -> list[str]:
        by_severity: dict[str, int] = row["by_severity"]  # type: ignore[assignment]
        return [
            *label,
            *(str(row[n]) for n in counts),
            *(str(by_severity[s]) for s in severities),
        ]

    for row in report["rows"]:
        label = [
            ", ".join(map(str, v)) if isinstance(v, list) else "-" if v is None else str(v)
            for v in (row[k] for k in keys)
        ]
        table.add_row(*cells(row, label))
    table.add_section()
    table.add_row(*cells(report["totals"], ["all", *[""] * (len(keys) - 1)]))
    Console(width=max(Console().width, 120)).print(table)


privacy_app = typer.Typer(help="Erasure, retention and legal holds", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


@privacy_app.command("run")
def privacy_run() -> None:
    """Carry out every erasure that no retention period or legal hold still defers (what
    `scrm serve` runs every SCRM_SCHEDULER_INTERVAL_SECONDS; cron this when that is 0)."""
    from infra.jobs import apply_erasures
    from projections.follower import StoreFollower

    c = _container()
    try:
        if c.in_process_projections:
            StoreFollower(c.engine, c.read_log).catch_up()
        run = apply_erasures(c)
    finally:
        c.close()
    typer.echo(
        f"erased {len(run.erased)}, still waiting {len(run.waiting)},"
        f" keys destroyed {run.keys_destroyed}, failed {len(run.failed)}"
    )
    for customer_id, code in run.failed.items():
        typer.echo(f"failed {customer_id}: {code}", err=True)
    if run.failed:
        raise typer.Exit(1)


orders_app = typer.Typer(help="E-commerce orders from the five platforms", no_args_is_help=True)
app.add_typer(orders_app, name="orders")


@orders_app.command("import")
def orders_import(
    platform: Annotated[
        Literal["taobao", "jd", "pdd", "douyin", "youzan"], typer.Argument(help="whose payloads")
    ],
    file: Annotated[Path, typer.Argument(help="JSON Lines: one platform order payload a line")],
    batch: Annotated[int, typer.Option(min=1, max=2000, help="orders per transaction")] = 500,
) -> None:
    """Bulk import of order payloads as the platform's API returns them (e.g. a backfill),
    one transaction per batch; importing a file again changes nothing."""
    import orjson

    from domain.shared import InvalidInput

    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    c = _container()
    run = str(uuid.uuid4())
    totals = {"applied": 0, "stale": 0, "duplicate": 0}
    batches = 0
    try:
        with file.open("rb") as lines:
            chunk: list[object] = []
            first_line = 1
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        chunk.append(orjson.loads(line))
                    except orjson.JSONDecodeError:
                        typer.echo(
                            f"line {number} is not JSON; batches before line {first_line}"
                            " are recorded, nothing after",
                            err=True,
                        )
                        raise typer.Exit(1) from None
                if len(chunk) == batch:
                    _import_chunk(c, platform, chunk, first_line, run, totals)
                    batches += 1
                    chunk, first_line = [], number + 1
            if chunk:
                _import_chunk(c, platform, chunk, first_line, run, totals)
                batches += 1
    except InvalidInput as exc:
        typer.echo(f"refused: {exc.detail} (field {exc.field})", err=True)
        raise typer.Exit(1) from None
    finally:
        c.close()
    typer.echo(
        f"batches {batches}, applied {totals['applied']}, stale {totals['stale']},"
        f" duplicates {totals['duplicate']}"
    )


def _import_chunk(
    c: Container,
    platform: str,
    chunk: list[object],
    first_line: int,
    run: str,
    totals: dict[str, int],
) -> None:
    from datetime import UTC, datetime

    from api.routes.orders import snapshots
    from domain.shared import InvalidInput, Meta

    try:
        items = snapshots(platform, chunk)
    except InvalidInput as exc:
        raise InvalidInput(
            f"{exc.detail} (the batch starting at line {first_line})", field=exc.field
        ) from None
    meta = Meta(
        occurred_at=datetime.now(UTC),
        actor="system:orders-import",
        source=platform,
        correlation_id=run,
        causation_id=f"cli:orders import {platform}:{first_line}",
    )
    result = c.orders.receive_batch(items, meta)
    for outcome in totals:
        totals[outcome] += result.count(outcome)


@orders_app.command("bench")
def orders_bench(
    quick: Annotated[bool, typer.Option(help="a smaller run, for a smoke test")] = False,
) -> None:
    """The orders phase of `scrm bench` alone: bulk import and push → visible through NATS,
    each beside a raw baseline measured in the same run (needs PostgreSQL + NATS)."""
    from api.bench import run_orders_bench

    sys.exit(run_orders_bench(Settings(), quick=quick))


customers_app = typer.Typer(
    help="Customers: merging two records of one person, birthdays", no_args_is_help=True
)
app.add_typer(customers_app, name="customers")


def _merge_command(undo: bool, survivor: str, absorbed: str, reason: str, by: str) -> None:
    from datetime import UTC, datetime

    from domain.scope import Scope
    from domain.shared import DomainError, Meta

    try:
        survivor_id, absorbed_id = uuid.UUID(survivor), uuid.UUID(absorbed)
    except ValueError:
        raise typer.BadParameter("customer ids are UUIDs") from None
    command = "unmerge" if undo else "merge"
    meta = Meta(
        occurred_at=datetime.now(UTC),
        actor=f"user:{by}",
        source="cli",
        correlation_id=str(uuid.uuid4()),
        causation_id=f"cli:customers {command} {survivor_id} {absorbed_id}",
    )
    admin = Scope(role="admin", subject=by)  # whoever runs scrm holds the store's keys
    c = _container()
    try:
        if undo:
            done = c.customers.undo_merge(
                survivor_id, absorbed_id, reason=reason, scope=admin, meta=meta
            )
        else:
            done = c.customers.merge_customers(
                survivor_id,
                absorbed_id,
                reason=reason,
                expected_versions=None,
                scope=admin,
                meta=meta,
            )
    except DomainError as exc:
        typer.echo(f"refused: {exc.code}: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        c.close()
    typer.echo(
        f"{'unmerged' if undo else 'merged'} {absorbed_id} {'from' if undo else 'into'}"
        f" {survivor_id}: position {done.position}, survivor version {done.version},"
        f" absorbed version {done.absorbed_version}"
    )


Reason = Annotated[str, typer.Option(help="why, for the auditor (required)")]
By = Annotated[str, typer.Option(help="who is acting: recorded as user:<by>")]


@customers_app.command("merge")
def customers_merge(
    survivor: Annotated[str, typer.Argument(help="the customer that stays (UUID)")],
    absorbed: Annotated[str, typer.Argument(help="the customer merged into it (UUID)")],
    reason: Reason,
    by: By = "cli",
) -> None:
    """Merge ABSORBED into SURVIVOR: its identities, tags, contacts and follows move there,
    and whatever later arrives for it lands there. Recorded on both, with the reason."""
    _merge_command(False, survivor, absorbed, reason, by)


@customers_app.command("unmerge")
def customers_unmerge(
    survivor: Annotated[str, typer.Argument(help="the customer it was merged into (UUID)")],
    absorbed: Annotated[str, typer.Argument(help="the customer to restore (UUID)")],
    reason: Reason,
    by: By = "cli",
) -> None:
    """Undo the merge in force of ABSORBED into SURVIVOR: what it brought goes back, in its
    state now; everything else recorded on SURVIVOR meanwhile stays there."""
    _merge_command(True, survivor, absorbed, reason, by)


@customers_app.command("birthday")
def customers_birthday(
    customer: Annotated[str, typer.Argument(help="the customer (UUID)")],
    birthday: Annotated[str, typer.Argument(help="date of birth, YYYY-MM-DD")],
    by: By = "cli",
) -> None:
    """Record a customer's date of birth (sealed under their key) for birthday rules."""
    from datetime import date

    from api.cli_support import cli_meta
    from api.cli_support import open_container as opened
    from domain.scope import Scope

    try:
        customer_id, born = uuid.UUID(customer), date.fromisoformat(birthday)
    except ValueError:
        raise typer.BadParameter("a customer UUID and a date YYYY-MM-DD") from None
    with opened() as c:
        done = c.customers.record_birthday(
            customer_id,
            birthday=born,
            scope=Scope(role="admin", subject=by),
            meta=cli_meta("customers", f"birthday {customer_id}", by),
        )
    typer.echo(f"birthday of {customer_id} recorded: version {done.version}")


segments_app = typer.Typer(help="Segments (智能分组): rules over portraits", no_args_is_help=True)
app.add_typer(segments_app, name="segments")


def _segments_current(c: Container) -> None:
    """Embedded mode: bring read models and memberships up to the log (in server mode
    `scrm project` does this continuously)."""
    from projections.follower import StoreFollower

    if c.in_process_projections and c.segment_evaluator is not None:
        follower = StoreFollower(c.engine, c.read_log)
        follower.catch_up()
        c.segment_evaluator.run_until_caught_up()
        follower.catch_up()


@segments_app.command("define")
def segments_define(
    name: Annotated[str, typer.Argument(help="what the business calls it, e.g. 高价值客户")],
    rule: Annotated[
        str,
        typer.Option(help='JSON, e.g. {"field": "lifetime_value", "op": ">=", "value": 100000}'),
    ],
    auto_tag: Annotated[
        str | None, typer.Option(help="tag put on members (and taken off when they leave)")
    ] = None,
) -> None:
    """Define a segment (version 1)."""
    from datetime import UTC, datetime

    import orjson

    from domain.shared import InvalidInput, Meta

    try:
        parsed = orjson.loads(rule)
    except orjson.JSONDecodeError:
        raise typer.BadParameter("the rule is not valid JSON", param_hint="--rule") from None
    c = _container()
    try:
        meta = Meta(
            occurred_at=datetime.now(UTC),
            actor="system:cli",
            source="cli",
            correlation_id=str(uuid.uuid4()),
            causation_id="cli:segments define",
        )
        recorded = c.segments.define(name=name, rule=parsed, auto_tag=auto_tag, meta=meta)
        _segments_current(c)
    except InvalidInput as exc:
        err.print(f"[red]{exc.detail}[/red] (field {exc.field})")
        raise typer.Exit(2) from None
    finally:
        c.close()
    typer.echo(f"defined {recorded.id} version 1 at position {recorded.position}")


@segments_app.command("list")
def segments_list() -> None:
    """Segments with their version, status and member count."""
    import orjson
    from rich.table import Table

    from projections.segments.segments import list_segments

    c = _container()
    try:
        _segments_current(c)
        found = list_segments(c.read_db)
    finally:
        c.close()
    table = Table(title="segments")
    for column in ("id", "name", "version", "status", "auto_tag", "members", "rule"):
        table.add_column(column)
    for s in found:
        table.add_row(
            s["id"],
            s["name"],
            str(s["version"]),
            s["status"],
            s["auto_tag"] or "",
            str(s["members"]),
            orjson.dumps(s["rule"]).decode(),
        )
    Console(width=max(Console().width, 160)).print(table)


@segments_app.command("members")
def segments_members(
    segment_id: Annotated[str, typer.Argument(help="the segment's id")],
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
) -> None:
    """A segment's current members: customer, owner, since when, which version let them in."""
    from projections.segments.segments import get_segment, list_members

    c = _container()
    try:
        _segments_current(c)
        if get_segment(c.read_db, segment_id) is None:
            err.print(f"[red]no segment {segment_id}[/red]")
            raise typer.Exit(2)
        found = list_members(c.read_db, segment_id, limit=limit)
    finally:
        c.close()
    for m in found:
        typer.echo(
            f"{m['customer_id']}  {m['owner'] or '-'}  {m['since']}  v{m['segment_version']}"
        )
    typer.echo(f"{len(found)} members")


@segments_app.command("evaluate")
def segments_evaluate() -> None:
    """One full sweep: everyone against every segment (what `scrm serve` runs every
    SCRM_SCHEDULER_INTERVAL_SECONDS, for rules time alone makes true)."""
    c = _container()
    try:
        _segments_current(c)
        assert c.segment_evaluator is not None
        run = c.segment_evaluator.sweep()
        _segments_current(c)
    finally:
        c.close()
    typer.echo(
        f"entered {run.entered}, left {run.left}, tagged {run.tagged}, untagged {run.untagged},"
        f" stale {run.stale}, failed {len(run.failed)}"
    )
    if run.failed:
        raise typer.Exit(1)


from api.cli_tickets import tickets_app  # noqa: E402  (its own module: cli.py is long)

app.add_typer(tickets_app, name="tickets")

from api.cli_settlement import ledger_app, settlement_app  # noqa: E402

app.add_typer(settlement_app, name="settlement")
app.add_typer(ledger_app, name="ledger")

from api.cli_pricing import pricing_app  # noqa: E402

app.add_typer(pricing_app, name="pricing")

from api.cli_promotions import promotions_app  # noqa: E402

app.add_typer(promotions_app, name="promotions")

from api.cli_dashboards import dashboards_app  # noqa: E402

app.add_typer(dashboards_app, name="dashboards")

from api.cli_handover import handover_app  # noqa: E402

app.add_typer(handover_app, name="handover")

from api.cli_channels import channels_app  # noqa: E402

app.add_typer(channels_app, name="channels")

from api.cli_campaigns import campaigns_app  # noqa: E402

app.add_typer(campaigns_app, name="campaigns")

from api.cli_automation import automation_app  # noqa: E402

app.add_typer(automation_app, name="automation")

from api.cli_reconcile import reconcile_app  # noqa: E402

app.add_typer(reconcile_app, name="reconcile")

from api import cli_exports, cli_replay  # noqa: E402
from api.cli_audit import audit_app  # noqa: E402

app.add_typer(audit_app, name="audit")
app.command("replay")(cli_replay.replay)
archive_app.command("export")(cli_exports.export)
archive_app.command("verify")(cli_exports.verify)
archive_app.command("export-bench")(cli_exports.bench)

from api import cli_seed  # noqa: E402

app.command("seed")(cli_seed.seed)
bench_app.command("dashboards")(cli_seed.bench_dashboards)
bench_app.command("automation-sweep")(cli_seed.bench_sweep)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
