"""Phase 3: commit → read model visible through `scrm relay`, NATS and `scrm project`, at a
steady event rate, beside raw JetStream publish → receipt at the same rate."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from api.bench.baselines import raw_bus
from api.bench.context import Bench
from api.bench.plan import LAG_EVENTS_PER_COMMAND, row_ids
from api.bench.probes import BusTap, Visibility
from api.bench.table import Row, fmt_lat, fmt_lat_ratio

PROCS = ("relay", "projector")


@dataclass
class Steady:
    """One steady-load run of phase 3."""

    label: str
    asked: int  # events/s
    samples: list[tuple[int, float, float]]  # position, command returned, visible
    bus: dict[int, float]  # position -> first seen on the bus
    seconds: float = math.nan
    events: int = 0
    unseen: int = 0
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


def _wait_visible(bench: Bench, watcher: Visibility, position: int, timeout: float) -> float:
    started = time.perf_counter()
    while watcher.low() < position:
        bench.procs.check_alive(*PROCS)
        if time.perf_counter() - started > timeout:
            raise RuntimeError(
                f"read models did not reach position {position} within {timeout:.0f} s "
                f"(at {watcher.low()})"
            )
        time.sleep(0.01)
    return time.perf_counter() - started


def _wait_for_row(bench: Bench, name: str, sql: str) -> None:
    """Wait until a subprocess has finished bootstrapping (it wrote its row)."""
    deadline = time.monotonic() + bench.plan.startup_timeout
    with psycopg.connect(bench.scratch.db_url, autocommit=True) as conn:
        while True:
            bench.procs.check_alive(name)
            with contextlib.suppress(psycopg.errors.UndefinedTable):
                if conn.execute(sql, (bench.scratch.stream,)).fetchone():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{bench.procs.log_tail(name)}")
            time.sleep(0.05)


def _steady_load(
    bench: Bench, label: str, phase: int, codes: str, tap: BusTap, rate: int
) -> Steady:
    """Commands at `rate` events/s for plan.lag_seconds; each one's position is timed
    until every projection has reached it."""
    plan, workload = bench.plan, bench.workload
    names = list(bench.container.engine.projections)
    cmd_rate = rate / LAG_EVENTS_PER_COMMAND
    total = max(1, int(cmd_rate * plan.lag_seconds))
    watcher = Visibility(bench.scratch.db_url, names, plan.poll_interval)
    try:
        # A probe proves relay and projector are up and idle before the clock starts.
        probe = workload.direct_command(codes, phase, plan.lag_issuers, 0, rich=True)
        _wait_visible(bench, watcher, probe, plan.startup_timeout)
        time.sleep(0.3)
        bench.say(
            f"phase 3 ({label}): {rate} events/s ({cmd_rate:.0f} commands/s) "
            f"for {plan.lag_seconds:.0f} s"
        )
        watcher.start()
        out = Steady(label=label, asked=rate, samples=[], bus=tap.seen)
        head0 = bench.container.head()
        t0 = time.perf_counter() + 0.05
        hard_stop = t0 + plan.lag_seconds * 3 + 10

        def issuer(j: int) -> None:
            # Issuer j sends commands j, j + issuers, ... each at its own slot in the schedule.
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
                    position = workload.direct_command(codes, phase, j, k + 1, rich=True)
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
        out.events = bench.container.head() - head0
        out.unseen = watcher.finish(timeout=20.0)
        bench.procs.check_alive(*PROCS)
    finally:
        if watcher.is_alive():
            watcher.finish(timeout=0)
        elif not watcher.conn.closed:
            watcher.conn.close()
    if watcher.error is not None:
        raise RuntimeError(f"the visibility watcher failed: {watcher.error!r}")
    out.samples = list(watcher.samples)
    late = sum(1 for x in out.lateness if x > 0.005)
    bench.report.notes.append(
        f"phase 3 ({label}): {out.events:,} events in {out.seconds:.1f} s = "
        f"{out.rate:,.0f} events/s of {rate:,} asked; {late} of {total} commands "
        f"started > 5 ms behind schedule (max {max(out.lateness, default=0) * 1000:.0f} ms); "
        f"{watcher.polls:,} polls"
    )
    if out.errors:
        bench.report.failures.append(f"phase 3 ({label}): command errors {dict(out.errors)}")
    if out.unseen:
        bench.report.failures.append(
            f"phase 3 ({label}): {out.unseen} positions never became visible within 20 s"
        )
    return out


def _start_relay_and_projector(bench: Bench) -> None:
    bench.say("phase 3: starting `scrm relay` and `scrm project`")
    bench.procs.spawn("relay", ["-m", "api.cli", "relay"], supervised=True)
    # Not both at once: two bootstraps racing on eventsourcing's CREATE OR REPLACE
    # FUNCTION fail with "tuple concurrently updated" (see notes).
    _wait_for_row(bench, "relay", "SELECT 1 FROM relay_positions WHERE name = %s")
    bench.procs.spawn("projector", ["-m", "api.cli", "project"], supervised=True)


def _catch_up_and_run(bench: Bench, tap: BusTap) -> list[Steady]:
    """Let relay and projector catch up with phases 1-2, then the steady-load runs."""
    plan = bench.plan
    names = list(bench.container.engine.projections)
    backlog = bench.container.head()
    probe = Visibility(bench.scratch.db_url, names, plan.poll_interval)
    try:
        took = _wait_visible(bench, probe, backlog, plan.catch_up_timeout)
    finally:
        probe.conn.close()
    bench.report.notes.append(
        f"relay + projector caught up with the {backlog:,} events of phases 1-2 in "
        f"{took:.1f} s ({backlog / took:,.0f} events/s, including process start-up)"
    )
    bench.say(f"phase 3: caught up with {backlog:,} events in {took:.1f} s")
    tap.start()
    if not tap.ready.wait(10) or tap.error is not None:
        raise RuntimeError(f"could not tap the bus: {tap.error!r}")
    return [
        _steady_load(bench, "scrm relay", 5 + k, f"lag{k}", tap, rate)
        for k, rate in enumerate(plan.lag_rates)
    ]


def phase_lag(bench: Bench) -> None:
    plan, scratch = bench.plan, bench.scratch
    _start_relay_and_projector(bench)
    tap = BusTap(scratch.nats_url, scratch.stream, scratch.prefix)
    try:
        runs = _catch_up_and_run(bench, tap)
    finally:
        tap.finish()
        bench.procs.stop("relay")
        bench.procs.stop("projector")

    bench.say(f"phase 3: baseline, raw JetStream publish → consume at {plan.lag_rate} msg/s")
    container = bench.container
    payload = container.read_log(max(0, container.head() - 1), 1)[0].body()
    push, pull, sent = raw_bus(
        scratch.nats_url,
        scratch.raw_stream,
        f"{scratch.raw_prefix}.ping",
        plan.lag_rate,
        plan.lag_seconds,
        payload,
    )
    ids = iter(i for i in row_ids(False) if i.startswith("3"))
    for run in runs:
        lag, via_relay, projector = run.lag(), run.relay_part(), run.projector_part()
        bench.report.rows += [
            Row(
                next(ids),
                f"Commit → read model visible, {run.label}, {run.asked:,} events/s asked, "
                f"{run.rate:,.0f} achieved (n={len(lag)})",
                fmt_lat(lag),
                f"raw JetStream publish → push consumer @ {plan.lag_rate:,} msg/s",
                fmt_lat(push),
                fmt_lat_ratio(lag, push),
                "p99 ≤ 100 ms @ 1,000/s",
            ),
            Row(
                next(ids),
                "  of which: command returned → on the bus (relay)",
                fmt_lat(via_relay),
                "raw JetStream publish → push consumer",
                fmt_lat(push),
                fmt_lat_ratio(via_relay, push),
            ),
            Row(
                next(ids),
                "  of which: on the bus → visible (projector, ~1 ms poll)",
                fmt_lat(projector),
                "raw publish → pull consumer fetch(500, timeout=0.5)",
                fmt_lat(pull),
                fmt_lat_ratio(projector, pull),
            ),
        ]
    bench.report.rows.append(
        Row(
            next(ids),
            f"Raw pull consumer, fetch(500, timeout=0.5) as the projector does (n={len(pull)})",
            fmt_lat(pull),
            f"raw JetStream publish → push consumer (n={len(push)})",
            fmt_lat(push),
            fmt_lat_ratio(pull, push),
        )
    )
    if len(push) < sent or len(pull) < sent:
        bench.report.notes.append(
            f"raw bus: {sent} published, {len(push)} pushed, {len(pull)} pulled back"
        )
