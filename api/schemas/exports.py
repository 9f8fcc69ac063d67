"""Request shape of an archive export (POST /v1/exports)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.customers import Strict


class ExportCreate(Strict):
    from_: datetime = Field(alias="from", description="business time, with a timezone")
    to: datetime = Field(description="business time, exclusive, with a timezone")
    customers: list[str] | None = Field(default=None, max_length=100)
    staff: list[str] | None = Field(default=None, max_length=100)
    contexts: list[str] | None = Field(default=None, max_length=10)
