"""The auditor's questions through the API, on SQLite and PostgreSQL: one aggregate's history
with its whole envelope, its state at a version or a time with a diff, and everything one
request caused across aggregates."""

from __future__ import annotations

from typing import Any

from domain.settlement.aggregates import RuleSet
from tests.e2e.conftest import MakeApi, assert_error
from tests.e2e.test_settlement_api import LAST_WEEK, RULES, configure, item, payee


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
