"""Automation in server mode: the API records, `scrm relay` publishes to JetStream and
`scrm project` builds the read models; the automation process runs beside the projector and
turns a completed order into a run whose message goes out once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import ApiClient, meta
from tests.integration.test_server_mode import running, wait_until
from tests.unit.test_automation import THANKS
from tests.unit.test_loyalty import T0, order

pytestmark = pytest.mark.integration


def test_a_rule_fires_beside_the_projector(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin = ApiClient(tc, c.tokens.create("admin", subject="ops"))
        rule = {"definition": {**THANKS, "actions": THANKS["actions"][::2]},
                "effective_from": "2026-01-01T00:00:00Z", "expected_version": 0}  # fmt: skip
        r = admin.put("/v1/automation/rules/thanks", rule)
        assert r.status_code == 201, r.text
        who = admin.post(
            "/v1/customers",
            {"identities": [{"kind": "taobao_buyer", "value": "buyer-1"},
                            {"kind": "wecom_external_userid", "value": "wmBus"}], "tags": []},
        ).json()["id"]  # fmt: skip
        c.orders.receive(order("T-1", 600_000, T0), "d-1", meta(source="taobao"))

        def outbox() -> list[dict[str, object]]:
            return admin.get("/v1/automation/outbox", params={"customer_id": who}).json()["items"]  # type: ignore[no-any-return]

        wait_until(
            lambda: [m["status"] for m in outbox()] == ["sent"],
            what="the automation process beside the projector",
        )
        [run] = admin.get("/v1/automation/runs", params={"customer_id": who}).json()["items"]
        assert (run["rule_key"], run["status"]) == ("thanks", "done")
    c.close()
