"""Douyin and Youzan pushes that carry only an order id: the signature is checked, the detail
is fetched from the platform's API (a local stand-in that checks requests as the platform
does), and then it is recorded like a full push — once, and never undoing a newer status.
When the API fails, 502 and nothing recorded, so the platform retries."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote_plus

import orjson
import pytest

from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.platform_apis import (
    APP_KEY,
    APP_SECRET,
    DOUYIN_TOKEN,
    YOUZAN_TOKEN,
    PlatformApis,
    closed_port_url,
)

CLIENT_ID, CLIENT_SECRET = "yz-client-0001", "youzan-client-secret-0001"
SIGNING = {
    "douyin_app_key": APP_KEY,
    "douyin_app_secret": APP_SECRET,
    "youzan_client_id": CLIENT_ID,
    "youzan_client_secret": CLIENT_SECRET,
}
DOUYIN_ORDER = 6920000000000000001
YOUZAN_TID = "E20240301100000012345678"


def douyin_push(api: Api, order_status: int | None = 2, tag: str = "101") -> Any:
    """A Douyin trade message as the platform sends it: ids and a status, signed."""
    data: dict[str, Any] = {
        "p_id": DOUYIN_ORDER,
        "s_ids": [6920000000000000002, 6920000000000000003],
        "shop_id": 4463798,
        "order_type": 0,
        "biz": 2,
        "update_time": 1709258460,
    }
    if order_status is not None:
        data["order_status"] = order_status
    body = orjson.dumps(
        [{"tag": tag, "msg_id": "7000000000000000001", "data": orjson.dumps(data).decode()}]
    )
    sign = hashlib.md5(APP_KEY.encode() + body + APP_SECRET.encode()).hexdigest()
    return api.client.post(
        "/v1/integrations/orders/douyin",
        content=body,
        headers={"app-id": APP_KEY, "event-sign": sign, "Content-Type": "application/json"},
    )


def youzan_push(api: Api, status: str = "WAIT_SELLER_SEND_GOODS") -> Any:
    """A Youzan trade message with only the tid, signed."""
    body = orjson.dumps(
        {
            "client_id": CLIENT_ID,
            "id": YOUZAN_TID,
            "kdt_id": 134529034,
            "type": "trade_TradeBuyerPay",
            "status": status,
            "msg": quote_plus(
                orjson.dumps({"tid": YOUZAN_TID, "update_time": "2024-03-01 10:01:05"}).decode()
            ),
            "version": 1709258465,
            "test": False,
            "mode": 1,
        }
    )
    sign = hashlib.md5(CLIENT_ID.encode() + body + CLIENT_SECRET.encode()).hexdigest()
    return api.client.post(
        "/v1/integrations/orders/youzan",
        content=body,
        headers={"Event-Sign": sign, "Content-Type": "application/json"},
    )


PUSH: dict[str, Callable[[Api], Any]] = {"douyin": douyin_push, "youzan": youzan_push}
SERVE: dict[str, Callable[[PlatformApis, str], dict[str, Any]]] = {
    "douyin": PlatformApis.serve_douyin,
    "youzan": PlatformApis.serve_youzan,
}


@pytest.fixture
def apis() -> Iterator[PlatformApis]:
    with PlatformApis().running() as running:
        yield running


def fetching(apis_url: str) -> dict[str, Any]:
    return SIGNING | {
        "douyin_access_token": DOUYIN_TOKEN,
        "douyin_api_url": apis_url,
        "youzan_access_token": YOUZAN_TOKEN,
        "youzan_api_url": apis_url,
    }


@pytest.fixture
def shop(make_api: MakeApi, apis: PlatformApis) -> Api:
    return make_api(**fetching(apis.url))


def orders(api: Api, platform: str) -> list[dict[str, Any]]:
    r = api.admin.get("/v1/orders", params={"platform": platform, "min_position": api.head()})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("platform", ["douyin", "youzan"])
def test_an_id_only_push_is_completed_from_the_platform_api_and_listed(
    shop: Api, apis: PlatformApis, platform: str
) -> None:
    SERVE[platform](apis, "paid")
    r = PUSH[platform](shop)
    assert r.status_code == 200, r.text
    assert (r.json()["code"], r.json()["msg"]) == (0, "success")
    (outcome,) = r.json()["orders"]
    assert outcome["outcome"] == "applied"
    (listed,) = orders(shop, platform)
    assert listed["trade_id"] == str(outcome["trade_id"]) and listed["status"] == "paid"
    assert listed["payable"] == 30000  # fen: the detail's amounts, not the push's
    assert apis.refusals == [] and len(apis.requests) == 1


@pytest.mark.parametrize("platform", ["douyin", "youzan"])
def test_the_same_push_twice_has_one_effect(shop: Api, apis: PlatformApis, platform: str) -> None:
    SERVE[platform](apis, "paid")
    assert PUSH[platform](shop).json()["orders"][0]["outcome"] == "applied"
    head = shop.head()
    again = PUSH[platform](shop)
    assert again.status_code == 200, again.text
    assert again.json()["orders"][0]["outcome"] == "duplicate"
    assert shop.head() == head
    assert len(orders(shop, platform)) == 1
    assert apis.refusals == []


def test_a_late_older_push_adds_nothing(shop: Api, apis: PlatformApis) -> None:
    apis.serve_douyin("shipped")
    assert douyin_push(shop, order_status=3).json()["orders"][0]["outcome"] == "applied"
    apis.serve_douyin("paid")  # the paid message arrives late, and the API answers for then
    late = douyin_push(shop, order_status=2)
    assert late.json()["orders"][0]["outcome"] == "stale"
    (listed,) = orders(shop, "douyin")
    assert listed["status"] == "shipped"


@pytest.mark.parametrize(
    ("platform", "answer", "code"),
    [
        (
            "douyin",
            {"code": 40003, "sub_code": "isv.access-token-expired", "sub_msg": "已过期"},
            "platform_error",
        ),
        (
            "douyin",
            {"code": 20000, "sub_code": "dop.service-error", "msg": "服务不可用"},
            "platform_error",
        ),
        ("youzan", {"gw_err_resp": {"err_code": 4101, "err_msg": "限流"}}, "platform_error"),
        ("youzan", None, "platform_error"),  # trade not found
    ],
)
def test_an_api_error_is_502_and_records_nothing(
    shop: Api, apis: PlatformApis, platform: str, answer: dict[str, Any] | None, code: str
) -> None:
    if answer is None:
        pass  # nothing served: the API answers 5000 trade not found
    elif platform == "douyin":
        apis.serve_douyin("paid")
        apis.douyin_answer = answer
    else:
        apis.serve_youzan("paid")
        apis.youzan_answer = answer
    with shop.records_nothing():
        r = PUSH[platform](shop)
    body = assert_error(r, 502, code)
    assert body["detail"].startswith(platform)
    assert DOUYIN_TOKEN not in r.text and YOUZAN_TOKEN not in r.text
    assert orders(shop, platform) == []
    assert apis.refusals == []


@pytest.mark.parametrize("platform", ["douyin", "youzan"])
def test_an_unreachable_platform_is_502_and_records_nothing(
    make_api: MakeApi, platform: str
) -> None:
    shop = make_api(**fetching(closed_port_url()))
    with shop.records_nothing():
        r = PUSH[platform](shop)
    assert_error(r, 502, "platform_unreachable")


def test_a_detail_behind_its_push_is_502_until_the_api_catches_up(
    shop: Api, apis: PlatformApis
) -> None:
    apis.serve_youzan("placed")  # Youzan's detail lags its pushes
    with shop.records_nothing():
        r = youzan_push(shop, status="WAIT_SELLER_SEND_GOODS")
    assert_error(r, 502, "detail_not_current")
    apis.serve_youzan("paid")
    retried = youzan_push(shop, status="WAIT_SELLER_SEND_GOODS")
    assert retried.json()["orders"][0]["outcome"] == "applied"
    assert [o["status"] for o in orders(shop, "youzan")] == ["paid"]


@pytest.mark.parametrize(
    ("platform", "setting", "field"),
    [
        ("douyin", "SCRM_DOUYIN_ACCESS_TOKEN", "[0].data"),
        ("youzan", "SCRM_YOUZAN_ACCESS_TOKEN", "msg"),
    ],
)
def test_without_credentials_an_id_only_push_is_422_detail_required_naming_the_setting(
    make_api: MakeApi, apis: PlatformApis, platform: str, setting: str, field: str
) -> None:
    shop = make_api(**SIGNING, douyin_api_url=apis.url, youzan_api_url=apis.url)
    with shop.records_nothing():
        r = PUSH[platform](shop)
    body = assert_error(r, 422, "detail_required", field)
    assert f"needs {setting}, not set" in body["detail"]
    assert apis.requests == []


def test_the_signature_is_checked_before_anything_is_fetched(shop: Api, apis: PlatformApis) -> None:
    apis.serve_douyin("paid")
    body = orjson.dumps(
        [{"tag": "101", "msg_id": "1", "data": orjson.dumps({"p_id": DOUYIN_ORDER}).decode()}]
    )
    with shop.records_nothing():
        r = shop.client.post(
            "/v1/integrations/orders/douyin",
            content=body,
            headers={"app-id": APP_KEY, "event-sign": "0" * 32},
        )
    assert r.status_code == 401
    assert apis.requests == []
