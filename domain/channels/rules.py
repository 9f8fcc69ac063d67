"""What makes a burst of scans abnormal for a channel code (渠道活码): the thresholds, checked,
and the rules that judge one window of scans. Pure: no clock, no I/O (docs/channel-anomalies.md).

Windows are fixed (tumbling), `window_minutes` long, counted from UTC midnight; the length
divides a day, so the windows of every day start at the same times and one window of one code
is one alert at most.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.shared import InvalidInput

DAY_MINUTES = 1440
RULES = ("quiet_hours", "above_baseline", "absolute")  # in the order an alert names them
CENT = Decimal("0.01")


def _whole(raw: Mapping[str, Any], name: str, field: str, default: int, low: int, high: int) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{field} must be a whole number from {low} to {high}", field=field)
    return value


def _object(raw: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{field} must be an object", field=field)
    return raw


def _known(raw: Mapping[str, Any], known: tuple[str, ...], prefix: str) -> None:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidInput(f"unknown setting {unknown[0]!r}", field=f"{prefix}{unknown[0]}")


def _clock(raw: Mapping[str, Any], name: str, default: str) -> time:
    value = raw.get(name, default)
    field = f"quiet_hours.{name}"
    try:
        if not isinstance(value, str) or len(value) != 5:
            raise ValueError
        return time.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a time of day, HH:MM", field=field) from None


@dataclass(frozen=True)
class QuietHours:
    """Hours when a code should hardly be scanned (e.g. 00:00-06:00 Beijing time): a smaller
    burst is already suspicious. `end` before `start` wraps past midnight."""

    start: time = time(0, 0)
    end: time = time(6, 0)
    timezone: str = "Asia/Shanghai"
    min_count: int = 50

    def covers(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone)).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
            "timezone": self.timezone,
            "min_count": self.min_count,
        }

    @classmethod
    def parse(cls, raw: Any) -> QuietHours:
        raw = _object(raw, "quiet_hours")
        _known(raw, ("start", "end", "timezone", "min_count"), "quiet_hours.")
        start, end = _clock(raw, "start", "00:00"), _clock(raw, "end", "06:00")
        if start == end:
            raise InvalidInput(
                "quiet hours must not start and end at once", field="quiet_hours.end"
            )
        zone = raw.get("timezone", cls.timezone)
        try:
            if not isinstance(zone, str) or not zone:
                raise ValueError
            ZoneInfo(zone)
        except (ValueError, ZoneInfoNotFoundError):
            raise InvalidInput(
                "quiet_hours.timezone must be an IANA time zone, e.g. Asia/Shanghai",
                field="quiet_hours.timezone",
            ) from None
        count = _whole(raw, "min_count", "quiet_hours.min_count", cls.min_count, 1, 10**6)
        return cls(start, end, zone, count)


@dataclass(frozen=True)
class Baseline:
    """A code's own typical rate: its scans per window over the `days` before the window. A
    window `multiple` times that, and at least `min_count` scans, is far above it."""

    days: int = 7
    multiple: Decimal = Decimal(5)
    min_count: int = 30

    def as_dict(self) -> dict[str, Any]:
        return {"days": self.days, "multiple": str(self.multiple), "min_count": self.min_count}

    @classmethod
    def parse(cls, raw: Any) -> Baseline:
        raw = _object(raw, "baseline")
        _known(raw, ("days", "multiple", "min_count"), "baseline.")
        days = _whole(raw, "days", "baseline.days", cls.days, 1, 90)
        value = raw.get("multiple", str(cls.multiple))
        try:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise InvalidOperation
            multiple = Decimal(str(value))
            if not multiple.is_finite() or not 1 < multiple <= 1000:
                raise InvalidOperation
        except InvalidOperation:
            raise InvalidInput(
                'baseline.multiple must be a number above 1 and at most 1000, e.g. "5"',
                field="baseline.multiple",
            ) from None
        count = _whole(raw, "min_count", "baseline.min_count", cls.min_count, 1, 10**6)
        return cls(days, multiple, count)


@dataclass(frozen=True)
class Thresholds:
    window_minutes: int = 15
    min_count: int = 200  # scans in one window that are a burst whenever they come
    baseline: Baseline | None = Baseline()
    quiet_hours: QuietHours | None = QuietHours()

    @classmethod
    def parse(cls, raw: Any) -> Thresholds:
        """Checked thresholds; a setting left out takes its default, `null` turns a rule off.
        An error names the setting at fault (HTTP 422), e.g. `quiet_hours.start`."""
        raw = _object(raw, "definition")
        _known(raw, ("window_minutes", "min_count", "baseline", "quiet_hours"), "")
        window = _whole(raw, "window_minutes", "window_minutes", cls.window_minutes, 1, 1440)
        if DAY_MINUTES % window:
            raise InvalidInput(
                "window_minutes must divide a day (e.g. 5, 10, 15, 30, 60)", field="window_minutes"
            )
        count = _whole(raw, "min_count", "min_count", cls.min_count, 1, 10**6)
        baseline = raw.get("baseline", {})
        quiet = raw.get("quiet_hours", {})
        return cls(
            window,
            count,
            Baseline.parse(baseline) if baseline is not None else None,
            QuietHours.parse(quiet) if quiet is not None else None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_minutes": self.window_minutes,
            "min_count": self.min_count,
            "baseline": self.baseline.as_dict() if self.baseline else None,
            "quiet_hours": self.quiet_hours.as_dict() if self.quiet_hours else None,
        }

    def window_of(self, at: datetime) -> tuple[datetime, datetime]:
        """[start, end) of the window `at` falls in."""
        at = at.astimezone(UTC)
        midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
        minutes = (at - midnight) // timedelta(minutes=self.window_minutes)
        start = midnight + timedelta(minutes=minutes * self.window_minutes)
        return start, start + timedelta(minutes=self.window_minutes)

    def judge(self, start: datetime, count: int, baseline: Decimal | None) -> list[dict[str, Any]]:
        """The rules a window of `count` scans starting at `start` breaks, each with the
        threshold it crossed, in the order of RULES; empty when it is normal. `baseline` is
        the code's scans per window before it (None: too little history to say)."""
        fired: list[dict[str, Any]] = []
        quiet = self.quiet_hours
        if quiet is not None and quiet.covers(start) and count >= quiet.min_count:
            fired.append({"rule": "quiet_hours", "threshold": quiet.min_count})
        if self.baseline is not None and baseline is not None:
            bar = (baseline * self.baseline.multiple).quantize(CENT, ROUND_HALF_UP)
            if count >= self.baseline.min_count and count >= bar:
                fired.append({"rule": "above_baseline", "threshold": str(bar)})
        if count >= self.min_count:
            fired.append({"rule": "absolute", "threshold": self.min_count})
        return fired


DEFAULTS = Thresholds()


def per_window(scans: int, span: timedelta, window_minutes: int) -> Decimal:
    """Scans per window over a span of history, to the hundredth."""
    windows = Decimal(span // timedelta(minutes=1)) / Decimal(window_minutes)
    return (Decimal(scans) / windows).quantize(CENT, ROUND_HALF_UP)
