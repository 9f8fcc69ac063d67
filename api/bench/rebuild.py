"""Phase 4: rebuilding the read models over the whole log, all in one pass and then each
alone, beside reading the same log (decoded, and as the recorder's raw rows)."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any
from uuid import UUID

from api.bench.context import Bench
from api.bench.plan import EVENTS_PER_COMMAND, row_ids
from api.bench.table import Row, fmt_rate, fmt_ratio

if TYPE_CHECKING:
    from domain.customers.aggregates import ChannelCode


def _top_up(bench: Bench) -> None:
    """Append direct commands until the log holds plan.min_log_events (a rebuild over a
    short log measures start-up, not throughput)."""
    plan = bench.plan
    missing = plan.min_log_events - bench.container.head()
    if missing <= 0:
        return
    per_thread = math.ceil(missing / EVENTS_PER_COMMAND / plan.clients)
    bench.say(f"phase 4: topping the log up by ~{missing:,} events")
    deadline = time.perf_counter() + 240
    errors: Counter[str] = Counter()

    def fill(t: int) -> None:
        for i in range(per_thread):
            if time.perf_counter() > deadline:
                return
            try:
                bench.workload.direct_command("topup", 4, t, i)
            except Exception as exc:
                errors[type(exc).__name__] += 1

    pool = [threading.Thread(target=fill, args=(t,), daemon=True) for t in range(plan.clients)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout=300)
    if errors:
        bench.report.notes.append(f"top-up errors: {dict(errors)}")


def _time_load(app: Any, aggregate_id: UUID, repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        app.repository.get(aggregate_id)
        best = min(best, time.perf_counter() - started)
    return best


def phase_rebuild(bench: Bench) -> None:
    c = bench.container
    _top_up(bench)
    head = c.head()
    bench.say(f"phase 4: reading and rebuilding over {head:,} events")
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
    ids = iter(i for i in row_ids(False) if i.startswith("4"))
    rows = bench.report.rows
    rows.append(
        Row(
            next(ids),
            f"Rebuild all {len(timings)} read models in one pass ({head:,} events): log events/s",
            fmt_rate(all_rate),
            "reading the log: container.read_log batches",
            fmt_rate(read_rate),
            fmt_ratio(all_rate, read_rate),
            "≥ 30,000/s",
        )
    )
    for name, (count, took) in timings.items():
        rate = count / took if took else math.nan
        rows.append(
            Row(
                next(ids),
                f"  rebuild {name} alone: events/s",
                fmt_rate(rate),
                "container.read_log batches",
                fmt_rate(read_rate),
                fmt_ratio(rate, read_rate),
                "≥ 30,000/s",
            )
        )
    rows.append(
        Row(
            next(ids),
            "Reading the log decoded (read_log → EventRecord): events/s",
            fmt_rate(read_rate),
            "recorder.select_notifications, raw rows",
            fmt_rate(raw_rate),
            fmt_ratio(read_rate, raw_rate),
        )
    )
    # Every scan loads its channel code: without snapshots or a cache, the cost grows with
    # the number of scans the code has had.
    app = c.customers
    codes = bench.workload.codes
    busiest: ChannelCode = max(
        (app.repository.get(UUID(code)) for code in codes["lag0"]),
        key=lambda code: code.version,
    )
    fresh: ChannelCode = app.repository.get(UUID(codes["topup"][-1]))
    bench.report.notes.append(
        "loading a channel code (repository.get, best of 3): "
        f"{busiest.version:,} events in {_time_load(app, busiest.id) * 1000:.1f} ms, "
        f"{fresh.version:,} events in {_time_load(app, fresh.id) * 1000:.1f} ms"
    )
