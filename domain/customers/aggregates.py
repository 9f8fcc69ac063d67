"""Staff, channel codes (渠道活码), customers and identity claims.

Public methods validate and decide; the private `@event` methods only assign state, because
they run again on every replay.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import (
    Conflict,
    Gone,
    InvalidInput,
    Meta,
    ScrmAggregate,
    derived_id,
    require_aware,
    require_slug,
    require_text,
)

# Identity kinds a customer can be known by. Phone is personal data: sealed in events.
# A platform buyer (an e-commerce buyer's stable id on that platform) is an identity too, so
# that a buyer's orders follow into the customer's portrait once the link is made.
BUYER_KINDS = ("taobao_buyer", "jd_buyer", "pdd_buyer", "douyin_buyer", "youzan_buyer")
IDENTITY_KINDS = ("wecom_external_userid", "openid", "unionid", "phone", *BUYER_KINDS)
_BUYER_ID = re.compile(r"^[!-~]{1,128}$")  # platforms' open ids: printable ASCII, no spaces
_PHONE = re.compile(r"^\+?[0-9][0-9\- ]{5,19}$")
_OPAQUE_ID = re.compile(r"^[A-Za-z0-9_\-@.]{1,128}$")
SEALED_KINDS = ("phone",)  # identity values stored sealed under a customer's data key


def normalise_identity(kind: str, value: str, within: str = "identities") -> str:
    """Validate one identity; returns the canonical value (phones lose spaces and dashes).
    `within` names where the identity sits in the request, for the error's field."""
    if kind not in IDENTITY_KINDS:
        raise InvalidInput(
            f"identity kind must be one of {', '.join(IDENTITY_KINDS)}", field=f"{within}.kind"
        )
    field = f"{within}.{kind}"
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{kind} must not be empty", field=field)
    value = value.strip()
    if kind == "phone":
        if not _PHONE.match(value):
            raise InvalidInput("phone must be 6-20 digits", field=field)
        return re.sub(r"[\s\-]", "", value)
    if kind in BUYER_KINDS:
        if not _BUYER_ID.match(value):
            raise InvalidInput(f"{kind} must be 1-128 printable characters", field=field)
        return value
    if not _OPAQUE_ID.match(value):
        raise InvalidInput(f"{kind} must be 1-128 letters, digits or _-@.", field=field)
    return value


def normalise_tags(tags: list[str] | tuple[str, ...], field: str = "tags") -> list[str]:
    out: list[str] = []
    for tag in tags:
        text = require_text(tag, field, max_len=40)
        if text not in out:
            out.append(text)
    if len(out) > 50:
        raise InvalidInput("at most 50 tags", field=field)
    return out


class Staff(ScrmAggregate):
    """A member of staff who serves customers on WeCom."""

    @classmethod
    def register(cls, staff_id: str, name: str, department: str, region: str, meta: Meta) -> Staff:
        return cls(
            staff_id=require_slug(staff_id, "id"),
            name=require_text(name, "name", max_len=80),
            department=require_text(department, "department", max_len=80),
            region=require_text(region, "region", max_len=80),
            meta=meta,
        )

    @staticmethod
    def create_id(staff_id: str) -> UUID:
        return derived_id("staff", staff_id)

    @event("Registered")
    def __init__(self, staff_id: str, name: str, department: str, region: str, meta: Meta):
        self.staff_id = staff_id
        self.name = name
        self.department = department
        self.region = region
        self.departed = False

    def depart(self, reason: str, meta: Meta) -> None:
        if self.departed:
            raise Conflict(f"staff {self.staff_id} has already departed", code="already_departed")
        self._departed(reason=require_text(reason, "reason", allow_empty=True), meta=meta)

    @event("Departed")
    def _departed(self, reason: str, meta: Meta) -> None:
        self.departed = True


class Availability:
    """Who in a pool can serve, asked only as the rotation needs it and remembered: the
    next in turn is usually free, so the rest of the pool is never looked up."""

    def __init__(self, can_serve: Callable[[str], bool]):
        self._can_serve = can_serve
        self._known: dict[str, bool] = {}

    def __contains__(self, staff_id: object) -> bool:
        if not isinstance(staff_id, str):
            return False
        if staff_id not in self._known:
            self._known[staff_id] = self._can_serve(staff_id)
        return self._known[staff_id]


@dataclass(frozen=True)
class Visitor:
    """Who scanned a code, as the landing page or WeCom tells us."""

    identities: dict[str, str]  # kind -> normalised value (phone not allowed here)
    device_hash: str | None = None  # keyed hashes: bursts are comparable, nobody is exposed
    ip_hash: str | None = None


def wecom_state(code_id: UUID) -> str:
    """The `state` a WeCom contact way (联系我) carries for a code: 22 characters, inside
    WeCom's 30-character limit, and reversible without a lookup table."""
    return base64.urlsafe_b64encode(code_id.bytes).decode().rstrip("=")


def code_from_state(state: str | None) -> UUID | None:
    if not state or len(state) != 22:
        return None
    try:
        return UUID(bytes=base64.urlsafe_b64decode(state + "=="))
    except ValueError:
        return None


class ChannelCode(ScrmAggregate):
    """渠道活码: a QR code that routes each visitor to the next staff member of its pool."""

    @classmethod
    def create(
        cls,
        *,
        name: str,
        staff_pool: list[str],
        tags: list[str],
        welcome_message: str,
        expires_at: datetime | None,
        max_scans: int | None,
        meta: Meta,
    ) -> ChannelCode:
        pool: list[str] = []
        for staff_id in staff_pool:
            require_slug(staff_id, "staff_pool")
            if staff_id not in pool:
                pool.append(staff_id)
        if not pool:
            raise InvalidInput("staff_pool must name at least one staff member", field="staff_pool")
        if max_scans is not None and max_scans < 1:
            raise InvalidInput("max_scans must be at least 1", field="max_scans")
        expires = require_aware(expires_at, "expires_at")
        if expires is not None and expires <= meta.occurred_at:
            raise InvalidInput("expires_at must be in the future", field="expires_at")
        return cls(
            name=require_text(name, "name", max_len=100),
            staff_pool=pool,
            tags=normalise_tags(tags),
            welcome_message=require_text(
                welcome_message, "welcome_message", max_len=1000, allow_empty=True
            ),
            expires_at=expires,
            max_scans=max_scans,
            meta=meta,
        )

    @event("Created")
    def __init__(
        self,
        name: str,
        staff_pool: list[str],
        tags: list[str],
        welcome_message: str,
        expires_at: datetime | None,
        max_scans: int | None,
        meta: Meta,
    ):
        self.name = name
        self.staff_pool = staff_pool
        self.tags = tags
        self.welcome_message = welcome_message
        self.expires_at = expires_at
        self.max_scans = max_scans
        self.scans = 0
        self.rotation_cursor = 0
        self.disabled = False

    def refusal_for(self, now: datetime) -> Conflict | Gone | None:
        """Why a scan at `now` must be refused, if it must."""
        if self.disabled:
            return Gone("this channel code has been disabled", code="code_disabled")
        if self.expires_at is not None and now >= self.expires_at:
            return Gone("this channel code has expired", code="code_expired")
        if self.max_scans is not None and self.scans >= self.max_scans:
            return Conflict(
                f"this channel code has reached its limit of {self.max_scans} scans",
                code="code_exhausted",
            )
        return None

    def next_staff(self, available: Container[str]) -> tuple[str, int] | None:
        """Round-robin across the pool from the cursor, skipping staff who cannot serve."""
        size = len(self.staff_pool)
        for step in range(size):
            index = (self.rotation_cursor + step) % size
            if self.staff_pool[index] in available:
                return self.staff_pool[index], (index + 1) % size
        return None

    def scan(
        self,
        *,
        visitor: Visitor,
        customer_id: UUID,
        new_customer: bool,
        returning_owner: str | None,
        available_staff: Container[str],
        meta: Meta,
    ) -> str:
        """Record a scan and return the staff member it is routed to.

        A returning customer whose owner can still serve goes back to that owner (one
        customer, one point of contact) and does not consume a turn of the rotation.
        """
        refusal = self.refusal_for(meta.occurred_at)
        if refusal is not None:
            raise refusal
        if returning_owner is not None and returning_owner in available_staff:
            assigned, cursor = returning_owner, self.rotation_cursor
        else:
            chosen = self.next_staff(available_staff)
            if chosen is None:
                raise Conflict(
                    "no staff member of this code's pool is available", code="no_available_staff"
                )
            assigned, cursor = chosen
        self._scanned(
            customer_id=customer_id,
            new_customer=new_customer,
            assigned_staff=assigned,
            rotation_cursor=cursor,
            visitor_identities=dict(visitor.identities),
            device_hash=visitor.device_hash,
            ip_hash=visitor.ip_hash,
            meta=meta,
        )
        return assigned

    @event("Scanned")
    def _scanned(
        self,
        customer_id: UUID,
        new_customer: bool,
        assigned_staff: str,
        rotation_cursor: int,
        visitor_identities: dict[str, str],
        device_hash: str | None,
        ip_hash: str | None,
        meta: Meta,
    ) -> None:
        self.scans += 1
        self.rotation_cursor = rotation_cursor

    def refuse_scan(self, reason: Conflict | Gone, visitor: Visitor, meta: Meta) -> None:
        """Refusals are facts too: anomaly detection reads them."""
        self._scan_refused(
            reason=reason.code,
            visitor_identities=dict(visitor.identities),
            device_hash=visitor.device_hash,
            ip_hash=visitor.ip_hash,
            meta=meta,
        )

    @event("ScanRefused")
    def _scan_refused(
        self,
        reason: str,
        visitor_identities: dict[str, str],
        device_hash: str | None,
        ip_hash: str | None,
        meta: Meta,
    ) -> None:
        pass

    def record_contact_added(
        self, *, customer_id: UUID, staff_id: str, new_customer: bool, meta: Meta
    ) -> None:
        """A visitor added staff through this code on WeCom's side (联系我 with our state):
        WeCom chose the staff member, so there is nothing to refuse, only to count."""
        self._contact_added(
            customer_id=customer_id, staff_id=staff_id, new_customer=new_customer, meta=meta
        )

    @event("ContactAdded")
    def _contact_added(
        self, customer_id: UUID, staff_id: str, new_customer: bool, meta: Meta
    ) -> None:
        self.scans += 1

    def record_official_account_scan(
        self, *, customer_id: UUID, new_customer: bool, subscribed: bool, meta: Meta
    ) -> None:
        """A parametric QR code of an Official Account (qrscene_): a follow (subscribed) or a
        scan by someone already following."""
        self._official_account_scanned(
            customer_id=customer_id, new_customer=new_customer, subscribed=subscribed, meta=meta
        )

    @event("OfficialAccountScanned")
    def _official_account_scanned(
        self, customer_id: UUID, new_customer: bool, subscribed: bool, meta: Meta
    ) -> None:
        self.scans += 1

    def disable(self, reason: str, meta: Meta) -> None:
        if self.disabled:
            raise Conflict("this channel code is already disabled", code="already_disabled")
        self._disabled(reason=require_text(reason, "reason", allow_empty=True), meta=meta)

    @event("Disabled")
    def _disabled(self, reason: str, meta: Meta) -> None:
        self.disabled = True


def birthday_key(blind_index: Callable[[str, str], str], month: int, day: int) -> str:
    """The keyed hash a birthday is found by: of its month and day only, so a rule finds
    today's birthdays without anyone's date of birth readable in a read model."""
    return blind_index("birthday_day", f"{month:02d}-{day:02d}")


class Customer(ScrmAggregate):
    """A customer, known by one or more identities. Phones arrive sealed (encrypted)."""

    @event("Added")
    def __init__(
        self,
        id: UUID,
        owner: str | None,
        source_channel_code: UUID | None,
        identities: list[dict[str, str]],
        tags: list[str],
        meta: Meta,
    ):
        self.owner = owner
        self.source_channel_code = source_channel_code
        self.identities = identities
        self.tags = list(tags)
        # WeCom follow relationships: staff id -> {"status": ..., "as_of": source time}
        self.contacts: dict[str, dict[str, str]] = {}
        # Official Accounts followed: app id -> {"status": ..., "as_of": source time}
        self.subscriptions: dict[str, dict[str, str]] = {}

    def has_identity(self, kind: str, value: str) -> bool:
        return any(i["kind"] == kind and i["value"] == value for i in self.identities)

    def add_identity(self, kind: str, value: str, meta: Meta) -> bool:
        self.check_processing_allowed()
        if self.has_identity(kind, value):
            return False
        self._identity_added(kind=kind, value=value, meta=meta)
        return True

    @event("IdentityAdded")
    def _identity_added(self, kind: str, value: str, meta: Meta) -> None:
        self.identities = [*self.identities, {"kind": kind, "value": value}]

    def link_identity(self, kind: str, value: str, matched_by: str, meta: Meta) -> bool:
        """An identity found to be this customer's by what was verified (`matched_by`: the
        same unionid, the same phone by keyed hash), not typed in by staff."""
        self.check_processing_allowed()
        if self.has_identity(kind, value):
            return False
        self._identity_linked(kind=kind, value=value, matched_by=matched_by, meta=meta)
        return True

    @event("IdentityLinked")
    def _identity_linked(self, kind: str, value: str, matched_by: str, meta: Meta) -> None:
        self.identities = [*self.identities, {"kind": kind, "value": value}]

    # Personal data: the date sealed under the customer's key; `birthday_date` and
    # `birthday_day` are keyed hashes of the date and of its month-day (what a birthday rule
    # looks for). Class defaults: customers and snapshots from before birthdays have none.
    birthday: str | None = None
    birthday_date: str | None = None
    birthday_day: str | None = None

    def record_birthday(self, sealed: str, date_key: str, day_key: str, meta: Meta) -> bool:
        """False when this birthday is already the customer's (nothing to record)."""
        self.check_processing_allowed()
        if date_key == self.birthday_date:
            return False
        self._birthday_recorded(sealed=sealed, date_key=date_key, day_key=day_key, meta=meta)
        return True

    @event("BirthdayRecorded")
    def _birthday_recorded(self, sealed: str, date_key: str, day_key: str, meta: Meta) -> None:
        self.birthday, self.birthday_date, self.birthday_day = sealed, date_key, day_key

    def tag(self, tags: list[str], meta: Meta) -> list[str]:
        self.check_processing_allowed()
        new = [t for t in normalise_tags(tags) if t not in self.tags]
        if new:
            self._tagged(tags=new, meta=meta)
        return new

    @event("Tagged")
    def _tagged(self, tags: list[str], meta: Meta) -> None:
        self.tags = [*self.tags, *tags]

    def untag(self, tags: list[str], meta: Meta) -> list[str]:
        self.check_processing_allowed()
        gone = [t for t in normalise_tags(tags) if t in self.tags]
        if gone:
            self._untagged(tags=gone, meta=meta)
        return gone

    @event("Untagged")
    def _untagged(self, tags: list[str], meta: Meta) -> None:
        self.tags = [t for t in self.tags if t not in tags]

    def assign_owner(self, staff_id: str, reason: str, meta: Meta) -> bool:
        self.check_processing_allowed()
        if staff_id == self.owner:
            return False
        self._owner_assigned(staff_id=staff_id, previous_owner=self.owner, reason=reason, meta=meta)
        return True

    @event("OwnerAssigned")
    def _owner_assigned(
        self, staff_id: str, previous_owner: str | None, reason: str, meta: Meta
    ) -> None:
        self.owner = staff_id

    # --- WeCom follow relationships (外部联系人) ---------------------------------------------
    # A change carries the source's own time (meta.occurred_at). One older than what we know
    # for that staff member is not applied, so retries and reordering cannot undo a newer fact.

    def _newer(
        self, staff_id: str, meta: Meta, states: dict[str, dict[str, str]] | None = None
    ) -> bool:
        # Not older: the platforms' times are whole seconds, and two changes in one second
        # arrive in the order they were sent. Exact repeats are stopped earlier, by the inbox.
        known = (self.contacts if states is None else states).get(staff_id)
        return known is None or meta.occurred_at >= datetime.fromisoformat(known["as_of"])

    def add_contact(
        self, staff_id: str, *, half: bool, channel_code: UUID | None, meta: Meta
    ) -> bool:
        """add_external_contact (half: add_half_external_contact, not yet accepted)."""
        self.check_processing_allowed()
        if not self._newer(staff_id, meta):
            return False
        self._contact_added(staff_id=staff_id, half=half, channel_code=channel_code, meta=meta)
        return True

    @event("ContactAdded")
    def _contact_added(
        self, staff_id: str, half: bool, channel_code: UUID | None, meta: Meta
    ) -> None:
        status = "half" if half else "added"
        self.contacts = {
            **self.contacts,
            staff_id: {"status": status, "as_of": meta.occurred_at.isoformat()},
        }

    def remove_contact(self, staff_id: str, *, by: str, meta: Meta) -> bool:
        """by "staff" (del_external_contact) or "customer" (del_follow_user)."""
        self.check_processing_allowed()
        if not self._newer(staff_id, meta):
            return False
        self._contact_removed(staff_id=staff_id, by=by, meta=meta)
        return True

    @event("ContactRemoved")
    def _contact_removed(self, staff_id: str, by: str, meta: Meta) -> None:
        self.contacts = {
            **self.contacts,
            staff_id: {"status": f"removed_by_{by}", "as_of": meta.occurred_at.isoformat()},
        }

    def note_contact_edited(self, staff_id: str, meta: Meta) -> bool:
        """edit_external_contact: the staff member changed remarks or tags in WeCom."""
        self.check_processing_allowed()
        if not self._newer(staff_id, meta):
            return False
        self._contact_edited(staff_id=staff_id, meta=meta)
        return True

    @event("ContactEdited")
    def _contact_edited(self, staff_id: str, meta: Meta) -> None:
        known = self.contacts.get(staff_id, {"status": "added"})
        self.contacts = {
            **self.contacts,
            staff_id: {**known, "as_of": meta.occurred_at.isoformat()},
        }

    # --- Official Account (公众号) fans ---------------------------------------------------

    def subscribe(self, app_id: str, *, channel_code: UUID | None, meta: Meta) -> bool:
        self.check_processing_allowed()
        if not self._newer(app_id, meta, self.subscriptions):
            return False
        self._subscribed(app_id=app_id, channel_code=channel_code, meta=meta)
        return True

    @event("Subscribed")
    def _subscribed(self, app_id: str, channel_code: UUID | None, meta: Meta) -> None:
        self.subscriptions = {
            **self.subscriptions,
            app_id: {"status": "subscribed", "as_of": meta.occurred_at.isoformat()},
        }

    def unsubscribe(self, app_id: str, meta: Meta) -> bool:
        self.check_processing_allowed()
        if not self._newer(app_id, meta, self.subscriptions):
            return False
        self._unsubscribed(app_id=app_id, meta=meta)
        return True

    @event("Unsubscribed")
    def _unsubscribed(self, app_id: str, meta: Meta) -> None:
        self.subscriptions = {
            **self.subscriptions,
            app_id: {"status": "unsubscribed", "as_of": meta.occurred_at.isoformat()},
        }

    def record_transfer_failure(self, staff_id: str, reason: str, meta: Meta) -> None:
        """transfer_fail: the hand-over to `staff_id` failed (customer_refused,
        customer_limit_exceed); the customer stays with the previous owner."""
        self.check_processing_allowed()
        self._transfer_failed(staff_id=staff_id, reason=reason, meta=meta)

    @event("TransferFailed")
    def _transfer_failed(self, staff_id: str, reason: str, meta: Meta) -> None:
        pass

    # --- welcome messages (欢迎语) -----------------------------------------------------------

    def record_welcome(
        self, staff_id: str, *, channel_code: UUID, failure: str | None, meta: Meta
    ) -> None:
        """The welcome message of `channel_code` went to this customer on behalf of
        `staff_id`, or it did not and `failure` says why (expired code, WeCom's refusal...)."""
        self.check_processing_allowed()
        if failure is None:
            self._welcome_sent(staff_id=staff_id, channel_code=channel_code, meta=meta)
        else:
            reason = require_text(failure, "reason", max_len=200)
            self._welcome_failed(
                staff_id=staff_id, channel_code=channel_code, reason=reason, meta=meta
            )

    @event("WelcomeMessageSent")
    def _welcome_sent(self, staff_id: str, channel_code: UUID, meta: Meta) -> None:
        pass

    @event("WelcomeMessageFailed")
    def _welcome_failed(self, staff_id: str, channel_code: UUID, reason: str, meta: Meta) -> None:
        pass

    # --- merging (合并客户) two records of one person: see domain/customers/merges.py -----
    # Class-level defaults: customers recorded (and snapshotted) before merging existed.
    merged_into: UUID | None = None  # on the absorbed customer while its merge is in force
    # On the survivor, one entry per merge in force: what the absorbed customer brought, so
    # that an undo can give back exactly that.
    merges: tuple[dict[str, Any], ...] = ()

    def check_not_merged(self) -> None:
        """A merged customer's facts are recorded on the survivor; commands go there."""
        if self.merged_into is not None:
            raise Conflict(
                f"this customer was merged into customer {self.merged_into}; act on that one",
                code="customer_merged",
                extra={"merged_into": str(self.merged_into)},
            )

    def absorb(self, absorbed: Customer, reason: str, meta: Meta) -> None:
        """Merge `absorbed` into this customer (the survivor): its identities, tags, contacts
        and follows move here, and it points here from now on. Both events are saved in one
        recording by the caller."""
        reason = require_text(reason, "reason", max_len=500)
        if absorbed.id == self.id:
            raise Conflict("a customer cannot be merged into itself", code="merge_into_self")
        if absorbed.merged_into is not None:
            raise Conflict(
                f"customer {absorbed.id} is already merged into customer {absorbed.merged_into}",
                code="already_merged",
                extra={"merged_into": str(absorbed.merged_into)},
            )
        if self.merged_into is not None:
            raise Conflict(
                f"customer {self.id} is itself merged into customer {self.merged_into};"
                " merge into that one",
                code="survivor_merged",
                extra={"merged_into": str(self.merged_into)},
            )
        self.check_processing_allowed()
        absorbed.check_processing_allowed()
        if absorbed.holds:
            # Its holds would not follow its content: the survivor's erasure would destroy it.
            raise Conflict(
                f"customer {absorbed.id} is under a legal hold; merge the other way, or once"
                " the hold is released",
                code="absorbed_under_legal_hold",
            )
        # Phones stay sealed under the key of the customer they were recorded for: each moved
        # identity names that key, so the survivor's portrait can read it and the survivor's
        # erasure destroys it (see privacy.key_ids).
        identities = [
            {**i, "sealed_for": i.get("sealed_for", str(absorbed.id))}
            if i["kind"] in SEALED_KINDS
            else dict(i)
            for i in absorbed.identities
        ]

        def taken(theirs: dict[str, dict[str, str]], ours: dict[str, dict[str, str]]) -> list[str]:
            # As one record would have it: a relationship only the absorbed customer had, or
            # one it heard of later than the survivor did.
            return [
                k
                for k, state in theirs.items()
                if k not in ours
                or datetime.fromisoformat(state["as_of"]) > datetime.fromisoformat(ours[k]["as_of"])
            ]

        self._merged(
            absorbed_id=absorbed.id,
            reason=reason,
            identities=identities,
            tags=list(absorbed.tags),
            added_tags=[t for t in absorbed.tags if t not in self.tags],
            contacts=dict(absorbed.contacts),
            contacts_taken=taken(absorbed.contacts, self.contacts),
            subscriptions=dict(absorbed.subscriptions),
            subscriptions_taken=taken(absorbed.subscriptions, self.subscriptions),
            meta=meta,
        )
        absorbed._merged_into(survivor_id=self.id, reason=reason, meta=meta)

    @event("Merged")
    def _merged(
        self,
        absorbed_id: UUID,
        reason: str,
        identities: list[dict[str, str]],
        tags: list[str],
        added_tags: list[str],
        contacts: dict[str, dict[str, str]],
        contacts_taken: list[str],
        subscriptions: dict[str, dict[str, str]],
        subscriptions_taken: list[str],
        meta: Meta,
    ) -> None:
        """`tags`, `contacts`, `subscriptions`: as the absorbed customer had them;
        `added_tags` and the `*_taken` keys: what changed on the survivor."""
        self.merges = (
            *self.merges,
            {
                "absorbed_id": str(absorbed_id),
                "identities": identities,
                "tags": tags,
                "added_tags": added_tags,
                "contacts": list(contacts),
                "own_contacts": [k for k in contacts if k in self.contacts],
                "subscriptions": list(subscriptions),
                "own_subscriptions": [k for k in subscriptions if k in self.subscriptions],
            },
        )
        self.identities = [*self.identities, *identities]
        self.tags = [*self.tags, *added_tags]
        self.contacts = {**self.contacts, **{k: contacts[k] for k in contacts_taken}}
        self.subscriptions = {
            **self.subscriptions,
            **{k: subscriptions[k] for k in subscriptions_taken},
        }

    @event("MergedInto")
    def _merged_into(self, survivor_id: UUID, reason: str, meta: Meta) -> None:
        # The rest of the state stays as it was: an undo replaces it with what comes back.
        self.merged_into = survivor_id

    def undo_merge(self, absorbed: Customer, reason: str, meta: Meta) -> None:
        """Give back to `absorbed` what its merge into this customer brought — in its state
        now, so what happened while merged is kept — and make it a customer of its own again.
        Everything else recorded here meanwhile stays here."""
        reason = require_text(reason, "reason", max_len=500)
        self.check_processing_allowed()
        record = next((m for m in self.merges if m["absorbed_id"] == str(absorbed.id)), None)
        if record is None or absorbed.merged_into != self.id:
            raise Conflict(
                f"customer {absorbed.id} is not merged into customer {self.id}"
                + (f" (it is merged into {absorbed.merged_into})" if absorbed.merged_into else ""),
                code="merge_not_in_force",
            )
        # B gets back what it brought, as it stands now; what another merge still in force
        # also brought stays on the survivor.
        others = [m for m in self.merges if m is not record]
        kept_tags = {t for m in others for t in m["tags"]}
        kept_contacts = {k for m in others for k in m["contacts"]}
        kept_follows = {k for m in others for k in m["subscriptions"]}
        moved = {(i["kind"], i["value"]) for i in record["identities"]}
        returned_contacts = {k: self.contacts[k] for k in record["contacts"] if k in self.contacts}
        returned_follows = {
            k: self.subscriptions[k] for k in record["subscriptions"] if k in self.subscriptions
        }
        absorbed._merge_undone(
            survivor_id=self.id,
            reason=reason,
            identities=list(absorbed.identities),
            tags=[t for t in record["tags"] if t in self.tags],
            contacts=returned_contacts,
            subscriptions=returned_follows,
            meta=meta,
        )
        self._unmerged(
            absorbed_id=absorbed.id,
            reason=reason,
            identities=[i for i in self.identities if (i["kind"], i["value"]) in moved],
            tags=[t for t in record["added_tags"] if t in self.tags and t not in kept_tags],
            contacts=[
                k
                for k in returned_contacts
                if k not in record["own_contacts"] and k not in kept_contacts
            ],
            subscriptions=[
                k
                for k in returned_follows
                if k not in record["own_subscriptions"] and k not in kept_follows
            ],
            meta=meta,
        )

    @event("MergeUndone")
    def _merge_undone(
        self,
        survivor_id: UUID,
        reason: str,
        identities: list[dict[str, str]],
        tags: list[str],
        contacts: dict[str, dict[str, str]],
        subscriptions: dict[str, dict[str, str]],
        meta: Meta,
    ) -> None:
        """On the absorbed customer: what comes back, in its state at the undo."""
        self.merged_into = None
        self.identities = identities
        self.tags = tags
        self.contacts = contacts
        self.subscriptions = subscriptions

    @event("Unmerged")
    def _unmerged(
        self,
        absorbed_id: UUID,
        reason: str,
        identities: list[dict[str, str]],
        tags: list[str],
        contacts: list[str],
        subscriptions: list[str],
        meta: Meta,
    ) -> None:
        """On the survivor: what leaves it (identities, tags, relationship keys)."""
        leaving = {(i["kind"], i["value"]) for i in identities}
        self.merges = tuple(m for m in self.merges if m["absorbed_id"] != str(absorbed_id))
        self.identities = [i for i in self.identities if (i["kind"], i["value"]) not in leaving]
        self.tags = [t for t in self.tags if t not in tags]
        self.contacts = {k: v for k, v in self.contacts.items() if k not in contacts}
        self.subscriptions = {k: v for k, v in self.subscriptions.items() if k not in subscriptions}

    # --- erasure (PIPL Art. 47) and legal holds: see domain/customers/privacy.py ----------
    # Class-level defaults: customers recorded (and snapshotted) before these existed.
    erasure: str | None = None  # None, "restricted" (waiting), "erased"
    holds: tuple[UUID, ...] = ()
    destroyed_keys: tuple[UUID, ...] = ()

    def check_processing_allowed(self) -> None:
        """A customer who asked to be erased is stored, not processed; a merged one is
        processed as the survivor."""
        if self.erasure is not None:
            raise Gone(
                f"this customer's data is {self.erasure} at their request (PIPL Art. 47)",
                code=f"customer_{self.erasure}",
            )
        self.check_not_merged()

    def restrict_for_erasure(self, received_via: str, meta: Meta) -> None:
        self.check_not_merged()  # the request is for the survivor, whose erasure covers both
        if self.erasure is not None:
            raise Conflict(
                f"erasure was already requested (the customer is {self.erasure})",
                code="erasure_already_requested",
            )
        self._erasure_requested(
            received_via=received_via, subjects=self.archive_subjects(), meta=meta
        )

    def archive_subjects(self) -> list[str]:
        """Whose keys seal archived conversations with this customer (see subject_key)."""
        return [
            f"{i['kind']}:{i['value']}"
            for i in self.identities
            if i["kind"] == "wecom_external_userid"
        ]

    @event("ErasureRequested")
    def _erasure_requested(self, received_via: str, subjects: list[str], meta: Meta) -> None:
        """`subjects` (pseudonymous WeCom ids, already on record) let read models hide the
        customer's conversations without looking elsewhere."""
        self.erasure = "restricted"
        self.deferral: dict[str, Any] | None = None

    def defer_erasure(
        self,
        reason: str,
        retained_until: datetime | None,
        holds: list[str],
        policy_version: int | None,
        meta: Meta,
    ) -> bool:
        """Record why the keys stay for now; only when that changed, so a scheduler that
        asks every few minutes does not fill the log."""
        deferral = {
            "reason": reason,
            "retained_until": retained_until.isoformat() if retained_until else None,
            "holds": holds,
            "policy_version": policy_version,
        }
        if getattr(self, "deferral", None) == deferral:
            return False
        self._erasure_deferred(
            reason=reason,
            retained_until=retained_until,
            holds=holds,
            policy_version=policy_version,
            meta=meta,
        )
        return True

    @event("ErasureDeferred")
    def _erasure_deferred(
        self,
        reason: str,
        retained_until: datetime | None,
        holds: list[str],
        policy_version: int | None,
        meta: Meta,
    ) -> None:
        self.deferral = {
            "reason": reason,
            "retained_until": retained_until.isoformat() if retained_until else None,
            "holds": holds,
            "policy_version": policy_version,
        }

    def record_erased(self, key_ids: list[str], policy_version: int | None, meta: Meta) -> None:
        self._erased(
            key_ids=key_ids,
            subjects=self.archive_subjects(),
            policy_version=policy_version,
            meta=meta,
        )

    @event("Erased")
    def _erased(
        self, key_ids: list[str], subjects: list[str], policy_version: int | None, meta: Meta
    ) -> None:
        """No personal data here: which keys were destroyed, under which policy version."""
        self.erasure = "erased"
        self.destroyed_keys = tuple(UUID(k) for k in key_ids)

    def note_hold(self, hold_id: UUID, meta: Meta) -> None:
        self._hold_placed(hold_id=hold_id, meta=meta)

    @event("LegalHoldPlaced")
    def _hold_placed(self, hold_id: UUID, meta: Meta) -> None:
        self.holds = (*self.holds, hold_id)

    def note_hold_released(self, hold_id: UUID, meta: Meta) -> None:
        if hold_id in self.holds:
            self._hold_released(hold_id=hold_id, meta=meta)

    @event("LegalHoldReleased")
    def _hold_released(self, hold_id: UUID, meta: Meta) -> None:
        self.holds = tuple(h for h in self.holds if h != hold_id)


class IdentityClaim(ScrmAggregate):
    """Makes an identity unique across customers: its id is derived from kind and value,
    so two concurrent scans by the same visitor cannot create two customers."""

    @staticmethod
    def create_id(kind: str, key: str) -> UUID:
        return derived_id(f"identity:{kind}", key)

    @event("Claimed")
    def __init__(self, kind: str, key: str, customer_id: UUID, meta: Meta):
        self.kind = kind
        self.customer_id = customer_id
