"""`scrm settlement bench`: a settlement run over many payees and items, and statement
queries, each beside a raw baseline measured in the same run on the same machine.

S1  seed: payees (Payee aggregates) and items (Earning aggregates, each priced by the real rule
    engine under a six-component installer rule set), saved 2,000 per transaction, as
    events/s beside psycopg `executemany` of rows as wide as the stored events.
S2  project the settlement read model from the log (1,000 events per transaction).
S3  the settlement run: `close_period` for the month, in a process of its own (so its peak
    memory is its own: max RSS before and after), then projecting its `SettlementPeriodClosed`
    (the statements). Target: ≤ 60 s for 300,000 payees and 3,000,000 items. Baseline: the
    same database doing the irreducible work by hand — one GROUP BY payee over the period's
    lines and one COPY of every line out, with psycopg.
S4  statement queries: `GET /v1/payees/{id}/statements/{group}/{period}` through the real app
    (uvicorn, server mode) from 8 keep-alive clients; baseline: the indexed SELECT of one
    statement's lines with psycopg from 8 connections.

PostgreSQL only: a scratch database on SCRM_DATABASE_URL's server (else 127.0.0.1:5432),
dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

import httpx
import orjson
import psycopg
from rich.console import Console
from rich.table import Table

from api.bench import cpu
from api.bench.commands import HOST, _free_port
from api.bench.processes import Processes
from api.bench.scratch import DEFAULT_NATS, Scratch, admin_url, pg_problem
from api.bench.table import Report, Row, fmt_lat3, fmt_lat_ratio, fmt_rate, fmt_ratio
from domain.settlement.aggregates import Earning, Payee, PayeeGroup, RuleSet
from domain.settlement.cycles import period_named
from domain.settlement.rules import Facts, Rules, Volumes
from domain.shared import Meta
from infra.settings import Settings

if TYPE_CHECKING:
    from infra.bootstrap import Container

C = TypeVar("C")
GROUP = "agents"
RULE_SET = "installers"
PERIOD = "2026-10-01"  # a month well over: the run closes it
SERVICE_TYPES = ("smart_lock", "ac_install", "water_heater", "range_hood", "tv_mount", "repair")
REGIONS = ("上海市", "北京市", "杭州市", "宁波市", "温州市", "义乌市", "淳安县", "建德市")
RULES: dict[str, Any] = {
    "components": [
        {
            "name": "base",
            "type": "base_fee",
            "grades": {"A": 3000, "B": 5000, "C": 8000, "D": 12000, "E": 20000, "F": 30000},
            "by_service_type": {
                "smart_lock": "C",
                "ac_install": "D",
                "water_heater": "C",
                "range_hood": "B",
                "tv_mount": "A",
                "repair": "B",
            },
        },
        {
            "name": "region",
            "type": "regional",
            "tiers": {"tier1": "1.2", "tier2": "1.1", "tier3": "1.0", "county": "0.9"},
            "regions": {
                "上海市": "tier1",
                "北京市": "tier1",
                "杭州市": "tier2",
                "宁波市": "tier2",
                "淳安县": "county",
            },
            "default_tier": "tier3",
        },
        {"name": "difficulty", "type": "difficulty", "by_service_type": {"ac_install": "1.15"}},
        {
            "name": "early",
            "type": "time_of_day",
            "windows": [{"from": "06:00", "to": "08:00", "coefficient": "1.3"}],
        },
        {"name": "distance", "type": "distance", "free_km": "10", "per_km": 80},
        {"name": "materials", "type": "materials_deduction", "amount": 1500},
    ]
}
LOG_BATCH = 1_000


@dataclass(frozen=True)
class SettlementPlan:
    payees: int = 300_000
    items: int = 3_000_000
    per_tx: int = 2_000
    statements: int = 3_000  # statement queries timed
    clients: int = 8
    baseline_rows: int = 300_000
    startup_timeout: float = 60.0


FULL = SettlementPlan()
QUICK = SettlementPlan(payees=300, items=3_000, statements=300, baseline_rows=3_000)


def _meta(at: datetime, actor: str = "system:bench") -> Meta:
    run = uuid4().hex
    return Meta(occurred_at=at, actor=actor, source="bench", correlation_id=run, causation_id=run)


class SettlementBench:
    def __init__(self, plan: SettlementPlan, admin: str, err: Console):
        self.plan = plan
        self.err = err
        self.report = Report()
        self.figures: dict[str, Any] = {}
        self.scratch = Scratch(admin, DEFAULT_NATS)
        env = dict(self.scratch.env, SCRM_SCHEDULER_INTERVAL_SECONDS="0")
        self.procs = Processes(self.scratch.tmp, env, self.report.notes, err)
        self.payee_ids: list[str] = []

    @property
    def c(self) -> Container:
        assert self.scratch.container is not None
        return self.scratch.container

    def say(self, text: str) -> None:
        self.err.print(f"[dim]bench settlement[/dim] {text}")

    # --- S1 -------------------------------------------------------------------------

    def seed(self) -> None:
        plan = self.plan
        self.scratch.create_database()
        self.say(f"scratch database {self.scratch.db_name}")
        c = self.scratch.bootstrap()
        start, end = period_named("monthly", "Asia/Shanghai", PERIOD)
        t0 = start - timedelta(days=30)
        app = c.settlement
        app.save_aggregates(
            [
                PayeeGroup(
                    key=GROUP,
                    name="代理",
                    cycle="monthly",
                    timezone="Asia/Shanghai",
                    meta=_meta(t0),
                ),
                RuleSet(key=RULE_SET, definition=RULES, effective_from=t0, meta=_meta(t0)),
            ]
        )
        rules = Rules.parse(RULES)
        rng = random.Random(6)
        self.say(f"S1: {plan.payees:,} payees and {plan.items:,} items through the domain")
        started = time.perf_counter()
        events = 0
        self.payee_ids = [f"agent-{n:06d}" for n in range(plan.payees)]
        for at in range(0, plan.payees, plan.per_tx):
            batch = [
                Payee(
                    payee_id=p,
                    kind="installer",
                    name=p,
                    group=GROUP,
                    rule_set=RULE_SET,
                    region=REGIONS[n % len(REGIONS)],
                    parent=None,
                    staff_id=None,
                    shops=[],
                    account=None,
                    meta=_meta(t0),
                )
                for n, p in enumerate(self.payee_ids[at : at + plan.per_tx], start=at)
            ]
            app.save_aggregates(batch)
            events += len(batch)
        span = (end - start).total_seconds()
        next_report = time.perf_counter() + 15
        for at in range(0, plan.items, plan.per_tx):
            earnings: list[Earning] = []
            for i in range(at, min(at + plan.per_tx, plan.items)):
                payee = self.payee_ids[i % plan.payees]
                when = start + timedelta(seconds=rng.random() * span)
                far = rng.random() < 0.3
                facts = Facts(
                    kind="service",
                    payee_id=payee,
                    occurred_at=when,
                    service_type=SERVICE_TYPES[i % len(SERVICE_TYPES)],
                    region=REGIONS[(i // plan.payees + i) % len(REGIONS)],
                    distance_km=Decimal(f"{rng.uniform(11, 40):.1f}") if far else Decimal("3"),
                    materials_supplied_by="customer" if rng.random() < 0.2 else None,
                )
                lines = rules.price(facts, Volumes())
                earnings.append(
                    Earning(
                        source=f"bench:job:{i}",
                        facts=facts.as_dict(),
                        rule_set=RULE_SET,
                        rule_version=1,
                        volumes=Volumes().as_dict(),
                        lines=[line.as_dict() for line in lines],
                        held=None,
                        meta=_meta(when, "system:settlement"),
                    )
                )
            app.save_aggregates(earnings)
            events += len(earnings)
            if time.perf_counter() > next_report:
                self.say(f"  seeded {at + len(earnings):,} of {plan.items:,} items")
                next_report = time.perf_counter() + 15
        took = time.perf_counter() - started
        from api.bench.tickets import raw_insert_rate

        width = self._event_width()
        raw = raw_insert_rate(self.scratch.db_url, plan.baseline_rows, plan.per_tx, width)
        self.figures["seed"] = {"events": events, "seconds": took, "raw_rows_per_s": raw}
        self.report.rows.append(
            Row(
                "S1",
                f"seed {plan.payees:,} payees + {plan.items:,} items (each priced by the rule"
                f" engine, {len(RULES['components'])} components) through the domain,"
                f" {plan.per_tx:,}/tx: events/s",
                fmt_rate(events / took),
                f"psycopg executemany, {plan.per_tx:,} rows/tx, {width[0]} B rows (the average"
                f" stored event), {plan.baseline_rows:,} rows",
                fmt_rate(raw),
                fmt_ratio(events / took, raw),
            )
        )

    def _event_width(self) -> tuple[int, int]:
        recorder: Any = self.c.settlement.recorder
        with psycopg.connect(self.scratch.db_url) as conn:
            row = conn.execute(
                f"SELECT avg(octet_length(state)), avg(length(topic))"
                f" FROM {recorder.events_table_name} WHERE topic LIKE %s",
                ("domain.settlement.aggregates:Earning%",),
            ).fetchone()
        return (int(float(row[0])), int(float(row[1]))) if row and row[0] else (600, 40)

    # --- S2 -------------------------------------------------------------------------

    def project(self) -> None:
        c = self.c
        self.say("S2: projecting the settlement read model")
        after = c.engine.positions()["settlement"]
        count, started = 0, time.perf_counter()
        next_report = started + 15
        while records := c.read_log(after, LOG_BATCH):
            c.engine.apply_batch(records, only=["settlement"])
            count += len(records)
            after = records[-1].position
            if time.perf_counter() > next_report:
                self.say(f"  projected {count:,} events")
                next_report = time.perf_counter() + 15
        took = time.perf_counter() - started
        with psycopg.connect(self.scratch.db_url, autocommit=True) as conn:
            for table in ("settlement_lines", "settlement_items", "settlement_payees"):
                conn.execute(f"VACUUM (ANALYZE) {table}")
            lines = conn.execute("SELECT COUNT(*) FROM settlement_lines").fetchone() or (0,)
        self.figures["projection"] = {"events": count, "seconds": took, "lines": lines[0]}
        raw = self.figures["seed"]["raw_rows_per_s"]
        self.report.rows.append(
            Row(
                "S2",
                f"project the settlement read model ({count:,} events → {lines[0]:,} lines;"
                f" {LOG_BATCH:,} events/tx): events/s",
                fmt_rate(count / took),
                "psycopg executemany rows/s (S1's baseline)",
                fmt_rate(raw),
                fmt_ratio(count / took, raw),
            )
        )

    # --- S3 -------------------------------------------------------------------------

    def close(self) -> None:
        plan = self.plan
        self.say(f"S3: the settlement run for {GROUP} {PERIOD}, in a process of its own")
        probe = cpu.Probe({"PostgreSQL": lambda: cpu.matching("postgres:", self.scratch.db_name)})
        probe.begin()
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "api.bench.settlement", "close", GROUP, PERIOD],
            env=self.procs.env,
            capture_output=True,
            check=False,
            cwd=Path(__file__).parents[2],
        )
        wall = time.perf_counter() - started
        if out.returncode != 0:
            raise RuntimeError(f"the run failed:\n{out.stderr.decode()[-3000:]}")
        result = orjson.loads(out.stdout.splitlines()[-1])
        t1 = time.perf_counter()
        records = self.c.read_log(self.c.engine.positions()["settlement"], LOG_BATCH)
        self.c.engine.apply_batch(records, only=["settlement"])
        statements = time.perf_counter() - t1
        pg_cpu = probe.end().get("PostgreSQL", float("nan"))
        total = result["close_seconds"] + statements
        with psycopg.connect(self.scratch.db_url) as conn:
            row = conn.execute(
                "SELECT COUNT(*), SUM(total) FROM settlement_statements WHERE period = %s",
                (PERIOD,),
            ).fetchone()
        written = row if row is not None else (0, 0)
        raw_group, raw_stream, streamed = self._raw_run()
        raw_total = raw_group + raw_stream
        self.figures["run"] = {
            **result,
            "wall_with_startup": wall,
            "statements_seconds": statements,
            "total_seconds": total,
            "statements": written[0],
            "statements_total": int(written[1] or 0),
            "postgres_cpu": pg_cpu,
            "raw_group_by": raw_group,
            "raw_stream": raw_stream,
            "raw_lines": streamed,
        }
        full = plan.payees >= FULL.payees and plan.items >= FULL.items
        target = ("✓" if total <= 60 else "✗") if full else "n/a at this size"
        self.report.rows.append(
            Row(
                "S3",
                f"settlement run: close {GROUP} {PERIOD} ({result['payees']:,} payees,"
                f" {result['lines']:,} lines; totals, digest, event) + its statements projected"
                f" ({written[0]:,}): seconds (target ≤ 60 {target})",
                f"{total:.1f} s ({result['close_seconds']:.1f} + {statements:.1f})",
                f"psycopg: GROUP BY payee of the period's lines + one COPY of them all"
                f" ({streamed:,} rows)",
                f"{raw_total:.1f} s ({raw_group:.1f} + {raw_stream:.1f})",
                f"{total / raw_total:.2f}×",
            )
        )
        self.report.rows.append(
            Row(
                "S3m",
                "  the run's memory: peak RSS of its process (before the close: bootstrap)",
                f"{result['rss_after_mb']:.0f} MB"
                f" (+{result['rss_after_mb'] - result['rss_before_mb']:.0f})",
                "the same process after bootstrap",
                f"{result['rss_before_mb']:.0f} MB",
                "",
            )
        )
        self.report.notes.append(
            f"S3: the run's process spent {result['cpu_seconds']:.1f} s of CPU (user+system);"
            f" PostgreSQL {pg_cpu:.1f} s over the run and its projection; wall time with"
            f" interpreter start and bootstrap {wall:.1f} s; statements hold"
            f" {int(written[1] or 0):,} fen in all; digest {result['digest'][:16]}…"
        )

    def _raw_run(self) -> tuple[float, float, int]:
        with psycopg.connect(self.scratch.db_url) as conn:
            t0 = time.perf_counter()
            conn.execute(
                "SELECT payee_id, COUNT(*), SUM(amount) FROM settlement_lines"
                " WHERE group_key = %s AND period = %s GROUP BY payee_id",
                (GROUP, PERIOD),
            ).fetchall()
            group_by = time.perf_counter() - t0
            t1 = time.perf_counter()
            n = 0
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY (SELECT payee_id, component, amount, line_id FROM settlement_lines"
                    " WHERE group_key = %s AND period = %s ORDER BY payee_id, position, seq)"
                    " TO STDOUT",
                    (GROUP, PERIOD),
                ) as copy,
            ):
                for data in copy:
                    n += bytes(data).count(b"\n")
            stream = time.perf_counter() - t1
        return group_by, stream, n

    # --- S4 -------------------------------------------------------------------------

    def statements(self) -> None:
        plan = self.plan
        port = _free_port()
        self.procs.spawn("api", ["-m", "api.bench", HOST, str(port)])
        base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + plan.startup_timeout
        while True:
            self.procs.check_alive("api")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not answer:\n{self.procs.log_tail('api')}")
            time.sleep(0.2)
        token = self.c.tokens.create("admin")
        rng = random.Random(4)
        chosen = [rng.choice(self.payee_ids) for _ in range(plan.statements)]
        self.say(f"S4: {plan.statements:,} statement queries, {plan.clients} in flight")
        samples = self._drive(base, token, chosen)
        raw = self._raw_statements(chosen)
        ok = [s for s, status in samples if status == 200]
        bad = len(samples) - len(ok)
        self.figures["statements"] = {"latencies": ok, "errors": bad, "raw": raw}
        self.report.rows.append(
            Row(
                "S4",
                f"statement GET /v1/payees/{{id}}/statements/{GROUP}/{PERIOD} (~"
                f"{self.figures['run']['lines'] // max(self.figures['run']['payees'], 1)} lines"
                f" each), n={len(ok):,}, {plan.clients} in flight"
                + (f", {bad} errors" if bad else ""),
                fmt_lat3(ok),
                f"psycopg indexed SELECT of one statement's lines, {plan.clients} connections",
                fmt_lat3(raw),
                fmt_lat_ratio(ok, raw),
            )
        )

    def _drive(self, base: str, token: str, payees: list[str]) -> list[tuple[float, int]]:
        def client() -> httpx.Client:
            auth = {"Authorization": f"Bearer {token}"}
            return httpx.Client(base_url=base, headers=auth, trust_env=False)

        def ask(http: httpx.Client, p: str) -> int:
            return http.get(f"/v1/payees/{p}/statements/{GROUP}/{PERIOD}", timeout=30).status_code

        return _fan_out(payees, self.plan.clients, client, ask)

    def _raw_statements(self, payees: list[str]) -> list[float]:
        def connect() -> psycopg.Connection[Any]:
            return psycopg.connect(self.scratch.db_url, autocommit=True)

        def select(conn: psycopg.Connection[Any], p: str) -> int:
            conn.execute(
                "SELECT * FROM settlement_lines WHERE group_key = %s AND period = %s"
                " AND payee_id = %s ORDER BY position, seq",
                (GROUP, PERIOD, p),
            ).fetchall()
            return 200

        return [took for took, _ in _fan_out(payees, self.plan.clients, connect, select)]

    def run(self) -> None:
        self.seed()
        self.project()
        self.close()
        self.statements()

    def cleanup(self) -> None:
        self.procs.close()
        self.scratch.teardown()


def _fan_out(
    items: list[str],
    clients: int,
    open_client: Callable[[], AbstractContextManager[C]],
    call: Callable[[C, str], int],
) -> list[tuple[float, int]]:
    """(seconds, status) of `call` on every item, from `clients` threads each with its own
    client, taking items in turn."""
    lock = threading.Lock()
    pending = iter(items)
    out: list[tuple[float, int]] = []

    def worker() -> None:
        with open_client() as client:
            while True:
                with lock:
                    item = next(pending, None)
                if item is None:
                    return
                t0 = time.perf_counter()
                status = call(client, item)
                took = time.perf_counter() - t0
                with lock:
                    out.append((took, status))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def close_in_this_process(group: str, period: str) -> None:
    """`python -m api.bench.settlement close GROUP PERIOD`: the settlement run on the bench's
    scratch database (from the environment), its time, CPU and memory as one JSON line."""
    from infra.bootstrap import bootstrap
    from infra.settlement import close_period

    c = bootstrap(Settings())
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        recorded = close_period(c, group, period, _meta(datetime.now(UTC), "user:finance"))
        took = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        [record] = c.read_log((recorded.position or 1) - 1, 1)
        closed = record.data
        print(
            orjson.dumps(
                {
                    "close_seconds": took,
                    "cpu_seconds": (after.ru_utime + after.ru_stime)
                    - (before.ru_utime + before.ru_stime),
                    "rss_before_mb": before.ru_maxrss / 1024,
                    "rss_after_mb": after.ru_maxrss / 1024,
                    "payees": closed.get("payees", 0),
                    "lines": closed.get("lines", 0),
                    "total": closed.get("total", 0),
                    "digest": closed.get("digest", ""),
                    "position": recorded.position,
                }
            ).decode()
        )
    finally:
        c.close()


def render(bench: SettlementBench, quick: bool) -> Table:
    plan = bench.plan
    out = Table(
        title=f"scrm settlement bench ({'quick' if quick else 'full'}; {plan.payees:,} payees,"
        f" {plan.items:,} items; {os.cpu_count()} CPUs; baselines measured in this run)",
        title_justify="left",
    )
    for name in ("#", "figure", "scrm", "raw baseline", "baseline", "ratio"):
        out.add_column(name, justify="right" if name in ("scrm", "baseline", "ratio") else "left")
    for r in bench.report.rows:
        out.add_row(r.id, r.figure, r.value, r.baseline, r.baseline_value, r.ratio)
    return out


def run_settlement_bench(
    settings: Settings,
    *,
    payees: int | None = None,
    items: int | None = None,
    quick: bool = False,
    json_path: Path | None = None,
) -> int:
    """0 when every figure was measured, 1 when one failed, 2 without PostgreSQL."""
    from api.bench.tickets import _machine_state

    plan = QUICK if quick else FULL
    if payees is not None:
        plan = replace(plan, payees=payees)
    if items is not None:
        plan = replace(plan, items=items)
    out = Console(width=None if sys.stdout.isatty() else 180)
    err = Console(stderr=True)
    admin = admin_url(settings)
    problem = pg_problem(admin)
    if problem:
        err.print(f"[red]{problem}[/red]")
        return 2
    bench = SettlementBench(plan, admin, err)
    started = time.perf_counter()
    bench.report.notes.insert(0, f"machine at the start: {_machine_state()}")
    try:
        bench.run()
    except Exception as exc:
        bench.report.failures.append(f"{type(exc).__name__}: {exc}")
        err.print(f"[red]settlement bench failed[/red]\n{traceback.format_exc()}")
    finally:
        bench.cleanup()
    bench.report.notes.append(f"machine at the end: {_machine_state()}")
    out.print(render(bench, quick))
    out.print("ratio = scrm ÷ baseline (throughput: higher is better; time: lower is better)")
    for note in bench.report.notes:
        out.print(f"  • {note}")
    out.print(f"  • total {time.perf_counter() - started:.0f} s")
    for failure in bench.report.failures:
        out.print(f"[red]  ✗ {failure}[/red]")
    if json_path is not None:
        json_path.write_bytes(
            orjson.dumps(
                {
                    "plan": asdict(plan),
                    "rows": [asdict(r) for r in bench.report.rows],
                    "figures": bench.figures,
                    "failures": bench.report.failures,
                },
                option=orjson.OPT_INDENT_2,
                default=str,
            )
        )
    return 1 if bench.report.failures else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["close"]:
        close_in_this_process(sys.argv[2], sys.argv[3])
