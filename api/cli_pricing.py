"""`scrm pricing ...`: regional price strategies (多区域价格策略) and quotes from the command line,
the same commands as api/routes/pricing.py. Amounts read in fen, as the API takes them, and
show as yuan with two decimals."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from api.cli_support import (
    By,
    EffectiveFrom,
    ExpectedVersion,
    cli_meta,
    current,
    moment,
    publish_file,
)
from api.cli_support import open_container as _container
from domain.money import yuan
from domain.shared import Meta
from infra.promotions import member_rate

pricing_app = typer.Typer(
    help="Regional price strategies (多区域价格策略): versions, floats, overrides, quotes",
    no_args_is_help=True,
)


def _meta(command: str, by: str) -> Meta:
    return cli_meta("pricing", command, by)


@pricing_app.command("publish")
def publish(
    key: Annotated[str, typer.Argument(help="the strategy's key, e.g. default")],
    file: Annotated[Path, typer.Argument(help="the definition, JSON (docs/pricing.md)")],
    by: By,
    effective_from: EffectiveFrom = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Publish the next version of a strategy. A quote is priced by the version in force at
    its own time; a definition the domain refuses records nothing."""
    meta = _meta("publish", by)
    r, when = publish_file(
        file,
        effective_from,
        meta,
        lambda c, definition, when: c.pricing.publish(
            key, definition, effective_from=when, expected_version=expected_version, meta=meta
        ),
    )
    typer.echo(
        f"strategy {key}: version {r.version} from {when.isoformat()}, position {r.position}"
    )


@pricing_app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="the strategy's key")],
    as_of: Annotated[
        str | None, typer.Option(help="which version was in force then; default now")
    ] = None,
) -> None:
    """Every version, float and override on record, as JSON."""
    with _container() as c:
        found = c.pricing.describe(key, moment(as_of, "--as-of") if as_of else datetime.now(UTC))
    typer.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())


@pricing_app.command("float")
def set_float(
    key: Annotated[str, typer.Argument(help="the strategy's key")],
    region: Annotated[str, typer.Argument(help="6-digit region code, e.g. 330100")],
    rate: Annotated[str, typer.Option(help='a share within HQ\'s band, e.g. "-0.03"')],
    by: By,
    effective_from: Annotated[str | None, typer.Option(help="ISO-8601; default now")] = None,
) -> None:
    """Float a region's prices above or below HQ's, within the band."""
    meta = _meta("float", by)
    when = moment(effective_from, "--effective-from") if effective_from else meta.occurred_at
    with _container() as c:
        r = c.pricing.set_float(key, region, rate, effective_from=when, meta=meta)
    typer.echo(f"region {region} floats {rate} from {when.isoformat()}, position {r.position}")


@pricing_app.command("override")
def declare_override(
    key: Annotated[str, typer.Argument(help="the strategy's key")],
    override_id: Annotated[str, typer.Argument(help="a short id, e.g. gansu-quake")],
    scope: Annotated[str, typer.Option(help="a region code, or a province's (ending 0000)")],
    factor: Annotated[str, typer.Option(help='prices times this, e.g. "0.8"')],
    reason: Annotated[str, typer.Option(help="why: it is on record")],
    expires_at: Annotated[str, typer.Option(help="ISO-8601; at most 90 days on")],
    by: By,
    starts_at: Annotated[str | None, typer.Option(help="ISO-8601; default now")] = None,
) -> None:
    """An emergency override: reprice a province or region at once, until it expires."""
    meta = _meta("override", by)
    with _container() as c:
        r = c.pricing.declare_override(
            key,
            override_id=override_id,
            scope=scope,
            factor=factor,
            reason=reason,
            starts_at=moment(starts_at, "--starts-at") if starts_at else meta.occurred_at,
            expires_at=moment(expires_at, "--expires-at"),
            meta=meta,
        )
    typer.echo(f"override {override_id} on {scope}: x{factor}, position {r.position}")


@pricing_app.command("lift")
def lift_override(
    key: Annotated[str, typer.Argument(help="the strategy's key")],
    override_id: Annotated[str, typer.Argument(help="the override's id")],
    reason: Annotated[str, typer.Option(help="why it ends early")],
    by: By,
) -> None:
    """End an emergency override now; it stays on record."""
    with _container() as c:
        r = c.pricing.lift_override(key, override_id, reason=reason, meta=_meta("lift", by))
    typer.echo(f"override {override_id} lifted, position {r.position}")


def _line(value: str) -> dict[str, Any]:
    """SKU[:QUANTITY[:TRADE_IN]]"""
    parts = value.split(":")
    if not 1 <= len(parts) <= 3 or not all(p.strip() for p in parts):
        raise typer.BadParameter(f"{value!r}: write SKU[:QUANTITY[:TRADE_IN]]", param_hint="--line")
    try:
        numbers = [int(p) for p in parts[1:]]
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: quantities are whole numbers", param_hint="--line"
        ) from None
    line: dict[str, Any] = {"sku": parts[0]}
    if numbers:
        line["quantity"] = numbers[0]
    if len(numbers) > 1:
        line["trade_in"] = numbers[1]
    return line


@pricing_app.command("quote")
def quote(
    key: Annotated[str, typer.Argument(help="the strategy's key")],
    region: Annotated[str, typer.Option(help="6-digit region code, e.g. 330100")],
    line: Annotated[list[str], typer.Option(help="SKU[:QUANTITY[:TRADE_IN]]; repeatable")],
    at: Annotated[str | None, typer.Option(help="ISO-8601; default now")] = None,
    customer: Annotated[
        str | None, typer.Option(help="a member's customer id: their tier's rate comes off")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the API's answer, as JSON")] = False,
) -> None:
    """Price a basket for a region at a time, line by line (for a member, at their tier)."""
    when = moment(at, "--at") if at else datetime.now(UTC)
    with _container() as c:
        if customer:
            current(c)  # the tier follows from orders the loyalty process may not have seen
        member = member_rate(c, customer, when) if customer else None
        q = c.pricing.quote(
            key, region=region, at=when, lines=[_line(v) for v in line], member=member
        )
    if as_json:
        typer.echo(orjson.dumps(q).decode())
        return
    table = Table(
        title=f"{key} v{q['strategy_version']} for {region} ({q['tier']}, float {q['float']})"
        f" at {q['at']}"
    )
    for column in ("sku", "qty", "list", "unit", "subtotal", "trade-in", "threshold", "total"):
        table.add_column(column, justify="left" if column == "sku" else "right")
    for p in q["lines"]:
        table.add_row(
            p["sku"],
            str(p["quantity"]),
            yuan(p["list_price"]),
            yuan(p["unit_price"]),
            yuan(p["subtotal"]),
            yuan(-p["trade_in_subsidy"]),
            yuan(-p["threshold_share"]),
            yuan(p["total"]),
        )
    Console(width=max(Console().width, 120)).print(table)
    if q["override"]:
        o = q["override"]
        typer.echo(f"override {o['override_id']} x{o['factor']}: {o['reason']}")
    if q["member"]:
        m = q["member"]
        typer.echo(
            f"member {m['customer_id']}: {m['tier']} x{m['rate']}, program v{m['program_version']}"
        )
    if q["threshold"]:
        typer.echo(f"threshold {q['threshold']['promotion_id']}: -{yuan(q['threshold']['off'])}")
    typer.echo(f"total {yuan(q['total'])} (discounts {yuan(q['discounts'])})")
