"""Automation rules through the API, on the embedded default and on PostgreSQL: HQ publishes a
rule against the version last seen; a completed Taobao trade pushed as Taobao sends it tags the
buyer's customer and sends a WeCom message by itself, once; managers pause, resume and sweep;
the runs and the outbox show what happened; refusals 403/404/409/422 record nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.scope import Scope
from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.e2e.test_orders_api import SIGNING, fixture, push

RULE: dict[str, Any] = {
    "trigger": {"kind": "event", "event": "order_completed"},
    "actions": [
        {"add_tags": ["复购关怀"]},
        {"send_message": {"channel": "wecom", "template": "thanks", "params": {"gift": "10"}}},
    ],
}
FROM = "2026-01-01T00:00:00+00:00"  # before the fixtures' trades


def publish(api: Api, key: str, body: dict[str, Any], client: Any = None) -> Any:
    return (client or api.admin).put(f"/v1/automation/rules/{key}", body)


def test_a_completed_trade_fires_the_rule_once_by_itself(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    r = publish(api, "thanks", {"definition": RULE, "effective_from": FROM, "expected_version": 0})
    assert r.status_code == 201, r.text
    assert r.json()["rule_version"] == 1
    api.admin.staff("zhang.wei", department="east")
    cid = api.customer(
        [("phone", "13800138000"), ("wecom_external_userid", "wmE2E")], owner="zhang.wei"
    )["id"]
    assert push(api, "taobao", fixture("taobao", "trade_finished")).status_code == 200
    api.settle()

    manager = api.as_manager("east")
    [run] = manager.get("/v1/automation/runs", params={"customer_id": cid}).json()["items"]
    assert (run["rule_key"], run["status"], run["failed"]) == ("thanks", "done", 0)
    assert [o["action"] for o in run["outcomes"]] == ["add_tags", "send_message"]
    [message] = manager.get("/v1/automation/outbox", params={"status": "sent"}).json()["items"]
    assert (message["customer_id"], message["channel"], message["attempts"]) == (cid, "wecom", 1)
    gateway = api.container.outreach_gateway
    assert gateway is not None and [m[:3] for m in gateway.messages()] == [
        ("wecom", "wmE2E", "thanks")
    ]
    customer = api.container.customers.get_customer(UUID(cid), Scope(role="admin"))
    assert "复购关怀" in customer.tags

    shown = api.as_staff("zhang.wei").get("/v1/automation/rules/thanks").json()
    assert (shown["in_force"], shown["paused"]) == (1, False)
    assert shown["versions"][0]["definition"] == RULE
    assert (
        manager.post("/v1/automation/rules/thanks/pause", {"reason": "文案审核"}).status_code == 200
    )
    assert api.admin.get("/v1/automation/rules/thanks").json()["paused"] is True
    assert manager.post("/v1/automation/rules/thanks/resume").status_code == 200

    # A sweep (nothing of time here), twice: the message is not sent again.
    for _ in range(2):
        r = manager.post("/v1/automation/sweeps", {"at": "2026-04-01T00:00:00+08:00"})
        assert r.status_code == 200, r.text
        assert r.json()["fired"] == 0
    assert len(gateway.messages()) == 1 and len(gateway.calls) == 1


def test_a_birthday_recorded_through_the_api_fires_its_rule_on_the_day(api: Api) -> None:
    rule = {"trigger": {"kind": "time", "birthday": True, "timezone": "Asia/Shanghai"},
            "actions": [{"add_tags": ["生日关怀"]}]}  # fmt: skip
    r = publish(api, "birthday", {"definition": rule, "effective_from": FROM})
    assert r.status_code == 201, r.text
    api.admin.staff("zhang.wei", department="east")
    cid = api.customer([("wecom_external_userid", "wmBirthday")], owner="zhang.wei")["id"]
    staff = api.as_staff("zhang.wei")
    r = staff.put(f"/v1/customers/{cid}/birthday", {"birthday": "1988-11-23"})
    assert r.status_code == 202, r.text
    with api.records_nothing():
        assert (
            staff.put(f"/v1/customers/{cid}/birthday", {"birthday": "1988-11-23"}).json()[
                "position"
            ]
            is None
        )  # the same date again
        for bad in ("1988-02-30", "2999-01-01", "1850-01-01", "23/11/1988"):
            assert_error(
                staff.put(f"/v1/customers/{cid}/birthday", {"birthday": bad}),
                422, "invalid_input", field="birthday",
            )  # fmt: skip
        assert_error(
            api.as_staff("li.na").put(f"/v1/customers/{cid}/birthday", {"birthday": "1988-11-23"}),
            403, "forbidden",
        )  # fmt: skip
    api.settle()
    manager = api.as_manager("east")
    for at, fired in (("2026-11-22T12:00:00+08:00", 0), ("2026-11-23T09:00:00+08:00", 1),
                      ("2026-11-23T18:00:00+08:00", 0)):  # fmt: skip
        r = manager.post("/v1/automation/sweeps", {"at": at})
        assert r.status_code == 200, r.text
        assert r.json()["fired"] == fired, at
        api.settle()
    customer = api.container.customers.get_customer(UUID(cid), Scope(role="admin"))
    assert "生日关怀" in customer.tags
    # The portrait's timeline: the date in clear for who may see personal data, else masked.
    for client, shown in ((staff, "1988-11-23"), (manager, "**********")):
        timeline = client.get(f"/v1/customers/{cid}/portrait").json()["timeline"]
        [entry] = [t for t in timeline if t["event"] == "CustomerBirthdayRecorded"]
        assert entry["data"]["sealed"] == shown


def test_refusals_record_nothing(api: Api) -> None:
    body = {"definition": RULE, "effective_from": FROM, "expected_version": 0}
    assert publish(api, "thanks", body).status_code == 201
    with api.records_nothing():
        assert_error(publish(api, "thanks", body), 409, "stale_version")
        bad = {**RULE, "actions": [{"send_message": {"channel": "sms", "template": "t"}}]}
        assert_error(
            publish(api, "thanks", {"definition": bad}),
            422, "invalid_input", field="actions[0].send_message.channel",
        )  # fmt: skip
        assert_error(
            publish(api, "other", {"definition": {**RULE, "trigger": {"kind": "time",
                                                                      "silent_days": 0}}}),
            422, "invalid_input", field="trigger.silent_days",
        )  # fmt: skip
        assert_error(publish(api, "x", body, api.as_manager("east")), 403, "forbidden")
        assert_error(publish(api, "bad key!", body), 422, "invalid_input", field="key")
        staff = api.as_staff("li.na")
        assert_error(staff.post("/v1/automation/rules/thanks/pause"), 403, "forbidden")
        assert_error(staff.get("/v1/automation/runs"), 403, "forbidden")
        assert_error(staff.post("/v1/automation/sweeps"), 403, "forbidden")
        assert_error(api.admin.post("/v1/automation/rules/nope/pause"), 404, "not_found")
        assert_error(api.admin.post("/v1/automation/rules/thanks/resume"), 409, "rule_not_paused")
        assert_error(
            api.admin.post("/v1/automation/sweeps", {"at": "2026-04-01T00:00:00"}),
            422, "invalid_input", field="at",
        )  # fmt: skip
        assert_error(
            api.admin.get("/v1/automation/runs", params={"rule_key": "nope"}), 404, "not_found"
        )
