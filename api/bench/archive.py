"""Phase 5: the conversation archive.

5a, 5c: ingest with encryption and compliance scanning on (every shipped pack), in batches of
1,000 (one transaction each), of messages from 500 customers (so 500 data keys are made along
the way), through `ConversationsApp.ingest` exactly as `POST /v1/archive/batches` and
`scrm archive pull` call it: on PostgreSQL (the scratch database) and on the embedded SQLite
default (a scratch directory). Each beside raw inserts of the same number of rows, 1,000 per
transaction, into the same database (psycopg `executemany`; `sqlite3` `executemany` on a
WAL-mode file, as eventsourcing opens its own).
5b: scanning alone in MB/s, beside one compiled regular expression alternating the same words
over the same normalised text.
5d: where an ingested message's time goes on PostgreSQL (timed around the calls during 5a):
sealing (the vault), storing (eventsourcing's save: collecting events, the mapper and the
locked insert) and the rest (parsing, scanning, building aggregates and events).

`scrm archive bench` runs this phase alone (PostgreSQL only, no NATS needed).
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg

from api.bench.context import Bench
from api.bench.table import Row, fmt_rate, fmt_ratio
from domain.conversations.compliance import SHIPPED_PACKS, Matcher, normalise
from domain.shared import Meta
from infra.settings import Settings

BATCH = 1000
TARGET = "≥ 30,000/s"
PHRASES = [
    "您好，请问有什么可以帮您？",
    "我们的新品下周上市",
    "这款产品保本吗",
    "麻烦发一下地址",
    "收到，谢谢",
    "明天上午十点安装",
    "价格可以再优惠一点吗",
    "零风险的吗？",
]


def _messages(n: int, tag: str) -> list[object]:
    rnd = random.Random(7)
    return [
        {
            "seq": i,
            "msgid": f"bench-{tag}-{i}",
            "action": "send",
            "from": "staff.bench" if i % 2 else f"wmBenchCustomer{i % 500:05d}",
            "tolist": [f"wmBenchCustomer{i % 500:05d}" if i % 2 else "staff.bench"],
            "roomid": "",
            "msgtime": 1_767_000_000_000 + i,
            "msgtype": "text",
            "text": {"content": " ".join(rnd.choice(PHRASES) for _ in range(3))},
        }
        for i in range(1, n + 1)
    ]


def _meta() -> Meta:
    return Meta(
        occurred_at=datetime.now(UTC),
        actor="system:bench",
        source="bench",
        correlation_id=str(uuid4()),
        causation_id="bench:archive",
    )


def _raw_inserts(db_url: str, rows: int) -> float:
    """Rows/s: psycopg executemany of BATCH-row transactions into a scratch table."""
    payload = "x" * 400
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_archive_raw (id BIGSERIAL PRIMARY KEY,"
            " msgid TEXT UNIQUE, body TEXT)"
        )
        started = time.perf_counter()
        for start in range(0, rows, BATCH):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO bench_archive_raw (msgid, body) VALUES (%s, %s)",
                    [(f"raw-{i}", payload) for i in range(start, start + BATCH)],
                )
        return rows / (time.perf_counter() - started)


def _raw_sqlite_inserts(path: Path, rows: int) -> float:
    """Rows/s: sqlite3 executemany of BATCH-row transactions, WAL mode as eventsourcing's."""
    payload = "x" * 400
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_archive_raw (id INTEGER PRIMARY KEY,"
            " msgid TEXT UNIQUE, body TEXT)"
        )
        started = time.perf_counter()
        for start in range(0, rows, BATCH):
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO bench_archive_raw (msgid, body) VALUES (?, ?)",
                [(f"raw-{i}", payload) for i in range(start, start + BATCH)],
            )
            conn.execute("COMMIT")
        return rows / (time.perf_counter() - started)
    finally:
        conn.close()


@contextmanager
def _timing(obj: Any, name: str, spent: dict[str, float]) -> Iterator[None]:
    """Adds the time spent in `obj.name(...)` to `spent[name]` while the block runs."""
    original: Callable[..., Any] = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

    setattr(obj, name, timed)
    try:
        yield
    finally:
        delattr(obj, name)  # the instance attribute goes; the method shows through again


def _ingest(app: Any, messages: list[object]) -> tuple[float, dict[str, float]]:
    """Messages/s through `ingest`, and the seconds spent sealing and storing."""
    spent: dict[str, float] = {}
    app.install_shipped_packs(_meta())
    with _timing(app.vault, "seal", spent), _timing(app, "save_aggregates", spent):
        started = time.perf_counter()
        for start in range(0, len(messages), BATCH):
            app.ingest(messages[start : start + BATCH], _meta())
        elapsed = time.perf_counter() - started
    spent["total"] = elapsed
    return len(messages) / elapsed, spent


def _sqlite_ingest(tmp: Path, messages: list[object]) -> float:
    from infra.bootstrap import bootstrap

    container = bootstrap(Settings(data_dir=tmp / "embedded", database_url=None, nats_url=None))
    try:
        return _ingest(container.conversations, messages)[0]
    finally:
        container.close()


def phase_archive(bench: Bench) -> None:
    c = bench.container
    n = bench.plan.archive_messages
    tag = bench.scratch.tag
    bench.say(f"phase 5: archive ingest of {n:,} messages, encryption and scanning on")
    messages = _messages(n, tag)
    ingest_rate, spent = _ingest(c.conversations, messages)
    raw_rate = _raw_inserts(bench.scratch.db_url, n)
    bench.report.rows.append(
        Row(
            "5a",
            f"Archive ingest on PostgreSQL, {BATCH}-message batches (sealed per customer, scanned)",
            fmt_rate(ingest_rate),
            f"psycopg executemany, {BATCH} rows per tx",
            fmt_rate(raw_rate),
            fmt_ratio(ingest_rate, raw_rate),
            TARGET,
        )
    )

    text = "\n".join(m["text"]["content"] for m in messages)  # type: ignore[index]
    size_mb = len(text.encode()) / 1e6
    matcher = Matcher([(k, 1, v) for k, v in SHIPPED_PACKS.items()])
    started = time.perf_counter()
    for line in text.splitlines():
        matcher.scan(line)
    scan_rate = size_mb / (time.perf_counter() - started)
    pattern = re.compile(
        "|".join(re.escape(normalise(r.word)) for rules in SHIPPED_PACKS.values() for r in rules)
    )
    started = time.perf_counter()
    for line in text.splitlines():
        pattern.findall(normalise(line))
    regex_rate = size_mb / (time.perf_counter() - started)
    bench.report.rows.append(
        Row(
            "5b",
            f"Scanning alone, every shipped pack, per message ({size_mb:.1f} MB)",
            f"{scan_rate:,.1f} MB/s",
            "one re alternation, same normalised text",
            f"{regex_rate:,.1f} MB/s",
            fmt_ratio(scan_rate, regex_rate),
        )
    )

    bench.say("phase 5: the same ingest on the embedded SQLite default")
    sqlite_rate = _sqlite_ingest(bench.scratch.tmp, _messages(n, tag + "s"))
    sqlite_raw = _raw_sqlite_inserts(bench.scratch.tmp / "raw.sqlite3", n)
    bench.report.rows.append(
        Row(
            "5c",
            "Archive ingest on SQLite (embedded default), same batches",
            fmt_rate(sqlite_rate),
            f"sqlite3 executemany, {BATCH} rows per tx",
            fmt_rate(sqlite_raw),
            fmt_ratio(sqlite_rate, sqlite_raw),
            TARGET,
        )
    )

    def per_message(seconds: float) -> str:
        return f"{seconds / n * 1e6:,.0f}"

    seal, store = spent.get("seal", 0.0), spent.get("save_aggregates", 0.0)
    rest = spent["total"] - seal - store
    bench.report.rows.append(
        Row(
            "5d",
            "5a per message: sealing / storing (eventsourcing save) / the rest (parse, scan, "
            "aggregates), µs",
            f"{per_message(seal)} / {per_message(store)} / {per_message(rest)}",
            "raw insert, per row, µs",
            f"{1e6 / raw_rate:,.0f}",
            fmt_ratio(store / n, 1 / raw_rate),
        )
    )
