"""Segments and memberships: versioned definitions, idempotent reconciling that is safe to
race, and auto-tags that only segments take off again."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.customers.aggregates import Customer
from domain.scope import Scope
from domain.segments import rules
from domain.segments.aggregates import SegmentMembership
from domain.segments.application import SegmentsApp, SegmentVersion
from domain.shared import Conflict, Gone, InvalidInput
from infra.bootstrap import Container, bootstrap
from infra.settings import Settings
from tests.factories import meta
from tests.unit.world import embedded_only, names_in_log

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
HIGH_VALUE = {"field": "lifetime_value", "op": ">=", "value": 100_000}
RICH: dict[str, Any] = {"lifetime_value": 250_000, "tags": []}
POOR: dict[str, Any] = {"lifetime_value": 0, "tags": []}


def customer(c: Container, tags: list[str] | None = None) -> str:
    return c.customers.add_customer(
        identities=[("openid", f"o-{len(c.read_log(0, 10_000))}")],
        tags=tags or [],
        owner=None,
        meta=meta(),
    ).id


def version_of(app: SegmentsApp, segment_id: str) -> SegmentVersion:
    s = app.get(UUID(segment_id))
    return SegmentVersion(
        UUID(segment_id), s.segment_version, rules.parse(s.rule), s.auto_tag, s.retired
    )


def tags_of(c: Container, customer_id: str) -> list[str]:
    return list(c.customers.load(Customer, UUID(customer_id), "customer").tags)


def evaluate(
    c: Container, segment_ids: list[str], features: dict[str, Any], as_of: int = 0, **kw: Any
) -> Any:
    versions = [version_of(c.segments, s) for s in segment_ids]
    return c.segments.reconcile(
        versions, features, kw.pop("now", NOW), meta(actor="system:segments"), as_of=as_of, **kw
    )


@pytest.fixture
def high_value(container: Container) -> str:
    return container.segments.define(
        name="高价值客户", rule=HIGH_VALUE, auto_tag="高价值", meta=meta(actor="user:admin")
    ).id


# --- the segment: a versioned configuration --------------------------------------------------


@embedded_only
def test_each_revision_is_the_next_version_and_a_stale_one_is_refused(
    container: Container, high_value: str
) -> None:
    app = container.segments
    revised = app.revise(
        UUID(high_value),
        rule={"field": "lifetime_value", "op": ">=", "value": 200_000},
        reason="门槛提高",
        expected_version=1,
        meta=meta(),
    )
    assert revised.version == 2
    with pytest.raises(Conflict) as stale:
        app.revise(UUID(high_value), rule=HIGH_VALUE, reason="x", expected_version=1, meta=meta())
    assert stale.value.code == "stale_version"
    with pytest.raises(Conflict) as same:
        app.revise(
            UUID(high_value),
            rule={"field": "lifetime_value", "op": ">=", "value": 200_000},
            reason="x",
            expected_version=2,
            meta=meta(),
        )
    assert same.value.code == "rule_unchanged"
    app.retire(UUID(high_value), reason="活动结束", meta=meta())
    with pytest.raises(Gone):
        app.revise(UUID(high_value), rule=HIGH_VALUE, reason="x", expected_version=2, meta=meta())
    with pytest.raises(Conflict) as again:
        app.retire(UUID(high_value), reason="again", meta=meta())
    assert again.value.code == "already_retired"
    assert names_in_log(container) == ["SegmentDefined", "SegmentRuleRevised", "SegmentRetired"]


@embedded_only
def test_a_bad_rule_or_auto_tag_records_nothing(container: Container) -> None:
    with pytest.raises(InvalidInput) as bad:
        container.segments.define(
            name="x",
            rule={"any": [{"field": "ltv", "op": ">", "value": 1}]},
            auto_tag=None,
            meta=meta(),
        )
    assert bad.value.field == "rule.any[0].field"
    with pytest.raises(InvalidInput) as tag:
        container.segments.define(name="x", rule=HIGH_VALUE, auto_tag=" ", meta=meta())
    assert tag.value.field == "auto_tag"
    assert container.head() == 0


# --- reconciling ------------------------------------------------------------------------------


@embedded_only
def test_entering_records_once_and_tags_the_customer_as_caused_by_the_entry(
    container: Container, high_value: str
) -> None:
    c1 = customer(container)
    first = evaluate(container, [high_value], {c1: RICH}, as_of=7)
    head = container.head()
    again = evaluate(container, [high_value], {c1: RICH}, as_of=8)

    assert (first.entered, first.tagged, again.entered) == (1, 1, 0)
    assert container.head() == head  # already in: nothing recorded
    entered, tagged = container.read_log(head - 2, 10)
    membership = SegmentMembership.create_id(UUID(high_value), UUID(c1))
    assert entered.name == "SegmentMembershipEntered"
    assert entered.originator_id == str(membership)
    assert entered.data["facts"] == {"lifetime_value": 250_000}
    assert entered.data["segment_version"] == 1 and entered.data["as_of_position"] == 7
    assert (tagged.name, tagged.actor, tagged.data["tags"]) == (
        "CustomerTagged",
        "system:segments",
        ["高价值"],
    )
    assert tagged.causation_id == f"event:{membership}:1"


@embedded_only
def test_leaving_takes_off_the_tag_the_segment_put_on(
    container: Container, high_value: str
) -> None:
    c1 = customer(container)
    evaluate(container, [high_value], {c1: RICH})
    out = evaluate(container, [high_value], {c1: POOR})

    assert (out.left, out.untagged) == (1, 1)
    assert tags_of(container, c1) == []
    left = [r for r in container.read_log(0, 100) if r.name == "SegmentMembershipLeft"]
    assert left[0].data["reason"] == "rule_not_matched"
    assert left[0].data["auto_untagged"] == "高价值"


@embedded_only
def test_a_tag_staff_put_on_stays_when_the_customer_leaves(
    container: Container, high_value: str
) -> None:
    before, after = customer(container, tags=["高价值"]), customer(container)
    evaluate(container, [high_value], {before: RICH, after: RICH})
    container.customers.change_tags(  # staff take it off and put it on again by hand
        UUID(after),
        add=[],
        remove=["高价值"],
        expected_version=None,
        scope=Scope("admin"),
        meta=meta(),
    )
    container.customers.change_tags(
        UUID(after),
        add=["高价值"],
        remove=[],
        expected_version=None,
        scope=Scope("admin"),
        meta=meta(),
    )
    out = evaluate(container, [high_value], {before: POOR, after: POOR})

    assert (out.left, out.untagged) == (2, 0)
    assert tags_of(container, before) == ["高价值"] and tags_of(container, after) == ["高价值"]


@embedded_only
def test_a_tag_two_segments_share_comes_off_when_the_last_one_lets_go(
    container: Container, high_value: str
) -> None:
    loyal = container.segments.define(
        name="常客",
        rule={"field": "order_count", "op": ">=", "value": 3},
        auto_tag="高价值",
        meta=meta(),
    ).id
    c1 = customer(container)
    evaluate(container, [high_value, loyal], {c1: {**RICH, "order_count": 5}})
    first = evaluate(container, [high_value, loyal], {c1: {**POOR, "order_count": 5}})
    assert (first.left, first.untagged, tags_of(container, c1)) == (1, 0, ["高价值"])
    last = evaluate(container, [high_value, loyal], {c1: {**POOR, "order_count": 0}})
    assert (last.left, last.untagged, tags_of(container, c1)) == (1, 1, [])


@embedded_only
def test_a_customer_no_longer_processed_leaves_and_keeps_their_tags(
    container: Container, high_value: str
) -> None:
    c1 = customer(container)
    evaluate(container, [high_value], {c1: RICH})
    out = evaluate(container, [high_value], {c1: None})
    assert (out.left, out.untagged) == (1, 0)
    (left,) = [r for r in container.read_log(0, 100) if r.name == "SegmentMembershipLeft"]
    assert left.data["reason"] == "customer_inactive" and left.data["facts"] == {}


@embedded_only
def test_a_retired_segment_lets_everyone_go(container: Container, high_value: str) -> None:
    c1, c2 = customer(container), customer(container)
    evaluate(container, [high_value], {c1: RICH, c2: RICH})
    container.segments.retire(UUID(high_value), reason="活动结束", meta=meta())
    out = evaluate(container, [high_value], {c1: RICH, c2: RICH})
    assert (out.left, out.untagged, out.entered) == (2, 2, 0)


@embedded_only
def test_a_decision_from_older_facts_than_the_last_one_is_not_taken(
    container: Container, high_value: str
) -> None:
    c1 = customer(container)
    evaluate(container, [high_value], {c1: RICH}, as_of=50)
    head = container.head()
    late = evaluate(container, [high_value], {c1: POOR}, as_of=40)
    earlier_clock = evaluate(
        container, [high_value], {c1: POOR}, as_of=50, now=NOW - timedelta(seconds=1)
    )
    assert (late.stale, earlier_clock.stale, container.head()) == (1, 1, head)
    assert evaluate(container, [high_value], {c1: POOR}, as_of=50).left == 1


@embedded_only
def test_the_read_models_view_of_members_only_spares_work(
    container: Container, high_value: str
) -> None:
    c1 = customer(container)
    evaluate(container, [high_value], {c1: RICH})
    head = container.head()
    # A wrong view (says not a member) costs a load of the membership, never a second entry.
    out = evaluate(container, [high_value], {c1: RICH}, known_members={})
    assert (out.entered, container.head()) == (0, head)


@pytest.fixture
def other_process(settings: Settings, container: Container) -> Iterator[Container]:
    other = bootstrap(settings)
    yield other
    other.close()


def test_evaluators_racing_record_each_entry_once(
    container: Container, other_process: Container, high_value: str
) -> None:
    people = [customer(container) for _ in range(6)]
    features = {p: RICH for p in people}
    apps = [container, other_process] * 3

    with ThreadPoolExecutor(len(apps)) as pool:
        outcomes = list(pool.map(lambda c: evaluate(c, [high_value], features), apps))

    log = container.read_log(0, 10_000)
    assert sum(o.entered for o in outcomes) == len(people)
    assert sum(1 for r in log if r.name == "SegmentMembershipEntered") == len(people)
    assert sum(1 for r in log if r.name == "CustomerTagged") == len(people)
    assert not any(o.failed for o in outcomes)
