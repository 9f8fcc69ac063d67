"""`scrm reconcile ...`: payment-channel reconciliation (自动化对账) from the command line, the
same commands as the API (api/routes/reconciliation.py)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.cli_support import By, cli_meta
from api.cli_support import current as _current
from api.cli_support import open_container as _container
from domain.money import yuan
from domain.shared import Meta

reconcile_app = typer.Typer(
    help="Reconciliation (对账): channel statements against orders and refunds",
    no_args_is_help=True,
)
CHANNELS = ("wechat_pay", "alipay", "douyin")


def _meta(command: str, by: str) -> Meta:
    return cli_meta("reconcile", command, by)


@reconcile_app.command("import")
def import_statement(
    channel: Annotated[str, typer.Argument(help="wechat_pay, alipay or douyin")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fee_rate: Annotated[
        str, typer.Option(help="the rate the channel charges, recorded on the import: 0.006")
    ],
    encoding: Annotated[str, typer.Option(help="the file's encoding (Alipay: gbk)")] = "utf-8",
    tolerance_fen: Annotated[int, typer.Option(min=0, help="differences allowed, fen")] = 0,
    platform: Annotated[
        list[str] | None,
        typer.Option(help="order platforms the channel takes payments for (default all)"),
    ] = None,
    by: By = "cli",
) -> None:
    """Reconcile a statement file against the books and record its findings."""
    from infra.reconciliation import decode_statement, import_file

    if channel not in CHANNELS:
        raise typer.BadParameter(f"channel must be one of {', '.join(CHANNELS)}")
    with _container() as c:
        _current(c)
        text = decode_statement(file.read_bytes(), encoding)
        r = import_file(
            c,
            channel,
            text,
            file.name,
            fee_rate,
            _meta("import", by),
            tolerance_fen=tolerance_fen,
            platforms=platform or None,
        )
    counts = ", ".join(f"{reason} {n}" for reason, n in r.counts.items() if n)
    typer.echo(f"import {r.id}: {r.rows} rows, {r.findings} findings, at position {r.position}")
    typer.echo(f"  {counts or 'no rows'}")


@reconcile_app.command("findings")
def list_findings(
    status: Annotated[str | None, typer.Option(help="open or resolved")] = None,
    reason: Annotated[str | None, typer.Option(help="e.g. amount_differs")] = None,
    import_id: Annotated[str | None, typer.Option(help="one import's findings")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 200,
) -> None:
    """The findings finance works down."""
    from projections.settlement.reconciliation import findings

    if status not in (None, "open", "resolved"):
        raise typer.BadParameter("status must be open or resolved")
    with _container() as c:
        _current(c)
        items = findings(c.read_db, status=status, reason=reason, import_id=import_id, limit=limit)
    table = Table(title="reconciliation findings")
    columns = ("import", "#", "reason", "kind", "order", "refund", "statement", "book", "fee")
    for column in (*columns, "expected fee", "line", "status"):
        table.add_column(column)
    for f in items:
        table.add_row(
            f["import_id"],
            str(f["index"]),
            f["reason"],
            f["kind"],
            f["order_ref"],
            f["refund_ref"] or "-",
            *(_fen(f[k]) for k in ("statement_amount", "book_amount", "statement_fee")),
            _fen(f["expected_fee"]),
            str(f["line"] or "-"),
            f["resolution"] or f["status"],
        )
    Console(width=max(Console().width, 180)).print(table)


@reconcile_app.command("resolve")
def resolve(
    import_id: str,
    index: int,
    resolution: Annotated[str, typer.Option(help="explained, adjusted or written_off")],
    note: Annotated[str, typer.Option(help="what finance found")],
    by: By = "cli",
) -> None:
    """Resolve one finding of an import (once)."""
    from domain.settlement.reconciling import resolve_finding

    try:
        parsed = uuid.UUID(import_id)
    except ValueError:
        raise typer.BadParameter(f"not an import id: {import_id}") from None
    with _container() as c:
        _current(c)
        r = resolve_finding(c.settlement, parsed, index, resolution, note, _meta("resolve", by))
    typer.echo(f"finding {index} of {r.id}: {resolution}, at position {r.position}")


def _fen(value: int | None) -> str:
    return "-" if value is None else yuan(value)
