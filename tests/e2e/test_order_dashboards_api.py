"""/v1/dashboards/orders: orders, GMV, refunds, net, cancellations and buyers per platform,
region, channel code of the linked customer and UTC day, with time and platform filters and
the repurchase rate of the window's paying customers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.e2e.test_orders_api import SIGNING, fixture, push

TAOBAO_BUYER = "AAHm5d-EAAeGwJedwSHpg8bT"  # trade_finished.json and trade_closed_by_taobao.json
JD_BUYER = "oWQ1ZmFjZGUtYjY0Ni00ZmFhLWJjNTQtM2Y1"  # finished.json


def a_second_taobao_order() -> dict[str, Any]:
    """trade_finished.json again, as another trade of the same buyer a week later."""
    payload = copy.deepcopy(fixture("taobao", "trade_finished"))
    trade = payload["trade_fullinfo_get_response"]["trade"]
    trade["tid"], trade["tid_str"] = 4012345678941239999, "4012345678941239999"
    for line in trade["orders"]["order"]:
        line["oid_str"] = line["oid_str"][:-4] + "9999"
        line["oid"] = int(line["oid_str"])
        line["end_time"] = "2026-03-12 11:00:00"
    trade["created"] = "2026-03-07 10:00:00"
    trade["pay_time"] = "2026-03-07 10:00:40"
    trade["consign_time"] = "2026-03-07 18:00:00"
    trade["end_time"] = trade["modified"] = "2026-03-12 11:00:00"
    return payload


@pytest.fixture
def shop(make_api: MakeApi) -> tuple[Api, str]:
    """Six orders, and the taobao and jd buyers linked to one customer who came by a code.

    taobao T1  buyer T  paid 26000                      2026-03-01 (UTC)  浙江省 杭州市
    taobao T2  buyer T  paid 26000                      2026-03-07        浙江省 杭州市
    taobao TC  buyer T  cancelled unpaid (35700)        2026-03-01        浙江省 杭州市
    jd     J1  buyer J  paid 5230                       2026-03-05        北京 朝阳区
    pdd    P   buyer P  paid 5780, refunded, cancelled  2026-03-08        上海市 上海市
    youzan Y   buyer Y  paid 30000                      2024-03-01        浙江省 杭州市
    """
    api = make_api(**SIGNING)
    for platform, payload in [
        ("taobao", fixture("taobao", "trade_finished")),
        ("taobao", a_second_taobao_order()),
        ("taobao", fixture("taobao", "trade_closed_by_taobao")),
        ("jd", fixture("jd", "finished")),
        ("pdd", fixture("pdd", "refund_success")),
        ("youzan", fixture("youzan", "paid")),
    ]:
        r = push(api, platform, payload)
        assert r.status_code == 200, r.text
        assert r.json()["orders"][0]["outcome"] == "applied", r.text
    api.admin.staff("s1")
    code = api.admin.code(["s1"])
    scan = api.admin.scan(code["id"], openid="o-shopper-1")
    assert scan.status_code == 201, scan.text
    cid = scan.json()["customer_id"]
    for kind, value in (("taobao_buyer", TAOBAO_BUYER), ("jd_buyer", JD_BUYER)):
        r = api.admin.post(f"/v1/customers/{cid}/identities", {"kind": kind, "value": value})
        assert r.status_code == 202, r.text
    return api, code["id"]


def dashboard(api: Api, client: Any = None, **params: Any) -> dict[str, Any]:
    r = (client or api.admin).get(
        "/v1/dashboards/orders", {"buyers": "true", **params, "min_position": api.container.head()}
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def m(orders: int, gmv: int, refunds: int, cancelled: int, buyers: int) -> dict[str, int]:
    return {
        "orders": orders,
        "gmv": gmv,
        "refunds": refunds,
        "net": gmv - refunds,
        "cancelled": cancelled,
        "buyers": buyers,
    }


def test_per_platform_largest_gmv_first_with_the_totals(shop: tuple[Api, str]) -> None:
    api, _ = shop
    body = dashboard(api, by="platform")
    assert body["rows"] == [
        {"platform": "taobao", **m(3, 52_000, 0, 1, 1)},
        {"platform": "youzan", **m(1, 30_000, 0, 0, 1)},
        {"platform": "pdd", **m(1, 5_780, 5_780, 1, 1)},
        {"platform": "jd", **m(1, 5_230, 0, 0, 1)},
    ]
    # The customer counts once across taobao and jd (three paid orders); pdd's and youzan's
    # buyers are unlinked and paid once each.
    assert body["totals"] == {
        **m(6, 93_010, 5_780, 2, 4),
        "paying_customers": 3,
        "repeat_customers": 1,
        "repurchase_rate": 0.3333,
    }


def test_without_buyers_the_same_sums_and_no_distinct_counts(shop: tuple[Api, str]) -> None:
    api, _ = shop
    for by in ("platform", "region", "day", "channel_code"):
        for window in ({}, {"since": "2026-03-01T06:00:00Z", "until": "2026-03-09T12:00:00Z"}):
            full, fast = (
                dashboard(api, by=by, **window),
                dashboard(api, by=by, buyers="false", **window),
            )
            assert [{**r, "buyers": None} for r in full["rows"]] == fast["rows"], (by, window)
            unasked = dict.fromkeys(
                ("buyers", "paying_customers", "repeat_customers", "repurchase_rate")
            )
            assert {**full["totals"], **unasked} == fast["totals"]


def test_per_region_by_province_or_by_city(shop: tuple[Api, str]) -> None:
    api, _ = shop
    assert dashboard(api, by="region")["rows"] == [
        {"province": "浙江省", **m(4, 82_000, 0, 1, 2)},
        {"province": "上海市", **m(1, 5_780, 5_780, 1, 1)},
        {"province": "北京", **m(1, 5_230, 0, 0, 1)},
    ]
    body = dashboard(api, by="region", level="city")
    assert body["level"] == "city"
    assert body["rows"] == [
        {"province": "浙江省", "city": "杭州市", **m(4, 82_000, 0, 1, 2)},
        {"province": "上海市", "city": "上海市", **m(1, 5_780, 5_780, 1, 1)},
        {"province": "北京", "city": "朝阳区", **m(1, 5_230, 0, 0, 1)},
    ]


def test_per_channel_code_of_the_linked_customer_and_unattributed(shop: tuple[Api, str]) -> None:
    api, code = shop
    assert dashboard(api, by="channel_code")["rows"] == [
        {"channel_code": code, **m(4, 57_230, 0, 1, 2)},
        {"channel_code": None, **m(2, 35_780, 5_780, 1, 2)},
    ]


def test_per_utc_day_in_order(shop: tuple[Api, str]) -> None:
    api, _ = shop
    assert dashboard(api, by="day")["rows"] == [
        {"day": "2024-03-01", **m(1, 30_000, 0, 0, 1)},
        {"day": "2026-03-01", **m(2, 26_000, 0, 1, 1)},
        {"day": "2026-03-05", **m(1, 5_230, 0, 0, 1)},
        {"day": "2026-03-07", **m(1, 26_000, 0, 0, 1)},
        {"day": "2026-03-08", **m(1, 5_780, 5_780, 1, 1)},
    ]


def test_the_window_is_since_inclusive_until_exclusive_on_placed_at(shop: tuple[Api, str]) -> None:
    api, _ = shop
    # pdd's order was placed at 2026-03-08T11:20:11Z.
    placed = "2026-03-08T19:20:11+08:00"
    body = dashboard(api, by="platform", since=placed)
    assert body["rows"] == [{"platform": "pdd", **m(1, 5_780, 5_780, 1, 1)}]
    body = dashboard(api, by="platform", since="2026-03-05T00:00:00+08:00", until=placed)
    assert body["rows"] == [
        {"platform": "taobao", **m(1, 26_000, 0, 0, 1)},
        {"platform": "jd", **m(1, 5_230, 0, 0, 1)},
    ]
    # One customer behind both buyers, with two paid orders in the window: a repurchase.
    assert body["totals"]["paying_customers"] == 1
    assert body["totals"]["repurchase_rate"] == 1.0
    # On taobao alone the customer paid once in the window.
    body = dashboard(
        api, by="day", since="2026-03-05T00:00:00+08:00", until=placed, platform="taobao"
    )
    assert body["rows"] == [{"day": "2026-03-07", **m(1, 26_000, 0, 0, 1)}]
    assert body["totals"]["repurchase_rate"] == 0.0
    # ... and twice over all time.
    body = dashboard(api, by="channel_code", platform="taobao")
    assert body["totals"]["repurchase_rate"] == 1.0
    assert body["totals"] == {
        **m(3, 52_000, 0, 1, 1),
        "paying_customers": 1,
        "repeat_customers": 1,
        "repurchase_rate": 1.0,
    }


def test_an_empty_window_has_no_rows_and_no_repurchase_rate(shop: tuple[Api, str]) -> None:
    api, _ = shop
    body = dashboard(api, by="region", until="2020-01-01T00:00:00Z")
    assert body["rows"] == []
    assert body["totals"] == {
        **m(0, 0, 0, 0, 0),
        "paying_customers": 0,
        "repeat_customers": 0,
        "repurchase_rate": None,
    }


def test_unlinked_buyers_count_as_themselves_for_repurchase(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    push(api, "taobao", fixture("taobao", "trade_finished"))
    push(api, "taobao", a_second_taobao_order())
    push(api, "jd", fixture("jd", "finished"))
    body = dashboard(api, by="channel_code")
    assert body["rows"] == [{"channel_code": None, **m(3, 57_230, 0, 0, 2)}]
    assert body["totals"]["paying_customers"] == 2
    assert body["totals"]["repurchase_rate"] == 0.5


@pytest.mark.parametrize("field", ["since", "until"])
def test_a_time_without_a_timezone_is_a_422_naming_it(api: Api, field: str) -> None:
    r = api.admin.get("/v1/dashboards/orders", {"by": "day", field: "2026-03-01T00:00:00"})
    assert_error(r, 422, "invalid_input", field=field)


def test_by_level_and_platform_must_be_known(api: Api) -> None:
    assert_error(api.admin.get("/v1/dashboards/orders"), 422, "invalid_input", field="by")
    r = api.admin.get("/v1/dashboards/orders", {"by": "staff"})
    assert_error(r, 422, "invalid_input", field="by")
    r = api.admin.get("/v1/dashboards/orders", {"by": "region", "level": "street"})
    assert_error(r, 422, "invalid_input", field="level")
    r = api.admin.get("/v1/dashboards/orders", {"by": "platform", "platform": "ebay"})
    assert_error(r, 422, "invalid_input", field="platform")


def test_admins_auditors_and_managers_read_it_staff_and_regulators_do_not(
    shop: tuple[Api, str],
) -> None:
    api, _ = shop
    expected = dashboard(api, by="platform")
    for client in (api.as_role("auditor"), api.as_manager("east")):
        assert dashboard(api, client, by="platform") == expected
    for client in (api.as_staff("s1"), api.as_role("regulator")):
        r = client.get("/v1/dashboards/orders", {"by": "platform"})
        assert_error(r, 403, "forbidden")
    assert_error(api.client.get("/v1/dashboards/orders?by=platform"), 401, "unauthorized")
