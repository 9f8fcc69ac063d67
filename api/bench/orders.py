"""Phase 6: e-commerce orders (issue 4).

6a: bulk import. N Taobao payloads (the recorded `tmall_3_suborders_paid.json`, three paid
lines, with its trade, line, buyer and phone varied per order; 5,000 distinct buyers) go
through `snapshots()` (the platform adapter and the payload digest) and
`OrdersApp.receive_batch`, 500 per transaction, exactly as `scrm orders import` does. Beside
raw psycopg `executemany` of one row per order (its payload as JSON, ~2 KB), 500 rows per
transaction, into the same database.
6b-6d: push accepted → visible, server mode. The API (uvicorn subprocess), `scrm relay` and
`scrm project` (subprocesses, as phase 3 runs them); issuer threads POST one order each to
`/v1/integrations/orders/taobao` with an admin token at a steady rate, and each push is timed
from its 200 (which carries the order's log position) until every read model (the orders read
model and the portrait among them) has reached that position (phase 3's `Visibility` watcher,
~1 ms polls), split at the moment the position first appears on the bus (`BusTap`). Beside raw
JetStream publish → consume at the same rate, measured in the same run (`raw_bus`).

`scrm orders bench` runs this phase alone (PostgreSQL and NATS needed).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import orjson
import psycopg

from api.bench.baselines import raw_bus
from api.bench.commands import _start_api
from api.bench.context import Bench
from api.bench.lag import PROCS, _wait_visible
from api.bench.probes import BusTap, Visibility
from api.bench.table import Row, fmt_lat, fmt_lat_ratio, fmt_rate, fmt_ratio
from domain.shared import Meta

BATCH = 500
BUYERS = 5_000
FIXTURE = (
    Path(__file__).resolve().parents[2] / "tests/fixtures/orders/taobao/tmall_3_suborders_paid.json"
)


def _template() -> dict[str, Any]:
    return orjson.loads(FIXTURE.read_bytes())


def order_payload(template: dict[str, Any], tag: str, n: int) -> dict[str, Any]:
    """The fixture as the n-th order of this run: its own trade and line ids; buyer and
    receiver phone shared by every BUYERS-th order."""
    payload = orjson.loads(orjson.dumps(template))  # a deep copy
    trade = payload["trade_fullinfo_get_response"]["trade"]
    tid = f"9{int(tag[:6], 16):08d}{n:09d}"
    trade["tid"] = int(tid)
    trade["tid_str"] = tid
    buyer = n % BUYERS
    trade["buyer_open_uid"] = f"AAbench{tag}-{buyer:06d}"
    trade["receiver_mobile"] = f"139{buyer:08d}"
    for k, sub in enumerate(trade["orders"]["order"]):
        sub["oid"] = int(f"{tid}{k}")
        sub["oid_str"] = f"{tid}{k}"
    return payload


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


def _start_processes(bench: Bench) -> str:
    """API, relay and projector; returns the API's base URL once the relay has published
    the log so far (so the projector's start does not race the relay's bootstrap)."""
    base = _start_api(bench)
    head = bench.container.head()
    bench.say(f"phase 6: starting `scrm relay` (log head {head:,}) and `scrm project`")
    bench.procs.spawn("relay", ["-m", "api.cli", "relay"], supervised=True)
    deadline = time.monotonic() + bench.plan.catch_up_timeout
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
    return base


def _pushes(bench: Bench, base: str, tap: BusTap) -> dict[str, Any]:
    """Pushes at plan.orders_rate for plan.orders_seconds, each timed from its 200 until
    every read model has reached its position."""
    plan, c = bench.plan, bench.container
    names = list(c.engine.projections)
    token = c.tokens.create("admin", subject="bench-orders")
    rate, issuers = plan.orders_rate, plan.orders_issuers
    total = max(1, int(rate * plan.orders_seconds))
    template = _template()
    tag = bench.scratch.tag + "p"
    bodies = [orjson.dumps(order_payload(template, tag, i)) for i in range(total + 1)]
    watcher = Visibility(bench.scratch.db_url, names, plan.poll_interval)
    http_lat: list[float] = []
    lateness: list[float] = []
    errors: Counter[str] = Counter()
    url = f"{base}/v1/integrations/orders/taobao"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        took = _wait_visible(bench, watcher, c.head(), plan.catch_up_timeout)
        bench.say(f"phase 6: relay + projector caught up in {took:.1f} s")
        tap.start()
        if not tap.ready.wait(10) or tap.error is not None:
            raise RuntimeError(f"could not tap the bus: {tap.error!r}")
        with httpx.Client(timeout=10.0, trust_env=False) as probe:  # warms the API up
            answer = probe.post(url, content=bodies[total], headers=headers)
            answer.raise_for_status()
        _wait_visible(bench, watcher, int(answer.json()["position"]), plan.startup_timeout)
        time.sleep(0.3)
        bench.say(
            f"phase 6b: {rate} order pushes/s for {plan.orders_seconds:.0f} s, {issuers} issuers"
        )
        watcher.start()
        head0 = c.head()
        t0 = time.perf_counter() + 0.05
        hard_stop = t0 + plan.orders_seconds * 3 + 10

        def issuer(j: int) -> None:
            with httpx.Client(timeout=10.0, trust_env=False, headers=headers) as client:
                for n in range(j, total, issuers):
                    if time.perf_counter() > hard_stop:
                        return
                    delay = t0 + n / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        lateness.append(-delay)
                    try:
                        sent = time.perf_counter()
                        res = client.post(url, content=bodies[n])
                        done = time.perf_counter()
                        if res.status_code != 200:
                            errors[f"HTTP {res.status_code}"] += 1
                            continue
                        watcher.expect(int(res.json()["position"]), done)
                        http_lat.append(done - sent)
                    except Exception as exc:
                        errors[type(exc).__name__] += 1

        threads = [
            threading.Thread(target=issuer, args=(j,), name=f"bench-push-{j}", daemon=True)
            for j in range(issuers)
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=plan.orders_seconds * 3 + 20)
        seconds = time.perf_counter() - t0
        unseen = watcher.finish(timeout=30.0)
        events = max((p for p, _, _ in watcher.samples), default=head0) - head0
        bench.procs.check_alive(*PROCS)
    finally:
        tap.finish()
        if watcher.is_alive():
            watcher.finish(timeout=0)
        elif not watcher.conn.closed:
            watcher.conn.close()
    if watcher.error is not None:
        raise RuntimeError(f"the visibility watcher failed: {watcher.error!r}")
    late = sum(1 for x in lateness if x > 0.005)
    bench.report.notes.append(
        f"phase 6b: {len(http_lat):,} pushes (the log advanced {events:,}) in {seconds:.1f} s = "
        f"{len(http_lat) / seconds:,.0f} orders/s of {rate:,} asked; {late} of {total} pushes "
        f"started > 5 ms behind schedule (max {max(lateness, default=0) * 1000:.0f} ms); "
        f"push request → 200 {fmt_lat(http_lat)}; {watcher.polls:,} polls"
    )
    if errors:
        bench.report.failures.append(f"phase 6b: push errors {dict(errors)}")
    if unseen:
        bench.report.failures.append(f"phase 6b: {unseen} pushes never became visible in 30 s")
    return {
        "samples": list(watcher.samples),
        "pushes": len(http_lat),
        "seconds": seconds,
        "http": http_lat,
    }


def phase_orders(bench: Bench) -> None:
    plan, scratch = bench.plan, bench.scratch
    _bulk_import(bench)
    base = _start_processes(bench)
    tap = BusTap(scratch.nats_url, scratch.stream, scratch.prefix)
    try:
        run = _pushes(bench, base, tap)
    finally:
        for name in ("api", "relay", "projector"):
            bench.procs.stop(name)
    bench.say(f"phase 6: baseline, raw JetStream publish → consume at {plan.orders_rate} msg/s")
    c = bench.container
    payload = c.read_log(max(0, c.head() - 1), 1)[0].body()
    push, pull, _ = raw_bus(
        scratch.nats_url,
        scratch.stream,
        f"{scratch.prefix}.benchraw.orders",
        plan.orders_rate,
        plan.orders_seconds,
        payload,
    )
    samples, bus = run["samples"], tap.seen
    lag = [seen - returned for _, returned, seen in samples]
    via_relay = [bus[p] - r for p, r, _ in samples if p in bus]
    projector = [v - bus[p] for p, _, v in samples if p in bus]
    achieved = run["pushes"] / run["seconds"]
    bench.report.rows += [
        Row(
            "6b",
            f"Order push 200 → visible in every read model (orders, portrait, ...) through "
            f"NATS, {plan.orders_rate:,} orders/s asked, {achieved:,.0f} achieved "
            f"(n={len(lag)})",
            fmt_lat(lag),
            f"raw JetStream publish → push consumer @ {plan.orders_rate:,} msg/s",
            fmt_lat(push),
            fmt_lat_ratio(lag, push),
            "p99 ≤ 100 ms @ 500/s",
        ),
        Row(
            "6c",
            "  of which: push 200 → on the bus (relay)",
            fmt_lat(via_relay),
            "raw JetStream publish → push consumer",
            fmt_lat(push),
            fmt_lat_ratio(via_relay, push),
        ),
        Row(
            "6d",
            "  of which: on the bus → visible (projector, ~1 ms poll)",
            fmt_lat(projector),
            "raw publish → pull consumer fetch(500, timeout=0.5)",
            fmt_lat(pull),
            fmt_lat_ratio(projector, pull),
        ),
    ]
    if not run["http"]:
        bench.report.failures.append("phase 6b: no push succeeded")
