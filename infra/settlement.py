"""Settlement's processes and the glue between its read model and its commands.

- `Accruer` follows the log after the read models and turns what settlement pays on into
  earnings: completed jobs (the assignee's payee), ratings given after the job, paid orders of
  a payee's shops (and their refunds, as clawbacks). An earning's id is its source's, so a
  round retried, or run by two processes at once, accrues nothing twice.
- `volumes` gathers the counts volume components price by.
- `close_period` and `issue_payouts` are the settlement run and the payouts after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from domain.ports import PayoutGateway, TransferResult
from domain.settlement.aggregates import Earning, Payout
from domain.settlement.application import Accrual, PayeePeriod, VolumesFor
from domain.settlement.cycles import period_of
from domain.settlement.rules import Facts, PeriodFacts, PeriodSale, Rules, Volumes
from domain.shared import Conflict, Meta, NotFound, Recorded
from infra.db import Database
from infra.events import EventRecord, sortable_time
from infra.processes import BehindTheReadModels
from projections.settlement import settlement as read

if TYPE_CHECKING:
    from infra.bootstrap import Container


# Who and what records an accrual: the envelope of everything the accruer records.
BY_ACCRUER = ("system:settlement", "settlement")


@dataclass(frozen=True)
class _Tally:
    """An item accrued in this round, not yet in the read model's counts."""

    payee_id: str
    kind: str
    region: str | None
    occurred_at: datetime
    amount: int


def volumes(c: Container, upto: int | None = None, tally: list[_Tally] | None = None) -> VolumesFor:
    """Counts from the read model (items recorded up to `upto`, or all it holds), plus the
    items accrued since that the read model does not hold yet."""
    db = c.read_db
    extra = tally or []
    bound = " AND position <= ?" if upto is not None else ""
    more: tuple[int, ...] = (upto,) if upto is not None else ()

    def count(facts: Facts, rules: Rules) -> Volumes:
        region_window = 0
        hours = rules.surge_window_hours
        if hours and facts.region and facts.kind == "service":
            since = facts.occurred_at - timedelta(hours=hours)
            found = db.query(
                "SELECT COUNT(*) FROM settlement_items WHERE region = ? AND kind = 'service'"
                f" AND held IS NULL AND occurred_at > ? AND occurred_at <= ?{bound}",
                (facts.region, sortable_time(since), sortable_time(facts.occurred_at), *more),
            )[0][0]
            local = sum(
                1
                for t in extra
                if t.kind == "service"
                and t.region == facts.region
                and since < t.occurred_at <= facts.occurred_at
            )
            region_window = int(found) + local + 1
        counts = {"sale": 0, "invite": 0, "service": 0}
        amount = 0
        if rules.volume_by_payee:
            cycle = db.query(
                "SELECT g.cycle, g.timezone FROM settlement_payees p JOIN settlement_groups g"
                " ON g.group_key = p.group_key WHERE p.payee_id = ?",
                (facts.payee_id,),
            )
            if cycle:
                start, end = period_of(cycle[0][0], cycle[0][1], facts.occurred_at)
                for kind, n, total in db.query(
                    "SELECT kind, COUNT(*), COALESCE(SUM(amount), 0) FROM settlement_items"
                    " WHERE payee_id = ? AND held IS NULL AND occurred_at >= ? AND occurred_at < ?"
                    f"{bound} GROUP BY kind",
                    (facts.payee_id, sortable_time(start), sortable_time(end), *more),
                ):
                    if kind in counts:
                        counts[kind] += int(n)
                    if kind == "sale":
                        amount += int(total)
                for t in extra:
                    if t.payee_id == facts.payee_id and start <= t.occurred_at < end:
                        counts[t.kind] = counts.get(t.kind, 0) + 1
                        amount += t.amount if t.kind == "sale" else 0
        if facts.kind in counts:
            counts[facts.kind] += 1
        if facts.kind == "sale":
            amount += facts.amount or 0
        return Volumes(
            region_window=region_window,
            sales=counts["sale"],
            invites=counts["invite"],
            services=counts["service"],
            sales_amount=amount,
            parents=parents(db, facts.payee_id) if rules.uses_parents else (),
        )

    return count


def parents(db: Database, payee_id: str, depth: int = 10) -> tuple[str, ...]:
    chain: list[str] = []
    p = read.payee(db, payee_id)
    while p is not None and p["parent"] and len(chain) < depth:
        chain.append(p["parent"])
        p = read.payee(db, p["parent"])
    return tuple(chain)


class Accruer(BehindTheReadModels):
    """Turns completed jobs, ratings and paid orders into earnings as they are projected."""

    MARK, TABLE = "accrued", "settlement_accruer_positions"

    def handle(self, records: Sequence[EventRecord]) -> None:
        """Volume components count what the read model holds up to the round's end, plus
        what this round accrued before each item (the tally)."""
        tally: list[_Tally] = []
        count = volumes(self.c, self.reached, tally)
        for record in records:
            handle = self._handlers.get(record.name)
            if handle is not None:
                handle(self, record, count, tally)

    # --- what is paid on -----------------------------------------------------------------

    def _accrue(
        self, source: str, facts: Facts, count: VolumesFor, tally: list[_Tally], meta: Meta
    ) -> Accrual:
        done = self.c.settlement.accrue(source, facts, count, meta)
        if done.created and done.held is None:
            tally.append(
                _Tally(
                    facts.payee_id, facts.kind, facts.region, facts.occurred_at, facts.amount or 0
                )
            )
        return done

    def _completed(self, r: EventRecord, count: VolumesFor, tally: list[_Tally]) -> None:
        d = r.data
        if not d.get("assignee"):
            return
        payee = read.payee_of_staff(self.c.read_db, d["assignee"]) or f"staff:{d['assignee']}"
        km = d.get("distance_km")
        fee = d.get("materials_fee")
        facts = Facts(
            kind="service",
            payee_id=payee,
            occurred_at=datetime.fromisoformat(r.occurred_at).astimezone(UTC),
            service_type=d["service_type"],
            template=(d.get("template") or {}).get("key"),
            region=d.get("region"),
            distance_km=Decimal(str(km)) if km not in (None, "") else None,
            urgency=d.get("urgency"),
            rating=d.get("rating"),
            materials_supplied_by=d.get("materials_supplied_by"),
            materials_fee=int(fee) if isinstance(fee, int) else None,
        )
        self._accrue(
            f"ticket:{r.originator_id}:completion",
            facts,
            count,
            tally,
            r.caused(*BY_ACCRUER),
        )

    def _rated(self, r: EventRecord, count: VolumesFor, tally: list[_Tally]) -> None:
        job = self.c.settlement.find(
            Earning, Earning.create_id(f"ticket:{r.originator_id}:completion")
        )
        if job is None:
            return  # a job nobody is paid for (cancelled, unassigned)
        facts = Facts(
            kind="rating",
            payee_id=job.facts["payee_id"],
            # The rule set version of the job decides its rating bonus.
            occurred_at=datetime.fromisoformat(job.facts["occurred_at"]),
            service_type=job.facts.get("service_type"),
            region=job.facts.get("region"),
            rating=int(r.data["score"]),
        )
        rules = self._rules_of(facts)
        if rules is not None and not rules.price(facts, Volumes()):
            return  # the rule set pays nothing for ratings: no empty earnings
        self._accrue(
            f"ticket:{r.originator_id}:rating",
            facts,
            count,
            tally,
            r.caused(*BY_ACCRUER),
        )

    def _rules_of(self, facts: Facts) -> Rules | None:
        p = read.payee(self.c.read_db, facts.payee_id)
        if p is None or p["rule_set"] is None:
            return None
        try:
            return self.c.settlement.rules_at(p["rule_set"], facts.occurred_at)[1]
        except (Conflict, NotFound):
            return None

    def _paid(self, r: EventRecord, count: VolumesFor, tally: list[_Tally]) -> None:
        rows = self.c.read_db.query(
            "SELECT shop_id, province, city FROM orders_orders WHERE order_id = ?",
            (r.originator_id,),
        )
        if not rows:
            return
        shop, province, city = rows[0]
        for payee in read.payees_of_shop(self.c.read_db, shop):
            facts = Facts(
                kind="sale",
                payee_id=payee,
                occurred_at=datetime.fromisoformat(r.occurred_at).astimezone(UTC),
                region=f"{province or ''}{city or ''}" or None,
                amount=int(r.data["paid"]),
                order_id=r.originator_id,
            )
            self._accrue(
                f"order:{r.originator_id}:sale:{payee}",
                facts,
                count,
                tally,
                r.caused(*BY_ACCRUER),
            )

    def _refunded(self, r: EventRecord, count: VolumesFor, tally: list[_Tally]) -> None:
        d = r.data
        for (source,) in self.c.read_db.query(
            "SELECT source FROM settlement_items WHERE order_id = ? AND held IS NULL",
            (r.originator_id,),
        ):
            self.c.settlement.claw_back(
                source,
                d["refund_id"],
                int(d["amount"]),
                r.caused(*BY_ACCRUER),
            )

    def _payee_registered(self, r: EventRecord, count: VolumesFor, tally: list[_Tally]) -> None:
        """A payee that was missing (or could not be priced) can be now: its held earnings."""
        d = r.data
        p = read.payee(self.c.read_db, d["payee_id"]) if r.name == "PayeeChanged" else d
        if p is None:
            return
        names = [p["payee_id"]] + ([f"staff:{p['staff_id']}"] if p.get("staff_id") else [])
        for source in read.held_for(self.c.read_db, names):
            self.c.settlement.price_held(source, p["payee_id"], count, r.caused(*BY_ACCRUER))

    _handlers: ClassVar[
        dict[str, Callable[[Accruer, EventRecord, VolumesFor, list[_Tally]], None]]
    ] = {
        "TicketCompleted": _completed,
        "TicketRated": _rated,
        "OrderPaid": _paid,
        "OrderRefunded": _refunded,
        "PayeeRegistered": _payee_registered,
        "PayeeChanged": _payee_registered,
    }


def line_ref(c: Container, line_id: str) -> tuple[str, int, str]:
    """(source, index within its earning, payee) of a line."""
    rows = c.read_db.query(
        "SELECT earning_id, source, payee_id, event FROM settlement_lines WHERE line_id = ?",
        (line_id,),
    )
    if not rows:
        raise NotFound(f"line {line_id} not found")
    earning_id, source, payee_id, event = rows[0]
    if event == "SettlementPeriodClosed":
        raise Conflict(
            "a period's own lines (tier top-ups, step bonuses) are corrected by finance, not"
            " disputed",
            code="not_disputable",
        )
    ids = [
        r[0]
        for r in c.read_db.query(
            "SELECT line_id FROM settlement_lines WHERE earning_id = ? ORDER BY position, seq",
            (earning_id,),
        )
    ]
    return str(source), ids.index(line_id), str(payee_id)


# --- the settlement run and payouts ------------------------------------------------------


def close_period(
    c: Container, group: str, period: str, meta: Meta, now: datetime | None = None
) -> Recorded:
    """Close a group's period: every line the read model holds for it (all the log has, once
    the read model caught up), priced close-time components, a digest."""
    now = now or datetime.now(UTC)
    _, start, end = c.settlement.period(group, period)  # 404 / 422 before waiting for anything
    if now < end:
        raise Conflict(
            f"period {period} of {group} runs until {end.isoformat()}", code="period_open"
        )
    c.engine.wait_for(c.head(), c.settings.min_position_timeout, names=["settlement"])
    cutoff = c.engine.positions()["settlement"]
    earlier = c.read_db.query(
        "SELECT MIN(l.period) FROM settlement_lines l WHERE l.group_key = ? AND l.period < ?"
        " AND NOT EXISTS (SELECT 1 FROM settlement_closed x WHERE x.group_key = l.group_key"
        " AND x.period = l.period)",
        (group, period),
    )[0][0]
    if earlier is not None:
        raise Conflict(
            f"period {earlier} of {group} is still open; close it first",
            code="earlier_period_open",
        )
    db = c.read_db
    totals = read.period_payees(db, group, period, cutoff)
    rule_sets = {
        str(p): rs
        for p, rs in db.query(
            "SELECT payee_id, rule_set FROM settlement_payees WHERE group_key = ?", (group,)
        )
    }
    closes: dict[str, bool] = {}
    payees: list[PayeePeriod] = []
    for payee_id, lines, total in totals:
        rs = rule_sets.get(payee_id)
        facts = PeriodFacts(volumes=Volumes())
        if rs is not None:
            if rs not in closes:
                try:
                    closes[rs] = c.settlement.rules_at(rs, end - timedelta(microseconds=1))[
                        1
                    ].closes
                except (Conflict, NotFound):
                    closes[rs] = False
            if closes[rs]:
                facts = _period_facts(db, payee_id, start, end, cutoff)
        payees.append(PayeePeriod(payee_id, rs, lines, total, facts))
    return c.settlement.close_period(
        group,
        period,
        now=now,
        cutoff_position=cutoff,
        payees=payees,
        line_text=lambda: read.period_line_text(db, group, period, cutoff),
        meta=meta,
    )


def _period_facts(
    db: Database, payee_id: str, start: datetime, end: datetime, cutoff: int
) -> PeriodFacts:
    counts = {"sale": 0, "invite": 0, "service": 0}
    amount = 0
    sales = []
    for source, kind, sale_amount, commission in db.query(
        "SELECT i.source, i.kind, i.amount, COALESCE((SELECT SUM(l.amount) FROM settlement_lines l"
        " WHERE l.earning_id = i.earning_id AND l.payee_id = i.payee_id"
        " AND l.type = 'commission'), 0) FROM settlement_items i WHERE i.payee_id = ?"
        " AND i.held IS NULL AND i.occurred_at >= ? AND i.occurred_at < ? AND i.position <= ?"
        " ORDER BY i.position",
        (payee_id, sortable_time(start), sortable_time(end), cutoff),
    ):
        if kind in counts:
            counts[kind] += 1
        if kind == "sale":
            amount += int(sale_amount or 0)
            sales.append(PeriodSale(str(source), int(sale_amount or 0), int(commission)))
    return PeriodFacts(
        volumes=Volumes(
            sales=counts["sale"],
            invites=counts["invite"],
            services=counts["service"],
            sales_amount=amount,
        ),
        sales=tuple(sales),
    )


def payable(db: Database, payee_id: str) -> int:
    """What closed statements owe the payee, less every payout issued (a failed one is
    retried for the same amount, so it counts as taken)."""
    owed = db.query(
        "SELECT COALESCE(SUM(total), 0) FROM settlement_statements WHERE payee_id = ?", (payee_id,)
    )[0][0]
    paid = db.query(
        "SELECT COALESCE(SUM(amount), 0) FROM settlement_payouts WHERE payee_id = ?", (payee_id,)
    )[0][0]
    return int(owed) - int(paid)


def issue_payouts(
    c: Container, group: str, period: str, gateway: PayoutGateway, meta: Meta
) -> list[dict[str, Any]]:
    """A payout to every payee of a closed period who is owed something (a negative statement
    carries over to the next); asking again pays nobody twice."""
    c.engine.wait_for(c.head(), c.settings.min_position_timeout, names=["settlement"])
    if read.closed(c.read_db, group, period) is None:
        raise Conflict(f"period {period} of {group} is not closed", code="period_open")
    out = []
    for (payee_id,) in c.read_db.query(
        "SELECT payee_id FROM settlement_statements WHERE group_key = ? AND period = ?"
        " ORDER BY payee_id",
        (group, period),
    ):
        existing = c.settlement.find(Payout, Payout.create_id(payee_id, group, period))
        if existing is None:
            amount = payable(c.read_db, payee_id)
            if amount <= 0:
                out.append({"payee_id": payee_id, "amount": amount, "status": "carried_over"})
                continue
            payout = c.settlement.issue_payout(payee_id, group, period, amount, gateway, meta)
        else:
            payout = c.settlement.send(existing, gateway, meta)
        out.append(
            {
                "payee_id": payee_id,
                "payout_id": str(payout.id),
                "amount": payout.amount,
                "status": payout.status,
                "idempotency_key": payout.idempotency_key,
            }
        )
    return out


class RecordingPayoutGateway:
    """A payout gateway that records transfers instead of moving money (WeChat Pay's transfer
    to a wallet cannot be reached from here). Like the real one, a key already paid answers
    the first result and pays nothing more. `fail_next` makes the next transfer to a payee
    fail with a reason, for trying retries."""

    def __init__(self, db: Database):
        self.db = db
        self.fail_next: dict[str, str] = {}
        with db.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS payout_gateway_transfers ("
                " idempotency_key TEXT PRIMARY KEY, payee_id TEXT NOT NULL, amount BIGINT NOT NULL,"
                " reference TEXT NOT NULL, transferred_at TEXT NOT NULL)"
            )

    def transfer(
        self, idempotency_key: str, payee_id: str, account: str | None, amount: int
    ) -> TransferResult:
        reason = self.fail_next.pop(payee_id, None)
        if reason is not None:
            return TransferResult("failed", reason=reason)
        reference = "rec-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO payout_gateway_transfers (idempotency_key, payee_id, amount,"
                " reference, transferred_at) VALUES (?,?,?,?,?) ON CONFLICT (idempotency_key)"
                " DO NOTHING",
                (idempotency_key, payee_id, amount, reference, sortable_time(datetime.now(UTC))),
            )
            cur.execute(
                "SELECT reference FROM payout_gateway_transfers WHERE idempotency_key = ?",
                (idempotency_key,),
            )
            first = cur.fetchone()[0]
        return TransferResult("settled", reference=str(first))

    def transfers(self) -> list[tuple[str, str, int]]:
        return [
            (str(k), str(p), int(a))
            for k, p, a in self.db.query(
                "SELECT idempotency_key, payee_id, amount FROM payout_gateway_transfers"
                " ORDER BY transferred_at, idempotency_key"
            )
        ]
