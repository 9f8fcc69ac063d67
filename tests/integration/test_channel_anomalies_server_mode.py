"""Channel anomaly alerts in server mode: the API records the scans, `scrm relay` publishes them
to JetStream, `scrm project` builds the read models and runs the detector behind them, so the
burst comes back as an alert on the channel dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.e2e.test_channel_anomalies_api import TINY
from tests.factories import ApiClient
from tests.integration.test_server_mode import running, wait_until

pytestmark = pytest.mark.integration


def test_a_burst_is_detected_by_the_projector_process(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin = ApiClient(tc, c.tokens.create("admin", subject="ops"))
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        r = admin.put(
            "/v1/channel-anomalies/thresholds/default",
            {"definition": TINY, "effective_from": since},
        )
        assert r.status_code == 201, r.text
        admin.staff("zhang.wei")
        code = admin.code(["zhang.wei"])["id"]
        for n in range(3):
            assert admin.scan(code, openid=f"o-bus-{n}").status_code == 201

        def alerted() -> list[dict[str, object]]:
            items = admin.get("/v1/channel-anomalies", params={"code_id": code}).json()["items"]
            return items  # type: ignore[no-any-return]

        wait_until(lambda: len(alerted()) == 1, what="the detector in the projector process")
        [alert] = alerted()
        assert (alert["rule"], alert["count"], alert["thresholds_version"]) == ("absolute", 3, 1)
        wait_until(
            lambda: admin.get("/v1/dashboards/channels").json()["alerts"]["open"] == 1,
            what="the alert on the channel dashboard",
        )
    c.close()
