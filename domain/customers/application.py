"""The customers context's service layer: load, decide, save. Each public method is a command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

from domain.customers import corp_tags, groups, merges, official_account, wecom
from domain.customers.aggregates import (
    Availability,
    ChannelCode,
    Customer,
    IdentityClaim,
    Staff,
    Visitor,
    birthday_key,
    code_from_state,
    normalise_identity,
    normalise_tags,
)
from domain.inbox import InboxOutcome
from domain.ports import AggregateLocks, PersonalDataVault, WelcomeSender
from domain.scope import Scope
from domain.shared import (
    ConcurrentUpdate,
    Conflict,
    Forbidden,
    InvalidInput,
    Meta,
    Recorded,
    Refused,
)
from domain.store import ScrmApplication

SCAN_IDENTITY_KINDS = ("wecom_external_userid", "unionid", "openid")  # lookup priority


@dataclass(frozen=True)
class ScanResult(Recorded):
    customer_id: str = ""
    new_customer: bool = False
    assigned_staff: str = ""
    welcome_message: str = ""


class _NoWelcomeSender:
    """Without a sender configured, a welcome is recorded as not sent rather than lost."""

    def send_welcome(self, welcome_code: str, text: str) -> str | None:
        return "no_welcome_sender"


class CustomersApp(ScrmApplication):
    # Hot codes, long-lived customers and busy groups load from a snapshot plus the events
    # after it.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        ChannelCode: 100,
        Customer: 100,
        groups.CustomerGroup: 100,
    }

    def __init__(
        self,
        vault: PersonalDataVault,
        locks: AggregateLocks,
        env: dict[str, str] | None = None,
        welcome_sender: WelcomeSender | None = None,
    ):
        super().__init__(env)
        self.vault = vault
        self.locks = locks
        self.welcome_sender = welcome_sender or _NoWelcomeSender()

    # --- staff ---------------------------------------------------------------------------

    def register_staff(
        self, *, staff_id: str, name: str, department: str, region: str, meta: Meta
    ) -> Recorded:
        staff = Staff.register(staff_id, name, department, region, meta)
        try:
            position = self.save_all(staff)
        except ConcurrentUpdate:
            raise Conflict(
                f"staff {staff_id} already exists", code="already_exists", field="id"
            ) from None
        return Recorded(staff_id, position, staff.version)

    def record_departure(self, staff_id: str, *, reason: str, meta: Meta) -> Recorded:
        staff = self.get_staff(staff_id)
        staff.depart(reason, meta)
        return Recorded(staff_id, self.save_all(staff), staff.version)

    def get_staff(self, staff_id: str) -> Staff:
        return self.load(Staff, Staff.create_id(staff_id), f"staff {staff_id}")

    # --- channel codes -------------------------------------------------------------------

    def create_channel_code(
        self,
        *,
        name: str,
        staff_pool: list[str],
        tags: list[str],
        welcome_message: str,
        expires_at: datetime | None,
        max_scans: int | None,
        meta: Meta,
    ) -> Recorded:
        code = ChannelCode.create(
            name=name,
            staff_pool=staff_pool,
            tags=tags,
            welcome_message=welcome_message,
            expires_at=expires_at,
            max_scans=max_scans,
            meta=meta,
        )
        for staff_id in code.staff_pool:
            if self.find(Staff, Staff.create_id(staff_id)) is None:
                raise InvalidInput(f"staff {staff_id} is not registered", field="staff_pool")
        return Recorded(str(code.id), self.save_all(code), code.version)

    def disable_channel_code(
        self, code_id: UUID, *, reason: str, expected_version: int | None, meta: Meta
    ) -> Recorded:
        code = self.load(ChannelCode, code_id, "channel code")
        code.check_version(expected_version)
        code.disable(reason, meta)
        return Recorded(str(code.id), self.save_all(code), code.version)

    def scan_channel_code(
        self,
        code_id: UUID,
        *,
        identities: dict[str, str],
        device: str | None,
        ip: str | None,
        meta: Meta,
    ) -> ScanResult:
        visitor = self._visitor(identities, device, ip)
        # Nobody stated a version: a scan racing another scan of the same code just retries.
        with self.locks.hold(code_id):
            return self.retrying(lambda: self._scan_once(code_id, visitor, meta))

    def _visitor(self, identities: dict[str, str], device: str | None, ip: str | None) -> Visitor:
        clean: dict[str, str] = {}
        for kind, value in identities.items():
            if value is None:
                continue
            if kind not in SCAN_IDENTITY_KINDS:
                raise InvalidInput(
                    f"a scan identifies the visitor by {', '.join(SCAN_IDENTITY_KINDS)}",
                    field=f"visitor.{kind}",
                )
            clean[kind] = normalise_identity(kind, value, within="visitor")
        if not clean:
            raise InvalidInput(
                "a scan needs at least one of wecom_external_userid, openid or unionid",
                field="visitor",
            )
        return Visitor(
            identities=clean,
            device_hash=self.vault.blind_index("device", device) if device else None,
            ip_hash=self.vault.blind_index("ip", ip) if ip else None,
        )

    def _scan_once(self, code_id: UUID, visitor: Visitor, meta: Meta) -> ScanResult:
        code = self.load(ChannelCode, code_id, "channel code")
        refusal = code.refusal_for(meta.occurred_at)
        customer = self._find_customer(visitor.identities)
        available = Availability(self._can_serve)
        customer_id = customer.id if customer is not None else uuid4()
        if refusal is None:
            try:
                assigned = code.scan(
                    visitor=visitor,
                    customer_id=customer_id,
                    new_customer=customer is None,
                    returning_owner=customer.owner if customer else None,
                    available_staff=available,
                    meta=meta,
                )
            except Conflict as exc:
                refusal = exc
        if refusal is not None:
            code = self.load(ChannelCode, code_id, "channel code")  # drop any partial change
            code.refuse_scan(refusal, visitor, meta)
            raise Refused(refusal, self.save_all(code))

        to_save: list[Any] = []
        is_new = customer is None
        if customer is None:
            identities = [{"kind": k, "value": v} for k, v in visitor.identities.items()]
            customer = Customer(
                id=customer_id,
                owner=assigned,
                source_channel_code=code.id,
                identities=identities,
                tags=list(code.tags),
                meta=meta,
            )
            try:
                to_save += self._claims(customer.id, visitor.identities.items(), meta)
            except Conflict as exc:  # claimed since we looked: a race to retry, not a refusal
                raise ConcurrentUpdate(exc.detail) from None
        else:
            customer.assign_owner(assigned, "channel_code_scan", meta)
            for kind, value in visitor.identities.items():
                if not customer.has_identity(kind, value):
                    claims = self._claims(customer.id, [(kind, value)], meta, skip_taken=True)
                    if claims:
                        customer.add_identity(kind, value, meta)
                        to_save += claims
            customer.tag(list(code.tags), meta)
        # The customer's own events come first in the log, then the scan that refers to it.
        position = self.save_all(customer, *to_save, code)
        return ScanResult(
            id=str(code.id),
            position=position,
            version=code.version,
            customer_id=str(customer.id),
            new_customer=is_new,
            assigned_staff=assigned,
            welcome_message=code.welcome_message,
        )

    def code_for_state(self, state: str | None) -> ChannelCode | None:
        """The channel code a platform's state or QR scene names (see wecom_state)."""
        code_id = code_from_state(state)
        return self.find(ChannelCode, code_id) if code_id else None

    def _can_serve(self, staff_id: str) -> bool:
        staff = self.find(Staff, Staff.create_id(staff_id))
        return staff is not None and not staff.departed

    # --- WeCom (企业微信) --------------------------------------------------------------------

    def apply_contact_change(self, change: wecom.ContactChange, meta: Meta) -> InboxOutcome:
        """One change_external_contact callback: recorded once, never undoing a newer fact."""
        return wecom.apply_contact_change(self, change, meta)

    def apply_group_change(self, change: groups.GroupChange, meta: Meta) -> InboxOutcome:
        """One change_external_chat callback (客户群): recorded once, never undoing a newer
        fact, never reviving a dismissed group."""
        return groups.apply_group_change(self, change, meta)

    def apply_tag_change(self, change: corp_tags.TagChange, meta: Meta) -> InboxOutcome:
        """One change_external_tag callback (企业客户标签): kept on record once, in order."""
        return corp_tags.apply_tag_change(self, change, meta)

    # --- Official Account (公众号) ------------------------------------------------------------

    def apply_fan_event(self, fan: official_account.FanEvent, meta: Meta) -> InboxOutcome:
        """subscribe / SCAN / unsubscribe: recorded once, never undoing a newer fact."""
        return official_account.apply_fan_event(self, fan, meta)

    # --- customers -----------------------------------------------------------------------

    def add_customer(
        self,
        *,
        identities: Sequence[tuple[str, str]],
        tags: list[str],
        owner: str | None,
        meta: Meta,
    ) -> Recorded:
        pairs = self._normalise_pairs(identities)
        if not pairs:
            raise InvalidInput("a customer needs at least one identity", field="identities")
        if owner is not None and not self._can_serve(owner):
            raise InvalidInput(f"owner {owner} is not an active staff member", field="owner")

        def attempt() -> Recorded:
            customer_id = uuid4()
            claims = self._claims(customer_id, pairs, meta)
            stored = [{"kind": k, "value": self._stored_value(customer_id, k, v)} for k, v in pairs]
            customer = Customer(
                id=customer_id,
                owner=owner,
                source_channel_code=None,
                identities=stored,
                tags=normalise_tags(tags),
                meta=meta,
            )
            return Recorded(str(customer.id), self.save_all(customer, *claims), customer.version)

        # Losing a race for a claim: the second attempt answers identity_taken.
        return self.retrying(attempt, tries=2)

    def add_identity(
        self, customer_id: UUID, *, kind: str, value: str, scope: Scope, meta: Meta
    ) -> Recorded:
        ((kind, value),) = self._normalise_pairs([(kind, value)])

        def attempt() -> Recorded:
            customer = self.get_customer(customer_id, scope)
            claims = self._claims(customer.id, [(kind, value)], meta)
            if claims:  # already this customer's own identity: nothing to record
                customer.add_identity(kind, self._stored_value(customer.id, kind, value), meta)
            return Recorded(str(customer.id), self.save_all(customer, *claims), customer.version)

        return self.retrying(attempt, tries=2)

    def change_tags(
        self,
        customer_id: UUID,
        *,
        add: list[str],
        remove: list[str],
        expected_version: int | None,
        scope: Scope,
        meta: Meta,
    ) -> Recorded:
        if not add and not remove:
            raise InvalidInput("name at least one tag to add or remove", field="add")
        normalise_tags(add, "add")
        normalise_tags(remove, "remove")
        customer = self.get_customer(customer_id, scope)
        customer.check_version(expected_version)
        customer.tag(add, meta)
        customer.untag(remove, meta)
        return Recorded(str(customer.id), self.save_all(customer), customer.version)

    def record_birthday(
        self, customer_id: UUID, *, birthday: date, scope: Scope, meta: Meta
    ) -> Recorded:
        """The customer's date of birth, sealed under their key; what a birthday rule finds
        is only a keyed hash of its month and day (`birthday_key`)."""
        if not date(1900, 1, 1) <= birthday <= meta.occurred_at.date():
            raise InvalidInput("birthday is a date from 1900-01-01 up to today", field="birthday")
        customer = self.get_customer(customer_id, scope)
        iso = birthday.isoformat()
        customer.record_birthday(
            self.vault.seal(customer.id, iso),
            self.vault.blind_index("birthday", iso),
            birthday_key(self.vault.blind_index, birthday.month, birthday.day),
            meta,
        )
        return Recorded(str(customer.id), self.save_all(customer), customer.version)

    def assign_owner(
        self,
        customer_id: UUID,
        *,
        staff_id: str,
        expected_version: int | None,
        scope: Scope,
        meta: Meta,
    ) -> Recorded:
        customer = self.get_customer(customer_id, scope)
        customer.check_version(expected_version)
        if not self._can_serve(staff_id):
            raise InvalidInput(f"staff {staff_id} is not an active staff member", field="staff_id")
        if scope.department is not None and self.get_staff(staff_id).department != scope.department:
            raise Forbidden("a manager can only assign staff of their own department")
        customer.assign_owner(staff_id, "manual", meta)
        return Recorded(str(customer.id), self.save_all(customer), customer.version)

    def get_customer(self, customer_id: UUID, scope: Scope) -> Customer:
        customer = self.load(Customer, customer_id, "customer")
        owner_department = None
        if customer.owner and scope.department is not None:
            owner_department = self.get_staff(customer.owner).department
        scope.check_customer(customer.owner, owner_department)
        return customer

    # --- identities ----------------------------------------------------------------------

    def _normalise_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for kind, value in pairs:
            pair = (kind, normalise_identity(kind, value))
            if pair not in out:
                out.append(pair)
        return out

    def _claim_key(self, kind: str, value: str) -> str:
        # Personal data is never a key in clear: phones are looked up by a keyed hash.
        return self.vault.blind_index(kind, value) if kind == "phone" else value

    def _stored_value(self, customer_id: UUID, kind: str, value: str) -> str:
        return self.vault.seal(customer_id, value) if kind == "phone" else value

    def _claims(
        self, customer_id: UUID, pairs: Any, meta: Meta, *, skip_taken: bool = False
    ) -> list[IdentityClaim]:
        claims = []
        for kind, value in pairs:
            key = self._claim_key(kind, value)
            existing = self.find(IdentityClaim, IdentityClaim.create_id(kind, key))
            if existing is not None and (
                existing.customer_id == customer_id
                or self.survivor_id(existing.customer_id) == customer_id  # merged in
            ):
                continue
            if existing is not None:
                if skip_taken:
                    continue
                raise Conflict(
                    f"this {kind} already belongs to another customer",
                    code="identity_taken",
                    field=f"identities.{kind}",
                )
            claims.append(IdentityClaim(kind=kind, key=key, customer_id=customer_id, meta=meta))
        return claims

    def _find_customer(self, identities: dict[str, str]) -> Customer | None:
        for kind in SCAN_IDENTITY_KINDS:
            if kind in identities:
                claim = self.find(IdentityClaim, IdentityClaim.create_id(kind, identities[kind]))
                if claim is not None:
                    return self.survivor(self.repository.get(claim.customer_id))
        return None

    # --- merges (合并客户): see domain/customers/merges.py ------------------------------------

    def survivor(self, customer: Customer) -> Customer:
        """The customer that now holds this one's facts (itself unless merged)."""
        return merges.follow_merges(customer, lambda i: self.find(Customer, i))

    def survivor_id(self, customer_id: UUID) -> UUID:
        found = self.find(Customer, customer_id)
        return self.survivor(found).id if found is not None else customer_id

    def merge_customers(
        self,
        survivor_id: UUID,
        absorbed_id: UUID,
        *,
        reason: str,
        expected_versions: dict[UUID, int] | None,
        scope: Scope,
        meta: Meta,
    ) -> merges.MergeRecorded:
        """Merge `absorbed_id` into `survivor_id`, both events in one recording."""
        return merges.merge_customers(
            self,
            survivor_id,
            absorbed_id,
            reason=reason,
            expected_versions=expected_versions,
            scope=scope,
            meta=meta,
        )

    def undo_merge(
        self, survivor_id: UUID, absorbed_id: UUID, *, reason: str, scope: Scope, meta: Meta
    ) -> merges.MergeRecorded:
        """Undo the merge in force of `absorbed_id` into `survivor_id`."""
        return merges.undo_merge(
            self, survivor_id, absorbed_id, reason=reason, scope=scope, meta=meta
        )

    # --- plumbing ------------------------------------------------------------------------
