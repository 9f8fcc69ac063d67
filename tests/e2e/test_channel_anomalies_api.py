"""Channel anomaly alerts through the API, on the embedded default and on PostgreSQL: admins
publish thresholds (versioned, 409 when stale, 422 naming the setting); a burst of scans is
detected by the app's own detector and shows on the channel dashboard; managers acknowledge
and resolve it (409 twice, 410 once resolved); refusals record nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import Api, assert_error

BASE = "/v1/channel-anomalies"
# Any three scans in a (UTC) day are a burst, whatever the hour; no baseline, no quiet hours.
TINY = {"window_minutes": 1440, "min_count": 3, "baseline": None, "quiet_hours": None}
AN_HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def test_a_burst_shows_on_the_dashboard_and_is_acknowledged_then_resolved(api: Api) -> None:
    r = api.admin.put(
        f"{BASE}/thresholds/default",
        {"definition": TINY, "effective_from": AN_HOUR_AGO, "expected_version": 0},
    )
    assert r.status_code == 201 and r.json()["thresholds_version"] == 1, r.text
    api.admin.staff("zhang.wei")
    code = api.admin.code(["zhang.wei"])["id"]
    for n in range(3):
        assert api.admin.scan(code, openid=f"o-burst-{n}").status_code == 201
    api.settle()  # the detector follows the read models

    [alert] = api.admin.get(BASE, params={"code_id": code}).json()["items"]
    assert (alert["rule"], alert["count"], alert["status"]) == ("absolute", 3, "open")
    assert (alert["thresholds"], alert["thresholds_version"]) == ("default", 1)
    board = api.as_staff("zhang.wei").get("/v1/dashboards/channels").json()
    [shown] = [c for c in board["codes"] if c["id"] == code]
    assert shown["alerts"]["open"] == 1 and board["alerts"] == {"open": 1, "acknowledged": 0}
    assert shown["alerts"]["latest"][0]["anomaly_id"] == alert["anomaly_id"]

    one = f"{BASE}/{alert['anomaly_id']}"
    manager = api.as_role("manager", department="east", subject="ops.lead")
    with api.records_nothing():
        assert_error(api.as_staff("zhang.wei").post(f"{one}/acknowledgement", {}), 403, "forbidden")
        assert_error(
            manager.post(f"{one}/resolution", {"outcome": "bogus"}), 422, "invalid_input", "outcome"
        )
    acked = manager.post(f"{one}/acknowledgement", {"note": "checking the fair"})
    assert acked.status_code == 200, acked.text
    with api.records_nothing():
        assert_error(manager.post(f"{one}/acknowledgement", {}), 409, "anomaly_acknowledged")
    done = manager.post(f"{one}/resolution", {"outcome": "expected", "note": "the spring fair"})
    assert done.status_code == 200, done.text
    with api.records_nothing():
        assert_error(manager.post(f"{one}/acknowledgement", {}), 410, "anomaly_resolved")

    body = api.admin.get(one, params={"min_position": done.json()["position"]}).json()
    assert (body["status"], body["outcome"], body["acknowledge_note"]) == (
        "resolved",
        "expected",
        "checking the fair",
    )
    assert body["acknowledged_by"] == body["resolved_by"] == "user:ops.lead"
    board = api.admin.get("/v1/dashboards/channels").json()
    assert board["alerts"] == {"open": 0, "acknowledged": 0}
    assert api.admin.get(BASE, params={"status": "open"}).json()["items"] == []
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    assert api.admin.get(BASE, params={"since": later}).json()["items"] == []


def test_thresholds_are_versioned_configuration_for_admins(api: Api) -> None:
    path = f"{BASE}/thresholds/default"
    with api.records_nothing():
        bad = {"definition": {"quiet_hours": {"start": "25:00"}}}
        assert_error(api.admin.put(path, bad), 422, "invalid_input", "quiet_hours.start")
        assert_error(
            api.admin.put(path, {"definition": {"window_minutes": 7}}),
            422,
            "invalid_input",
            "window_minutes",
        )
        assert_error(api.as_manager("east").put(path, {"definition": TINY}), 403, "forbidden")
        by_name = api.admin.put(f"{BASE}/thresholds/x", {"definition": {}})
        assert_error(by_name, 422, "invalid_input", "key")
        unknown = f"{BASE}/thresholds/00000000-0000-0000-0000-000000000001"
        assert_error(api.admin.put(unknown, {"definition": {}}), 404, "not_found")
        assert_error(api.as_role("regulator").get(path), 403, "forbidden")

    shown = api.as_staff("li.na").get(path).json()
    assert (shown["version"], shown["in_force"]) == (0, 0)
    assert shown["defaults"]["quiet_hours"]["timezone"] == "Asia/Shanghai"

    assert api.admin.put(path, {"definition": {}, "expected_version": 0}).status_code == 201
    with api.records_nothing():
        stale = api.admin.put(path, {"definition": TINY, "expected_version": 0})
        assert_error(stale, 409, "stale_version")
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = api.admin.put(path, {"definition": TINY, "expected_version": 1, "effective_from": later})
    assert r.status_code == 201 and r.json()["thresholds_version"] == 2, r.text

    shown = api.admin.get(path).json()
    assert (shown["version"], shown["in_force"]) == (2, 1)
    assert shown["versions"][0]["definition"]["min_count"] == 200  # stored whole, defaults in
    assert api.admin.get(path, params={"as_of": later}).json()["in_force"] == 2
