"""Request shapes of the handover context (离职继承 / 在职转接)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.schemas.customers import Strict

_SLUG = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class HandoverCreate(Strict):
    kind: Literal["departure", "transfer"]  # 离职继承 (they have left) or 在职转接
    from_staff: str = Field(min_length=1, max_length=64, pattern=_SLUG)
    to_staff: str | None = Field(default=None, min_length=1, max_length=64, pattern=_SLUG)
    department: str | None = Field(default=None, min_length=1, max_length=80)  # round-robin
    reason: str = Field(default="", max_length=500)
    # Names the handover; the same key and request again answers it and records nothing new.
    key: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
    )
    customer_limit: int | None = Field(default=None, ge=1, le=1_000_000)


class HandoverRetry(Strict):
    items: list[str] | None = Field(default=None, max_length=10_000)  # all pending if omitted
    to_staff: str | None = Field(default=None, min_length=1, max_length=64, pattern=_SLUG)
