"""WeCom callbacks over HTTP, as WeCom sends them: signed, encrypted, retried and reordered."""

from __future__ import annotations

import secrets
import time
from typing import Any
from uuid import UUID

import pytest

from domain.customers.aggregates import wecom_state
from infra.wecom.crypto import WecomCrypto, signature
from tests.e2e.conftest import Api, MakeApi

TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"
WECOM = {"wecom_token": TOKEN, "wecom_aes_key": AES_KEY, "wecom_corp_id": CORP_ID}
PATH = "/v1/integrations/wecom/callback"
ECHOSTR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="


@pytest.fixture
def wecom(make_api: MakeApi) -> Api:
    return make_api(**WECOM)


def contact_xml(change: str, user: str, external: str, at: int, **more: str) -> str:
    extra = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in more.items())
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change}]]></ChangeType><UserID><![CDATA[{user}]]></UserID>"
        f"<ExternalUserID><![CDATA[{external}]]></ExternalUserID>{extra}</xml>"
    )


def signed_post(
    api: Api,
    inner: str,
    *,
    receive_id: str = CORP_ID,
    timestamp: str | None = None,
    nonce: str | None = None,
    tamper: bool = False,
) -> Any:
    encrypted = WecomCrypto(TOKEN, AES_KEY, receive_id).encrypt(inner)
    ts = timestamp or str(int(time.time()))
    nonce = nonce or secrets.token_hex(8)
    sig = signature(TOKEN, ts, nonce, encrypted)
    if tamper:
        sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
    )
    return api.admin.client.post(
        PATH,
        params={"msg_signature": sig, "timestamp": ts, "nonce": nonce},
        content=body.encode(),
        headers={"Content-Type": "text/xml"},
    )


def portrait_of_external(api: Api, external: str) -> dict[str, Any]:
    api.container.start_follower().catch_up()
    rows = api.container.read_db.query(
        "SELECT customer_id FROM portrait_identities WHERE kind = 'wecom_external_userid'"
        " AND value = ?",
        (external,),
    )
    assert rows, f"no customer for {external}"
    r = api.admin.get(f"/v1/customers/{rows[0][0]}/portrait")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_url_verification_answers_the_decrypted_public_vector(make_api: MakeApi) -> None:
    api = make_api(**WECOM, callback_window_seconds=10**10)  # the vector is from 2014
    r = api.admin.client.get(
        PATH,
        params={
            "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
            "timestamp": "1411443780",
            "nonce": "437374425",
            "echostr": ECHOSTR,
        },
    )
    assert r.status_code == 200 and r.text == "5927782489442352469"


def test_a_contact_added_through_a_code_attributes_the_customer_to_it(wecom: Api) -> None:
    wecom.admin.staff("zhang.wei")
    code = wecom.admin.code(["zhang.wei"], tags=["海报"], welcome_message="欢迎")
    state = wecom_state(UUID(code["id"]))
    r = signed_post(
        wecom,
        contact_xml(
            "add_external_contact",
            "zhang.wei",
            "wmEXT001",
            int(time.time()),
            State=state,
            WelcomeCode="WC1",
        ),
    )
    assert r.status_code == 200 and r.text == "success"
    portrait = portrait_of_external(wecom, "wmEXT001")
    assert portrait["owner"] == "zhang.wei"
    assert portrait["source_channel_code"] == code["id"] and portrait["tags"] == ["海报"]
    assert portrait["contacts"] == [
        {
            "staff_id": "zhang.wei",
            "status": "added",
            "since": portrait["contacts"][0]["since"],
            "via_channel_code": code["id"],
        }
    ]
    timeline = portrait["timeline"]
    assert [t["event"] for t in timeline] == [
        "CustomerAdded",
        "CustomerContactAdded",
        "CustomerWelcomeMessageSent",  # the code's welcome, with the add's WelcomeCode
    ]
    assert {t["actor"] for t in timeline} == {"integration:wecom"}
    assert {t["source"] for t in timeline} == {"wecom"}
    stats = wecom.admin.get(
        f"/v1/channel-codes/{code['id']}/stats", params={"min_position": wecom.container.head()}
    ).json()
    assert (stats["scans"], stats["adds"]) == (1, 1)


def test_the_same_callback_delivered_twice_has_one_effect(wecom: Api) -> None:
    inner = contact_xml("add_external_contact", "li.na", "wmEXT002", int(time.time()))
    assert signed_post(wecom, inner).status_code == 200
    head = wecom.container.head()
    assert signed_post(wecom, inner).status_code == 200  # WeCom's retry: new nonce, same body
    assert wecom.container.head() == head


def test_a_late_older_callback_does_not_undo_a_newer_fact(wecom: Api) -> None:
    now = int(time.time())
    # The customer removed the staff member at now; the add from a minute earlier arrives later.
    removed = contact_xml("del_follow_user", "li.na", "wmEXT003", now)
    added = contact_xml("add_external_contact", "li.na", "wmEXT003", now - 60)
    assert signed_post(wecom, removed).status_code == 200
    assert signed_post(wecom, added).status_code == 200
    portrait = portrait_of_external(wecom, "wmEXT003")
    assert [c["status"] for c in portrait["contacts"]] == ["removed_by_customer"]
    receipts = [r for r in wecom.container.read_log(0, 1000) if r.name == "InboxReceiptReceived"]
    assert [r.data["outcome"] for r in receipts] == ["applied", "stale"]


def test_a_removal_then_a_newer_add_restores_the_contact(wecom: Api) -> None:
    now = int(time.time())
    assert (
        signed_post(
            wecom, contact_xml("add_external_contact", "s", "wmEXT004", now - 20)
        ).status_code
        == 200
    )
    assert (
        signed_post(
            wecom, contact_xml("del_external_contact", "s", "wmEXT004", now - 10)
        ).status_code
        == 200
    )
    assert (
        signed_post(wecom, contact_xml("add_external_contact", "s", "wmEXT004", now)).status_code
        == 200
    )
    statuses = [t["event"] for t in portrait_of_external(wecom, "wmEXT004")["timeline"]]
    assert statuses == [
        "CustomerAdded",
        "CustomerContactAdded",
        "CustomerContactRemoved",
        "CustomerContactAdded",
    ]


@pytest.mark.parametrize("case", ["tampered", "wrong_corp", "stale_timestamp", "future"])
def test_a_callback_that_fails_a_check_is_401_and_records_nothing(wecom: Api, case: str) -> None:
    inner = contact_xml("add_external_contact", "s", "wmEXT005", int(time.time()))
    head = wecom.container.head()
    r = {
        "tampered": lambda: signed_post(wecom, inner, tamper=True),
        "wrong_corp": lambda: signed_post(wecom, inner, receive_id="wwOtherCorp"),
        "stale_timestamp": lambda: signed_post(
            wecom, inner, timestamp=str(int(time.time()) - 3600)
        ),
        "future": lambda: signed_post(wecom, inner, timestamp=str(int(time.time()) + 3600)),
    }[case]()
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_callback"
    assert "wmEXT005" not in r.text
    assert wecom.container.head() == head


def test_a_replayed_request_is_401_and_records_nothing(wecom: Api) -> None:
    inner = contact_xml("add_external_contact", "s", "wmEXT006", int(time.time()))
    ts, nonce = str(int(time.time())), "fixed-nonce-1"
    assert signed_post(wecom, inner, timestamp=ts, nonce=nonce).status_code == 200
    head = wecom.container.head()
    replay = signed_post(wecom, inner, timestamp=ts, nonce=nonce)
    assert replay.status_code == 401 and "nonce" in replay.json()["detail"]
    assert wecom.container.head() == head


def test_a_signed_callback_missing_a_field_is_422_naming_it(wecom: Api) -> None:
    inner = contact_xml("add_external_contact", "", "wmEXT007", int(time.time()))
    head = wecom.container.head()
    r = signed_post(wecom, inner)
    assert r.status_code == 422 and r.json()["field"] == "UserID"
    assert wecom.container.head() == head


def test_a_body_that_is_not_xml_is_422(wecom: Api) -> None:
    r = wecom.admin.client.post(
        PATH, params={"msg_signature": "x", "timestamp": "1", "nonce": "n"}, content=b"{not xml"
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid_callback_body"


def test_xml_entity_expansion_is_refused(wecom: Api) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'
    )
    r = wecom.admin.client.post(
        PATH, params={"msg_signature": "x", "timestamp": "1", "nonce": "n"}, content=bomb
    )
    assert r.status_code == 422


def test_callbacks_scrm_does_not_act_on_yet_are_kept_once_on_record(wecom: Api) -> None:
    inner = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>{int(time.time())}"
        "</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]>"
        "</Event><ChangeType><![CDATA[create_user]]></ChangeType>"
        "<UserID><![CDATA[new.hire]]></UserID></xml>"
    )
    assert signed_post(wecom, inner).status_code == 200
    assert signed_post(wecom, inner).status_code == 200
    receipts = [r for r in wecom.container.read_log(0, 1000) if r.name == "InboxReceiptReceived"]
    assert [(r.data["kind"], r.data["outcome"]) for r in receipts] == [
        ("event:change_contact:create_user", "received: not acted on")
    ]


def test_without_configuration_the_callback_says_so(api: Api) -> None:
    r = api.admin.client.get(
        PATH, params={"msg_signature": "x", "timestamp": "1", "nonce": "n", "echostr": "e"}
    )
    assert r.status_code == 404 and "not configured" in r.json()["detail"]
