"""Segments in server mode: the API process records, `scrm relay` publishes, and `scrm project`
both projects and evaluates, so members follow orders and revisions across processes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.e2e.test_orders_api import fixture
from tests.factories import ApiClient
from tests.integration.test_server_mode import caught_up, dump, running, wait_until

pytestmark = pytest.mark.integration


def test_members_follow_orders_and_revisions_through_the_projector(
    server_settings: Settings,
) -> None:
    c = bootstrap(server_settings)
    admin_token = c.tokens.create("admin")
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin = ApiClient(tc, admin_token)
        admin.staff("zhang.wei")
        segment = admin.post(
            "/v1/segments",
            {
                "name": "高价值客户",
                "rule": {"field": "lifetime_value", "op": ">=", "value": 20_000},
                "auto_tag": "高价值",
            },
        ).json()
        buyer = admin.post(
            "/v1/customers",
            {"identities": [{"kind": "phone", "value": "13800138000"}], "owner": "zhang.wei"},
        ).json()["id"]
        pushed = tc.post(
            "/v1/integrations/orders/taobao",
            json=fixture("taobao", "trade_finished"),
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert pushed.status_code == 200, pushed.text

        # Read-your-writes across three processes: the order's effect on the segment.
        members = admin.get(
            f"/v1/segments/{segment['id']}/members",
            params={"min_position": pushed.json()["position"]},
        )
        assert members.status_code == 200, members.text
        assert [m["customer_id"] for m in members.json()["items"]] == [buyer]
        portrait = admin.get(
            f"/v1/customers/{buyer}/portrait", params={"min_position": c.head()}
        ).json()
        assert "高价值" in portrait["tags"]

        revised = admin.post(
            f"/v1/segments/{segment['id']}/revisions",
            {
                "rule": {"field": "lifetime_value", "op": ">=", "value": 50_000},
                "reason": "门槛提高",
                "expected_version": 1,
            },
        )
        assert revised.status_code == 201, revised.text
        changes = admin.get(
            f"/v1/segments/{segment['id']}/changes",
            params={"min_position": revised.json()["position"]},
        ).json()["items"]
        assert [(x["change"], x["segment_version"]) for x in changes] == [
            ("entered", 1),
            ("left", 2),
        ]
        wait_until(lambda: caught_up(c), what="read models at the head")
        evaluator = c.segment_evaluator
        assert evaluator is not None
        wait_until(
            lambda: evaluator.marks.get("evaluated") >= c.head(), what="evaluation at the head"
        )

    live = dump(c)
    c.engine.rebuild("segments", c.log_batches())
    assert dump(c) == live
    c.close()
