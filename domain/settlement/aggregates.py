"""Settlement's aggregates: rule sets, payee groups, payees, earnings, closed periods, payouts.

Public methods decide (and raise); the private `@event` methods only assign state. Every
amount is integer fen; every line carries its component, rule set version and inputs.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.money import scale
from domain.settlement.rules import Line
from domain.shared import Conflict, Gone, InvalidInput, Meta, ScrmAggregate, Versions, derived_id

PAYEE_KINDS = ("installer", "distributor", "host", "agent", "brand", "store", "partner")
DISPUTE_OUTCOMES = ("adjusted", "rejected")


class RuleSet(Versions, ScrmAggregate):
    """One family of settlement rules (installers, distributors, hosts...). Every version has
    an `effective_from`; an item is settled by the version in force at its business time."""

    VERSION, WHAT, NOT_IN_FORCE = "rule_version", "rule set", "no_rules_in_force"

    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("settlement-rules", key)

    @event("Published")
    def __init__(self, key: str, definition: dict[str, Any], effective_from: datetime, meta: Meta):
        self.key = key
        self.versions = []
        self._add(definition, effective_from, meta)

    def revise(self, definition: dict[str, Any], effective_from: datetime, meta: Meta) -> int:
        self._revised(
            definition=definition,
            effective_from=effective_from,
            rule_version=len(self.versions) + 1,
            meta=meta,
        )
        return len(self.versions)

    @event("Revised")
    def _revised(
        self, definition: dict[str, Any], effective_from: datetime, rule_version: int, meta: Meta
    ) -> None:
        self._add(definition, effective_from, meta)

    def _add(self, definition: dict[str, Any], effective_from: datetime, meta: Meta) -> None:
        self._add_version(effective_from, definition=definition, recorded_at=meta.occurred_at)


class PayeeGroup(ScrmAggregate):
    """Payees settled on one cycle (community stores daily, flagship stores monthly)."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("payee-group", key)

    @event("Defined")
    def __init__(self, key: str, name: str, cycle: str, timezone: str, meta: Meta):
        self.key = key
        self.name = name
        self.cycle = cycle
        self.timezone = timezone


class Payee(ScrmAggregate):
    """Someone settlement pays: an installer (linked to their staff id), a distributor, a
    livestream host, an agent (with the agent above them), a brand, a store (with the shops
    whose orders it is paid on)."""

    @staticmethod
    def create_id(payee_id: str) -> UUID:
        return derived_id("payee", payee_id)

    @event("Registered")
    def __init__(
        self,
        payee_id: str,
        kind: str,
        name: str,
        group: str,
        rule_set: str | None,
        region: str | None,
        parent: str | None,
        staff_id: str | None,
        shops: list[str],
        account: str | None,  # payout account (a WeChat Pay openid), sealed
        meta: Meta,
    ):
        self.payee_id = payee_id
        self.kind = kind
        self.name = name
        self.group = group
        self.rule_set = rule_set
        self.region = region
        self.parent = parent
        self.staff_id = staff_id
        self.shops = shops
        self.account = account

    FIELDS = ("name", "group", "rule_set", "region", "parent", "staff_id", "shops", "account")

    def change(self, changes: dict[str, Any], meta: Meta) -> bool:
        unknown = sorted(set(changes) - set(self.FIELDS))
        if unknown:
            raise InvalidInput(f"{unknown[0]} cannot be changed", field=unknown[0])
        real = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if not real:
            return False
        self._changed(changes=real, meta=meta)
        return True

    @event("Changed")
    def _changed(self, changes: dict[str, Any], meta: Meta) -> None:
        for k, v in changes.items():
            setattr(self, k, v)


class Earning(ScrmAggregate):
    """What one source (a completed job, a rating, a sale, an invitation) earns, line by
    line, and everything that later changes it: corrections, clawbacks, disputes. Its id is its
    source's, so a source is accrued once however often it is seen."""

    @staticmethod
    def create_id(source: str) -> UUID:
        return derived_id("earning", source)

    @event("Accrued")
    def __init__(
        self,
        source: str,
        facts: dict[str, Any],
        rule_set: str | None,
        rule_version: int | None,
        volumes: dict[str, Any] | None,
        lines: list[dict[str, Any]],
        held: str | None,  # why it could not be priced yet (no payee, no price)
        meta: Meta,
    ):
        self.source = source
        self.facts = facts
        self.rule_set = rule_set
        self.rule_version = rule_version
        self.lines = lines
        self.held = held
        self.refunds: list[str] = []
        self.clawed = 0  # fen of the sale refunded so far
        self.disputes: dict[str, dict[str, Any]] = {}

    def price(
        self,
        payee_id: str,
        rule_set: str,
        rule_version: int,
        volumes: dict[str, Any],
        lines: list[Line],
        meta: Meta,
    ) -> None:
        """Price a held earning, for the payee now known (an installer registered as a payee
        after their first job)."""
        if self.held is None:
            raise Conflict("the earning is priced already", code="already_priced")
        self._priced(
            payee_id=payee_id,
            rule_set=rule_set,
            rule_version=rule_version,
            volumes=volumes,
            lines=[line.as_dict() for line in lines],
            meta=meta,
        )

    @event("Priced")
    def _priced(
        self,
        payee_id: str,
        rule_set: str,
        rule_version: int,
        volumes: dict[str, Any],
        lines: list[dict[str, Any]],
        meta: Meta,
    ) -> None:
        self.facts = {**self.facts, "payee_id": payee_id}
        self.rule_set, self.rule_version = rule_set, rule_version
        self.lines, self.held = lines, None

    def correct(
        self, rule_version: int, lines: list[Line], reason: str, meta: Meta
    ) -> list[dict[str, Any]]:
        """Re-price under another version of its rule set: the difference, component by
        component, is posted now (in the current cycle), naming the version it corrects."""
        if self.held is not None:
            raise Conflict(f"the earning is held: {self.held}", code="earning_held")
        if rule_version == self.rule_version:
            raise Conflict(
                f"the earning is priced by version {rule_version} already", code="same_version"
            )
        # Against what pricing gave (and earlier corrections), not clawbacks or dispute
        # adjustments; a sale partly refunded is corrected on the part still sold.
        priced = [ln for ln in self.lines if ln["type"] not in ("clawback", "adjustment")]
        delta = _delta(priced, [line.as_dict() for line in lines])
        amount = int(self.facts.get("amount") or 0)
        if amount and self.clawed:
            kept = _ratio(amount - self.clawed, amount)
            delta = [{**ln, "amount": scale(ln["amount"], kept)} for ln in delta]
            delta = [ln for ln in delta if ln["amount"]]
        if not delta:
            raise Conflict(
                f"version {rule_version} prices this earning the same", code="nothing_to_correct"
            )
        assert self.rule_version is not None  # priced: not held
        self._corrected(
            corrects_version=self.rule_version,
            rule_version=rule_version,
            lines=delta,
            reason=reason,
            meta=meta,
        )
        return delta

    @event("Corrected")
    def _corrected(
        self,
        corrects_version: int,
        rule_version: int,
        lines: list[dict[str, Any]],
        reason: str,
        meta: Meta,
    ) -> None:
        self.rule_version = rule_version
        self.lines = [*self.lines, *lines]

    def claw_back(self, refund_ref: str, refunded: int, meta: Meta) -> list[dict[str, Any]]:
        """A refund of the sale takes back, from every line, the share refunded, at the rate
        originally applied; a refund seen twice takes nothing twice."""
        amount = int(self.facts.get("amount") or 0)
        if refund_ref in self.refunds or amount <= 0 or self.held is not None:
            return []
        refunded = min(refunded, amount - self.clawed)
        if refunded <= 0:
            return []
        # Cumulative, so the parts of a refund never take back more than the whole would:
        # each refund takes the line's share of everything refunded so far, less what the
        # refunds before it took (5 fen halved is 3 + 2, not 3 + 3).
        before, after = _ratio(self.clawed, amount), _ratio(self.clawed + refunded, amount)
        lines = []
        for line in self.lines:
            if line["amount"] == 0 or line["type"] == "clawback":
                continue
            back = scale(line["amount"], before) - scale(line["amount"], after)
            if back:
                lines.append(
                    {
                        **line,
                        "type": "clawback",
                        "amount": back,
                        "explanation": f"退款追回：{line['explanation']}",
                        "inputs": {
                            "component_type": line["type"],
                            "refund": refund_ref,
                            "refunded": refunded,
                            "sale_amount": amount,
                            "original": line["amount"],
                        },
                    }
                )
        self._clawed_back(refund_ref=refund_ref, refunded=refunded, lines=lines, meta=meta)
        return lines

    @event("ClawedBack")
    def _clawed_back(
        self, refund_ref: str, refunded: int, lines: list[dict[str, Any]], meta: Meta
    ) -> None:
        self.refunds = [*self.refunds, refund_ref]
        self.clawed += refunded
        self.lines = [*self.lines, *lines]

    def dispute(self, line: int, reason: str, meta: Meta) -> str:
        if not 0 <= line < len(self.lines):
            raise InvalidInput(f"the earning has no line {line}", field="line")
        open_ = [d for d in self.disputes.values() if d["line"] == line and d["open"]]
        if open_:
            raise Conflict("that line is already under dispute", code="already_disputed")
        dispute_id = f"{self.id}:{len(self.disputes) + 1}"
        self._disputed(dispute_id=dispute_id, line=line, reason=reason, meta=meta)
        return dispute_id

    @event("Disputed")
    def _disputed(self, dispute_id: str, line: int, reason: str, meta: Meta) -> None:
        self.disputes = {**self.disputes, dispute_id: {"line": line, "open": True}}

    def resolve(
        self, dispute_id: str, outcome: str, amount: int, note: str, meta: Meta
    ) -> dict[str, Any] | None:
        found = self.disputes.get(dispute_id)
        if found is None:
            raise InvalidInput(f"no dispute {dispute_id}", field="dispute_id")
        if not found["open"]:
            raise Gone("the dispute is resolved already", code="dispute_resolved")
        if outcome not in DISPUTE_OUTCOMES:
            raise InvalidInput("outcome must be adjusted or rejected", field="outcome")
        if (outcome == "adjusted") != (amount != 0):
            raise InvalidInput(
                "an adjustment needs a non-zero amount; a rejection none", field="amount"
            )
        disputed = self.lines[found["line"]]
        line = None
        if amount:
            line = {
                "payee_id": disputed["payee_id"],
                "component": disputed["component"],
                "type": "adjustment",
                "amount": amount,
                "explanation": f"争议调整：{note}",
                "inputs": {"dispute": dispute_id, "line": found["line"]},
            }
        self._resolved(
            dispute_id=dispute_id,
            outcome=outcome,
            lines=[line] if line else [],
            note=note,
            meta=meta,
        )
        return line

    @event("DisputeResolved")
    def _resolved(
        self, dispute_id: str, outcome: str, lines: list[dict[str, Any]], note: str, meta: Meta
    ) -> None:
        self.disputes = {**self.disputes, dispute_id: {**self.disputes[dispute_id], "open": False}}
        self.lines = [*self.lines, *lines]


def _ratio(part: int, whole: int) -> Decimal:
    return Decimal(part) / Decimal(whole)


def _delta(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What re-pricing changes, per (payee, component): one line each that differs."""
    totals: dict[tuple[str, str], int] = {}
    types: dict[tuple[str, str], str] = {}
    for line in old:
        key = (line["payee_id"], line["component"])
        totals[key] = totals.get(key, 0) - line["amount"]
        types.setdefault(key, line["type"])
    for line in new:
        key = (line["payee_id"], line["component"])
        totals[key] = totals.get(key, 0) + line["amount"]
        types[key] = line["type"]
    explained = {(ln["payee_id"], ln["component"]): ln["explanation"] for ln in new}
    return [
        {
            "payee_id": payee,
            "component": component,
            "type": "correction",
            "amount": amount,
            "explanation": f"更正：{explained.get((payee, component), component)}",
            "inputs": {"component_type": types[(payee, component)]},
        }
        for (payee, component), amount in sorted(totals.items())
        if amount
    ]


class SettlementPeriod(ScrmAggregate):
    """A group's period, closed: the statements it holds are every line of the group's
    payees accrued in it up to `cutoff_position`, plus the lines the period earns as a whole.
    Its id is the period's, so a period is closed once and never changed after."""

    @staticmethod
    def create_id(group: str, period: str) -> UUID:
        return derived_id("settlement-period", f"{group}:{period}")

    @event("Closed")
    def __init__(
        self,
        group: str,
        period: str,
        cycle: str,
        period_start: datetime,
        period_end: datetime,
        cutoff_position: int,
        payees: int,
        lines: int,
        total: int,
        digest: str,  # SHA-256 over the statements' canonical lines: re-pricing shows
        adjustments: list[dict[str, Any]],  # the lines earned by the period as a whole
        rule_versions: dict[str, int],
        meta: Meta,
    ):
        self.group = group
        self.period = period
        self.total = total


class Payout(ScrmAggregate):
    """Paying one payee what one closed period owes them. The idempotency key is fixed at
    issue, and a retry sends the same key, so the gateway never pays twice."""

    @staticmethod
    def create_id(payee_id: str, group: str, period: str) -> UUID:
        return derived_id("payout", f"{payee_id}:{group}:{period}")

    @event("Issued")
    def __init__(
        self,
        payee_id: str,
        group: str,
        period: str,
        amount: int,
        idempotency_key: str,
        meta: Meta,
    ):
        self.payee_id = payee_id
        self.amount = amount
        self.idempotency_key = idempotency_key
        self.status = "issued"
        self.attempt = 1

    def fail(self, reason: str, meta: Meta) -> None:
        if self.status != "issued":
            raise Conflict(f"the payout is {self.status}", code=f"payout_{self.status}")
        self._failed(reason=reason, attempt=self.attempt, meta=meta)

    @event("Failed")
    def _failed(self, reason: str, attempt: int, meta: Meta) -> None:
        self.status = "failed"

    def retry(self, meta: Meta) -> None:
        if self.status != "failed":
            raise Conflict(
                f"only a failed payout can be retried; this one is {self.status}",
                code=f"payout_{self.status}",
            )
        self._retried(attempt=self.attempt + 1, meta=meta)

    @event("Retried")
    def _retried(self, attempt: int, meta: Meta) -> None:
        self.status = "issued"
        self.attempt = attempt

    def settle(self, gateway_ref: str, meta: Meta) -> bool:
        if self.status == "settled":
            return False
        if self.status != "issued":
            raise Conflict(f"the payout is {self.status}", code=f"payout_{self.status}")
        self._settled(gateway_ref=gateway_ref, meta=meta)
        return True

    @event("Settled")
    def _settled(self, gateway_ref: str, meta: Meta) -> None:
        self.status = "settled"
