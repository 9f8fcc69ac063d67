"""Request and response shapes of the customers context (staff, channel codes, customers)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

IdentityKind = Literal[
    "wecom_external_userid",
    "openid",
    "unionid",
    "phone",
    "taobao_buyer",
    "jd_buyer",
    "pdd_buyer",
    "douyin_buyer",
    "youzan_buyer",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigChange(Strict):
    """The next version of event-sourced configuration (a rule set, a price strategy, the
    loyalty program, anomaly thresholds): the domain checks the definition itself, so its
    errors name the exact part at fault."""

    definition: dict[str, Any]
    # When the version takes effect (business time): what it decides is decided by the
    # version in force at that thing's own time. Default: now.
    effective_from: datetime | None = None
    # The version this change was made from (0 before any): a concurrent change is a 409.
    expected_version: int | None = Field(default=None, ge=0)


class StaffCreate(Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=80)
    department: str = Field(min_length=1, max_length=80)
    region: str = Field(min_length=1, max_length=80)


class DepartureCreate(Strict):
    reason: str = Field(default="", max_length=200)


class ChannelCodeCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    staff_pool: list[str] = Field(min_length=1, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=50)
    welcome_message: str = Field(default="", max_length=1000)
    expires_at: datetime | None = None
    max_scans: int | None = Field(default=None, ge=1)


class DisableCreate(Strict):
    reason: str = Field(default="", max_length=200)
    expected_version: int | None = Field(default=None, ge=1)


class VisitorIdentity(Strict):
    wecom_external_userid: str | None = Field(default=None, max_length=128)
    openid: str | None = Field(default=None, max_length=128)
    unionid: str | None = Field(default=None, max_length=128)


class ScanCreate(Strict):
    visitor: VisitorIdentity
    device: str | None = Field(default=None, max_length=200)
    ip: str | None = Field(default=None, max_length=64)


class Identity(Strict):
    kind: IdentityKind
    value: str = Field(min_length=1, max_length=128)


class CustomerCreate(Strict):
    identities: list[Identity] = Field(min_length=1, max_length=20)
    tags: list[str] = Field(default_factory=list, max_length=50)
    owner: str | None = Field(default=None, max_length=64)


class TagsChange(Strict):
    add: list[str] = Field(default_factory=list, max_length=50)
    remove: list[str] = Field(default_factory=list, max_length=50)
    expected_version: int | None = Field(default=None, ge=1)


class BirthdayChange(Strict):
    birthday: date = Field(description="date of birth, YYYY-MM-DD (sealed as personal data)")


class OwnerChange(Strict):
    staff_id: str = Field(min_length=1, max_length=64)
    expected_version: int | None = Field(default=None, ge=1)


class MergeCreate(Strict):
    customer_id: UUID = Field(description="the customer merged into (absorbed by) this one")
    reason: str = Field(min_length=1, max_length=500)
    # customer id -> the version the client saw, for either or both
    expected_versions: dict[UUID, Annotated[int, Field(ge=1)]] | None = None


class MergeUndo(Strict):
    reason: str = Field(min_length=1, max_length=500)


class Recorded(BaseModel):
    id: str
    position: int | None
    version: int | None = None


class ScanRecorded(Recorded):
    customer_id: str
    new_customer: bool
    assigned_staff: str
    welcome_message: str


class MergeRecorded(Recorded):
    absorbed_id: str
    absorbed_version: int
