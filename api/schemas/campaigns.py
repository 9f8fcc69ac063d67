"""Request shapes of fission campaigns (营销裂变)."""

from __future__ import annotations

from pydantic import Field

from api.schemas.customers import Strict

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class CampaignJoin(Strict):
    customer_id: str = Field(min_length=1, max_length=64)


class CampaignViewed(Strict):
    code: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE)


class InviteeArrival(Strict):
    """An invitee came through a participant's link (`?invite=CODE`): who they are, and the
    device fingerprint and IP the landing page saw (kept only as keyed hashes)."""

    code: str = Field(min_length=1, max_length=64, pattern=CODE)
    customer_id: str = Field(min_length=1, max_length=64)
    device: str | None = Field(default=None, min_length=1, max_length=200)
    ip: str | None = Field(default=None, min_length=1, max_length=64)


class RewardReview(Strict):
    note: str = Field(default="", max_length=500)
