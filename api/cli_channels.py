"""`scrm channels ...`: channel anomaly alerts from the command line, the same commands as
api/routes/channel_anomalies.py (docs/channel-anomalies.md). Answers are JSON."""

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
from domain.shared import Meta
from projections.channels import anomalies as read

channels_app = typer.Typer(
    help="Channel codes (渠道活码): anomaly alerts on bursts of scans, and their thresholds",
    no_args_is_help=True,
)

Key = Annotated[str, typer.Argument(help="`default`, or a channel code's id")]
Note = Annotated[str | None, typer.Option(help="a note, on record")]


def _meta(command: str, by: str) -> Meta:
    return cli_meta("channels", command, by)


def _echo(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@channels_app.command("publish-thresholds")
def publish_thresholds(
    key: Key,
    file: Annotated[Path, typer.Argument(help="the thresholds, JSON (docs/channel-anomalies.md)")],
    by: By,
    effective_from: EffectiveFrom = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Publish the next version of the thresholds of every code or of one code. A setting
    left out takes its default; `null` turns a rule off."""
    meta = _meta("publish-thresholds", by)
    r, _ = publish_file(
        file,
        effective_from,
        meta,
        lambda c, definition, when: c.channels.publish_thresholds(
            key, definition, effective_from=when, expected_version=expected_version, meta=meta
        ),
    )
    _echo({"key": r.id, "thresholds_version": r.version, "position": r.position})


@channels_app.command("thresholds")
def thresholds(
    key: Key = "default",
    as_of: Annotated[
        str | None, typer.Option(help="the version in force then; default now")
    ] = None,
) -> None:
    """Every version on record, the one in force, and the built-in defaults."""
    with _container() as c:
        _echo(
            c.channels.describe_thresholds(
                key, moment(as_of, "--as-of") if as_of else datetime.now(UTC)
            )
        )


@channels_app.command("anomalies")
def anomalies(
    code: Annotated[str | None, typer.Option(help="one code's alerts")] = None,
    status: Annotated[str | None, typer.Option(help="open, acknowledged or resolved")] = None,
    since: Annotated[str | None, typer.Option(help="window start from, ISO-8601")] = None,
    until: Annotated[str | None, typer.Option(help="window start before, ISO-8601")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
) -> None:
    """Alerts, the latest window first (in embedded mode the detector runs first)."""
    if status is not None and status not in read.STATUSES:
        raise typer.BadParameter(f"one of {', '.join(read.STATUSES)}", param_hint="--status")
    with _container() as c:
        _current(c)
        items = read.anomalies(
            c.read_db,
            code_id=code,
            status=status,
            since=moment(since, "--since") if since else None,
            until=moment(until, "--until") if until else None,
            limit=limit,
        )
    _echo({"items": items})


@channels_app.command("ack")
def ack(
    anomaly_id: Annotated[str, typer.Argument(help="the alert's id")], by: By, note: Note = None
) -> None:
    """Acknowledge an alert: someone is looking at it."""
    with _container() as c:
        r = c.channels.acknowledge(anomaly_id, note=note, meta=_meta("ack", by))
    _echo({"anomaly_id": anomaly_id, "status": "acknowledged", "position": r.position})


@channels_app.command("resolve")
def resolve(
    anomaly_id: Annotated[str, typer.Argument(help="the alert's id")],
    outcome: Annotated[str, typer.Option(help="expected, fraudulent or false_alarm")],
    by: By,
    note: Note = None,
) -> None:
    """Resolve an alert, saying what it was."""
    with _container() as c:
        r = c.channels.resolve(anomaly_id, outcome=outcome, note=note, meta=_meta("resolve", by))
    _echo(
        {"anomaly_id": anomaly_id, "status": "resolved", "outcome": outcome, "position": r.position}
    )
