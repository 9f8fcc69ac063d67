"""Pricing in server mode: the API records strategy versions and an override, `scrm relay`
publishes them to JetStream and `scrm project` indexes them, so an auditor sees who priced
what from the audit trail, while quotes answer from the store at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from domain.pricing.aggregates import PriceStrategy
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import ApiClient
from tests.integration.test_server_mode import caught_up, running, wait_until
from tests.unit.test_pricing import DINGXI, definition

pytestmark = pytest.mark.integration


def test_strategies_and_overrides_reach_the_audit_trail_through_the_bus(
    server_settings: Settings,
) -> None:
    c = bootstrap(server_settings)
    hq = c.tokens.create("admin", subject="hq")
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin = ApiClient(tc, hq)
        body = {"definition": definition(), "effective_from": "2026-05-01T00:00:00Z"}
        assert admin.put("/v1/pricing/strategies/default", body).status_code == 201
        now = datetime.now(UTC)
        override = {
            "override_id": "flood", "scope": DINGXI, "factor": "0.9", "reason": "flood",
            "expires_at": (now + timedelta(days=1)).isoformat(),
        }  # fmt: skip
        assert admin.post("/v1/pricing/strategies/default/overrides", override).status_code == 201
        quoted = admin.post(
            "/v1/quotes",
            {"strategy": "default", "region": DINGXI, "lines": [{"sku": "LOCK-S1"}],
             "at": (now + timedelta(minutes=1)).isoformat()},
        )  # fmt: skip
        assert quoted.status_code == 200, quoted.text
        assert quoted.json()["total"] == 161_919

        wait_until(lambda: caught_up(c), what="the pricing events projected")
        auditor = ApiClient(tc, c.tokens.create("auditor", subject="audit-1"))
        strategy_id = PriceStrategy.create_id("default")
        history = auditor.get(f"/v1/audit/aggregates/{strategy_id}/history")
        assert history.status_code == 200, history.text
        events = history.json()["events"]
        assert [e["event"] for e in events] == [
            "PriceStrategyPublished",
            "PriceStrategyEmergencyOverrideDeclared",
        ]
        assert {e["context"] for e in events} == {"pricing"}
        assert all(e["position"] > 0 for e in events)  # positions: from the projected index
        assert events[0]["actor"] == events[1]["actor"]
        assert events[1]["data"]["factor"] == "0.9"
    c.close()
