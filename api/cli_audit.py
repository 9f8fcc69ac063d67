"""`scrm audit ...`: the auditor's questions of the log from the command line (the same as
/v1/audit): one aggregate's history, its state at a version or a time with a diff, and what one
request or callback caused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import orjson
import typer

from api.cli_support import current, open_container
from domain.shared import InvalidInput
from infra import audit

audit_app = typer.Typer(
    help="The audit trail: history, time travel, correlations", no_args_is_help=True
)


def _print(value: object) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@audit_app.command("history")
def history(aggregate_id: Annotated[str, typer.Argument()]) -> None:
    """Every event of one aggregate, as stored, with its whole envelope (JSON)."""
    with open_container() as c:
        current(c)
        _print(audit.history(c, aggregate_id))


@audit_app.command("state")
def state(
    aggregate_id: Annotated[str, typer.Argument()],
    version: Annotated[int | None, typer.Option(min=1)] = None,
    as_of: Annotated[str | None, typer.Option(help="ISO-8601 with a timezone")] = None,
    diff_from: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """The aggregate as it was after a version or at a time (recorded time); with
    --diff-from, what changed since that version."""
    with open_container() as c:
        current(c)
        moment = None
        if as_of is not None:
            moment = datetime.fromisoformat(as_of)
            if moment.tzinfo is None:
                raise InvalidInput("--as-of needs a timezone", field="as_of")
        found = audit.state(c, aggregate_id, version=version, as_of=moment)
        out: dict[str, object] = {
            "aggregate_id": found.aggregate_id,
            "type": found.type,
            "version": found.version,
            "recorded_at": found.recorded_at,
            "state": found.state,
        }
        if diff_from is not None:
            before = audit.state(c, aggregate_id, version=diff_from)
            out["diff"] = {"from": diff_from, **audit.diff(before.state, found.state)}
    _print(out)


@audit_app.command("correlation")
def correlation(correlation_id: Annotated[str, typer.Argument()]) -> None:
    """Every event one request or callback caused, across aggregates, in log order."""
    with open_container() as c:
        current(c)
        _print(audit.correlation(c, correlation_id))
