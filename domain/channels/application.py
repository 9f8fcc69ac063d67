"""Channel anomalies' service layer: publish thresholds, record what the detector found (once),
acknowledge and resolve alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.channels.aggregates import ChannelAnomaly, ChannelAnomalyThresholds
from domain.channels.rules import DEFAULTS, Thresholds
from domain.customers.aggregates import ChannelCode
from domain.shared import (
    InvalidInput,
    Meta,
    NotFound,
    Recorded,
    require_text,
)
from domain.store import ScrmApplication

DEFAULT_KEY = "default"  # the thresholds of every code that has none of its own


@dataclass(frozen=True)
class InForce:
    """The thresholds that judge a window: whose (`default` or the code's id) and which
    version (0: the built-in defaults)."""

    key: str
    version: int
    thresholds: Thresholds


@dataclass(frozen=True)
class Evidence:
    """What the detector saw in one window of one code, and what it broke."""

    code_id: str
    code_name: str
    window_start: datetime
    window_end: datetime
    local_start: str
    count: int
    refused: int
    baseline: str | None
    baseline_days: int
    rules: list[dict[str, Any]]
    decided_by: InForce


class ChannelsApp(ScrmApplication):
    def __init__(self, env: dict[str, str] | None = None, *, share_with: Any = None):
        super().__init__(env, share_with=share_with)
        # (key, version) -> parsed thresholds. A recorded version never changes.
        self._parsed: dict[tuple[str, int], Thresholds] = {}

    # --- thresholds ------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        """`default`, or the id of a channel code that exists."""
        if key == DEFAULT_KEY:
            return key
        try:
            code = UUID(key)
        except (ValueError, AttributeError, TypeError):
            raise InvalidInput("key is `default` or a channel code's id", field="key") from None
        if self.find(ChannelCode, code) is None:
            raise NotFound(f"channel code {key} not found")
        return str(code)

    def publish_thresholds(
        self,
        key: str,
        definition: Any,
        *,
        effective_from: datetime,
        expected_version: int | None,
        meta: Meta,
    ) -> Recorded:
        """The next version of a key's thresholds, stored whole (defaults filled in), so each
        version reads alone. `expected_version` is the version the caller last saw (0: none)."""
        key = self._key(key)
        parsed = Thresholds.parse(definition)
        return self.publish_version(
            ChannelAnomalyThresholds,
            key,
            parsed.as_dict(),
            parse=Thresholds.parse,
            effective_from=effective_from,
            expected_version=expected_version,
            meta=meta,
        )

    def _thresholds(self, key: str) -> ChannelAnomalyThresholds | None:
        return self.find(ChannelAnomalyThresholds, ChannelAnomalyThresholds.create_id(key))

    def in_force(self, code_id: str, at: datetime, loaded: dict[str, Any] | None = None) -> InForce:
        """The code's own thresholds in force at `at`, else the default ones, else the
        built-in defaults. `loaded` caches the aggregates over one detector round."""
        cache = loaded if loaded is not None else {}
        for key in (code_id, DEFAULT_KEY):
            if key not in cache:
                cache[key] = self._thresholds(key)
            found = cache[key]
            version = found.in_force(at) if found is not None else None
            if version is not None:
                number = version["thresholds_version"]
                if (key, number) not in self._parsed:
                    self._parsed[(key, number)] = Thresholds.parse(version["definition"])
                return InForce(key, number, self._parsed[(key, number)])
        return InForce(DEFAULT_KEY, 0, DEFAULTS)

    def describe_thresholds(self, key: str, as_of: datetime) -> dict[str, Any]:
        """Every version on record and the one in force at `as_of` (0: the built-in defaults,
        shown too)."""
        key = self._key(key)
        found = self._thresholds(key)
        versions = found.versions if found is not None else []
        in_force = found.in_force(as_of) if found is not None else None
        return {
            "key": key,
            "version": len(versions),
            "in_force": in_force["thresholds_version"] if in_force is not None else 0,
            "defaults": DEFAULTS.as_dict(),
            "versions": [
                {
                    **v,
                    "effective_from": v["effective_from"].isoformat(),
                    "recorded_at": v["recorded_at"].isoformat(),
                }
                for v in versions
            ],
        }

    # --- alerts ----------------------------------------------------------------------------

    def record_anomaly(self, evidence: Evidence, meta: Meta) -> int | None:
        """`ChannelAnomalyDetected` for a window, unless it is on record already (then None):
        whoever records it first wins, the other finds it."""
        e = evidence
        minutes = int((e.window_end - e.window_start).total_seconds() // 60)
        ident = ChannelAnomaly.create_id(e.code_id, e.window_start, minutes)

        def attempt() -> int | None:
            if self.find(ChannelAnomaly, ident) is not None:
                return None
            anomaly = ChannelAnomaly(
                code_id=e.code_id,
                code_name=e.code_name,
                window_start=e.window_start,
                window_end=e.window_end,
                window_minutes=minutes,
                local_start=e.local_start,
                count=e.count,
                refused=e.refused,
                baseline=e.baseline,
                baseline_days=e.baseline_days,
                rule=e.rules[0]["rule"],
                rules=e.rules,
                thresholds=e.decided_by.key,
                thresholds_version=e.decided_by.version,
                meta=meta,
            )
            assert anomaly.id == ident  # the window's id: a second recording conflicts
            return self.save_all(anomaly)

        return self.retrying(attempt)

    def anomaly(self, anomaly_id: str) -> ChannelAnomaly:
        try:
            ident = UUID(anomaly_id)
        except (ValueError, AttributeError, TypeError):
            raise InvalidInput("anomaly_id must be an alert's id", field="anomaly_id") from None
        return self.load(ChannelAnomaly, ident, f"channel anomaly {anomaly_id}")

    def acknowledge(self, anomaly_id: str, *, note: str | None, meta: Meta) -> Recorded:
        text = require_text(note or "", "note", max_len=500, allow_empty=True)

        def attempt() -> Recorded:
            found = self.anomaly(anomaly_id)
            found.acknowledge(text, meta)
            return Recorded(anomaly_id, self.save_all(found), found.version)

        return self.retrying(attempt)

    def resolve(self, anomaly_id: str, *, outcome: str, note: str | None, meta: Meta) -> Recorded:
        text = require_text(note or "", "note", max_len=500, allow_empty=True)

        def attempt() -> Recorded:
            found = self.anomaly(anomaly_id)
            found.resolve(outcome, text, meta)
            return Recorded(anomaly_id, self.save_all(found), found.version)

        return self.retrying(attempt)
