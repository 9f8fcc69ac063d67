"""Phase 5: the conversation archive. Ingest with encryption and compliance scanning on, in
batches of 1,000 (one transaction each), beside raw psycopg inserts of the same number of
rows per transaction; and scanning alone in MB/s, beside one compiled regular expression
alternating the same words over the same normalised text."""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime
from uuid import uuid4

import psycopg

from api.bench.context import Bench
from api.bench.table import Row, fmt_rate, fmt_ratio
from domain.conversations.compliance import SHIPPED_PACKS, Matcher, normalise
from domain.shared import Meta

BATCH = 1000
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


def phase_archive(bench: Bench) -> None:
    c = bench.container
    n = 5_000 if bench.plan.insert_seconds < 4 else 20_000
    bench.say(f"phase 5: archive ingest of {n:,} messages, encryption and scanning on")
    c.conversations.install_shipped_packs(_meta())
    messages = _messages(n, bench.scratch.tag)
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        c.conversations.ingest(messages[start : start + BATCH], _meta())
    ingest_rate = n / (time.perf_counter() - started)
    raw_rate = _raw_inserts(bench.scratch.db_url, n)
    bench.report.rows.append(
        Row(
            "5a",
            f"Archive ingest, {BATCH}-message batches (sealed per customer, scanned)",
            fmt_rate(ingest_rate),
            f"psycopg executemany, {BATCH} rows per tx",
            fmt_rate(raw_rate),
            fmt_ratio(ingest_rate, raw_rate),
            "≥ 30,000/s",
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
