"""`scrm campaigns ...`: fission campaigns (营销裂变) from the command line, the same commands
as api/routes/campaigns.py. Answers are JSON."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from api.cli_support import (
    By,
    EffectiveFrom,
    ExpectedVersion,
    cli_meta,
    publish_file,
)
from api.cli_support import current as _current
from api.cli_support import open_container as _container
from domain.shared import Meta
from projections.campaigns import campaigns as read

campaigns_app = typer.Typer(
    help="Fission campaigns (营销裂变): publish, join, invite, review held rewards, stats",
    no_args_is_help=True,
)
Key = Annotated[str, typer.Argument(help="the campaign's key")]
Customer = Annotated[str, typer.Argument(help="the customer's id")]
Tier = Annotated[int, typer.Argument(help="the tier: its number of invites")]


def _meta(command: str, by: str) -> Meta:
    return cli_meta("campaigns", command, by)


def _echo(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@campaigns_app.command("publish")
def publish(
    key: Key,
    file: Annotated[Path, typer.Argument(help="the campaign, JSON (docs/campaigns.md)")],
    by: By,
    effective_from: EffectiveFrom = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Publish a campaign or its next version."""
    meta = _meta("publish", by)
    r, when = publish_file(
        file,
        effective_from,
        meta,
        lambda c, definition, when: c.campaigns.publish(
            key, definition, effective_from=when, expected_version=expected_version, meta=meta
        ),
    )
    typer.echo(
        f"campaign {key}: version {r.version} from {when.isoformat()}, position {r.position}"
    )


@campaigns_app.command("join")
def join(key: Key, customer_id: Customer, by: By) -> None:
    """A customer joins: their invitation code and link."""
    with _container() as c:
        _echo(asdict(c.campaigns.join(key, customer_id, meta=_meta("join", by))))


@campaigns_app.command("invite")
def invite(
    key: Key,
    code: Annotated[str, typer.Argument(help="the inviter's code")],
    customer_id: Customer,
    by: By,
    device: Annotated[str | None, typer.Option(help="the invitee's device fingerprint")] = None,
    ip: Annotated[str | None, typer.Option(help="the invitee's IP")] = None,
) -> None:
    """Record an invitee who arrived with a code."""
    with _container() as c:
        joined = c.campaigns.invite(
            key, code, customer_id, device=device, ip=ip, meta=_meta("invite", by)
        )
    _echo(asdict(joined))


@campaigns_app.command("participant")
def participant(key: Key, customer_id: Customer) -> None:
    """A participant: code, place in the tree, invitations with flags, rewards."""
    with _container() as c:
        _current(c)
        found = read.participant(c.read_db, key, customer_id)
    if found is None:
        typer.echo(f"refused: not_found: {customer_id} is not in campaign {key}", err=True)
        raise typer.Exit(1)
    _echo(found)


@campaigns_app.command("rewards")
def rewards(
    key: Key,
    status: Annotated[str | None, typer.Option(help="issued, held, withheld, rejected")] = None,
) -> None:
    """Rewards by state; `--status held` is the review queue."""
    with _container() as c:
        _current(c)
        _echo(read.rewards(c.read_db, key, status=status))


@campaigns_app.command("release")
def release(
    key: Key,
    customer_id: Customer,
    tier: Tier,
    by: By,
    note: Annotated[str, typer.Option(help="why it is released")] = "",
) -> None:
    """Release a held reward: issued now, once."""
    with _container() as c:
        r = c.campaigns.release(key, customer_id, tier, note, meta=_meta("release", by))
    _echo({"status": "issued", "position": r.position})


@campaigns_app.command("reject")
def reject(
    key: Key,
    customer_id: Customer,
    tier: Tier,
    by: By,
    note: Annotated[str, typer.Option(help="why it is rejected: on record")],
) -> None:
    """Reject a held reward; its flagged invitations stop counting."""
    with _container() as c:
        r = c.campaigns.reject(key, customer_id, tier, note, meta=_meta("reject", by))
    _echo({"status": "rejected", "position": r.position})


@campaigns_app.command("stats")
def stats(key: Key) -> None:
    """Funnel, propagation depth and breadth, cost per acquired customer."""
    with _container() as c:
        _current(c)
        c.campaigns.campaign(key)
        _echo(read.stats(c.read_db, key))
