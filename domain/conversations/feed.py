"""Pulling the msgaudit feed (会话内容存档): resume after the last seq stored, one batch per
transaction, until the feed has nothing more.

WeCom serves the archive through a native SDK (GetChatData lists encrypted records after a
seq; DecryptData opens each one). The domain sees only `ArchiveFeed`: decrypted records, each
the JSON object DecryptData yields (msgid, action, from, tolist, roomid, msgtime, msgtype and
the type's own key) with the `seq` GetChatData listed it under. Implementations live in
infra/wecom/archive_feed.py.

Resuming is exact because the cursor moves in the same transaction as the batch it covers
(`ConversationsApp.ingest` saves `ArchiveCursor` with the messages): after a crash the next
pull starts after the last batch that committed, and re-ingesting any record is a no-op
(the message's id derives from its msgid).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from domain.conversations.application import MAX_BATCH, ConversationsApp
from domain.shared import InvalidInput, Meta


class ArchiveFeed(Protocol):
    def fetch(self, after_seq: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` decrypted msgaudit records with seq > after_seq, in seq order; an
        empty list when there are none (yet)."""
        ...


@dataclass(frozen=True)
class PullResult:
    batches: int  # batches ingested (one transaction each)
    messages: int  # records the feed yielded
    archived: int  # new messages stored
    duplicates: int  # records already stored (a re-pull, or an overlap)
    recalls: int  # recalls that marked their original
    last_seq: int  # where the next pull resumes


def pull(
    app: ConversationsApp,
    feed: ArchiveFeed,
    meta: Meta,
    batch: int = 1000,
    max_batches: int | None = None,
) -> PullResult:
    """Fetch after the stored cursor and ingest, one batch per transaction, until the feed is
    empty (or `max_batches`). `meta` is the run's envelope; each batch's causation names the
    seq it resumed after."""
    if not 1 <= batch <= MAX_BATCH:
        raise InvalidInput(f"a batch is 1 to {MAX_BATCH} records", field="batch")
    after = app.last_seq()
    batches = messages = archived = duplicates = recalls = 0
    while max_batches is None or batches < max_batches:
        records = feed.fetch(after, batch)
        if not records:
            break
        last = _last_seq(records, after)
        result = app.ingest(
            list(records), replace(meta, causation_id=f"{meta.causation_id}:after-seq-{after}")
        )
        batches += 1
        messages += len(records)
        archived += result.archived
        duplicates += result.duplicates
        recalls += result.recalls
        after = max(result.last_seq, last)
    return PullResult(batches, messages, archived, duplicates, recalls, after)


def _last_seq(records: list[dict[str, Any]], after: int) -> int:
    """The batch's highest seq. Every record must carry one past the cursor: the cursor is
    how a pull resumes, and a feed that went backwards would loop for ever."""
    seqs: list[int] = []
    for n, record in enumerate(records):
        seq = record.get("seq") if isinstance(record, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool) or seq <= after:
            raise InvalidInput(
                f"record {n} from the feed has no seq after {after}", field=f"records[{n}].seq"
            )
        seqs.append(seq)
    return max(seqs)
