"""`scrm bench`: the figures that matter, each beside a raw baseline measured in the same run.

This is a measurement, never a timed test: it prints, and the targets are context only.
It makes its own scratch PostgreSQL database (`scrm_bench_<hex>`, on SCRM_DATABASE_URL's server)
and its own JetStream stream and subject prefix (on SCRM_NATS_URL), and removes both at the end.
Everything runs on this machine; the API, the relay and the projector run as subprocesses so
that they do not share the benchmark's GIL.

1. HTTP commands/s and latency: the real app (`create_app(container=bootstrap(settings))`)
   under uvicorn; C httpx clients (threads, keep-alive) alternate POST /v1/channel-codes/{id}/
   scans (a new visitor every time, spread over several codes) and POST /v1/customers (a new
   unionid + phone every time). Baseline: psycopg single-row INSERT transactions, C connections.
2. Direct appends: the same two commands called on CustomersApp by C threads. Same baseline.
3. Commit → read model visible: `scrm relay` and `scrm project` subprocesses; commands issued
   at a steady event rate; a watcher thread polls the projections' positions every ~1 ms and
   times each command from its return (with its position) until every projection has reached
   that position. Baseline: raw JetStream publish → receipt at the same rate (a push consumer),
   plus a pull consumer fetching exactly as the projector does, to show where the time goes.
4. Rebuild: `engine.rebuild(names, container.log_batches())`, all read models in one pass,
   then each alone, over the whole log. Baseline: reading the same log (`container.read_log`
   batches, and the raw recorder).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import heapq
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
from psycopg.conninfo import make_conninfo
from rich.console import Console
from rich.table import Table

from domain.shared import Meta
from infra.settings import Settings

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_NATS = "nats://127.0.0.1:4222"
HOST = "127.0.0.1"
EVENTS_PER_COMMAND = 3  # scan of a new visitor: CustomerAdded, IdentityClaimClaimed,
# ChannelCodeScanned; add customer with unionid + phone: CustomerAdded + two claims.
MAX_RESTARTS = 20  # per supervised process (relay, projector)
LAG_EVENTS_PER_COMMAND = 5  # phase 3: visitors and customers known by three or four identities


@dataclass(frozen=True)
class Plan:
    clients: int = 8  # concurrent HTTP clients / command threads / INSERT connections
    codes: int = 16  # channel codes per phase (several, to limit contention on one code)
    staff: int = 12
    insert_seconds: float = 8.0
    warmup: float = 2.0
    http_seconds: float = 15.0
    direct_seconds: float = 10.0
    lag_rate: int = 1000  # events/s; the raw bus baseline runs at this rate
    lag_seconds: float = 15.0
    lag_issuers: int = 8
    # Steady-load runs of phase 3 through `scrm relay` and `scrm project`: (relay, events/s).
    lag_runs: tuple[tuple[str, int], ...] = (("scrm", 1000), ("scrm", 300))
    poll_interval: float = 0.001
    catch_up_timeout: float = 150.0
    min_log_events: int = 20_000
    startup_timeout: float = 30.0


FULL = Plan()
QUICK = Plan(
    insert_seconds=2.0,
    warmup=0.5,
    http_seconds=3.0,
    direct_seconds=2.0,
    lag_rate=300,
    lag_seconds=3.0,
    lag_issuers=4,
    lag_runs=(("scrm", 300),),
    catch_up_timeout=40.0,
    min_log_events=3_000,
)


def row_ids(quick: bool) -> list[str]:
    """The row ids a complete run prints (the smoke test checks them)."""
    from projections import all_projections

    plan = QUICK if quick else FULL
    lag = [f"3{chr(ord('a') + k)}" for k in range(3 * len(plan.lag_runs) + 1)]
    rebuild = [f"4{chr(ord('a') + k)}" for k in range(len(all_projections()) + 2)]
    return ["1a", "1b", "1c", "1d", "2a", "2b", "2c", *lag, *rebuild]


# --- small helpers -----------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def _rate(x: float, unit: str = "/s") -> str:
    return "—" if math.isnan(x) else f"{x:,.0f}{unit}"


def _ms(x: float) -> str:
    return "—" if math.isnan(x) else f"{x * 1000:.1f}"


def _lat(values: list[float]) -> str:
    return f"p50 {_ms(_pct(values, 50))} / p99 {_ms(_pct(values, 99))} ms"


def _ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def _lat_ratio(a: list[float], b: list[float]) -> str:
    return (
        f"{_ratio(_pct(a, 50), _pct(b, 50))} / {_ratio(_pct(a, 99), _pct(b, 99))}"
        if a and b
        else "—"
    )


def _meta() -> Meta:
    return Meta(
        occurred_at=datetime.now(UTC),
        actor="system:bench",
        source="bench",
        correlation_id=uuid4().hex,
        causation_id=f"cmd:bench:{uuid4().hex}",
    )


def _with_db(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Row:
    id: str
    figure: str
    value: str
    baseline: str
    baseline_value: str
    ratio: str
    target: str = ""


@dataclass
class LoopResult:
    """A closed loop: every thread calls its op back-to-back; only calls that start and end
    inside the measured window count."""

    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    head_delta: int | None = None

    @property
    def ok(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def all_latencies(self) -> list[float]:
        return [x for v in self.latencies.values() for x in v]

    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else math.nan


Op = Callable[[Any, int, int], tuple[str, str | None]]  # (state, thread, i) -> (kind, error)


def _closed_loop(
    threads: int,
    warmup: float,
    seconds: float,
    open_state: Callable[[int], Any],
    op: Op,
    close_state: Callable[[Any], None] = lambda _: None,
    head: Callable[[], int] | None = None,
) -> LoopResult:
    barrier = threading.Barrier(threads + 1, timeout=60)
    window = [0.0, 0.0]
    results: list[tuple[dict[str, list[float]], Counter[str]]] = [
        ({}, Counter()) for _ in range(threads)
    ]

    def worker(t: int) -> None:
        lats, errors = results[t]
        try:
            state = open_state(t)
        except Exception as exc:
            errors[f"setup: {type(exc).__name__}"] += 1
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            return
        try:
            barrier.wait()
            start, end = window
            i = 0
            while True:
                t0 = time.perf_counter()
                if t0 >= end:
                    break
                try:
                    kind, error = op(state, t, i)
                except Exception as exc:
                    kind, error = "error", type(exc).__name__
                t1 = time.perf_counter()
                if t0 >= start and t1 <= end:
                    if error is None:
                        lats.setdefault(kind, []).append(t1 - t0)
                    else:
                        errors[f"{kind}: {error}"] += 1
                if error is not None:
                    time.sleep(0.001)  # never spin on a failing service
                i += 1
        except threading.BrokenBarrierError:
            errors["barrier"] += 1
        finally:
            close_state(state)

    pool = [
        threading.Thread(target=worker, args=(t,), name=f"bench-{t}", daemon=True)
        for t in range(threads)
    ]
    for th in pool:
        th.start()
    now = time.perf_counter()
    window[0], window[1] = now + warmup, now + warmup + seconds
    barrier.wait()
    head_delta = None
    if head is not None:
        time.sleep(max(0.0, window[0] - time.perf_counter()))
        first = head()
        time.sleep(max(0.0, window[1] - time.perf_counter()))
        head_delta = head() - first
    for th in pool:
        th.join(timeout=warmup + seconds + 60)
    out = LoopResult(seconds=seconds, head_delta=head_delta)
    for lats, errors in results:
        for kind, values in lats.items():
            out.latencies.setdefault(kind, []).extend(values)
        out.errors.update(errors)
    return out


class _Visibility(threading.Thread):
    """Times each command from its return until every projection has reached its position.

    Polls `min(position)` of the engine's projections over its own autocommit connection
    (the same rows `engine.positions()` reads, without pool and dict overhead), and only
    while something is pending."""

    def __init__(self, db_url: str, names: list[str], interval: float):
        super().__init__(name="bench-visibility", daemon=True)
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.names = names
        self.interval = interval
        self.pending: list[tuple[int, float]] = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.samples: list[tuple[int, float, float]] = []  # position, returned, visible
        self.polls = 0
        self.error: BaseException | None = None

    @property
    def latencies(self) -> list[float]:
        return [seen - returned for _, returned, seen in self.samples]

    def low(self) -> int:
        row = self.conn.execute(
            "SELECT min(position) FROM projection_positions WHERE name = ANY(%s)", (self.names,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def expect(self, position: int, returned_at: float) -> None:
        with self.lock:
            heapq.heappush(self.pending, (position, returned_at))

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                with self.lock:
                    waiting = bool(self.pending)
                if waiting:
                    low = self.low()
                    seen = time.perf_counter()
                    self.polls += 1
                    with self.lock:
                        while self.pending and self.pending[0][0] <= low:
                            position, returned = heapq.heappop(self.pending)
                            self.samples.append((position, returned, seen))
                time.sleep(self.interval)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout: float) -> int:
        """Wait (bounded) for what is pending; returns how many were never seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.is_alive():
            with self.lock:
                if not self.pending:
                    break
            time.sleep(0.01)
        self.halt.set()
        self.join(timeout=5)
        self.conn.close()
        with self.lock:
            return len(self.pending)


class _BusTap(threading.Thread):
    """Notes when each position first appears on the bus (a push consumer of its own), to
    split commit → visible into relay (commit → on the bus) and projector (bus → visible)."""

    def __init__(self, nats_url: str, stream: str, prefix: str):
        super().__init__(name="bench-bus-tap", daemon=True)
        self.nats_url, self.stream, self.prefix = nats_url, stream, prefix
        self.seen: dict[int, float] = {}
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halt: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()

    async def _main(self) -> None:
        import nats
        from nats.js.api import DeliverPolicy

        self._loop = asyncio.get_running_loop()
        self._halt = asyncio.Event()
        nc = await nats.connect(self.nats_url, connect_timeout=3, allow_reconnect=False)
        try:

            async def on_msg(msg: Any) -> None:
                now = time.perf_counter()
                msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
                if msg_id.startswith("scrm:"):
                    self.seen.setdefault(int(msg_id[5:]), now)

            sub = await nc.jetstream().subscribe(
                f"{self.prefix}.>",
                stream=self.stream,
                cb=on_msg,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
            self.ready.set()
            await asyncio.wait_for(self._halt.wait(), timeout=600)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        finally:
            await nc.close()

    def finish(self) -> None:
        if self.ident is None:
            return  # never started
        for _ in range(100):  # the loop may still be starting
            if self._loop is not None and self._halt is not None:
                break
            if not self.is_alive():
                return
            time.sleep(0.01)
        if self._loop is not None and self._halt is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._halt.set)
        self.join(timeout=10)


@dataclass
class _Steady:
    """One steady-load run of phase 3."""

    label: str
    asked: int  # events/s
    samples: list[tuple[int, float, float]]  # position, command returned, visible
    bus: dict[int, float]  # position -> first seen on the bus
    seconds: float = math.nan
    events: int = 0
    unseen: int = 0
    polls: int = 0
    lateness: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else math.nan

    def lag(self) -> list[float]:
        return [seen - returned for _, returned, seen in self.samples]

    def relay_part(self) -> list[float]:
        return [self.bus[p] - r for p, r, _ in self.samples if p in self.bus]

    def projector_part(self) -> list[float]:
        return [v - self.bus[p] for p, _, v in self.samples if p in self.bus]


# --- the benchmark -------------------------------------------------------------------------


class _Bench:
    def __init__(self, plan: Plan, admin_url: str, nats_url: str, err: Console):
        self.plan = plan
        self.admin_url = admin_url
        self.nats_url = nats_url
        self.err = err
        self.tag = uuid4().hex[:10]
        self.db_name = f"scrm_bench_{self.tag}"
        self.db_url = _with_db(admin_url, self.db_name)
        self.stream = f"SCRM_BENCH_{self.tag}"
        self.prefix = f"scrmbench{self.tag}"
        self.tmp = Path(tempfile.mkdtemp(prefix="scrm-bench-"))
        self.master_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.settings = Settings(
            data_dir=self.tmp / "var",
            database_url=self.db_url,
            nats_url=nats_url,
            nats_stream=self.stream,
            nats_subject_prefix=self.prefix,
            master_key=self.master_key,
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}
        self.env.update(
            SCRM_DATA_DIR=str(self.tmp / "var"),
            SCRM_DATABASE_URL=self.db_url,
            SCRM_NATS_URL=nats_url,
            SCRM_NATS_STREAM=self.stream,
            SCRM_NATS_SUBJECT_PREFIX=self.prefix,
            SCRM_MASTER_KEY=self.master_key,
            PYTHONUNBUFFERED="1",
        )
        self.container: Any = None
        self.db_created = False
        self.stream_touched = False
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.procs_lock = threading.RLock()
        self.supervised: dict[str, list[str]] = {}  # name -> args, restarted when they die
        self.crashes: list[tuple[str, int, str]] = []
        self.supervisor_halt = threading.Event()
        self.supervisor = threading.Thread(target=self._supervise, name="bench-supervisor")
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.staff: list[str] = []
        self.codes: dict[str, list[str]] = {}
        self.insert: LoopResult | None = None

    def say(self, text: str) -> None:
        self.err.print(f"[dim]bench[/dim] {text}")

    # --- set-up and clean-up -------------------------------------------------------------

    def setup(self) -> None:
        from infra.bootstrap import bootstrap
        from infra.nats.worker import ensure_stream

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        self.say(f"scratch database {self.db_name}, stream {self.stream}, prefix {self.prefix}")

        async def make_stream() -> None:
            import nats

            nc = await nats.connect(self.nats_url, connect_timeout=3, allow_reconnect=False)
            try:
                self.stream_touched = True
                await ensure_stream(nc.jetstream(), self.stream, self.prefix)
            finally:
                await nc.close()

        asyncio.run(make_stream())
        self.container = bootstrap(self.settings)
        app = self.container.customers
        self.staff = [f"bench.s{i:02d}" for i in range(self.plan.staff)]
        for staff_id in self.staff:
            app.register_staff(
                staff_id=staff_id, name="Bench", department="bench", region="lab", meta=_meta()
            )
        runs = [f"lag{k}" for k in range(len(self.plan.lag_runs))]
        for phase in ("http", "direct", *runs, "topup"):
            self.codes[phase] = [
                app.create_channel_code(
                    name=f"bench {phase} {n}",
                    staff_pool=[self.staff[(n + k) % len(self.staff)] for k in range(3)],
                    tags=["bench", phase],
                    welcome_message="hello",
                    expires_at=None,
                    max_scans=None,
                    meta=_meta(),
                ).id
                for n in range(self.plan.codes)
            ]

    def spawn(
        self, name: str, args: list[str], supervised: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start `python <args>` with the bench's environment. A supervised process that
        dies is started again (as docker-compose's `restart: unless-stopped` would do) and
        the crash is reported."""
        with self.procs_lock:
            log = (self.tmp / f"{name}.log").open("ab")
            proc = subprocess.Popen(
                [sys.executable, *args],
                env=self.env,
                cwd=self.tmp,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            self.procs[name] = proc
            if supervised:
                self.supervised[name] = args
            else:
                self.supervised.pop(name, None)
            return proc

    def _supervise(self) -> None:
        while not self.supervisor_halt.wait(0.05):
            with self.procs_lock:
                for name, args in list(self.supervised.items()):
                    proc = self.procs.get(name)
                    if proc is None or proc.poll() is None:
                        continue
                    lines = [x for x in self.log_tail(name, 40).splitlines() if x.strip()]
                    why = lines[-1].strip() if lines else "no output"
                    self.crashes.append((name, proc.returncode, why))
                    if sum(1 for c in self.crashes if c[0] == name) > MAX_RESTARTS:
                        self.supervised.pop(name)  # let check_alive report it
                        continue
                    self.err.print(f"[yellow]bench {name} died ({why}); restarting it[/yellow]")
                    self.spawn(name, args, supervised=True)

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.tmp / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self, *names: str) -> None:
        with self.procs_lock:
            for name in names:
                proc = self.procs[name]
                if proc.poll() is not None and name not in self.supervised:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                    )

    def stop(self, name: str, timeout: float = 15.0) -> None:
        with self.procs_lock:
            proc = self.procs.pop(name, None)
            self.supervised.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            started = time.perf_counter()
            try:
                proc.wait(timeout)
                took = time.perf_counter() - started
                if took > 3:
                    self.notes.append(f"{name} took {took:.1f} s to stop on SIGTERM")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                self.notes.append(f"{name} ignored SIGTERM for {timeout:.0f} s and was killed")
        elif proc.returncode not in (0, -signal.SIGTERM):
            self.notes.append(f"{name} had exited with {proc.returncode}")

    def cleanup(self) -> None:
        self.supervisor_halt.set()
        if self.supervisor.ident is not None:
            self.supervisor.join(timeout=5)
        for name in list(self.procs):
            with contextlib.suppress(Exception):
                self.stop(name)
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.close()
        if self.stream_touched:

            async def delete() -> None:
                import nats

                nc = await nats.connect(self.nats_url, connect_timeout=3, allow_reconnect=False)
                try:
                    with contextlib.suppress(Exception):
                        await nc.jetstream().delete_stream(self.stream)
                finally:
                    await nc.close()

            try:
                asyncio.run(delete())
            except Exception as exc:
                self.failures.append(f"could not delete stream {self.stream}: {exc}")
        if self.db_created:
            try:
                with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except psycopg.Error as exc:
                self.failures.append(f"could not drop {self.db_name}: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- commands, the same over HTTP and direct ----------------------------------------

    def _visitor(self, phase: int, t: int, i: int) -> str:
        return f"o{self.tag}p{phase}t{t}n{i}"

    def _unionid(self, phase: int, t: int, i: int) -> str:
        return f"u{self.tag}p{phase}t{t}n{i}"

    @staticmethod
    def _phone(phase: int, t: int, i: int) -> str:
        return f"13{phase}{t:02d}{i:09d}"  # unique within this database

    def _code(self, phase_name: str, t: int, i: int) -> str:
        codes = self.codes[phase_name]
        return codes[(t + (i // 2) * self.plan.clients) % len(codes)]

    def direct_command(
        self, phase_name: str, phase: int, t: int, i: int, rich: bool = False
    ) -> int:
        """Alternately a scan by a new visitor and a new customer. `rich`: the visitor or
        customer is known by more identities (5 events instead of 3 per command)."""
        app = self.container.customers
        if i % 2 == 0:
            identities = {"openid": self._visitor(phase, t, i)}
            if rich:
                identities["unionid"] = self._unionid(phase, t, i)
                identities["wecom_external_userid"] = "w" + self._visitor(phase, t, i)
            scanned = app.scan_channel_code(
                UUID(self._code(phase_name, t, i)),
                identities=identities,
                device=f"bench-device-{i % 64}",
                ip=f"10.{t}.{(i >> 8) & 255}.{i & 255}",
                meta=_meta(),
            )
            return int(scanned.position or 0)
        pairs = [
            ("unionid", self._unionid(phase, t, i)),
            ("phone", self._phone(phase, t, i)),
        ]
        if rich:
            pairs += [
                ("openid", self._visitor(phase, t, i)),
                ("wecom_external_userid", "w" + self._visitor(phase, t, i)),
            ]
        added = app.add_customer(
            identities=pairs,
            tags=["bench"],
            owner=self.staff[(t + i) % len(self.staff)],
            meta=_meta(),
        )
        return int(added.position or 0)

    # --- phase 1: HTTP -------------------------------------------------------------------

    def start_api(self) -> str:
        port = _free_port()
        self.spawn("api", ["-m", "api.bench", HOST, str(port)])
        base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + self.plan.startup_timeout
        while True:
            self.check_alive("api")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1, trust_env=False).status_code == 200:
                    return base
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not answer /healthz:\n{self.log_tail('api')}")
            time.sleep(0.1)

    def insert_baseline(self) -> LoopResult:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE bench_raw_insert (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL,"
                " created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        # About the size of one stored event.
        payload = '{"bench": "' + "x" * 400 + '"}'

        def open_conn(_: int) -> psycopg.Connection[Any]:
            return psycopg.connect(self.db_url, autocommit=True)

        def insert(conn: psycopg.Connection[Any], t: int, i: int) -> tuple[str, str | None]:
            conn.execute("INSERT INTO bench_raw_insert (payload) VALUES (%s)", (payload,))
            return "insert", None

        return _closed_loop(
            self.plan.clients,
            min(self.plan.warmup, 1.0),
            self.plan.insert_seconds,
            open_conn,
            insert,
            lambda conn: conn.close(),
        )

    def phase_http(self) -> None:
        plan = self.plan
        self.say("phase 1: starting the API (uvicorn subprocess)")
        base = self.start_api()
        self.say(f"phase 1: baseline, psycopg single-row INSERT, {plan.clients} connections")
        self.insert = ins = self.insert_baseline()
        token = self.container.tokens.create("admin", subject="bench")
        self.say(f"phase 1: {plan.clients} HTTP clients for {plan.http_seconds:.0f} s")

        def open_client(_: int) -> httpx.Client:
            return httpx.Client(
                base_url=base,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10.0,
                trust_env=False,  # never through a proxy: 127.0.0.1 only
            )

        def command(client: httpx.Client, t: int, i: int) -> tuple[str, str | None]:
            if i % 2 == 0:
                kind = "scan"
                r = client.post(
                    f"/v1/channel-codes/{self._code('http', t, i)}/scans",
                    json={
                        "visitor": {"openid": self._visitor(1, t, i)},
                        "device": f"bench-device-{i % 64}",
                        "ip": f"10.{t}.{(i >> 8) & 255}.{i & 255}",
                    },
                )
            else:
                kind = "customer"
                r = client.post(
                    "/v1/customers",
                    json={
                        "identities": [
                            {"kind": "unionid", "value": self._unionid(1, t, i)},
                            {"kind": "phone", "value": self._phone(1, t, i)},
                        ],
                        "tags": ["bench"],
                        "owner": self.staff[(t + i) % len(self.staff)],
                    },
                )
            return kind, None if r.status_code == 201 else f"HTTP {r.status_code}"

        res = _closed_loop(
            plan.clients,
            plan.warmup,
            plan.http_seconds,
            open_client,
            command,
            lambda client: client.close(),
            head=self.container.head,
        )
        self.stop("api")
        lat = res.all_latencies()
        ev = (res.head_delta or 0) / res.seconds
        base_lat = ins.all_latencies()
        self.rows += [
            Row(
                "1a",
                f"HTTP commands/s ({plan.clients} clients, scans + add customer)",
                f"{_rate(res.per_second())} ({_rate(ev)} events)",
                f"psycopg 1-row INSERT tx/s ({plan.clients} conns)",
                _rate(ins.per_second()),
                _ratio(res.per_second(), ins.per_second()),
                "≥ 2,500/s",
            ),
            Row(
                "1b",
                "HTTP command latency, all",
                _lat(lat),
                "1-row INSERT tx latency",
                _lat(base_lat),
                _lat_ratio(lat, base_lat),
                "p99 < 50 ms",
            ),
            Row(
                "1c",
                f"  POST /v1/channel-codes/{{id}}/scans (n={len(res.latencies.get('scan', []))})",
                _lat(res.latencies.get("scan", [])),
                "1-row INSERT tx latency",
                _lat(base_lat),
                _lat_ratio(res.latencies.get("scan", []), base_lat),
                "p99 < 50 ms",
            ),
            Row(
                "1d",
                f"  POST /v1/customers (n={len(res.latencies.get('customer', []))})",
                _lat(res.latencies.get("customer", [])),
                "1-row INSERT tx latency",
                _lat(base_lat),
                _lat_ratio(res.latencies.get("customer", []), base_lat),
                "p99 < 50 ms",
            ),
        ]
        if res.errors:
            self.notes.append(f"HTTP errors: {dict(res.errors)}")
            if sum(res.errors.values()) > max(5, res.ok // 100):
                self.failures.append(f"phase 1: too many HTTP errors {dict(res.errors)}")
        if ins.errors:
            self.notes.append(f"INSERT baseline errors: {dict(ins.errors)}")

    # --- phase 2: direct appends ---------------------------------------------------------

    def phase_direct(self) -> None:
        plan = self.plan
        ins = self.insert
        if ins is None:
            self.say("phase 2: baseline, psycopg single-row INSERT")
            self.insert = ins = self.insert_baseline()
        self.say(
            f"phase 2: {plan.clients} threads calling CustomersApp for {plan.direct_seconds:.0f} s"
        )

        def command(_: None, t: int, i: int) -> tuple[str, str | None]:
            self.direct_command("direct", 2, t, i)
            return ("scan" if i % 2 == 0 else "customer"), None

        res = _closed_loop(
            plan.clients,
            min(plan.warmup, 1.0),
            plan.direct_seconds,
            lambda _: None,
            command,
            head=self.container.head,
        )
        events = (res.head_delta or 0) / res.seconds
        lat, base_lat = res.all_latencies(), ins.all_latencies()
        self.rows += [
            Row(
                "2a",
                f"Direct CustomersApp commands/s ({plan.clients} threads)",
                _rate(res.per_second()),
                f"psycopg 1-row INSERT tx/s ({plan.clients} conns)",
                _rate(ins.per_second()),
                _ratio(res.per_second(), ins.per_second()),
            ),
            Row(
                "2b",
                "Direct appends: events/s (≈3 events per command, one tx)",
                _rate(events),
                "1-row INSERT rows/s",
                _rate(ins.per_second()),
                _ratio(events, ins.per_second()),
            ),
            Row(
                "2c",
                "Direct command latency "
                f"(scan {_ms(_pct(res.latencies.get('scan', []), 50))} / customer "
                f"{_ms(_pct(res.latencies.get('customer', []), 50))} ms p50)",
                _lat(lat),
                "1-row INSERT tx latency",
                _lat(base_lat),
                _lat_ratio(lat, base_lat),
            ),
        ]
        if res.errors:
            self.notes.append(f"direct command errors: {dict(res.errors)}")
            if sum(res.errors.values()) > max(5, res.ok // 100):
                self.failures.append(f"phase 2: too many errors {dict(res.errors)}")

    # --- phase 3: commit → read model through NATS --------------------------------------

    def wait_visible(
        self, watcher: _Visibility, position: int, timeout: float, *procs: str
    ) -> float:
        started = time.perf_counter()
        while watcher.low() < position:
            self.check_alive(*procs)
            if time.perf_counter() - started > timeout:
                raise RuntimeError(
                    f"read models did not reach position {position} within {timeout:.0f} s "
                    f"(at {watcher.low()})"
                )
            time.sleep(0.01)
        return time.perf_counter() - started

    def wait_for_row(self, name: str, sql: str) -> None:
        """Wait until a subprocess has finished bootstrapping (it wrote its row)."""
        deadline = time.monotonic() + self.plan.startup_timeout
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while True:
                self.check_alive(name)
                with contextlib.suppress(psycopg.errors.UndefinedTable):
                    if conn.execute(sql, (self.stream,)).fetchone():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{self.log_tail(name)}")
                time.sleep(0.05)

    def steady_load(self, label: str, phase: int, codes: str, tap: _BusTap, rate: int) -> _Steady:
        """Commands at `rate` events/s for plan.lag_seconds; each one's position is timed
        until every projection has reached it."""
        plan = self.plan
        names = list(self.container.engine.projections)
        procs = ("relay", "projector")
        cmd_rate = rate / LAG_EVENTS_PER_COMMAND
        total = max(1, int(cmd_rate * plan.lag_seconds))
        watcher = _Visibility(self.db_url, names, plan.poll_interval)
        try:
            # A probe proves relay and projector are up and idle before the clock starts.
            probe = self.direct_command(codes, phase, plan.lag_issuers, 0, rich=True)
            self.wait_visible(watcher, probe, plan.startup_timeout, *procs)
            time.sleep(0.3)
            self.say(
                f"phase 3 ({label}): {rate} events/s ({cmd_rate:.0f} commands/s) "
                f"for {plan.lag_seconds:.0f} s"
            )
            watcher.start()
            out = _Steady(label=label, asked=rate, samples=[], bus=tap.seen)
            head0 = self.container.head()
            t0 = time.perf_counter() + 0.05
            hard_stop = t0 + plan.lag_seconds * 3 + 10

            def issuer(j: int) -> None:
                k = 0
                while True:
                    n = k * plan.lag_issuers + j
                    if n >= total or time.perf_counter() > hard_stop:
                        return
                    delay = t0 + n / cmd_rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        out.lateness.append(-delay)
                    try:
                        position = self.direct_command(codes, phase, j, k + 1, rich=True)
                        watcher.expect(position, time.perf_counter())
                    except Exception as exc:
                        out.errors[type(exc).__name__] += 1
                    k += 1

            issuers = [
                threading.Thread(target=issuer, args=(j,), name=f"bench-issuer-{j}", daemon=True)
                for j in range(plan.lag_issuers)
            ]
            for th in issuers:
                th.start()
            for th in issuers:
                th.join(timeout=plan.lag_seconds * 3 + 20)
            out.seconds = time.perf_counter() - t0
            out.events = self.container.head() - head0
            out.unseen = watcher.finish(timeout=20.0)
            self.check_alive(*procs)
        finally:
            if watcher.is_alive():
                watcher.finish(timeout=0)
            elif not watcher.conn.closed:
                watcher.conn.close()
        if watcher.error is not None:
            raise RuntimeError(f"the visibility watcher failed: {watcher.error!r}")
        out.samples = list(watcher.samples)
        out.polls = watcher.polls
        late = sum(1 for x in out.lateness if x > 0.005)
        self.notes.append(
            f"phase 3 ({label}): {out.events:,} events in {out.seconds:.1f} s = "
            f"{out.rate:,.0f} events/s of {rate:,} asked; {late} of {total} commands "
            f"started > 5 ms behind schedule (max {max(out.lateness, default=0) * 1000:.0f} ms); "
            f"{watcher.polls:,} polls"
        )
        if out.errors:
            self.failures.append(f"phase 3 ({label}): command errors {dict(out.errors)}")
        if out.unseen:
            self.failures.append(
                f"phase 3 ({label}): {out.unseen} positions never became visible within 20 s"
            )
        return out

    def phase_lag(self) -> None:
        plan = self.plan
        names = list(self.container.engine.projections)
        self.say("phase 3: starting `scrm relay` and `scrm project`")
        self.spawn("relay", ["-m", "api.cli", "relay"], supervised=True)
        # Not both at once: two bootstraps racing on eventsourcing's CREATE OR REPLACE
        # FUNCTION fail with "tuple concurrently updated" (see notes).
        self.wait_for_row("relay", "SELECT 1 FROM relay_positions WHERE name = %s")
        self.spawn("projector", ["-m", "api.cli", "project"], supervised=True)
        tap = _BusTap(self.nats_url, self.stream, self.prefix)
        runs: list[_Steady] = []
        try:
            backlog = self.container.head()
            probe = _Visibility(self.db_url, names, plan.poll_interval)
            try:
                took = self.wait_visible(
                    probe, backlog, plan.catch_up_timeout, "relay", "projector"
                )
            finally:
                probe.conn.close()
            self.notes.append(
                f"relay + projector caught up with the {backlog:,} events of phases 1-2 in "
                f"{took:.1f} s ({backlog / took:,.0f} events/s, including process start-up)"
            )
            self.say(f"phase 3: caught up with {backlog:,} events in {took:.1f} s")
            tap.start()
            if not tap.ready.wait(10) or tap.error is not None:
                raise RuntimeError(f"could not tap the bus: {tap.error!r}")
            for k, (_relay, rate) in enumerate(plan.lag_runs):
                runs.append(self.steady_load("scrm relay", 5 + k, f"lag{k}", tap, rate))
        finally:
            tap.finish()
            self.stop("relay")
            self.stop("projector")

        self.say(f"phase 3: baseline, raw JetStream publish → consume at {plan.lag_rate} msg/s")
        payload = self.container.read_log(max(0, self.container.head() - 1), 1)[0].body()
        push, pull, sent = asyncio.run(
            _raw_bus(
                self.nats_url,
                self.stream,
                f"{self.prefix}.benchraw.ping",
                plan.lag_rate,
                plan.lag_seconds,
                payload,
            )
        )
        ids = iter(row_ids(False)[7:])  # 3a, 3b, ...
        for run in runs:
            lag, via_relay, projector = run.lag(), run.relay_part(), run.projector_part()
            self.rows += [
                Row(
                    next(ids),
                    f"Commit → read model visible, {run.label}, {run.asked:,} events/s asked, "
                    f"{run.rate:,.0f} achieved (n={len(lag)})",
                    _lat(lag),
                    f"raw JetStream publish → push consumer @ {plan.lag_rate:,} msg/s",
                    _lat(push),
                    _lat_ratio(lag, push),
                    "p99 ≤ 100 ms @ 1,000/s",
                ),
                Row(
                    next(ids),
                    "  of which: command returned → on the bus (relay)",
                    _lat(via_relay),
                    "raw JetStream publish → push consumer",
                    _lat(push),
                    _lat_ratio(via_relay, push),
                ),
                Row(
                    next(ids),
                    "  of which: on the bus → visible (projector, ~1 ms poll)",
                    _lat(projector),
                    "raw publish → pull consumer fetch(500, timeout=0.5)",
                    _lat(pull),
                    _lat_ratio(projector, pull),
                ),
            ]
        self.rows.append(
            Row(
                next(ids),
                f"Raw pull consumer, fetch(500, timeout=0.5) as the projector does (n={len(pull)})",
                _lat(pull),
                f"raw JetStream publish → push consumer (n={len(push)})",
                _lat(push),
                _lat_ratio(pull, push),
            )
        )
        if len(push) < sent or len(pull) < sent:
            self.notes.append(
                f"raw bus: {sent} published, {len(push)} pushed, {len(pull)} pulled back"
            )

    # --- phase 4: rebuild ----------------------------------------------------------------

    def top_up(self) -> None:
        plan = self.plan
        missing = plan.min_log_events - self.container.head()
        if missing <= 0:
            return
        per_thread = math.ceil(missing / EVENTS_PER_COMMAND / plan.clients)
        self.say(f"phase 4: topping the log up by ~{missing:,} events")
        deadline = time.perf_counter() + 240
        errors: Counter[str] = Counter()

        def fill(t: int) -> None:
            for i in range(per_thread):
                if time.perf_counter() > deadline:
                    return
                try:
                    self.direct_command("topup", 4, t, i)
                except Exception as exc:
                    errors[type(exc).__name__] += 1

        pool = [threading.Thread(target=fill, args=(t,), daemon=True) for t in range(plan.clients)]
        for th in pool:
            th.start()
        for th in pool:
            th.join(timeout=300)
        if errors:
            self.notes.append(f"top-up errors: {dict(errors)}")

    def phase_rebuild(self) -> None:
        c = self.container
        self.top_up()
        head = c.head()
        self.say(f"phase 4: reading and rebuilding over {head:,} events")
        recorder = c.customers.recorder

        started = time.perf_counter()
        raw, after = 0, 0
        while True:
            notifications = recorder.select_notifications(start=after + 1, limit=1000)
            if not notifications:
                break
            raw += len(notifications)
            after = notifications[-1].id
        raw_rate = raw / (time.perf_counter() - started)

        started = time.perf_counter()
        decoded = sum(len(batch) for batch in c.log_batches())
        read_rate = decoded / (time.perf_counter() - started)

        started = time.perf_counter()
        c.engine.rebuild(list(c.engine.projections), c.log_batches())  # one pass for all
        all_time = time.perf_counter() - started
        all_rate = head / all_time if all_time else math.nan
        timings: dict[str, tuple[int, float]] = {}
        for name in c.engine.projections:
            started = time.perf_counter()
            count = c.engine.rebuild(name, c.log_batches())
            timings[name] = (count, time.perf_counter() - started)
        ids = iter(row_ids(False)[-(len(timings) + 2) :])  # 4a, 4b, ...
        self.rows.append(
            Row(
                next(ids),
                f"Rebuild all {len(timings)} read models in one pass "
                f"({head:,} events): log events/s",
                _rate(all_rate),
                "reading the log: container.read_log batches",
                _rate(read_rate),
                _ratio(all_rate, read_rate),
                "≥ 30,000/s",
            )
        )
        for name, (count, took) in timings.items():
            rate = count / took if took else math.nan
            self.rows.append(
                Row(
                    next(ids),
                    f"  rebuild {name} alone: events/s",
                    _rate(rate),
                    "container.read_log batches",
                    _rate(read_rate),
                    _ratio(rate, read_rate),
                    "≥ 30,000/s",
                )
            )
        self.rows.append(
            Row(
                next(ids),
                "Reading the log decoded (read_log → EventRecord): events/s",
                _rate(read_rate),
                "recorder.select_notifications, raw rows",
                _rate(raw_rate),
                _ratio(read_rate, raw_rate),
            )
        )
        # Every scan loads its channel code: without snapshots or a cache, the cost grows with
        # the number of scans the code has had.
        app = c.customers
        busiest = max(
            (app.repository.get(UUID(code)) for code in self.codes["lag0"]),
            key=lambda code: code.version,
        )
        fresh = app.repository.get(UUID(self.codes["topup"][-1]))
        self.notes.append(
            "loading a channel code (repository.get, best of 3): "
            f"{busiest.version:,} events in {_time_load(app, busiest.id) * 1000:.1f} ms, "
            f"{fresh.version:,} events in {_time_load(app, fresh.id) * 1000:.1f} ms"
        )

    # --- the run -------------------------------------------------------------------------

    def run(self) -> None:
        self.supervisor.start()
        self.setup()
        for name, phase in (
            ("HTTP", self.phase_http),
            ("direct appends", self.phase_direct),
            ("commit → read model", self.phase_lag),
            ("rebuild", self.phase_rebuild),
        ):
            started = time.perf_counter()
            try:
                phase()
            except Exception as exc:
                self.failures.append(f"{name}: {type(exc).__name__}: {exc}")
                self.err.print(f"[red]phase {name} failed[/red]\n{traceback.format_exc()}")
            self.notes.append(f"phase {name}: {time.perf_counter() - started:.1f} s wall")

    def table(self, quick: bool) -> Table:
        plan = self.plan
        table = Table(
            title=f"scrm bench ({'quick' if quick else 'full'}; {os.cpu_count()} CPUs, "
            f"{plan.clients} clients; baselines measured in this run)",
            title_justify="left",
        )
        for name, kw in (
            ("#", {"no_wrap": True}),
            ("figure", {}),
            ("scrm", {"justify": "right"}),
            ("raw baseline", {}),
            ("baseline", {"justify": "right"}),
            ("ratio", {"justify": "right"}),
            ("target", {}),
        ):
            table.add_column(name, **kw)  # type: ignore[arg-type]
        for r in self.rows:
            table.add_row(r.id, r.figure, r.value, r.baseline, r.baseline_value, r.ratio, r.target)
        return table


def _time_load(app: Any, aggregate_id: UUID, repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        app.repository.get(aggregate_id)
        best = min(best, time.perf_counter() - started)
    return best


async def _raw_bus(
    nats_url: str, stream: str, subject: str, rate: int, seconds: float, payload: bytes
) -> tuple[list[float], list[float], int]:
    """Publish at a steady rate; a push consumer and a pull consumer (fetch(500, 0.5), like
    the projector) timestamp receipt. Returns (push latencies, pull latencies, sent)."""
    import nats
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    n = max(1, int(rate * seconds))
    sent = [math.nan] * n
    push_lat: list[float] = []
    pull_lat: list[float] = []
    nc = await nats.connect(nats_url, connect_timeout=3, allow_reconnect=False)
    try:
        js = nc.jetstream()

        async def on_push(msg: Any) -> None:
            push_lat.append(time.perf_counter() - sent[int(msg.data[:12])])

        push = await js.subscribe(
            subject,
            stream=stream,
            cb=on_push,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        pull = await js.pull_subscribe(
            subject,
            stream=stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.ALL,
                deliver_policy=DeliverPolicy.NEW,
                max_ack_pending=20_000,
                ack_wait=30,
            ),
        )
        stop_at = [math.inf]

        async def pull_loop() -> None:
            hard = time.perf_counter() + seconds * 3 + 15
            while len(pull_lat) < n and time.perf_counter() < min(stop_at[0], hard):
                try:
                    msgs = await pull.fetch(500, timeout=0.5)
                except (TimeoutError, NatsTimeout):
                    continue
                now = time.perf_counter()
                for m in msgs:
                    pull_lat.append(now - sent[int(m.data[:12])])
                await msgs[-1].ack()

        puller = asyncio.create_task(pull_loop())
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[i] = time.perf_counter()
            await js.publish(subject, f"{i:012d}".encode() + payload)
        stop_at[0] = time.perf_counter() + 5
        await puller
        for _ in range(500):  # the push side: bounded wait for the tail
            if len(push_lat) >= n:
                break
            await asyncio.sleep(0.01)
        with contextlib.suppress(Exception):
            await push.unsubscribe()
        with contextlib.suppress(Exception):
            await pull.unsubscribe()
    finally:
        await nc.close()
    return push_lat, pull_lat, n


def _admin_url(settings: Settings) -> str:
    if not settings.database_url:
        return DEFAULT_PG
    return _with_db(settings.database_url, "postgres")


def _services_problem(admin_url: str, nats_url: str) -> str | None:
    try:
        with psycopg.connect(admin_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable ({type(exc).__name__}); scrm bench needs it"

    async def ping() -> None:
        import nats

        nc = await nats.connect(nats_url, connect_timeout=3, allow_reconnect=False)
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        asyncio.run(ping())
    except Exception as exc:
        why = type(exc).__name__
        return f"NATS JetStream at {nats_url} is not usable ({why}); scrm bench needs it"
    return None


def run_bench(settings: Settings, quick: bool = False) -> int:
    """Run the benchmark and print its table. 0 when every figure was measured, 1 when a phase
    failed, 2 when PostgreSQL or NATS is missing. Targets are printed, never enforced."""
    plan = QUICK if quick else FULL
    out = Console(width=None if sys.stdout.isatty() else 180)
    err = Console(stderr=True)
    admin_url = _admin_url(settings)
    nats_url = settings.nats_url or DEFAULT_NATS
    problem = _services_problem(admin_url, nats_url)
    if problem:
        err.print(f"[red]{problem}[/red]")
        return 2
    bench = _Bench(plan, admin_url, nats_url, err)
    started = time.perf_counter()
    try:
        bench.run()
    except Exception as exc:
        bench.failures.append(f"set-up: {type(exc).__name__}: {exc}")
        err.print(f"[red]bench set-up failed[/red]\n{traceback.format_exc()}")
    finally:
        bench.cleanup()
    out.print(bench.table(quick))
    out.print("ratio = scrm ÷ baseline (throughput: higher is better; latency: lower is better)")
    for note in bench.notes:
        out.print(f"  • {note}")
    for (name, why), n in Counter((name, why) for name, _, why in bench.crashes).items():
        out.print(f"[yellow]  ! {name} crashed {n}× and was restarted: {why}[/yellow]")
    out.print(f"  • total {time.perf_counter() - started:.0f} s")
    for failure in bench.failures:
        out.print(f"[red]  ✗ {failure}[/red]")
    return 1 if bench.failures else 0


def _serve(host: str, port: int) -> None:
    """The API subprocess: the real app over a server-mode container from the environment."""
    import uvicorn

    from api.main import create_app
    from infra.bootstrap import bootstrap

    container = bootstrap(Settings())
    try:
        uvicorn.run(
            create_app(container=container),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
        )
    finally:
        container.close()


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
