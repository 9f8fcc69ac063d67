"""What every context shares: the event envelope, the domain error family, the base aggregate.

Nothing here reads a clock, the environment or a database: commands carry their `Meta`
(business time, actor, source, correlation and causation), so replays are deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

# Stable namespace for ids derived from natural keys (staff ids, identity claims).
SCRM_NAMESPACE = uuid5(NAMESPACE_URL, "https://scrm.dev/ids")


# What personal data shows as once its key is destroyed (crypto-shredding), everywhere.
ERASED = "[erased]"


@lru_cache(maxsize=65_536)  # bulk commands derive the same ids several times (uuid5 is ~15 µs)
def derived_id(kind: str, key: str) -> UUID:
    """A stable aggregate id for a natural key, so `staff:zhang.san` is always the same stream."""
    return uuid5(SCRM_NAMESPACE, f"{kind}:{key}")


@dataclass(frozen=True)
class Meta:
    """The envelope every event carries besides its own data (see CONVENTIONS.md)."""

    occurred_at: datetime  # business time, UTC
    actor: str  # staff:<id>, user:<name>, integration:wecom, system:<process>
    source: str  # api, wecom, wechat_oa, taobao, ..., scheduler
    correlation_id: str  # one per incoming request or callback
    causation_id: str  # the command or event that caused this one

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise InvalidInput("occurred_at must be timezone-aware", field="occurred_at")
        if self.occurred_at.utcoffset() != UTC.utcoffset(None):
            object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(UTC))
        for name in ("actor", "source", "correlation_id", "causation_id"):
            if not getattr(self, name):
                raise InvalidInput(f"{name} is required in the event envelope", field=name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at,
            "actor": self.actor,
            "source": self.source,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }


@dataclass(frozen=True)
class Recorded:
    """What a command answers: the id it concerns and the position of its last event."""

    id: str
    position: int | None
    version: int | None = None


# --- Errors: raised by the domain, mapped to HTTP in one place (api/errors.py) -------------


class DomainError(Exception):
    """A command the domain will not carry out. `code` is stable; `detail` is for people."""

    code: ClassVar[str] = "domain_error"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        # More for a client to act on, beside the sentence (a merged customer's survivor).
        self.extra = dict(extra or {})
        if code is not None:
            self.code = code  # type: ignore[misc]


class InvalidInput(DomainError):
    """The command is malformed; nothing is recorded (HTTP 422)."""

    code = "invalid_input"


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    """Refused because of the current state, e.g. a stale expected version (HTTP 409)."""

    code = "conflict"


class ConcurrentUpdate(Conflict):
    """Another command changed the same aggregate first; nothing of this one was recorded."""

    code = "concurrent_update"


class Gone(DomainError):
    """Refused because the thing has ended: an expired or disabled code (HTTP 410)."""

    code = "gone"


class Refused(DomainError):
    """A refusal that is itself recorded as an event; carries the position of that event."""

    def __init__(self, cause: Conflict | Gone, position: int | None):
        super().__init__(cause.detail, field=cause.field, code=cause.code)
        self.cause = cause
        self.position = position


# --- Validation helpers --------------------------------------------------------------------

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def require_text(value: str, field: str, *, max_len: int = 200, allow_empty: bool = False) -> str:
    text = (value or "").strip()
    if not text and not allow_empty:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(text) > max_len:
        raise InvalidInput(f"{field} must be at most {max_len} characters", field=field)
    return text


def require_slug(value: str, field: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise InvalidInput(
            f"{field} must be 1-64 characters of letters, digits, '.', '_' or '-'", field=field
        )
    return value


def require_aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput(f"{field} must include a timezone", field=field)
    return value.astimezone(UTC)


# --- Aggregates ----------------------------------------------------------------------------


class ScrmAggregate(Aggregate):
    """Base aggregate: every event has a `meta` attribute holding the envelope."""

    class Event(Aggregate.Event):
        meta: Meta

    def check_version(self, expected_version: int | None) -> None:
        """Optimistic concurrency where the client states what it saw (If-Match)."""
        if expected_version is not None and expected_version != self.version:
            raise Conflict(
                f"stale version: expected {expected_version}, current is {self.version}",
                code="stale_version",
            )


class Versions:
    """Configuration whose every version is an event taking effect at a business time
    (settlement rule sets, price strategies, the retention policy, the RFM model): an
    auditor sees which version decided what. The aggregate records versions through its own
    `@event` methods (their names and fields are the stored events'), each calling
    `_add_version`; the one in force at a time is the latest `effective_from` not after it,
    the later version where two share one."""

    VERSION: ClassVar[str]  # the version number's name in events and answers: rule_version
    WHAT: ClassVar[str] = "configuration"  # for people: "rule set"
    NOT_IN_FORCE: ClassVar[str] = "not_in_force"  # the 409's code before the first version
    versions: list[dict[str, Any]]

    def _add_version(self, effective_from: datetime, **fields: Any) -> None:
        self.versions = [
            *self.versions,
            {self.VERSION: len(self.versions) + 1, **fields, "effective_from": effective_from},
        ]

    @property
    def current_version(self) -> int:
        return len(self.versions)

    def in_force(self, at: datetime) -> dict[str, Any] | None:
        found = [v for v in self.versions if v["effective_from"] <= at]
        return max(found, key=lambda v: (v["effective_from"], v[self.VERSION]), default=None)

    def version_at(self, at: datetime) -> dict[str, Any]:
        """`in_force`, or 409 before the first version takes effect."""
        found = self.in_force(at)
        if found is None:
            key = getattr(self, "key", None)
            raise Conflict(
                f"no version of {self.WHAT}{f' {key!r}' if key else ''} is in force at"
                f" {at.isoformat()}",
                code=self.NOT_IN_FORCE,
            )
        return found


def event_name(event_class: type) -> str:
    """Business name of an event class: `ChannelCode.Scanned` -> `ChannelCodeScanned`."""
    return event_class.__qualname__.replace(".", "")


def event_context(event_class: type) -> str:
    """Bounded context of an event class: `domain.customers.aggregates` -> `customers`."""
    parts = event_class.__module__.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "domain" else parts[-1]
