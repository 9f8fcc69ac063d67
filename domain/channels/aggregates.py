"""Channel anomaly alerts (渠道异常预警): the thresholds, versioned, and one alert per code and
window with its evidence, acknowledged and resolved by people (docs/channel-anomalies.md).

Public methods decide (and raise); the private `@event` methods only assign state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import Conflict, Gone, InvalidInput, Meta, ScrmAggregate, Versions, derived_id

OUTCOMES = ("expected", "fraudulent", "false_alarm")  # what an alert turned out to be


class ChannelAnomalyThresholds(Versions, ScrmAggregate):
    """The thresholds of every code (`default`) or of one code (its id), one version after
    another, each from its `effective_from`. A window is judged by the version in force at
    its start; before any, by the built-in defaults (version 0)."""

    VERSION, WHAT, NOT_IN_FORCE = "thresholds_version", "anomaly thresholds", "not_in_force"

    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("channel-anomaly-thresholds", key)

    @event("Published")
    def __init__(self, key: str, definition: dict[str, Any], effective_from: datetime, meta: Meta):
        self.key = key
        self.versions = []
        self._add(definition, effective_from, meta)

    def revise(self, definition: dict[str, Any], effective_from: datetime, meta: Meta) -> None:
        self._revised(
            definition=definition,
            effective_from=effective_from,
            thresholds_version=len(self.versions) + 1,
            meta=meta,
        )

    @event("Revised")
    def _revised(
        self,
        definition: dict[str, Any],
        effective_from: datetime,
        thresholds_version: int,
        meta: Meta,
    ) -> None:
        self._add(definition, effective_from, meta)

    def _add(self, definition: dict[str, Any], effective_from: datetime, meta: Meta) -> None:
        self._add_version(
            effective_from, definition=definition, recorded_at=meta.occurred_at, by=meta.actor
        )


class ChannelAnomaly(ScrmAggregate):
    """One abnormal window of one code. Its id is the code's and the window's, so the detector
    records it once however often it looks (a retried round, two processes)."""

    @staticmethod
    def create_id(code_id: str, window_start: datetime, window_minutes: int) -> UUID:
        return derived_id(
            "channel-anomaly", f"{code_id}:{window_start.isoformat()}:{window_minutes}"
        )

    @event("Detected")
    def __init__(
        self,
        code_id: str,
        code_name: str,
        window_start: datetime,
        window_end: datetime,
        window_minutes: int,
        local_start: str,
        count: int,
        refused: int,
        baseline: str | None,
        baseline_days: int,
        rule: str,
        rules: list[dict[str, Any]],
        thresholds: str,
        thresholds_version: int,
        meta: Meta,
    ):
        self.code_id = code_id
        self.window_start = window_start
        self.status = "open"

    def acknowledge(self, note: str, meta: Meta) -> None:
        """Someone has seen it and is looking; once."""
        self._open_still()
        if self.status == "acknowledged":
            raise Conflict("this alert was acknowledged already", code="anomaly_acknowledged")
        self._acknowledged(code_id=self.code_id, note=note, meta=meta)

    @event("Acknowledged")
    def _acknowledged(self, code_id: str, note: str, meta: Meta) -> None:
        self.status = "acknowledged"

    def resolve(self, outcome: str, note: str, meta: Meta) -> None:
        """Closed, saying what it was: an expected surge (a campaign), fraud, or a false alarm."""
        if outcome not in OUTCOMES:
            raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}", field="outcome")
        self._open_still()
        self._resolved(code_id=self.code_id, outcome=outcome, note=note, meta=meta)

    @event("Resolved")
    def _resolved(self, code_id: str, outcome: str, note: str, meta: Meta) -> None:
        self.status = "resolved"

    def _open_still(self) -> None:
        if self.status == "resolved":
            raise Gone("this alert was resolved already", code="anomaly_resolved")
