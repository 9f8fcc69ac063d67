"""The settlement service layer: thin commands over the aggregates of domain/settlement.

What a command needs from read models (the volumes an item is priced by, the lines of a
closing period, a payee's payable balance) is handed in by the caller, so the domain reads no
database of its own and tests give exactly the world they mean.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.ports import PayoutGateway, PersonalDataVault
from domain.settlement.aggregates import (
    PAYEE_KINDS,
    Earning,
    Payee,
    PayeeGroup,
    Payout,
    RuleSet,
    SettlementPeriod,
)
from domain.settlement.cycles import check_cycle, period_name, period_named
from domain.settlement.rules import (
    DEFAULT_TIMEZONE,
    Facts,
    Line,
    PeriodFacts,
    Rules,
    Unpriceable,
    Volumes,
)
from domain.shared import (
    ConcurrentUpdate,
    Conflict,
    InvalidInput,
    Meta,
    NotFound,
    Recorded,
    require_slug,
    require_text,
)
from domain.store import ScrmApplication

# The counts an item is priced by, gathered by the caller once it knows the rules.
VolumesFor = Callable[[Facts, Rules], Volumes]


@dataclass(frozen=True)
class Accrual:
    id: str
    source: str
    position: int | None
    lines: list[dict[str, Any]]
    held: str | None
    created: bool  # False: the source had been accrued before


@dataclass(frozen=True)
class PayeePeriod:
    """A payee's part of a closing period, as the read model holds it."""

    payee_id: str
    rule_set: str | None
    lines: int
    total: int
    facts: PeriodFacts


def digest(text: Iterable[bytes], more: Iterable[tuple[Any, ...]] = ()) -> str:
    """SHA-256 over a closed period's lines as text — each line's payee, component, amount and
    line id joined by tabs, one per line, UTF-8 — then the period's own lines the same way.
    Plain text on purpose: anyone can recompute it from the statements with standard tools
    (`... | sha256sum`), and any later re-pricing shows."""
    h = hashlib.sha256()
    for chunk in text:
        h.update(chunk)
    for row in more:
        h.update(("\t".join(map(str, row)) + "\n").encode())
    return h.hexdigest()


class SettlementApp(ScrmApplication):
    def __init__(
        self,
        vault: PersonalDataVault,
        env: dict[str, str] | None = None,
        *,
        share_with: ScrmApplication | None = None,
    ):
        super().__init__(env, share_with=share_with)
        self.vault = vault
        # (key, version) -> parsed rules. A recorded version never changes.
        self._parsed: dict[tuple[str, int], Rules] = {}

    # --- rule sets -----------------------------------------------------------------------

    def publish_rules(
        self,
        key: str,
        definition: Any,
        *,
        effective_from: datetime,
        expected_version: int | None,
        meta: Meta,
    ) -> Recorded:
        """Publish the next version of a rule set. `expected_version` is the version the
        caller last saw (0: none yet); another change in between is a 409."""
        return self.publish_version(
            RuleSet,
            key,
            definition,
            parse=Rules.parse,
            effective_from=effective_from,
            expected_version=expected_version,
            meta=meta,
        )

    def rule_set(self, key: str) -> RuleSet:
        return self.load(RuleSet, RuleSet.create_id(key), f"rule set {key}")

    def rules(self, key: str, version: int) -> Rules:
        found = self._parsed.get((key, version))
        if found is None:
            aggregate = self.rule_set(key)
            if not 1 <= version <= aggregate.current_version:
                raise NotFound(f"rule set {key} has no version {version}")
            found = Rules.parse(aggregate.versions[version - 1]["definition"])
            self._parsed[(key, version)] = found
        return found

    def rules_at(self, key: str, at: datetime) -> tuple[int, Rules]:
        """The version in force at `at` (read from the store: another process may have
        published one) and its parsed rules."""
        version = self.rule_set(key).version_at(at)["rule_version"]
        return version, self.rules(key, version)

    # --- groups and payees ---------------------------------------------------------------

    def define_group(
        self, key: str, *, name: str, cycle: str, timezone: str | None, meta: Meta
    ) -> Recorded:
        require_slug(key, "key")
        check_cycle(cycle)
        zone = timezone or DEFAULT_TIMEZONE
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown timezone {zone!r}", field="timezone") from None
        group = PayeeGroup(
            key=key,
            name=require_text(name, "name", max_len=80),
            cycle=cycle,
            timezone=zone,
            meta=meta,
        )
        try:
            return Recorded(key, self.save_all(group), group.version)
        except ConcurrentUpdate:
            raise Conflict(f"payee group {key} exists", code="already_exists") from None

    def group(self, key: str) -> PayeeGroup:
        return self.load(PayeeGroup, PayeeGroup.create_id(key), f"payee group {key}")

    def register_payee(
        self,
        payee_id: str,
        *,
        kind: str,
        name: str,
        group: str,
        rule_set: str | None,
        region: str | None,
        parent: str | None,
        staff_id: str | None,
        shops: list[str],
        account: str | None,
        meta: Meta,
    ) -> Recorded:
        require_slug(payee_id, "payee_id")
        if kind not in PAYEE_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(PAYEE_KINDS)}", field="kind")
        self.group(group)  # 404 for an unknown group
        if rule_set is not None:
            self.rule_set(rule_set)
        self._check_parent(payee_id, parent)
        aggregate_id = Payee.create_id(payee_id)
        payee = Payee(
            payee_id=payee_id,
            kind=kind,
            name=require_text(name, "name", max_len=80),
            group=group,
            rule_set=rule_set,
            region=require_text(region, "region", max_len=80) if region else None,
            parent=parent,
            staff_id=staff_id,
            shops=sorted({require_text(s, "shops", max_len=80) for s in shops}),
            account=self.vault.seal(aggregate_id, account) if account else None,
            meta=meta,
        )
        try:
            return Recorded(payee_id, self.save_all(payee), payee.version)
        except ConcurrentUpdate:
            raise Conflict(f"payee {payee_id} exists", code="already_exists") from None

    def change_payee(
        self, payee_id: str, changes: dict[str, Any], *, expected_version: int | None, meta: Meta
    ) -> Recorded:
        payee = self.payee(payee_id)
        payee.check_version(expected_version)
        changes = dict(changes)
        if "group" in changes:
            self.group(changes["group"])
        if changes.get("rule_set") is not None:
            self.rule_set(changes["rule_set"])
        if "parent" in changes:
            self._check_parent(payee_id, changes["parent"])
        if changes.get("account"):
            changes["account"] = self.vault.seal(payee.id, changes["account"])
        payee.change(changes, meta)
        return Recorded(payee_id, self.save_all(payee), payee.version)

    def payee(self, payee_id: str) -> Payee:
        return self.load(Payee, Payee.create_id(payee_id), f"payee {payee_id}")

    def _check_parent(self, payee_id: str, parent: str | None) -> None:
        seen = {payee_id}
        while parent is not None:
            if parent in seen:
                raise InvalidInput(
                    f"parent {parent} would make a loop in the agent chain", field="parent"
                )
            seen.add(parent)
            parent = self.payee(parent).parent

    def parents(self, payee_id: str, depth: int = 10) -> tuple[str, ...]:
        chain: list[str] = []
        parent = self.payee(payee_id).parent
        while parent is not None and len(chain) < depth:
            chain.append(parent)
            parent = self.payee(parent).parent
        return tuple(chain)

    # --- earnings ------------------------------------------------------------------------

    def earning(self, source: str) -> Earning:
        return self.load(Earning, Earning.create_id(source), f"earning {source}")

    def _pricing(
        self, facts: Facts, volumes_for: VolumesFor
    ) -> tuple[str | None, int | None, dict[str, Any] | None, list[Line], str | None]:
        """(rule set, version, volumes, lines, held reason) for an item."""
        payee = self.find(Payee, Payee.create_id(facts.payee_id))
        if payee is None:
            return None, None, None, [], f"no payee {facts.payee_id} is registered"
        if payee.rule_set is None:
            return None, None, None, [], f"payee {facts.payee_id} has no rule set"
        try:
            version, rules = self.rules_at(payee.rule_set, facts.occurred_at)
        except (Conflict, NotFound) as refused:
            return payee.rule_set, None, None, [], refused.detail
        volumes = volumes_for(facts, rules)
        try:
            lines = rules.price(facts, volumes)
        except Unpriceable as refused:
            return payee.rule_set, version, None, [], refused.detail
        return payee.rule_set, version, volumes.as_dict(), lines, None

    def accrue(self, source: str, facts: Facts, volumes_for: VolumesFor, meta: Meta) -> Accrual:
        """What a source earns, once: a source seen again answers what it earned then. An item
        that cannot be priced yet (no payee, no price for it) is held with the reason."""
        require_text(source, "source", max_len=200)
        found = self.find(Earning, Earning.create_id(source))
        if found is not None:
            return Accrual(str(found.id), source, None, found.lines, found.held, False)
        rule_set, version, volumes, lines, held = self._pricing(facts, volumes_for)
        earning = Earning(
            source=source,
            facts=facts.as_dict(),
            rule_set=rule_set,
            rule_version=version,
            volumes=volumes,
            lines=[line.as_dict() for line in lines],
            held=held,
            meta=meta,
        )
        try:
            position = self.save_all(earning)
        except ConcurrentUpdate:  # a twin accrued it first: answer that one
            again = self.earning(source)
            return Accrual(str(again.id), source, None, again.lines, again.held, False)
        return Accrual(str(earning.id), source, position, earning.lines, held, True)

    def price_held(
        self, source: str, payee_id: str, volumes_for: VolumesFor, meta: Meta
    ) -> Accrual:
        """Try a held earning again, for `payee_id` (its payee registered, its rule set now
        prices it)."""
        earning = self.earning(source)
        if earning.held is None:
            return Accrual(str(earning.id), source, None, earning.lines, None, False)
        facts = replace(Facts.from_dict(earning.facts), payee_id=payee_id)
        rule_set, version, volumes, lines, held = self._pricing(facts, volumes_for)
        if held is not None or rule_set is None or version is None or volumes is None:
            return Accrual(str(earning.id), source, None, [], held, False)
        earning.price(payee_id, rule_set, version, volumes, lines, meta)
        return Accrual(str(earning.id), source, self.save_all(earning), earning.lines, None, True)

    def correct(
        self,
        source: str,
        *,
        rule_version: int | None,
        reason: str,
        volumes_for: VolumesFor,
        meta: Meta,
    ) -> Accrual:
        """Re-price a settled item under another version (by default the one in force now
        for its business time); the difference is posted in the current cycle."""
        earning = self.earning(source)
        if earning.rule_set is None:
            raise Conflict(f"the earning is held: {earning.held}", code="earning_held")
        facts = Facts.from_dict(earning.facts)
        if rule_version is None:
            rule_version, rules = self.rules_at(earning.rule_set, facts.occurred_at)
        else:
            rules = self.rules(earning.rule_set, rule_version)
        lines = rules.price(facts, volumes_for(facts, rules))
        delta = earning.correct(
            rule_version, lines, require_text(reason, "reason", max_len=500), meta
        )
        return Accrual(str(earning.id), source, self.save_all(earning), delta, None, True)

    def claw_back(self, source: str, refund_ref: str, refunded: int, meta: Meta) -> Accrual:
        earning = self.earning(source)
        lines = earning.claw_back(refund_ref, refunded, meta)
        position = self.save_all(earning) if lines else None
        return Accrual(str(earning.id), source, position, lines, None, bool(lines))

    def dispute(self, source: str, line: int, reason: str, meta: Meta) -> Recorded:
        earning = self.earning(source)
        dispute_id = earning.dispute(line, require_text(reason, "reason", max_len=500), meta)
        return Recorded(dispute_id, self.save_all(earning), earning.version)

    def resolve_dispute(
        self, source: str, dispute_id: str, *, outcome: str, amount: int, note: str, meta: Meta
    ) -> Recorded:
        earning = self.earning(source)
        earning.resolve(dispute_id, outcome, amount, require_text(note, "note", max_len=500), meta)
        return Recorded(dispute_id, self.save_all(earning), earning.version)

    # --- closing periods -----------------------------------------------------------------

    def period(self, group_key: str, period: str) -> tuple[PayeeGroup, datetime, datetime]:
        group = self.group(group_key)
        start, end = period_named(group.cycle, group.timezone, period)
        return group, start, end

    def close_period(
        self,
        group_key: str,
        period: str,
        *,
        now: datetime,
        cutoff_position: int,
        payees: list[PayeePeriod],
        line_text: Callable[[], Iterable[bytes]],
        meta: Meta,
    ) -> Recorded:
        """Close a group's period once it is over: the lines the period earns as a whole are
        priced (retroactive tier top-ups, volume-step bonuses) by the version in force at its
        last instant, and the close records totals and the digest of every line it holds."""
        group, start, end = self.period(group_key, period)
        if now < end:
            raise Conflict(
                f"period {period} of {group_key} runs until {end.isoformat()}", code="period_open"
            )
        if self.find(SettlementPeriod, SettlementPeriod.create_id(group_key, period)) is not None:
            raise Conflict(f"period {period} of {group_key} is closed", code="period_closed")
        last = end - timedelta(microseconds=1)
        adjustments: list[dict[str, Any]] = []
        versions: dict[str, int] = {}
        in_force: dict[str, tuple[int, Rules] | None] = {}  # a few rule sets, many payees
        for p in payees:
            if p.rule_set is None:
                continue
            if p.rule_set not in in_force:
                try:
                    in_force[p.rule_set] = self.rules_at(p.rule_set, last)
                except Conflict:
                    in_force[p.rule_set] = None
            found = in_force[p.rule_set]
            if found is None:
                continue
            version, rules = found
            versions[p.rule_set] = version
            if rules.closes:
                for line in rules.close(p.payee_id, p.facts):
                    adjustments.append(
                        {**line.as_dict(), "rule_set": p.rule_set, "rule_version": version}
                    )
        total = sum(p.total for p in payees) + sum(a["amount"] for a in adjustments)
        closing = SettlementPeriod(
            group=group_key,
            period=period_name(group.timezone, start),
            cycle=group.cycle,
            period_start=start,
            period_end=end,
            cutoff_position=cutoff_position,
            payees=len({p.payee_id for p in payees} | {a["payee_id"] for a in adjustments}),
            lines=sum(p.lines for p in payees) + len(adjustments),
            total=total,
            digest=digest(
                line_text(),
                (
                    (a["payee_id"], a["component"], a["amount"], f"period:{i}")
                    for i, a in enumerate(adjustments)
                ),
            ),
            adjustments=adjustments,
            rule_versions=versions,
            meta=meta,
        )
        try:
            position = self.save_all(closing)
        except ConcurrentUpdate:
            raise Conflict(
                f"period {period} of {group_key} is closed", code="period_closed"
            ) from None
        return Recorded(f"{group_key}:{period}", position, closing.version)

    # --- payouts -------------------------------------------------------------------------

    def issue_payout(
        self,
        payee_id: str,
        group: str,
        period: str,
        amount: int,
        gateway: PayoutGateway,
        meta: Meta,
    ) -> Payout:
        """Record the payout, then ask the gateway; its answer is recorded too. Issued once per
        payee and period: asking again answers the payout on record."""
        if amount <= 0:
            raise Conflict("nothing is payable", code="nothing_payable")
        payout_id = Payout.create_id(payee_id, group, period)
        found = self.find(Payout, payout_id)
        if found is not None:
            return found
        payout = Payout(
            payee_id=payee_id,
            group=group,
            period=period,
            amount=amount,
            idempotency_key=f"scrm-{payout_id.hex}",
            meta=meta,
        )
        try:
            self.save_all(payout)
        except ConcurrentUpdate:
            return self.load(Payout, payout_id, "payout")
        return self.send(payout, gateway, meta)

    def retry_payout(self, payout_id: UUID, gateway: PayoutGateway, meta: Meta) -> Payout:
        payout = self.load(Payout, payout_id, "payout")
        payout.retry(meta)
        self.save_all(payout)
        return self.send(payout, gateway, meta)

    def send(self, payout: Payout, gateway: PayoutGateway, meta: Meta) -> Payout:
        """Ask the gateway (again) for an issued payout: the same idempotency key every time,
        so a payout the gateway already made is answered, not made twice."""
        if payout.status != "issued":
            return payout
        payee = self.payee(payout.payee_id)
        account = self.vault.unseal(payee.id, payee.account) if payee.account else None
        result = gateway.transfer(payout.idempotency_key, payout.payee_id, account, payout.amount)
        if result.status == "settled":
            payout.settle(result.reference or "", meta)
        elif result.status == "failed":
            payout.fail(result.reason or "failed", meta)
        if payout.pending_events:
            self.save_all(payout)
        return payout
