"""`scrm tickets ...`: work orders from the command line (the same commands as the API)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.cli_support import By, cli_meta, json_file
from api.cli_support import current as _current
from api.cli_support import open_container as _container
from domain.shared import Meta
from infra.settings import Settings

tickets_app = typer.Typer(
    help="Work orders (工单): workflows, templates, tickets and SLAs", no_args_is_help=True
)
LIBRARY = Path(__file__).parents[1] / "domain" / "tickets" / "library"


def _meta(command: str, by: str) -> Meta:
    return cli_meta("tickets", command, by)


@tickets_app.command("install-library")
def install_library(by: By = "cli") -> None:
    """Define the shipped installation workflow (if it is not there) and publish the shipped
    service templates (home appliances, smart locks) where they differ from the current ones."""
    from domain.tickets.aggregates import WorkflowDefinition
    from domain.tickets.templates import ServiceTemplate, shipped_templates

    with _container() as c:
        meta = _meta("install-library", by)
        definition = json_file(LIBRARY / "installation.json")
        if c.tickets.find(WorkflowDefinition, WorkflowDefinition.create_id("installation")):
            typer.echo("workflow installation: already defined")
        else:
            c.tickets.define_workflow(definition, meta)
            typer.echo("workflow installation: defined, version 1")
        for template in shipped_templates():
            found = c.tickets.find(ServiceTemplate, ServiceTemplate.create_id(template["key"]))
            if found is not None and found.versions[-1] == template and not found.retired:
                typer.echo(f"template {template['key']}: unchanged")
                continue
            r = c.tickets.publish_template(template, expected_version=None, meta=meta)
            typer.echo(f"template {template['key']}: version {r.version}")


@tickets_app.command("define-workflow")
def define_workflow(
    file: Annotated[Path, typer.Argument(help="the definition, JSON")], by: By = "cli"
) -> None:
    """Define a new workflow from a JSON file (its version 1)."""
    with _container() as c:
        r = c.tickets.define_workflow(json_file(file), _meta("define-workflow", by))
    typer.echo(f"workflow {r.id}: version {r.version} at position {r.position}")


@tickets_app.command("revise-workflow")
def revise_workflow(
    key: Annotated[str, typer.Argument(help="the workflow's key")],
    file: Annotated[Path, typer.Argument(help="the new definition, JSON")],
    reason: Annotated[str, typer.Option(help="why, for the auditor")],
    expected_version: Annotated[
        int | None, typer.Option(help="the version you changed (refused if another came since)")
    ] = None,
    by: By = "cli",
) -> None:
    """Publish the next version of a workflow; open tickets keep theirs."""
    with _container() as c:
        r = c.tickets.revise_workflow(
            key,
            json_file(file),
            reason=reason,
            expected_version=expected_version,
            meta=_meta("revise-workflow", by),
        )
    typer.echo(f"workflow {r.id}: version {r.version} at position {r.position}")


@tickets_app.command("open")
def open_ticket(
    workflow: Annotated[str, typer.Option(help="workflow key, e.g. installation")],
    service_type: Annotated[str, typer.Option(help="e.g. installation, repair")],
    region: Annotated[str, typer.Option(help="e.g. 浙江省杭州市西湖区")],
    description: Annotated[str, typer.Option(help="what the customer needs")],
    product: Annotated[str | None, typer.Option()] = None,
    customer: Annotated[str | None, typer.Option(help="customer id (UUID)")] = None,
    urgency: Annotated[str, typer.Option(help="normal, urgent or emergency")] = "normal",
    by: By = "cli",
) -> None:
    """Open a ticket: matched to a template and assigned by the workflow's policy."""
    from domain.tickets.application import OpenTicket
    from projections.tickets.tickets import roster, templates_in_force

    with _container() as c:
        _current(c)
        opened = c.tickets.open_ticket(
            OpenTicket(
                workflow=workflow,
                service_type=service_type,
                region=region,
                description=description,
                product=product,
                customer_id=uuid.UUID(customer) if customer else None,
                urgency=urgency,
            ),
            roster=lambda r, s, k: roster(c.read_db, r, s, k),
            templates=templates_in_force(c.read_db),
            meta=_meta("open", by),
        )
    template = opened.template["key"] if opened.template else "none"
    typer.echo(
        f"ticket {opened.id}: assigned to {opened.assignee or 'nobody yet'},"
        f" template {template}, position {opened.position}"
    )


@tickets_app.command("board")
def board(
    state: Annotated[str | None, typer.Option()] = None,
    assignee: Annotated[str | None, typer.Option()] = None,
    region: Annotated[str | None, typer.Option()] = None,
    open_only: Annotated[bool, typer.Option("--open", help="open tickets only")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """The board: tickets by state and assignee."""
    from projections.tickets.tickets import board as read_board

    with _container() as c:
        _current(c)
        items = read_board(
            c.read_db,
            state=state,
            assignee=assignee,
            region=region,
            open_only=open_only,
            limit=limit,
        )
    table = Table(title="tickets")
    for column in ("id", "workflow", "state", "assignee", "region", "urgency", "deadline"):
        table.add_column(column)
    for t in items:
        table.add_row(
            t["ticket_id"],
            f"{t['workflow_key']} v{t['workflow_version']}",
            t["state"],
            t["assignee"] or "-",
            t["region"],
            t["urgency"],
            t["deadline"] or "-",
        )
    Console(width=max(Console().width, 160)).print(table)


@tickets_app.command("sla-check")
def sla_check() -> None:
    """Record SlaBreached for every ticket past its deadline (once each; what `scrm serve`
    runs every SCRM_SCHEDULER_INTERVAL_SECONDS), and hand over departed staff's tickets."""
    from infra.tickets import breach_overdue_tickets, hand_over_departed

    with _container() as c:
        _current(c)
        breached = breach_overdue_tickets(c)
        moved = hand_over_departed(c)
    typer.echo(f"breached {len(breached)}, handed over {len(moved)}")
    for ticket_id in breached:
        typer.echo(f"  SlaBreached {ticket_id}")


@tickets_app.command("bench")
def bench(
    events: Annotated[
        int | None,
        typer.Option(
            "--events",
            min=100,
            help="ticket events to seed (default 1,000,000; 6,000 with --quick)",
        ),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="tiny numbers: a smoke test")] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the figures to this file")
    ] = None,
) -> None:
    """Seed a scratch PostgreSQL database with ticket events through the domain, project the
    tickets read model, then time transitions and the board over HTTP, each figure beside a
    raw baseline measured in the same run (api/bench/tickets.py). The database is dropped
    at the end. Exit 0 when every figure was measured, 1 when one failed, 2 without
    PostgreSQL (SCRM_DATABASE_URL's server, or 127.0.0.1:5432)."""
    import sys

    from api.bench.tickets import run_tickets_bench

    sys.exit(run_tickets_bench(Settings(), events=events, quick=quick, json_path=json_out))
