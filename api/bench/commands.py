"""Phases 1 and 2: commands per second and their latency, over HTTP through the real app and
called directly on CustomersApp, each beside psycopg single-row INSERT transactions."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx

from api.bench.baselines import insert_baseline
from api.bench.context import Bench
from api.bench.loop import LoopResult, closed_loop
from api.bench.table import Row, fmt_lat, fmt_lat_ratio, fmt_ms, fmt_rate, fmt_ratio, percentile

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _start_api(bench: Bench) -> str:
    """The API as a uvicorn subprocess (`python -m api.bench HOST PORT`); returns its base
    URL once /healthz answers."""
    port = _free_port()
    bench.procs.spawn("api", ["-m", "api.bench", HOST, str(port)])
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + bench.plan.startup_timeout
    while True:
        bench.procs.check_alive("api")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1, trust_env=False).status_code == 200:
                return base
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API did not answer /healthz:\n{bench.procs.log_tail('api')}")
        time.sleep(0.1)


def _too_many(res: LoopResult) -> bool:
    """More errors than 1% of what succeeded (and more than a handful)."""
    return sum(res.errors.values()) > max(5, res.ok // 100)


def phase_http(bench: Bench) -> None:
    plan, report = bench.plan, bench.report
    bench.say("phase 1: starting the API (uvicorn subprocess)")
    base = _start_api(bench)
    bench.say(f"phase 1: baseline, psycopg single-row INSERT, {plan.clients} connections")
    bench.insert = ins = insert_baseline(bench.scratch.db_url, plan)
    token = bench.container.tokens.create("admin", subject="bench")
    bench.say(f"phase 1: {plan.clients} HTTP clients for {plan.http_seconds:.0f} s")

    def open_client(_: int) -> httpx.Client:
        return httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
            trust_env=False,  # never through a proxy: 127.0.0.1 only
        )

    res = closed_loop(
        plan.clients,
        plan.warmup,
        plan.http_seconds,
        open_client,
        bench.workload.http_command,
        lambda client: client.close(),
        head=bench.container.head,
    )
    bench.procs.stop("api")
    lat = res.all_latencies()
    ev = (res.head_delta or 0) / res.seconds
    base_lat = ins.all_latencies()
    scans, customers = res.latencies.get("scan", []), res.latencies.get("customer", [])
    report.rows += [
        Row(
            "1a",
            f"HTTP commands/s ({plan.clients} clients, scans + add customer)",
            f"{fmt_rate(res.per_second())} ({fmt_rate(ev)} events)",
            f"psycopg 1-row INSERT tx/s ({plan.clients} conns)",
            fmt_rate(ins.per_second()),
            fmt_ratio(res.per_second(), ins.per_second()),
            "≥ 2,500/s",
        ),
        Row(
            "1b",
            "HTTP command latency, all",
            fmt_lat(lat),
            "1-row INSERT tx latency",
            fmt_lat(base_lat),
            fmt_lat_ratio(lat, base_lat),
            "p99 < 50 ms",
        ),
        Row(
            "1c",
            f"  POST /v1/channel-codes/{{id}}/scans (n={len(scans)})",
            fmt_lat(scans),
            "1-row INSERT tx latency",
            fmt_lat(base_lat),
            fmt_lat_ratio(scans, base_lat),
            "p99 < 50 ms",
        ),
        Row(
            "1d",
            f"  POST /v1/customers (n={len(customers)})",
            fmt_lat(customers),
            "1-row INSERT tx latency",
            fmt_lat(base_lat),
            fmt_lat_ratio(customers, base_lat),
            "p99 < 50 ms",
        ),
    ]
    if res.errors:
        report.notes.append(f"HTTP errors: {dict(res.errors)}")
        if _too_many(res):
            report.failures.append(f"phase 1: too many HTTP errors {dict(res.errors)}")
    if ins.errors:
        report.notes.append(f"INSERT baseline errors: {dict(ins.errors)}")


def phase_direct(bench: Bench) -> None:
    plan, report = bench.plan, bench.report
    ins = bench.insert
    if ins is None:  # phase 1 failed before measuring it
        bench.say("phase 2: baseline, psycopg single-row INSERT")
        bench.insert = ins = insert_baseline(bench.scratch.db_url, plan)
    bench.say(
        f"phase 2: {plan.clients} threads calling CustomersApp for {plan.direct_seconds:.0f} s"
    )

    def command(_: None, t: int, i: int) -> tuple[str, str | None]:
        bench.workload.direct_command("direct", 2, t, i)
        return ("scan" if i % 2 == 0 else "customer"), None

    res = closed_loop(
        plan.clients,
        min(plan.warmup, 1.0),
        plan.direct_seconds,
        lambda _: None,
        command,
        head=bench.container.head,
    )
    events = (res.head_delta or 0) / res.seconds
    lat, base_lat = res.all_latencies(), ins.all_latencies()
    scan_p50 = fmt_ms(percentile(res.latencies.get("scan", []), 50))
    customer_p50 = fmt_ms(percentile(res.latencies.get("customer", []), 50))
    report.rows += [
        Row(
            "2a",
            f"Direct CustomersApp commands/s ({plan.clients} threads)",
            fmt_rate(res.per_second()),
            f"psycopg 1-row INSERT tx/s ({plan.clients} conns)",
            fmt_rate(ins.per_second()),
            fmt_ratio(res.per_second(), ins.per_second()),
        ),
        Row(
            "2b",
            "Direct appends: events/s (≈3 events per command, one tx)",
            fmt_rate(events),
            "1-row INSERT rows/s",
            fmt_rate(ins.per_second()),
            fmt_ratio(events, ins.per_second()),
        ),
        Row(
            "2c",
            f"Direct command latency (scan {scan_p50} / customer {customer_p50} ms p50)",
            fmt_lat(lat),
            "1-row INSERT tx latency",
            fmt_lat(base_lat),
            fmt_lat_ratio(lat, base_lat),
        ),
    ]
    if res.errors:
        report.notes.append(f"direct command errors: {dict(res.errors)}")
        if _too_many(res):
            report.failures.append(f"phase 2: too many errors {dict(res.errors)}")
