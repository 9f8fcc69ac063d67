"""Coupons and points in server mode: the API records, `scrm relay` publishes to JetStream and
`scrm project` builds the coupons and points read models, so a balance as of a date and a
coupon's history come back through the bus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import ApiClient
from tests.integration.test_server_mode import caught_up, running, wait_until

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
    c.close()
