"""Order push signatures (Douyin event-sign, Youzan Event-Sign) and push envelopes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from domain.orders.platforms import parser_for
from domain.shared import InvalidInput, NotFound
from infra.orders.signatures import (
    DETAIL_REQUIRED,
    PushRejected,
    md5_signature,
    order_payloads,
    verify_push,
)
from infra.settings import Settings, load_settings
from infra.wecom.crypto import CallbackRejected

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders"

APP_KEY, APP_SECRET = "7150000000000000001", "douyin-app-secret-0001"
CLIENT_ID, CLIENT_SECRET = "yz-client-0001", "youzan-client-secret-0001"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "douyin_app_key": APP_KEY,
        "douyin_app_secret": APP_SECRET,
        "youzan_client_id": CLIENT_ID,
        "youzan_client_secret": CLIENT_SECRET,
    }
    return load_settings(**(values | overrides))


def fixture(platform: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / platform / name).read_text())


def douyin_body(*datas: dict[str, Any], tag: str = "101") -> bytes:
    messages = [
        {
            "tag": tag,
            "msg_id": f"7100000000000000{i:03d}",
            "data": json.dumps(data, ensure_ascii=False),
        }
        for i, data in enumerate(datas)
    ]
    return json.dumps(messages, ensure_ascii=False).encode()


def douyin_headers(body: bytes, *, key: str = APP_KEY, secret: str = APP_SECRET) -> dict[str, str]:
    sign = hashlib.md5(key.encode() + body + secret.encode()).hexdigest()
    return {"app-id": key, "event-sign": sign, "Content-Type": "application/json"}


def youzan_body(msg: dict[str, Any], **envelope: Any) -> bytes:
    fields: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "id": "E20240301100000012345678",
        "kdt_id": 134529034,
        "kdt_name": "示例美妆旗舰店",
        "mode": 1,
        "msg": quote_plus(json.dumps(msg, ensure_ascii=False)),
        "sendCount": 0,
        "sign": "legacy-not-checked",
        "status": "WAIT_SELLER_SEND_GOODS",
        "test": False,
        "type": "trade_TradePaid",
        "version": 1709258465,
    }
    return json.dumps(fields | envelope, ensure_ascii=False).encode()


def youzan_headers(body: bytes, *, secret: str = CLIENT_SECRET) -> dict[str, str]:
    return {"Event-Sign": hashlib.md5(CLIENT_ID.encode() + body + secret.encode()).hexdigest()}


# --- the signature rule --------------------------------------------------------------------


def test_md5_signature_is_key_body_secret_in_lowercase_hex() -> None:
    # md5("k" + "{}" + "s"), computed independently
    assert md5_signature("k", b"{}", "s") == hashlib.md5(b"k{}s").hexdigest()
    assert md5_signature("k", b"{}", "s") == "4fdef62adf72fa00910b42a56a88cec4"


def test_push_rejected_is_a_callback_rejection() -> None:
    # so the API's CallbackRejected handler answers 401
    assert issubclass(PushRejected, CallbackRejected)


# --- Douyin --------------------------------------------------------------------------------


def test_douyin_good_signature() -> None:
    body = douyin_body({"p_id": 1, "order_status": 2})
    assert verify_push("douyin", douyin_headers(body), body, settings()) is True


def test_douyin_headers_are_case_insensitive_and_sign_may_be_uppercase() -> None:
    body = douyin_body({"p_id": 1})
    headers = douyin_headers(body)
    upper = {"App-Id": headers["app-id"], "Event-Sign": headers["event-sign"].upper()}
    assert verify_push("douyin", upper, body, settings()) is True


def test_douyin_explicit_md5_sign_method_is_accepted() -> None:
    body = douyin_body({"p_id": 1})
    headers = douyin_headers(body) | {"sign-method": "MD5"}
    assert verify_push("douyin", headers, body, settings()) is True


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered", "signature mismatch"),
        ("wrong_secret", "signature mismatch"),
        ("missing_sign", "event-sign header missing"),
        ("missing_app_id", "app-id"),
        ("other_app_id", "app-id"),
        ("hmac_method", "sign-method"),
    ],
)
def test_douyin_bad_pushes_are_rejected(case: str, reason: str) -> None:
    body = douyin_body({"p_id": 1, "order_status": 2})
    headers = douyin_headers(body)
    if case == "tampered":
        body = body.replace(b'\\"order_status\\": 2', b'\\"order_status\\": 4')
        assert b"4" in body
    elif case == "wrong_secret":
        headers = douyin_headers(body, secret="not-the-secret")
    elif case == "missing_sign":
        del headers["event-sign"]
    elif case == "missing_app_id":
        del headers["app-id"]
    elif case == "other_app_id":
        headers = douyin_headers(body, key="7159999999999999999")
    elif case == "hmac_method":
        headers["sign-method"] = "hmac-sha256"
    with pytest.raises(PushRejected, match=reason):
        verify_push("douyin", headers, body, settings())


@pytest.mark.parametrize("unset", ["douyin_app_key", "douyin_app_secret"])
def test_douyin_unconfigured_refuses_every_push(unset: str) -> None:
    body = douyin_body({"p_id": 1})
    with pytest.raises(PushRejected, match="not configured") as caught:
        verify_push("douyin", douyin_headers(body), body, settings(**{unset: ""}))
    assert APP_SECRET not in caught.value.detail


# --- Youzan --------------------------------------------------------------------------------


def test_youzan_good_signature() -> None:
    body = youzan_body({"tid": "E1"})
    assert verify_push("youzan", youzan_headers(body), body, settings()) is True
    lower = {"event-sign": youzan_headers(body)["Event-Sign"]}
    assert verify_push("youzan", lower, body, settings()) is True


@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "missing_sign", "empty_sign"])
def test_youzan_bad_pushes_are_rejected(case: str) -> None:
    body = youzan_body({"tid": "E1"})
    headers = youzan_headers(body)
    if case == "tampered":
        body = body.replace(b"WAIT_SELLER_SEND_GOODS", b"TRADE_CLOSED")
    elif case == "wrong_secret":
        headers = youzan_headers(body, secret="not-the-secret")
    elif case == "missing_sign":
        headers = {}
    elif case == "empty_sign":
        headers = {"Event-Sign": ""}
    with pytest.raises(PushRejected):
        verify_push("youzan", headers, body, settings())


@pytest.mark.parametrize("unset", ["youzan_client_id", "youzan_client_secret"])
def test_youzan_unconfigured_refuses_every_push(unset: str) -> None:
    body = youzan_body({"tid": "E1"})
    with pytest.raises(PushRejected, match="not configured"):
        verify_push("youzan", youzan_headers(body), body, settings(**{unset: None}))


# --- platforms that do not sign ------------------------------------------------------------


@pytest.mark.parametrize("platform", ["taobao", "jd", "pdd"])
def test_unsigned_platforms_say_so(platform: str) -> None:
    assert verify_push(platform, {}, b"{}", settings()) is False
    # configuration of the signing platforms does not matter to them
    assert verify_push(platform, {}, b"{}", settings(douyin_app_key=None)) is False


def test_unknown_platform() -> None:
    with pytest.raises(NotFound):
        verify_push("amazon", {}, b"{}", settings())
    with pytest.raises(NotFound):
        order_payloads("amazon", b"{}")


def test_secrets_stay_out_of_the_settings_repr() -> None:
    text = repr(settings())
    assert APP_SECRET not in text and CLIENT_SECRET not in text


# --- envelopes -----------------------------------------------------------------------------


def test_douyin_envelope_with_full_details() -> None:
    first = fixture("douyin", "shipped.json")
    second = fixture("douyin", "completed.json")
    body = douyin_body(first, second)
    payloads = order_payloads("douyin", body)
    assert payloads == [first, second]
    parse = parser_for("douyin")
    assert [parse(p).status for p in payloads] == ["shipped", "completed"]


def test_douyin_data_may_arrive_as_an_object() -> None:
    detail = fixture("douyin", "placed.json")
    body = json.dumps([{"tag": "100", "msg_id": "1", "data": detail}]).encode()
    assert order_payloads("douyin", body) == [detail]


def test_douyin_id_only_message_requires_the_detail() -> None:
    id_only = {"p_id": 6920000000000000001, "s_ids": [6920000000000000002], "order_status": 2}
    body = douyin_body(fixture("douyin", "paid.json")["data"], id_only)
    with pytest.raises(InvalidInput) as caught:
        order_payloads("douyin", body)
    assert caught.value.code == DETAIL_REQUIRED
    assert caught.value.field == "[1].data"
    assert "order.orderDetail" in caught.value.detail


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b'{"tag": "100"}', "body"),
        (b'["x"]', "[0]"),
        (b'[{"tag": "100", "msg_id": "1", "data": "{broken"}]', "[0].data"),
        (b'[{"tag": "100", "msg_id": "1"}]', "[0].data"),
    ],
)
def test_douyin_malformed_envelopes(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        order_payloads("douyin", body)
    assert caught.value.field == field


def test_youzan_envelope_with_the_trade() -> None:
    trade = fixture("youzan", "placed.json")
    del trade["full_order_info"]["order_info"]["node_kdt_id"]
    del trade["full_order_info"]["order_info"]["root_kdt_id"]
    payloads = order_payloads("youzan", youzan_body(trade, type="trade_TradeCreate"))
    assert payloads == [trade | {"kdt_id": 134529034}]
    snap = parser_for("youzan")(payloads[0])
    assert (snap.status, snap.shop_id) == ("placed", "134529034")


def test_youzan_id_only_message_requires_the_trade() -> None:
    body = youzan_body({"tid": "E20240301100000012345678", "update_time": "2024-03-01 10:01:05"})
    with pytest.raises(InvalidInput) as caught:
        order_payloads("youzan", body)
    assert caught.value.code == DETAIL_REQUIRED
    assert caught.value.field == "msg"
    assert "youzan.trade.get" in caught.value.detail


def test_youzan_test_push_carries_nothing() -> None:
    assert order_payloads("youzan", youzan_body({}, test=True)) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", "body"),
        (b"{", "body"),
        (b'{"type": "trade_TradePaid"}', "msg"),
        (b'{"msg": "%7Bbroken"}', "msg"),
        (b'{"msg": "%5B1%5D"}', "msg"),
    ],
)
def test_youzan_malformed_envelopes(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        order_payloads("youzan", body)
    assert caught.value.field == field


@pytest.mark.parametrize("platform", ["taobao", "jd", "pdd"])
def test_unsigned_platform_bodies_are_the_payloads(platform: str) -> None:
    assert order_payloads(platform, b'{"trade": {"tid": 1}}') == [{"trade": {"tid": 1}}]
    assert order_payloads(platform, b'[{"a": 1}, {"b": 2}]') == [{"a": 1}, {"b": 2}]
    with pytest.raises(InvalidInput) as caught:
        order_payloads(platform, b"[1]")
    assert caught.value.field == "[0]"
