"""The evaluator follows the log behind the read models: orders, tags and time move customers
in and out of segments, and a crash before its checkpoint only repeats work that records
nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from domain.customers import privacy
from domain.customers.aggregates import Customer
from domain.orders.model import OrderSnapshot
from domain.orders.platforms import parser_for
from domain.scope import Scope
from infra.bootstrap import Container
from projections.segments.segments import get_segment, list_changes, list_members
from tests.factories import meta
from tests.unit.world import embedded_only, project

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders"
PHONE = "13800138000"  # the receiver's phone in the Taobao samples: links the buyer


def sample(platform: str, name: str) -> OrderSnapshot:
    payload = orjson.loads((FIXTURES / platform / f"{name}.json").read_bytes())
    return parser_for(platform)(payload)


def buy(c: Container, snap: OrderSnapshot, digest: str) -> None:
    c.orders.receive(snap, digest, meta(actor="integration:taobao", source="taobao"))


def settle(c: Container, now: Any = None) -> Any:
    """Project, evaluate what the read models reached, project the decisions."""
    project(c)
    outcome = c.segment_evaluator.run_until_caught_up(now)  # type: ignore[union-attr]
    project(c)
    return outcome


def members(c: Container, segment_id: str) -> list[str]:
    return [m["customer_id"] for m in list_members(c.read_db, segment_id)]


@pytest.fixture
def buyer(container: Container) -> str:
    return container.customers.add_customer(
        identities=[("phone", PHONE)], tags=[], owner=None, meta=meta()
    ).id


@embedded_only
def test_an_order_brings_its_buyer_into_the_segment_with_its_auto_tag(
    container: Container, buyer: str
) -> None:
    segment = container.segments.define(
        name="高价值客户",
        rule={"field": "lifetime_value", "op": ">=", "value": 20_000},
        auto_tag="高价值",
        meta=meta(actor="user:admin"),
    ).id
    settle(container)
    assert members(container, segment) == []

    buy(container, sample("taobao", "trade_finished"), "d-1")  # 260.00 yuan, linked by phone
    outcome = settle(container)

    assert (outcome.entered, outcome.tagged) == (1, 1)
    assert members(container, segment) == [buyer]
    (entered,) = list_changes(container.read_db, segment)
    assert entered["change"] == "entered" and entered["segment_version"] == 1
    assert entered["facts"] == {"lifetime_value": 26_000} and entered["auto_tag"] == "高价值"
    tags = container.read_db.query("SELECT tag FROM portrait_tags WHERE customer_id = ?", (buyer,))
    assert tags == [("高价值",)]


@embedded_only
def test_a_revision_moves_customers_and_says_which_version_decided(
    container: Container, buyer: str
) -> None:
    buy(container, sample("taobao", "trade_finished"), "d-1")
    segment = container.segments.define(
        name="门锁买家", rule={"bought_category": "50010788"}, auto_tag=None, meta=meta()
    ).id
    settle(container)
    container.segments.revise(
        UUID(segment),
        rule={"bought_category": "50010788", "within_days": 1},
        reason="只看最近",
        expected_version=1,
        meta=meta(actor="user:admin"),
    )
    settle(container)

    assert members(container, segment) == []
    changes = list_changes(container.read_db, segment)
    assert [(c["change"], c["segment_version"]) for c in changes] == [("entered", 1), ("left", 2)]
    history = get_segment(container.read_db, segment)["history"]  # type: ignore[index]
    assert [(h["change"], h["version"], h["reason"], h["actor"]) for h in history] == [
        ("defined", 1, "", "staff:tester"),
        ("revised", 2, "只看最近", "user:admin"),
    ]


@embedded_only
def test_time_alone_moves_a_customer_out_on_the_sweep(container: Container, buyer: str) -> None:
    buy(container, sample("taobao", "trade_finished"), "d-1")
    placed = sample("taobao", "trade_finished").placed_at
    segment = container.segments.define(
        name="近期买家",
        rule={"field": "days_since_last_order", "op": "<=", "value": 30},
        auto_tag=None,
        meta=meta(),
    ).id
    settle(container, now=placed + timedelta(days=3))
    assert members(container, segment) == [buyer]

    later = container.segment_evaluator.sweep(now=placed + timedelta(days=31))  # type: ignore[union-attr]
    project(container)

    assert later.left == 1 and members(container, segment) == []


@embedded_only
def test_a_silent_customer_stays_silent_when_the_segment_tags_them(
    container: Container, buyer: str
) -> None:
    """The auto-tag is an event about the customer; it must not end their silence."""
    segment = container.segments.define(
        name="沉默30天",
        rule={"field": "days_silent", "op": ">=", "value": 30},
        auto_tag="沉默",
        meta=meta(),
    ).id
    later = container.segment_evaluator.sweep  # type: ignore[union-attr]
    settle(container)
    month = meta().occurred_at + timedelta(days=31)
    assert later(now=month).entered == 1
    project(container)
    again = later(now=month + timedelta(minutes=5))
    assert (again.entered, again.left) == (0, 0)
    assert members(container, segment) == [buyer]


@embedded_only
def test_a_customer_who_asks_to_be_erased_leaves_and_their_facts_go(
    container: Container, buyer: str
) -> None:
    buy(container, sample("taobao", "trade_finished"), "d-1")
    segment = container.segments.define(
        name="杭州客户",
        rule={"field": "city", "op": "contains", "value": "杭州"},
        auto_tag=None,
        meta=meta(),
    ).id
    settle(container)
    assert list_changes(container.read_db, segment)[0]["facts"] == {"city": "杭州市"}

    privacy.request_erasure(
        container.customers,
        UUID(buyer),
        received_via="phone",
        now=meta().occurred_at,
        last_contact=lambda subjects: None,
        meta=meta(),
    )
    settle(container)

    entered, left = list_changes(container.read_db, segment)
    assert left["change"] == "left" and left["reason"] == "customer_inactive"
    assert entered["facts"] == {}  # erased: what the rule read about them is gone too


@embedded_only
def test_a_crash_before_the_checkpoint_repeats_a_round_that_records_nothing(
    container: Container, buyer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    container.segments.define(
        name="高价值客户",
        rule={"field": "lifetime_value", "op": ">=", "value": 20_000},
        auto_tag="高价值",
        meta=meta(),
    )
    buy(container, sample("taobao", "trade_finished"), "d-1")
    project(container)
    evaluator = container.segment_evaluator
    assert evaluator is not None

    def crash(*_: Any) -> None:
        raise RuntimeError("killed before the checkpoint")

    with monkeypatch.context() as m:
        m.setattr(evaluator, "_checkpoint", crash)
        with pytest.raises(RuntimeError):
            evaluator.run_once()
    recorded = container.head()
    assert evaluator.marks.get("evaluated") == 0

    again = evaluator.run_until_caught_up()

    assert (again.entered, again.tagged, container.head()) == (0, 0, recorded)
    assert evaluator.marks.get("evaluated") == container.engine.low_water_mark()


@embedded_only
def test_a_staff_tag_change_is_evaluated_for_that_customer_only(
    container: Container, buyer: str
) -> None:
    other = container.customers.add_customer(
        identities=[("openid", "o-other")], tags=[], owner=None, meta=meta()
    ).id
    segment = container.segments.define(
        name="VIP",
        rule={"field": "tags", "op": "contains", "value": "VIP"},
        auto_tag=None,
        meta=meta(),
    ).id
    settle(container)
    container.customers.change_tags(
        UUID(other),
        add=["VIP"],
        remove=[],
        expected_version=None,
        scope=Scope("admin"),
        meta=meta(),
    )
    project(container)
    round_ = container.segment_evaluator.run_once()  # type: ignore[union-attr]
    project(container)
    assert round_ is not None and (round_.customers, round_.everyone) == (1, False)
    assert members(container, segment) == [other]
    customer = container.customers.load(Customer, UUID(other), "customer")
    assert customer.tags == ["VIP"]
