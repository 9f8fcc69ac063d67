"""Health, readiness, metrics and the OpenAPI documents: reachable without a token."""

from __future__ import annotations

import re

from projections import all_projections
from tests.e2e.conftest import Api, MakeApi, assert_error

READ_MODELS = [p.name for p in all_projections()]


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name}{labels} not in metrics:\n{text}"
    return float(found.group(1))


def test_healthz_answers_ok_without_a_token(api: Api) -> None:
    r = api.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_is_ready_and_reports_each_projections_position_and_lag(api: Api) -> None:
    api.admin.staff("s1")
    head = api.head()
    api.container.engine.wait_for(head, 5)

    r = api.client.get("/readyz")

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["event_store"] == "ok" and body["read_store"] == "ok"
    assert body["follower"] == "running"
    assert body["head"] == head
    assert body["mode"] == ("embedded" if api.container.settings.embedded else "server")
    assert set(body["projections"]) == set(READ_MODELS)
    for name, state in body["projections"].items():
        assert state == {"position": head, "lag": 0}, name


def test_metrics_expose_appended_events_and_projection_position_and_lag(api: Api) -> None:
    api.admin.staff("s1")
    api.admin.staff("s2")
    head = api.head()
    api.container.engine.wait_for(head, 5)

    r = api.client.get("/metrics")

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert _metric(text, "scrm_events_appended_total") == 2
    assert _metric(text, "scrm_store_head_position") == head
    for projection in READ_MODELS:
        label = f'{{projection="{projection}"}}'
        assert _metric(text, "scrm_projection_position", label) == head
        assert _metric(text, "scrm_projection_lag_events", label) == 0


def test_metrics_count_every_event_a_command_appends(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"], tags=["vip"])
    before = _metric(api.client.get("/metrics").text, "scrm_events_appended_total")

    # A first scan records the customer, its identity claim and the scan: three events.
    r = api.admin.scan(code["id"], openid="o-1")

    assert r.status_code == 201, r.text
    after = _metric(api.client.get("/metrics").text, "scrm_events_appended_total")
    assert after - before == 3


def test_openapi_document_and_docs_page_are_served(api: Api) -> None:
    doc = api.client.get("/openapi.json")
    assert doc.status_code == 200
    paths = doc.json()["paths"]
    for path in (
        "/v1/staff",
        "/v1/channel-codes",
        "/v1/channel-codes/{code_id}/scans",
        "/v1/customers/{customer_id}/portrait",
        "/v1/dashboards/channels",
    ):
        assert path in paths

    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_an_unknown_path_is_a_404_in_the_error_shape(api: Api) -> None:
    assert_error(api.admin.get("/v1/nothing-here"), 404, "not_found")


def test_a_wrong_method_is_a_405_in_the_error_shape(api: Api) -> None:
    assert_error(api.client.delete("/healthz"), 405, "method_not_allowed")


def test_readyz_is_503_naming_the_bus_when_nats_cannot_be_reached(make_api: MakeApi) -> None:
    api = make_api(nats_url="nats://127.0.0.1:1")  # nothing listens on port 1
    r = api.admin.client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready" and body["bus"] == "unreachable"
    assert body["event_store"] == "ok" and body["read_store"] == "ok"
