"""客户群: WeCom customer group chats, from change_external_chat callbacks.

WeCom tells us a group was created, changed (members joined or quit, owner, name, notice) or
dismissed; callbacks can arrive late, out of order or twice. Each is recorded once (an inbox
receipt saved with its effects); a change older than what the group already says for the
same member or attribute is received as `stale`; dismissal is final. A group first heard of
through a change or a dismissal is recorded then, so the late create is stale, not news.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import event

from domain.customers.aggregates import IdentityClaim, Staff
from domain.inbox import InboxOutcome, InboxReceipt
from domain.shared import InvalidInput, Meta, ScrmAggregate, derived_id

if TYPE_CHECKING:
    from domain.customers.application import CustomersApp

GROUP_CHANGES = ("create", "update", "dismiss")
UPDATE_DETAILS = ("add_member", "del_member", "change_owner", "change_name", "change_notice")
EXTERNAL_PREFIXES = ("wo", "wm")  # external userids: WeChat users (wm) and other corps (wo)
_WECOM_ID = re.compile(r"^[A-Za-z0-9_\-@.]{1,128}$")
_DETAIL = re.compile(r"^[a-z_]{1,40}$")


@dataclass(frozen=True)
class GroupChange:
    change_type: str  # create, update, dismiss
    chat_id: str
    digest: str  # of the decrypted callback: the same callback twice has one effect
    update_detail: str | None = None
    join_scene: int | None = None  # 0 invited by a member (directly or by link), 3 QR code
    quit_scene: int | None = None  # 0 left, 1 removed by the owner or an admin
    change_count: int | None = None  # MemChangeCnt
    members: tuple[str, ...] = ()  # MemChangeList: userids of staff and external contacts
    last_member_version: str | None = None  # LastMemVer and CurMemVer: opaque, not ordered
    member_version: str | None = None
    owner: str | None = None  # from WeCom's group directory, where it is known
    name: str | None = None

    def __post_init__(self) -> None:
        if self.change_type not in GROUP_CHANGES:
            raise InvalidInput(f"unknown ChangeType {self.change_type!r}", field="ChangeType")
        if not self.chat_id or not _WECOM_ID.match(self.chat_id):
            raise InvalidInput("ChatId must be 1-128 letters, digits or _-@.", field="ChatId")
        if self.change_type == "update" and not _DETAIL.match(self.update_detail or ""):
            raise InvalidInput("an update names its UpdateDetail", field="UpdateDetail")
        for userid in self.members:
            if not _WECOM_ID.match(userid):
                raise InvalidInput("a member id is not a WeCom userid", field="MemChangeList")
        for text, field in ((self.owner, "owner"), (self.name, "name")):
            if text is not None and len(text) > 200:
                raise InvalidInput(f"the group's {field} is too long", field=field)

    @property
    def kind(self) -> str:
        return (
            f"{self.change_type}:{self.update_detail}" if self.update_detail else self.change_type
        )


class CustomerGroup(ScrmAggregate):
    """A customer group chat, as far as WeCom's callbacks and directory have told us.

    Members are keyed by userid with the source time of the last change applied to them, so
    an older join arriving after a newer quit does not re-add anyone.
    """

    @staticmethod
    def create_id(chat_id: str) -> UUID:
        return derived_id("customer_group", chat_id)

    @event("Created")
    def __init__(
        self, chat_id: str, owner: str | None, name: str | None, first_change: str, meta: Meta
    ):
        self.chat_id = chat_id
        self.owner = owner
        self.name = name
        self.dismissed = False
        as_of = meta.occurred_at.isoformat()
        self.as_of: dict[str, str] = {"owner": as_of, "name": as_of}  # source time per attribute
        # userid -> {"status": joined|quit, "as_of": source time, "after": LastMemVer}
        self.members: dict[str, dict[str, str]] = {}

    # --- decisions -----------------------------------------------------------------------

    def _newer(self, attribute: str, meta: Meta) -> bool:
        known = self.as_of.get(attribute)
        return known is None or meta.occurred_at >= datetime.fromisoformat(known)

    def _fresh_for(self, userid: str, member_version: str | None, meta: Meta) -> bool:
        known = self.members.get(userid)
        if known is None:
            return True
        as_of = datetime.fromisoformat(known["as_of"])
        if meta.occurred_at != as_of:
            return meta.occurred_at > as_of
        # The same second (WeCom's times are whole seconds): the member versions tell which
        # came first when this change's result is the base of the change already applied.
        return member_version is None or member_version != known["after"]

    def change_members(
        self,
        joined: bool,
        members: list[dict[str, str | None]],
        *,
        scene: int | None,
        change_count: int | None,
        last_member_version: str | None,
        member_version: str | None,
        meta: Meta,
    ) -> bool:
        """add_member / del_member. Members a newer change already speaks for are left as
        they are (and named in `skipped`); none left and the whole change is stale."""
        if self.dismissed:
            return False
        fresh = [m for m in members if self._fresh_for(str(m["userid"]), member_version, meta)]
        if members and not fresh:
            return False
        skipped = [str(m["userid"]) for m in members if m not in fresh]
        record = self._members_joined if joined else self._members_quit
        record(
            members=fresh,
            scene=scene,
            change_count=change_count,
            skipped=skipped,
            last_member_version=last_member_version,
            member_version=member_version,
            meta=meta,
        )
        return True

    def change_owner(self, owner: str | None, meta: Meta) -> bool:
        """change_owner; `owner` is the directory's answer (None: not known here)."""
        if self.dismissed or not self._newer("owner", meta):
            return False
        self._owner_changed(owner=owner, previous_owner=self.owner, meta=meta)
        return True

    def rename(self, name: str | None, meta: Meta) -> bool:
        if self.dismissed or not self._newer("name", meta):
            return False
        self._renamed(name=name, meta=meta)
        return True

    def note_notice_changed(self, meta: Meta) -> bool:
        """change_notice: the notice's text is not in the callback, and not kept here."""
        if self.dismissed or not self._newer("notice", meta):
            return False
        self._notice_changed(meta=meta)
        return True

    def dismiss(self, meta: Meta) -> bool:
        """Final: a dismissed group takes no later change, however late it arrives."""
        if self.dismissed:
            return False
        self._dismissed(meta=meta)
        return True

    # --- events: state only --------------------------------------------------------------

    def _set_members(
        self, members: list[dict[str, Any]], status: str, after: str | None, meta: Meta
    ) -> None:
        entry = {"status": status, "as_of": meta.occurred_at.isoformat(), "after": after or ""}
        self.members = {**self.members, **{str(m["userid"]): entry for m in members}}

    @event("MembersJoined")
    def _members_joined(
        self,
        members: list[dict[str, Any]],
        scene: int | None,  # JoinScene
        change_count: int | None,
        skipped: list[str],
        last_member_version: str | None,
        member_version: str | None,
        meta: Meta,
    ) -> None:
        self._set_members(members, "joined", last_member_version, meta)

    @event("MembersQuit")
    def _members_quit(
        self,
        members: list[dict[str, Any]],
        scene: int | None,  # QuitScene
        change_count: int | None,
        skipped: list[str],
        last_member_version: str | None,
        member_version: str | None,
        meta: Meta,
    ) -> None:
        self._set_members(members, "quit", last_member_version, meta)

    @event("OwnerChanged")
    def _owner_changed(self, owner: str | None, previous_owner: str | None, meta: Meta) -> None:
        self.owner = owner
        self.as_of = {**self.as_of, "owner": meta.occurred_at.isoformat()}

    @event("Renamed")
    def _renamed(self, name: str | None, meta: Meta) -> None:
        self.name = name
        self.as_of = {**self.as_of, "name": meta.occurred_at.isoformat()}

    @event("NoticeChanged")
    def _notice_changed(self, meta: Meta) -> None:
        self.as_of = {**self.as_of, "notice": meta.occurred_at.isoformat()}

    @event("Dismissed")
    def _dismissed(self, meta: Meta) -> None:
        self.dismissed = True


# --- the service: one callback, once -----------------------------------------------------------


def apply_group_change(app: CustomersApp, change: GroupChange, meta: Meta) -> InboxOutcome:
    return app.once("wecom", change.digest, lambda: _apply_once(app, change, meta))


def _apply_once(app: CustomersApp, change: GroupChange, meta: Meta) -> InboxOutcome:
    kind = f"change_external_chat:{change.kind}"
    if change.change_type == "update" and change.update_detail not in UPDATE_DETAILS:
        # A detail WeCom added after this was written: on record, for a later version.
        receipt = InboxReceipt(
            source="wecom",
            digest=change.digest,
            kind=kind,
            outcome="received: not acted on",
            meta=meta,
        )
        return InboxOutcome("received", None, app.save_all(receipt))
    group = app.find(CustomerGroup, CustomerGroup.create_id(change.chat_id))
    if group is None:
        group = CustomerGroup(
            chat_id=change.chat_id,
            owner=change.owner,
            name=change.name,
            first_change=change.kind,
            meta=meta,
        )
        applied = change.change_type == "create" or _apply_to(app, group, change, meta)
    else:
        applied = change.change_type != "create" and _apply_to(app, group, change, meta)
    outcome = "applied" if applied else "stale"
    receipt = InboxReceipt(
        source="wecom", digest=change.digest, kind=kind, outcome=outcome, meta=meta
    )
    return InboxOutcome(outcome, str(group.id), app.save_all(group, receipt))


def _apply_to(app: CustomersApp, group: CustomerGroup, change: GroupChange, meta: Meta) -> bool:
    if change.change_type == "dismiss":
        return group.dismiss(meta)
    detail = change.update_detail
    if detail in ("add_member", "del_member"):
        joined = detail == "add_member"
        return group.change_members(
            joined,
            [_member(app, userid) for userid in dict.fromkeys(change.members)],
            scene=change.join_scene if joined else change.quit_scene,
            change_count=change.change_count,
            last_member_version=change.last_member_version,
            member_version=change.member_version,
            meta=meta,
        )
    if detail == "change_owner":
        return group.change_owner(change.owner, meta)
    if detail == "change_name":
        return group.rename(change.name, meta)
    return group.note_notice_changed(meta)


def _member(app: CustomersApp, userid: str) -> dict[str, str | None]:
    """Staff or an external contact; an external contact who is a customer is linked to them
    through the identity claim of their external userid."""
    if app.find(Staff, Staff.create_id(userid)) is not None or not userid.startswith(
        EXTERNAL_PREFIXES
    ):
        return {"userid": userid, "kind": "staff", "customer_id": None}
    claim = app.find(IdentityClaim, IdentityClaim.create_id("wecom_external_userid", userid))
    customer_id = str(app.survivor_id(claim.customer_id)) if claim is not None else None
    return {"userid": userid, "kind": "external", "customer_id": customer_id}
