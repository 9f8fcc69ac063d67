"""`scrm dashboards ...`: the dashboards over the rollups from the command line, the same
queries as api/routes/dashboards.py, each answer stating the log position it is as of.
Answers are JSON."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import orjson
import typer

from api.cli_support import current as _current
from api.cli_support import open_container as _container
from infra.bootstrap import Container
from projections.dashboards import queries

dashboards_app = typer.Typer(
    help="Dashboards: channel funnel, regional heat, staff ranking, promotion cost, coupons",
    no_args_is_help=True,
)

From = Annotated[str | None, typer.Option("--from", help="first UTC day, YYYY-MM-DD")]
To = Annotated[str | None, typer.Option("--to", help="the day after the last, YYYY-MM-DD")]
Limit = Annotated[int, typer.Option(min=1, max=1000)]


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a day (YYYY-MM-DD)", param_hint=option
        ) from None


def _one_of(value: str, options: tuple[str, ...], option: str) -> Any:
    """The option's value if it is one of `options` (the queries' literal types)."""
    if value not in options:
        raise typer.BadParameter(", ".join(options), param_hint=option)
    return value


def _show(c: Container, models: tuple[str, ...], window: tuple[str, str], found: Any) -> None:
    body = {"as_of": c.as_of(*models), "from": window[0], "to": window[1]}
    body.update(found if isinstance(found, dict) else {"items": found})
    typer.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


@dashboards_app.command("funnel")
def funnel(
    by: Annotated[str, typer.Option(help="code, staff or day")] = "code",
    since: From = None,
    until: To = None,
    limit: Limit = 100,
) -> None:
    """Scans → adds → first orders → GMV per channel code, member of staff or day."""
    chosen = _one_of(by, ("code", "staff", "day"), "--by")
    with _container() as c:
        window = queries.days(_day(since, "--from"), _day(until, "--to"))
        _current(c)
        found = queries.funnel(c.read_db, chosen, *window, limit)
        _show(c, ("dashboards",), window, found)


@dashboards_app.command("regions")
def regions(
    level: Annotated[str, typer.Option(help="province or city")] = "province",
    since: From = None,
    until: To = None,
    limit: Limit = 500,
) -> None:
    """Regional heat: new buyers, paid orders, GMV, refunds and tickets per province or city."""
    chosen = _one_of(level, ("province", "city"), "--level")
    with _container() as c:
        window = queries.months(_day(since, "--from"), _day(until, "--to"))
        _current(c)
        found = queries.regions(c.read_db, chosen, *window, limit)
        _show(c, ("dashboards",), window, found)


@dashboards_app.command("staff")
def staff(
    order_by: Annotated[
        str, typer.Option(help="adds, conversions, gmv or response")
    ] = "conversions",
    since: From = None,
    until: To = None,
    limit: Limit = 100,
) -> None:
    """Staff ranked by adds, conversions, GMV or how quickly they answer customers."""
    chosen = _one_of(order_by, ("adds", "conversions", "gmv", "response"), "--order-by")
    with _container() as c:
        window = queries.days(_day(since, "--from"), _day(until, "--to"))
        _current(c)
        found = queries.staff_ranking(c.read_db, *window, chosen, limit)
        _show(c, ("dashboards", "staff"), window, found)


@dashboards_app.command("promotions")
def promotions(
    by: Annotated[str, typer.Option(help="region or month")] = "region",
    since: From = None,
    until: To = None,
) -> None:
    """Promotion cost per province of the customer or per month."""
    chosen = _one_of(by, ("region", "month"), "--by")
    with _container() as c:
        window = queries.months(_day(since, "--from"), _day(until, "--to"))
        _current(c)
        _show(c, ("dashboards",), window, queries.promotions(c.read_db, chosen, *window, 500))


@dashboards_app.command("coupons")
def coupons(
    by: Annotated[str, typer.Option(help="issuer or month")] = "issuer",
    since: From = None,
    until: To = None,
) -> None:
    """Coupons issued, redeemed, revoked and expired per issuer or month."""
    chosen = _one_of(by, ("issuer", "month"), "--by")
    with _container() as c:
        window = queries.months(_day(since, "--from"), _day(until, "--to"))
        _current(c)
        _show(c, ("dashboards",), window, queries.coupons(c.read_db, chosen, *window))


@dashboards_app.command("campaigns")
def campaigns() -> None:
    """Every fission campaign's funnel, spread, flags and cost per acquired customer."""
    from projections.campaigns.campaigns import campaigns as every
    from projections.campaigns.campaigns import stats

    with _container() as c:
        _current(c)
        found = [stats(c.read_db, k["campaign"]) for k in every(c.read_db)]
        body = {"as_of": c.as_of("campaigns"), "items": found}
        typer.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
