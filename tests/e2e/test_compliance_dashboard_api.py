"""/v1/dashboards/compliance: alerts per staff member, department, rule and UTC day.

The story: east has zhang.wei and wang.fang, west has li.na. Nine alerts from shipped packs
and a tenant pack published twice; one message is a customer's, attributed to the staff
member they wrote to; one is sent late on the 10th UTC (the 11th in Beijing).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from infra.bootstrap import bootstrap
from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.e2e.test_compliance_api import alerts, ingest

DAY1, DAY2 = "2026-01-10", "2026-01-11"
SEVERITY_KEYS = ("low", "medium", "high", "critical")


def at(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


def msg(msgid: str, sender: str, to: str, content: str, sent: str) -> dict[str, Any]:
    return {
        "msgid": msgid,
        "action": "send",
        "from": sender,
        "tolist": [to],
        "roomid": "",
        "msgtime": at(sent),
        "msgtype": "text",
        "text": {"content": content},
    }


def acme(api: Api, severity: str) -> None:
    rules = [{"word": "返现", "severity": severity}]
    r = api.admin.post(
        "/v1/compliance/packs", {"pack_id": "acme", "industry": "tenant", "rules": rules}
    )
    assert r.status_code == 201, r.text


def seed(api: Api) -> None:
    api.admin.staff("zhang.wei", department="east")
    api.admin.staff("wang.fang", department="east")
    api.admin.staff("li.na", department="west")
    assert api.admin.post("/v1/compliance/packs/shipped").status_code == 201
    acme(api, "medium")
    ingest(
        api,
        [
            msg("e-1", "zhang.wei", "wmCustomerA001", "保本，零风险", f"{DAY1}T10:00:00+00:00"),
            # a customer's message: it counts for the staff member it was sent to
            msg("e-2", "wmCustomerA001", "zhang.wei", "听说有内幕消息", f"{DAY1}T23:30:00+00:00"),
            msg("e-3", "wang.fang", "wmCustomerB001", "包过，不过退款", f"{DAY2}T09:00:00+00:00"),
            msg("w-1", "li.na", "wmCustomerC001", "保本", f"{DAY2}T10:00:00+00:00"),
            msg("w-2", "wmCustomerC001", "li.na", "真的立竿见影吗", f"{DAY2}T11:00:00+00:00"),
            msg("t-1", "li.na", "wmCustomerC001", "下单返现", f"{DAY2}T12:00:00+00:00"),
            msg("n-1", "li.na", "wmCustomerC001", "您好", f"{DAY2}T12:30:00+00:00"),
        ],
    )
    acme(api, "high")  # version 2: the same word, now high
    ingest(api, [msg("t-2", "zhang.wei", "wmCustomerA001", "返现", f"{DAY2}T13:00:00+00:00")])


def board(api: Api, client: Any = None, **params: Any) -> dict[str, Any]:
    r = (client or api.admin).get(
        "/v1/dashboards/compliance", {"min_position": api.head(), **params}
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def counts(
    total: int,
    *,
    open: int | None = None,
    acknowledged: int = 0,
    resolved: int = 0,
    **severities: int,
) -> dict[str, Any]:
    return {
        "total": total,
        "open": total - acknowledged - resolved if open is None else open,
        "acknowledged": acknowledged,
        "resolved": resolved,
        "by_severity": {s: severities.get(s, 0) for s in SEVERITY_KEYS},
    }


def test_by_staff_counts_each_alert_for_its_staff_member_and_department(api: Api) -> None:
    seed(api)

    result = board(api, by="staff")

    assert result["by"] == "staff"
    assert result["rows"] == [
        {"staff_id": "zhang.wei", "department": "east", **counts(4, critical=2, high=2)},
        {"staff_id": "li.na", "department": "west", **counts(3, critical=1, medium=2)},
        {"staff_id": "wang.fang", "department": "east", **counts(2, critical=1, medium=1)},
    ]
    assert result["totals"] == counts(9, critical=4, high=2, medium=3)


def test_by_department(api: Api) -> None:
    seed(api)

    assert board(api, by="department")["rows"] == [
        {"department": "east", **counts(6, critical=3, high=2, medium=1)},
        {"department": "west", **counts(3, critical=1, medium=2)},
    ]


def test_by_rule_names_the_pack_versions_that_found_it_and_its_latest_severity(api: Api) -> None:
    seed(api)

    rows = board(api, by="rule")["rows"]

    summary = [
        (r["pack_id"], r["word"], r["versions"], r["severity"], r["total"], r["by_severity"])
        for r in rows
    ]
    one = {s: 0 for s in SEVERITY_KEYS}
    assert summary == [
        ("acme", "返现", [1, 2], "high", 2, {**one, "medium": 1, "high": 1}),
        ("finance", "保本", [1], "critical", 2, {**one, "critical": 2}),
        ("education", "不过退款", [1], "medium", 1, {**one, "medium": 1}),
        ("education", "包过", [1], "critical", 1, {**one, "critical": 1}),
        ("finance", "内幕消息", [1], "high", 1, {**one, "high": 1}),
        ("finance", "零风险", [1], "critical", 1, {**one, "critical": 1}),
        ("medical", "立竿见影", [1], "medium", 1, {**one, "medium": 1}),
    ]
    assert all(r["open"] == r["total"] for r in rows)


def test_by_day_uses_the_utc_date_of_the_message_in_day_order(api: Api) -> None:
    seed(api)

    assert board(api, by="day")["rows"] == [
        {"day": DAY1, **counts(3, critical=2, high=1)},  # e-2 was the 11th in Beijing
        {"day": DAY2, **counts(6, critical=2, high=1, medium=3)},
    ]


def test_since_is_inclusive_until_exclusive_and_offsets_are_honoured(api: Api) -> None:
    seed(api)

    window = board(
        api,
        by="day",
        since="2026-01-11T07:30:00+08:00",  # e-2 exactly
        until=f"{DAY2}T10:00:00Z",  # w-1 exactly: excluded
    )

    assert window["rows"] == [
        {"day": DAY1, **counts(1, high=1)},
        {"day": DAY2, **counts(2, critical=1, medium=1)},
    ]
    assert board(api, by="day", since=f"{DAY2}T13:00:01Z")["rows"] == []


def test_severity_status_and_pack_filters(api: Api) -> None:
    seed(api)

    critical = board(api, by="staff", severity="critical")["rows"]
    assert [(r["staff_id"], r["total"]) for r in critical] == [
        ("zhang.wei", 2),
        ("li.na", 1),
        ("wang.fang", 1),
    ]
    acme_rows = board(api, by="rule", pack_id="acme")["rows"]
    assert [(r["word"], r["total"]) for r in acme_rows] == [("返现", 2)]
    assert board(api, by="staff", status="resolved")["rows"] == []
    assert board(api, by="department", pack_id="medical")["rows"] == [
        {"department": "west", **counts(1, medium=1)}
    ]


def test_acknowledging_and_resolving_move_counts_between_status_columns(api: Api) -> None:
    seed(api)
    by_key = {(a["msgid"], a["word"]): a["violation_id"] for a in alerts(api)}
    path = "/v1/compliance/alerts/{}/{}"
    ack = api.admin.post(path.format(by_key["e-1", "保本"], "acknowledge"))
    assert ack.status_code == 202, ack.text
    for key in (("e-1", "零风险"), ("e-3", "包过")):
        done = api.admin.post(path.format(by_key[key], "resolve"), {"note": "已处理，已复核"})
        assert done.status_code == 202, done.text

    rows = {r["staff_id"]: r for r in board(api, by="staff")["rows"]}

    assert rows["zhang.wei"] == {
        "staff_id": "zhang.wei",
        "department": "east",
        **counts(4, open=2, acknowledged=1, resolved=1, critical=2, high=2),
    }
    assert rows["wang.fang"]["open"] == 1 and rows["wang.fang"]["resolved"] == 1
    assert rows["li.na"]["open"] == 3
    east = board(api, by="department", status="open")["rows"]
    assert [(r["department"], r["total"], r["open"]) for r in east] == [
        ("east", 3, 3),
        ("west", 3, 3),
    ]
    resolved = board(api, by="rule", status="resolved")["rows"]
    assert [(r["word"], r["resolved"]) for r in resolved] == [("包过", 1), ("零风险", 1)]


def test_a_manager_sees_only_their_department(api: Api) -> None:
    seed(api)
    east = api.as_manager("east")

    assert [(r["staff_id"], r["total"]) for r in board(api, east, by="staff")["rows"]] == [
        ("zhang.wei", 4),
        ("wang.fang", 2),
    ]
    assert [(r["department"], r["total"]) for r in board(api, east, by="department")["rows"]] == [
        ("east", 6)
    ]
    west = board(api, api.as_manager("west"), by="day")
    assert [(r["day"], r["total"]) for r in west["rows"]] == [(DAY2, 3)]
    assert west["totals"]["total"] == 3


def test_staff_see_only_their_own_alerts_by_day_or_by_rule(api: Api) -> None:
    seed(api)
    li_na = api.as_staff("li.na")

    assert board(api, li_na, by="day")["rows"] == [{"day": DAY2, **counts(3, critical=1, medium=2)}]
    rules = board(api, li_na, by="rule")["rows"]
    assert [(r["pack_id"], r["word"], r["total"]) for r in rules] == [
        ("acme", "返现", 1),
        ("finance", "保本", 1),
        ("medical", "立竿见影", 1),
    ]
    zhang = board(api, api.as_staff("zhang.wei"), by="day")
    assert zhang["totals"]["total"] == 4
    for by in ("staff", "department"):
        assert_error(li_na.get("/v1/dashboards/compliance", {"by": by}), 403, "forbidden")


def test_admins_and_auditors_see_everything_regulators_and_strangers_nothing(api: Api) -> None:
    seed(api)

    assert board(api, api.as_role("auditor"), by="staff") == board(api, by="staff")
    regulator = api.as_role("regulator")
    with api.records_nothing():
        assert_error(regulator.get("/v1/dashboards/compliance", {"by": "rule"}), 403, "forbidden")
    assert_error(api.client.get("/v1/dashboards/compliance?by=rule"), 401, "unauthorized")


@pytest.mark.parametrize("field", ["since", "until"])
def test_a_time_without_a_timezone_is_a_422_naming_it(api: Api, field: str) -> None:
    r = api.admin.get("/v1/dashboards/compliance", {"by": "day", field: "2026-01-10T00:00:00"})
    assert_error(r, 422, "invalid_input", field=field)


def test_by_is_required_and_must_be_known(api: Api) -> None:
    assert_error(api.admin.get("/v1/dashboards/compliance"), 422, "invalid_input", field="by")
    r = api.admin.get("/v1/dashboards/compliance", {"by": "region"})
    assert_error(r, 422, "invalid_input", field="by")
    r = api.admin.get("/v1/dashboards/compliance", {"by": "day", "status": "closed"})
    assert_error(r, 422, "invalid_input", field="status")


def test_the_dashboard_is_empty_before_any_alert(api: Api) -> None:
    shown = board(api, by="rule")
    assert shown.pop("as_of")["position"] == api.head()  # as of the head: nothing missed
    assert shown == {"by": "rule", "rows": [], "totals": counts(0)}


def test_the_dashboard_reads_its_own_writes(make_api: MakeApi) -> None:
    api = make_api(poll_interval=0.25)
    api.admin.staff("zhang.wei", department="east")
    api.admin.post("/v1/compliance/packs/shipped")
    position = ingest(api, [msg("r-1", "zhang.wei", "wmCustomerA001", "保本", f"{DAY1}T01:00Z")])[
        "position"
    ]

    r = api.admin.get(
        "/v1/dashboards/compliance", {"by": "staff"}, headers={"X-Min-Position": str(position)}
    )

    assert r.status_code == 200, r.text
    assert [(x["staff_id"], x["total"]) for x in r.json()["rows"]] == [("zhang.wei", 1)]


def test_the_alert_list_filters_by_staff_and_a_manager_sees_customers_messages_too(
    api: Api,
) -> None:
    seed(api)

    mine = alerts(api, staff_id="zhang.wei")
    assert sorted((a["msgid"], a["word"]) for a in mine) == [
        ("e-1", "保本"),
        ("e-1", "零风险"),
        ("e-2", "内幕消息"),
        ("t-2", "返现"),
    ]
    assert {a["staff_id"] for a in mine} == {"zhang.wei"}
    east = alerts(api, api.as_manager("east"))
    assert "e-2" in {a["msgid"] for a in east}  # the customer's message to zhang.wei
    assert {a["staff_id"] for a in east} == {"zhang.wei", "wang.fang"}
    assert alerts(api, api.as_manager("west"), staff_id="zhang.wei") == []


def test_a_table_from_before_staff_id_gains_the_column_filled_from_its_rows(
    make_api: MakeApi,
) -> None:
    """A read model created before staff_id existed: the next start adds the column and
    fills it, and what it shows equals a rebuild from the log."""
    api = make_api()
    seed(api)
    before = board(api, by="staff")
    db = api.container.read_db
    with db.transaction() as cur:
        cur.execute("DROP INDEX compliance_alerts_staff")
        cur.execute("ALTER TABLE compliance_alerts DROP COLUMN staff_id")

    restarted = bootstrap(api.container.settings)
    try:
        rows = restarted.read_db.query(
            "SELECT violation_id, staff_id FROM compliance_alerts ORDER BY violation_id"
        )
        assert len(rows) == 9 and all(staff for _, staff in rows)
        restarted.engine.rebuild("compliance", restarted.log_batches())
        rebuilt = restarted.read_db.query(
            "SELECT violation_id, staff_id FROM compliance_alerts ORDER BY violation_id"
        )
        assert rebuilt == rows
    finally:
        restarted.close()
    assert board(api, by="staff") == before


def test_the_cli_prints_the_report_from_the_read_model(api: Api) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from tests.integration.support import env_for

    seed(api)
    env = env_for(api.container.settings)
    runner = CliRunner()

    result = runner.invoke(
        app,
        ["compliance", "report", "--by", "rule", "--since", f"{DAY2}T00:00:00+00:00"],
        env=env,
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("返现" in line and "1, 2" in line and "high" in line for line in lines)
    assert not any("内幕消息" in line for line in lines)  # sent on the 10th
    naive = runner.invoke(app, ["compliance", "report", "--since", DAY2], env=env)
    assert naive.exit_code == 2 and "timezone" in naive.output
