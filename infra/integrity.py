"""Tamper evidence for the store: every record is sealed as it is written, and the seals are
chained and signed, so that an edit, deletion, insertion or reordering made behind the
application's back is found and located (docs/audit.md).

- A record's **digest** is SHA-256 over the record exactly as stored: originator id (16
  bytes), version (8 bytes, big-endian), topic (4-byte length, UTF-8), state (the stored bytes,
  personal data still sealed, so a crypto-shredded customer's records still verify).
- The **chain** links each seal to the one before, like a Certificate Transparency or QLDB
  journal: chain(p) = SHA-256(0x01 ‖ chain(previous) ‖ p as 8 bytes ‖ digest(p)), from 32 zero
  bytes. The position is in the chain and not in the digest, so a record moved elsewhere is
  recognised by its digest.
- Seals are written by the recorder in the same transaction, under the same lock, as the
  records (infra/event_recorder.py): a record without a seal was not written by scrm.
- **Checkpoints** (size, position, chain head) are signed with the Ed25519 signing key
  (infra/signing.py) every `checkpoint_every` records or `checkpoint_seconds`; whoever rewrote
  the seals as well would need that key.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from infra import signing
from infra.db import Database
from infra.signing import SigningKeys

log = logging.getLogger("scrm.integrity")

GENESIS = bytes(32)
SEALS = "scrm_seals"
HEAD = "scrm_seal_head"
CHECKPOINTS = "scrm_checkpoints"
_LINK = b"\x01"


def record_digest(originator_id: UUID | str, version: int, topic: str, state: bytes) -> bytes:
    if not isinstance(state, bytes):  # a hand edit can change a column's type (SQLite)
        state = bytes(state) if isinstance(state, bytearray | memoryview) else str(state).encode()
    ident = originator_id.bytes if isinstance(originator_id, UUID) else originator_id.encode()
    t = topic.encode()
    return hashlib.sha256(
        ident + version.to_bytes(8, "big", signed=True) + len(t).to_bytes(4, "big") + t + state
    ).digest()


def link(previous: bytes, position: int, digest: bytes) -> bytes:
    return hashlib.sha256(
        _LINK + previous + position.to_bytes(8, "big", signed=True) + digest
    ).digest()


def ddl(dialect: str) -> list[str]:
    blob = "BYTEA" if dialect == "postgres" else "BLOB"
    return [
        f"CREATE TABLE IF NOT EXISTS {SEALS} (position BIGINT PRIMARY KEY,"
        f" digest {blob} NOT NULL, chain {blob} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {HEAD} (id INTEGER PRIMARY KEY CHECK (id = 1),"
        f" position BIGINT NOT NULL, size BIGINT NOT NULL, chain {blob} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (size BIGINT PRIMARY KEY,"
        " position BIGINT NOT NULL, chain TEXT NOT NULL, signed_at TEXT NOT NULL,"
        " key_id TEXT NOT NULL, signature TEXT NOT NULL)",
    ]


def head_row_sql(dialect: str) -> str:
    genesis = (
        "'\\x" + GENESIS.hex() + "'::bytea" if dialect == "postgres" else f"X'{GENESIS.hex()}'"
    )
    return (
        f"INSERT INTO {HEAD} (id, position, size, chain) VALUES (1, 0, 0, {genesis})"
        " ON CONFLICT (id) DO NOTHING"
    )


Row = tuple[int, UUID | str, int, str, bytes]  # position, originator id, version, topic, state


def seal(cur: Any, rows: Sequence[Row]) -> None:
    """Seal records just written, in position order, inside the transaction that wrote them
    (the caller holds the store's write lock, so heads cannot interleave). `cur` is a DB-API
    cursor with `?` parameters (SQLite)."""
    if not rows:
        return
    cur.execute(f"SELECT position, size, chain FROM {HEAD} WHERE id = 1")
    _, size, chain = cur.fetchone()
    chain = bytes(chain)
    out = []
    for position, originator_id, version, topic, state in sorted(rows, key=lambda r: r[0]):
        digest = record_digest(originator_id, version, topic, state)
        chain = link(chain, position, digest)
        out.append((position, digest, chain))
    cur.executemany(f"INSERT INTO {SEALS} (position, digest, chain) VALUES (?,?,?)", out)
    cur.execute(
        f"UPDATE {HEAD} SET position = ?, size = ?, chain = ? WHERE id = 1",
        (out[-1][0], size + len(out), chain),
    )


def seal_backlog(db: Database, select: Callable[[int, int], Sequence[Any]], table: str) -> int:
    """A store written before seals existed: seal what it holds, once, as found (later
    records are sealed as they are written). Holds the store's write lock meanwhile."""
    if head(db)[1] > 0 or not select(0, 1):
        return 0
    sealed = 0
    with db.transaction() as cur:
        if db.dialect == "postgres":
            cur.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        cur.execute(f"SELECT size FROM {HEAD} WHERE id = 1")
        if cur.fetchone()[0] > 0:  # another process got here first
            return 0
        after = 0
        while rows := select(after, 5000):
            seal(
                cur, [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in rows]
            )
            sealed += len(rows)
            after = rows[-1].id
    log.info("sealed %d records written before seals existed", sealed)
    return sealed


# --- checkpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    size: int
    position: int
    chain: str  # hex
    signed_at: str
    key_id: str
    signature: str  # hex, Ed25519

    def statement(self) -> bytes:
        """What is signed: plain text, so it can be checked with openssl too."""
        return statement(self.size, self.position, self.chain, self.signed_at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "position": self.position,
            "chain": self.chain,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def statement(size: int, position: int, chain: str, signed_at: str) -> bytes:
    return (
        f"scrm-checkpoint/1\nsize {size}\nposition {position}\nchain {chain}\n"
        f"signed_at {signed_at}\n"
    ).encode()


def checkpoints(db: Database) -> list[Checkpoint]:
    rows = db.query(
        f"SELECT size, position, chain, signed_at, key_id, signature FROM {CHECKPOINTS}"
        " ORDER BY size"
    )
    return [Checkpoint(*r) for r in rows]


def head(db: Database) -> tuple[int, int, bytes]:
    """(position, size, chain) of the last seal."""
    rows = db.query(f"SELECT position, size, chain FROM {HEAD} WHERE id = 1")
    if not rows:
        return 0, 0, GENESIS
    position, size, chain = rows[0]
    return int(position), int(size), bytes(chain)


class Notary:
    """Signs checkpoints of the seal chain: after `every` new seals, or after `seconds` with
    any new seal at all. Runs among the log processes (infra/processes.py)."""

    def __init__(self, db: Database, keys: SigningKeys, every: int = 1000, seconds: float = 60.0):
        self.db = db
        self.keys = keys
        self.every = every
        self.seconds = seconds
        self._last_at = time.monotonic()

    def run_once(self) -> Checkpoint | None:
        size = head(self.db)[1]
        last = self.db.query(f"SELECT MAX(size) FROM {CHECKPOINTS}")[0][0] or 0
        due = size - last >= self.every or (
            size > last and time.monotonic() - self._last_at >= self.seconds
        )
        return self.checkpoint() if due else None

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current head now (None if it is signed already)."""
        position, size, chain = head(self.db)
        if size == 0:
            return None
        signed_at = datetime.now(UTC).isoformat()
        text = statement(size, position, chain.hex(), signed_at)
        cp = Checkpoint(
            size=size,
            position=position,
            chain=chain.hex(),
            signed_at=signed_at,
            key_id=self.keys.ed25519_id,
            signature=self.keys.sign_ed25519(text).hex(),
        )
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO {CHECKPOINTS} (size, position, chain, signed_at, key_id, signature)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT (size) DO NOTHING",
                (cp.size, cp.position, cp.chain, cp.signed_at, cp.key_id, cp.signature),
            )
            inserted = cur.rowcount
        self._last_at = time.monotonic()
        return cp if inserted else None


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    kind: str  # edited, deleted, inserted, reordered, unlinked, checkpoint, signature
    position: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "position": self.position, "detail": self.detail}


@dataclass
class Report:
    records: int = 0
    sealed: int = 0
    checkpoints: int = 0
    last_checkpoint: int = 0  # size of the last checkpoint that verified
    head_position: int = 0
    findings: list[Finding] = field(default_factory=list)
    more: int = 0  # findings past the list's bound
    checkpoint_positions: set[int] = field(default_factory=set)  # reached while walking

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "sealed": self.sealed,
            "checkpoints_verified": self.checkpoints,
            "last_checkpoint_size": self.last_checkpoint,
            "head_position": self.head_position,
            "first": self.findings[0].as_dict() if self.findings else None,
            "findings": [f.as_dict() for f in self.findings],
            "more_findings": self.more,
        }


StoredRows = Callable[[int, int], Sequence[Any]]  # (after, limit) -> notifications


def _stored(select: StoredRows, batch: int) -> Iterator[Any]:
    after = 0
    while True:
        rows = select(after, batch)
        if not rows:
            return
        yield from rows
        after = rows[-1].id


def verify(
    db: Database,
    select: StoredRows,
    trusted: dict[str, Any],
    *,
    batch: int = 5000,
    max_findings: int = 50,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Recompute every record's digest and the whole chain from the store as it is now, and
    compare with the seals and the signed checkpoints. Streams both in position order."""
    report = Report()
    head_position, _, _ = head(db)
    report.head_position = head_position
    signed = {cp.position: cp for cp in checkpoints(db)}

    def found(kind: str, position: int, detail: str) -> None:
        if len(report.findings) < max_findings:
            report.findings.append(Finding(kind, position, detail))
        else:
            report.more += 1

    def reordered(position: int, digest: bytes) -> int | None:
        if len(report.findings) >= max_findings:  # a full scan each; enough is known
            return None
        rows = db.query(
            f"SELECT position FROM {SEALS} WHERE digest = ? AND position <> ? LIMIT 1",
            (digest, position),
        )
        return int(rows[0][0]) if rows else None

    def unsealed(n: Any) -> None:
        found(
            "inserted",
            n.id,
            f"position {n.id} holds a record that scrm never sealed"
            f" ({n.topic.rsplit('.', 1)[-1]} v{n.originator_version})",
        )

    late: dict[int, Any] = {}
    seals = db.stream(f"SELECT position, digest, chain FROM {SEALS} ORDER BY position")
    records = _stored(select, batch)
    s = next(seals, None)
    n = next(records, None)
    chain = GENESIS
    count = 0
    done = 0
    while s is not None or n is not None:
        if s is not None and (n is None or int(s[0]) < n.id):
            position = int(s[0])
            found("deleted", position, f"the record sealed at position {position} is gone")
            chain, count = _advance(report, found, signed, chain, count, s, trusted)
            s = next(seals, None)
            continue
        if n is not None and (s is None or n.id < int(s[0])):
            if n.id <= head_position:
                unsealed(n)
            else:  # perhaps written (with its seal) after the seals were read: asked again below
                late[n.id] = n
            report.records += 1
            n = next(records, None)
            continue
        assert s is not None and n is not None
        position = n.id
        digest = record_digest(n.originator_id, n.originator_version, n.topic, n.state)
        if digest != bytes(s[1]):
            moved = reordered(position, digest)
            if moved is not None:
                found(
                    "reordered",
                    position,
                    f"position {position} holds the record sealed at position {moved}",
                )
            else:
                found("edited", position, f"the record at position {position} was changed")
        chain, count = _advance(report, found, signed, chain, count, s, trusted)
        report.records += 1
        s = next(seals, None)
        n = next(records, None)
        done += 1
        if progress is not None and done % batch == 0:
            progress(batch)
    for chunk in _chunks(sorted(late), 500):
        marks = ",".join("?" * len(chunk))
        sealed = {
            int(r[0])
            for r in db.query(f"SELECT position FROM {SEALS} WHERE position IN ({marks})", chunk)
        }
        for position in chunk:
            if position not in sealed:
                unsealed(late[position])
    for position, cp in sorted(signed.items()):
        if position not in report.checkpoint_positions:
            found(
                "checkpoint",
                position,
                f"the checkpoint of size {cp.size} names position {position}, which has no seal",
            )
    return report


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _advance(
    report: Report,
    found: Callable[[str, int, str], None],
    signed: dict[int, Checkpoint],
    chain: bytes,
    count: int,
    s: Any,
    trusted: dict[str, Any],
) -> tuple[bytes, int]:
    """Walk the seal chain one step: it must link, and match any checkpoint signed there."""
    position, digest, sealed_chain = int(s[0]), bytes(s[1]), bytes(s[2])
    count += 1
    report.sealed = count
    if link(chain, position, digest) != sealed_chain:
        found(
            "unlinked",
            position,
            f"the seal at position {position} does not follow the one before it: seals"
            " were removed or rewritten before this position",
        )
    cp = signed.get(position)
    if cp is not None:
        report.checkpoint_positions.add(position)
        key = trusted.get(cp.key_id)
        if key is None or not signing.verify(key, bytes.fromhex(cp.signature), cp.statement()):
            found(
                "signature",
                position,
                f"the checkpoint of size {cp.size} is not signed by a trusted key",
            )
        elif cp.chain != sealed_chain.hex() or cp.size != count:
            found(
                "checkpoint",
                position,
                f"the seals up to position {position} differ from the checkpoint signed"
                f" {cp.signed_at} (size {cp.size}, here {count}): they were rewritten after"
                f" the checkpoint of size {report.last_checkpoint or 0}",
            )
        else:
            report.checkpoints += 1
            report.last_checkpoint = cp.size
    return sealed_chain, count
