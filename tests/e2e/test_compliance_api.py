"""Compliance over HTTP: shipped and tenant packs, versions, and the alerts they raise."""

from __future__ import annotations

from typing import Any

import orjson

from tests.e2e.conftest import Api


def ingest(api: Api, records: list[dict[str, Any]]) -> Any:
    r = api.admin.client.post(
        "/v1/archive/batches",
        content=b"\n".join(orjson.dumps(x) for x in records),
        headers={"Authorization": f"Bearer {api.admin.token}"},
    )
    assert r.status_code == 201, r.text
    return r.json()


def text(msgid: str, content: str, sender: str = "zhang.wei", at: int = 1) -> dict[str, Any]:
    return {
        "msgid": msgid,
        "action": "send",
        "from": sender,
        "tolist": ["wmCustomerC0001"],
        "roomid": "",
        "msgtime": 1_767_000_000_000 + at,
        "msgtype": "text",
        "text": {"content": content},
    }


def alerts(api: Api, client: Any = None, **params: Any) -> list[dict[str, Any]]:
    r = (client or api.admin).get(
        "/v1/compliance/alerts", params={"min_position": api.container.head(), **params}
    )
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def test_a_forbidden_promise_raises_an_alert_naming_the_pack_version(api: Api) -> None:
    assert api.admin.post("/v1/compliance/packs/shipped").json()["versions"] == {
        "finance": 1,
        "education": 1,
        "medical": 1,
    }
    ingest(api, [text("c-1", "这个理财保-本，零 风 险"), text("c-2", "您好", at=2)])
    found = alerts(api)
    assert {
        (a["msgid"], a["word"], a["pack_id"], a["pack_version"], a["severity"]) for a in found
    } == {("c-1", "保本", "finance", 1, "critical"), ("c-1", "零风险", "finance", 1, "critical")}
    assert all("理财" not in orjson.dumps(a).decode() for a in found)  # no content in alerts


def test_a_revised_pack_is_a_new_version_and_later_hits_name_it(api: Api) -> None:
    first = api.admin.post(
        "/v1/compliance/packs",
        {"pack_id": "acme-words", "industry": "tenant", "rules": [{"word": "返现"}]},
    )
    assert first.status_code == 201 and first.json()["version"] == 1
    ingest(api, [text("t-1", "下单返现")])
    second = api.admin.post(
        "/v1/compliance/packs",
        {
            "pack_id": "acme-words",
            "industry": "tenant",
            "rules": [{"word": "返现"}, {"word": "翻倍", "severity": "high"}],
        },
    )
    assert second.json()["version"] == 2
    ingest(api, [text("t-2", "收益翻倍还返现", at=5)])
    seen = {(a["msgid"], a["word"], a["pack_version"]) for a in alerts(api)}
    assert seen == {("t-1", "返现", 1), ("t-2", "返现", 2), ("t-2", "翻倍", 2)}


def test_reingesting_a_message_raises_no_second_alert(api: Api) -> None:
    api.admin.post("/v1/compliance/packs/shipped")
    ingest(api, [text("d-1", "包录取")])
    head = api.container.head()
    again = ingest(api, [text("d-1", "包录取")])
    assert again["duplicates"] == 1 and api.container.head() == head
    assert len(alerts(api)) == 1


def test_a_bad_rule_is_422_naming_it_and_records_nothing(api: Api) -> None:
    head = api.container.head()
    r = api.admin.post(
        "/v1/compliance/packs",
        {"pack_id": "x", "industry": "t", "rules": [{"word": "ok"}, {"word": ""}]},
    )
    assert r.status_code == 422 and r.json()["field"] == "rules.1.word"
    r = api.admin.post(
        "/v1/compliance/packs",
        {"pack_id": "x", "industry": "t", "rules": [{"word": "ok", "severity": "dire"}]},
    )
    assert r.status_code == 422 and "severity" in r.json()["field"]
    assert api.container.head() == head


def test_who_may_see_alerts_and_change_packs(api: Api) -> None:
    api.admin.staff("zhang.wei", department="east")
    api.admin.staff("li.na", department="west")
    api.admin.post("/v1/compliance/packs/shipped")
    ingest(api, [text("e-1", "保本", "zhang.wei"), text("w-1", "稳赚", "li.na", at=2)])
    east = api.as_manager("east")
    assert [a["msgid"] for a in alerts(api, east)] == ["e-1"]
    assert len(alerts(api, api.as_role("auditor"))) == 2
    assert api.as_staff("zhang.wei").get("/v1/compliance/alerts").status_code == 403
    assert east.post("/v1/compliance/packs/shipped").status_code == 403


def raised_alert(api: Api, sender: str = "zhang.wei") -> dict[str, Any]:
    api.admin.post("/v1/compliance/packs/shipped")
    ingest(api, [text("w-9", "稳赚不赔", sender)])
    (found,) = [a for a in alerts(api) if a["word"] == "稳赚不赔"]
    return found


def test_an_alert_is_acknowledged_then_resolved_with_a_sealed_note(api: Api) -> None:
    alert = raised_alert(api)
    path = f"/v1/compliance/alerts/{alert['violation_id']}"
    ack = api.admin.post(f"{path}/acknowledge", headers={"If-Match": str(alert["version"])})
    assert ack.status_code == 202, ack.text
    done = api.admin.post(f"{path}/resolve", {"note": "已与员工谈话，客户已澄清"})
    assert done.status_code == 202, done.text
    (after,) = [
        a for a in alerts(api, status="resolved") if a["violation_id"] == alert["violation_id"]
    ]
    assert after["acknowledged_by"] == "user:admin" and after["resolved_by"] == "user:admin"
    assert after["note"] == "已与员工谈话，客户已澄清"
    events = [
        e for e in api.container.read_log(0, 10_000) if e.name == "ComplianceViolationResolved"
    ]
    assert events and "谈话" not in orjson.dumps(events[0].data).decode()


def test_a_resolved_alert_cannot_be_resolved_or_acknowledged_again(api: Api) -> None:
    alert = raised_alert(api)
    path = f"/v1/compliance/alerts/{alert['violation_id']}"
    assert api.admin.post(f"{path}/resolve", {"note": "误报，关闭"}).status_code == 202
    head = api.container.head()
    again = api.admin.post(f"{path}/resolve", {"note": "再次关闭"})
    assert again.status_code == 409 and again.json()["error"] == "alert_resolved"
    assert api.admin.post(f"{path}/acknowledge").status_code == 409
    assert api.container.head() == head


def test_a_stale_version_or_a_short_note_records_nothing(api: Api) -> None:
    alert = raised_alert(api)
    path = f"/v1/compliance/alerts/{alert['violation_id']}"
    head = api.container.head()
    stale = api.admin.post(f"{path}/acknowledge", headers={"If-Match": "7"})
    assert stale.status_code == 409 and stale.json()["error"] == "stale_version"
    short = api.admin.post(f"{path}/resolve", {"note": "ok"})
    assert short.status_code == 422 and short.json()["field"] == "note"
    assert api.container.head() == head


def test_managers_handle_only_their_departments_alerts(api: Api) -> None:
    api.admin.staff("zhang.wei", department="east")
    alert = raised_alert(api)
    path = f"/v1/compliance/alerts/{alert['violation_id']}/acknowledge"
    assert api.as_manager("west").post(path).status_code == 403
    assert api.as_staff("zhang.wei").post(path).status_code == 403
    assert api.as_manager("east").post(path).status_code == 202
