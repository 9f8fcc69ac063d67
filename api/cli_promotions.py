"""`scrm promotions ...`: coupons, points and the loyalty program from the command line, the
same commands as api/routes/promotions.py. Amounts read in fen, as the API takes them.
Answers are JSON."""

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
from domain.promotions.application import CouponSpec
from domain.shared import Meta
from infra.promotions import review_tiers, sweep_expired
from projections.promotions import promotions as read

promotions_app = typer.Typer(
    help="Coupons (券: issue, redeem/核销, revoke, expire), points (积分) and membership tiers",
    no_args_is_help=True,
)

Kind = Annotated[str, typer.Option(help="amount_off (VALUE in fen) or percent_off (a rate)")]
Value = Annotated[str, typer.Option(help='fen, e.g. 5000; or a rate, e.g. "0.5"')]
MinSpend = Annotated[int, typer.Option(min=0, help="the smallest order it applies to, fen")]
Expires = Annotated[str, typer.Option(help="ISO-8601 with a zone")]
ValidFrom = Annotated[str | None, typer.Option(help="ISO-8601 with a zone; default now")]


def _meta(command: str, by: str) -> Meta:
    return cli_meta("promotions", command, by)


def _echo(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _spec(
    kind: str, value: str, min_spend: int, valid_from: str | None, expires: str, meta: Meta
) -> CouponSpec:
    amount: int | str = int(value) if kind == "amount_off" and value.isdigit() else value
    return CouponSpec.parse(
        kind,
        amount,
        min_spend,
        moment(valid_from, "--valid-from") if valid_from else meta.occurred_at,
        moment(expires, "--expires-at"),
    )


@promotions_app.command("issue-coupon")
def issue_coupon(
    customer_id: Annotated[str, typer.Argument(help="the customer's id")],
    kind: Kind,
    value: Value,
    expires_at: Expires,
    by: By,
    min_spend: MinSpend = 0,
    valid_from: ValidFrom = None,
    issued_by: Annotated[str, typer.Option(help="campaign, rule or staff")] = "staff",
    issuer_ref: Annotated[str | None, typer.Option(help="the campaign or rule")] = None,
    code: Annotated[str | None, typer.Option(help="a campaign's own code")] = None,
) -> None:
    """Issue a coupon to a customer."""
    meta = _meta("issue-coupon", by)
    with _container() as c:
        r = c.promotions.issue_coupon(
            customer_id,
            _spec(kind, value, min_spend, valid_from, expires_at, meta),
            issued_by=issued_by,
            issuer_ref=issuer_ref or meta.actor,
            code=code,
            meta=meta,
        )
    _echo({"code": r.id, "position": r.position})


@promotions_app.command("redeem")
def redeem(
    code: Annotated[str, typer.Argument(help="the coupon's code")],
    order_ref: Annotated[str, typer.Option(help="the order it is taken off")],
    order_total: Annotated[int, typer.Option(min=0, help="the order's total, fen")],
    by: By,
) -> None:
    """Redeem (核销) a coupon against an order: once."""
    with _container() as c:
        discount, position = c.promotions.redeem_coupon(
            code, order_ref=order_ref, order_total=order_total, meta=_meta("redeem", by)
        )
    _echo(
        {"code": code, "discount": discount, "to_pay": order_total - discount, "position": position}
    )


@promotions_app.command("revoke")
def revoke(
    code: Annotated[str, typer.Argument(help="the coupon's code")],
    reason: Annotated[str, typer.Option(help="why: it is on record")],
    by: By,
) -> None:
    with _container() as c:
        r = c.promotions.revoke_coupon(code, reason=reason, meta=_meta("revoke", by))
    _echo({"code": code, "status": "revoked", "position": r.position})


@promotions_app.command("expire-coupons")
def expire_coupons(by: By = "scheduler") -> None:
    """Record `CouponExpired` for coupons that lapsed unused (run it from cron)."""
    with _container() as c:
        _current(c)
        done = sweep_expired(c, _meta("expire-coupons", by))
    _echo({"expired": done})


@promotions_app.command("coupon")
def show_coupon(
    code: Annotated[str, typer.Argument(help="the coupon's code")],
    as_of: Annotated[str | None, typer.Option(help="its state at this time too")] = None,
) -> None:
    """A coupon and its history."""
    with _container() as c:
        _current(c)
        found = read.find_coupon(c.read_db, code)
        if found is not None and as_of:
            found["status_as_of"] = read.coupon_status_as_of(
                c.read_db, code, moment(as_of, "--as-of")
            )
    if found is None:
        typer.echo(f"refused: not_found: coupon {code} not found", err=True)
        raise typer.Exit(1)
    _echo(found)


@promotions_app.command("points")
def points(
    customer_id: Annotated[str, typer.Argument(help="the customer's id")],
    as_of: Annotated[str | None, typer.Option(help="the balance at this time; default now")] = None,
) -> None:
    """A customer's points balance as of a time, with the movements that made it."""
    with _container() as c:
        _current(c)
        when = moment(as_of, "--as-of") if as_of else datetime.now(UTC)
        _echo(read.points(c.read_db, customer_id, when))


@promotions_app.command("earn")
def earn(
    customer_id: Annotated[str, typer.Argument(help="the customer's id")],
    amount: Annotated[int, typer.Option("--points", min=1, help="how many")],
    reason: Annotated[str, typer.Option(help="what for")],
    ref: Annotated[str, typer.Option(help="the order or action: taken once")],
    by: By,
) -> None:
    """Points earned by an order or an action."""
    with _container() as c:
        r = c.promotions.earn_points(
            customer_id, amount, reason=reason, ref=ref, meta=_meta("earn", by)
        )
    _echo({"customer_id": r.customer_id, "balance": r.balance, "position": r.position})


@promotions_app.command("exchange")
def exchange(
    customer_id: Annotated[str, typer.Argument(help="the customer's id")],
    amount: Annotated[int, typer.Option("--points", min=1, help="points spent")],
    kind: Kind,
    value: Value,
    expires_at: Expires,
    by: By,
    min_spend: MinSpend = 0,
) -> None:
    """Spend points on a coupon: both recorded together, or neither."""
    meta = _meta("exchange", by)
    with _container() as c:
        r = c.promotions.exchange_points_for_coupon(
            customer_id, amount, _spec(kind, value, min_spend, None, expires_at, meta), meta=meta
        )
    _echo({"code": r.code, "balance": r.balance, "position": r.position})


# --- the loyalty program ----------------------------------------------------------------


@promotions_app.command("publish-program")
def publish_program(
    file: Annotated[Path, typer.Argument(help="the program, JSON (docs/promotions.md)")],
    by: By,
    effective_from: EffectiveFrom = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Publish the next version of the loyalty program: points per yuan of a completed order,
    the period spend counts over, and the tiers."""
    meta = _meta("publish-program", by)
    r, when = publish_file(
        file,
        effective_from,
        meta,
        lambda c, definition, when: c.promotions.publish_program(
            definition, effective_from=when, expected_version=expected_version, meta=meta
        ),
    )
    typer.echo(
        f"loyalty program: version {r.version} from {when.isoformat()}, position {r.position}"
    )


@promotions_app.command("membership")
def membership(
    customer_id: Annotated[str, typer.Argument(help="the customer's id")],
    as_of: Annotated[str | None, typer.Option(help="the tier at this time; default now")] = None,
) -> None:
    """A customer's tier as of a time, what it gives, and the changes that led to it."""
    with _container() as c:
        _current(c)
        when = moment(as_of, "--as-of") if as_of else datetime.now(UTC)
        found = read.membership(c.read_db, customer_id, when)
        if found["tier"] is not None:
            found["terms"] = c.promotions.tier_terms(found["program_version"], found["tier"])
        _echo(found)


@promotions_app.command("review-tiers")
def review(by: By = "scheduler") -> None:
    """Every member's tier again now, so spend that left the period lowers a tier when no
    order comes (run it daily; a second run changes nothing)."""
    with _container() as c:
        _current(c)
        _echo(review_tiers(c, _meta("review-tiers", by)))
