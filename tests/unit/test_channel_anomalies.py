"""Channel anomaly alerts: a burst in quiet hours, a rate far above the code's own baseline or
an absolute count records `ChannelAnomalyDetected` with its evidence, once per code and window
however often the detector looks; thresholds are versioned configuration; people acknowledge
and resolve alerts."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.channels.rules import DEFAULTS, Thresholds
from domain.shared import Conflict, Gone, InvalidInput, NotFound, Refused
from infra.bootstrap import Container
from infra.channels import AnomalyDetector
from projections.channels import anomalies as read
from tests.factories import meta
from tests.unit.world import T0, embedded_only, hire, names_in_log, print_code, project, scan

# 2025-03-02 02:00 in Beijing: the middle of the night.
NIGHT = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
SMALL = {
    "window_minutes": 60,
    "min_count": 20,
    "baseline": {"days": 2, "multiple": "5", "min_count": 4},
    "quiet_hours": {"start": "00:00", "end": "06:00", "timezone": "Asia/Shanghai", "min_count": 3},
}


def detect(c: Container) -> list[dict[str, Any]]:
    """Read models current, the detector over everything new, its alerts projected."""
    assert c.anomaly_detector is not None
    project(c)
    while c.anomaly_detector.run_once() is not None:
        project(c)
    return read.anomalies(c.read_db)


def burst(c: Container, code: UUID, at: datetime, scans: int) -> None:
    """Scans a minute apart; a refused one is recorded and counts too."""
    for n in range(scans):
        with contextlib.suppress(Refused):
            scan(c.customers, code, f"v{n}", at=at + timedelta(minutes=n))


def small_thresholds(c: Container, key: str = "default", **changes: Any) -> None:
    c.channels.publish_thresholds(
        key,
        {**SMALL, **changes},
        effective_from=T0 - timedelta(days=30),
        expected_version=None,
        meta=meta(actor="user:admin"),
    )


# --- the rules ------------------------------------------------------------------------------


def test_the_defaults_apply_when_nothing_is_published() -> None:
    assert Thresholds.parse({}) == DEFAULTS
    assert DEFAULTS.as_dict() == {
        "window_minutes": 15,
        "min_count": 200,
        "baseline": {"days": 7, "multiple": "5", "min_count": 30},
        "quiet_hours": {
            "start": "00:00",
            "end": "06:00",
            "timezone": "Asia/Shanghai",
            "min_count": 50,
        },
    }
    assert Thresholds.parse(DEFAULTS.as_dict()) == DEFAULTS


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"window_minutes": 7}, "window_minutes"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"min_count": "many"}, "min_count"),
        ({"baseline": {"multiple": "1"}}, "baseline.multiple"),
        ({"baseline": {"days": 365}}, "baseline.days"),
        ({"baseline": []}, "baseline"),
        ({"quiet_hours": {"start": "25:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "06:00"}}, "quiet_hours.end"),
        ({"quiet_hours": {"timezone": "Mars/Olympus"}}, "quiet_hours.timezone"),
        ({"quiet_hours": {"min_count": 0}}, "quiet_hours.min_count"),
        ({"burst": 3}, "burst"),
    ],
)
def test_a_bad_definition_names_the_setting_at_fault(definition: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        Thresholds.parse(definition)
    assert bad.value.field == field


def test_windows_start_at_fixed_times_and_quiet_hours_wrap_past_midnight() -> None:
    t = Thresholds.parse({"quiet_hours": {"start": "23:00", "end": "05:00"}})
    assert t.window_of(datetime(2025, 3, 1, 18, 7, 30, tzinfo=UTC)) == (
        datetime(2025, 3, 1, 18, 0, tzinfo=UTC),
        datetime(2025, 3, 1, 18, 15, tzinfo=UTC),
    )
    quiet = t.quiet_hours
    assert quiet is not None
    assert quiet.covers(datetime(2025, 3, 1, 15, 0, tzinfo=UTC))  # 23:00 in Beijing
    assert quiet.covers(datetime(2025, 3, 1, 20, 59, tzinfo=UTC))  # 04:59
    assert not quiet.covers(datetime(2025, 3, 1, 21, 0, tzinfo=UTC))  # 05:00


def test_a_window_is_judged_by_every_rule_it_breaks() -> None:
    t = Thresholds.parse(SMALL)
    assert t.judge(NIGHT, 2, Decimal("0.1")) == []
    assert t.judge(NIGHT, 25, Decimal("1")) == [
        {"rule": "quiet_hours", "threshold": 3},
        {"rule": "above_baseline", "threshold": "5.00"},
        {"rule": "absolute", "threshold": 20},
    ]
    # By day, a busy code's usual rate is no burst; without history the baseline says nothing.
    assert t.judge(T0, 12, Decimal("4")) == []
    assert t.judge(T0, 12, None) == []
    assert t.judge(T0, 12, Decimal("2")) == [{"rule": "above_baseline", "threshold": "10.00"}]


# --- detection ------------------------------------------------------------------------------


def test_a_burst_in_quiet_hours_is_recorded_with_its_evidence(container: Container) -> None:
    hire(container.customers, "a")
    code = print_code(container.customers, ["a"])
    small_thresholds(container)
    burst(container, code, T0, 3)  # 17:00 in Beijing: business hours
    assert detect(container) == []
    burst(container, code, NIGHT + timedelta(minutes=5), 3)

    [alert] = detect(container)

    assert alert["code_id"] == str(code) and alert["code_name"] == "spring fair"
    assert (alert["window_start"], alert["window_end"]) == (
        "2025-03-01T18:00:00.000000Z",
        "2025-03-01T19:00:00.000000Z",
    )
    assert alert["local_start"] == "2025-03-02T02:00:00+08:00"
    assert (alert["count"], alert["refused"], alert["rule"], alert["status"]) == (
        3,
        0,
        "quiet_hours",
        "open",
    )
    assert alert["rules"] == [{"rule": "quiet_hours", "threshold": 3}]
    assert (alert["thresholds"], alert["thresholds_version"]) == ("default", 1)
    # The three scans of the afternoon over the day and a half since the code was printed.
    assert (alert["baseline"], alert["baseline_days"]) == ("0.09", 2)
    [detected] = [r for r in container.read_log(0, 1000) if r.name == "ChannelAnomalyDetected"]
    assert detected.actor == "system:channel-anomalies" and detected.source == "channels"
    assert detected.occurred_at.startswith("2025-03-01T18:07")  # the last scan it saw
    assert detected.causation_id.startswith(f"event:{code}:")


@embedded_only
def test_a_rate_far_above_the_codes_own_baseline_is_an_anomaly(container: Container) -> None:
    hire(container.customers, "a")
    old = print_code(container.customers, ["a"], at=T0 - timedelta(days=3))
    young = print_code(container.customers, ["a"], at=T0 - timedelta(hours=12))
    small_thresholds(container)
    for hours in (44, 36, 20, 6):  # four scans over the two days before
        scan(container.customers, old, "regular", at=T0 - timedelta(hours=hours))
    burst(container, old, T0, 5)
    burst(container, young, T0, 5)  # too young to have a rate of its own

    [alert] = detect(container)

    assert alert["code_id"] == str(old)
    assert (alert["rule"], alert["count"], alert["baseline"]) == ("above_baseline", 5, "0.08")
    assert alert["rules"] == [{"rule": "above_baseline", "threshold": "0.40"}]


@embedded_only
def test_refused_scans_count_and_an_absolute_burst_fires_at_any_hour(
    container: Container,
) -> None:
    hire(container.customers, "a")
    code = print_code(container.customers, ["a"], max_scans=2)
    small_thresholds(container, min_count=4, baseline=None)
    burst(container, code, T0, 4)  # two scans, then two refused: the code is exhausted

    [alert] = detect(container)

    assert (alert["rule"], alert["count"], alert["refused"]) == ("absolute", 4, 2)


def test_the_same_window_is_recorded_once_however_often_it_is_looked_at(
    container: Container,
) -> None:
    hire(container.customers, "a")
    code = print_code(container.customers, ["a"])
    small_thresholds(container)
    burst(container, code, NIGHT, 3)
    detect(container)
    burst(container, code, NIGHT + timedelta(minutes=10), 2)  # the same window grows
    detect(container)

    # A round retried from the start, and a second process doing the same at once.
    assert container.anomaly_detector is not None
    with container.read_db.transaction() as cur:
        container.anomaly_detector.marks.reset(cur, "detected")
    other = AnomalyDetector(container)
    with container.read_db.transaction() as cur:
        other.marks.reset(cur, "detected")
    assert other.run_once() is not None
    [alert] = detect(container)

    assert names_in_log(container).count("ChannelAnomalyDetected") == 1
    assert alert["count"] == 3  # the evidence is what it saw when it fired


@embedded_only
def test_thresholds_are_versioned_and_a_code_may_have_its_own(container: Container) -> None:
    hire(container.customers, "a")
    fair = print_code(container.customers, ["a"])
    quiet = print_code(container.customers, ["a"])
    ch = container.channels
    first = ch.publish_thresholds(
        "default", SMALL, effective_from=T0 - timedelta(days=30), expected_version=0, meta=meta()
    )
    assert first.version == 1
    with pytest.raises(Conflict) as stale:
        ch.publish_thresholds("default", SMALL, effective_from=T0, expected_version=0, meta=meta())
    assert stale.value.code == "stale_version"
    # From the evening on, three scans at night are no longer a burst, except at the fair.
    later = {**SMALL, "quiet_hours": {**SMALL["quiet_hours"], "min_count": 10}}  # type: ignore[dict-item]
    ch.publish_thresholds(
        "default", later, effective_from=NIGHT - timedelta(hours=1), expected_version=1, meta=meta()
    )
    ch.publish_thresholds(str(fair), SMALL, effective_from=T0, expected_version=0, meta=meta())
    for code in (fair, quiet):
        burst(container, code, NIGHT, 3)

    [alert] = detect(container)

    assert (alert["code_id"], alert["thresholds"], alert["thresholds_version"]) == (
        str(fair),
        str(fair),
        1,
    )
    shown = ch.describe_thresholds("default", NIGHT)
    assert (shown["version"], shown["in_force"]) == (2, 2)
    assert shown["versions"][1]["definition"]["quiet_hours"]["min_count"] == 10
    assert ch.describe_thresholds("default", T0 - timedelta(days=31))["in_force"] == 0
    with pytest.raises(NotFound):
        ch.describe_thresholds("00000000-0000-0000-0000-000000000000", T0)
    with pytest.raises(InvalidInput) as bad:
        ch.publish_thresholds("x", SMALL, effective_from=T0, expected_version=None, meta=meta())
    assert bad.value.field == "key"


@embedded_only
def test_an_alert_is_acknowledged_once_and_resolved_with_what_it_was(
    container: Container,
) -> None:
    hire(container.customers, "a")
    code = print_code(container.customers, ["a"])
    small_thresholds(container)
    burst(container, code, NIGHT, 3)
    [alert] = detect(container)
    ch, ident = container.channels, alert["anomaly_id"]

    ch.acknowledge(ident, note="looking", meta=meta(actor="user:ops"))
    with pytest.raises(Conflict) as twice:
        ch.acknowledge(ident, note=None, meta=meta())
    assert twice.value.code == "anomaly_acknowledged"
    with pytest.raises(InvalidInput) as bad:
        ch.resolve(ident, outcome="dunno", note=None, meta=meta())
    assert bad.value.field == "outcome"
    ch.resolve(ident, outcome="fraudulent", note="one device", meta=meta(actor="user:ops"))
    with pytest.raises(Gone) as gone:
        ch.acknowledge(ident, note=None, meta=meta())
    assert gone.value.code == "anomaly_resolved"
    project(container)

    [shown] = read.anomalies(container.read_db, code_id=str(code), status="resolved")
    assert (shown["acknowledged_by"], shown["acknowledge_note"]) == ("user:ops", "looking")
    assert (shown["outcome"], shown["resolve_note"], shown["resolved_by"]) == (
        "fraudulent",
        "one device",
        "user:ops",
    )
    assert read.alerts_by_code(container.read_db) == {}
