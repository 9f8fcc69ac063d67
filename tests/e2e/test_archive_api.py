"""The conversation archive over HTTP: ingest once, recall, and who may read — on record."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.e2e.conftest import Api

CUSTOMER_EXT = "wmCustomerA0001"
OTHER_EXT = "wmCustomerB0002"


def line(
    msgid: str,
    seq: int,
    sender: str,
    to: list[str],
    text: str,
    *,
    room: str = "",
    at: int = 1_767_000_000_000,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "msgid": msgid,
        "action": "send",
        "from": sender,
        "tolist": to,
        "roomid": room,
        "msgtime": at,
        "msgtype": "text",
        "text": {"content": text},
    }


def jsonl(records: list[Any]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records)


def ingest(api: Api, records: list[Any]) -> Any:
    return api.admin.client.post(
        "/v1/archive/batches",
        content=jsonl(records),
        headers={
            "Authorization": f"Bearer {api.admin.token}",
            "Content-Type": "application/x-ndjson",
        },
    )


BATCH = [
    line("msg-1", 1, "zhang.wei", [CUSTOMER_EXT], "您好，保本理财了解一下"),
    line("msg-2", 2, CUSTOMER_EXT, ["zhang.wei"], "真的稳赚吗？", at=1_767_000_060_000),
    {
        "seq": 3,
        "msgid": "msg-3",
        "action": "send",
        "from": "zhang.wei",
        "tolist": [CUSTOMER_EXT],
        "roomid": "",
        "msgtime": 1_767_000_120_000,
        "msgtype": "image",
        "image": {
            "sdkfileid": "CtYBMzA2OTAyMDEwMjA0NjIzMDYwMDIwMTAw",
            "md5sum": "abc",
            "filesize": 4096,
        },
    },
    line("msg-4", 4, "li.na", [OTHER_EXT], "another customer"),
]


@pytest.fixture
def archive(api: Api) -> Api:
    api.admin.staff("zhang.wei", department="east")
    api.admin.staff("li.na", department="west")
    for ext, owner in ((CUSTOMER_EXT, "zhang.wei"), (OTHER_EXT, "li.na")):
        r = api.admin.post(
            "/v1/customers",
            {"identities": [{"kind": "wecom_external_userid", "value": ext}], "owner": owner},
        )
        assert r.status_code == 201, r.text
    assert ingest(api, BATCH).status_code == 201
    return api


def customer_id(api: Api, ext: str) -> str:
    api.container.start_follower().catch_up()
    rows = api.container.read_db.query(
        "SELECT customer_id FROM portrait_identities WHERE value = ?", (ext,)
    )
    return str(rows[0][0])


def read(client: Any, **params: Any) -> Any:
    return client.get("/v1/conversations", params={"purpose": "客户投诉复核", **params})


def test_a_batch_is_archived_and_reingesting_it_changes_nothing(archive: Api) -> None:
    head = archive.container.head()
    again = ingest(archive, BATCH)
    assert again.status_code == 201
    assert again.json()["archived"] == 0 and again.json()["duplicates"] == 4
    assert archive.container.head() == head
    assert archive.container.conversations.last_seq() == 4


def test_a_recall_marks_the_original_and_keeps_it(archive: Api) -> None:
    recall = {
        "seq": 5,
        "msgid": "msg-5",
        "action": "recall",
        "from": "zhang.wei",
        "tolist": [CUSTOMER_EXT],
        "roomid": "",
        "msgtime": 1_767_000_200_000,
        "msgtype": "revoke",
        "revoke": {"pre_msgid": "msg-1"},
    }
    assert ingest(archive, [recall]).json()["recalls"] == 1
    items = read(
        archive.admin,
        customer_id=customer_id(archive, CUSTOMER_EXT),
        min_position=archive.container.head(),
    ).json()["items"]
    original = next(m for m in items if m["msgid"] == "msg-1")
    assert original["recalled_at"] is not None
    assert original["content"] == {"text": {"content": "您好，保本理财了解一下"}}


def test_a_recall_arriving_before_its_message_still_marks_it(api: Api) -> None:
    recall = {
        "seq": 9,
        "msgid": "r-1",
        "action": "recall",
        "from": "s",
        "tolist": [OTHER_EXT],
        "roomid": "",
        "msgtime": 1_767_000_300_000,
        "msgtype": "revoke",
        "revoke": {"pre_msgid": "late-1"},
    }
    assert ingest(api, [recall]).json()["recalls"] == 0
    assert ingest(api, [line("late-1", 8, "s", [OTHER_EXT], "x")]).status_code == 201
    api.container.start_follower().catch_up()
    rows = api.container.read_db.query(
        "SELECT recalled_at FROM conversations_messages WHERE msgid = 'late-1'"
    )
    assert rows[0][0] is not None


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (
            {
                "msgid": "x1",
                "action": "send",
                "tolist": [],
                "roomid": "",
                "msgtime": 1,
                "msgtype": "text",
            },
            "records[1].from",
        ),
        ({"msgid": "x2", "action": "teleport"}, "records[1].action"),
        ({"action": "send"}, "records[1].msgid"),
        (
            {
                "msgid": "x3",
                "action": "recall",
                "from": "a",
                "tolist": [],
                "roomid": "",
                "msgtime": 5,
                "msgtype": "revoke",
                "revoke": {},
            },
            "records[1].revoke.pre_msgid",
        ),
    ],
)
def test_a_batch_with_one_bad_record_is_422_naming_it_and_records_nothing(
    api: Api, bad: dict[str, Any], field: str
) -> None:
    head = api.container.head()
    r = ingest(api, [line("ok-1", 1, "a", ["b"], "fine"), bad])
    assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert api.container.head() == head


def test_a_line_that_is_not_json_is_422(api: Api) -> None:
    r = api.admin.client.post(
        "/v1/archive/batches",
        content=b'{"msgid": "a"}\n{nope',
        headers={"Authorization": f"Bearer {api.admin.token}"},
    )
    assert r.status_code == 422 and "line 2" in r.json()["detail"]


def test_staff_read_their_own_customers_conversations_and_the_read_is_recorded(
    archive: Api,
) -> None:
    zhang = archive.as_staff("zhang.wei")
    mine = customer_id(archive, CUSTOMER_EXT)
    r = read(zhang, customer_id=mine)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [m["msgid"] for m in items] == ["msg-1", "msg-2", "msg-3"]
    assert items[1]["content"] == {"text": {"content": "真的稳赚吗？"}}
    assert items[2]["content"]["image"]["sdkfileid"].startswith("CtYB")
    accesses = [e for e in archive.container.read_log(0, 10_000) if e.name == "ArchiveAccessed"]
    assert len(accesses) == 1
    assert accesses[0].actor == "staff:zhang.wei"
    assert accesses[0].data["purpose"] == "客户投诉复核"
    assert accesses[0].data["message_ids"] == ["msg-1", "msg-2", "msg-3"]


def test_the_rbac_matrix_for_archive_reads(archive: Api) -> None:
    mine, theirs = customer_id(archive, CUSTOMER_EXT), customer_id(archive, OTHER_EXT)
    zhang = archive.as_staff("zhang.wei")
    east = archive.as_manager("east")
    auditor = archive.as_role("auditor")
    regulator = archive.as_role("regulator")
    expected = [
        (zhang, {"customer_id": mine}, 200),
        (zhang, {"customer_id": theirs}, 403),
        (zhang, {"staff_id": "zhang.wei"}, 403),  # one customer at a time
        (east, {"customer_id": mine}, 200),
        (east, {"customer_id": theirs}, 403),
        (auditor, {"customer_id": theirs}, 200),
        (auditor, {"staff_id": "li.na"}, 200),
        (regulator, {"customer_id": mine}, 403),
        (archive.admin, {"room_id": "wrRoom"}, 200),
        (zhang, {"room_id": "wrRoom"}, 403),
    ]
    for client, params, status in expected:
        head = archive.container.head()
        r = read(client, **params)
        assert r.status_code == status, (params, r.text)
        # A refused read records nothing; an allowed one records exactly its access.
        assert archive.container.head() == head + (1 if status == 200 else 0)


def test_reading_without_a_purpose_is_422_and_records_nothing(archive: Api) -> None:
    head = archive.container.head()
    r = archive.admin.get(
        "/v1/conversations", params={"customer_id": customer_id(archive, CUSTOMER_EXT)}
    )
    assert r.status_code == 422 and r.json()["field"] == "purpose"
    assert archive.container.head() == head


def test_only_an_admin_ingests(archive: Api) -> None:
    staff = archive.as_staff("zhang.wei")
    r = staff.client.post(
        "/v1/archive/batches",
        content=jsonl([line("s1", 1, "a", ["b"], "x")]),
        headers={"Authorization": f"Bearer {staff.token}"},
    )
    assert r.status_code == 403


def test_content_is_sealed_in_the_events_and_the_read_model(archive: Api) -> None:
    log = [e for e in archive.container.read_log(0, 10_000) if e.name == "ArchivedMessageArchived"]
    assert log and all("稳赚" not in orjson.dumps(e.data).decode() for e in log)
    archive.container.start_follower().catch_up()
    rows = archive.container.read_db.query("SELECT sealed FROM conversations_messages")
    assert rows and all("稳赚" not in r[0] for r in rows)


def test_auditors_see_who_read_what_and_why(archive: Api) -> None:
    mine = customer_id(archive, CUSTOMER_EXT)
    zhang = archive.as_staff("zhang.wei")
    assert read(zhang, customer_id=mine).status_code == 200
    assert (
        archive.admin.get(
            "/v1/conversations", params={"customer_id": mine, "purpose": "监管检查抽样"}
        ).status_code
        == 200
    )
    auditor = archive.as_role("auditor")
    log = auditor.get(
        "/v1/audit/archive-access", params={"min_position": archive.container.head()}
    ).json()["items"]
    assert [(e["reader"], e["purpose"], e["messages"]) for e in log] == [
        ("staff:zhang.wei", "客户投诉复核", 3),
        ("user:admin", "监管检查抽样", 3),
    ]
    who_read_msg2 = auditor.get("/v1/audit/archive-access", params={"msgid": "msg-2"}).json()
    assert len(who_read_msg2["items"]) == 2
    by_zhang = auditor.get("/v1/audit/archive-access", params={"reader": "staff:zhang.wei"}).json()[
        "items"
    ]
    assert [e["query"] for e in by_zhang] == [{"customer_id": mine}]
    assert zhang.get("/v1/audit/archive-access").status_code == 403


def one(client: Any, msgid: str, purpose: str = "核对客户投诉") -> Any:
    return client.get(f"/v1/conversations/messages/{msgid}", params={"purpose": purpose})


def test_one_message_is_read_by_those_entitled_and_the_read_is_recorded(archive: Api) -> None:
    archive.container.start_follower().catch_up()
    zhang, li = archive.as_staff("zhang.wei"), archive.as_staff("li.na")
    expected = [
        (zhang, "msg-2", 200),  # a message from zhang.wei's customer
        (zhang, "msg-4", 403),  # li.na's customer
        (li, "msg-4", 200),
        (archive.as_manager("east"), "msg-1", 200),
        (archive.as_manager("west"), "msg-1", 403),
        (archive.as_role("auditor"), "msg-4", 200),
        (archive.as_role("regulator"), "msg-1", 403),
        (archive.admin, "no-such-msg", 404),
    ]
    for client, msgid, status in expected:
        head = archive.container.head()
        r = one(client, msgid)
        assert r.status_code == status, (msgid, r.text)
        assert archive.container.head() == head + (1 if status == 200 else 0)
    r = one(zhang, "msg-2")
    assert r.json()["content"] == {"text": {"content": "真的稳赚吗？"}}
    access = [e for e in archive.container.read_log(0, 10_000) if e.name == "ArchiveAccessed"]
    assert access[-1].data["message_ids"] == ["msg-2"]
    assert access[-1].data["query"] == {"msgid": "msg-2"}
    r = one(zhang, "msg-2", purpose="")
    assert r.status_code == 422 and r.json()["field"] == "purpose"
