"""Archive exports for regulators, and their verification (docs/exports.md).

An export is a directory (or a tarball of one) that a regulator verifies with `sha256sum` and
`openssl` alone:

    events/<position>.jsonl  one event per line: canonical JSON (sorted keys, UTF-8, no
                             spaces), in log order, split into segments
    manifest.json            format, scope, counts, first and last position, the Merkle root
                             (RFC 6962) over every line, the store's seal head, the previous
                             export's digest, each segment's SHA-256
    keys/ed25519.pub         the public keys that sign, and their fingerprints in the manifest
    keys/p256.pub
    README.txt               the verification commands, in plain words
    SHA256SUMS               `sha256sum` lines for every file above
    SHA256SUMS.ed25519.sig   Ed25519 over SHA256SUMS (`openssl pkeyutl -verify -rawin`)
    SHA256SUMS.p256.sig      ECDSA P-256/SHA-256 over SHA256SUMS, DER (`openssl dgst -verify`)

The export's digest is the SHA-256 of its SHA256SUMS; the next export names it, so consecutive
exports chain. Personal data is in clear (what a regulator asked for), except for erased
customers, whose events keep their shape and say "erased" where personal data was. Names of
staff and customers are resolved as they were when each event happened (the log is read in
order, and the directory follows it).
"""

from __future__ import annotations

import gc
import hashlib
import io
import multiprocessing
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import orjson
from eventsourcing.utils import get_topic

from domain.audit.exports import ArchiveExport, ExportChain
from domain.conversations.aggregates import subject_key
from domain.customers.aggregates import Customer, Staff
from domain.shared import ERASED, Conflict, InvalidInput, Meta, derived_id
from infra import integrity, signing
from infra.audit import Slot, candidate_keys, envelope, sealed_slots, stored_records
from infra.crypto import TOKEN_PREFIX
from infra.events import EventRecord, record_from_stored, to_record
from infra.settings import Settings

if TYPE_CHECKING:
    from infra.bootstrap import Container

FORMAT = "scrm-archive-export/1"
SEGMENT_LINES = 100_000
BATCH = 2000
PARALLEL_FROM = 100_000  # log positions: below this, one process beats starting workers
MAX_WORKERS = 8
SHAPES_KEPT = 20_000  # shapes of event whose people are worked out (memory stays bounded)
EXCLUDED = ("SHA256SUMS", "SHA256SUMS.ed25519.sig", "SHA256SUMS.p256.sig")


# --- the Merkle tree of RFC 6962 --------------------------------------------------------------


def leaf_hash(line: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + line).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleTree:
    """RFC 6962's Merkle Tree Hash, built leaf by leaf in O(log n) memory: a stack of the
    roots of perfect subtrees, largest first; the root folds them from the right."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def add(self, line: bytes) -> None:
        self.add_leaf(leaf_hash(line))

    def add_leaf(self, h: bytes) -> None:
        self.size += 1
        n = self.size
        while n % 2 == 0:
            h = node_hash(self._stack.pop(), h)
            n //= 2
        self._stack.append(h)

    def root(self) -> bytes:
        if not self._stack:
            return hashlib.sha256(b"").digest()
        h = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            h = node_hash(left, h)
        return h


def canonical(value: Any) -> bytes:
    """One event as one line: sorted keys, UTF-8, no insignificant spaces."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


# --- who is who, as the log says at each point -------------------------------------------------


@dataclass
class _Directory:
    """Staff names and customers' identities as of the event being read."""

    staff: dict[str, str] = field(default_factory=dict)
    identities: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # customer id
    by_external: dict[str, str] = field(default_factory=dict)  # WeCom external id -> customer

    def follow(self, r: EventRecord) -> bool:
        """Take in an event; True when it changed who is who."""
        d = r.data
        if r.name == "StaffRegistered":
            self.staff[d["staff_id"]] = d["name"]
        elif r.name == "CustomerAdded":
            self._identities(r.originator_id, d.get("identities") or [])
        elif r.name in ("CustomerIdentityAdded", "CustomerIdentityLinked"):
            self._identities(r.originator_id, [d])
        else:
            return False
        return True

    def _identities(self, customer: str, items: list[dict[str, Any]]) -> None:
        # A new list each time, never appended to: what an earlier event saw stays as it was.
        known = list(self.identities.get(customer, []))
        for i in items:
            kind, value = i.get("kind"), i.get("value")
            if isinstance(kind, str) and isinstance(value, str):
                known.append((kind, value))
                if kind == "wecom_external_userid":
                    self.by_external[value] = customer
        self.identities[customer] = known

    def as_of_now(self, staff: set[str], customers: set[str]) -> People:
        """Who the event's people are at this point of the log."""
        return People(
            staff={s: self.staff[s] for s in staff if s in self.staff},
            customers={c: self.identities[c] for c in customers if c in self.identities},
        )


@dataclass(frozen=True)
class People:
    staff: dict[str, str]
    customers: dict[str, list[tuple[str, str]]]


# The events the directory follows, to read alone when a range starts mid-log.
DIRECTORY_TOPICS = [
    get_topic(getattr(aggregate, event))  # the event classes eventsourcing made
    for aggregate, event in (
        (Staff, "Registered"),
        (Customer, "Added"),
        (Customer, "IdentityAdded"),
        (Customer, "IdentityLinked"),
    )
]

_STAFF_FIELDS = ("staff_id", "assignee", "owner", "handover_to", "reader")
_CUSTOMER_FIELDS = ("customer_id",)


def _referenced(r: EventRecord, directory: _Directory) -> tuple[set[str], set[str]]:
    """The staff ids and customer ids an event names."""
    d = r.data
    staff: set[str] = set()
    customers: set[str] = set()
    if r.actor.startswith("staff:"):
        staff.add(r.actor.removeprefix("staff:"))
    for k in _STAFF_FIELDS:
        v = d.get(k)
        if isinstance(v, str) and v in directory.staff:
            staff.add(v)
    for k in _CUSTOMER_FIELDS:
        v = d.get(k)
        if isinstance(v, str):
            customers.add(v)
    if r.context == "customers" and r.originator_id in directory.identities:
        customers.add(r.originator_id)
    people = [d.get("sender"), *(d.get("recipients") or [])]
    for p in people:
        if not isinstance(p, str):
            continue
        if p in directory.staff:
            staff.add(p)
        elif p in directory.by_external:
            customers.add(directory.by_external[p])
    return staff, customers


# --- producing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    number: int
    directory: Path
    digest: str
    events: int
    first_position: int | None
    last_position: int | None
    merkle_root: str
    previous_digest: str | None
    position: int | None  # of the ArchiveExportProduced event

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "number": self.number,
            "digest": self.digest,
            "events": self.events,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "merkle_root": self.merkle_root,
            "previous_digest": self.previous_digest,
            "position": self.position,
        }


class _Segments:
    """Lines into events/NNNNN.jsonl, a new file every SEGMENT_LINES, each hashed as written."""

    def __init__(self, root: Path):
        self.root = root
        (root / "events").mkdir(exist_ok=True)
        self.done: list[dict[str, Any]] = []
        self._file: io.BufferedWriter | None = None
        self._hash = hashlib.sha256()
        self._lines = 0
        self._first = 0
        self._last = 0

    def write(self, positions: list[int], lines: list[bytes]) -> None:
        """Lines in log order with their positions: written (and hashed) a segment's share at
        a time, not line by line."""
        done = 0
        while done < len(lines):
            if self._file is None:
                # Named by its first position: segments sort in log order, whoever wrote them.
                name = f"events/{positions[done]:012d}.jsonl"
                self._name = name
                self._file = open(self.root / name, "wb")  # noqa: SIM115 (closed in _close)
                self._hash = hashlib.sha256()
                self._lines = 0
                self._first = positions[done]
            chunk = lines[done : done + SEGMENT_LINES - self._lines]
            data = b"\n".join(chunk) + b"\n"
            self._file.write(data)
            self._hash.update(data)
            self._lines += len(chunk)
            done += len(chunk)
            self._last = positions[done - 1]
            if self._lines >= SEGMENT_LINES:
                self._close()

    def _close(self) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        self.done.append(
            {
                "file": self._name,
                "events": self._lines,
                "first_position": self._first,
                "last_position": self._last,
                "sha256": self._hash.hexdigest(),
            }
        )

    def close(self) -> list[dict[str, Any]]:
        self._close()
        return self.done


def _in_scope(
    r: EventRecord,
    scope: dict[str, Any],
    staff: set[str],
    customers: set[str],
) -> bool:
    if not scope["from_key"] <= r.occurred_at < scope["to_key"]:
        return False
    if scope["contexts"] and r.context not in scope["contexts"]:
        return False
    if scope["customers"] and not (customers & scope["customer_set"]):
        return False
    return not (scope["staff"] and not (staff & scope["staff_set"]))


def _sortable(moment: str) -> str:
    """EventRecord times are ISO-8601 in UTC with a Z (infra/events.py): compare alike."""
    return datetime.fromisoformat(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_export_id() -> UUID:
    return uuid4()


def produce(
    c: Container,
    scope: dict[str, Any],
    out: Path,
    *,
    requested_by: str,
    role: str,
    meta: Meta,
    progress: Callable[[int], None] | None = None,
    export_id: UUID | None = None,
    parallel_from: int = PARALLEL_FROM,
) -> ExportResult:
    """Write an export of `scope` (domain.audit.exports.export_scope) to `out`: a new
    directory, or a tarball if `out` ends with .tar, .tar.gz or .tgz. Then record it."""
    tarball = out.name.endswith((".tar", ".tar.gz", ".tgz"))
    if out.exists() and (tarball or not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} exists and is not empty; exports never overwrite", field="out")
    assert c.signing_keys is not None and c.integrity_db is not None
    keys = c.signing_keys
    chain = c.conversations.find(ExportChain, ExportChain.create_id())
    previous = chain.last_digest if chain is not None else None
    number = (chain.count if chain is not None else 0) + 1
    export_id = export_id or new_export_id()
    cut = c.head()
    seal_head = integrity.head(c.integrity_db)
    # Written beside OUT and moved into place whole: a failed export leaves nothing behind.
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".scrm-export-", dir=out.parent))
    try:
        erased = _erased_keys(c)
        stats = _write_events(c, scope, work, cut, erased, progress, parallel_from)
        if _erased_keys(c) - erased:
            # Values are opened with keys as they were when the export began: a customer
            # erased since may be in it in clear. Rare, and a second run is right.
            raise Conflict(
                "a customer was erased while the export was written; run it again",
                code="erased_during_export",
            )
        produced_at = datetime.now(UTC).isoformat()
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "export_id": str(export_id),
            "number": number,
            "produced_at": produced_at,
            "produced_by": requested_by,
            "scope": {k: scope[k] for k in ("from", "to", "customers", "staff", "contexts")},
            "time": "events whose business time (occurred_at) is in [from, to)",
            "counts": {
                "events": stats.events,
                "by_context": dict(sorted(stats.by_context.items())),
            },
            "first_position": stats.first,
            "last_position": stats.last,
            "log_position_at_export": cut,
            "merkle": {
                "algorithm": "RFC 6962 SHA-256; a leaf is one line of a segment without its"
                " newline, in file and line order",
                "tree_size": stats.tree.size,
                "root": stats.tree.root().hex(),
            },
            "store_seals": {
                "position": seal_head[0],
                "size": seal_head[1],
                "chain": seal_head[2].hex(),
            },
            "previous_export": {"number": number - 1, "digest": previous} if previous else None,
            "segments": stats.segments,
            "keys": {
                "ed25519": {"file": "keys/ed25519.pub", "fingerprint": keys.ed25519_id},
                "p256": {"file": "keys/p256.pub", "fingerprint": keys.p256_id},
            },
            "erased_customers": stats.erased_customers,
        }
        (work / "manifest.json").write_bytes(
            orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
        )
        (work / "keys").mkdir()
        (work / "keys/ed25519.pub").write_bytes(signing.public_pem(keys.ed25519.public_key()))
        (work / "keys/p256.pub").write_bytes(signing.public_pem(keys.p256.public_key()))
        (work / "README.txt").write_text(readme(manifest), encoding="utf-8")
        sums = sha256sums(work)
        (work / "SHA256SUMS").write_bytes(sums)
        (work / "SHA256SUMS.ed25519.sig").write_bytes(keys.sign_ed25519(sums))
        (work / "SHA256SUMS.p256.sig").write_bytes(keys.sign_p256(sums))
        digest = hashlib.sha256(sums).hexdigest()
        if tarball:
            _tar(work, out)
        else:
            if out.exists():
                out.rmdir()  # empty, checked above
            work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    record = ArchiveExport(
        id=export_id,
        number=number,
        requested_by=requested_by,
        role=role,
        scope=manifest["scope"],
        events=stats.events,
        first_position=stats.first,
        last_position=stats.last,
        tree_size=stats.tree.size,
        merkle_root=manifest["merkle"]["root"],
        digest=digest,
        previous_digest=previous,
        signing_keys={"ed25519": keys.ed25519_id, "p256": keys.p256_id},
        meta=meta,
    )
    if chain is None:
        chain = ExportChain(meta=meta)
    chain.extend(record.id, digest, previous, meta)
    try:
        position = c.conversations.save_all(record, chain)
    except Conflict:
        raise Conflict(
            "another export was recorded while this one was produced; run it again",
            code="export_chain_moved",
        ) from None
    return ExportResult(
        export_id=str(record.id),
        number=number,
        directory=out,
        digest=digest,
        events=stats.events,
        first_position=stats.first,
        last_position=stats.last,
        merkle_root=manifest["merkle"]["root"],
        previous_digest=previous,
        position=position,
    )


@dataclass
class _Part:
    """What one range of the log produced: its segments, the leaf hashes of its lines (in
    order), counts, positions and the erased subjects it met."""

    segments: list[dict[str, Any]] = field(default_factory=list)
    leaves: bytes = b""
    events: int = 0
    first: int | None = None
    last: int | None = None
    by_context: dict[str, int] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)


def _ranges(cut: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi] position ranges covering 1..cut, `parts` of them."""
    size = -(-cut // parts)
    return [(lo, min(lo + size - 1, cut)) for lo in range(1, cut + 1, size)]


@dataclass
class _Stats:
    tree: MerkleTree
    segments: list[dict[str, Any]]
    events: int
    first: int | None
    last: int | None
    by_context: dict[str, int]
    erased_customers: int


def _write_events(
    c: Container,
    scope: dict[str, Any],
    root: Path,
    cut: int,
    erased: set[UUID],
    progress: Callable[[int], None] | None,
    parallel_from: int,
) -> _Stats:
    """The lines of every event in scope up to `cut`. A long log is cut into one range per
    core, each written by a process of its own (the work is CPU-bound Python: decoding,
    decrypting, canonical JSON, hashing); the parts are put back together in log order."""
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if cut < parallel_from or workers < 2:
        parts = [_RangeWriter(c, scope, root, erased).run(1, cut, progress)]
    else:
        ranges = _ranges(cut, workers)
        spawn = multiprocessing.get_context("spawn")  # no inherited connections or threads
        with ProcessPoolExecutor(len(ranges), mp_context=spawn) as pool:
            futures = [
                pool.submit(_export_range, c.settings, scope, str(root), erased, lo, hi)
                for lo, hi in ranges
            ]
            parts = []
            for future, (lo, hi) in zip(futures, ranges, strict=True):
                parts.append(future.result())
                if progress is not None:
                    progress(hi - lo + 1)
    tree = MerkleTree()
    by_context: dict[str, int] = {}
    met: set[str] = set()  # the erased customers the export's events are about
    for part in parts:
        for i in range(0, len(part.leaves), 32):
            tree.add_leaf(part.leaves[i : i + 32])
        for k, v in part.by_context.items():
            by_context[k] = by_context.get(k, 0) + v
        met |= part.erased
    firsts = [p.first for p in parts if p.first is not None]
    lasts = [p.last for p in parts if p.last is not None]
    return _Stats(
        tree=tree,
        segments=[seg for part in parts for seg in part.segments],
        events=sum(p.events for p in parts),
        first=firsts[0] if firsts else None,
        last=lasts[-1] if lasts else None,
        by_context=by_context,
        erased_customers=len(met),
    )


def _export_range(
    settings: Settings, scope: dict[str, Any], root: str, erased: set[UUID], lo: int, hi: int
) -> _Part:
    """A worker process's share: its own container, the directory as the log stood just
    before `lo`, then the events lo..hi."""
    from infra.bootstrap import bootstrap

    c = bootstrap(settings)
    try:
        return _RangeWriter(c, scope, Path(root), erased).run(lo, hi)
    finally:
        c.close()


@dataclass
class _Facts:
    """What an event's people make of it: who it names, which of them were erased, the keys
    its sealed values are likely under, their names. The same for every event that names the
    same people (most of a log: the same staff and customers over and over), so worked out once
    per shape of event (`_shape`) while the directory stays as it is."""

    staff: set[str]
    customers: set[str]
    people: People
    gone: set[str]  # the erased customers or conversation subjects it is about
    keys: tuple[UUID, ...]  # likely keys, before the event's own aggregate's
    names: dict[bool, dict[str, Any]] = field(default_factory=dict)  # by "erased", shared


def _shape(r: EventRecord) -> tuple[Any, ...]:
    """Everything `_Facts` depends on, besides the directory (`_referenced`, `_concerns`,
    `_likely_keys`: the fields they read, spelled out, as this runs for every event)."""
    d = r.data
    get = d.get
    recipients = get("recipients")
    return (
        r.actor,
        r.context,
        r.originator_id if r.context == "customers" else None,
        get("staff_id"),
        get("assignee"),
        get("owner"),
        get("handover_to"),
        get("reader"),
        get("customer_id"),
        get("sender"),
        tuple(recipients) if type(recipients) is list else recipients,
        get("room_id"),
        get("subject"),
    )


_SEALED = b'"' + TOKEN_PREFIX.encode()  # a JSON string that begins as a sealed value does


class _RangeWriter:
    """Lines for the events of one range of positions, in log order.

    This is the export's hot path (docs/benchmarks.md): records are read with their seals in
    one streamed query, decoded straight from the stored JSON, and everything that depends
    only on who an event names is worked out once per shape of event. Values are opened
    through one key ring, so each key is asked of the key store once."""

    def __init__(self, c: Container, scope: dict[str, Any], root: Path, erased: set[UUID]):
        self.c = c
        self.scope = {
            **scope,
            "from_key": _sortable(scope["from"]),
            "to_key": _sortable(scope["to"]),
            "customer_set": set(scope["customers"]),
            "staff_set": set(scope["staff"]),
        }
        self.erased = erased
        self.erased_ids = {str(u) for u in erased}
        self.directory = _Directory()
        self.segments = _Segments(root)
        self.part = _Part()
        self._leaves = bytearray()
        self._ring = c.vault.key_ring()
        self._shapes: dict[tuple[Any, ...], _Facts] = {}
        self._history_keys: dict[str, tuple[UUID, ...]] = {}

    def run(self, lo: int, hi: int, progress: Callable[[int], None] | None = None) -> _Part:
        self._directory_before(lo)
        chosen: list[tuple[EventRecord, str | None, bool, _Facts]] = []
        read = 0
        with _collector_paused():
            for r, seal, sealed in _stored_with_seals(self.c, lo, hi):
                if self.directory.follow(r):
                    self._shapes.clear()  # names and identities changed from here on
                facts = self._facts(r)
                if _in_scope(r, self.scope, facts.staff, facts.customers):
                    chosen.append((r, seal, sealed, facts))
                    if len(chosen) >= BATCH:
                        self._write(chosen)
                        chosen = []
                read += 1
                if progress is not None and read % BATCH == 0:
                    progress(BATCH)
            if chosen:
                self._write(chosen)
        if progress is not None and read % BATCH:
            progress(read % BATCH)
        self.part.segments = self.segments.close()
        self.part.leaves = bytes(self._leaves)
        return self.part

    def _directory_before(self, lo: int) -> None:
        """Who was who when the range begins: the directory's own events before it (staff
        registered, customers' identities), read alone."""
        if lo <= 1:
            return
        app = self.c.customers
        after = 0
        while True:
            found = app.recorder.select_notifications(
                start=after + 1, limit=5000, stop=lo - 1, topics=DIRECTORY_TOPICS
            )
            if not found:
                return
            for n in found:
                self.directory.follow(to_record(n, app.mapper))
            after = found[-1].id

    def _facts(self, r: EventRecord) -> _Facts:
        try:
            shape = _shape(r)
            known = self._shapes.get(shape)
        except TypeError:  # a value that cannot be a key (a list of objects): not cached
            return self._work_out(r)
        if known is None:
            if len(self._shapes) >= SHAPES_KEPT:  # a store of millions of customers
                self._shapes.clear()
            known = self._shapes[shape] = self._work_out(r)
        return known

    def _work_out(self, r: EventRecord) -> _Facts:
        staff, customers = _referenced(r, self.directory)
        return _Facts(
            staff=staff,
            customers=customers,
            people=self.directory.as_of_now(staff, customers),
            gone=self._concerns(r, customers) if self.erased else set(),
            keys=_likely_keys(r),
        )

    def _write(self, chosen: list[tuple[EventRecord, str | None, bool, _Facts]]) -> None:
        """The batch's lines: personal data opened through the ring, erased customers
        redacted, names as they were when each event was recorded."""
        part = self.part
        rows: list[dict[str, Any]] = []
        slots: list[Slot] = []
        for r, seal, sealed, facts in chosen:
            gone = facts.gone
            if r.originator_id in self.erased_ids:
                gone = gone | {r.originator_id}
            if gone:
                part.erased.update(gone)
            # r.data is this record's own (decoded for this read): filled in place.
            row = envelope(r)  # the audit trail's shape, so both read alike
            row["seal"] = seal
            row["erased"] = erased = bool(gone)
            names = facts.names.get(erased)
            if names is None:  # first of its shape: its sealed identities open with the batch
                names, identity_slots = _names(facts.people, erased)
                facts.names[erased] = names
                slots.extend(identity_slots)
            row["names"] = names  # shared by the shape's rows, serialised each time
            rows.append(row)
            if sealed:
                own = UUID(r.originator_id)
                keys = (*facts.keys, own)
                if r.context == "tickets":
                    keys = (*keys, derived_id("subject", f"ticket:{own}"))
                for slot in sealed_slots(r.data, "data", keys, [], r.originator_id):
                    if erased:
                        slot.holder[slot.key] = ERASED
                    else:
                        slots.append(slot)
        if slots:
            self._open(slots)
        lines = []
        for (_, _, _, facts), row in zip(chosen, rows, strict=True):
            if row["erased"]:
                self._redact(row, facts.customers, facts.people)
            lines.append(canonical(row))
        self.segments.write([r.position for r, _, _, _ in chosen], lines)
        self._leaves += b"".join(map(leaf_hash, lines))
        by_context = part.by_context
        for r, _, _, _ in chosen:
            by_context[r.context] = by_context.get(r.context, 0) + 1
        part.events += len(rows)
        if part.first is None:
            part.first = chosen[0][0].position
        part.last = chosen[-1][0].position

    def _open(self, slots: list[Slot]) -> None:
        ring = self._ring
        results = ring.open_with_any([(s.token, s.candidates) for s in slots])
        retry: list[Slot] = []
        for s, (plain, lost) in zip(slots, results, strict=True):
            if plain is None and not lost and s.path:
                retry.append(s)
                continue
            _fill(s, plain, lost)
        if retry:  # keys the event does not name: its aggregate's history names them
            for s in retry:
                s.candidates = self._history(s)
            again = ring.open_with_any([(s.token, s.candidates) for s in retry])
            for s, (plain, lost) in zip(retry, again, strict=True):
                _fill(s, plain, lost)

    def _history(self, slot: Slot) -> tuple[UUID, ...]:
        aggregate = slot.aggregate_id
        if aggregate not in self._history_keys:
            records = stored_records(self.c, UUID(aggregate))
            self._history_keys[aggregate] = candidate_keys(aggregate, [r.data for r in records])
        return self._history_keys[aggregate]

    def _concerns(self, r: EventRecord, customers: set[str]) -> set[str]:
        """The erased customers (or conversation subjects) an event is about, besides its own
        aggregate (which `_write` adds)."""
        found = {cid for cid in customers if cid in self.erased_ids}
        d = r.data
        subject = d.get("subject")
        if isinstance(subject, str) and derived_id("subject", subject) in self.erased:
            found.add(subject)
        sender, recipients, room = d.get("sender"), d.get("recipients"), d.get("room_id")
        if isinstance(sender, str) and isinstance(recipients, list) and isinstance(room, str):
            key = subject_key(sender, [x for x in recipients if isinstance(x, str)], room)
            if derived_id("subject", key) in self.erased:
                found.add(key)
        return found

    def _redact(self, row: dict[str, Any], customers: set[str], people: People) -> None:
        _redact_identities(row["data"])
        # Their identifiers (WeCom ids, openids) wherever the event repeats them: in a
        # claim's key, an erasure's subjects, a message's recipients.
        identifiers = {
            value
            for cid in customers
            if cid in self.erased_ids
            for _, value in people.customers.get(cid, [])
            if not value.startswith(TOKEN_PREFIX)
        }
        if identifiers:
            row["data"] = _scrub(row["data"], identifiers)


def _stored_with_seals(
    c: Container, lo: int, hi: int
) -> Iterator[tuple[EventRecord, str | None, bool]]:
    """The records lo..hi in log order, each with its seal and whether it holds a sealed
    value: one streamed query (binary on PostgreSQL), decoded straight from the stored JSON
    where it can be (infra.events.record_from_stored)."""
    db = c.integrity_db
    assert db is not None
    app = c.customers
    table = app.recorder.events_table_name  # type: ignore[attr-defined]
    position = "e.rowid" if db.dialect == "sqlite" else "e.notification_id"
    sql = (
        f"SELECT {position}, CAST(e.originator_id AS TEXT), e.originator_version, e.topic,"
        f" e.state, s.digest FROM {table} e"
        f" LEFT JOIN {integrity.SEALS} s ON s.position = {position}"
        f" WHERE {position} BETWEEN ? AND ? ORDER BY {position}"
    )
    mapper = app.mapper
    as_stored = mapper.cipher is None and mapper.compressor is None  # else: look after decoding
    for at, originator, version, topic, state, digest in db.stream(sql, (lo, hi), binary=True):
        state = bytes(state)
        if len(originator) != 36:  # SQLite keeps the 32 hex digits
            originator = str(UUID(originator))
        r = record_from_stored(at, originator, version, topic, state, mapper)
        sealed = _SEALED in state if as_stored else TOKEN_PREFIX.encode() in canonical(r.data)
        yield r, (bytes(digest).hex() if digest is not None else None), sealed


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a range is written: its objects are freed by
    reference counting, and the collector's passes over the directory cost a tenth of the
    time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _likely_keys(r: EventRecord) -> tuple[UUID, ...]:
    """The keys that seal an event's values, as far as the event itself says: its conversation
    subject, the customer it names (then the aggregate itself, and a ticket's own subject,
    which `_RangeWriter._write` adds). Anything these do not open is retried with the
    aggregate's whole history (`_RangeWriter._open`)."""
    d = r.data
    keys: list[UUID] = []
    subject = d.get("subject")
    if isinstance(subject, str) and subject:
        keys.append(derived_id("subject", subject))
    customer = d.get("customer_id")
    if isinstance(customer, str) and (ident := _uuid(customer)) is not None:
        keys.append(ident)
    return tuple(keys)


def _fill(s: Slot, plain: str | None, lost: bool) -> None:
    s.holder[s.key] = plain if plain is not None else (ERASED if lost else s.token)
    if plain is not None and s.msgid is not None and isinstance(s.holder, dict):
        # An archived message's payload: shown as what it is, the content in clear.
        del s.holder[s.key]
        s.holder["content"] = orjson.loads(plain)


def _erased_keys(c: Container) -> set[UUID]:
    """Every data key destroyed (erasure): whose data shows as erased."""
    rows = c.key_db.query("SELECT customer_id FROM scrm_data_keys WHERE wrapped IS NULL")
    return {UUID(r[0]) for r in rows}


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def _names(people: People, erased: bool) -> tuple[dict[str, Any], list[Slot]]:
    """`names`: each staff member's name and each customer's identities as they were then
    (an erased customer's as erased), and the sealed identities (phones) in it still to open;
    each writes itself back as `kind:plaintext`."""
    names: dict[str, Any] = {}
    for s, name in sorted(people.staff.items()):
        names[f"staff:{s}"] = name
    out: list[Slot] = []
    for cid, known in sorted(people.customers.items()):
        if erased:
            names[f"customer:{cid}"] = [ERASED]
            continue
        shown = [f"{kind}:{value}" for kind, value in known]
        names[f"customer:{cid}"] = shown
        for i, (kind, value) in enumerate(known):
            if value.startswith(TOKEN_PREFIX):
                out.append(Slot(_Prefixed(shown, kind), i, "", value, (UUID(cid),)))
    return names, out


class _Prefixed:
    """Where an opened identity goes: back into its list as `kind:value`."""

    def __init__(self, items: list[str], kind: str):
        self.items = items
        self.kind = kind

    def __setitem__(self, index: int, value: str) -> None:
        self.items[index] = f"{self.kind}:{value}"


def _scrub(value: Any, identifiers: set[str]) -> Any:
    if isinstance(value, str):
        return ERASED if any(i in value for i in identifiers) else value
    if isinstance(value, list):
        return [_scrub(v, identifiers) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, identifiers) for k, v in value.items()}
    return value


def _redact_identities(data: dict[str, Any]) -> None:
    """An erased customer's identifiers (WeCom ids, unionids) are personal data too."""
    for i in data.get("identities") or []:
        if isinstance(i, dict) and "value" in i:
            i["value"] = ERASED
    if "value" in data and "kind" in data:
        data["value"] = ERASED


# --- the files around the events ---------------------------------------------------------------


def _files(root: Path) -> list[str]:
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            out.append(rel)
    return sorted(out)


def sha256sums(root: Path) -> bytes:
    """`sha256sum` format ("<hex>  <path>"), every file but the sums and their signatures."""
    lines = []
    for rel in _files(root):
        if rel in EXCLUDED:
            continue
        h = hashlib.sha256()
        with open(root / rel, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        lines.append(f"{h.hexdigest()}  {rel}\n")
    return "".join(lines).encode()


def _tar(work: Path, out: Path) -> None:
    mode = "w:gz" if out.name.endswith((".gz", ".tgz")) else "w"
    base = out.name.removesuffix(".tar.gz").removesuffix(".tgz").removesuffix(".tar")
    part = out.with_name(f".{out.name}.part")
    with tarfile.open(part, mode) as tar:  # type: ignore[call-overload]
        for rel in _files(work):
            tar.add(work / rel, arcname=f"{base}/{rel}")
    part.rename(out)


def readme(manifest: dict[str, Any]) -> str:
    keys = manifest["keys"]
    previous = manifest["previous_export"]
    chained = (
        f"This export follows export number {previous['number']}, whose digest (the SHA-256 of\n"
        f"its SHA256SUMS file) is\n    {previous['digest']}\n"
        "Check it against the export you hold:  sha256sum <previous export>/SHA256SUMS\n"
        if previous
        else "This is the first export: it follows no other.\n"
    )
    span = (
        f"Events: {manifest['counts']['events']}, log positions {manifest['first_position']}"
        f" to {manifest['last_position']}."
        if manifest["counts"]["events"]
        else "Events: none in this scope."
    )
    return f"""scrm archive export number {manifest["number"]}
{"=" * 40}
Produced {manifest["produced_at"]} for {manifest["produced_by"]}.
Scope: {orjson.dumps(manifest["scope"]).decode()}
({manifest["time"]})
{span}

What is here
- events/*.jsonl: one event per line, canonical JSON (UTF-8, keys sorted), in log order.
  Personal data is in clear, except for customers who were erased: their events say
  "[erased]" where personal data was, and carry "erased": true.
  "names" gives the staff names and customer identities as they were at that moment.
  "seal" is the SHA-256 digest of the event as scrm's store holds it.
- manifest.json: scope, counts, positions, each segment's SHA-256, the Merkle root over all
  lines (RFC 6962), the previous export's digest, the signing keys' fingerprints.
- keys/: the public keys. SHA256SUMS lists the SHA-256 of every other file, and
  SHA256SUMS.*.sig are signatures over SHA256SUMS.

How to verify, with standard tools only (run inside this directory)
1. Every file is intact, and none is missing:
       sha256sum -c SHA256SUMS
   Every line must say OK. Also check that no file exists that SHA256SUMS does not list:
       find . -type f ! -name 'SHA256SUMS*' | sed 's|^\\./||' | sort > /tmp/present
       cut -c67- SHA256SUMS | sort | diff - /tmp/present && echo "no extra files"
2. SHA256SUMS was signed by scrm's key (OpenSSL 3):
       openssl pkeyutl -verify -pubin -inkey keys/ed25519.pub -rawin \\
           -in SHA256SUMS -sigfile SHA256SUMS.ed25519.sig
   It must print "Signature Verified Successfully". With an older OpenSSL use P-256:
       openssl dgst -sha256 -verify keys/p256.pub -signature SHA256SUMS.p256.sig SHA256SUMS
   It must print "Verified OK".
3. The keys are the ones you were given. Their fingerprints:
       openssl pkey -pubin -in keys/ed25519.pub -outform DER | sha256sum
       openssl pkey -pubin -in keys/p256.pub -outform DER | sha256sum
   must equal the fingerprints the operator gave you out of band:
       Ed25519 {keys["ed25519"]["fingerprint"]}
       P-256   {keys["p256"]["fingerprint"]}
   (A key in the directory alone proves nothing: anyone can sign with their own.)
4. The chain of exports:
{chained}
This export's own digest, for the next one:  sha256sum SHA256SUMS

`scrm archive verify <this directory>` does all of the above and also recomputes the Merkle
root from the lines and checks that positions only ever increase.
"""


# --- verifying ---------------------------------------------------------------------------------


@dataclass
class ExportReport:
    directory: str
    findings: list[str] = field(default_factory=list)
    events: int = 0
    digest: str | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)
    signed_by: set[str] = field(default_factory=set)  # fingerprints whose signature is valid
    number: int | None = None

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "directory": self.directory,
            "number": self.number,
            "events": self.events,
            "digest": self.digest,
            "fingerprints": self.fingerprints,
            "findings": self.findings,
        }


def verify_export(
    path: Path,
    *,
    previous: Path | None = None,
    trusted: Iterable[str] = (),
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """What the README's commands check, and more: every file against SHA256SUMS and no file
    beyond it, both signatures, the keys against fingerprints the caller trusts (if given),
    every line canonical with positions increasing and counts as stated, the Merkle root
    recomputed, and (given the previous export) the chain."""
    with _opened(path) as root:
        report = ExportReport(directory=str(path))
        _check_files(root, report)
        if report.findings and not (root / "manifest.json").exists():
            return report
        try:
            manifest = orjson.loads((root / "manifest.json").read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            report.findings.append(f"manifest.json is unreadable: {exc}")
            return report
        report.number = manifest.get("number")
        _check_keys(root, manifest, report, set(trusted))
        _check_lines(root, manifest, report, progress)
        if previous is not None:
            with _opened(previous) as before:
                _check_chain(before, manifest, report)
        return report


@contextmanager
def _opened(path: Path) -> Iterator[Path]:
    """An export's directory; a tarball is unpacked into a temporary one first."""
    if path.is_dir():
        yield path
        return
    if not path.is_file():
        raise InvalidInput(f"{path} is neither an export directory nor a tarball", field="path")
    with tempfile.TemporaryDirectory(prefix="scrm-verify-") as tmp:
        with tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")
        inner = [p for p in Path(tmp).iterdir() if p.is_dir()]
        if len(inner) != 1:
            raise InvalidInput(f"{path} should hold one export directory", field="path")
        yield inner[0]


def _check_files(root: Path, report: ExportReport) -> None:
    sums_path = root / "SHA256SUMS"
    if not sums_path.is_file():
        report.findings.append("SHA256SUMS is missing")
        return
    sums = sums_path.read_bytes()
    report.digest = hashlib.sha256(sums).hexdigest()
    listed: dict[str, str] = {}
    for n, line in enumerate(sums.decode("utf-8", "replace").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            report.findings.append(f"SHA256SUMS line {n} is malformed")
            continue
        listed[name] = digest
    present = {rel for rel in _files(root) if rel not in EXCLUDED}
    for name in sorted(set(listed) - present):
        report.findings.append(f"{name} is listed in SHA256SUMS but missing (deleted)")
    for name in sorted(present - set(listed)):
        report.findings.append(f"{name} is not listed in SHA256SUMS (added)")
    for name in sorted(set(listed) & present):
        h = hashlib.sha256()
        with open(root / name, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != listed[name]:
            report.findings.append(f"{name} does not match its SHA-256 in SHA256SUMS (changed)")
    for key, sig in (("ed25519", "SHA256SUMS.ed25519.sig"), ("p256", "SHA256SUMS.p256.sig")):
        try:
            public = signing.load_public((root / f"keys/{key}.pub").read_bytes())
            signature = (root / sig).read_bytes()
        except (OSError, ValueError) as exc:
            report.findings.append(f"cannot check {sig}: {exc}")
            continue
        report.fingerprints[key] = signing.fingerprint(public)
        if signing.verify(public, signature, sums):
            report.signed_by.add(report.fingerprints[key])
        else:
            report.findings.append(
                f"{sig} is not a valid signature of SHA256SUMS by keys/{key}.pub"
            )


def _check_keys(
    root: Path, manifest: dict[str, Any], report: ExportReport, trusted: set[str]
) -> None:
    stated = {k: v.get("fingerprint") for k, v in (manifest.get("keys") or {}).items()}
    for key, fp in report.fingerprints.items():
        if stated.get(key) != fp:
            report.findings.append(f"keys/{key}.pub is not the key the manifest names")
    # A key shipped inside the export proves nothing by itself: one whose fingerprint the
    # regulator was given must have signed (either signature suffices).
    if trusted and not (report.signed_by & trusted):
        report.findings.append(
            "no signature is by a trusted key (fingerprints here: "
            + ", ".join(sorted(report.fingerprints.values()))
            + ")"
        )


def _check_lines(
    root: Path,
    manifest: dict[str, Any],
    report: ExportReport,
    progress: Callable[[int], None] | None,
) -> None:
    tree = MerkleTree()
    last = 0
    counts: dict[str, int] = {}
    for seg in manifest.get("segments") or []:
        name = seg.get("file", "")
        path = root / name
        if not path.is_file():
            report.findings.append(f"segment {name} is missing")
            continue
        n = 0
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                line = raw.removesuffix(b"\n")
                where = f"{name} line {n}"
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    report.findings.append(f"{where} is not JSON")
                    continue
                if canonical(event) != line:
                    report.findings.append(f"{where} is not canonical JSON")
                position = event.get("position") if isinstance(event, dict) else None
                if not isinstance(position, int) or position <= last:
                    report.findings.append(
                        f"{where}: position {position} does not follow {last} (reordered or"
                        " inserted)"
                    )
                else:
                    last = position
                context = event.get("context") if isinstance(event, dict) else None
                counts[str(context)] = counts.get(str(context), 0) + 1
                tree.add(line)
                if progress is not None and n % 10_000 == 0:
                    progress(10_000)
        if n != seg.get("events"):
            report.findings.append(f"{name} has {n} lines; the manifest says {seg.get('events')}")
    report.events = tree.size
    counted = manifest.get("counts") or {}
    if tree.size != counted.get("events"):
        report.findings.append(
            f"{tree.size} events in the segments; the manifest says {counted.get('events')}"
        )
    if counts != (counted.get("by_context") or {}) and tree.size == counted.get("events"):
        report.findings.append("the events per context differ from the manifest")
    merkle = manifest.get("merkle") or {}
    if merkle.get("tree_size") != tree.size or merkle.get("root") != tree.root().hex():
        report.findings.append(
            "the Merkle root recomputed from the lines differs from the manifest's"
        )
    if tree.size and last != manifest.get("last_position"):
        report.findings.append("the last position differs from the manifest's")


def _check_chain(before: Path, manifest: dict[str, Any], report: ExportReport) -> None:
    sums = before / "SHA256SUMS"
    if not sums.is_file():
        report.findings.append("the previous export has no SHA256SUMS")
        return
    digest = hashlib.sha256(sums.read_bytes()).hexdigest()
    stated = (manifest.get("previous_export") or {}).get("digest")
    if stated != digest:
        report.findings.append(
            f"this export does not follow the one given: it names {stated}, that one is {digest}"
        )
