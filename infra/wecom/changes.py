"""WeCom's external-contact callbacks (decrypted XML fields) read into the domain's changes.

Field names are WeCom's; a field that is missing or unreadable is a MalformedCallback
naming it (HTTP 422, nothing recorded).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from domain.customers.corp_tags import TagChange
from domain.customers.groups import GroupChange
from domain.customers.wecom import ContactChange
from domain.shared import InvalidInput
from infra.wecom.callbacks import MalformedCallback, require, xml_items
from infra.wecom.directory import ChatDirectory


def contact_change(fields: dict[str, str], digest: str, received_at: datetime) -> ContactChange:
    try:
        return ContactChange(
            change_type=fields.get("ChangeType", ""),
            staff_id=require(fields, "UserID"),
            external_userid=require(fields, "ExternalUserID"),
            digest=digest,
            received_at=received_at,
            state=fields.get("State") or None,
            welcome_code=fields.get("WelcomeCode") or None,
            fail_reason=fields.get("FailReason") or None,
        )
    except InvalidInput as exc:
        raise MalformedCallback(exc.detail, exc.field) from None


def group_change(
    fields: dict[str, str], plaintext: str, digest: str, directory: ChatDirectory
) -> GroupChange:
    try:
        change = GroupChange(
            change_type=fields.get("ChangeType", ""),
            chat_id=require(fields, "ChatId"),
            digest=digest,
            update_detail=fields.get("UpdateDetail") or None,
            join_scene=_int(fields, "JoinScene"),
            quit_scene=_int(fields, "QuitScene"),
            change_count=_int(fields, "MemChangeCnt"),
            members=tuple(xml_items(plaintext, "MemChangeList")),
            last_member_version=fields.get("LastMemVer") or None,
            member_version=fields.get("CurMemVer") or None,
        )
        # The callback carries neither owner nor name: they are the directory's current
        # answer, asked only once the message is known to be well formed. A dismissed group
        # is gone from the directory.
        details = directory.group_chat(change.chat_id) if change.change_type != "dismiss" else None
        if details is None:
            return change
        return replace(change, owner=details.owner, name=details.name)
    except InvalidInput as exc:
        raise MalformedCallback(exc.detail, exc.field) from None


def tag_change(fields: dict[str, str], digest: str) -> TagChange:
    try:
        return TagChange(
            change_type=fields.get("ChangeType", ""),
            tag_id=fields.get("Id", ""),
            tag_type=fields.get("TagType") or None,
            digest=digest,
            strategy_id=fields.get("StrategyId") or None,
        )
    except InvalidInput as exc:
        raise MalformedCallback(exc.detail, exc.field) from None


def _int(fields: dict[str, str], name: str) -> int | None:
    value = fields.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise MalformedCallback(f"{name} is not a number", field=name) from None
