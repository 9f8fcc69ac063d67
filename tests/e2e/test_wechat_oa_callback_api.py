"""Official Account callbacks over HTTP: plain-mode signature, fans, QR scenes, unionid merge."""

from __future__ import annotations

import secrets
import time
from typing import Any
from uuid import UUID

import pytest

from domain.customers.aggregates import wecom_state
from infra.wecom.crypto import plain_signature
from tests.e2e.conftest import Api, MakeApi

TOKEN = "oa-token-123"
APP_ID = "wx2c2769f8efd9abc2"
OA = {"oa_token": TOKEN, "oa_app_id": APP_ID}
PATH = "/v1/integrations/wechat-oa/callback"


class RecordedDirectory:
    """WeChat's user-info answers, as recorded: openid -> unionid."""

    def __init__(self, known: dict[str, str]):
        self.known = known

    def unionid_of(self, app_id: str, openid: str) -> str | None:
        return self.known.get(openid)


@pytest.fixture
def oa(make_api: MakeApi) -> Api:
    return make_api(**OA)


def fan_xml(event: str, openid: str, at: int, key: str = "", msg_type: str = "event") -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{at}</CreateTime>"
        f"<MsgType><![CDATA[{msg_type}]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


def post(
    api: Api,
    xml: str,
    *,
    nonce: str | None = None,
    timestamp: str | None = None,
    tamper: bool = False,
) -> Any:
    ts = timestamp or str(int(time.time()))
    nonce = nonce or secrets.token_hex(8)
    sig = plain_signature(TOKEN, ts, nonce)
    if tamper:
        sig = "0" * len(sig)
    return api.admin.client.post(
        PATH, params={"signature": sig, "timestamp": ts, "nonce": nonce}, content=xml.encode()
    )


def stats_of(api: Api, code_id: str) -> dict[str, Any]:
    """A callback answers no position; wait for everything recorded so far."""
    r = api.admin.get(
        f"/v1/channel-codes/{code_id}/stats", params={"min_position": api.container.head()}
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def customer_by(api: Api, kind: str, value: str) -> dict[str, Any]:
    api.container.start_follower().catch_up()
    rows = api.container.read_db.query(
        "SELECT customer_id FROM portrait_identities WHERE kind = ? AND value = ?", (kind, value)
    )
    assert len(rows) == 1, rows
    r = api.admin.get(f"/v1/customers/{rows[0][0]}/portrait")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_server_verification_echoes_the_echostr(oa: Api) -> None:
    ts, nonce = str(int(time.time())), "n1"
    r = oa.admin.client.get(
        PATH,
        params={
            "signature": plain_signature(TOKEN, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": "hello",
        },
    )
    assert r.status_code == 200 and r.text == "hello"


def test_a_follow_through_a_parametric_code_attributes_the_fan(oa: Api) -> None:
    oa.admin.staff("zhang.wei")
    code = oa.admin.code(["zhang.wei"], tags=["公众号海报"])
    scene = "qrscene_" + wecom_state(UUID(code["id"]))
    assert post(oa, fan_xml("subscribe", "oFan001", int(time.time()), scene)).text == "success"
    fan = customer_by(oa, "openid", "oFan001")
    assert fan["source_channel_code"] == code["id"] and fan["tags"] == ["公众号海报"]
    assert [(s["app_id"], s["status"]) for s in fan["subscriptions"]] == [(APP_ID, "subscribed")]
    assert [t["event"] for t in fan["timeline"]] == ["CustomerAdded", "CustomerSubscribed"]
    stats = stats_of(oa, code["id"])
    assert (stats["scans"], stats["adds"]) == (1, 1)


def test_a_fan_whose_unionid_is_known_joins_the_wecom_side_customer(oa: Api) -> None:
    known = oa.admin.post(
        "/v1/customers",
        {
            "identities": [
                {"kind": "wecom_external_userid", "value": "wmKnown"},
                {"kind": "unionid", "value": "uSamePerson"},
            ]
        },
    )
    assert known.status_code == 201, known.text
    oa.container.fan_directory = RecordedDirectory({"oFan002": "uSamePerson"})
    assert post(oa, fan_xml("subscribe", "oFan002", int(time.time()))).status_code == 200
    fan = customer_by(oa, "openid", "oFan002")
    assert fan["id"] == known.json()["id"]  # one portrait, not two
    kinds = {i["kind"] for i in fan["identities"]}
    assert kinds == {"wecom_external_userid", "unionid", "openid"}


def test_a_late_older_follow_does_not_undo_a_newer_unfollow(oa: Api) -> None:
    now = int(time.time())
    assert post(oa, fan_xml("unsubscribe", "oFan003", now)).status_code == 200
    assert post(oa, fan_xml("subscribe", "oFan003", now - 30)).status_code == 200
    fan = customer_by(oa, "openid", "oFan003")
    assert [s["status"] for s in fan["subscriptions"]] == ["unsubscribed"]


def test_a_scan_by_a_known_follower_counts_a_scan_but_no_add(oa: Api) -> None:
    oa.admin.staff("li.na")
    code = oa.admin.code(["li.na"])
    state = wecom_state(UUID(code["id"]))
    now = int(time.time())
    assert post(oa, fan_xml("subscribe", "oFan004", now - 10)).status_code == 200
    assert post(oa, fan_xml("SCAN", "oFan004", now, state)).status_code == 200
    stats = stats_of(oa, code["id"])
    assert (stats["scans"], stats["adds"]) == (1, 0)


def test_a_scan_is_news_of_a_follow_when_we_did_not_know_the_fan(oa: Api) -> None:
    oa.admin.staff("wang.fang")
    code = oa.admin.code(["wang.fang"])
    assert (
        post(
            oa, fan_xml("SCAN", "oFan005", int(time.time()), wecom_state(UUID(code["id"])))
        ).status_code
        == 200
    )
    fan = customer_by(oa, "openid", "oFan005")
    assert [s["status"] for s in fan["subscriptions"]] == ["subscribed"]
    stats = stats_of(oa, code["id"])
    assert (stats["scans"], stats["adds"]) == (1, 1)


def test_the_same_message_twice_has_one_effect(oa: Api) -> None:
    xml = fan_xml("subscribe", "oFan006", int(time.time()))
    assert post(oa, xml).status_code == 200
    head = oa.container.head()
    assert post(oa, xml).status_code == 200
    assert oa.container.head() == head


@pytest.mark.parametrize("case", ["tampered", "replayed", "old"])
def test_a_callback_failing_a_check_is_401_and_records_nothing(oa: Api, case: str) -> None:
    xml = fan_xml("subscribe", "oFan007", int(time.time()))
    if case == "replayed":
        ts = str(int(time.time()))
        assert post(oa, xml, nonce="same", timestamp=ts).status_code == 200
        head = oa.container.head()
        r = post(oa, xml, nonce="same", timestamp=ts)
    else:
        head = oa.container.head()
        r = (
            post(oa, xml, tamper=True)
            if case == "tampered"
            else post(oa, xml, timestamp=str(int(time.time()) - 7200))
        )
    assert r.status_code == 401, r.text
    assert oa.container.head() == head


def test_messages_that_are_not_fan_events_are_kept_once_on_record(oa: Api) -> None:
    xml = fan_xml("", "oFan008", int(time.time()), msg_type="text")
    assert post(oa, xml).status_code == 200
    receipts = [r for r in oa.container.read_log(0, 1000) if r.name == "InboxReceiptReceived"]
    assert [(r.data["source"], r.data["kind"]) for r in receipts] == [("wechat_oa", "text:?")]


def test_without_configuration_the_callback_says_so(api: Api) -> None:
    r = api.admin.client.get(
        PATH, params={"signature": "x", "timestamp": "1", "nonce": "n", "echostr": "e"}
    )
    assert r.status_code == 404 and "not configured" in r.json()["detail"]
