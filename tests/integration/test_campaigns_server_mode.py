"""Fission campaigns in server mode: the API records, `scrm relay` publishes to JetStream and
`scrm project` builds the read models, and the fission process beside the projector counts
invitees who add staff into a reward."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.e2e.conftest import Api
from tests.e2e.test_campaigns_api import BASE, adds_staff, definition
from tests.factories import ApiClient
from tests.integration.test_server_mode import running, wait_until

pytestmark = pytest.mark.integration


def test_invitees_become_a_reward_through_the_bus(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin = ApiClient(tc, c.tokens.create("admin", subject="ops"))
        assert admin.put(BASE, {"definition": definition()}).status_code == 201
        api = Api(tc, c, admin)
        a, b, d = (api.customer([("wecom_external_userid", f"wm-{n}")])["id"] for n in "abd")
        code = admin.post(f"{BASE}/participants", {"customer_id": a}).json()["code"]
        for who in (b, d):
            r = admin.post(f"{BASE}/invitations", {"code": code, "customer_id": who})
            assert r.status_code == 201, r.text
        adds_staff(api, "wm-b")
        adds_staff(api, "wm-d")

        def tiers() -> object:
            shown = admin.get(f"{BASE}/participants/{a}")
            if shown.status_code != 200:
                return None
            return [(x["tier"], x["status"]) for x in shown.json()["rewards"]]

        wait_until(lambda: tiers() == [(2, "issued")], what="the fission process, beside")
        stats = admin.get(f"{BASE}/stats").json()
        assert stats["funnel"]["successful_invites"] == 2
    c.close()
