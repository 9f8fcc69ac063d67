"""/v1/dashboards/channels: scans, adds and refusals per code and per day (UTC days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.factories import meta

TODAY = datetime.now(UTC).date()


def _dashboard(api: Api, client: Any = None, **params: Any) -> Any:
    r = (client or api.admin).get("/v1/dashboards/channels", {"min_position": api.head(), **params})
    assert r.status_code == 200, r.text
    return r.json()


def _three_codes(api: Api) -> dict[str, str]:
    """open: 3 scans, 2 new; capped (max 1): 1 scan, 1 refusal; closed: disabled, 1 refusal."""
    api.admin.staff("s1")
    api.admin.staff("s2")
    codes = {
        "open": api.admin.code(["s1", "s2"], name="open")["id"],
        "capped": api.admin.code(["s1"], name="capped", max_scans=1)["id"],
        "closed": api.admin.code(["s2"], name="closed")["id"],
    }
    api.admin.post(f"/v1/channel-codes/{codes['closed']}/disable", {})
    for visitor in ("o-1", "o-2", "o-1"):
        assert api.admin.scan(codes["open"], openid=visitor).status_code == 201
    assert api.admin.scan(codes["capped"], openid="o-3").status_code == 201
    assert api.admin.scan(codes["capped"], openid="o-4").status_code == 409
    assert api.admin.scan(codes["closed"], openid="o-5").status_code == 410
    return codes


def test_the_dashboard_totals_scans_adds_and_refusals_per_code_and_per_day(api: Api) -> None:
    codes = _three_codes(api)

    board = _dashboard(api)

    today = TODAY.isoformat()
    assert board["totals"] == {"scans": 4, "adds": 3, "refusals": 2}
    assert board["days"] == [{"day": today, "scans": 4, "adds": 3, "refusals": 2}]
    by_id = {c["id"]: c for c in board["codes"]}
    assert [c["name"] for c in board["codes"]] == ["open", "capped", "closed"]
    summary = {
        name: (by_id[i]["status"], by_id[i]["scans"], by_id[i]["adds"], by_id[i]["refusals"])
        for name, i in codes.items()
    }
    assert summary == {
        "open": ("active", 3, 2, 0),
        "capped": ("exhausted", 1, 1, 1),
        "closed": ("disabled", 0, 0, 1),
    }
    assert by_id[codes["open"]]["daily"] == [{"day": today, "scans": 3, "adds": 2, "refusals": 0}]


def test_the_dashboard_reads_its_own_writes(make_api: MakeApi) -> None:
    api = make_api(poll_interval=0.25)
    api.admin.staff("s1")
    code = api.admin.code(["s1"])
    position = api.admin.scan(code["id"], openid="o-1").json()["position"]

    r = api.admin.get("/v1/dashboards/channels", headers={"X-Min-Position": str(position)})

    assert r.status_code == 200
    assert r.json()["totals"] == {"scans": 1, "adds": 1, "refusals": 0}


def test_the_dashboard_is_empty_before_any_code_exists(api: Api) -> None:
    board = _dashboard(api)
    # As of the head: every event so far is counted (none yet is a scan).
    assert board.pop("as_of")["position"] == api.head()
    assert board == {
        "totals": {"scans": 0, "adds": 0, "refusals": 0},
        "days": [],
        "codes": [],
        "alerts": {"open": 0, "acknowledged": 0},  # channel anomalies (docs/channel-anomalies.md)
    }


def _scans_over_three_days(api: Api) -> str:
    """A code scanned twice two days ago, once yesterday (source time) and once today (API)."""
    api.admin.staff("s1")
    app = api.container.customers
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    code = app.create_channel_code(
        name="old poster",
        staff_pool=["s1"],
        tags=[],
        welcome_message="",
        expires_at=None,
        max_scans=None,
        meta=meta(at=two_days_ago - timedelta(hours=1)),
    )
    for n, at in enumerate((two_days_ago, two_days_ago, datetime.now(UTC) - timedelta(days=1))):
        app.scan_channel_code(
            UUID(code.id), identities={"openid": f"o-{n}"}, device=None, ip=None, meta=meta(at=at)
        )
    assert api.admin.scan(code.id, openid="o-0").status_code == 201  # returning, today
    return code.id


def test_the_per_day_series_has_one_entry_per_utc_day_in_order(api: Api) -> None:
    code_id = _scans_over_three_days(api)

    board = _dashboard(api)

    days = [(TODAY - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    expected = [
        {"day": days[0], "scans": 2, "adds": 2, "refusals": 0},
        {"day": days[1], "scans": 1, "adds": 1, "refusals": 0},
        {"day": days[2], "scans": 1, "adds": 0, "refusals": 0},
    ]
    assert board["days"] == expected
    assert board["codes"][0]["daily"] == expected
    assert board["totals"] == {"scans": 4, "adds": 3, "refusals": 0}
    stats = api.admin.get(f"/v1/channel-codes/{code_id}/stats").json()
    assert stats["daily"] == expected


def test_from_and_to_bound_the_per_day_series(api: Api) -> None:
    _scans_over_three_days(api)
    yesterday = (TODAY - timedelta(days=1)).isoformat()

    window = _dashboard(api, **{"from": yesterday, "to": yesterday})
    from_today = _dashboard(api, **{"from": TODAY.isoformat()})
    until_yesterday = _dashboard(api, to=yesterday)
    future = _dashboard(api, **{"from": (TODAY + timedelta(days=1)).isoformat()})

    assert window["days"] == [{"day": yesterday, "scans": 1, "adds": 1, "refusals": 0}]
    assert window["codes"][0]["daily"] == window["days"]
    assert [d["day"] for d in from_today["days"]] == [TODAY.isoformat()]
    assert [d["day"] for d in until_yesterday["days"]] == [
        (TODAY - timedelta(days=2)).isoformat(),
        yesterday,
    ]
    assert future["days"] == [] and future["codes"][0]["daily"] == []


def test_the_totals_of_a_windowed_dashboard_count_only_the_days_in_the_window(api: Api) -> None:
    _scans_over_three_days(api)
    yesterday = (TODAY - timedelta(days=1)).isoformat()

    window = _dashboard(api, **{"from": yesterday, "to": yesterday})

    assert window["totals"] == {"scans": 1, "adds": 1, "refusals": 0}


def test_bad_dates_are_a_422_naming_the_parameter(api: Api) -> None:
    for params, field in (
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-13-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "from"),  # 367 days: 366 at most
    ):
        r = api.admin.get("/v1/dashboards/channels", params)
        assert_error(r, 422, "invalid_input", field=field)


def test_auditors_and_staff_read_the_dashboard_and_regulators_and_strangers_cannot(
    api: Api,
) -> None:
    _three_codes(api)

    for client in (api.as_role("auditor"), api.as_staff("s1"), api.as_manager("east")):
        assert _dashboard(api, client)["totals"] == {"scans": 4, "adds": 3, "refusals": 2}
    assert_error(api.as_role("regulator").get("/v1/dashboards/channels"), 403, "forbidden")
    assert_error(api.client.get("/v1/dashboards/channels"), 401, "unauthorized")
