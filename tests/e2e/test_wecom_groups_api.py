"""Customer groups, corp tags and welcome messages through WeCom's callback endpoint, as WeCom
sends them (signed, encrypted, retried, reordered), and the groups as the API shows them."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import pytest

from domain.customers.aggregates import wecom_state
from infra.wecom.directory import GroupChatDetails, KnownChats
from infra.wecom.welcome import RecordingWelcomeSender
from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.e2e.test_wecom_callback_api import CORP_ID, WECOM, contact_xml, signed_post

CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"


@pytest.fixture
def wecom(make_api: MakeApi) -> Api:
    api = make_api(**WECOM)
    api.container.chat_directory = KnownChats(
        {
            CHAT: GroupChatDetails(owner="zhang.wei", name="春季VIP群"),
            "wrWest": GroupChatDetails(owner="wang.fang", name="西区群"),
        }
    )
    api.admin.staff("zhang.wei", department="east")
    api.admin.staff("wang.fang", department="west")
    return api


def event_xml(event: str, at: int, **fields: str | list[str]) -> str:
    body = ""
    for name, value in fields.items():
        if isinstance(value, list):
            items = "".join(f"<Item><![CDATA[{v}]]></Item>" for v in value)
            body += f"<{name}>{items}</{name}>"
        else:
            body += f"<{name}><![CDATA[{value}]]></{name}>"
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event>{body}</xml>"
    )


def chat_xml(change: str, at: int, chat_id: str = CHAT, **fields: str | list[str]) -> str:
    return event_xml("change_external_chat", at, ChatId=chat_id, ChangeType=change, **fields)


def post(api: Api, inner: str) -> None:
    r = signed_post(api, inner)
    assert r.status_code == 200 and r.text == "success", r.text


def group(api: Api, chat_id: str = CHAT, client: Any = None) -> Any:
    return (client or api.admin).get(f"/v1/groups/{chat_id}", params={"min_position": api.head()})


def receipts(api: Api) -> list[tuple[str, str]]:
    return [
        (r.data["kind"], r.data["outcome"])
        for r in api.container.read_log(0, 10_000)
        if r.name == "InboxReceiptReceived"
    ]


def test_a_group_is_created_members_join_and_quit_and_it_is_dismissed(wecom: Api) -> None:
    now = int(time.time())
    customer = wecom.customer([("wecom_external_userid", "wmMember01")])
    post(wecom, chat_xml("create", now - 30))
    post(
        wecom,
        chat_xml(
            "update",
            now - 20,
            UpdateDetail="add_member",
            JoinScene="3",
            MemChangeCnt="3",
            MemChangeList=["wmMember01", "wmMember02", "zhang.wei"],
            LastMemVer="v1",
            CurMemVer="v2",
        ),
    )
    post(
        wecom,
        chat_xml(
            "update",
            now - 10,
            UpdateDetail="del_member",
            QuitScene="0",
            MemChangeCnt="1",
            MemChangeList=["wmMember02"],
            LastMemVer="v2",
            CurMemVer="v3",
        ),
    )

    r = group(wecom)
    assert r.status_code == 200, r.text
    shown = r.json()
    assert (shown["owner"], shown["name"], shown["status"], shown["member_count"]) == (
        "zhang.wei",
        "春季VIP群",
        "active",
        2,
    )
    assert [(m["userid"], m["kind"], m["status"], m["customer_id"]) for m in shown["members"]] == [
        ("wmMember01", "external", "joined", customer["id"]),
        ("zhang.wei", "staff", "joined", None),
        ("wmMember02", "external", "quit", None),
    ]

    post(wecom, chat_xml("dismiss", now))
    dismissed = group(wecom).json()
    assert dismissed["status"] == "dismissed" and dismissed["dismissed_at"]
    listed = wecom.admin.get("/v1/groups", params={"status": "dismissed"}).json()
    assert [g["chat_id"] for g in listed["items"]] == [CHAT]


def test_the_same_group_callback_delivered_twice_has_one_effect(wecom: Api) -> None:
    inner = chat_xml("update", int(time.time()), UpdateDetail="add_member", MemChangeList=["wmA"])
    post(wecom, inner)
    head = wecom.head()

    post(wecom, inner)  # WeCom's retry: new nonce, same body

    assert wecom.head() == head
    assert group(wecom).json()["member_count"] == 1


def test_a_late_older_update_after_the_dismissal_does_not_revive_the_group(wecom: Api) -> None:
    now = int(time.time())
    post(wecom, chat_xml("create", now - 60))
    post(wecom, chat_xml("dismiss", now))

    post(wecom, chat_xml("update", now - 30, UpdateDetail="add_member", MemChangeList=["wmLate"]))
    post(wecom, chat_xml("update", now - 20, UpdateDetail="change_name"))

    shown = group(wecom).json()
    assert (shown["status"], shown["members"], shown["name"]) == ("dismissed", [], "春季VIP群")
    assert [o for _, o in receipts(wecom)] == ["applied", "applied", "stale", "stale"]


def test_a_group_callback_without_a_chat_id_is_422_and_records_nothing(wecom: Api) -> None:
    inner = event_xml(
        "change_external_chat", int(time.time()), ChangeType="update", UpdateDetail="add_member"
    )
    with wecom.records_nothing():
        r = signed_post(wecom, inner)
    assert_error(r, 422, "invalid_callback_body", field="ChatId")


def test_a_group_callback_with_an_unreadable_scene_is_422_naming_it(wecom: Api) -> None:
    inner = chat_xml("update", int(time.time()), UpdateDetail="add_member", JoinScene="three")
    with wecom.records_nothing():
        r = signed_post(wecom, inner)
    assert_error(r, 422, "invalid_callback_body", field="JoinScene")


def test_tag_changes_are_on_record_once_and_a_late_one_after_deletion_is_stale(
    wecom: Api,
) -> None:
    now = int(time.time())

    def tag(change: str, at: int) -> str:
        return event_xml("change_external_tag", at, Id="etTAG01", TagType="tag", ChangeType=change)

    post(wecom, tag("create", now - 20))
    post(wecom, tag("create", now - 20))  # a retry
    post(wecom, tag("delete", now))
    post(wecom, tag("update", now - 10))  # sent before the deletion, delivered after

    log = [r.name for r in wecom.container.read_log(0, 10_000) if r.name.startswith("CorpTag")]
    assert log == ["CorpTagCreated", "CorpTagDeleted"]
    assert receipts(wecom) == [
        ("change_external_tag:create:tag", "applied"),
        ("change_external_tag:delete:tag", "applied"),
        ("change_external_tag:update:tag", "stale"),
    ]


def test_a_tag_callback_without_a_tag_type_is_422(wecom: Api) -> None:
    inner = event_xml("change_external_tag", int(time.time()), Id="etX", ChangeType="create")
    with wecom.records_nothing():
        r = signed_post(wecom, inner)
    assert_error(r, 422, "invalid_callback_body", field="TagType")


def test_a_welcome_is_sent_once_even_when_the_callback_is_delivered_twice(wecom: Api) -> None:
    code = wecom.admin.code(["zhang.wei"], welcome_message="您好，欢迎咨询！")
    inner = contact_xml(
        "add_external_contact",
        "zhang.wei",
        "wmWelcome01",
        int(time.time()),
        State=wecom_state(UUID(code["id"])),
        WelcomeCode="WELCOMECODE-1",
    )
    sender = wecom.container.customers.welcome_sender
    assert isinstance(sender, RecordingWelcomeSender)

    post(wecom, inner)
    post(wecom, inner)

    assert sender.sent == [("WELCOMECODE-1", "您好，欢迎咨询！")]
    sent = [r for r in wecom.container.read_log(0, 10_000) if "Welcome" in r.name]
    assert [(r.name, r.data["channel_code"]) for r in sent] == [
        ("CustomerWelcomeMessageSent", code["id"])
    ]


def test_a_welcome_code_from_a_callback_older_than_20_seconds_is_not_used(wecom: Api) -> None:
    code = wecom.admin.code(["zhang.wei"], welcome_message="欢迎")
    inner = contact_xml(
        "add_external_contact",
        "zhang.wei",
        "wmWelcome02",
        int(time.time()) - 60,  # a retry of an add a minute ago
        State=wecom_state(UUID(code["id"])),
        WelcomeCode="WELCOMECODE-2",
    )
    post(wecom, inner)

    assert wecom.container.customers.welcome_sender.sent == []  # type: ignore[attr-defined]
    failed = [r for r in wecom.container.read_log(0, 10_000) if "Welcome" in r.name]
    assert [(r.name, r.data["reason"]) for r in failed] == [
        ("CustomerWelcomeMessageFailed", "welcome_code_expired")
    ]


def test_staff_see_their_groups_managers_their_department_auditors_all(wecom: Api) -> None:
    now = int(time.time())
    post(wecom, chat_xml("create", now - 10))
    post(wecom, chat_xml("create", now, chat_id="wrWest"))
    head = {"min_position": wecom.head()}

    def listed(client: Any, **params: str) -> list[str]:
        r = client.get("/v1/groups", params={**head, **params})
        assert r.status_code == 200, r.text
        return [g["chat_id"] for g in r.json()["items"]]

    zhang, east = wecom.as_staff("zhang.wei"), wecom.as_manager("east")
    assert listed(zhang) == [CHAT]
    assert listed(east) == [CHAT]
    assert listed(wecom.as_role("auditor")) == [CHAT, "wrWest"]
    assert listed(wecom.admin, owner="wang.fang") == ["wrWest"]
    assert_error(zhang.get("/v1/groups", params={"owner": "wang.fang"}), 403, "forbidden")
    assert group(wecom, CHAT, zhang).status_code == 200
    assert_error(group(wecom, "wrWest", zhang), 403, "forbidden")
    assert_error(group(wecom, "wrWest", east), 403, "forbidden")
    assert group(wecom, "wrWest", wecom.as_role("auditor")).status_code == 200
    assert_error(wecom.as_role("regulator").get("/v1/groups"), 403, "forbidden")
    assert_error(group(wecom, "wrNobody"), 404, "not_found")


def test_groups_page_by_cursor(wecom: Api) -> None:
    now = int(time.time())
    for n in range(3):
        post(wecom, chat_xml("create", now - n, chat_id=f"wrPage{n}"))
    first = wecom.admin.get("/v1/groups", params={"limit": 2, "min_position": wecom.head()}).json()
    rest = wecom.admin.get("/v1/groups", params={"after": first["next_after"]}).json()

    assert [g["chat_id"] for g in first["items"] + rest["items"]] == [
        "wrPage0",
        "wrPage1",
        "wrPage2",
    ]
    assert rest["next_after"] is None
