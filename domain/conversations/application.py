"""The conversations context's service layer: archive ingest (one transaction per batch)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson

from domain.conversations.aggregates import (
    Archive,
    ArchiveCursor,
    ArchivedMessage,
    ComplianceViolation,
    PackRegistry,
    PendingRecall,
    SensitiveWordPack,
    require_record,
    subject_key,
)
from domain.conversations.compliance import SEVERITIES, SHIPPED_PACKS, Matcher, Rule, text_of
from domain.ports import PersonalDataVault
from domain.shared import Gone, InvalidInput, Meta, derived_id, require_slug
from domain.store import ScrmApplication

ENVELOPE = {
    "msgid",
    "action",
    "from",
    "tolist",
    "roomid",
    "msgtime",
    "msgtype",
    "seq",
    "time",
    "user",
}
MAX_BATCH = 5000


@dataclass(frozen=True)
class IngestResult:
    archived: int
    duplicates: int
    recalls: int
    position: int | None
    last_seq: int


@dataclass(frozen=True)
class _Parsed:
    msgid: str
    seq: int | None
    action: str
    sender: str
    recipients: list[str]
    room_id: str
    sent_at: datetime
    msgtype: str
    payload: dict[str, Any]
    pre_msgid: str | None


def _parse(record: object, line: int) -> _Parsed:
    r = require_record(record, line)
    field = f"records[{line}]"
    action = r.get("action")
    seq = r.get("seq")
    if seq is not None and not (isinstance(seq, int) and seq >= 0):
        raise InvalidInput(f"record {line}: seq must be a whole number", field=f"{field}.seq")
    sender: object
    millis: object
    recipients: object
    room: object
    msgtype: object
    if action == "switch":  # its own shape: who switched enterprise, and when
        sender, millis, recipients, room, msgtype = r.get("user"), r.get("time"), [], "", "switch"
    elif action in ("send", "recall"):
        sender, millis = r.get("from"), r.get("msgtime")
        recipients, room, msgtype = r.get("tolist"), r.get("roomid") or "", r.get("msgtype")
        if not isinstance(recipients, list) or not all(isinstance(u, str) for u in recipients):
            raise InvalidInput(
                f"record {line}: tolist must be a list of ids", field=f"{field}.tolist"
            )
        if not isinstance(msgtype, str) or not msgtype:
            raise InvalidInput(f"record {line}: msgtype is required", field=f"{field}.msgtype")
    else:
        raise InvalidInput(
            f"record {line}: action must be send, recall or switch", field=f"{field}.action"
        )
    if not isinstance(sender, str) or not sender:
        raise InvalidInput(f"record {line}: the sender is required", field=f"{field}.from")
    if not isinstance(millis, int) or millis <= 0:
        raise InvalidInput(
            f"record {line}: the time must be unix milliseconds", field=f"{field}.msgtime"
        )
    if not isinstance(room, str):
        raise InvalidInput(f"record {line}: roomid must be text", field=f"{field}.roomid")
    payload = {k: v for k, v in r.items() if k not in ENVELOPE}
    pre = None
    if action == "recall":
        revoke = r.get("revoke")
        pre = revoke.get("pre_msgid") if isinstance(revoke, dict) else None
        if not isinstance(pre, str) or not pre:
            raise InvalidInput(
                f"record {line}: a recall names revoke.pre_msgid", field=f"{field}.revoke.pre_msgid"
            )
    return _Parsed(
        str(r["msgid"]),
        seq,
        str(action),
        sender,
        list(recipients),
        room,
        datetime.fromtimestamp(millis / 1000, UTC),
        msgtype,
        payload,
        pre,
    )


def _rules(rules: list[dict[str, str]]) -> list[dict[str, str]]:
    if not rules:
        raise InvalidInput("a pack needs at least one rule", field="rules")
    out: list[dict[str, str]] = []
    for n, rule in enumerate(rules):
        word = str(rule.get("word", "")).strip()
        severity = rule.get("severity", "medium")
        if not word or len(word) > 50:
            raise InvalidInput(
                f"rule {n}: the word must be 1-50 characters", field=f"rules[{n}].word"
            )
        if severity not in SEVERITIES:
            raise InvalidInput(
                f"rule {n}: severity must be one of {', '.join(SEVERITIES)}",
                field=f"rules[{n}].severity",
            )
        if all(r["word"] != word for r in out):
            out.append({"word": word, "severity": severity})
    return out


@lru_cache(maxsize=65_536)
def _subject_id(subject: str) -> UUID:
    """The vault key id of a data subject (uuid5 of its name, so worth remembering)."""
    return derived_id("subject", subject)


class _Batch:
    """What one ingest attempt has decided so far; nothing is stored until its one save.

    Every aggregate the batch may find already stored (its messages, the recalls noted for
    them, and for each recall the original and its note) is asked about in one query, and
    only those found are loaded."""

    def __init__(self, app: ScrmApplication, messages: list[_Parsed], meta: Meta):
        self.app = app
        self.meta = meta
        self._ids: dict[str, tuple[UUID, UUID]] = {}  # msgid: (message id, pending recall id)
        for p in messages:
            self.ids(p.msgid)
            if p.pre_msgid is not None:
                self.ids(p.pre_msgid)
        self.known = app.existing(i for pair in self._ids.values() for i in pair)
        self.new: dict[str, ArchivedMessage] = {}
        self.others: list[Any] = []  # violations and pending recalls, all new
        self.noted: dict[str, PendingRecall] = {}  # recalls noted in this batch, by pre_msgid
        self.recalled: dict[str, ArchivedMessage] = {}  # stored originals marked recalled
        self._loaded: dict[UUID, Any] = {}

    def ids(self, msgid: str) -> tuple[UUID, UUID]:
        found = self._ids.get(msgid)
        if found is None:
            found = (ArchivedMessage.create_id(msgid), PendingRecall.create_id(msgid))
            self._ids[msgid] = found
        return found

    def _load(self, cls: type[Any], aggregate_id: UUID) -> Any:
        if aggregate_id not in self.known:
            return None
        if aggregate_id not in self._loaded:
            self._loaded[aggregate_id] = self.app.find(cls, aggregate_id)
        return self._loaded[aggregate_id]

    def original(self, msgid: str) -> ArchivedMessage | None:
        found = self.new.get(msgid) or self.recalled.get(msgid)
        return found or self._load(ArchivedMessage, self.ids(msgid)[0])

    def pending(self, msgid: str) -> PendingRecall | None:
        noted = self.noted.get(msgid)
        return noted or self._load(PendingRecall, self.ids(msgid)[1])


class ConversationsApp(ScrmApplication):
    def __init__(
        self,
        vault: PersonalDataVault,
        env: dict[str, str] | None = None,
        *,
        share_with: ScrmApplication | None = None,
    ):
        super().__init__(env, share_with=share_with)
        self.vault = vault
        self._matcher: tuple[tuple[tuple[str, int], ...], Matcher] | None = None

    # --- sensitive-word packs (敏感词) --------------------------------------------------------

    def publish_pack(
        self, pack_id: str, industry: str, rules: list[dict[str, str]], meta: Meta
    ) -> tuple[int, int | None]:
        """Publish a pack, or its next version. Answers (version, position)."""
        pack_id = require_slug(pack_id, "pack_id")
        clean = _rules(rules)
        return self.retrying(lambda: self._publish_once(pack_id, industry, clean, meta))

    def _publish_once(
        self, pack_id: str, industry: str, rules: list[dict[str, str]], meta: Meta
    ) -> tuple[int, int | None]:
        pack = self.find(SensitiveWordPack, SensitiveWordPack.create_id(pack_id))
        registry = self.find(PackRegistry, PackRegistry.create_id()) or PackRegistry(meta=meta)
        if pack is None:
            pack = SensitiveWordPack(pack_id=pack_id, industry=industry, rules=rules, meta=meta)
        else:
            pack.revise(rules, meta)
        registry.register(pack_id, meta)
        return pack.pack_version, self.save_all(pack, registry)

    def install_shipped_packs(self, meta: Meta) -> dict[str, int]:
        return {
            industry: self.publish_pack(
                industry, industry, [{"word": r.word, "severity": r.severity} for r in rules], meta
            )[0]
            for industry, rules in SHIPPED_PACKS.items()
        }

    def matcher(self) -> Matcher:
        """Every pack in force, compiled once per set of versions."""
        registry = self.find(PackRegistry, PackRegistry.create_id())
        packs = [
            p
            for p in (
                self.find(SensitiveWordPack, SensitiveWordPack.create_id(i))
                for i in (registry.pack_ids if registry else [])
            )
            if p
        ]
        versions = tuple((p.pack_id, p.pack_version) for p in packs)
        if self._matcher is None or self._matcher[0] != versions:
            compiled = Matcher(
                [
                    (p.pack_id, p.pack_version, [Rule(r["word"], r["severity"]) for r in p.rules])
                    for p in packs
                ]
            )
            self._matcher = (versions, compiled)
        return self._matcher[1]

    def last_seq(self) -> int:
        """The highest msgaudit seq ingested so far: where a puller resumes (0 at first)."""
        cursor = self.find(ArchiveCursor, ArchiveCursor.create_id())
        return cursor.last_seq if cursor else 0

    def ingest(self, records: list[object], meta: Meta) -> IngestResult:
        """One batch of decrypted msgaudit records: all valid, or nothing recorded."""
        if not records:
            raise InvalidInput("a batch needs at least one record", field="records")
        if len(records) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} records per batch", field="records")
        parsed: dict[str, _Parsed] = {}
        for line, record in enumerate(records):
            p = _parse(record, line)
            parsed.setdefault(p.msgid, p)  # the same msgid twice in a batch: once
        ordered = sorted(parsed.values(), key=lambda p: p.sent_at)  # originals before recalls
        return self.retrying(lambda: self._ingest_once(ordered, meta))

    def _ingest_once(self, messages: list[_Parsed], meta: Meta) -> IngestResult:
        """Decide the whole batch in memory, then one save (one transaction). Which messages
        and pending recalls are already stored is asked once for the batch (`existing`), and
        only those are loaded; a message that lost a race to another ingest makes the save
        conflict, and `retrying` runs the batch again, finding it stored."""
        matcher = self.matcher()
        batch = _Batch(self, messages, meta)
        duplicates = recalls = 0
        self.vault.ensure_keys(
            {_subject_id(subject_key(p.sender, p.recipients, p.room_id)) for p in messages}
        )
        for p in messages:
            message_id = batch.ids(p.msgid)[0]
            if message_id in batch.known:
                duplicates += 1
                continue
            subject = subject_key(p.sender, p.recipients, p.room_id)
            try:
                sealed = self.vault.seal(_subject_id(subject), orjson.dumps(p.payload).decode())
            except Gone:  # the data subject was erased: the fact is stored, the content not
                sealed = ""
            message = ArchivedMessage(
                msgid=p.msgid,
                seq=p.seq,
                action=p.action,
                sender=p.sender,
                recipients=p.recipients,
                room_id=p.room_id,
                sent_at=p.sent_at,
                msgtype=p.msgtype,
                subject=subject,
                sealed=sealed,
                meta=meta,
            )
            batch.new[p.msgid] = message
            batch.others += [
                ComplianceViolation(
                    msgid=p.msgid,
                    message_id=message_id,
                    pack_id=hit.pack_id,
                    pack_version=hit.pack_version,
                    word=hit.word,
                    severity=hit.severity,
                    sender=p.sender,
                    recipients=p.recipients,
                    room_id=p.room_id,
                    sent_at=p.sent_at,
                    meta=meta,
                )
                for hit in (matcher.scan(text_of(p.payload)) if sealed else ())
            ]
            pending = batch.pending(p.msgid)
            if pending is not None:
                message.recall(pending.recall_msgid, meta)
            if p.pre_msgid is not None:
                recalls += self._recall(p.pre_msgid, p.msgid, batch)
        seqs = [p.seq for p in messages if p.seq is not None]
        cursor = self.find(ArchiveCursor, ArchiveCursor.create_id()) or ArchiveCursor(meta=meta)
        if seqs:
            cursor.advance(min(seqs), max(seqs), len(batch.new), meta)
        position = self.save_aggregates(
            [*batch.new.values(), *batch.others, *batch.recalled.values(), cursor]
        )
        return IngestResult(len(batch.new), duplicates, recalls, position, cursor.last_seq)

    def _recall(self, pre_msgid: str, recall_msgid: str, batch: _Batch) -> int:
        """Mark the original recalled (kept, never deleted); if it has not arrived yet, note
        the recall so that the original is marked when it does."""
        original = batch.original(pre_msgid)
        if original is None:
            if batch.pending(pre_msgid) is None:
                note = PendingRecall(
                    pre_msgid=pre_msgid, recall_msgid=recall_msgid, meta=batch.meta
                )
                batch.noted[pre_msgid] = note
                batch.others.append(note)
            return 0
        if original.recall(recall_msgid, batch.meta) and pre_msgid not in batch.new:
            batch.recalled[pre_msgid] = original
        return 1

    def record_access(
        self,
        *,
        reader: str,
        role: str,
        purpose: str,
        query: dict[str, str],
        message_ids: list[str],
        meta: Meta,
    ) -> int | None:
        """Before archived content is shown: no record, no content."""
        purpose = (purpose or "").strip()
        if len(purpose) < 4:
            raise InvalidInput(
                "state the purpose of reading the archive (at least 4 characters)", field="purpose"
            )
        access = Archive(
            reader=reader,
            role=role,
            purpose=purpose[:200],
            query=query,
            message_ids=message_ids,
            meta=meta,
        )
        return self.save_all(access)

    def unseal(self, subject: str, sealed: str) -> dict[str, Any] | None:
        """A message's payload, or None once its data subject's key is destroyed."""
        plain = self.unseal_text(subject, sealed)
        return None if plain is None else orjson.loads(plain)  # type: ignore[no-any-return]

    def unseal_text(self, subject: str, sealed: str) -> str | None:
        return self.vault.unseal(derived_id("subject", subject), sealed)

    # --- compliance alerts -------------------------------------------------------------------

    def acknowledge_alert(
        self, violation_id: UUID, *, expected_version: int | None, meta: Meta
    ) -> tuple[int | None, int]:
        alert = self.load(ComplianceViolation, violation_id, "alert")
        alert.check_version(expected_version)
        alert.acknowledge(meta)
        return self.save_all(alert), alert.version

    def resolve_alert(
        self, violation_id: UUID, *, note: str, expected_version: int | None, meta: Meta
    ) -> tuple[int | None, int]:
        note = (note or "").strip()
        if not 4 <= len(note) <= 2000:
            raise InvalidInput("a resolution note of 4-2000 characters is required", field="note")
        alert = self.load(ComplianceViolation, violation_id, "alert")
        alert.check_version(expected_version)
        alert.resolve(self.vault.seal(derived_id("subject", alert.subject), note), meta)
        return self.save_all(alert), alert.version
