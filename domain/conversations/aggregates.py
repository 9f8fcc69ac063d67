"""会话内容存档: archived WeCom conversations, one aggregate per message.

A message's id derives from WeCom's msgid, so ingesting it again changes nothing. Its content
is sealed with the key of the person it is personal data of; a recall marks it, never deletes.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import Conflict, InvalidInput, Meta, ScrmAggregate, derived_id


def is_external(user: str) -> bool:
    """WeCom external contacts' ids start with wo/wm; staff ids are the corp's own."""
    return user.startswith(("wo", "wm")) and len(user) > 10


# What an archive read searched for is sealed under a key of its own (not any customer's).
ACCESS_LOG_KEY = derived_id("subject", "archive-access-log")


def subject_key(sender: str, recipients: list[str], room_id: str) -> str:
    """Whose personal data a message is, and so whose key seals it: the customer in a one-to-
    one chat; in a group, the sender if a customer, else the group itself."""
    if not room_id:
        party = next((u for u in [sender, *recipients] if is_external(u)), None)
        return f"wecom_external_userid:{party}" if party else f"staff_chat:{sender}"
    return f"wecom_external_userid:{sender}" if is_external(sender) else f"room:{room_id}"


class ArchivedMessage(ScrmAggregate):
    @staticmethod
    def create_id(msgid: str) -> UUID:
        return derived_id("msgaudit", msgid)

    @event("Archived")
    def __init__(
        self,
        msgid: str,
        seq: int | None,
        action: str,
        sender: str,
        recipients: list[str],
        room_id: str,
        sent_at: datetime,
        msgtype: str,
        subject: str,  # whose key sealed the content (see subject_key)
        sealed: str,  # the payload, sealed: text, file references, ... (personal data)
        meta: Meta,
    ):
        self.msgid = msgid
        self.sender = sender
        self.recipients = recipients
        self.room_id = room_id
        self.recalled = False

    def recall(self, recall_msgid: str, meta: Meta) -> bool:
        if self.recalled:
            return False
        self._recalled(recall_msgid=recall_msgid, meta=meta)
        return True

    @event("Recalled")
    def _recalled(self, recall_msgid: str, meta: Meta) -> None:
        self.recalled = True


class ArchiveCursor(ScrmAggregate):
    """How far the msgaudit feed has been ingested: the puller resumes after `last_seq`."""

    @staticmethod
    def create_id() -> UUID:
        return derived_id("msgaudit", "cursor")

    @event("Started")
    def __init__(self, meta: Meta):
        self.last_seq = 0

    def advance(self, first_seq: int, last_seq: int, count: int, meta: Meta) -> None:
        if last_seq > self.last_seq:
            self._batch_ingested(first_seq=first_seq, last_seq=last_seq, count=count, meta=meta)

    @event("BatchIngested")
    def _batch_ingested(self, first_seq: int, last_seq: int, count: int, meta: Meta) -> None:
        self.last_seq = last_seq


class PendingRecall(ScrmAggregate):
    """A recall that arrived before the message it recalls."""

    @staticmethod
    def create_id(pre_msgid: str) -> UUID:
        return derived_id("msgaudit-recall", pre_msgid)

    @event("Noted")
    def __init__(self, pre_msgid: str, recall_msgid: str, meta: Meta):
        self.recall_msgid = recall_msgid


def require_record(record: object, line: int) -> dict[str, object]:
    if not isinstance(record, dict):
        raise InvalidInput(f"record {line} is not a JSON object", field=f"records[{line}]")
    if not isinstance(record.get("msgid"), str) or not record["msgid"]:
        raise InvalidInput(f"record {line} has no msgid", field=f"records[{line}].msgid")
    return record


class Archive(ScrmAggregate):
    """One read of archived content: who, what, when and why. Reading is itself on record."""

    @event("Accessed")
    def __init__(
        self,
        reader: str,
        role: str,
        purpose: str,
        query: dict[str, str],
        message_ids: list[str],
        meta: Meta,
    ):
        self.reader = reader


class SensitiveWordPack(ScrmAggregate):
    """A versioned rule pack (an industry's shipped pack, or a tenant's own words). Every
    version is an event, and every hit names the version that found it."""

    @staticmethod
    def create_id(pack_id: str) -> UUID:
        return derived_id("sensitive-words", pack_id)

    @event("Published")
    def __init__(self, pack_id: str, industry: str, rules: list[dict[str, str]], meta: Meta):
        self.pack_id = pack_id
        self.industry = industry
        self.rules = rules
        self.pack_version = 1

    def revise(self, rules: list[dict[str, str]], meta: Meta) -> bool:
        if rules == self.rules:
            return False
        self._revised(rules=rules, pack_version=self.pack_version + 1, meta=meta)
        return True

    @event("Revised")
    def _revised(self, rules: list[dict[str, str]], pack_version: int, meta: Meta) -> None:
        self.rules = rules
        self.pack_version = pack_version


class PackRegistry(ScrmAggregate):
    """Which packs exist, so that all of them can be loaded for scanning."""

    @staticmethod
    def create_id() -> UUID:
        return derived_id("sensitive-words", "registry")

    @event("Started")
    def __init__(self, meta: Meta):
        self.pack_ids: list[str] = []

    def register(self, pack_id: str, meta: Meta) -> None:
        if pack_id not in self.pack_ids:
            self._registered(pack_id=pack_id, meta=meta)

    @event("PackRegistered")
    def _registered(self, pack_id: str, meta: Meta) -> None:
        self.pack_ids = [*self.pack_ids, pack_id]


class ComplianceViolation(ScrmAggregate):
    """A rule's hit on one archived message; its id makes re-scanning the message a no-op."""

    @staticmethod
    def create_id(msgid: str, pack_id: str, word: str) -> UUID:
        return derived_id("violation", f"{msgid}\x1f{pack_id}\x1f{word}")

    @event("Detected")
    def __init__(
        self,
        msgid: str,
        message_id: UUID,
        pack_id: str,
        pack_version: int,
        word: str,
        severity: str,
        sender: str,
        recipients: list[str],
        room_id: str,
        sent_at: datetime,
        meta: Meta,
    ):
        self.status = "open"
        self.subject = subject_key(sender, recipients, room_id)

    def acknowledge(self, meta: Meta) -> None:
        if self.status != "open":
            raise Conflict(f"this alert is already {self.status}", code=f"alert_{self.status}")
        self._acknowledged(meta=meta)

    @event("Acknowledged")
    def _acknowledged(self, meta: Meta) -> None:
        self.status = "acknowledged"

    def resolve(self, sealed_note: str, meta: Meta) -> None:
        """Closed with a note (sealed: a note about a conversation is personal data)."""
        if self.status == "resolved":
            raise Conflict("this alert is already resolved", code="alert_resolved")
        self._resolved(sealed_note=sealed_note, meta=meta)

    @event("Resolved")
    def _resolved(self, sealed_note: str, meta: Meta) -> None:
        self.status = "resolved"
