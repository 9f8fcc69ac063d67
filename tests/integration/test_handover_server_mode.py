"""Handover in server mode: the API hands a member's customers over, `scrm relay` publishes to
JetStream and `scrm project` builds the handover read model; WeCom's transfer_fail for one of
them reaches the handover follower that `scrm project` runs, which marks the item pending with
WeCom's reason; a retry through the API then completes the handover."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from domain.customers.wecom import ContactChange
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import ApiClient, meta
from tests.integration.test_server_mode import caught_up, running, wait_until

pytestmark = pytest.mark.integration


def test_a_refused_transfer_comes_back_pending_through_the_bus(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin = ApiClient(tc, c.tokens.create("admin", subject="hr"))
        for staff_id in ("a", "b", "c"):
            body = {"id": staff_id, "name": staff_id, "department": "east", "region": "sh"}
            assert admin.post("/v1/staff", body).status_code == 201
        who = admin.post(
            "/v1/customers",
            {"identities": [{"kind": "wecom_external_userid", "value": "wm-bus"}], "tags": [],
             "owner": "a"},
        ).json()["id"]  # fmt: skip
        wait_until(lambda: caught_up(c), what="the customer projected")
        r = admin.post("/v1/handovers", {"kind": "transfer", "from_staff": "a", "to_staff": "b",
                                         "key": "bus"})  # fmt: skip
        assert r.status_code == 201 and r.json()["status"] == "completed", r.text
        wait_until(lambda: caught_up(c), what="the handover projected")

        c.customers.apply_contact_change(
            ContactChange("transfer_fail", "b", "wm-bus", "digest-bus", datetime.now(UTC),
                          fail_reason="customer_refused"),
            meta(actor="integration:wecom", source="wecom"),
        )  # fmt: skip

        def pending() -> bool:
            shown = admin.get("/v1/handovers/bus").json()
            return bool(shown["pending"]) and shown["item_list"][0]["reason"] == "customer_refused"

        wait_until(pending, what="the follower in `scrm project` to mark the item pending")
        wait_until(lambda: caught_up(c), what="the owner given back projected")
        r = admin.post("/v1/handovers/bus/retries", {"to_staff": "c"})
        assert r.status_code == 200 and r.json()["status"] == "completed", r.text
        wait_until(lambda: caught_up(c), what="the retry projected")
        assert admin.get(f"/v1/customers/{who}/portrait").json()["owner"] == "c"
        assert admin.get("/v1/handovers/bus").json()["status"] == "completed"
    c.close()
