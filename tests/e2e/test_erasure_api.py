"""Erasure (PIPL Art. 47) end to end: restricted at once, keys destroyed when nothing requires
the content, retention periods and legal holds defer it, and afterwards the content is
unreadable in every read model and answer, while the events remain."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest

from domain.customers import privacy
from infra.bootstrap import bootstrap
from infra.jobs import apply_erasures, last_contact_reader
from tests.e2e.conftest import Api, MakeApi
from tests.e2e.test_archive_api import (
    CUSTOMER_EXT,
    OTHER_EXT,
    archive,  # noqa: F401 (fixture)
    customer_id,
    read,
)
from tests.factories import meta

LAST_CONTACT = datetime(2025, 12, 29, 9, 22, 0, tzinfo=UTC)  # msg-3 in the archive fixture


def erase(api: Api, cid: str, **body: Any) -> Any:
    return api.admin.post(
        f"/v1/customers/{cid}/erasure-requests", {"received_via": "phone", **body}
    )


def events(api: Api, name: str) -> list[Any]:
    return [e for e in api.container.read_log(0, 100_000) if e.name == name]


def caught_up(api: Api) -> int:
    head = api.container.head()
    api.container.engine.wait_for(head, 5)
    return head


def test_with_nothing_to_keep_the_customer_is_erased_at_once_and_nothing_reads_them(
    archive: Api,  # noqa: F811
) -> None:
    mine = customer_id(archive, CUSTOMER_EXT)
    zhang = archive.as_staff("zhang.wei")
    auditor = archive.as_role("auditor")
    before = read(auditor, customer_id=mine).json()["items"]
    assert before[1]["content"] == {"text": {"content": "真的稳赚吗？"}}  # key now cached

    r = erase(archive, mine)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "erased"
    # The archive subject's key; the customer's own key never existed (no phone), and is
    # tombstoned so that none is ever made.
    assert r.json()["keys_destroyed"] == 1
    caught_up(archive)

    # The customer is gone from lists and portraits; their conversations from staff.
    assert archive.admin.get(f"/v1/customers/{mine}/portrait").json()["error"] == "customer_erased"
    listed = archive.admin.get("/v1/customers").json()["items"]
    assert mine not in [c["id"] for c in listed]
    r = read(zhang, customer_id=mine)
    assert r.status_code == 410 and r.json()["error"] == "customer_erased"
    admin_list = read(archive.admin, staff_id="zhang.wei").json()["items"]
    assert [m["msgid"] for m in admin_list] == []
    # The auditor still sees that the messages existed, and nothing of what they said.
    after = read(auditor, customer_id=mine).json()["items"]
    assert [m["msgid"] for m in after] == ["msg-1", "msg-2", "msg-3"]
    assert all(m["content"] == "[erased]" and m["restricted"] == "erased" for m in after)
    # Search finds nothing of theirs, for anyone.
    for client in (archive.admin, auditor):
        r = read(client, keyword="稳赚")
        assert r.status_code == 200 and r.json()["items"] == []
    rows = archive.container.read_db.query(
        "SELECT COUNT(*) FROM search_terms t JOIN search_documents d"
        " ON d.message_id = t.message_id WHERE d.subject = ?",
        (f"wecom_external_userid:{CUSTOMER_EXT}",),
    )
    assert rows[0][0] == 0

    # The events remain; the record of the erasure holds no personal data.
    assert len(events(archive, "ArchivedMessageArchived")) == 4
    (erased,) = events(archive, "CustomerErased")
    assert erased.actor == "user:admin"
    assert "稳赚" not in orjson.dumps(erased.data).decode()
    assert set(erased.data) == {"key_ids", "subjects", "policy_version"}
    # The other customer is untouched.
    theirs = customer_id(archive, OTHER_EXT)
    assert archive.admin.get(f"/v1/customers/{theirs}/portrait").status_code == 200


def test_a_key_destroyed_by_another_process_reads_as_erased_at_once(
    archive: Api,  # noqa: F811
) -> None:
    mine = customer_id(archive, CUSTOMER_EXT)
    auditor = archive.as_role("auditor")
    assert read(auditor, customer_id=mine).json()["items"][0]["content"] != "[erased]"
    other = bootstrap(archive.container.settings)  # a second process on the same stores
    try:
        privacy.request_erasure(
            other.customers,
            UUID(mine),
            received_via="email",
            now=datetime.now(UTC),
            last_contact=last_contact_reader(other),
            meta=meta(),
        )
    finally:
        other.close()
    caught_up(archive)
    items = read(auditor, customer_id=mine).json()["items"]
    assert items and all(m["content"] == "[erased]" for m in items)


def test_a_retention_period_defers_the_destruction_until_it_ends(
    archive: Api,  # noqa: F811
) -> None:
    policy = archive.admin.client.put(
        "/v1/retention-policy",
        json={"industry": "finance", "effective_from": "2020-01-01T00:00:00+00:00"},
        headers={"Authorization": f"Bearer {archive.admin.token}"},
    )
    assert policy.status_code == 200 and policy.json()["policy_version"] == 1
    mine = customer_id(archive, CUSTOMER_EXT)
    r = erase(archive, mine)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "restricted" and body["policy_version"] == 1
    until = datetime.fromisoformat(body["retained_until"].replace("Z", "+00:00"))
    assert until == LAST_CONTACT + timedelta(days=5 * 365)
    caught_up(archive)

    # Restricted: hidden from staff and lists, still stored; auditors may read what is kept.
    r = archive.as_staff("zhang.wei").get(f"/v1/customers/{mine}/portrait")
    assert r.status_code == 410 and r.json()["error"] == "customer_restricted"
    r = archive.admin.post(f"/v1/customers/{mine}/tags", {"add": ["vip"]})
    assert r.status_code == 410 and r.json()["error"] == "customer_restricted"
    kept = read(archive.as_role("auditor"), customer_id=mine).json()["items"]
    assert kept[1]["content"] == {"text": {"content": "真的稳赚吗？"}}
    assert kept[1]["restricted"] == "restricted"
    listing = archive.as_role("auditor").get("/v1/erasure-requests").json()["items"]
    assert [(e["customer_id"], e["status"], e["waiting_for"]) for e in listing] == [
        (mine, "restricted", "retention")
    ]

    # The scheduled process leaves it while retention runs, and erases it once it ended.
    head = archive.container.head()
    run = apply_erasures(archive.container, now=until - timedelta(days=1))
    assert run.waiting == [mine] and run.erased == []
    assert archive.container.head() == head  # nothing new to say: nothing recorded
    run = apply_erasures(archive.container, now=until + timedelta(seconds=1))
    assert run.erased == [mine] and run.keys_destroyed == 1
    caught_up(archive)
    kept = read(archive.as_role("auditor"), customer_id=mine).json()["items"]
    assert all(m["content"] == "[erased]" for m in kept)
    (erased,) = events(archive, "CustomerErased")
    assert erased.actor == "system:privacy" and erased.source == "scheduler"
    assert erased.data["policy_version"] == 1


def test_a_legal_hold_keeps_the_content_until_released_then_erasure_follows_at_once(
    archive: Api,  # noqa: F811
) -> None:
    mine = customer_id(archive, CUSTOMER_EXT)
    hold = archive.admin.post(
        "/v1/legal-holds",
        {"customer_id": mine, "case_reference": "(2026)沪0115民初123号", "authority": "court"},
    )
    assert hold.status_code == 201, hold.text
    hold_id = hold.json()["hold_id"]
    r = erase(archive, mine)
    assert r.json()["status"] == "restricted" and r.json()["legal_holds"] == [hold_id]
    caught_up(archive)  # the scheduled process finds waiting requests in the read model
    assert apply_erasures(archive.container).waiting == [mine]

    released = archive.admin.post(f"/v1/legal-holds/{hold_id}/release", {})
    assert released.status_code == 200, released.text
    assert released.json()["erasure"]["status"] == "erased"
    caught_up(archive)
    holds = archive.as_role("auditor").get("/v1/legal-holds").json()["items"]
    assert [(h["hold_id"], h["status"]) for h in holds] == [(hold_id, "released")]
    again = archive.admin.post(f"/v1/legal-holds/{hold_id}/release", {})
    assert again.status_code == 409 and again.json()["error"] == "hold_released"
    late = archive.admin.post(
        "/v1/legal-holds", {"customer_id": mine, "case_reference": "x", "authority": "court"}
    )
    assert late.status_code == 410 and late.json()["error"] == "customer_erased"


def test_refusals_and_bad_input_record_nothing(archive: Api) -> None:  # noqa: F811
    mine = customer_id(archive, CUSTOMER_EXT)
    head = archive.container.head()
    staff = archive.as_staff("zhang.wei")
    assert (
        staff.post(f"/v1/customers/{mine}/erasure-requests", {"received_via": "x"}).status_code
        == 403
    )
    assert (
        archive.as_role("auditor")
        .post(f"/v1/customers/{mine}/erasure-requests", {"received_via": "x"})
        .status_code
        == 403
    )
    r = archive.admin.post(f"/v1/customers/{mine}/erasure-requests", {})
    assert r.status_code == 422 and r.json()["field"].endswith("received_via")
    r = erase(archive, "6f1c1a52-3c4e-4f57-9d3e-0f1f6f0a0b0c")
    assert r.status_code == 404
    r = archive.admin.client.put(
        "/v1/retention-policy",
        json={"industry": "astrology"},
        headers={"Authorization": f"Bearer {archive.admin.token}"},
    )
    assert r.status_code == 422 and r.json()["field"] == "industry"
    assert archive.container.head() == head
    assert staff.get("/v1/erasure-requests").status_code == 403

    assert erase(archive, mine).status_code == 202
    r = erase(archive, mine)
    assert r.status_code == 409 and r.json()["error"] == "erasure_already_requested"


@pytest.mark.parametrize("industry", ["finance", "medical"])
def test_the_retention_policy_is_versioned_configuration(archive: Api, industry: str) -> None:  # noqa: F811
    put = archive.admin.client.put
    auth = {"Authorization": f"Bearer {archive.admin.token}"}
    assert put("/v1/retention-policy", json={"industry": "retail"}, headers=auth).status_code == 200
    r = put(
        "/v1/retention-policy",
        json={"industry": industry, "communications_years": 7},
        headers=auth,
    )
    assert r.json()["policy_version"] == 2
    caught_up(archive)
    shown = archive.as_role("auditor").get("/v1/retention-policy").json()
    assert [
        (v["policy_version"], v["industry"], v["communications_years"]) for v in shown["versions"]
    ] == [
        (1, "retail", 0),
        (2, industry, 7),
    ]
    assert shown["versions"][1]["recorded_by"] == "user:admin"
    assert shown["industry_presets"]["finance"] == 5


def test_read_models_rebuilt_after_an_erasure_equal_the_live_ones(archive: Api) -> None:  # noqa: F811
    mine = customer_id(archive, CUSTOMER_EXT)
    assert erase(archive, mine).json()["status"] == "erased"
    caught_up(archive)
    c = archive.container
    names = list(c.engine.projections)

    def dump() -> dict[str, list[tuple[str, ...]]]:
        out = {}
        for name in names:
            for table in c.engine.projections[name].tables:
                rows = c.read_db.query(f"SELECT * FROM {table}")
                out[table] = sorted(tuple(str(v) for v in r) for r in rows)
        return out

    live = dump()
    c.engine.rebuild(names, c.log_batches())
    assert dump() == live
    assert live["portrait_identities"] and all(r[0] != mine for r in live["portrait_identities"])


def test_platform_news_about_a_restricted_customer_is_kept_not_applied(make_api: MakeApi) -> None:
    from tests.e2e.test_wecom_callback_api import WECOM, contact_xml, signed_post

    api = make_api(**WECOM)
    now = int(time.time())
    assert signed_post(api, contact_xml("add_external_contact", "li.na", "wmEXT9", now - 5)).text
    api.container.start_follower().catch_up()
    (cid,) = api.container.read_db.query(
        "SELECT customer_id FROM portrait_identities WHERE value = 'wmEXT9'"
    )[0]
    assert erase(api, cid).json()["status"] == "erased"
    before = [e for e in api.container.read_log(0, 100_000) if e.originator_id == cid]

    r = signed_post(api, contact_xml("del_follow_user", "li.na", "wmEXT9", now))
    assert r.status_code == 200 and r.text == "success"  # handled: WeCom stops retrying
    after = [e for e in api.container.read_log(0, 100_000) if e.originator_id == cid]
    assert after == before  # nothing applied to the customer
    (receipt,) = [
        e for e in events(api, "InboxReceiptReceived") if e.data["kind"] == "del_follow_user"
    ]
    assert receipt.data["outcome"] == "ignored: customer erased"


def test_archive_records_arriving_after_erasure_are_stored_without_content(
    archive: Api,  # noqa: F811
) -> None:
    from tests.e2e.test_archive_api import ingest, line

    mine = customer_id(archive, CUSTOMER_EXT)
    assert erase(archive, mine).json()["status"] == "erased"
    violations = len(events(archive, "ComplianceViolationDetected"))
    late = [line("late-9", 9, CUSTOMER_EXT, ["zhang.wei"], "还是保本的吧", at=1_767_000_900_000)]
    r = ingest(archive, late)
    assert r.status_code == 201 and r.json()["archived"] == 1, r.text
    (stored,) = [
        e for e in events(archive, "ArchivedMessageArchived") if e.data["msgid"] == "late-9"
    ]
    assert stored.data["sealed"] == ""  # the fact that a message came, nothing of what it said
    assert len(events(archive, "ComplianceViolationDetected")) == violations
    caught_up(archive)
    items = read(archive.as_role("auditor"), customer_id=mine).json()["items"]
    assert items[-1]["msgid"] == "late-9" and items[-1]["content"] == "[erased]"


def test_one_message_of_an_erased_customer_reads_as_erased(archive: Api) -> None:  # noqa: F811
    mine = customer_id(archive, CUSTOMER_EXT)
    assert erase(archive, mine).json()["status"] == "erased"
    caught_up(archive)
    params = {"purpose": "监管抽查核对"}
    r = archive.as_role("auditor").get("/v1/conversations/messages/msg-2", params=params)
    assert r.status_code == 200 and r.json()["content"] == "[erased]"
    r = archive.admin.get("/v1/conversations/messages/msg-2", params=params)
    assert r.status_code == 410 and r.json()["error"] == "customer_erased"
