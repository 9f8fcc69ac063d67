"""Channel statistics: scans, adds and refusals per code, per UTC day and per reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.shared import Refused
from infra.bootstrap import Container
from projections.customers.channel_stats import channels_dashboard, code_stats
from tests.factories import meta
from tests.unit.world import T0, embedded_only, hire, print_code, project, scan

BEIJING = timezone(timedelta(hours=8))
LATER = datetime(2025, 4, 1, tzinfo=UTC)  # "now" for the status of each code


def test_a_codes_life_is_counted_per_day_and_per_refusal_reason(container: Container) -> None:
    app = container.customers
    hire(app, "a")
    code_id = print_code(app, ["a"], tags=["fair"], max_scans=3, expires_at=T0 + timedelta(days=3))
    quiet = print_code(app, ["a"], at=T0 - timedelta(hours=12))

    scan(app, code_id, "v1", at=T0)  # 2025-03-01: a new customer
    scan(app, code_id, "v1", at=T0 + timedelta(hours=1))  # the same visitor again
    # 01:00 in Beijing on 3 March is still 2 March in UTC.
    scan(app, code_id, "v2", at=datetime(2025, 3, 3, 1, 0, tzinfo=BEIJING))
    refusals = [
        ("v3", datetime(2025, 3, 2, 18, 0, tzinfo=UTC)),  # past the cap
        ("v4", datetime(2025, 3, 5, 9, 0, tzinfo=UTC)),  # past the expiry
    ]
    for visitor, at in refusals:
        with pytest.raises(Refused):
            scan(app, code_id, visitor, at=at)
    app.disable_channel_code(
        code_id,
        reason="fair over",
        expected_version=None,
        meta=meta(at=datetime(2025, 3, 5, 10, 0, tzinfo=UTC)),
    )
    with pytest.raises(Refused):
        scan(app, code_id, "v5", at=datetime(2025, 3, 6, 9, 0, tzinfo=UTC))
    project(container)

    stats = code_stats(container.read_db, str(code_id), LATER)

    assert stats is not None
    assert (stats["scans"], stats["adds"], stats["refusals"]) == (3, 2, 3)
    assert stats["refusals_by_reason"] == {
        "code_disabled": 1,
        "code_exhausted": 1,
        "code_expired": 1,
    }
    assert stats["daily"] == [
        {"day": "2025-03-01", "scans": 2, "adds": 1, "refusals": 0},
        {"day": "2025-03-02", "scans": 1, "adds": 1, "refusals": 1},
        {"day": "2025-03-05", "scans": 0, "adds": 0, "refusals": 1},
        {"day": "2025-03-06", "scans": 0, "adds": 0, "refusals": 1},
    ]
    assert stats["status"] == "disabled"
    assert stats["disabled_at"] == "2025-03-05T10:00:00Z"
    assert stats["last_scan_at"] == "2025-03-06T09:00:00Z"
    assert (stats["tags"], stats["staff_pool"], stats["max_scans"]) == (["fair"], ["a"], 3)
    assert stats["version"] == 1 + 3 + 3 + 1  # created, scans, refusals, disabled

    dashboard = channels_dashboard(container.read_db, LATER)
    assert dashboard["totals"] == {"scans": 3, "adds": 2, "refusals": 3}
    assert [c["id"] for c in dashboard["codes"]] == [str(code_id), str(quiet)]
    assert dashboard["codes"][1]["status"] == "active"
    assert dashboard["codes"][1]["daily"] == []
    assert [d["day"] for d in dashboard["days"]] == [
        "2025-03-01",
        "2025-03-02",
        "2025-03-05",
        "2025-03-06",
    ]
    window = channels_dashboard(container.read_db, LATER, since="2025-03-02", until="2025-03-05")
    assert window["days"] == [
        {"day": "2025-03-02", "scans": 1, "adds": 1, "refusals": 1},
        {"day": "2025-03-05", "scans": 0, "adds": 0, "refusals": 1},
    ]
    assert window["totals"] == {"scans": 1, "adds": 1, "refusals": 2}


@embedded_only
def test_a_codes_status_follows_its_cap_and_its_expiry(container: Container) -> None:
    app = container.customers
    hire(app, "a")
    capped = print_code(app, ["a"], max_scans=1)
    expiring = print_code(app, ["a"], expires_at=T0 + timedelta(days=1))
    scan(app, capped, "v1")
    project(container)

    def status(code_id: object, now: datetime) -> str:
        stats = code_stats(container.read_db, str(code_id), now)
        assert stats is not None
        return str(stats["status"])

    assert status(capped, T0) == "exhausted"
    assert status(expiring, T0) == "active"
    assert status(expiring, T0 + timedelta(days=1)) == "expired"
    assert code_stats(container.read_db, "no-such-code", T0) is None
