"""Order details fetched for id-only pushes: Douyin's signed order.orderDetail and Youzan's
youzan.trade.get, against a local stand-in that checks requests as the platforms do."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import pytest

from domain.ports import OrderDetailUnavailable
from domain.shared import InvalidInput
from infra.orders.fetchers import (
    PlatformOrderDetails,
    douyin_param_json,
    douyin_sign,
    fetch_details,
)
from infra.orders.signatures import DETAIL_REQUIRED, DetailWanted, push_messages
from infra.settings import Settings, load_settings
from tests.platform_apis import (
    APP_KEY,
    APP_SECRET,
    DOUYIN_TOKEN,
    YOUZAN_TOKEN,
    PlatformApis,
    closed_port_url,
    recorded,
)

DOUYIN_ORDER = "6920000000000000001"
YOUZAN_TID = "E20240301100000012345678"


def settings(url: str = "http://127.0.0.1:9", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "douyin_app_key": APP_KEY,
        "douyin_app_secret": APP_SECRET,
        "douyin_access_token": DOUYIN_TOKEN,
        "douyin_api_url": url,
        "youzan_client_id": "yz-client-0001",
        "youzan_client_secret": "youzan-client-secret-0001",
        "youzan_access_token": YOUZAN_TOKEN,
        "youzan_api_url": url,
    }
    return load_settings(**(values | overrides))


@pytest.fixture
def apis() -> Iterator[PlatformApis]:
    with PlatformApis().running() as running:
        yield running


@pytest.fixture
def details(apis: PlatformApis) -> Iterator[PlatformOrderDetails]:
    fetcher = PlatformOrderDetails(settings(apis.url))
    yield fetcher
    fetcher.close()


def unavailable(call: Any, *args: Any) -> OrderDetailUnavailable:
    with pytest.raises(OrderDetailUnavailable) as caught:
        call(*args)
    return caught.value


# --- Douyin's request signature ------------------------------------------------------------


def test_the_douyin_sign_of_a_worked_example() -> None:
    # The public parameters of the API guide's example (its table gives no secret or digest);
    # the digests were computed independently with `openssl dgst -sha256 -hmac` and `-md5`
    # over secret + "app_key..method..param_json..timestamp..v2" + secret.
    args = (
        "3409409348479354011",
        "doc-example-secret",
        "product.getGoodsCategory",
        '{"cid":"12","page":"1"}',
        "2020-09-15 14:48:13",
    )
    assert douyin_sign(*args) == "0a07813a9018c285bd1eced48273e4f6902010826e5202852cdc8f3f67dae9f4"
    assert douyin_sign(*args, sign_method="md5") == "8d715b68c6c3778ba080ad65e85b0d0c"
    order_detail = douyin_sign(
        "7150000000000000001",
        "doc-example-secret",
        "order.orderDetail",
        douyin_param_json({"shop_order_id": DOUYIN_ORDER}),
        "1709258460",
    )
    assert order_detail == "0b23567dce72f33a9960ac20a51d22c7bd1f3f25ddf824709ca649cc38f7de44"


def test_param_json_sorts_keys_at_every_level_and_escapes_nothing() -> None:
    params = {"b": {"d": 1, "c": "/中文"}, "a": "x"}
    assert douyin_param_json(params) == '{"a":"x","b":{"c":"/中文","d":1}}'


# --- Douyin order.orderDetail ---------------------------------------------------------------


def test_a_douyin_detail_comes_from_a_signed_order_detail_call(
    apis: PlatformApis, details: PlatformOrderDetails
) -> None:
    data = apis.serve_douyin("paid")
    assert details.fetch("douyin", DOUYIN_ORDER) == data
    assert apis.refusals == []
    ((path, query, body),) = apis.requests
    assert path == "/order/orderDetail"
    assert body == b'{"shop_order_id":"6920000000000000001"}'
    assert query["method"] == "order.orderDetail" and query["v"] == "2"
    assert query["sign_method"] == "hmac-sha256" and query["access_token"] == DOUYIN_TOKEN


def test_a_wrongly_signed_request_is_refused_by_the_gateway() -> None:
    with PlatformApis(app_secret="the-secret-douyin-really-has").running() as apis:
        apis.serve_douyin("paid")
        fetcher = PlatformOrderDetails(settings(apis.url))
        error = unavailable(fetcher.fetch, "douyin", DOUYIN_ORDER)
        fetcher.close()
    assert apis.refusals == ["douyin isv.signature-invalid: 签名校验失败"]
    assert error.code == "platform_error"
    assert "isv.signature-invalid" in error.detail
    assert "check SCRM_DOUYIN_APP_KEY and SCRM_DOUYIN_APP_SECRET" in error.detail


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {
                "code": 40003,
                "msg": "非法的参数",
                "sub_code": "isv.access-token-expired",
                "sub_msg": f"access_token {DOUYIN_TOKEN} 已过期",
            },
            "40003 isv.access-token-expired (invalid parameter): access_token *** 已过期; "
            "renew SCRM_DOUYIN_ACCESS_TOKEN",
        ),
        ({"code": 60000, "msg": "触发限流", "sub_code": ""}, "60000  (rate limited): 触发限流"),
        ({"code": 10000, "msg": "success", "data": {}}, "without data.shop_order_detail"),
        (
            {"code": 10000, "data": {"shop_order_detail": {"order_id": "6920000000000000999"}}},
            "another order than 6920000000000000001",
        ),
    ],
)
def test_douyin_errors_name_the_api_and_its_codes_but_no_secret(
    apis: PlatformApis, details: PlatformOrderDetails, answer: dict[str, Any], expected: str
) -> None:
    apis.douyin_answer = answer
    error = unavailable(details.fetch, "douyin", DOUYIN_ORDER)
    assert error.code == "platform_error"
    assert error.detail.startswith("douyin order.orderDetail")
    assert expected in error.detail
    assert DOUYIN_TOKEN not in error.detail and APP_SECRET not in error.detail


# --- Youzan youzan.trade.get ----------------------------------------------------------------


def test_a_youzan_trade_comes_from_trade_get_with_the_token_in_the_query(
    apis: PlatformApis, details: PlatformOrderDetails
) -> None:
    data = apis.serve_youzan("paid")
    assert details.fetch("youzan", YOUZAN_TID) == data
    assert apis.refusals == []
    ((path, query, body),) = apis.requests
    assert path == "/api/youzan.trade.get/4.0.2"
    assert query == {"access_token": YOUZAN_TOKEN}
    assert json.loads(body) == {"tid": YOUZAN_TID}


def test_youzan_refuses_a_token_it_does_not_know() -> None:
    with PlatformApis(youzan_token="another-token").running() as apis:
        apis.serve_youzan("paid")
        fetcher = PlatformOrderDetails(settings(apis.url))
        error = unavailable(fetcher.fetch, "youzan", YOUZAN_TID)
        fetcher.close()
    assert apis.refusals == ["youzan 4201: 非法的请求凭证"]
    assert error.code == "platform_error"
    assert "4201" in error.detail and "renew SCRM_YOUZAN_ACCESS_TOKEN" in error.detail


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (None, "5000 (trade not found, or not a trade of the access token's shop)"),
        ({"gw_err_resp": {"err_code": 4101, "err_msg": "限流"}}, "4101 (rate limited)"),
        ({"error_response": {"code": 50000, "msg": "订单不存在"}}, "50000 (error): 订单不存在"),
        (
            {"success": True, "code": 200, "data": {"full_order_info": {"order_info": {}}}},
            "another trade than E20240301100000012345678",
        ),
    ],
)
def test_youzan_errors_name_the_api_and_its_codes(
    apis: PlatformApis,
    details: PlatformOrderDetails,
    answer: dict[str, Any] | None,
    expected: str,
) -> None:
    apis.youzan_answer = answer  # None: the trade is simply not there
    error = unavailable(details.fetch, "youzan", YOUZAN_TID)
    assert error.code == "platform_error"
    assert error.detail.startswith("youzan youzan.trade.get 4.0.2")
    assert expected in error.detail


# --- unreachable, slow, not configured ------------------------------------------------------


def test_an_unreachable_platform_is_reported_without_the_url() -> None:
    fetcher = PlatformOrderDetails(settings(closed_port_url()))
    for platform, order_id in (("douyin", DOUYIN_ORDER), ("youzan", YOUZAN_TID)):
        error = unavailable(fetcher.fetch, platform, order_id)
        assert error.code == "platform_unreachable"
        assert "unreachable (ConnectError)" in error.detail
        assert DOUYIN_TOKEN not in error.detail and YOUZAN_TOKEN not in error.detail


def test_a_platform_that_does_not_answer_in_time_is_unreachable() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        fetcher = PlatformOrderDetails(
            settings(f"http://127.0.0.1:{port}", order_api_timeout_seconds=0.2)
        )
        error = unavailable(fetcher.fetch, "youzan", YOUZAN_TID)
        fetcher.close()
    assert (error.code, error.detail) == (
        "platform_unreachable",
        "youzan youzan.trade.get 4.0.2 did not answer in time",
    )


@pytest.mark.parametrize(
    ("platform", "unset", "named"),
    [
        ("douyin", {"douyin_access_token": None}, "SCRM_DOUYIN_ACCESS_TOKEN"),
        (
            "douyin",
            {"douyin_access_token": "", "douyin_app_secret": None},
            "SCRM_DOUYIN_APP_SECRET, SCRM_DOUYIN_ACCESS_TOKEN",
        ),
        ("youzan", {"youzan_access_token": None}, "SCRM_YOUZAN_ACCESS_TOKEN"),
    ],
)
def test_without_credentials_fetching_is_detail_required_naming_the_settings(
    platform: str, unset: dict[str, Any], named: str
) -> None:
    fetcher = PlatformOrderDetails(settings(closed_port_url(), **unset))
    with pytest.raises(InvalidInput) as caught:
        fetcher.fetch(platform, "1")
    assert caught.value.code == DETAIL_REQUIRED
    assert caught.value.detail == f"fetching {platform} order details needs {named}, not set"


# --- push messages and their details --------------------------------------------------------


def douyin_push(*datas: dict[str, Any]) -> bytes:
    return json.dumps(
        [{"tag": "101", "msg_id": str(i), "data": json.dumps(d)} for i, d in enumerate(datas)]
    ).encode()


def youzan_push(msg: dict[str, Any], **envelope: Any) -> bytes:
    fields = {
        "id": YOUZAN_TID,
        "kdt_id": 44000001,
        "type": "trade_TradePaid",
        "status": "WAIT_SELLER_SEND_GOODS",
        "msg": quote_plus(json.dumps(msg)),
        "test": False,
    }
    return json.dumps(fields | envelope).encode()


def test_id_only_messages_say_what_to_fetch() -> None:
    body = douyin_push({"p_id": 6920000000000000001, "s_ids": [1], "order_status": 2})
    (wanted,) = push_messages("douyin", body)
    assert isinstance(wanted, DetailWanted)
    assert (wanted.order_id, wanted.field, wanted.status) == (DOUYIN_ORDER, "[0].data", "2")

    (wanted,) = push_messages("youzan", youzan_push({"tid": YOUZAN_TID}))
    assert isinstance(wanted, DetailWanted)
    assert (wanted.order_id, wanted.status, wanted.shop) == (
        YOUZAN_TID,
        "WAIT_SELLER_SEND_GOODS",
        44000001,
    )
    # a msg without its tid falls back on the envelope's id, which is the tid
    (wanted,) = push_messages("youzan", youzan_push({"update_time": "2024-03-01 10:01:05"}))
    assert isinstance(wanted, DetailWanted) and wanted.order_id == YOUZAN_TID


def test_a_douyin_message_without_its_p_id_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as caught:
        push_messages("douyin", douyin_push({"shop_id": 1, "order_status": 2}))
    assert caught.value.field == "[0].data.p_id"


def test_each_order_is_fetched_once_per_push_and_full_messages_stay_as_they_are(
    apis: PlatformApis, details: PlatformOrderDetails
) -> None:
    paid = apis.serve_douyin("paid")
    full = recorded("douyin", "completed")
    full["shop_order_detail"]["order_id"] = "6920000000000000777"
    body = douyin_push({"p_id": DOUYIN_ORDER}, full, {"p_id": DOUYIN_ORDER, "order_status": 2})
    assert fetch_details("douyin", push_messages("douyin", body), details) == [paid, full, paid]
    assert len(apis.requests) == 1


def test_a_fetched_youzan_trade_gets_the_envelope_shop_like_a_full_push(
    apis: PlatformApis, details: PlatformOrderDetails
) -> None:
    data = apis.serve_youzan("paid")
    messages = push_messages("youzan", youzan_push({"tid": YOUZAN_TID}, kdt_id=55))
    assert fetch_details("youzan", messages, details) == [data | {"kdt_id": 55}]


def test_without_a_fetcher_an_id_only_message_is_detail_required() -> None:
    messages = push_messages("douyin", douyin_push({"p_id": DOUYIN_ORDER}))
    with pytest.raises(InvalidInput) as caught:
        fetch_details("douyin", messages, None)
    assert (caught.value.code, caught.value.field) == (DETAIL_REQUIRED, "[0].data")
    assert "order.orderDetail" in caught.value.detail


def test_a_missing_setting_is_named_at_the_message_that_needed_it() -> None:
    fetcher = PlatformOrderDetails(settings(youzan_access_token=None))
    with pytest.raises(InvalidInput) as caught:
        fetch_details("youzan", push_messages("youzan", youzan_push({"tid": YOUZAN_TID})), fetcher)
    assert (caught.value.code, caught.value.field) == (DETAIL_REQUIRED, "msg")
    assert caught.value.detail.endswith(
        "fetch youzan.trade.get for its tid and post the trade; "
        "fetching youzan order details needs SCRM_YOUZAN_ACCESS_TOKEN, not set"
    )


@pytest.mark.parametrize(
    ("announced", "served", "current"),
    [
        ("3", "paid", False),  # shipped announced, the API still says paid
        ("4", "paid", False),  # cancelled announced
        ("2", "shipped", True),  # the API is ahead of the push: fine
        ("2", "paid", True),
        ("4", "full_refund_cancelled", True),
        ("999", "paid", True),  # a status we do not know is not compared
        (None, "placed", True),  # after-sale messages announce no order status
    ],
)
def test_a_detail_behind_the_status_its_push_announced_is_not_taken(
    apis: PlatformApis,
    details: PlatformOrderDetails,
    announced: str | None,
    served: str,
    current: bool,
) -> None:
    apis.serve_douyin(served)
    data: dict[str, Any] = {"p_id": DOUYIN_ORDER}
    if announced is not None:
        data["order_status"] = int(announced)
    messages = push_messages("douyin", douyin_push(data))
    if current:
        assert len(fetch_details("douyin", messages, details)) == 1
        return
    error = unavailable(fetch_details, "douyin", messages, details)
    assert error.code == "detail_not_current"
    assert f"announced {announced} for order {DOUYIN_ORDER}" in error.detail


def test_a_youzan_push_ahead_of_the_trade_api_is_not_taken(
    apis: PlatformApis, details: PlatformOrderDetails
) -> None:
    apis.serve_youzan("placed")
    messages = push_messages("youzan", youzan_push({"tid": YOUZAN_TID}, status="TRADE_PAID"))
    error = unavailable(fetch_details, "youzan", messages, details)
    assert error.code == "detail_not_current"
