"""The auditor's questions through the API, on SQLite and PostgreSQL: one aggregate's history
with its whole envelope, its state at a version or a time with a diff, and everything one
request caused across aggregates."""

from __future__ import annotations

from typing import Any

import orjson

from domain.conversations.aggregates import ArchivedMessage
from domain.settlement.aggregates import RuleSet
from tests.e2e.conftest import PHONE, Api, MakeApi, assert_error
from tests.e2e.test_archive_api import CUSTOMER_EXT, ingest, line
from tests.e2e.test_settlement_api import LAST_WEEK, RULES, configure, item, payee
from tests.e2e.test_tickets_api import open_ticket, setup


def test_history_time_travel_and_correlations(make_api: MakeApi) -> None:
    api = make_api()
    configure(api)  # rule set "installers", version 1
    revised: dict[str, Any] = {
        **RULES,
        "components": [{**RULES["components"][0], "by_service_type": {"smart_lock": "D"}}],
    }
    r = api.client.put(
        "/v1/settlement/rule-sets/installers",
        json={"definition": revised, "expected_version": 1},
        headers={"Authorization": f"Bearer {api.admin.token}", "X-Correlation-Id": "req-rev"},
    )
    assert r.status_code == 201, r.text
    auditor = api.as_role("auditor")
    rule_set = str(RuleSet.create_id("installers"))

    events = auditor.get(
        f"/v1/audit/aggregates/{rule_set}/history", params={"min_position": api.head()}
    ).json()["events"]
    assert [(e["version"], e["event"]) for e in events] == [
        (1, "RuleSetPublished"),
        (2, "RuleSetRevised"),
    ]
    assert events[1]["correlation_id"] == "req-rev"
    assert events[1]["actor"] == "user:admin" and events[1]["source"] == "api"
    assert events[1]["data"]["rule_version"] == 2
    assert events[0]["position"] < events[1]["position"]
    assert events[0]["occurred_at"] <= events[0]["recorded_at"]

    first = auditor.get(f"/v1/audit/aggregates/{rule_set}", params={"version": 1}).json()
    assert first["type"] == "RuleSet" and first["version"] == 1
    assert len(first["state"]["versions"]) == 1
    now = auditor.get(f"/v1/audit/aggregates/{rule_set}", params={"diff_from": 1}).json()
    assert now["version"] == 2 and set(now["diff"]["changed"]) == {"versions"}
    assert now["diff"]["added"] == {} and now["diff"]["removed"] == {}
    # As the store held it when the first version was recorded: version 1.
    then = auditor.get(
        f"/v1/audit/aggregates/{rule_set}", params={"as_of": events[0]["recorded_at"]}
    ).json()
    assert then["version"] == 1 and then["state"] == first["state"]

    # One request, two aggregates: a week's payouts to two payees.
    payee(api, "lock-master")
    payee(api, "door-master")
    assert item(api, "j1", "2026-11-10T10:00:00+08:00").status_code == 201
    body = {
        "source": "j2",
        "kind": "service",
        "payee_id": "door-master",
        "occurred_at": "2026-11-11T10:00:00+08:00",
        "service_type": "smart_lock",
    }
    assert api.admin.post("/v1/settlement/items", body).status_code == 201
    assert (
        api.admin.post(f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/close").status_code
        == 201
    )
    paid = api.client.post(
        f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/payouts",
        headers={"Authorization": f"Bearer {api.admin.token}", "X-Correlation-Id": "req-pay"},
    )
    assert paid.status_code == 201, paid.text
    caused = auditor.get(
        "/v1/audit/correlations/req-pay", params={"min_position": api.head()}
    ).json()["events"]
    assert sorted(e["event"] for e in caused) == [
        "PayoutIssued",
        "PayoutIssued",
        "PayoutSettled",
        "PayoutSettled",
    ]
    assert len({e["aggregate_id"] for e in caused}) == 2
    assert [e["position"] for e in caused] == sorted(e["position"] for e in caused)

    # Who may ask, and what is not an answer.
    assert_error(
        api.as_staff("x").get(f"/v1/audit/aggregates/{rule_set}/history"), 403, "forbidden"
    )
    assert_error(auditor.get("/v1/audit/aggregates/not-a-uuid/history"), 422, "invalid_input")
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_error(auditor.get(f"/v1/audit/aggregates/{unknown}/history"), 404, "not_found")
    assert_error(
        auditor.get(f"/v1/audit/aggregates/{rule_set}", params={"version": 9}), 404, "not_found"
    )
    assert_error(
        auditor.get(f"/v1/audit/aggregates/{rule_set}", params={"as_of": "2026-11-10T00:00:00"}),
        422,
        "invalid_input",
        "as_of",
    )


# --- personal data in clear, for cleared roles, on record ------------------------------------

PURPOSE = "投诉复核：核对客户身份"


def _phone(events: list[dict[str, Any]]) -> str:
    (added,) = [e for e in events if e["event"] == "CustomerAdded"]
    (phone,) = [i["value"] for i in added["data"]["identities"] if i["kind"] == "phone"]
    return phone  # type: ignore[no-any-return]


def _data(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [e["data"] for e in events if e["event"] == name]
    return found  # type: ignore[no-any-return]


def _personal_data(api: Api) -> dict[str, str]:
    """A customer with a phone and a WeCom id, a ticket of theirs with a comment, a ticket
    with no customer, and an archived message from them."""
    setup(api)
    api.admin.staff("zhang.wei", department="east")
    customer = api.customer(
        [("phone", PHONE), ("wecom_external_userid", CUSTOMER_EXT)], owner="zhang.wei"
    )
    cid = customer["id"]
    theirs = open_ticket(api, customer_id=cid)["id"]
    r = api.client.post(
        f"/v1/tickets/{theirs}/comments",
        json={"text": "客户说周六下午在家，电话先联系"},
        headers={"Authorization": f"Bearer {api.admin.token}", "X-Correlation-Id": "req-note"},
    )
    assert r.status_code == 201, r.text
    walk_in = open_ticket(api, description="门店来电：柜机不制冷，上门检修")["id"]
    assert (
        ingest(
            api, [line("msg-9", 9, CUSTOMER_EXT, ["zhang.wei"], "我家地址是西湖区文三路")]
        ).status_code
        == 201
    )
    return {
        "customer": cid,
        "ticket": theirs,
        "walk_in": walk_in,
        "message": str(ArchivedMessage.create_id("msg-9")),
    }


def test_personal_data_is_revealed_to_cleared_roles_with_a_purpose_and_the_read_is_logged(
    make_api: MakeApi,
) -> None:
    api = make_api()
    ids = _personal_data(api)
    auditor = api.as_role("auditor")
    head = {"min_position": api.head()}

    # Without asking: as stored, sealed.
    plain = auditor.get(f"/v1/audit/aggregates/{ids['customer']}/history", params=head).json()
    assert _phone(plain["events"]).startswith("pd1.") and "revealed" not in plain
    assert PHONE not in orjson.dumps(plain).decode()

    # Asked for, with a purpose: in clear, the paths named, the read on record.
    ask = {**head, "reveal": "true", "purpose": PURPOSE}
    r = auditor.get(f"/v1/audit/aggregates/{ids['customer']}/history", params=ask)
    assert r.status_code == 200, r.text
    body = r.json()
    assert _phone(body["events"]) == PHONE
    assert body["erased"] == [] and body["unopened"] == []
    assert len(body["revealed"]) == 1 and body["revealed"][0].startswith("events[0].data.")
    assert isinstance(body["access_position"], int)

    state = auditor.get(f"/v1/audit/aggregates/{ids['customer']}", params=ask).json()
    assert {"kind": "phone", "value": PHONE} in state["state"]["identities"]
    assert state["revealed"] and state["access_position"] > body["access_position"]

    ticket = auditor.get(f"/v1/audit/aggregates/{ids['ticket']}/history", params=ask).json()
    assert (
        _data(ticket["events"], "TicketOpened")["summary"] == "美的空调挂机，周六上门安装，需要打孔"
    )
    assert _data(ticket["events"], "TicketCommented")["text"] == "客户说周六下午在家，电话先联系"
    walk_in = auditor.get(f"/v1/audit/aggregates/{ids['walk_in']}/history", params=ask).json()
    assert _data(walk_in["events"], "TicketOpened")["summary"] == "门店来电：柜机不制冷，上门检修"

    message = auditor.get(f"/v1/audit/aggregates/{ids['message']}/history", params=ask).json()
    content = orjson.loads(_data(message["events"], "ArchivedMessageArchived")["sealed"])
    assert content == {"text": {"content": "我家地址是西湖区文三路"}}

    # Across aggregates: everything one request caused, each value opened by its own key.
    admin = api.admin.get("/v1/audit/correlations/req-note", params=ask).json()
    assert [e["data"]["text"] for e in admin["events"]] == ["客户说周六下午在家，电话先联系"]

    # Each read is in the archive access log: who, in what role, why, what was asked.
    log = auditor.get(
        "/v1/audit/archive-access", params={"min_position": admin["access_position"]}
    ).json()["items"]
    reads = [i for i in log if i["query"].get("view", "").startswith("audit.")]
    assert [(i["reader"], i["role"], i["purpose"]) for i in reads] == [
        ("user:auditor", "auditor", PURPOSE)
    ] * 5 + [("user:admin", "admin", PURPOSE)]
    assert reads[0]["query"] == {"view": "audit.history", "aggregate_id": ids["customer"]}
    assert reads[1]["query"] == {"view": "audit.state", "aggregate_id": ids["customer"]}
    assert reads[-1]["query"] == {"view": "audit.correlation", "correlation_id": "req-note"}
    assert [i["message_ids"] for i in reads] == [[], [], [], [], ["msg-9"], []]
    by_message = auditor.get("/v1/audit/archive-access", params={"msgid": "msg-9"}).json()
    assert [i["query"].get("view") for i in by_message["items"]] == ["audit.history"]


def test_reveal_refusals_record_nothing(make_api: MakeApi) -> None:
    api = make_api()
    ids = _personal_data(api)
    auditor = api.as_role("auditor")
    history = f"/v1/audit/aggregates/{ids['customer']}/history"
    paths = [history, f"/v1/audit/aggregates/{ids['customer']}", "/v1/audit/correlations/req-note"]
    with api.records_nothing():
        for path in paths:
            for purpose in ({}, {"purpose": "x"}, {"purpose": "   "}, {"purpose": "长" * 201}):
                r = auditor.get(path, params={"reveal": "true", **purpose})
                assert_error(r, 422, "invalid_input", "purpose")
        for client in (
            api.as_staff("zhang.wei"),
            api.as_manager("east"),
            api.as_role("regulator"),
        ):
            for path in paths:
                r = client.get(path, params={"reveal": "true", "purpose": PURPOSE})
                assert_error(r, 403, "forbidden")
                assert_error(client.get(path), 403, "forbidden")
    log = auditor.get("/v1/audit/archive-access", params={"min_position": api.head()}).json()
    assert log["items"] == []


def test_an_erased_customers_data_shows_as_erased_and_the_read_still_succeeds(
    make_api: MakeApi,
) -> None:
    api = make_api()
    ids = _personal_data(api)
    r = api.admin.post(
        f"/v1/customers/{ids['customer']}/erasure-requests", {"received_via": "phone"}
    )
    assert r.status_code == 202 and r.json()["status"] == "erased", r.text
    auditor = api.as_role("auditor")
    ask = {"min_position": api.head(), "reveal": "true", "purpose": PURPOSE}

    body = auditor.get(f"/v1/audit/aggregates/{ids['customer']}/history", params=ask).json()
    assert _phone(body["events"]) == "[erased]"
    assert len(body["erased"]) == 1 and body["revealed"] == [] and body["unopened"] == []
    assert PHONE not in orjson.dumps(body).decode()
    ticket = auditor.get(f"/v1/audit/aggregates/{ids['ticket']}/history", params=ask).json()
    assert _data(ticket["events"], "TicketOpened")["summary"] == "[erased]"
    assert _data(ticket["events"], "TicketCommented")["text"] == "[erased]"
    assert len(ticket["erased"]) == 2
    message = auditor.get(f"/v1/audit/aggregates/{ids['message']}/history", params=ask).json()
    assert _data(message["events"], "ArchivedMessageArchived")["sealed"] == "[erased]"
    # Nothing of it was shown: the access names no message.
    log = auditor.get(
        "/v1/audit/archive-access", params={"min_position": message["access_position"]}
    ).json()["items"]
    assert log[-1]["query"]["aggregate_id"] == ids["message"] and log[-1]["message_ids"] == []
    # Someone else's data is still readable.
    walk_in = auditor.get(f"/v1/audit/aggregates/{ids['walk_in']}/history", params=ask).json()
    assert _data(walk_in["events"], "TicketOpened")["summary"] == "门店来电：柜机不制冷，上门检修"
