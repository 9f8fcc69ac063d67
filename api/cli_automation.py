"""`scrm automation ...`: automation rules (自动化 SOP) from the command line, the same commands
as api/routes/automation.py. Answers are JSON, except publish's one line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from api.cli_support import (
    By,
    EffectiveFrom,
    ExpectedVersion,
    cli_meta,
    moment,
    publish_file,
)
from api.cli_support import current as _current
from api.cli_support import open_container as _container
from infra.automation import sweep as _sweep
from projections.automation import automation as read

automation_app = typer.Typer(
    help="Automation rules (自动化 SOP): triggers and actions, runs and the outbox",
    no_args_is_help=True,
)
Reason = Annotated[str, typer.Option(help="why, for the record")]


def _echo(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@automation_app.command("publish")
def publish(
    key: Annotated[str, typer.Argument(help="the rule's key, e.g. thanks-after-order")],
    file: Annotated[Path, typer.Argument(help="the rule, JSON (docs/automation.md)")],
    by: By,
    effective_from: EffectiveFrom = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Publish the next version of a rule (the first publishes it)."""
    meta = cli_meta("automation", "publish", by)
    r, when = publish_file(
        file,
        effective_from,
        meta,
        lambda c, definition, when: c.automation.publish_rule(
            key, definition, effective_from=when, expected_version=expected_version, meta=meta
        ),
    )
    typer.echo(
        f"automation rule {key}: version {r.version} from {when.isoformat()}, position {r.position}"
    )


@automation_app.command("show")
def show(key: Annotated[str | None, typer.Argument(help="one rule; all without")] = None) -> None:
    """A rule with its versions and status, or every rule."""
    with _container() as c:
        _current(c)
        if key is None:
            _echo(read.rules(c.read_db))
            return
        rule = c.automation.rule(key)
        _echo({"key": key, "paused": rule.paused, "version": rule.version,
               "versions": rule.versions})  # fmt: skip


@automation_app.command("pause")
def pause(key: str, by: By, reason: Reason = "") -> None:
    """Pause a rule: triggers while it is paused never fire it."""
    with _container() as c:
        r = c.automation.pause(key, reason=reason, meta=cli_meta("automation", "pause", by))
    typer.echo(f"automation rule {key}: paused, position {r.position}")


@automation_app.command("resume")
def resume(key: str, by: By, reason: Reason = "") -> None:
    """Resume a paused rule, for triggers from now on."""
    with _container() as c:
        r = c.automation.resume(key, reason=reason, meta=cli_meta("automation", "resume", by))
    typer.echo(f"automation rule {key}: resumed, position {r.position}")


@automation_app.command("runs")
def runs(
    rule: Annotated[str | None, typer.Option(help="one rule's runs")] = None,
    customer: Annotated[str | None, typer.Option(help="one customer's runs")] = None,
    outbox: Annotated[bool, typer.Option(help="the messages instead, with their status")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
) -> None:
    """Runs newest first with their actions' outcomes (the process runs first)."""
    with _container() as c:
        _current(c)
        if outbox:
            _echo(read.outbox(c.read_db, customer_id=customer, limit=limit))
        else:
            _echo(read.runs(c.read_db, rule_key=rule, customer_id=customer, limit=limit))


@automation_app.command("sweep")
def sweep(
    at: Annotated[str | None, typer.Option(help="the moment to sweep at; default now")] = None,
) -> None:
    """One pass of the time, schedule and metric rules; finishes unfinished runs and sends
    due messages (run it from cron; a second pass records nothing)."""
    with _container() as c:
        _current(c)
        _echo(_sweep(c, moment(at, "--at") if at else datetime.now(UTC)))
