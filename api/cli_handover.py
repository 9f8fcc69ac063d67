"""`scrm handover start|show|retry`: staff handover (离职继承 / 在职转接) from the command line,
the same commands as api/routes/handover.py, run as an admin. Answers are JSON."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from api.cli_support import By, cli_meta
from api.cli_support import current as _current
from api.cli_support import open_container as _container
from domain.scope import Scope
from infra.handover import await_directory, present
from projections.handover import handovers as read

handover_app = typer.Typer(
    help="Hand over a member of staff's customers, open tickets and groups (离职继承/在职转接)",
    no_args_is_help=True,
)


def _echo(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@handover_app.command("start")
def start(
    from_staff: Annotated[str, typer.Argument(help="who hands over")],
    by: By,
    kind: Annotated[str, typer.Option(help="departure (they have left) or transfer")] = "transfer",
    to: Annotated[str | None, typer.Option(help="the colleague who takes everything")] = None,
    department: Annotated[
        str | None, typer.Option(help="round-robin within this department instead")
    ] = None,
    reason: Annotated[str, typer.Option(help="why: it is on record")] = "",
    key: Annotated[
        str | None, typer.Option(help="names the handover (default: kind-staff-day)")
    ] = None,
    customer_limit: Annotated[
        int | None, typer.Option(min=1, help="a receiver's customer cap")
    ] = None,
) -> None:
    """Start a handover: to a named colleague (--to) or round-robin (--department)."""
    with _container() as c:
        _current(c)
        await_directory(c)
        answer = c.handover.start(
            kind=kind,
            from_staff=from_staff,
            to_staff=to,
            department=department,
            reason=reason,
            key=key,
            customer_limit=customer_limit,
            scope=Scope("admin", subject=by),
            meta=cli_meta("handover", "start", by),
        )
    _echo(present(answer))


@handover_app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="the handover's key")],
    pending: Annotated[bool, typer.Option(help="only the pending items")] = False,
) -> None:
    """A handover: each item with its status, receiver and reason, and every step."""
    with _container() as c:
        _current(c)
        found = read.find_handover(c.read_db, key, item_status="pending" if pending else None)
    if found is None:
        typer.echo(f"refused: not_found: handover {key} not found", err=True)
        raise typer.Exit(1)
    _echo(found)


@handover_app.command("retry")
def retry(
    key: Annotated[str, typer.Argument(help="the handover's key")],
    by: By,
    item: Annotated[
        list[str] | None, typer.Option(help="an item, e.g. customer:<id>; all pending if none")
    ] = None,
    to: Annotated[str | None, typer.Option(help="hand them to this colleague instead")] = None,
) -> None:
    """Retry a handover's pending items."""
    with _container() as c:
        _current(c)
        await_directory(c)
        answer = c.handover.retry(
            key,
            items=item or None,
            to_staff=to,
            scope=Scope("admin", subject=by),
            meta=cli_meta("handover", "retry", by),
        )
    _echo(present(answer))
