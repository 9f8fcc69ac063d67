"""Tickets in server mode: the API process records, `scrm relay` publishes to JetStream and
`scrm project` keeps the board and the SLA model current in another process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import bootstrap
from infra.settings import Settings
from infra.tickets import breach_overdue_tickets
from tests.factories import ApiClient
from tests.integration.test_server_mode import caught_up, running, wait_until
from tests.unit.test_tickets import INSTALLATION

pytestmark = pytest.mark.integration


def test_a_ticket_moves_and_breaches_through_the_projector(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    admin_token = c.tokens.create("admin")
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin = ApiClient(tc, admin_token)
        admin.staff("fitter", department="service")
        assert admin.post("/v1/workflows", INSTALLATION).status_code == 201
        profile = tc.put(
            "/v1/workers/fitter",
            json={"regions": ["杭州"], "service_types": ["installation"]},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert profile.status_code == 200, profile.text
        wait_until(lambda: caught_up(c), what="the roster projected")
        opened = admin.post(
            "/v1/tickets",
            {
                "workflow": "installation",
                "service_type": "installation",
                "region": "浙江省杭州市",
                "description": "空调安装",
            },
        ).json()
        assert opened["assignee"] == "fitter"
        fitter = ApiClient(tc, c.tokens.create("staff", staff_id="fitter"))
        moved = fitter.post(
            f"/v1/tickets/{opened['id']}/transitions",
            {
                "transition": "schedule",
                "form": {"visit_on": "2026-11-28"},
                "expected_version": opened["version"],
            },
        )
        assert moved.status_code == 200, moved.text
        board = fitter.get("/v1/tickets", params={"min_position": moved.json()["position"]}).json()[
            "items"
        ]
        assert [(t["ticket_id"], t["state"]) for t in board] == [(opened["id"], "scheduled")]

        later = datetime.now(UTC) + timedelta(days=5)
        assert breach_overdue_tickets(c, later) == [opened["id"]]
        wait_until(lambda: caught_up(c), what="the breach projected")
        assert breach_overdue_tickets(c, later) == []  # the projected breach narrows the list
        seen = admin.get(f"/v1/tickets/{opened['id']}", params={"min_position": c.head()}).json()
        assert seen["breaches"] == 1
        assert [e["event"] for e in seen["timeline"]][-1] == "TicketSlaBreached"
    c.close()
