"""Request shapes of channel anomaly alerts. Thresholds are JSON the domain validates itself,
so its errors name the exact setting (`quiet_hours.start`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.customers import Strict


class ThresholdsChange(Strict):
    definition: dict[str, Any]
    # When the version takes effect (business time): a window is judged by the version in
    # force then. Default: now.
    effective_from: datetime | None = None
    # The version this change was made from (0 before any): a concurrent change is a 409.
    expected_version: int | None = Field(default=None, ge=0)


class Acknowledgement(Strict):
    note: str | None = Field(default=None, max_length=500)


class Resolution(Strict):
    outcome: str = Field(min_length=1, max_length=32)  # expected, fraudulent or false_alarm
    note: str | None = Field(default=None, max_length=500)
