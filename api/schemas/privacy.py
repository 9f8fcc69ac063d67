"""Request shapes of erasure, legal holds and the retention policy."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.customers import Strict


class ErasureCreate(Strict):
    # How the request reached us (phone, email, in person, app): no personal data here.
    received_via: str = Field(min_length=1, max_length=50)


class LegalHoldCreate(Strict):
    customer_id: str = Field(min_length=1, max_length=64)
    case_reference: str = Field(min_length=1, max_length=100)
    authority: str = Field(min_length=1, max_length=100)


class RetentionPolicyChange(Strict):
    industry: str = Field(min_length=1, max_length=40)
    # Years of communications kept after the last contact; the industry's default if left out.
    communications_years: int | None = Field(default=None, ge=0, le=30)
    effective_from: datetime | None = None
