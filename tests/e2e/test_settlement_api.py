"""Settlement through the API: a versioned rule set, payees, a completed installation paying its
installer the moment it is done, the issue's fifteen smart locks settled exactly, a version
change mid-period, a correction, a dispute, payouts that never pay twice, and the ledger."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.e2e.test_tickets_api import open_ticket, setup, ticket
from tests.unit.test_tickets import COMPLETE_FORM

GRADES = {"A": 3000, "B": 5000, "C": 8000, "D": 12000, "E": 20000, "F": 30000}
RULES: dict[str, Any] = {
    "components": [
        {
            "name": "base",
            "type": "base_fee",
            "grades": GRADES,
            "by_service_type": {"installation": "C", "smart_lock": "C", "repair": "B"},
        },
        {"name": "distance", "type": "distance", "free_km": "10", "flat": 2000},
        {"name": "materials", "type": "materials_deduction", "amount": 1500},
        {"name": "good_rating", "type": "rating_bonus", "min_rating": 5, "amount": 500},
    ]
}
LAST_WEEK = "2026-11-09"  # a Monday; the week ran to 2026-11-16 00:00 Asia/Shanghai


def this_week() -> str:
    """The Monday of the week now running in Asia/Shanghai: where "now" postings land."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return (today - timedelta(days=today.weekday())).isoformat()


def wait_for(fetch: Any, done: Any, timeout: float = 10.0) -> Any:
    """The accruer follows the log after the read models: poll until it has."""
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def configure(api: Api) -> None:
    r = api.admin.post(
        "/v1/settlement/groups", {"key": "installers", "name": "安装师傅", "cycle": "weekly"}
    )
    assert r.status_code == 201, r.text
    r = api.client.put(
        "/v1/settlement/rule-sets/installers",
        json={
            "definition": RULES,
            "effective_from": "2026-01-01T00:00:00+08:00",
            "expected_version": 0,
        },
        headers={"Authorization": f"Bearer {api.admin.token}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["rule_version"] == 1


def payee(api: Api, payee_id: str, staff_id: str | None = None, **more: Any) -> None:
    body = {
        "payee_id": payee_id,
        "kind": "installer",
        "name": payee_id,
        "group": "installers",
        "rule_set": "installers",
        "region": "浙江省杭州市",
        "staff_id": staff_id,
        "account": f"openid-{payee_id}",
        **more,
    }
    r = api.admin.post("/v1/payees", body)
    assert r.status_code == 201, r.text


def item(api: Api, source: str, occurred_at: str, **facts: Any) -> Any:
    body = {
        "source": source,
        "kind": "service",
        "payee_id": "lock-master",
        "occurred_at": occurred_at,
        "service_type": "smart_lock",
        **facts,
    }
    return api.admin.post("/v1/settlement/items", body)


def test_a_completed_installation_pays_its_installer_when_it_is_done(make_api: MakeApi) -> None:
    api = make_api()
    setup(api)
    configure(api)
    payee(api, "p-li", "fitter.li")
    payee(api, "p-wang", "fitter.wang")
    opened = open_ticket(api)
    tid, fitter = opened["id"], opened["assignee"]
    installer = api.as_staff(fitter)
    mine = "p-li" if fitter == "fitter.li" else "p-wang"
    theirs = "p-wang" if mine == "p-li" else "p-li"

    def move(name: str, form: Any = None, **more: Any) -> Any:
        more.setdefault("expected_version", ticket(api, tid)["version"])
        r = installer.post(
            f"/v1/tickets/{tid}/transitions", {"transition": name, "form": form or {}, **more}
        )
        assert r.status_code == 200, r.text

    move("schedule", {"visit_on": "2026-11-28"})
    move("arrive", {"arrival_photo": "media:arrive-01"})
    code = api.admin.post(f"/v1/tickets/{tid}/confirmation-codes").json()["code"]
    move("complete", COMPLETE_FORM, confirmation_code=code)

    def lines() -> list[dict[str, Any]]:
        r = installer.get(f"/v1/payees/{mine}/earnings", params={"min_position": api.head()})
        assert r.status_code == 200, r.text
        return r.json()["lines"]  # type: ignore[no-any-return]

    got = wait_for(lines, lambda ls: len(ls) >= 3)
    # 80 yuan base (grade C), 12.5 km is beyond the free 10 km (+20), the customer supplied
    # the materials (-15): each line says why.
    assert [(ln["component"], ln["amount"]) for ln in got] == [
        ("base", 8000),
        ("distance", 2000),
        ("materials", -1500),
    ]
    assert got[0]["explanation"] == "基础服务费 C档 80.00元"
    assert got[0]["source"] == f"ticket:{tid}:completion"
    assert got[0]["rule_set"] == "installers" and got[0]["rule_version"] == 1
    assert got[1]["inputs"] == {"distance_km": "12.5", "free_km": "10"}

    # Rated after the job: the good-rating bonus is an earning of its own.
    assert api.admin.post(f"/v1/tickets/{tid}/rating", {"score": 5}).status_code == 201
    got = wait_for(lines, lambda ls: len(ls) >= 4)
    assert (got[-1]["component"], got[-1]["amount"]) == ("good_rating", 500)
    assert got[-1]["source"] == f"ticket:{tid}:rating"
    r = installer.get(f"/v1/payees/{mine}/earnings").json()
    assert r["open_periods"][0]["total"] == 9000

    # An installer sees only their own earnings.
    assert_error(installer.get(f"/v1/payees/{theirs}/earnings"), 403, "forbidden")
    assert_error(api.as_role("regulator").get(f"/v1/payees/{mine}/earnings"), 403, "forbidden")


def test_fifteen_smart_locks_settle_exactly_and_are_paid_once(make_api: MakeApi) -> None:
    """The issue's example: last week 15 smart locks at 80 yuan, 8 beyond the standard
    distance (+20 yuan each), 3 with parts the customer supplied (the rule set's 15 yuan)."""
    api = make_api()
    configure(api)
    payee(api, "lock-master")
    for i in range(15):
        r = item(
            api,
            f"job-{i}",
            f"2026-11-{10 + i // 4:02d}T{9 + i % 4:02d}:00:00+08:00",
            distance_km="15" if i < 8 else "4",
            materials_supplied_by="customer" if i >= 12 else None,
        )
        assert r.status_code == 201, r.text
    # A source is paid once: the same job again answers what it earned then.
    again = item(api, "job-0", "2026-11-10T09:00:00+08:00", distance_km="15")
    assert again.status_code == 201 and again.json()["created"] is False

    with api.records_nothing():
        assert_error(
            api.admin.post(f"/v1/settlement/groups/installers/periods/{LAST_WEEK[:-1]}8/close"),
            422,
            "invalid_input",
            "period",
        )
        assert_error(
            api.admin.post(f"/v1/settlement/groups/installers/periods/{this_week()}/close"),
            409,
            "period_open",
        )
        assert_error(
            api.as_manager("east").post(
                f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/close"
            ),
            403,
            "forbidden",
        )
    r = api.admin.post(f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/close")
    assert r.status_code == 201, r.text
    closed = r.json()
    assert closed["total"] == 15 * 8000 + 8 * 2000 - 3 * 1500 == 131_500
    assert closed["lines"] == 15 + 8 + 3 and closed["payees"] == 1
    assert len(closed["digest"]) == 64
    with api.records_nothing():
        assert_error(
            api.admin.post(f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/close"),
            409,
            "period_closed",
        )

    st = api.admin.get(f"/v1/payees/lock-master/statements/installers/{LAST_WEEK}").json()
    assert st["total"] == 131_500 and len(st["lines"]) == 26
    # The close's digest is recomputable from the statement with nothing but sha256: its
    # lines as text, payee / component / amount / line id, one per line, in recorded order.
    text = "".join(
        f"{ln['payee_id']}\t{ln['component']}\t{ln['amount']}\t{ln['line_id']}\n"
        for ln in st["lines"]
    )
    assert hashlib.sha256(text.encode()).hexdigest() == closed["digest"] == st["period_digest"]
    by_component: dict[str, list[int]] = {}
    for line in st["lines"]:
        by_component.setdefault(line["component"], []).append(line["amount"])
        assert line["source"].startswith("job-") and line["rule_version"] == 1
    assert by_component == {"base": [8000] * 15, "distance": [2000] * 8, "materials": [-1500] * 3}

    # A late job of last week lands in this week's open period; the statement stays.
    assert item(api, "job-late", "2026-11-15T20:00:00+08:00").status_code == 201
    late = wait_for(
        lambda: api.admin.get(
            "/v1/payees/lock-master/earnings", params={"min_position": api.head()}
        ).json()["lines"],
        lambda ls: any(ln["source"] == "job-late" for ln in ls),
    )
    assert [ln["period"] for ln in late if ln["source"] == "job-late"] == ["2026-11-16"]
    again_st = api.admin.get(f"/v1/payees/lock-master/statements/installers/{LAST_WEEK}").json()
    assert again_st["total"] == 131_500 and again_st["lines"] == st["lines"]

    # Payouts: the first transfer fails, the retry pays with the same key, asking again pays
    # nobody twice.
    gateway = api.container.payout_gateway
    assert gateway is not None
    gateway.fail_next["lock-master"] = "wallet not verified"
    r = api.admin.post(f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/payouts")
    assert r.status_code == 201, r.text
    [paid] = r.json()["items"]
    assert (paid["amount"], paid["status"]) == (131_500, "failed")
    r = api.admin.post(f"/v1/payouts/{paid['payout_id']}/retry")
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "settled" and r.json()["attempt"] == 2
    assert r.json()["idempotency_key"] == paid["idempotency_key"]
    assert_error(api.admin.post(f"/v1/payouts/{paid['payout_id']}/retry"), 409, "payout_settled")
    r = api.admin.post(f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/payouts")
    assert r.json()["items"][0]["status"] == "settled"
    assert gateway.transfers() == [(paid["idempotency_key"], "lock-master", 131_500)]

    check = api.admin.get("/v1/ledger/check", params={"min_position": api.head()}).json()
    assert check["ok"] is True and check["debits"] == check["credits"]
    balances = api.admin.get("/v1/ledger/balances").json()["balances"]
    assert balances["clearing:payout_gateway"] == -131_500
    # What is still owed: the late job, 80 yuan, in the open period.
    assert balances["payable:lock-master"] == -8000
    before = api.admin.get(
        "/v1/ledger/balances", params={"as_of": "2026-11-12T00:00:00+08:00"}
    ).json()["balances"]
    assert before["payable:lock-master"] == -(8 * 8000 + 8 * 2000)
    # The installer's account as a statement of those days: every posting with its running
    # balance.
    days = api.admin.get(
        "/v1/ledger/accounts/payable:lock-master",
        params={"since": "2026-11-10T00:00:00+08:00", "until": "2026-11-11T00:00:00+08:00"},
    ).json()["postings"]
    assert [p["amount"] for p in days] == [-8000, -2000] * 4  # base and distance, 4 jobs
    assert days[-1]["balance"] == -4 * 10_000
    assert_error(
        api.admin.get("/v1/ledger/accounts/payable:lock-master", params={"since": "2026-11-10"}),
        422,
        "invalid_input",
        "since",
    )


def test_versions_mid_period_corrections_and_disputes(make_api: MakeApi) -> None:
    api = make_api()
    configure(api)
    payee(api, "lock-master", "fitter.li")
    headers = {"Authorization": f"Bearer {api.admin.token}"}

    with api.records_nothing():
        bad = {"components": [{"name": "base", "type": "base_fee", "by_service_type": {"x": 1.5}}]}
        r = api.client.put(
            "/v1/settlement/rule-sets/installers",
            json={"definition": bad, "expected_version": 1},
            headers=headers,
        )
        assert_error(r, 422, "invalid_input", "definition.components[0].by_service_type.x")
        r = api.client.put(
            "/v1/settlement/rule-sets/installers",
            json={"definition": RULES, "expected_version": 0},
            headers=headers,
        )
        assert_error(r, 409, "stale_version")
    # Version 2 from Wednesday of last week: base grade C becomes 90 yuan.
    v2 = {**RULES, "components": [{**RULES["components"][0], "grades": {**GRADES, "C": 9000}}]}
    r = api.client.put(
        "/v1/settlement/rule-sets/installers",
        json={
            "definition": v2,
            "effective_from": "2026-11-11T00:00:00+08:00",
            "expected_version": 1,
        },
        headers=headers,
    )
    assert r.status_code == 201 and r.json()["rule_version"] == 2
    monday = item(api, "mon", "2026-11-09T10:00:00+08:00").json()
    thursday = item(api, "thu", "2026-11-12T10:00:00+08:00").json()
    assert [(ln["amount"], ln["explanation"]) for ln in monday["lines"]] == [
        (8000, "基础服务费 C档 80.00元")
    ]
    assert [ln["amount"] for ln in thursday["lines"]] == [9000]
    r = api.admin.post(f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/close")
    assert r.json()["total"] == 17_000 and r.json()["rule_versions"] == {"installers": 2}

    # Version 3 reaches back to Monday (100 yuan): nothing settled is re-priced; finance
    # corrects Monday's job, and the difference lands in the open week, naming what it corrects.
    v3 = {**RULES, "components": [{**RULES["components"][0], "grades": {**GRADES, "C": 10000}}]}
    r = api.client.put(
        "/v1/settlement/rule-sets/installers",
        json={"definition": v3, "effective_from": "2026-11-09T00:00:00+08:00"},
        headers=headers,
    )
    assert r.status_code == 201
    st = api.admin.get(
        f"/v1/payees/lock-master/statements/installers/{LAST_WEEK}",
        params={"min_position": api.head()},
    ).json()
    assert st["total"] == 17_000
    r = api.admin.post(
        "/v1/settlement/corrections", {"source": "mon", "reason": "区域单价上调补发"}
    )
    assert r.status_code == 201, r.text
    [delta] = r.json()["lines"]
    assert (delta["component"], delta["type"], delta["amount"]) == ("base", "correction", 2000)
    with api.records_nothing():
        again = api.admin.post("/v1/settlement/corrections", {"source": "mon", "reason": "again"})
        assert_error(again, 409, "same_version")

    # The installer disputes Thursday's base line; finance adjusts it by 5 yuan.
    mine = api.as_staff("fitter.li")
    earned = mine.get("/v1/payees/lock-master/earnings", params={"min_position": api.head()}).json()
    thu_line = next(ln for ln in earned["lines"] if ln["source"] == "thu")
    r = mine.post(
        "/v1/settlement/disputes", {"line_id": thu_line["line_id"], "reason": "实际是高难度安装"}
    )
    assert r.status_code == 201, r.text
    dispute_id = r.json()["dispute_id"]
    with api.records_nothing():
        assert_error(
            mine.post(
                "/v1/settlement/disputes", {"line_id": thu_line["line_id"], "reason": "again"}
            ),
            409,
            "already_disputed",
        )
        assert_error(
            mine.post(
                f"/v1/settlement/disputes/{dispute_id}/resolution",
                {"outcome": "adjusted", "amount": 500, "note": "ok"},
            ),
            403,
            "forbidden",
        )
        assert_error(
            api.admin.post(
                f"/v1/settlement/disputes/{dispute_id}/resolution",
                {"outcome": "adjusted", "amount": 0, "note": "nothing"},
            ),
            422,
            "invalid_input",
            "amount",
        )
    r = api.admin.post(
        f"/v1/settlement/disputes/{dispute_id}/resolution",
        {"outcome": "adjusted", "amount": 500, "note": "按高难度补5元"},
    )
    assert r.status_code == 201, r.text
    assert_error(
        api.admin.post(
            f"/v1/settlement/disputes/{dispute_id}/resolution",
            {"outcome": "rejected", "note": "again"},
        ),
        410,
        "dispute_resolved",
    )
    disputes = mine.get("/v1/settlement/disputes", params={"min_position": api.head()}).json()
    assert [(d["status"], d["outcome"], d["amount"]) for d in disputes["items"]] == [
        ("resolved", "adjusted", 500)
    ]
    open_week = mine.get("/v1/payees/lock-master/earnings").json()["open_periods"]
    assert [(p["period"], p["total"]) for p in open_week] == [(this_week(), 2000 + 500)]
