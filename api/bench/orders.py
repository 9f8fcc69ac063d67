"""Phase 6: e-commerce orders (issue 4).

6a: bulk import. N Taobao payloads (the recorded `tmall_3_suborders_paid.json`, three paid
lines, with its trade, line, buyer and phone varied per order; 5,000 distinct buyers) go
through `snapshots()` (the platform adapter and the payload digest) and
`OrdersApp.receive_batch`, 500 per transaction, exactly as `scrm orders import` does. Beside
raw psycopg `executemany` of one row per order (its payload as JSON, ~2 KB), 500 rows per
transaction, into the same database.

6b-6f: order push accepted → visible, server mode, as a user runs it: the API as
`scrm serve --workers W --no-access-log` (plan.orders_workers processes), `scrm relay` and
`scrm project`, all subprocesses. Pushes are new orders (trade ids no other push or import
uses), POSTed one per request to `/v1/integrations/orders/taobao` with an admin token (the
tenant's relay of Taobao's message service), on a fixed schedule at plan.orders_rate/s
(`openloop`: open loop, at most plan.orders_concurrency in flight). Their buyers are
plan.orders_customers buyers whose receiver phone a customer already has. Each buyer's
first order is imported before anything is timed: it links the buyer to that customer (by
the phone's keyed hash), so every timed push is a known buyer's next order (three events:
OrderPlaced, OrderPaid, the InboxReceipt) and shows on that customer's portrait; a sample
of portraits is checked at the end (their orders count), as a sanity check, not a timing.
Each push is timed from its due time until every read model (the orders read model and the
portrait among them) has reached the position its 200 returned (polled every
plan.orders_poll_interval), split where the position first appears on the bus. Beside raw
JetStream publish → consume at the same rate (on a stream of its own) and a psycopg
single-row INSERT transaction's latency, measured in the same run. The CPU each process
spent per push is noted (`cpu`): on 2 cores that, not any one latency, bounds the rate.
When plan.orders_rate is not sustained (see `OpenLoopRun.sustained`; a run more than
MAX_BEHIND seconds behind its schedule is cut short), up to plan.orders_search more runs at
90 % of the rate last achieved look for the highest rate that is (6f).

`scrm orders bench` runs this phase alone (PostgreSQL and NATS needed); `scrm bench` runs it
last.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import orjson
import psycopg

from api.bench import cpu
from api.bench.baselines import raw_bus
from api.bench.commands import HOST, _free_port
from api.bench.context import Bench
from api.bench.lag import PROCS, _wait_visible
from api.bench.openloop import OpenLoopRun, Target, open_loop
from api.bench.probes import Visibility
from api.bench.table import (
    Row,
    fmt_lat,
    fmt_lat3,
    fmt_lat_ratio,
    fmt_ms,
    fmt_rate,
    fmt_ratio,
    percentile,
)
from domain.shared import Meta

BATCH = 500
BUYERS = 5_000
FIXTURE = (
    Path(__file__).resolve().parents[2] / "tests/fixtures/orders/taobao/tmall_3_suborders_paid.json"
)
# Each kind of order gets trade ids of its own: a push must be a new order, not the
# re-delivery of an imported one (which records nothing but its receipt).
IMPORTED, PUSHED, WARM_UP = 1, 2, 3
# A run whose next push is this late has fallen behind for good: its schedule is cut.
MAX_BEHIND = 5.0


def _template() -> dict[str, Any]:
    return orjson.loads(FIXTURE.read_bytes())


def order_payload(
    template: dict[str, Any],
    tag: str,
    n: int,
    *,
    series: int = IMPORTED,
    buyers: int = BUYERS,
    phone_prefix: str = "139",
) -> dict[str, Any]:
    """The fixture as the n-th order of a series of this run: its own trade and line ids;
    buyer and receiver phone shared by every `buyers`-th order."""
    payload = orjson.loads(orjson.dumps(template))  # a deep copy
    trade = payload["trade_fullinfo_get_response"]["trade"]
    tid = f"9{int(tag[:6], 16):08d}{series}{n:08d}"  # 18 digits: line ids stay in 64 bits
    trade["tid"] = int(tid)
    trade["tid_str"] = tid
    buyer = n % buyers
    trade["buyer_open_uid"] = f"AAbench{tag}-{series}-{buyer:06d}"
    trade["receiver_mobile"] = phone(phone_prefix, buyer)
    for k, sub in enumerate(trade["orders"]["order"]):
        sub["oid"] = int(f"{tid}{k}")
        sub["oid_str"] = f"{tid}{k}"
    return payload


def phone(prefix: str, buyer: int) -> str:
    return f"{prefix}{buyer:08d}"


def _meta(why: str) -> Meta:
    return Meta(
        occurred_at=datetime.now(UTC),
        actor="system:bench",
        source="taobao",
        correlation_id=str(uuid4()),
        causation_id=f"bench:{why}",
    )


def _raw_inserts(db_url: str, payloads: list[dict[str, Any]]) -> float:
    """Rows/s: psycopg executemany of BATCH-row transactions, one row per order payload."""
    rows = [(f"raw-{i}", orjson.dumps(p).decode()) for i, p in enumerate(payloads)]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_orders_raw (id BIGSERIAL PRIMARY KEY,"
            " trade_id TEXT UNIQUE, body TEXT)"
        )
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO bench_orders_raw (trade_id, body) VALUES (%s, %s)",
                    rows[start : start + BATCH],
                )
        return len(rows) / (time.perf_counter() - started)


def _insert_latency(db_url: str, seconds: float) -> list[float]:
    """One connection, single-row INSERT transactions back to back (each a commit): what one
    durable write costs on this machine."""
    body = "x" * 2000  # about one order payload
    out: list[float] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_orders_raw_tx (id BIGSERIAL PRIMARY KEY, body TEXT)"
        )
        stop = time.perf_counter() + seconds
        while (started := time.perf_counter()) < stop:
            conn.execute("INSERT INTO bench_orders_raw_tx (body) VALUES (%s)", (body,))
            out.append(time.perf_counter() - started)
    return out


def _bulk_import(bench: Bench) -> None:
    from api.routes.orders import snapshots

    c, n = bench.container, bench.plan.orders_import
    template = _template()
    payloads = [order_payload(template, bench.scratch.tag + "i", i) for i in range(n)]
    bench.say(f"phase 6a: bulk import of {n:,} Taobao orders, {BATCH} per transaction")
    head0 = c.head()
    applied = 0
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        items = snapshots("taobao", payloads[start : start + BATCH])  # type: ignore[arg-type]
        applied += c.orders.receive_batch(items, _meta(f"orders import {start}")).count("applied")
    elapsed = time.perf_counter() - started
    events = c.head() - head0
    raw = _raw_inserts(bench.scratch.db_url, payloads)
    rate = n / elapsed
    bench.report.rows.append(
        Row(
            "6a",
            f"Bulk order import, Taobao payloads parsed + receive_batch, {BATCH} per tx "
            f"({n:,} orders, {events / n:.1f} events each)",
            f"{fmt_rate(rate)} ({events / elapsed:,.0f} events/s)",
            f"psycopg executemany, {BATCH} rows per tx (one ~2 KB row per order)",
            fmt_rate(raw),
            fmt_ratio(rate, raw),
        )
    )
    if applied != n:
        bench.report.failures.append(f"phase 6a: {applied} of {n} orders applied")


def _seed_customers(bench: Bench) -> list[str]:
    """One customer per push buyer, known by the phone that buyer's orders carry; returns
    their ids by buyer number."""
    c, count = bench.container, bench.plan.orders_customers
    owner = "bench.orders"
    c.customers.register_staff(
        staff_id=owner, name="Bench", department="bench", region="lab", meta=_meta("staff")
    )
    bench.say(f"phase 6: {count:,} customers whose phones the pushed orders will carry")
    ids: list[str] = [""] * count
    errors: Counter[str] = Counter()

    def add(first: int, step: int) -> None:
        for k in range(first, count, step):
            try:
                ids[k] = c.customers.add_customer(
                    identities=[("phone", phone("138", k))],
                    tags=["bench"],
                    owner=owner,
                    meta=_meta("customer"),
                ).id
            except Exception as exc:
                errors[type(exc).__name__] += 1

    pool = [threading.Thread(target=add, args=(t, 4), daemon=True) for t in range(4)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout=600)
    if errors:
        raise RuntimeError(f"seeding customers failed: {dict(errors)}")
    return ids


def _start_processes(bench: Bench) -> int:
    """`scrm serve --workers W --no-access-log`, then relay and projector; returns the API's
    port once it answers and the relay has published the log so far (so the projector's
    start does not race the relay's bootstrap)."""
    plan = bench.plan
    port = _free_port()
    bench.say(f"phase 6: starting `scrm serve --workers {plan.orders_workers}`")
    bench.procs.spawn(
        "api",
        [
            "-m",
            "api.cli",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(plan.orders_workers),
            "--no-access-log",
        ],
    )
    deadline = time.monotonic() + plan.startup_timeout
    while True:
        bench.procs.check_alive("api")
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1, trust_env=False).is_success:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API did not answer /healthz:\n{bench.procs.log_tail('api')}")
        time.sleep(0.1)
    head = bench.container.head()
    bench.say(f"phase 6: starting `scrm relay` (log head {head:,}) and `scrm project`")
    bench.procs.spawn("relay", ["-m", "api.cli", "relay"], supervised=True)
    deadline = time.monotonic() + plan.catch_up_timeout
    with psycopg.connect(bench.scratch.db_url, autocommit=True) as conn:
        while True:
            bench.procs.check_alive("relay")
            try:
                row = conn.execute(
                    "SELECT position FROM relay_positions WHERE name = %s",
                    (bench.scratch.stream,),
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
            if row and int(row[0]) >= head:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"relay did not catch up:\n{bench.procs.log_tail('relay')}")
            time.sleep(0.05)
    bench.procs.spawn("projector", ["-m", "api.cli", "project"], supervised=True)
    return port


class _Pushes:
    """Numbers the pushes of every run of this phase, so each is a new order."""

    def __init__(self, bench: Bench):
        self.template = _template()
        self.tag = bench.scratch.tag + "p"
        self.buyers = bench.plan.orders_customers
        self.next = 0
        self.warmed = 0
        self.per_buyer: Counter[int] = Counter()  # orders recorded, by buyer

    def link_buyers(self, bench: Bench) -> None:
        """Every buyer's first order, imported (500 per transaction) before anything is
        measured: it links the buyer to the customer who has their phone. The pushes timed
        are then all a known buyer's next order (3 events each), in every run alike, as a
        shop's steady traffic mostly is; a buyer's first order costs more (a data key, the
        link) and would otherwise weigh differently in runs of different lengths."""
        from api.routes.orders import snapshots

        c = bench.container
        first, bodies = self.bodies(self.buyers)
        for start in range(0, len(bodies), BATCH):
            chunk = [orjson.loads(b) for b in bodies[start : start + BATCH]]
            result = c.orders.receive_batch(snapshots("taobao", chunk), _meta("first orders"))
            if result.count("applied") != len(chunk):
                raise RuntimeError("the buyers' first orders were not all applied")
        for n in range(first, first + len(bodies)):
            self.per_buyer[n % self.buyers] += 1

    def bodies(self, count: int) -> tuple[int, list[bytes]]:
        first, self.next = self.next, self.next + count
        return first, [
            orjson.dumps(
                order_payload(
                    self.template,
                    self.tag,
                    n,
                    series=PUSHED,
                    buyers=self.buyers,
                    phone_prefix="138",
                )
            )
            for n in range(first, first + count)
        ]

    def warm_up(self, count: int) -> list[bytes]:
        # Buyers of their own, whose phones no customer has: the warm-up links nobody.
        first, self.warmed = self.warmed, self.warmed + count
        return [
            orjson.dumps(
                order_payload(self.template, self.tag, n, series=WARM_UP, phone_prefix="137")
            )
            for n in range(first, first + count)
        ]


def _run(bench: Bench, target: Target, pushes: _Pushes, rate: int, seconds: float) -> OpenLoopRun:
    c = bench.container
    first, bodies = pushes.bodies(max(1, int(rate * seconds)))
    bench.say(
        f"phase 6b: {rate} order pushes/s for {seconds:.0f} s, ≤ {target.concurrency} in flight"
    )
    failures: Counter[str] = Counter()

    def on_error(status: int, answer: bytes) -> None:
        failures[f"{status}: {answer[:200].decode(errors='replace')}"] += 1

    probe = _cpu_probe(bench)
    clock: dict[str, float] = {}

    def start() -> None:
        clock["head"], clock["wall"] = c.head(), time.perf_counter()
        clock["busy"], clock["total"] = cpu.machine()
        probe.begin()

    def end() -> None:
        clock["spent_wall"] = time.perf_counter() - clock["wall"]
        clock["events"] = c.head() - clock["head"]
        clock.update(probe.end())
        busy, total = cpu.machine()
        clock["machine"] = (busy - clock["busy"]) / max(total - clock["total"], 1e-9)

    run = open_loop(
        target,
        bodies,
        rate,
        warmup=pushes.warm_up(target.concurrency),
        settle=bench.plan.catch_up_timeout,
        on_error=on_error,
        marks=(start, end),
        max_behind=MAX_BEHIND,
    )
    bench.procs.check_alive(*PROCS)
    events = int(clock.get("events", 0))
    for n, request in enumerate(run.requests):
        if request.error is None and request.position is not None:
            pushes.per_buyer[(first + n) % pushes.buyers] += 1
    ok = len(run.answered())
    lateness = run.lateness()
    http = run.http()
    cut = (
        f", the schedule cut after {run.cut_after:.1f} s ({run.stopped:,} never sent: the "
        f"next was over {MAX_BEHIND:.0f} s late)"
        if run.stopped
        else ""
    )
    bench.report.notes.append(
        f"phase 6 push run @ {rate:,}/s for {seconds:.0f} s: {ok:,} of {len(bodies):,} pushes "
        f"answered 200{cut}, {len(run.visible()):,} seen in every read model; "
        f"{run.achieved():,.0f}/s achieved ({'sustained' if run.sustained() else 'NOT sustained'}"
        f"); the log advanced {events:,} events ({events / max(ok, 1):.2f} per push: "
        "OrderPlaced, OrderPaid and the InboxReceipt); sent late: p99 "
        f"{fmt_ms(percentile(lateness, 99))} / max "
        f"{fmt_ms(max(lateness, default=math.nan))} ms; due → visible {fmt_lat(run.lag())}, "
        f"of which due → on the bus {fmt_lat(run.relay_part())} and on the bus → visible "
        f"{fmt_lat(run.projector_part())}; request → 200 {fmt_lat(http)}; {run.polls:,} polls"
    )
    if ok and CPU_GROUPS[0] in clock:
        spent = {name: clock[name] for name in CPU_GROUPS}
        total = sum(spent.values())
        share = total / (clock["spent_wall"] * (os.cpu_count() or 1))
        bench.report.notes.append(
            f"phase 6 push run @ {rate:,}/s, CPU per push (ms): "
            + ", ".join(f"{name} {t / ok * 1000:.2f}" for name, t in spent.items())
            + f"; total {total / ok * 1000:.2f} ms per push. These processes used "
            f"{share:.0%} of the machine's {os.cpu_count()} cores over the run; the machine "
            f"was {clock['machine']:.0%} busy in all (the rest: other work on it)"
        )
    if run.errors():
        bench.report.failures.append(f"phase 6 @ {rate}/s: push errors {dict(run.errors())}")
        for what, count in failures.most_common(3):
            bench.report.notes.append(f"phase 6 @ {rate}/s: {count}× HTTP {what}")
    if run.unseen:
        bench.report.failures.append(
            f"phase 6 @ {rate}/s: {run.unseen} pushes never became visible"
        )
    return run


CPU_GROUPS = ("API", "PostgreSQL", "relay", "projector", "NATS", "bench process")


def _cpu_probe(bench: Bench) -> cpu.Probe:
    """CPU seconds of everything a push involves, by process (see `cpu`)."""

    def proc(name: str) -> Callable[[], list[int]]:
        def pids() -> list[int]:
            found = bench.procs.procs.get(name)
            return cpu.tree(found.pid) if found is not None else []

        return pids

    groups = {
        "API": proc("api"),
        "PostgreSQL": lambda: cpu.matching("postgres:", bench.scratch.db_name),
        "relay": proc("relay"),
        "projector": proc("projector"),
        "NATS": lambda: cpu.matching("nats-server"),
        "bench process": lambda: [os.getpid()],
    }
    return cpu.Probe(groups)


def _check_portraits(bench: Bench, port: int, token: str, ids: list[str], pushes: _Pushes) -> None:
    """A sample of the customers: their portrait counts every order pushed for their buyer
    (read with min_position, so after the projector caught up). Not a timing."""
    c = bench.container
    sample = sorted(pushes.per_buyer)[:: max(1, len(pushes.per_buyer) // 20)][:20]
    wrong: list[str] = []
    with httpx.Client(
        base_url=f"http://{HOST}:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
        trust_env=False,
    ) as client:
        for buyer in sample:
            answer = client.get(
                f"/v1/customers/{ids[buyer]}/portrait", params={"min_position": c.head()}
            )
            count = (answer.json().get("orders") or {}).get("count") if answer.is_success else None
            if count != pushes.per_buyer[buyer]:
                wrong.append(f"{ids[buyer]}: {count!r} of {pushes.per_buyer[buyer]}")
    bench.report.notes.append(
        f"phase 6 portraits: {len(sample) - len(wrong)} of {len(sample)} sampled customers "
        "show every order of their buyer"
    )
    if wrong:
        bench.report.failures.append(f"phase 6 portraits: wrong order counts {wrong[:5]}")


def phase_orders(bench: Bench) -> None:
    plan, scratch, c = bench.plan, bench.scratch, bench.container
    if hasattr(os, "getloadavg"):
        bench.report.notes.append(
            "phase 6 began with load averages " + " / ".join(f"{x:.2f}" for x in os.getloadavg())
        )
    _bulk_import(bench)
    customers = _seed_customers(bench)
    pushes = _Pushes(bench)
    pushes.link_buyers(bench)
    port = _start_processes(bench)
    token = c.tokens.create("admin", subject="bench-orders")
    target = Target(
        host=HOST,
        port=port,
        path="/v1/integrations/orders/taobao",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        db_url=scratch.db_url,
        names=list(c.engine.projections),
        nats_url=scratch.nats_url,
        stream=scratch.stream,
        prefix=scratch.prefix,
        interval=plan.orders_poll_interval,
        concurrency=plan.orders_concurrency,
    )
    runs: list[OpenLoopRun] = []
    relaxed: OpenLoopRun | None = None
    try:
        watcher = Visibility(scratch.db_url, target.names, plan.poll_interval)
        try:
            took = _wait_visible(bench, watcher, c.head(), plan.catch_up_timeout)
        except RuntimeError as exc:
            raise RuntimeError(
                f"{exc}; positions {c.engine.positions()}\nprojector log:\n"
                f"{bench.procs.log_tail('projector', 40)}\nrelay log:\n"
                f"{bench.procs.log_tail('relay', 10)}"
            ) from None
        finally:
            watcher.conn.close()
        bench.report.notes.append(
            f"phase 6: relay + projector caught up with the log ({c.head():,} events) in "
            f"{took:.1f} s"
        )
        bench.say(f"phase 6: relay + projector caught up in {took:.1f} s")
        runs.append(_run(bench, target, pushes, plan.orders_rate, plan.orders_seconds))
        rate = plan.orders_rate
        for _ in range(plan.orders_search):
            last = runs[-1]
            if last.sustained():
                break
            rate = max(10, int(0.9 * last.achieved()) // 10 * 10)
            if rate >= last.asked:
                rate = max(10, int(last.asked * 0.8) // 10 * 10)
            runs.append(_run(bench, target, pushes, rate, plan.orders_search_seconds))
        # At the highest rate sustained the machine is saturated and requests queue; half
        # of it shows the latency of a system with room to spare (6g).
        best = _best(runs)
        if best is not None and best.asked < plan.orders_rate:
            half = max(10, int(best.asked / 2) // 10 * 10)
            relaxed = _run(bench, target, pushes, half, plan.orders_search_seconds)
        _check_portraits(bench, port, token, customers, pushes)
    finally:
        for name in ("api", "relay", "projector"):
            bench.procs.stop(name)

    bench.say(f"phase 6: baselines, raw JetStream publish → consume at {plan.orders_rate} msg/s")
    payload = c.read_log(max(0, c.head() - 1), 1)[0].body()
    push, pull, _ = raw_bus(
        scratch.nats_url,
        scratch.raw_stream,
        f"{scratch.raw_prefix}.orders",
        plan.orders_rate,
        plan.orders_seconds,
        payload,
    )
    insert = _insert_latency(scratch.db_url, min(plan.orders_seconds, 3.0))
    first, best = runs[0], _best(runs)
    lag, via_relay, projector = first.lag(), first.relay_part(), first.projector_part()
    raw = f"raw JetStream publish → push consumer @ {plan.orders_rate:,} msg/s"
    bench.report.rows += [
        Row(
            "6b",
            f"Order push due → visible in every read model (orders, portrait, ...) through "
            f"NATS, {first.asked:,.0f} pushes/s asked, {first.achieved():,.0f} achieved "
            f"(n={len(lag):,}; {plan.orders_workers} API workers)",
            fmt_lat3(lag),
            raw,
            fmt_lat3(push),
            fmt_lat_ratio(lag, push),
            "p99 ≤ 100 ms @ 500/s",
        ),
        Row(
            "6c",
            "  of which: due → on the bus (HTTP, API, commit, relay)",
            fmt_lat3(via_relay),
            "raw JetStream publish → push consumer",
            fmt_lat3(push),
            fmt_lat_ratio(via_relay, push),
        ),
        Row(
            "6d",
            f"  of which: on the bus → visible (projector, "
            f"~{plan.orders_poll_interval * 1000:.0f} ms poll)",
            fmt_lat3(projector),
            "raw publish → pull consumer fetch(500, timeout=0.5)",
            fmt_lat3(pull),
            fmt_lat_ratio(projector, pull),
        ),
        Row(
            "6e",
            f"Push request → 200 (HTTP), same run, {first.asked:,.0f}/s asked",
            fmt_lat3(first.http()),
            "psycopg 1-row INSERT tx latency, 1 connection",
            fmt_lat3(insert),
            fmt_lat_ratio(first.http(), insert),
        ),
    ]
    if best is None:
        searched = ", ".join(f"{r.asked:,.0f}" for r in runs)
        bench.report.rows.append(
            Row(
                "6f",
                f"Highest push rate sustained: none of {searched}/s was (see notes)",
                "—",
                raw,
                fmt_lat3(push),
                "—",
                "500/s",
            )
        )
    else:
        lag = best.lag()
        bench.report.rows.append(
            Row(
                "6f",
                f"Highest push rate sustained (of {', '.join(f'{r.asked:,.0f}' for r in runs)}"
                f"/s asked): {best.asked:,.0f}/s, {best.achieved():,.0f} achieved, due → "
                f"visible (n={len(lag):,})",
                fmt_lat3(lag),
                raw,
                fmt_lat3(push),
                fmt_lat_ratio(lag, push),
                "500/s",
            )
        )
    if relaxed is None:
        why = "the rate asked was sustained" if first.sustained() else "no rate was sustained"
        bench.report.rows.append(
            Row("6g", f"At half the highest rate sustained: not run ({why})", "—", raw, "—", "—")
        )
    else:
        lag = relaxed.lag()
        bench.report.rows.append(
            Row(
                "6g",
                f"At half the highest rate sustained: {relaxed.asked:,.0f}/s asked, "
                f"{relaxed.achieved():,.0f} achieved, due → visible (n={len(lag):,}; request → "
                f"200 {fmt_lat(relaxed.http())})",
                fmt_lat3(lag),
                raw,
                fmt_lat3(push),
                fmt_lat_ratio(lag, push),
                "p99 ≤ 100 ms",
            )
        )
    if not first.http():
        bench.report.failures.append("phase 6b: no push succeeded")


def _best(runs: list[OpenLoopRun]) -> OpenLoopRun | None:
    """The run at the highest rate asked that was sustained."""
    return max((r for r in runs if r.sustained()), key=lambda r: r.asked, default=None)
