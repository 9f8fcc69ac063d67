"""Request shapes of segments (智能分组). Rules are validated by the domain, which names the
JSON path of the bad part (`rule.all[1].op`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.customers import Strict


class SegmentCreate(Strict):
    name: str = Field(min_length=1, max_length=80)
    # {"all"|"any": [...]}, {"not": ...}, {"field", "op", "value"}, {"bought_category", ...}
    rule: dict[str, Any]
    auto_tag: str | None = Field(default=None, max_length=40)


class SegmentRevision(Strict):
    rule: dict[str, Any]
    reason: str = Field(min_length=1, max_length=200)
    # The version this revision was made from: another revision since is a 409 stale_version.
    expected_version: int = Field(ge=1)


class SegmentRetirement(Strict):
    reason: str = Field(min_length=1, max_length=200)
