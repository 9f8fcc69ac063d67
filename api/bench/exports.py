"""`scrm archive export-bench`: exporting and verifying a store of 1,000,000 events, each beside
a raw baseline measured in the same run on the same machine and the same files.

E1  seed: 50 staff and 5,000 customers (phone sealed, WeCom id) through CustomersApp, then
    archived messages between them through `ConversationsApp.ingest` (sealed content, the
    compliance packs on), 1,000 per transaction, until the store holds the events asked for;
    1% of the customers are then erased (crypto-shredded).
E2  `scrm archive export` of the whole store (all contexts, all time) as a child process, as an
    operator runs it: events/s over the wall time, and its peak RSS. Target: ≥ 50,000 events/s.
    Baseline: psycopg `COPY (SELECT ... FROM scrm_events ORDER BY notification_id) TO STDOUT`
    of the same records into a file (the store read raw, nothing decoded).
E3  `scrm archive verify` of that export as a child process: events/s. Baselines: `sha256sum`
    over the same segment files (MB/s), and `sha256sum -c SHA256SUMS` (what a regulator runs).
E4  `scrm audit verify` of the store (every record's digest, the seal chain, the checkpoints):
    events/s, beside the same raw COPY.

PostgreSQL only: a scratch database on SCRM_DATABASE_URL's server (else 127.0.0.1:5432),
dropped at the end, with its own data and signing-key directory.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import psycopg
from rich.console import Console
from rich.table import Table

from api.bench.archive import PHRASES
from api.bench.scratch import DEFAULT_NATS, Scratch, admin_url, pg_problem
from api.bench.table import Row, fmt_rate, fmt_ratio
from domain.shared import Meta
from infra.settings import Settings

BATCH = 1000
STAFF = 50
CUSTOMERS = 5000
TARGET_EXPORT = 50_000  # events/s


@dataclass
class Plan:
    events: int


FULL = Plan(events=1_000_000)
QUICK = Plan(events=50_000)


def _meta(why: str) -> Meta:
    return Meta(
        occurred_at=datetime.now(UTC),
        actor="system:bench",
        source="bench",
        correlation_id=str(uuid4()),
        causation_id=f"bench:{why}",
    )


@dataclass
class ExportBench:
    plan: Plan
    admin: str
    err: Console
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scratch = Scratch(self.admin, DEFAULT_NATS)
        self.scratch.settings = self.scratch.settings.model_copy(update={"nats_url": None})
        self.scratch.env.pop("SCRM_NATS_URL", None)

    def run(self) -> None:
        self.scratch.create_database()
        self._seed()
        out = self.scratch.tmp / "export"
        self._export(out)
        self._verify(out)
        self._verify_store()

    # --- E1 --------------------------------------------------------------------------------

    def _seed(self) -> None:
        from domain.customers import privacy
        from infra.jobs import last_contact_reader

        c = self.scratch.bootstrap()
        started = time.perf_counter()
        for i in range(STAFF):
            c.customers.register_staff(
                staff_id=f"staff.{i:03d}",
                name=f"员工{i:03d}",
                department="sales",
                region="hz",
                meta=_meta("seed"),
            )
        ids = []
        for i in range(CUSTOMERS):
            ids.append(
                c.customers.add_customer(
                    identities=[
                        ("phone", f"138{i:08d}"),
                        ("wecom_external_userid", f"wmBench{i:06d}"),
                    ],
                    tags=[],
                    owner=f"staff.{i % STAFF:03d}",
                    meta=_meta("seed"),
                ).id
            )
        c.conversations.install_shipped_packs(_meta("seed"))
        rnd = random.Random(11)
        seq = 0
        while c.head() < self.plan.events - CUSTOMERS // 100 * 3:
            batch: list[object] = []
            for _ in range(BATCH):
                seq += 1
                who = rnd.randrange(CUSTOMERS)
                staff = f"staff.{who % STAFF:03d}"
                customer = f"wmBench{who:06d}"
                inbound = seq % 2 == 0
                batch.append(
                    {
                        "seq": seq,
                        "msgid": f"bench-{seq}",
                        "action": "send",
                        "from": customer if inbound else staff,
                        "tolist": [staff if inbound else customer],
                        "roomid": "",
                        "msgtime": 1_767_000_000_000 + seq * 1000,
                        "msgtype": "text",
                        "text": {"content": " ".join(rnd.choice(PHRASES) for _ in range(3))},
                    }
                )
            c.conversations.ingest(batch, _meta("seed"))
            if seq % 100_000 == 0:
                self.err.print(f"  seeded {c.head():,} events")
        for cid in ids[: CUSTOMERS // 100]:
            privacy.request_erasure(
                c.customers,
                UUID(cid),
                received_via="email",
                now=datetime.now(UTC),
                last_contact=last_contact_reader(c),
                meta=_meta("erase"),
            )
        assert c.notary is not None
        c.notary.checkpoint()
        self.events = c.head()
        elapsed = time.perf_counter() - started
        self.notes.append(
            f"E1 seeded {self.events:,} events in {elapsed:.0f} s ({self.events / elapsed:,.0f}/s):"
            f" {STAFF} staff, {CUSTOMERS:,} customers ({CUSTOMERS // 100} erased), {seq:,}"
            " archived messages"
        )
        self.scratch.container = None
        c.close()

    # --- E2 --------------------------------------------------------------------------------

    def _child(self, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            env=self.scratch.env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if done.returncode not in (0,):
            raise RuntimeError(
                f"scrm {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
            )
        return elapsed, done

    def _copy_baseline(self) -> tuple[float, int]:
        """Seconds and bytes: the store's records read raw, in log order, to a file."""
        target = self.scratch.tmp / "copy.bin"
        size = 0
        started = time.perf_counter()
        with (
            psycopg.connect(self.scratch.db_url) as conn,
            conn.cursor() as cur,
            open(target, "wb") as f,
            cur.copy(
                "COPY (SELECT notification_id, originator_id, originator_version, topic, state"
                " FROM scrm_events ORDER BY notification_id) TO STDOUT"
            ) as copy,
        ):
            for chunk in copy:
                f.write(chunk)
                size += len(chunk)
        elapsed = time.perf_counter() - started
        target.unlink()
        return elapsed, size

    def _export(self, out: Path) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        elapsed, done = self._child(
            "archive", "export", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z",
            str(out),
        )  # fmt: skip
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        made = orjson.loads(done.stdout)
        events = made["events"]
        size = sum(p.stat().st_size for p in (out / "events").iterdir())
        copy_s, copy_bytes = self._copy_baseline()
        rate, raw = events / elapsed, self.events / copy_s
        self.figures.update(export_s=elapsed, export_events=events, export_bytes=size)
        self.rows.append(
            Row(
                "E2",
                f"export {events:,} events ({size / 1e6:,.0f} MB of JSON Lines), whole command",
                f"{fmt_rate(rate)} events ({elapsed:.1f} s)",
                "COPY of the stored records to a file",
                f"{fmt_rate(raw)} records ({copy_bytes / 1e6:,.0f} MB)",
                fmt_ratio(rate, raw),
                f"≥ {TARGET_EXPORT:,}/s: {'met' if rate >= TARGET_EXPORT else 'NOT met'}",
            )
        )
        self.notes.append(
            f"E2 export peak RSS {peak / 1024:,.0f} MB"
            + (f" (children before: {before / 1024:,.0f} MB)" if before > peak else "")
        )

    # --- E3 --------------------------------------------------------------------------------

    def _verify(self, out: Path) -> None:
        elapsed, done = self._child("archive", "verify", str(out), "--json")
        report = orjson.loads(done.stdout)
        if not report["ok"]:
            raise RuntimeError(f"the export did not verify: {report['findings'][:3]}")
        segments = sorted(str(p) for p in (out / "events").iterdir())
        size = self.figures["export_bytes"]
        sha_started = time.perf_counter()
        subprocess.run(["sha256sum", *segments], capture_output=True, check=True)
        sha_s = time.perf_counter() - sha_started
        check_started = time.perf_counter()
        subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, check=True)
        check_s = time.perf_counter() - check_started
        events = report["events"]
        self.rows.append(
            Row(
                "E3",
                f"`scrm archive verify` ({events:,} events: sums, signatures, every line,"
                " Merkle root)",
                f"{fmt_rate(events / elapsed)} events"
                f" ({size / 1e6 / elapsed:,.0f} MB/s, {elapsed:.1f} s)",
                "sha256sum over the same segments",
                f"{size / 1e6 / sha_s:,.0f} MB/s ({sha_s:.1f} s)",
                fmt_ratio(size / elapsed, size / sha_s),
            )
        )
        self.rows.append(
            Row(
                "E3b",
                "what a regulator runs: `sha256sum -c SHA256SUMS`",
                f"{check_s:.1f} s",
                "sha256sum over the segments",
                f"{sha_s:.1f} s",
                fmt_ratio(sha_s, check_s),
            )
        )

    # --- E4 --------------------------------------------------------------------------------

    def _verify_store(self) -> None:
        elapsed, done = self._child("audit", "verify", "--json")
        report = orjson.loads(done.stdout)
        if not report["ok"]:
            raise RuntimeError(f"the store did not verify: {report['first']}")
        copy_s, _ = self._copy_baseline()
        records = report["records"]
        self.rows.append(
            Row(
                "E4",
                f"`scrm audit verify`: {records:,} records against their seals, the chain,"
                f" {report['checkpoints_verified']} signed checkpoint(s)",
                f"{fmt_rate(records / elapsed)} records ({elapsed:.1f} s)",
                "COPY of the stored records",
                f"{fmt_rate(records / copy_s)} records",
                fmt_ratio(copy_s, elapsed),
            )
        )

    def cleanup(self) -> None:
        for problem in self.scratch.teardown():
            self.notes.append(f"cleanup: {problem}")


def run_export_bench(settings: Settings, *, events: int | None = None, quick: bool = False) -> int:
    """0 when every figure was measured, 1 when one failed, 2 without PostgreSQL."""
    from api.bench.tickets import _machine_state

    plan = QUICK if quick else FULL
    if events is not None:
        plan = Plan(events=events)
    out = Console(width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True)
    admin = admin_url(settings)
    problem = pg_problem(admin)
    if problem:
        err.print(f"[red]{problem}[/red]")
        return 2
    if not shutil.which("sha256sum"):
        err.print("[red]sha256sum is not installed: it is the baseline[/red]")
        return 2
    bench = ExportBench(plan, admin, err)
    started = time.perf_counter()
    bench.notes.append(f"machine at the start: {_machine_state()}")
    try:
        bench.run()
    except Exception as exc:
        bench.failures.append(f"{type(exc).__name__}: {exc}")
        err.print(f"[red]export bench failed[/red]\n{traceback.format_exc()}")
    finally:
        bench.cleanup()
    bench.notes.append(f"machine at the end: {_machine_state()}")
    table = Table(
        title=f"scrm archive export-bench ({'quick' if quick else 'full'}; {plan.events:,} events;"
        f" {os.cpu_count()} CPUs; baselines measured in this run)",
        title_justify="left",
    )
    for name in ("#", "figure", "scrm", "raw baseline", "baseline", "ratio", "target"):
        table.add_column(name, justify="right" if name in ("scrm", "baseline", "ratio") else "left")
    for r in bench.rows:
        table.add_row(r.id, r.figure, r.value, r.baseline, r.baseline_value, r.ratio, r.target)
    out.print(table)
    out.print("ratio = scrm ÷ baseline (higher is better)")
    for note in bench.notes:
        out.print(f"  • {note}")
    out.print(f"  • total {time.perf_counter() - started:.0f} s")
    for failure in bench.failures:
        out.print(f"[red]  ✗ {failure}[/red]")
    return 1 if bench.failures else 0
