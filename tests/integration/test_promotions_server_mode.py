"""Coupons, points and membership in server mode: the API records, `scrm relay` publishes to
JetStream and `scrm project` builds the read models, so a balance as of a date and a coupon's
history come back through the bus; the loyalty process runs beside the projector and turns a
completed order into points and a tier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import ApiClient, meta
from tests.integration.test_server_mode import caught_up, running, wait_until
from tests.unit.test_loyalty import PROGRAM, T0, order

pytestmark = pytest.mark.integration


def test_coupons_and_points_are_projected_through_the_bus(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin = ApiClient(tc, c.tokens.create("admin", subject="ops"))
        who = admin.post(
            "/v1/customers", {"identities": [{"kind": "openid", "value": "o-bus"}], "tags": []}
        ).json()["id"]
        base = f"/v1/customers/{who}/points"
        r = admin.post(f"{base}/earnings", {"points": 800, "reason": "order", "ref": "order:T-9"})
        assert r.status_code == 200, r.text
        soon = (datetime.now(UTC) + timedelta(days=10)).isoformat()
        terms = {"kind": "amount_off", "value": 3_000, "min_spend": 10_000, "expires_at": soon}
        r = admin.post(f"{base}/coupon-exchanges", {"points": 500, "coupon": terms})
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        r = admin.post(
            f"/v1/coupons/{code}/redemptions", {"order_ref": "T-10", "order_total": 12_000}
        )
        assert r.status_code == 200 and r.json()["to_pay"] == 9_000, r.text

        wait_until(lambda: caught_up(c), what="the promotions read models projected")
        balance = admin.get(base).json()
        assert balance["balance"] == 300
        assert [m["delta"] for m in balance["movements"]] == [-500, 800]
        shown = admin.get(f"/v1/coupons/{code}").json()
        assert [h["status"] for h in shown["history"]] == ["issued", "redeemed"]
        assert shown["issued_by"] == "points"

        # The loyalty process in the projector's process: a completed order, points and a tier.
        r = admin.put(
            "/v1/loyalty/program",
            {"definition": PROGRAM, "effective_from": "2026-01-01T00:00:00Z"},
        )
        assert r.status_code == 201, r.text
        buyer = admin.post(
            "/v1/customers",
            {"identities": [{"kind": "taobao_buyer", "value": "buyer-1"}], "tags": []},
        ).json()["id"]
        c.orders.receive(order("T-1", 600_000, T0), "d-1", meta(source="taobao"))

        def member() -> object:
            return admin.get(f"/v1/customers/{buyer}/membership").json()["tier"]

        wait_until(lambda: member() == "silver", what="the loyalty process beside the projector")
        assert admin.get(f"/v1/customers/{buyer}/points").json()["balance"] == 6_000
    c.close()
