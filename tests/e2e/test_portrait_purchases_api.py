"""The portrait's purchases: lifetime value, first and last order, refunds, RFM scores under a
versioned model, and favourite categories, across the buyers linked to the customer."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.e2e.test_identity_api import customer_with_phone, portrait
from tests.e2e.test_orders_api import SIGNING, fixture, push

# Four Taobao trades of one buyer (receiver phone 13800138000), all placed 2026-03-01:
FINISHED = ("trade_finished", 26_000)  # two lines of category 50010788
# One 50010788 line refunded in full: its paid share after the trade discount, 170.80.
PARTIAL = ("partial_refund_one_line", 41_600 - 17_080)
TMALL = ("tmall_3_suborders_paid", 61_000)  # categories 121398012/13/14, one line each
# Paid, both lines refunded, trade closed: not a purchase; the 8.00 freight was not refunded.
FULL_REFUND = ("trade_closed_full_refund", 36_500 - 35_700)


def put_model(api: Api, body: dict[str, Any]) -> Any:
    return api.client.put(
        "/v1/rfm-model", json=body, headers={"Authorization": f"Bearer {api.admin.token}"}
    )


def buyer_with_four_trades(api: Api) -> str:
    cid = customer_with_phone(api, "13800138000")
    for name, _ in (FINISHED, PARTIAL, TMALL, FULL_REFUND):
        assert push(api, "taobao", fixture("taobao", name)).status_code == 200
    return cid


def test_the_portrait_sums_purchases_and_ranks_categories(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    cid = buyer_with_four_trades(api)
    seen = portrait(api, api.as_staff("zhang.wei"), cid)
    orders = seen["orders"]
    assert orders["count"] == 4  # placed
    assert orders["purchases"] == 3  # the fully refunded trade is not one
    assert orders["lifetime_value"] == sum(v for _, v in (FINISHED, PARTIAL, TMALL, FULL_REFUND))
    assert orders["refunded"] == 17_080 + 35_700
    assert orders["refunds"] == 2
    assert orders["first_order_at"].startswith("2026-03-01T02:00:00")  # 10:00 in Beijing
    assert orders["platforms"] == ["taobao"]
    # 50010788 was bought in two orders (the refunded line does not count, its siblings do).
    assert seen["favourite_categories"][0] == "50010788"
    top = seen["categories"][0]
    # Line amounts are what was paid for them after the trade's discount (divide_order_fee).
    assert (top["orders"], top["amount"]) == (2, (17_910 + 8_090) + (18_900 + 5_620))
    assert len(seen["favourite_categories"]) == 3
    # Before any model is published, the default (version 0) scores: 3 purchases -> F 3,
    # 1,123.20 yuan -> M 2 (500 <= LTV < 2,000); R depends on today, so only its range here.
    rfm = seen["rfm"]
    assert (rfm["f"], rfm["m"], rfm["model_version"]) == (3, 2, 0)
    assert 1 <= rfm["r"] <= 5


def test_a_published_model_scores_from_its_effective_time(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    cid = buyer_with_four_trades(api)
    bands = {
        "recency_days": [1, 2, 3, 36_500],  # anything bought in the last century: R 2
        "frequency": [2, 3, 4, 5],
        "monetary": [10_000, 50_000, 100_000, 200_000],
    }
    r = put_model(api, {"bands": bands, "expected_version": 0})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == 1
    rfm = portrait(api, api.admin, cid)["rfm"]
    assert rfm == {"r": 2, "f": 3, "m": 4, "model_version": 1}

    # A version that takes effect tomorrow scores nobody today.
    later = {**bands, "frequency": [1, 2, 3, 4]}
    r = put_model(api, {"bands": later, "effective_from": "2099-01-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    assert portrait(api, api.admin, cid)["rfm"]["model_version"] == 1
    model = api.admin.get("/v1/rfm-model", params={"min_position": api.head()}).json()
    assert model["in_force"]["model_version"] == 1
    assert [v["model_version"] for v in model["versions"]] == [1, 2]
    assert model["versions"][1]["effective_from"].startswith("2099-01-01")

    # Two admins editing from the same version: the second is told, not overwritten.
    with api.records_nothing():
        assert_error(put_model(api, {"bands": bands, "expected_version": 1}), 409, "stale_version")


def test_bad_bands_are_refused_naming_the_band(api: Api) -> None:
    good = {"recency_days": [30, 90, 180, 365], "frequency": [2, 3, 5, 10]}
    with api.records_nothing():
        assert_error(put_model(api, {"bands": good}), 422, "invalid_input", "monetary")
        bad = {**good, "monetary": [5, 4, 3, 2]}
        assert_error(put_model(api, {"bands": bad}), 422, "invalid_input", "monetary")
        bad = {**good, "monetary": [1, 2, 3, "4"]}
        assert_error(put_model(api, {"bands": bad}), 422, "invalid_input", "monetary")
        extra = {**good, "monetary": [1, 2, 3, 4], "loyalty": [1, 2, 3, 4]}
        assert_error(put_model(api, {"bands": extra}), 422, "invalid_input", "loyalty")
    staff = api.as_staff("li.lei")
    r = api.client.put(
        "/v1/rfm-model",
        json={"bands": {**good, "monetary": [1, 2, 3, 4]}},
        headers={"Authorization": f"Bearer {staff.token}"},
    )
    assert_error(r, 403, "forbidden")


def test_a_customer_without_orders_has_no_scores(api: Api) -> None:
    cid = api.customer()["id"]
    seen = api.portrait(cid).json()
    assert seen["rfm"] is None
    assert seen["orders"]["count"] == 0 and seen["orders"]["lifetime_value"] == 0
    assert seen["favourite_categories"] == []
