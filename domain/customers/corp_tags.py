"""企业客户标签: the corp's customer tags and tag groups, from change_external_tag callbacks.

The callback names a tag or tag group by id and type only (names and order come from WeCom's
get_corp_tag_list), so what is kept is the history: created, updated, deleted, reordered.
Each callback is recorded once; a change older than the last one applied is received as
`stale`, and a deletion is final. A tag first heard of through an update or a deletion is
recorded then, so the late create is stale, not a resurrection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from domain.inbox import InboxOutcome, InboxReceipt
from domain.shared import InvalidInput, Meta, ScrmAggregate, derived_id

if TYPE_CHECKING:
    from domain.customers.application import CustomersApp

TAG_CHANGES = ("create", "update", "delete", "shuffle")
TAG_TYPES = ("tag", "tag_group")
EVERY_GROUP = "*"  # a shuffle without an Id reordered every tag group
_WECOM_ID = re.compile(r"^[A-Za-z0-9_\-@.]{1,128}$")


@dataclass(frozen=True)
class TagChange:
    change_type: str  # create, update, delete, shuffle
    tag_id: str  # Id; for a shuffle the tag group's, or "" for all of them
    tag_type: str | None  # tag, tag_group; a shuffle has none (always groups)
    digest: str  # of the decrypted callback: the same callback twice has one effect
    strategy_id: str | None = None  # 规则组: set for tags of a rule group

    def __post_init__(self) -> None:
        if self.change_type not in TAG_CHANGES:
            raise InvalidInput(f"unknown ChangeType {self.change_type!r}", field="ChangeType")
        if self.change_type != "shuffle":
            if self.tag_type not in TAG_TYPES:
                raise InvalidInput("TagType must be tag or tag_group", field="TagType")
            if not self.tag_id:
                raise InvalidInput("Id is required", field="Id")
        if self.tag_id and not _WECOM_ID.match(self.tag_id):
            raise InvalidInput("Id must be 1-128 letters, digits or _-@.", field="Id")
        if self.strategy_id is not None and not _WECOM_ID.match(self.strategy_id):
            raise InvalidInput("StrategyId is not an id", field="StrategyId")

    @property
    def key(self) -> tuple[str, str]:
        """(type, id) of the tag or group concerned: a shuffle concerns groups."""
        if self.change_type == "shuffle":
            return "tag_group", self.tag_id or EVERY_GROUP
        return str(self.tag_type), self.tag_id


class CorpTag(ScrmAggregate):
    """One corp tag or tag group, keyed by its type and WeCom id."""

    @staticmethod
    def create_id(tag_type: str, tag_id: str) -> UUID:
        return derived_id("corp_tag", f"{tag_type}:{tag_id}")

    @event("Created")
    def __init__(
        self, tag_type: str, tag_id: str, strategy_id: str | None, first_change: str, meta: Meta
    ):
        self.tag_type = tag_type
        self.tag_id = tag_id
        self.strategy_id = strategy_id
        self.deleted = False
        self.as_of = meta.occurred_at.isoformat()  # source time of the last change applied

    def _newer(self, meta: Meta) -> bool:
        # Not older: the same second arrives in order; exact repeats are stopped by the inbox.
        return not self.deleted and meta.occurred_at >= datetime.fromisoformat(self.as_of)

    def update(self, strategy_id: str | None, meta: Meta) -> bool:
        if not self._newer(meta):
            return False
        self._updated(strategy_id=strategy_id, meta=meta)
        return True

    def record_shuffle(self, meta: Meta) -> bool:
        """The order of the tags changed; WeCom says to re-read every tag's order."""
        if not self._newer(meta):
            return False
        self._shuffled(meta=meta)
        return True

    def delete(self, meta: Meta) -> bool:
        """Final: WeCom does not bring a deleted tag back, so a late change is history."""
        if self.deleted:
            return False
        self._deleted(meta=meta)
        return True

    @event("Updated")
    def _updated(self, strategy_id: str | None, meta: Meta) -> None:
        self.strategy_id = strategy_id if strategy_id is not None else self.strategy_id
        self.as_of = meta.occurred_at.isoformat()

    @event("Shuffled")
    def _shuffled(self, meta: Meta) -> None:
        self.as_of = meta.occurred_at.isoformat()

    @event("Deleted")
    def _deleted(self, meta: Meta) -> None:
        self.deleted = True
        self.as_of = meta.occurred_at.isoformat()


def apply_tag_change(app: CustomersApp, change: TagChange, meta: Meta) -> InboxOutcome:
    return app.once("wecom", change.digest, lambda: _apply_once(app, change, meta))


def _apply_once(app: CustomersApp, change: TagChange, meta: Meta) -> InboxOutcome:
    tag_type, tag_id = change.key
    tag = app.find(CorpTag, CorpTag.create_id(tag_type, tag_id))
    kind = change.change_type
    if tag is None:
        tag = CorpTag(
            tag_type=tag_type,
            tag_id=tag_id,
            strategy_id=change.strategy_id,
            first_change=kind,
            meta=meta,
        )
        applied = kind == "create" or _apply_to(tag, change, meta)
    else:
        applied = kind != "create" and _apply_to(tag, change, meta)
    outcome = "applied" if applied else "stale"
    receipt = InboxReceipt(
        source="wecom",
        digest=change.digest,
        kind=f"change_external_tag:{kind}:{tag_type}",
        outcome=outcome,
        meta=meta,
    )
    return InboxOutcome(outcome, str(tag.id), app.save_all(tag, receipt))


def _apply_to(tag: CorpTag, change: TagChange, meta: Meta) -> bool:
    if change.change_type == "delete":
        return tag.delete(meta)
    if change.change_type == "shuffle":
        return tag.record_shuffle(meta)
    return tag.update(change.strategy_id, meta)
