"""Segments over HTTP: define a rule, and as orders, refunds, revisions and time arrive the
members follow — each move an entered/left event naming the version that decided it, the
segment's auto-tag put on and taken off with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.e2e.test_orders_api import SIGNING, fixture, push

HIGH_VALUE = {"field": "lifetime_value", "op": ">=", "value": 20_000}
DOUYIN_BUYER = "1@#Y2VkZWYxMjM0NTY3ODkwYWJjZGVm"  # the Douyin samples: one trade, step by step


@pytest.fixture
def shop(make_api: MakeApi) -> Api:
    return make_api(**SIGNING)


def define(api: Api, name: str, rule: Any, auto_tag: str | None = None) -> dict[str, Any]:
    r = api.admin.post("/v1/segments", {"name": name, "rule": rule, "auto_tag": auto_tag})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def customer(api: Api, identities: list[tuple[str, str]], owner: str = "zhang.wei") -> str:
    hired = api.admin.post(
        "/v1/staff", {"id": owner, "name": "张伟", "department": "east", "region": "shanghai"}
    )
    assert hired.status_code in (201, 409), hired.text
    return api.customer(identities, owner=owner)["id"]  # type: ignore[no-any-return]


def members(api: Api, segment_id: str, client: Any = None, **params: Any) -> list[str]:
    r = (client or api.admin).get(
        f"/v1/segments/{segment_id}/members", params={"min_position": api.head(), **params}
    )
    assert r.status_code == 200, r.text
    return [m["customer_id"] for m in r.json()["items"]]


def changes(api: Api, segment_id: str) -> list[dict[str, Any]]:
    r = api.admin.get(f"/v1/segments/{segment_id}/changes", params={"min_position": api.head()})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def tags(api: Api, customer_id: str) -> list[str]:
    return api.portrait(customer_id).json()["tags"]  # type: ignore[no-any-return]


def test_an_order_brings_the_buyer_in_with_an_entered_event_and_the_auto_tag(shop: Api) -> None:
    segment = define(shop, "高价值客户", HIGH_VALUE, auto_tag="高价值")
    assert segment["version"] == 1
    buyer = customer(shop, [("phone", "13800138000")])  # the Taobao sample's receiver

    pushed = push(shop, "taobao", fixture("taobao", "trade_finished"))  # 260 yuan, completed
    assert pushed.status_code == 200, pushed.text
    found = shop.admin.get(
        f"/v1/segments/{segment['id']}/members",
        params={"min_position": pushed.json()["position"]},
    )

    assert [m["customer_id"] for m in found.json()["items"]] == [buyer]
    assert found.json()["items"][0]["segment_version"] == 1
    (entered,) = changes(shop, segment["id"])
    assert entered["change"] == "entered" and entered["facts"] == {"lifetime_value": 26_000}
    assert entered["auto_tag"] == "高价值"
    portrait = shop.portrait(buyer).json()
    assert "高价值" in portrait["tags"]
    (tagged,) = [t for t in portrait["timeline"] if t["event"] == "CustomerTagged"]
    assert tagged["actor"] == "system:segments"


def test_a_full_refund_takes_the_customer_out_and_the_tag_off(shop: Api) -> None:
    segment = define(shop, "高价值客户", HIGH_VALUE, auto_tag="高价值")
    buyer = customer(shop, [("douyin_buyer", DOUYIN_BUYER)])
    push(shop, "douyin", fixture("douyin", "paid"))  # 300 yuan
    assert members(shop, segment["id"]) == [buyer]

    push(shop, "douyin", fixture("douyin", "full_refund_cancelled"))

    assert members(shop, segment["id"]) == []
    entered, left = changes(shop, segment["id"])
    assert left["change"] == "left" and left["reason"] == "rule_not_matched"
    assert left["facts"] == {"lifetime_value": 800} and left["auto_tag"] == "高价值"
    assert left["position"] > entered["position"]
    assert "高价值" not in tags(shop, buyer)


def test_as_time_passes_a_customer_falls_out_on_the_sweep(shop: Api) -> None:
    buyer = customer(shop, [("phone", "13800138000")])
    push(shop, "taobao", fixture("taobao", "trade_finished"))  # placed 2026-03-01
    days = (datetime.now(UTC) - datetime(2026, 3, 1, tzinfo=UTC)).days + 10
    recent = define(shop, "近期门锁买家", {"bought_category": "50010788", "within_days": days})
    assert members(shop, recent["id"]) == [buyer]

    evaluator = shop.container.segment_evaluator
    assert evaluator is not None
    evaluator.clock = lambda: datetime.now(UTC) + timedelta(days=11)
    swept = evaluator.sweep()

    assert swept.left == 1
    assert members(shop, recent["id"]) == []
    assert changes(shop, recent["id"])[-1]["facts"] == {
        "bought_category:50010788": "2026-03-01T02:00:00Z"
    }


def test_a_revision_changes_membership_and_each_move_names_the_version_that_decided(
    shop: Api,
) -> None:
    segment = define(shop, "高价值客户", HIGH_VALUE)
    buyer = customer(shop, [("phone", "13800138000")])
    push(shop, "taobao", fixture("taobao", "trade_finished"))
    assert members(shop, segment["id"]) == [buyer]
    path = f"/v1/segments/{segment['id']}/revisions"

    r = shop.admin.post(
        path,
        {
            "rule": {"field": "lifetime_value", "op": ">=", "value": 50_000},
            "reason": "门槛提高到 500 元",
            "expected_version": 1,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    assert members(shop, segment["id"]) == []
    with shop.records_nothing():
        stale = shop.admin.post(path, {"rule": HIGH_VALUE, "reason": "改回", "expected_version": 1})
    assert_error(stale, 409, "stale_version", "expected_version")
    assert [(c["change"], c["segment_version"]) for c in changes(shop, segment["id"])] == [
        ("entered", 1),
        ("left", 2),
    ]
    detail = shop.admin.get(f"/v1/segments/{segment['id']}").json()
    assert detail["version"] == 2 and detail["rule"]["value"] == 50_000
    assert [(h["change"], h["version"], h["reason"]) for h in detail["history"]] == [
        ("defined", 1, ""),
        ("revised", 2, "门槛提高到 500 元"),
    ]
    assert all(h["actor"].startswith("user:") and h["occurred_at"] for h in detail["history"])


def test_retiring_a_segment_lets_everyone_go_and_freezes_it(shop: Api) -> None:
    segment = define(shop, "高价值客户", HIGH_VALUE, auto_tag="高价值")
    buyer = customer(shop, [("phone", "13800138000")])
    push(shop, "taobao", fixture("taobao", "trade_finished"))
    assert members(shop, segment["id"]) == [buyer]

    r = shop.admin.post(f"/v1/segments/{segment['id']}/retire", {"reason": "活动结束"})
    assert r.status_code == 200, r.text

    assert members(shop, segment["id"]) == []
    assert changes(shop, segment["id"])[-1]["reason"] == "segment_retired"
    assert "高价值" not in tags(shop, buyer)
    listed = shop.admin.get("/v1/segments", params={"status": "retired"}).json()["items"]
    assert [s["id"] for s in listed] == [segment["id"]]
    with shop.records_nothing():
        again = shop.admin.post(
            f"/v1/segments/{segment['id']}/revisions",
            {"rule": HIGH_VALUE, "reason": "x", "expected_version": 1},
        )
    assert_error(again, 410, "segment_retired")


def test_staff_and_managers_see_only_the_members_they_may_see(api: Api) -> None:
    api.admin.staff("li.na", department="west")
    mine = customer(api, [("openid", "o-1")], owner="zhang.wei")
    theirs = customer(api, [("openid", "o-2")], owner="li.na")
    segment = define(api, "全部客户", {"field": "order_count", "op": ">=", "value": 0})

    assert sorted(members(api, segment["id"])) == sorted([mine, theirs])
    assert members(api, segment["id"], api.as_staff("zhang.wei")) == [mine]
    assert members(api, segment["id"], api.as_manager("west")) == [theirs]
    first = members(api, segment["id"], limit=1)
    r = api.admin.get(f"/v1/segments/{segment['id']}/members", params={"limit": 1})
    rest = members(api, segment["id"], after=r.json()["next_after"])
    assert len(first) == 1 and first + rest == members(api, segment["id"])


def test_bad_requests_are_refused_and_record_nothing(api: Api) -> None:
    with api.records_nothing():
        bad = api.admin.post(
            "/v1/segments",
            {"name": "x", "rule": {"all": [{"field": "tags", "op": ">", "value": "VIP"}]}},
        )
        assert_error(bad, 422, "invalid_input", "rule.all[0].op")
        staff = api.as_staff("zhang.wei").post("/v1/segments", {"name": "x", "rule": HIGH_VALUE})
        assert_error(staff, 403, "forbidden")
        assert_error(api.as_role("regulator").get("/v1/segments"), 403, "forbidden")
        missing = "00000000-0000-4000-8000-000000000000"
        assert_error(api.admin.get(f"/v1/segments/{missing}/members"), 404, "not_found")
        assert_error(
            api.admin.post(f"/v1/segments/{missing}/retire", {"reason": "x"}), 404, "not_found"
        )
