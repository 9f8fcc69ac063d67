"""Order pushes from the five platforms over HTTP: recorded once, reordering-safe, signed
where the platform signs, refused with nothing recorded when bad; and the orders read model."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import orjson
import pytest

from tests.e2e.conftest import Api, MakeApi

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders"
SIGNING = {
    "douyin_app_key": "7150000000000000001",
    "douyin_app_secret": "douyin-app-secret-0001",
    "youzan_client_id": "yz-client-0001",
    "youzan_client_secret": "youzan-client-secret-0001",
}


def fixture(platform: str, name: str) -> dict[str, Any]:
    return orjson.loads((FIXTURES / platform / f"{name}.json").read_bytes())  # type: ignore[no-any-return]


def good_fixtures() -> list[tuple[str, str]]:
    return sorted(
        (p.parent.name, p.stem)
        for p in FIXTURES.glob("*/*.json")
        if not p.stem.startswith("missing")
    )


def detail(payload: dict[str, Any]) -> Any:
    """The order detail inside an API response (`data`), or the detail itself."""
    return payload["data"] if "data" in payload and isinstance(payload["data"], dict) else payload


def push(api: Api, platform: str, payload: Any, token: str | None = "admin") -> Any:
    """Sent the way the platform (or the tenant's relay) sends it."""
    headers = {"Content-Type": "application/json"}
    if platform == "douyin":
        body = orjson.dumps(
            [
                {
                    "tag": "101",
                    "msg_id": "7000000000000000001",
                    "data": orjson.dumps(detail(payload)).decode(),
                }
            ]
        )
        key, secret = SIGNING["douyin_app_key"], SIGNING["douyin_app_secret"]
        headers |= {
            "app-id": key,
            "event-sign": hashlib.md5(key.encode() + body + secret.encode()).hexdigest(),
        }
    elif platform == "youzan":
        data = detail(payload)
        body = orjson.dumps(
            {
                "client_id": SIGNING["youzan_client_id"],
                "id": "E2024000001",
                "kdt_id": 44000001,
                "type": "trade_TradePaid",
                "status": "TRADE_PAID",
                "msg": quote_plus(orjson.dumps(data).decode()),
                "version": 1700000000,
                "test": False,
                "mode": 1,
            }
        )
        cid, secret = SIGNING["youzan_client_id"], SIGNING["youzan_client_secret"]
        headers["Event-Sign"] = hashlib.md5(cid.encode() + body + secret.encode()).hexdigest()
    else:
        body = orjson.dumps(payload)
        if token == "admin":
            headers["Authorization"] = f"Bearer {api.admin.token}"
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
    return api.client.post(f"/v1/integrations/orders/{platform}", content=body, headers=headers)


@pytest.fixture
def shop(make_api: MakeApi) -> Api:
    return make_api(**SIGNING)


@pytest.mark.parametrize(("platform", "name"), good_fixtures())
def test_every_platform_sample_lands_in_the_read_model(shop: Api, platform: str, name: str) -> None:
    r = push(shop, platform, fixture(platform, name))
    assert r.status_code == 200, r.text
    (outcome,) = r.json()["orders"]
    assert outcome["outcome"] == "applied"
    found = shop.admin.get(
        f"/v1/orders/{outcome['order_id']}", params={"min_position": r.json()["position"]}
    )
    assert found.status_code == 200, found.text
    order = found.json()
    assert order["platform"] == platform and order["trade_id"] == outcome["trade_id"]
    assert order["lines"] and all(line["quantity"] > 0 for line in order["lines"])
    assert order["payable"] >= 0 and isinstance(order["payable"], int)


def test_a_tmall_trade_keeps_its_sub_orders_and_hides_the_receiver_from_auditors(
    shop: Api,
) -> None:
    r = push(shop, "taobao", fixture("taobao", "tmall_3_suborders_paid"))
    (outcome,) = r.json()["orders"]
    params = {"min_position": r.json()["position"]}
    admin_view = shop.admin.get(f"/v1/orders/{outcome['order_id']}", params=params).json()
    assert admin_view["status"] == "paid" and len(admin_view["lines"]) == 3
    assert sum(line["paid"] for line in admin_view["lines"]) <= admin_view["payable"]
    auditor_view = shop.as_role("auditor").get(f"/v1/orders/{outcome['order_id']}").json()
    assert auditor_view["receiver"]["phone"].count("*") >= 4
    assert admin_view["receiver"]["phone"] != auditor_view["receiver"]["phone"]
    staff = shop.as_staff("zhang.wei")
    assert staff.get(f"/v1/orders/{outcome['order_id']}").status_code == 403
    placed = [e for e in shop.container.read_log(0, 100_000) if e.name == "OrderPlaced"]
    assert admin_view["receiver"]["phone"] not in orjson.dumps(placed[-1].data).decode()


def test_a_retried_push_has_one_effect_and_a_late_older_one_adds_nothing(shop: Api) -> None:
    paid = fixture("taobao", "tmall_3_suborders_paid")
    shipped = copy.deepcopy(paid)
    trade = shipped["trade_fullinfo_get_response"]["trade"]
    trade["status"] = "WAIT_BUYER_CONFIRM_GOODS"
    trade["consign_time"] = "2026-03-02 09:00:00"
    first = push(shop, "taobao", shipped)
    assert first.json()["orders"][0]["outcome"] == "applied"
    head = shop.container.head()
    assert push(shop, "taobao", shipped).json()["orders"][0]["outcome"] == "duplicate"
    assert shop.container.head() == head
    late = push(shop, "taobao", paid)
    assert late.json()["orders"][0]["outcome"] == "stale"
    order = shop.admin.get(
        f"/v1/orders/{late.json()['orders'][0]['order_id']}",
        params={"min_position": shop.container.head()},
    ).json()
    assert order["status"] == "shipped"


@pytest.mark.parametrize("platform", ["taobao", "jd", "pdd", "douyin", "youzan"])
def test_a_payload_missing_a_field_is_422_naming_it_and_records_nothing(
    shop: Api, platform: str
) -> None:
    (missing,) = [p.stem for p in (FIXTURES / platform).glob("missing*.json")][:1]
    head = shop.container.head()
    r = push(shop, platform, fixture(platform, missing))
    assert r.status_code == 422, r.text
    assert r.json()["field"]
    assert shop.container.head() == head


def test_an_unknown_status_is_refused_naming_it(shop: Api) -> None:
    payload = fixture("taobao", "tmall_3_suborders_paid")
    payload["trade_fullinfo_get_response"]["trade"]["status"] = "TRADE_TELEPORTED"
    head = shop.container.head()
    r = push(shop, "taobao", payload)
    assert r.status_code == 422 and r.json()["error"] == "unknown_status", r.text
    assert "status" in r.json()["field"]
    assert shop.container.head() == head


def test_signed_platforms_refuse_a_bad_signature_and_record_nothing(shop: Api) -> None:
    head = shop.container.head()
    payload = fixture("douyin", "paid")
    body = orjson.dumps(
        [{"tag": "101", "msg_id": "1", "data": orjson.dumps(detail(payload)).decode()}]
    )
    r = shop.client.post(
        "/v1/integrations/orders/douyin",
        content=body,
        headers={"app-id": SIGNING["douyin_app_key"], "event-sign": "0" * 32},
    )
    assert r.status_code == 401
    r = shop.client.post("/v1/integrations/orders/youzan", content=b"{}")
    assert r.status_code == 401
    assert shop.container.head() == head


def test_relayed_platforms_need_an_admin_token(shop: Api) -> None:
    payload = fixture("jd", "finished")
    assert push(shop, "jd", payload, token=None).status_code == 401
    staff = shop.container.tokens.create("staff", staff_id="zhang.wei")
    assert push(shop, "jd", payload, token=staff).status_code == 403
    assert push(shop, "jd", payload).status_code == 200


def test_an_unknown_platform_is_404(shop: Api) -> None:
    r = shop.admin.post("/v1/integrations/orders/ebay", {})
    assert r.status_code in (404, 422)
