"""Inbound routing (智能路由): which queue an incoming customer message goes to, and whether it
opens or updates a ticket, by its keywords, the customer's region and product, and urgency.

The rules are versioned configuration (one `RoutingRules` for the tenant); each decision is
recorded with the rule and the version that made it. Rules are tried in order; the first whose
every condition holds decides. A message no rule takes goes to the fallback queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.keywords import KeywordIndex
from domain.shared import Conflict, InvalidInput, Meta, ScrmAggregate, derived_id, require_slug

ACTIONS = ("route", "open_ticket")
MAX_RULES = 200
DEFAULT_URGENT_WORDS = (
    "紧急",
    "急",
    "马上",
    "立刻",
    "漏水",
    "漏电",
    "冒烟",
    "着火",
    "燃气味",
    "打不开门",
)


@dataclass(frozen=True)
class Rule:
    name: str
    queue: str
    keywords: tuple[str, ...] = ()  # any of them (none: every message)
    regions: tuple[str, ...] = ()  # any of them, matched against the customer's region
    products: tuple[str, ...] = ()  # any of them, found in the product or the message
    urgent_only: bool = False
    action: str = "route"
    workflow: str | None = None  # open_ticket: which workflow
    service_type: str | None = None


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]
    fallback_queue: str
    urgent_words: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "fallback_queue": self.fallback_queue,
            "urgent_words": list(self.urgent_words),
            "rules": [
                {
                    k: (list(v) if isinstance(v, tuple) else v)
                    for k, v in r.__dict__.items()
                    if v not in (None, ())  # as an admin would write it
                }
                for r in self.rules
            ],
        }


@dataclass(frozen=True)
class Decision:
    queue: str
    rule: str | None  # None: the fallback
    action: str
    workflow: str | None
    service_type: str | None
    urgency: str
    matched: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "matched": list(self.matched)}


def _words(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 500:
        raise InvalidInput(f"{where} must be a list of at most 500 texts", field=where)
    for i, w in enumerate(raw):
        if not isinstance(w, str) or not w.strip() or len(w) > 100:
            raise InvalidInput(
                f"{where}[{i}] must be a text of 1-100 characters", field=f"{where}[{i}]"
            )
    return tuple(w.strip() for w in raw)


def parse_rules(raw: Any) -> Rules:
    if not isinstance(raw, Mapping):
        raise InvalidInput("routing rules must be an object", field="rules")
    for key in raw:
        if key not in ("rules", "fallback_queue", "urgent_words"):
            raise InvalidInput(f"unknown property {key!r}", field=key)
    items = raw.get("rules")
    if not isinstance(items, list) or not items or len(items) > MAX_RULES:
        raise InvalidInput(f"rules must be a list of 1-{MAX_RULES} rules", field="rules")
    rules = [_rule(item, f"rules[{i}]") for i, item in enumerate(items)]
    names = [r.name for r in rules]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise InvalidInput(f"rule {n!r} appears twice", field=f"rules[{i}].name")
    urgent = _words(raw.get("urgent_words"), "urgent_words") or DEFAULT_URGENT_WORDS
    return Rules(
        rules=tuple(rules),
        fallback_queue=require_slug(raw.get("fallback_queue", "general"), "fallback_queue"),
        urgent_words=urgent,
    )


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where} must be an object", field=where)
    known = (
        "name",
        "queue",
        "keywords",
        "regions",
        "products",
        "urgent_only",
        "action",
        "workflow",
        "service_type",
    )
    for key in raw:
        if key not in known:
            raise InvalidInput(f"{where}.{key}: unknown property", field=f"{where}.{key}")
    action = raw.get("action", "route")
    if action not in ACTIONS:
        raise InvalidInput(
            f"{where}.action must be one of {', '.join(ACTIONS)}", field=f"{where}.action"
        )
    urgent_only = raw.get("urgent_only", False)
    if not isinstance(urgent_only, bool):
        raise InvalidInput(
            f"{where}.urgent_only must be true or false", field=f"{where}.urgent_only"
        )
    workflow = service_type = None
    if action == "open_ticket":
        workflow = require_slug(raw.get("workflow", ""), f"{where}.workflow")
        service_type = require_slug(raw.get("service_type", ""), f"{where}.service_type")
    elif raw.get("workflow") is not None or raw.get("service_type") is not None:
        raise InvalidInput(
            f"{where}: workflow and service_type go with open_ticket", field=f"{where}.action"
        )
    return Rule(
        name=require_slug(raw.get("name", ""), f"{where}.name"),
        queue=require_slug(raw.get("queue", ""), f"{where}.queue"),
        keywords=_words(raw.get("keywords"), f"{where}.keywords"),
        regions=_words(raw.get("regions"), f"{where}.regions"),
        products=_words(raw.get("products"), f"{where}.products"),
        urgent_only=urgent_only,
        action=action,
        workflow=workflow,
        service_type=service_type,
    )


def route(rules: Rules, *, text: str, region: str | None, product: str | None) -> Decision:
    """The decision for one message. Regions match when the customer's region contains the
    rule's (浙江省杭州市 is in 杭州); products match in the product or the message."""
    kinds: KeywordIndex[tuple[str, str]] = KeywordIndex(
        [(w, ("urgent", w)) for w in rules.urgent_words]
        + [(w, ("keyword", w)) for r in rules.rules for w in r.keywords]
        + [(w, ("product", w)) for r in rules.rules for w in r.products]
    )
    in_text = set(kinds.find(text))
    in_product = set(kinds.find(product or ""))
    urgent = sorted(w for k, w in in_text if k == "urgent")
    urgency = "urgent" if urgent else "normal"
    for r in rules.rules:
        matched: list[str] = []
        if r.keywords:
            hits = [w for w in r.keywords if ("keyword", w) in in_text]
            if not hits:
                continue
            matched += hits
        if r.regions:
            hits = [g for g in r.regions if region and g in region]
            if not hits:
                continue
            matched += hits
        if r.products:
            hits = [p for p in r.products if ("product", p) in in_text | in_product]
            if not hits:
                continue
            matched += hits
        if r.urgent_only and not urgent:
            continue
        return Decision(
            r.queue,
            r.name,
            r.action,
            r.workflow,
            r.service_type,
            urgency,
            tuple(matched + urgent),
        )
    return Decision(rules.fallback_queue, None, "route", None, None, urgency, tuple(urgent))


class RoutingRules(ScrmAggregate):
    """The tenant's routing rules; every version is an event."""

    @staticmethod
    def create_id() -> UUID:
        return derived_id("routing", "rules")

    @event("Published")
    def __init__(self, rules: dict[str, Any], meta: Meta):
        self.versions = [rules]

    @property
    def current_version(self) -> int:
        return len(self.versions)

    def revise(self, rules: Rules, expected_version: int | None, meta: Meta) -> int:
        if expected_version is not None and expected_version != self.current_version:
            raise Conflict(
                f"the routing rules are at version {self.current_version}, not {expected_version}",
                code="stale_version",
            )
        self._revised(rules=rules.as_dict(), rules_version=self.current_version + 1, meta=meta)
        return self.current_version

    @event("Revised")
    def _revised(self, rules: dict[str, Any], rules_version: int, meta: Meta) -> None:
        self.versions = [*self.versions, rules]


class RoutedMessage(ScrmAggregate):
    """One incoming message's routing decision, once: its id derives from the message, so a
    callback and the archive delivering the same message route it once."""

    @staticmethod
    def create_id(message_id: str) -> UUID:
        return derived_id("routed-message", message_id)

    @event("Routed")
    def __init__(
        self,
        id: UUID,
        message_id: str,
        customer_id: UUID | None,
        decision: dict[str, Any],
        rules_version: int,
        ticket_id: UUID | None,
        ticket_action: str | None,  # opened, updated, None
        meta: Meta,
    ):
        self.message_id = message_id
        self.ticket_id = ticket_id
