"""The loyalty program through the API, on the embedded default and on PostgreSQL: HQ publishes
it against the version last seen; a completed Taobao trade pushed as Taobao sends it earns its
buyer's customer points and a tier by themselves; the tier as of a date, what it gives, and a
tier review that changes nothing twice; refusals 403/409/422 recording nothing."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.e2e.test_identity_api import customer_with_phone
from tests.e2e.test_orders_api import SIGNING, fixture, push
from tests.unit.test_pricing import HANGZHOU, definition

PROGRAM: dict[str, Any] = {
    "points_per_yuan": "1",
    "period_days": 365,
    "tiers": [
        {"key": "ordinary", "name": "普通会员", "min_spend": 0, "price_rate": "0.95"},
        {"key": "silver", "name": "银卡", "min_spend": 20_000, "price_rate": "0.9"},
        {"key": "gold", "name": "金卡", "min_spend": 2_000_000, "price_rate": "0.8",
         "adviser": True},
    ],
}  # fmt: skip
# Before the fixtures' trades (placed 2026-03-01, finished days later).
FROM = "2026-01-01T00:00:00+00:00"


def publish(api: Api, body: dict[str, Any], client: Any = None) -> Any:
    return (client or api.admin).put("/v1/loyalty/program", body)


def test_a_completed_trade_earns_points_and_a_tier_by_itself(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    r = publish(api, {"definition": PROGRAM, "effective_from": FROM, "expected_version": 0})
    assert r.status_code == 201, r.text
    assert r.json()["program_version"] == 1
    cid = customer_with_phone(api, "13800138000")
    assert push(api, "taobao", fixture("taobao", "trade_finished")).status_code == 200
    api.settle()

    staff = api.as_staff("zhang.wei")
    points = staff.get(f"/v1/customers/{cid}/points").json()
    assert points["balance"] == 260  # 260.00 yuan paid, 1 point a yuan
    assert points["movements"][0]["actor"] == "system:loyalty"
    member = staff.get(f"/v1/customers/{cid}/membership").json()
    assert (member["tier"], member["spend"], member["program_version"]) == ("silver", 26_000, 1)
    assert member["terms"] == {
        "key": "silver",
        "name": "银卡",
        "min_spend": 20_000,
        "price_rate": "0.9",
        "adviser": False,
    }
    # Before the trade finished the customer had no tier.
    before = staff.get(f"/v1/customers/{cid}/membership", params={"as_of": FROM}).json()
    assert (before["tier"], before["terms"]) == (None, None)

    shown = staff.get("/v1/loyalty/program").json()
    assert shown["in_force"] == 1
    assert shown["versions"][0]["definition"] == PROGRAM

    # The tier review at this moment: the trade is in the period, nothing changes, twice.
    for _ in range(2):
        r = api.as_manager("east").post("/v1/memberships/tier-review")
        assert r.status_code == 200, r.text
        assert r.json() == {"reviewed": 1, "changed": 0}


def test_a_members_quote_takes_their_tiers_rate_at_the_quotes_time(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    assert publish(api, {"definition": PROGRAM, "effective_from": FROM}).status_code == 201
    strategy = {"definition": definition(), "effective_from": FROM, "expected_version": 0}
    assert api.admin.put("/v1/pricing/strategies/default", strategy).status_code == 201
    cid = customer_with_phone(api, "13800138000")
    assert push(api, "taobao", fixture("taobao", "trade_finished")).status_code == 200
    api.settle()
    staff = api.as_staff("zhang.wei")
    basket = {"strategy": "default", "region": HANGZHOU, "lines": [{"sku": "LOCK-S1"}]}

    stranger = staff.post("/v1/quotes", {**basket, "at": "2026-06-02T08:00:00Z"}).json()
    member = staff.post(
        "/v1/quotes", {**basket, "at": "2026-06-02T08:00:00Z", "customer_id": cid}
    ).json()
    before = staff.post(  # before the trade made them silver: no tier, no rate
        "/v1/quotes", {**basket, "at": "2026-02-01T08:00:00Z", "customer_id": cid}
    ).json()

    assert stranger["member"] is None and stranger["total"] == 199_900
    assert member["member"] == {
        "customer_id": cid, "tier": "silver", "rate": "0.9", "program_version": 1,
    }  # fmt: skip
    assert member["total"] == 179_910
    assert member["lines"][0]["steps"][-1]["step"] == "member"
    assert (before["member"], before["total"]) == (None, 199_900)
    with api.records_nothing():
        assert_error(
            staff.post("/v1/quotes", {**basket, "customer_id": "no-such-customer"}),
            404,
            "not_found",
        )


def test_refusals_record_nothing(api: Api) -> None:
    assert publish(api, {"definition": PROGRAM, "expected_version": 0}).status_code == 201
    with api.records_nothing():
        assert_error(
            publish(api, {"definition": PROGRAM, "expected_version": 0}), 409, "stale_version"
        )
        bad = {**PROGRAM, "tiers": [{"key": "a", "min_spend": 100}]}
        assert_error(
            publish(api, {"definition": bad}), 422, "invalid_input", field="tiers[0].min_spend"
        )
        assert_error(
            publish(api, {"definition": PROGRAM}, api.as_manager("east")), 403, "forbidden"
        )
        assert_error(api.as_staff("li.na").post("/v1/memberships/tier-review"), 403, "forbidden")
        assert_error(
            api.admin.put("/v1/loyalty/program", {"definition": PROGRAM, "bonus": 1}),
            422,
            "invalid_input",
        )
