"""Recording a reconciliation (自动化对账): one imported statement and the work on its findings.

`StatementImport` is one channel statement file, imported once: its id is derived from the
channel and the SHA-256 digest of the file's text, so the same file imported again is a 409
naming the earlier import. Its creation event keeps what finance works down: the findings
that are not `matched` (each as a dict, in the order `reconcile` sorts them; a finding's
index is its place in that list) and the counts per reason, matched included. Past
FINDINGS_PER_EVENT findings the rest follow in `FindingsListed` events saved with it, so no
event outgrows what the bus carries. The rows
themselves are not kept: a day of WeChat Pay is ~100k rows and the file is finance's to keep.

The fee rate the channel is expected to charge is configuration that changes the outcome, so
it is given per import and recorded on the import's event (a Decimal as a string), beside the
tolerance: each import says which rate it was judged by, and a later rate never rewrites an
earlier import's findings.

The book (our payments and refunds) is handed in by the caller, as a list or as a function
of what the statement covers (infra/reconciliation.py reads the orders read model), so the
domain reads no database. Which book entries are judged: every entry a statement row names
(same kind, order, refund), and, for channels whose statement covers a span of time (WeChat
Pay, Alipay: daily or monthly bills), every entry inside the Beijing calendar days the
statement's rows span. A Douyin settlement report lists what settled, not what was paid, so
an order it does not name may simply not have settled yet: only the entries it names count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, get_args
from uuid import UUID

from eventsourcing.domain import event

from domain.orders.platforms._common import BEIJING
from domain.settlement.reconciliation import (
    BookEntry,
    Reason,
    StatementRow,
    parse_alipay_bill,
    parse_douyin_settlement,
    parse_wechat_pay_tradebill,
    reconcile,
)
from domain.shared import (
    ConcurrentUpdate,
    Conflict,
    Gone,
    InvalidInput,
    Meta,
    Recorded,
    ScrmAggregate,
    derived_id,
    require_text,
)
from domain.store import ScrmApplication

PARSERS: dict[str, Callable[[str], list[StatementRow]]] = {
    "wechat_pay": parse_wechat_pay_tradebill,
    "alipay": parse_alipay_bill,
    "douyin": parse_douyin_settlement,
}
# Channels whose statement covers every payment of its days (a bill); the others (a
# settlement report) cover only what they name.
SPANS_TIME = frozenset({"wechat_pay", "alipay"})
REASONS: tuple[str, ...] = get_args(Reason)
RESOLUTIONS = ("explained", "adjusted", "written_off")
# A file where this many rows disagree with the books is the wrong file, the wrong fee rate or
# books not yet imported: refused (nothing recorded).
MAX_FINDINGS = 20_000
# Findings per event (~200 bytes each): an event stays well under JetStream's default 1 MB
# message size, which the relay must publish it within. More are listed by further events
# saved in the same transaction as the import.
FINDINGS_PER_EVENT = 1_000


class StatementImport(ScrmAggregate):
    """One channel statement file, reconciled against the books once."""

    @staticmethod
    def create_id(channel: str, digest: str) -> UUID:
        return derived_id("statement-import", f"{channel}:{digest}")

    @event("Imported")
    def __init__(
        self,
        channel: str,
        file_name: str,
        digest: str,  # SHA-256 of the file's text (UTF-8, no BOM)
        rows: int,
        period_from: datetime | None,  # the earliest and latest row (None: no rows)
        period_to: datetime | None,
        book_from: datetime | None,  # the span whose unnamed book entries were judged
        book_to: datetime | None,
        platforms: list[str] | None,  # the order platforms the book was read for (None: all)
        fee_rate: str,  # Decimal as a string: the rate the channel was expected to charge
        tolerance_fen: int,
        counts: dict[str, int],  # per reason, matched included
        findings: list[dict[str, Any]],  # the findings that are not matched (the first ones)
        meta: Meta,
    ):
        self.channel = channel
        self.file_name = file_name
        self.finding_count = len(findings)
        self.resolved: dict[int, str] = {}

    @classmethod
    def record(cls, findings: list[dict[str, Any]], meta: Meta, **imported: Any) -> StatementImport:
        """The import and its findings, FINDINGS_PER_EVENT to an event (saved together)."""
        size = FINDINGS_PER_EVENT
        made = cls(findings=findings[:size], meta=meta, **imported)
        for start in range(size, len(findings), size):
            made._listed(first_index=start, findings=findings[start : start + size], meta=meta)
        return made

    @event("FindingsListed")
    def _listed(self, first_index: int, findings: list[dict[str, Any]], meta: Meta) -> None:
        self.finding_count += len(findings)

    def resolve(self, index: int, resolution: str, note: str, meta: Meta) -> None:
        """Finance works a finding down: explained, adjusted (booked elsewhere) or written
        off. Once only."""
        if resolution not in RESOLUTIONS:
            raise InvalidInput(
                f"resolution must be one of {', '.join(RESOLUTIONS)}", field="resolution"
            )
        note = require_text(note, "note", max_len=500)
        if isinstance(index, bool) or not 0 <= index < self.finding_count:
            raise InvalidInput(
                f"the import has no finding {index} (it has {self.finding_count})", field="index"
            )
        if index in self.resolved:
            raise Gone(
                f"finding {index} is resolved already ({self.resolved[index]})",
                code="already_resolved",
            )
        self._resolved(index=index, resolution=resolution, note=note, meta=meta)

    @event("FindingResolved")
    def _resolved(self, index: int, resolution: str, note: str, meta: Meta) -> None:
        self.resolved = {**self.resolved, index: resolution}


# --- the service -------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """What a statement covers, for the caller that reads the book."""

    channel: str
    start: datetime | None  # the earliest row's time, aware UTC
    end: datetime | None  # the latest row's
    keys: frozenset[tuple[str, str, str]]  # (kind, order_ref, refund_ref or "") of its rows

    @property
    def order_refs(self) -> frozenset[str]:
        return frozenset(key[1] for key in self.keys)


BookFor = Callable[[Coverage], Iterable[BookEntry]]


@dataclass(frozen=True)
class ImportOutcome:
    id: str
    position: int | None
    rows: int
    counts: dict[str, int]
    findings: int  # not matched


def statement_digest(text: str) -> str:
    """SHA-256 over the text (UTF-8, BOM removed): the same statement is the same file
    whether it was sent as text or as its GBK bytes."""
    return hashlib.sha256(text.removeprefix("\ufeff").encode("utf-8")).hexdigest()


def fee_rate_of(value: str | Decimal) -> Decimal:
    try:
        rate = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidInput(
            f"fee_rate must be a decimal rate like 0.006, got {value!r}", field="fee_rate"
        ) from None
    if not rate.is_finite() or not 0 <= rate < 1:
        raise InvalidInput("fee_rate must be a rate from 0 to 1, e.g. 0.006", field="fee_rate")
    return rate


def import_statement(
    app: ScrmApplication,
    channel: str,
    text: str,
    file_name: str,
    fee_rate: str | Decimal,
    book: Iterable[BookEntry] | BookFor,
    meta: Meta,
    *,
    tolerance_fen: int = 0,
    platforms: list[str] | None = None,
) -> ImportOutcome:
    """Parse one channel's file, reconcile it against the book and record the import.
    A malformed file is a 422 naming its line and column, and nothing is recorded."""
    parse = PARSERS.get(channel)
    if parse is None:
        raise InvalidInput(f"channel must be one of {', '.join(PARSERS)}", field="channel")
    name = require_text(file_name, "file_name", max_len=200)
    rate = fee_rate_of(fee_rate)
    digest = statement_digest(text)
    import_id = StatementImport.create_id(channel, digest)
    _refuse_again(app, import_id)
    rows = parse(text)
    start = min((r.occurred_at for r in rows), default=None)
    end = max((r.occurred_at for r in rows), default=None)
    keys = frozenset((r.kind, r.order_ref, r.refund_ref or "") for r in rows)
    entries = list(book(Coverage(channel, start, end, keys)) if callable(book) else book)
    window = _days(start, end) if channel in SPANS_TIME else None
    judged = [e for e in entries if _judged(e, keys, window)]
    findings = reconcile(rows, judged, rate, tolerance_fen=tolerance_fen)
    counts = dict.fromkeys(REASONS, 0)
    for finding in findings:
        counts[finding.reason] += 1
    open_ = [asdict(f) for f in findings if f.reason != "matched"]
    if len(open_) > MAX_FINDINGS:
        worst = max((r for r in REASONS if r != "matched"), key=lambda r: counts[r])
        raise InvalidInput(
            f"{len(open_)} of the statement's {len(rows)} rows and the books disagree (most:"
            f" {worst}); check the channel, the fee rate and that the orders are imported",
            field="content",
            code="too_many_findings",
        )
    imported = StatementImport.record(
        open_,
        meta,
        channel=channel,
        file_name=name,
        digest=digest,
        rows=len(rows),
        period_from=start,
        period_to=end,
        book_from=window[0] if window else None,
        book_to=window[1] if window else None,
        platforms=sorted(platforms) if platforms is not None else None,
        fee_rate=str(rate),
        tolerance_fen=tolerance_fen,
        counts=counts,
    )
    try:
        position = app.save_all(imported)
    except ConcurrentUpdate:
        _refuse_again(app, import_id)  # the same file, imported at the same moment
        raise
    return ImportOutcome(str(import_id), position, len(rows), counts, len(open_))


def resolve_finding(
    app: ScrmApplication, import_id: UUID, index: int, resolution: str, note: str, meta: Meta
) -> Recorded:
    def attempt() -> Recorded:
        found = app.load(StatementImport, import_id, "statement import")
        found.resolve(index, resolution, note, meta)
        return Recorded(str(import_id), app.save_all(found), found.version)

    return app.retrying(attempt)


def _refuse_again(app: ScrmApplication, import_id: UUID) -> None:
    earlier = app.find(StatementImport, import_id)
    if earlier is not None:
        raise Conflict(
            f"this file was imported already, as import {import_id} ({earlier.file_name},"
            f" {earlier.created_on.isoformat()})",
            code="already_imported",
            extra={"import_id": str(import_id)},
        )


def _days(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime] | None:
    """The Beijing calendar days from `start` to `end`, as [first midnight, last midnight)."""
    if start is None or end is None:
        return None
    first = start.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    last = end.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    return first, last + timedelta(days=1)


def _judged(
    entry: BookEntry,
    keys: frozenset[tuple[str, str, str]],
    window: tuple[datetime, datetime] | None,
) -> bool:
    if (entry.kind, entry.order_ref, entry.refund_ref or "") in keys:
        return True
    return window is not None and window[0] <= entry.occurred_at < window[1]
