"""Settlement in server mode: the API records, `scrm relay` publishes to JetStream, and
`scrm project` keeps the read models current and, beside them, accrues what completed jobs
earn. The API closes a week and pays it; the ledger balances."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.e2e.test_settlement_api import LAST_WEEK, RULES
from tests.factories import ApiClient
from tests.integration.test_server_mode import caught_up, running, wait_until
from tests.unit.test_tickets import COMPLETE_FORM, INSTALLATION

pytestmark = pytest.mark.integration


def test_a_job_done_is_paid_through_the_projector_process(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    token = c.tokens.create("admin")
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin = ApiClient(tc, token)

        def put(path: str, body: Any) -> Any:
            return tc.put(path, json=body, headers={"Authorization": f"Bearer {token}"})

        admin.staff("fitter", department="service")
        assert admin.post("/v1/workflows", INSTALLATION).status_code == 201
        worker = {"regions": ["杭州"], "service_types": ["installation"]}
        assert put("/v1/workers/fitter", worker).status_code == 200
        group = {"key": "installers", "name": "安装师傅", "cycle": "weekly"}
        assert admin.post("/v1/settlement/groups", group).status_code == 201
        rules = {"definition": RULES, "effective_from": "2026-01-01T00:00:00+08:00"}
        assert put("/v1/settlement/rule-sets/installers", rules).status_code == 201
        payee = {
            "payee_id": "p-fitter",
            "kind": "installer",
            "name": "师傅",
            "group": "installers",
            "rule_set": "installers",
            "staff_id": "fitter",
        }
        assert admin.post("/v1/payees", payee).status_code == 201
        wait_until(lambda: caught_up(c), what="the roster and payee projected")

        ticket = admin.post(
            "/v1/tickets",
            {
                "workflow": "installation",
                "service_type": "installation",
                "region": "浙江省杭州市",
                "description": "空调安装",
            },
        ).json()
        fitter = ApiClient(tc, c.tokens.create("staff", staff_id="fitter"))
        version = ticket["version"]
        for name, form in (
            ("schedule", {"visit_on": "2026-11-28"}),
            ("arrive", {"arrival_photo": "media:arrive-01"}),
        ):
            r = fitter.post(
                f"/v1/tickets/{ticket['id']}/transitions",
                {"transition": name, "form": form, "expected_version": version},
            )
            assert r.status_code == 200, r.text
            version = r.json()["version"]
        code = admin.post(f"/v1/tickets/{ticket['id']}/confirmation-codes").json()
        r = fitter.post(
            f"/v1/tickets/{ticket['id']}/transitions",
            {
                "transition": "complete",
                "form": COMPLETE_FORM,
                "expected_version": code["version"],
                "confirmation_code": code["code"],
            },
        )
        assert r.status_code == 200, r.text

        def earned() -> list[tuple[str, int]]:
            lines = fitter.get("/v1/payees/p-fitter/earnings").json()["lines"]
            return [(ln["component"], ln["amount"]) for ln in lines]

        wait_until(lambda: len(earned()) == 3, what="the accruer in the projector process")
        assert earned() == [("base", 8000), ("distance", 2000), ("materials", -1500)]

        item = {
            "source": "job-last-week",
            "kind": "service",
            "payee_id": "p-fitter",
            "occurred_at": "2026-11-10T10:00:00+08:00",
            "service_type": "smart_lock",
        }
        assert admin.post("/v1/settlement/items", item).status_code == 201
        closed = admin.post(f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/close")
        assert closed.status_code == 201, closed.text
        assert (closed.json()["total"], closed.json()["payees"]) == (8000, 1)
        paid = admin.post(f"/v1/settlement/groups/installers/periods/{LAST_WEEK}/payouts")
        assert [p["status"] for p in paid.json()["items"]] == ["settled"]
        wait_until(lambda: caught_up(c), what="the payout projected")
        check = admin.get("/v1/ledger/check").json()
        assert check["ok"] and check["debits"] == check["credits"] > 0
    c.close()
