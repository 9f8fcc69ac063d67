"""Fission campaigns as read models: each campaign's rules in force, its participants with
their place in the invite tree, every invitation with its flags, every reward with its
state, and views counted per code; the funnel, propagation and cost per acquired customer
come from these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from domain.campaigns.aggregates import Campaign, CampaignView, Participant
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles, select


class Campaigns(Projection):
    name = "campaigns"
    tables = (
        "campaigns_campaigns",
        "campaigns_views",
        "campaigns_participants",
        "campaigns_invites",
        "campaigns_flags",
        "campaigns_rewards",
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS campaigns_campaigns ("
        " campaign TEXT PRIMARY KEY, campaign_version BIGINT NOT NULL, definition TEXT NOT NULL,"
        " effective_from TEXT NOT NULL, recorded_by TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS campaigns_views ("
        " campaign TEXT NOT NULL, code TEXT NOT NULL, views BIGINT NOT NULL,"
        " PRIMARY KEY (campaign, code))",
        "CREATE TABLE IF NOT EXISTS campaigns_participants ("
        " campaign TEXT NOT NULL, customer_id TEXT NOT NULL, code TEXT NOT NULL,"
        " invited_by TEXT, depth BIGINT NOT NULL, path TEXT NOT NULL, joined_at TEXT NOT NULL,"
        " PRIMARY KEY (campaign, customer_id))",
        "CREATE INDEX IF NOT EXISTS campaigns_participants_depth"
        " ON campaigns_participants (campaign, depth)",
        "CREATE TABLE IF NOT EXISTS campaigns_invites ("
        " campaign TEXT NOT NULL, inviter TEXT NOT NULL, invitee TEXT NOT NULL,"
        " device_hash TEXT, ip_hash TEXT, arrived_at TEXT NOT NULL, status TEXT NOT NULL,"
        " how TEXT, ref TEXT, succeeded_at TEXT, PRIMARY KEY (campaign, inviter, invitee))",
        "CREATE INDEX IF NOT EXISTS campaigns_invites_invitee ON campaigns_invites (invitee)",
        "CREATE INDEX IF NOT EXISTS campaigns_invites_device"
        " ON campaigns_invites (campaign, device_hash, arrived_at)",
        "CREATE INDEX IF NOT EXISTS campaigns_invites_ip"
        " ON campaigns_invites (campaign, ip_hash, arrived_at)",
        "CREATE TABLE IF NOT EXISTS campaigns_flags ("
        " campaign TEXT NOT NULL, inviter TEXT NOT NULL, invitee TEXT NOT NULL,"
        " reason TEXT NOT NULL, evidence TEXT NOT NULL, status TEXT NOT NULL,"
        " flagged_at TEXT NOT NULL, PRIMARY KEY (campaign, inviter, invitee, reason))",
        "CREATE TABLE IF NOT EXISTS campaigns_rewards ("
        " campaign TEXT NOT NULL, customer_id TEXT NOT NULL, tier BIGINT NOT NULL,"
        " status TEXT NOT NULL, reward TEXT NOT NULL, cost BIGINT NOT NULL, coupon_code TEXT,"
        " reasons TEXT NOT NULL, campaign_version BIGINT NOT NULL, note TEXT,"
        " decided_at TEXT NOT NULL, changed_at TEXT NOT NULL, actor TEXT NOT NULL,"
        " PRIMARY KEY (campaign, customer_id, tier))",
        "CREATE INDEX IF NOT EXISTS campaigns_rewards_status"
        " ON campaigns_rewards (campaign, status)",
    )

    @handles(Campaign, "Published", "Revised")
    def _campaign(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO campaigns_campaigns (campaign, campaign_version, definition,"
            " effective_from, recorded_by, position) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (campaign) DO UPDATE SET campaign_version = excluded.campaign_version,"
            " definition = excluded.definition, effective_from = excluded.effective_from,"
            " recorded_by = excluded.recorded_by, position = excluded.position",
            (
                d["key"], d.get("campaign_version", 1),
                dumps(d["definition"]).decode(), sortable_time(d["effective_from"]), e.actor,
                e.position,
            ),
        )  # fmt: skip

    @handles(CampaignView, "Recorded")
    def _view(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "INSERT INTO campaigns_views (campaign, code, views) VALUES (?,?,1)"
            " ON CONFLICT (campaign, code) DO UPDATE SET views = campaigns_views.views + 1",
            (e.data["campaign"], e.data.get("code") or ""),
        )

    @handles(Participant, "Joined")
    def _joined(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO campaigns_participants (campaign, customer_id, code, invited_by, depth,"
            " path, joined_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (
                d["campaign"], d["customer_id"], d["code"], d.get("invited_by"), d["depth"],
                "/".join(d["path"]), sortable_time(e.occurred_at),
            ),
        )  # fmt: skip

    @handles(Participant, "InviteeArrived")
    def _arrived(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO campaigns_invites (campaign, inviter, invitee, device_hash, ip_hash,"
            " arrived_at, status) VALUES (?,?,?,?,?,?,'arrived') ON CONFLICT DO NOTHING",
            (
                d["campaign"], d["customer_id"], d["invitee"], d.get("device_hash"),
                d.get("ip_hash"), sortable_time(e.occurred_at),
            ),
        )  # fmt: skip

    @handles(Participant, "InviteFlagged")
    def _flagged(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO campaigns_flags (campaign, inviter, invitee, reason, evidence, status,"
            " flagged_at) VALUES (?,?,?,?,?,'open',?) ON CONFLICT DO NOTHING",
            (
                d["campaign"], d["customer_id"], d["invitee"], d["reason"],
                dumps(d["evidence"]).decode(), sortable_time(e.occurred_at),
            ),
        )  # fmt: skip

    @handles(Participant, "InviteSucceeded")
    def _succeeded(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "UPDATE campaigns_invites SET status = 'succeeded', how = ?, ref = ?,"
            " succeeded_at = ? WHERE campaign = ? AND inviter = ? AND invitee = ?",
            (
                d["how"], d["ref"], sortable_time(e.occurred_at), d["campaign"],
                d["customer_id"], d["invitee"],
            ),
        )  # fmt: skip

    def _reward(self, e: EventRecord, cur: Any, status: str, reasons: list[str]) -> None:
        d = e.data
        at = sortable_time(e.occurred_at)
        cur.execute(
            "INSERT INTO campaigns_rewards (campaign, customer_id, tier, status, reward, cost,"
            " coupon_code, reasons, campaign_version, decided_at, changed_at, actor)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (campaign, customer_id, tier)"
            " DO UPDATE SET status = excluded.status, coupon_code = excluded.coupon_code,"
            " changed_at = excluded.changed_at, actor = excluded.actor",
            (
                d["campaign"], d["customer_id"], d["tier"], status, dumps(d["reward"]).decode(),
                d["cost"], d.get("coupon_code"), dumps(reasons).decode(), d["campaign_version"],
                at, at, e.actor,
            ),
        )  # fmt: skip

    @handles(Participant, "RewardIssued")
    def _issued(self, e: EventRecord, cur: Any) -> None:
        self._reward(e, cur, "issued", [])

    @handles(Participant, "RewardHeld")
    def _held(self, e: EventRecord, cur: Any) -> None:
        self._reward(e, cur, "held", e.data["reasons"])

    @handles(Participant, "RewardWithheld")
    def _withheld(self, e: EventRecord, cur: Any) -> None:
        self._reward(e, cur, "withheld", [e.data["reason"]])

    def _reviewed(self, e: EventRecord, cur: Any, status: str, flags: str) -> None:
        d = e.data
        cur.execute(
            "UPDATE campaigns_rewards SET status = ?, note = ?, changed_at = ?, actor = ?"
            " WHERE campaign = ? AND customer_id = ? AND tier = ?",
            (
                status, d["note"], sortable_time(e.occurred_at), e.actor, d["campaign"],
                d["customer_id"], d["tier"],
            ),
        )  # fmt: skip
        for invitee in d["invitees"]:
            cur.execute(
                "UPDATE campaigns_flags SET status = ? WHERE campaign = ? AND inviter = ?"
                " AND invitee = ? AND status = 'open'",
                (flags, d["campaign"], d["customer_id"], invitee),
            )
            if status == "rejected":
                cur.execute(
                    "UPDATE campaigns_invites SET status = 'rejected' WHERE campaign = ?"
                    " AND inviter = ? AND invitee = ?",
                    (d["campaign"], d["customer_id"], invitee),
                )

    @handles(Participant, "RewardReleased")
    def _released(self, e: EventRecord, cur: Any) -> None:
        self._reviewed(e, cur, "released", "cleared")

    @handles(Participant, "RewardRejected")
    def _rejected(self, e: EventRecord, cur: Any) -> None:
        self._reviewed(e, cur, "rejected", "rejected")


# --- queries ---------------------------------------------------------------------------------

REWARD_COLUMNS = [
    "campaign", "customer_id", "tier", "status", "reward", "cost", "coupon_code", "reasons",
    "campaign_version", "note", "decided_at", "changed_at", "actor",
]  # fmt: skip


def _rewards(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["reward"] = orjson.loads(row["reward"])
        row["reasons"] = orjson.loads(row["reasons"])
    return rows


def campaigns(db: Database) -> list[dict[str, Any]]:
    rows = select(
        db, "campaigns_campaigns",
        ["campaign", "campaign_version", "definition", "effective_from", "recorded_by"],
        [], [], order="campaign", limit=1000,
    )  # fmt: skip
    for row in rows:
        row["definition"] = orjson.loads(row["definition"])
    return rows


def participant(db: Database, campaign: str, customer_id: str) -> dict[str, Any] | None:
    found = select(
        db, "campaigns_participants",
        ["campaign", "customer_id", "code", "invited_by", "depth", "path", "joined_at"],
        ["campaign = ?", "customer_id = ?"], [campaign, customer_id], order="customer_id", limit=1,
    )  # fmt: skip
    if not found:
        return None
    p = found[0]
    p["path"] = p["path"].split("/")
    p["invites"] = select(
        db, "campaigns_invites",
        ["invitee", "arrived_at", "status", "how", "ref", "succeeded_at"],
        ["campaign = ?", "inviter = ?"], [campaign, customer_id],
        order="arrived_at, invitee", limit=1000,
    )  # fmt: skip
    flags = flags_of(db, campaign, inviter=customer_id)
    for invite in p["invites"]:
        invite["flags"] = [f for f in flags if f["invitee"] == invite["invitee"]]
    p["successful_invites"] = sum(1 for i in p["invites"] if i["status"] == "succeeded")
    p["rewards"] = rewards(db, campaign, customer_id=customer_id)
    return p


def flags_of(db: Database, campaign: str, *, inviter: str | None = None) -> list[dict[str, Any]]:
    where, params = ["campaign = ?"], [campaign]
    if inviter is not None:
        where.append("inviter = ?")
        params.append(inviter)
    rows = select(
        db, "campaigns_flags",
        ["inviter", "invitee", "reason", "evidence", "status", "flagged_at"],
        where, list(params), order="flagged_at, invitee, reason", limit=10_000,
    )  # fmt: skip
    for row in rows:
        row["evidence"] = orjson.loads(row["evidence"])
    return rows


def rewards(
    db: Database,
    campaign: str,
    *,
    customer_id: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    where, params = ["campaign = ?"], [campaign]
    if customer_id is not None:
        where.append("customer_id = ?")
        params.append(customer_id)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    return _rewards(
        select(db, "campaigns_rewards", REWARD_COLUMNS, where, list(params),
               order="decided_at, customer_id, tier", limit=limit)
    )  # fmt: skip


def arrivals_of(db: Database, invitee: str) -> list[dict[str, Any]]:
    """Where a customer arrived as an invitee, in every campaign (the fission process)."""
    return select(
        db, "campaigns_invites",
        ["campaign", "inviter", "invitee", "arrived_at", "status", "how", "succeeded_at"],
        ["invitee = ?"], [invitee], order="arrived_at, campaign", limit=1000,
    )  # fmt: skip


def burst(
    db: Database, campaign: str, column: str, value: str, since: datetime, until: datetime
) -> list[tuple[str, str]]:
    """(inviter, invitee) of the campaign's arrivals from one device or IP in [since, until]."""
    assert column in ("device_hash", "ip_hash")
    rows = db.query(
        f"SELECT inviter, invitee FROM campaigns_invites WHERE campaign = ? AND {column} = ?"
        " AND arrived_at >= ? AND arrived_at <= ? ORDER BY arrived_at, inviter, invitee",
        (campaign, value, sortable_time(since), sortable_time(until)),
    )
    return [(str(a), str(b)) for a, b in rows]


def stats(db: Database, campaign: str) -> dict[str, Any]:
    """The funnel (views → joins → invitees → successful invites → rewards), how far and how
    wide the campaign spread, and what each acquired customer cost."""

    def one(sql: str) -> int:
        rows = db.query(sql, (campaign,))
        return int(rows[0][0] or 0) if rows else 0

    views = one("SELECT SUM(views) FROM campaigns_views WHERE campaign = ?")
    joins = one("SELECT COUNT(*) FROM campaigns_participants WHERE campaign = ?")
    invited = one(
        "SELECT COUNT(*) FROM campaigns_invites WHERE campaign = ? AND inviter <> invitee"
    )
    succeeded = one(
        "SELECT COUNT(*) FROM campaigns_invites WHERE campaign = ? AND status = 'succeeded'"
    )
    issued = one("SELECT COUNT(*) FROM campaigns_rewards WHERE campaign = ? AND status = 'issued'")
    cost = one("SELECT SUM(cost) FROM campaigns_rewards WHERE campaign = ? AND status = 'issued'")
    levels = {
        str(depth): int(n)
        for depth, n in db.query(
            "SELECT depth, COUNT(*) FROM campaigns_participants WHERE campaign = ?"
            " GROUP BY depth ORDER BY depth",
            (campaign,),
        )
    }
    by_status = {
        str(s): int(n)
        for s, n in db.query(
            "SELECT status, COUNT(*) FROM campaigns_rewards WHERE campaign = ? GROUP BY status",
            (campaign,),
        )
    }
    flags = {
        str(r): int(n)
        for r, n in db.query(
            "SELECT reason, COUNT(*) FROM campaigns_flags WHERE campaign = ? GROUP BY reason",
            (campaign,),
        )
    }
    return {
        "campaign": campaign,
        "funnel": {
            "views": views,
            "joins": joins,
            "invitees": invited,
            "successful_invites": succeeded,
            "rewards": issued,
        },
        "propagation": {
            "depth": max((int(d) for d in levels), default=0),
            "breadth": max(levels.values(), default=0),
            "participants_by_depth": levels,
        },
        "rewards_by_status": by_status,
        "flags": flags,
        "reward_cost": cost,
        # Half away from zero to the fen, like every amount.
        "cost_per_acquired_customer": (2 * cost + succeeded) // (2 * succeeded)
        if succeeded
        else None,
    }
