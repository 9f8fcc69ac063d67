"""`scrm settlement ...` and `scrm ledger ...`: settlement (多档位结算) from the command line,
the same commands as api/routes/settlement.py. Amounts read in fen, as the API takes them,
and show as yuan with two decimals (domain.money.yuan)."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer
from rich.console import Console
from rich.table import Table

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
from domain.money import yuan
from domain.shared import Meta, NotFound
from infra.events import sortable_time
from infra.settings import Settings

settlement_app = typer.Typer(
    help="Settlement (多档位结算): rule sets, payees, earnings, periods, payouts",
    no_args_is_help=True,
)
ledger_app = typer.Typer(help="The settlement ledger (总账), in double entry", no_args_is_help=True)


def _meta(command: str, by: str) -> Meta:
    return cli_meta("settlement", command, by)


def _print(table: Table) -> None:
    Console(width=max(Console().width, 160)).print(table)


def _table(title: str, *columns: str, right: tuple[str, ...] = ("amount",)) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


# --- rule sets and groups -----------------------------------------------------------------


@settlement_app.command("define-group")
def define_group(
    key: Annotated[str, typer.Argument(help="the group's key, e.g. installers")],
    name: Annotated[str, typer.Option(help="what the business calls it, e.g. 安装师傅")],
    cycle: Annotated[Literal["daily", "weekly", "monthly"], typer.Option(help="its period")],
    timezone: Annotated[str | None, typer.Option(help="default Asia/Shanghai")] = None,
    by: By = "cli",
) -> None:
    """Define a payee group: payees settled on one cycle in one timezone."""
    with _container() as c:
        r = c.settlement.define_group(
            key, name=name, cycle=cycle, timezone=timezone, meta=_meta("define-group", by)
        )
    typer.echo(f"group {r.id}: {cycle}, position {r.position}")


@settlement_app.command("publish-rules")
def publish_rules(
    key: Annotated[str, typer.Argument(help="the rule set's key")],
    file: Annotated[Path, typer.Argument(help="the definition, JSON (docs/settlement.md)")],
    effective_from: EffectiveFrom = None,
    expected_version: ExpectedVersion = None,
    by: By = "cli",
) -> None:
    """Publish the next version of a rule set.

    Items settle by the version in force at their own business time. A definition the
    domain refuses records nothing."""
    meta = _meta("publish-rules", by)
    r, when = publish_file(
        file,
        effective_from,
        meta,
        lambda c, definition, when: c.settlement.publish_rules(
            key, definition, effective_from=when, expected_version=expected_version, meta=meta
        ),
    )
    typer.echo(
        f"rule set {key}: version {r.version} from {when.isoformat()}, position {r.position}"
    )


@settlement_app.command("rules")
def rules(
    key: Annotated[str | None, typer.Argument(help="one rule set; all if omitted")] = None,
) -> None:
    """Rule set versions with when each takes effect; * marks the one in force now."""
    from projections.settlement.settlement import rule_versions

    with _container() as c:
        _current(c)
        versions = rule_versions(c.read_db, key)
        if key and not versions:
            raise NotFound(f"rule set {key} not found")
    now = sortable_time(datetime.now(UTC))
    in_force: dict[str, tuple[str, int]] = {}
    for v in versions:
        if v["effective_from"] <= now:
            at = (v["effective_from"], v["rule_version"])
            in_force[v["rule_set"]] = max(in_force.get(v["rule_set"], at), at)
    table = _table(
        f"rule set {key}" if key else "rule sets",
        "rule set",
        "version",
        "effective from",
        "in force",
        "recorded by",
    )
    for v in versions:
        mine = in_force.get(v["rule_set"], ("", 0))[1] == v["rule_version"]
        table.add_row(
            v["rule_set"],
            str(v["rule_version"]),
            v["effective_from"],
            "*" if mine else "",
            v["recorded_by"],
        )
    _print(table)


# --- payees and items ---------------------------------------------------------------------


@settlement_app.command("register-payee")
def register_payee(
    payee_id: Annotated[str, typer.Argument(help="e.g. p-li")],
    kind: Annotated[
        str, typer.Option(help="installer, distributor, host, agent, brand, store, partner")
    ],
    name: Annotated[str, typer.Option()],
    group: Annotated[str, typer.Option(help="the payee group's key")],
    rule_set: Annotated[str | None, typer.Option(help="priced by this rule set")] = None,
    region: Annotated[str | None, typer.Option(help="e.g. 浙江省杭州市")] = None,
    parent: Annotated[str | None, typer.Option(help="the agent above, a payee id")] = None,
    staff_id: Annotated[str | None, typer.Option(help="paid for this staff member's jobs")] = None,
    shop: Annotated[
        list[str] | None, typer.Option(help="paid on this shop's orders (repeat)")
    ] = None,
    account: Annotated[str | None, typer.Option(help="payout account (stored sealed)")] = None,
    by: By = "cli",
) -> None:
    """Register a payee; its held earnings are priced once it can be."""
    with _container() as c:
        r = c.settlement.register_payee(
            payee_id,
            kind=kind,
            name=name,
            group=group,
            rule_set=rule_set,
            region=region,
            parent=parent,
            staff_id=staff_id,
            shops=list(shop or []),
            account=account,
            meta=_meta("register-payee", by),
        )
    typer.echo(f"payee {r.id}: version {r.version}, position {r.position}")


@settlement_app.command("record-item")
def record_item(
    source: Annotated[str, typer.Argument(help="unique: a source is paid once, e.g. job-17")],
    kind: Annotated[Literal["service", "sale", "invite"], typer.Option()],
    payee: Annotated[str, typer.Option(help="the payee id")],
    occurred_at: Annotated[str, typer.Option(help="business time, ISO-8601 with a timezone")],
    service_type: Annotated[str | None, typer.Option()] = None,
    template: Annotated[str | None, typer.Option(help="service template key")] = None,
    region: Annotated[str | None, typer.Option()] = None,
    distance_km: Annotated[str | None, typer.Option(help='e.g. "12.5"')] = None,
    urgency: Annotated[str | None, typer.Option()] = None,
    rating: Annotated[int | None, typer.Option(min=1, max=5)] = None,
    materials_supplied_by: Annotated[str | None, typer.Option(help="e.g. customer")] = None,
    materials_fee: Annotated[int | None, typer.Option(min=0, help="fen")] = None,
    amount: Annotated[
        int | None, typer.Option(min=0, max=10**14, help="a sale's amount, fen")
    ] = None,
    by: By = "cli",
) -> None:
    """Record a fact settlement pays on; print the lines it earned, each with its reason.

    Completed jobs and paid orders of payees' shops come by themselves."""
    from domain.settlement.rules import Facts
    from domain.shared import InvalidInput
    from infra.settlement import volumes

    if distance_km is not None and not re.fullmatch(r"\d+(\.\d+)?", distance_km):
        raise typer.BadParameter("a number of km such as 12.5", param_hint="--distance-km")
    facts = Facts(
        kind=kind,
        payee_id=payee,
        occurred_at=moment(occurred_at, "--occurred-at"),
        service_type=service_type,
        template=template,
        region=region,
        distance_km=Decimal(distance_km) if distance_km else None,
        urgency=urgency,
        rating=rating,
        materials_supplied_by=materials_supplied_by,
        materials_fee=materials_fee,
        amount=amount,
    )
    meta = replace(_meta("record-item", by), occurred_at=facts.occurred_at)
    with _container() as c:
        if kind == "sale" and not amount:
            raise InvalidInput("a sale needs its amount in fen", field="amount")
        _current(c)
        a = c.settlement.accrue(source, facts, volumes(c), meta)
    what = "recorded" if a.created else "already recorded"
    typer.echo(f"earning {a.id} ({a.source}): {what}, position {a.position or '-'}")
    if a.held:
        typer.echo(f"held: {a.held}")
    for line in a.lines:
        typer.echo(f"  {line['component']:<16} {yuan(line['amount']):>12}  {line['explanation']}")
    typer.echo(f"total {yuan(sum(int(line['amount']) for line in a.lines))}")


@settlement_app.command("earnings")
def earnings(
    payee_id: Annotated[str, typer.Argument()],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="how many lines")] = 50,
    after: Annotated[
        int | None, typer.Option(min=0, help="the lines after this position instead (a feed)")
    ] = None,
) -> None:
    """What each open period holds for a payee so far, and its most recent lines."""
    from projections.settlement import settlement as read

    with _container() as c:
        _current(c)
        if read.payee(c.read_db, payee_id) is None:
            raise NotFound(f"payee {payee_id} not found")
        periods = read.open_totals(c.read_db, payee_id)
        if after is None:  # the last `limit` lines: start just before the limit-th newest
            edge = c.read_db.query(
                "SELECT position FROM settlement_lines WHERE payee_id = ?"
                " ORDER BY position DESC, seq DESC LIMIT 1 OFFSET ?",
                (payee_id, limit - 1),
            )
            start = int(edge[0][0]) - 1 if edge else 0
            lines = read.earnings(c.read_db, payee_id, after=start, limit=limit + 1000)[-limit:]
        else:
            lines = read.earnings(c.read_db, payee_id, after=after, limit=limit)
    table = _table(f"open periods of {payee_id}", "group", "period", "lines", "amount")
    for p in periods:
        table.add_row(p["group_key"], p["period"], str(p["lines"]), yuan(int(p["total"])))
    _print(table)
    table = _table(
        f"lines of {payee_id}", "period", "component", "amount", "explanation", "source", "line"
    )
    for ln in lines:
        table.add_row(
            ln["period"] or "-",
            ln["component"],
            yuan(int(ln["amount"])),
            ln["explanation"],
            ln["source"],
            ln["line_id"],
        )
    _print(table)


@settlement_app.command("held")
def held(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 200) -> None:
    """Earnings that could not be priced yet, with the reason (no payee, no price)."""
    from projections.settlement.settlement import held as read_held

    with _container() as c:
        _current(c)
        items = read_held(c.read_db, limit=limit)
    table = _table("held earnings", "source", "payee", "kind", "occurred at", "reason")
    for i in items:
        table.add_row(i["source"], i["payee_id"], i["kind"], i["occurred_at"], i["held"])
    _print(table)


# --- the settlement run, statements and payouts -------------------------------------------


@settlement_app.command("close")
def close(
    group: Annotated[str, typer.Argument(help="the payee group's key")],
    period: Annotated[str, typer.Argument(help="the period's first local day, YYYY-MM-DD")],
    by: By = "cli",
) -> None:
    """The settlement run: close a period that is over; print its totals and digest."""
    from infra.settlement import close_period
    from projections.settlement.settlement import closed

    started = time.perf_counter()
    with _container() as c:
        _current(c)
        r = close_period(c, group, period, _meta("close", by))
        _current(c)
        c.engine.wait_for(r.position or 0, c.settings.min_position_timeout, names=["settlement"])
        done = closed(c.read_db, group, period) or {}
    elapsed = time.perf_counter() - started
    typer.echo(f"closed {group} {period}: {done['period_start']} to {done['period_end']}")
    typer.echo(f"payees {done['payees']}, lines {done['lines']}, total {yuan(done['total'])}")
    versions = ", ".join(f"{k} v{v}" for k, v in sorted(done["rule_versions"].items()))
    typer.echo(f"rule versions {versions or '-'}")
    typer.echo(f"digest {done['digest']}")
    typer.echo(f"position {r.position}, {elapsed:.3f} s")


@settlement_app.command("statement")
def statement(
    payee_id: Annotated[str, typer.Argument()],
    group: Annotated[str, typer.Argument()],
    period: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    as_json: Annotated[
        bool, typer.Option("--json", help="the API's JSON (amounts in fen)")
    ] = False,
) -> None:
    """One closed period's statement: its lines and total.

    Every line names its source, component and rule set version."""
    from projections.settlement.settlement import statement as read_statement

    with _container() as c:
        _current(c)
        found = read_statement(c.read_db, payee_id, group, period)
        if found is None:
            raise NotFound(f"no statement for {payee_id} in period {period} of {group}")
    if as_json:
        typer.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return
    table = _table(
        f"statement {payee_id} {group} {period}",
        "component",
        "amount",
        "explanation",
        "source",
        "rules",
    )
    for ln in found["lines"]:
        table.add_row(
            ln["component"],
            yuan(int(ln["amount"])),
            ln["explanation"],
            ln["source"],
            f"{ln['rule_set']} v{ln['rule_version']}" if ln["rule_set"] else "-",
        )
    _print(table)
    typer.echo(f"lines {len(found['lines'])}, total {yuan(found['total'])}")
    typer.echo(f"period digest {found['period_digest']}")


@settlement_app.command("payouts")
def payouts(
    group: Annotated[str, typer.Argument()],
    period: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    by: By = "cli",
) -> None:
    """Pay everyone a closed period owes, through the payout gateway.

    Asking again pays nobody twice. Exit 1 when a transfer failed
    (`POST /v1/payouts/{id}/retry` retries it)."""
    from infra.settlement import issue_payouts

    with _container() as c:
        _current(c)
        assert c.payout_gateway is not None
        items = issue_payouts(c, group, period, c.payout_gateway, _meta("payouts", by))
    for p in items:
        typer.echo(
            f"{p['payee_id']}: {yuan(p['amount'])} {p['status']}"
            + (f", payout {p['payout_id']}, key {p['idempotency_key']}" if "payout_id" in p else "")
        )
    typer.echo(f"payouts {len(items)}")
    if any(p["status"] == "failed" for p in items):
        raise typer.Exit(1)


@settlement_app.command("retry-payout")
def retry_payout(
    payout_id: Annotated[str, typer.Argument(help="the payout's id (scrm settlement payouts)")],
    by: By = "cli",
) -> None:
    """Ask the gateway again for a failed payout, with the same idempotency key."""
    from uuid import UUID

    try:
        ident = UUID(payout_id)
    except ValueError:
        raise typer.BadParameter(f"{payout_id!r} is not a payout id") from None
    with _container() as c:
        assert c.payout_gateway is not None
        p = c.settlement.retry_payout(ident, c.payout_gateway, _meta("retry-payout", by))
    typer.echo(f"payout {p.id}: {p.status}, attempt {p.attempt}, key {p.idempotency_key}")
    if p.status == "failed":
        raise typer.Exit(1)


@settlement_app.command("correct")
def correct(
    source: Annotated[str, typer.Argument(help="the item's source")],
    reason: Annotated[str, typer.Option(help="why: recorded with the correction")],
    rule_version: Annotated[
        int | None, typer.Option(min=1, help="default: the version in force now for its time")
    ] = None,
    by: By = "cli",
) -> None:
    """Re-price a settled item under another rule set version: the difference is posted in
    the current cycle, naming the version it corrects."""
    from infra.settlement import volumes

    with _container() as c:
        _current(c)
        a = c.settlement.correct(
            source,
            rule_version=rule_version,
            reason=reason,
            volumes_for=volumes(c),
            meta=_meta("correct", by),
        )
    for line in a.lines:
        typer.echo(f"{line['payee_id']} {line['component']} {yuan(line['amount'])}")
    typer.echo(f"corrected {source} at position {a.position}")


@settlement_app.command("dispute")
def dispute(
    line_id: Annotated[str, typer.Argument(help="the line's id (scrm settlement earnings)")],
    reason: Annotated[str, typer.Option()],
    by: By = "cli",
) -> None:
    """A payee disputes one line of their earnings."""
    from infra.settlement import line_ref

    with _container() as c:
        _current(c)
        source, index, _ = line_ref(c, line_id)
        r = c.settlement.dispute(source, index, reason, _meta("dispute", by))
    typer.echo(f"dispute {r.id} opened at position {r.position}")


@settlement_app.command("resolve")
def resolve(
    dispute_id: Annotated[str, typer.Argument()],
    outcome: Annotated[str, typer.Option(help="adjusted or rejected")],
    note: Annotated[str, typer.Option()],
    amount: Annotated[int, typer.Option(help="fen, for an adjustment")] = 0,
    by: By = "cli",
) -> None:
    """Finance resolves a dispute: an adjustment posted in the current cycle, or a rejection."""
    with _container() as c:
        _current(c)
        from projections.settlement.settlement import dispute_source

        source = dispute_source(c.read_db, dispute_id)
        if source is None:
            raise NotFound(f"dispute {dispute_id} not found")
        r = c.settlement.resolve_dispute(
            source,
            dispute_id,
            outcome=outcome,
            amount=amount,
            note=note,
            meta=_meta("resolve", by),
        )
    typer.echo(f"dispute {r.id} {outcome} at position {r.position}")


@settlement_app.command("trends")
def trends(
    region: Annotated[
        str | None, typer.Option(help="named in the payee's: 杭州市 covers 浙江省杭州市")
    ] = None,
    group: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Settlement by period, component type and payee for a region's payees."""
    from projections.settlement.settlement import trends as read_trends

    with _container() as c:
        _current(c)
        rows = read_trends(c.read_db, region=region, group=group)
    table = _table(
        f"settlement trends {region or ''}".strip(),
        "period",
        "type",
        "payee",
        "kind",
        "lines",
        "amount",
        right=("lines", "amount"),
    )
    for r in rows:
        table.add_row(
            r["period"], r["type"], r["payee_id"], r["kind"], str(r["lines"]), yuan(r["amount"])
        )
    _print(table)


# --- the ledger ---------------------------------------------------------------------------


@settlement_app.command("bench")
def bench(
    payees: Annotated[
        int | None,
        typer.Option("--payees", min=10, help="payees (default 300,000; 300 with --quick)"),
    ] = None,
    items: Annotated[
        int | None,
        typer.Option("--items", min=100, help="items (default 3,000,000; 3,000 with --quick)"),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="tiny numbers: a smoke test")] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the figures to this file")
    ] = None,
) -> None:
    """Seed a scratch PostgreSQL database with payees and priced items through the domain,
    project them, time the settlement run (target: 300,000 payees, 3,000,000 items in ≤ 60
    s) and statement queries over HTTP, each beside a raw baseline measured in the same run
    (api/bench/settlement.py). The database is dropped at the end. Exit 0 when every figure
    was measured, 1 when one failed, 2 without PostgreSQL."""
    import sys

    from api.bench.settlement import run_settlement_bench

    sys.exit(
        run_settlement_bench(
            Settings(), payees=payees, items=items, quick=quick, json_path=json_out
        )
    )


@ledger_app.command("check")
def ledger_check() -> None:
    """Check the ledger holds together: exit 0 when it does, 1 naming the offenders.

    Debits equal credits, every posting balances, every balance is the sum of its legs."""
    from projections.settlement.ledger import check

    with _container() as c:
        _current(c)
        found = check(c.read_db)
    typer.echo(
        f"postings {found['postings']}, legs {found['legs']},"
        f" debits {yuan(found['debits'])}, credits {yuan(found['credits'])}"
    )
    for p in found["unbalanced_postings"]:
        typer.echo(f"unbalanced posting {p['posting_id']}: legs sum to {yuan(p['sum'])}")
    for m in found["balance_mismatches"]:
        stored = "none" if m["balance"] is None else yuan(m["balance"])
        typer.echo(f"balance mismatch {m['account']}: stored {stored}, legs {yuan(m['legs'])}")
    if not found["ok"]:
        typer.echo("ledger check: FAILED")
        raise typer.Exit(1)
    typer.echo("ledger check: ok")


@ledger_app.command("balances")
def ledger_balances(
    as_of: Annotated[
        str | None, typer.Option(help="as of a business time, ISO-8601 with a timezone")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option(help="accounts starting with, e.g. payable:")
    ] = None,
) -> None:
    """Every account's balance (debit +, credit -), now or as of a business time."""
    from projections.settlement.ledger import balances

    at = sortable_time(moment(as_of, "--as-of")) if as_of else None
    with _container() as c:
        _current(c)
        found = balances(c.read_db, as_of=at, prefix=prefix)
    table = _table(
        f"ledger balances{' as of ' + at if at else ''}", "account", "balance", right=("balance",)
    )
    for account, balance in found.items():
        table.add_row(account, yuan(balance))
    _print(table)
