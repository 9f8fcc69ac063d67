"""Request shapes of automation (rules are published with `ConfigChange`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.customers import Strict


class RuleToggle(Strict):
    reason: str = Field(default="", max_length=500)


class SweepRequest(Strict):
    # The moment the sweep looks from (default now): what is silent, which slot has come.
    at: datetime | None = None
