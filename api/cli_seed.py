"""`scrm seed` (a benchmark tenant, api/bench/seed.py) and the benchmarks that run over it:
`scrm bench dashboards`, `scrm bench automation-sweep` (api/bench/dashboards.py). They use the
store the settings name (the embedded default, or SCRM_DATABASE_URL), not a scratch one."""

from __future__ import annotations

import time
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.cli_support import err, log_progress
from infra.bootstrap import Container, bootstrap
from infra.settings import Settings


def project(c: Container) -> tuple[int, float]:
    """Every read model up to the log's head, one transaction per 2,000 events (what the
    embedded follower and `scrm project` do); the log followers that record events of their
    own (loyalty, settlement, automation) are left to `scrm serve` / `scrm project`."""
    behind = c.head() - c.engine.low_water_mark()
    started = time.perf_counter()
    done = 0
    with log_progress("read models", total=max(behind, 1)) as bar:
        while True:
            records = c.read_log(c.engine.low_water_mark(), 2000)
            if not records:
                break
            c.engine.apply_batch(records)
            bar.advance(len(records))
            done += len(records)
    return done, time.perf_counter() - started


def seed(
    customers: Annotated[int, typer.Option(min=10, help="customers to create")] = 20_000,
    events: Annotated[int, typer.Option(min=100, help="events in total (about)")] = 200_000,
    seed: Annotated[int, typer.Option(min=0, max=99, help="the random seed")] = 42,
    days: Annotated[int, typer.Option(min=1, max=3650, help="business days, ending now")] = 365,
) -> None:
    """Fill an empty store with a realistic tenant (staff, channel codes, customers from
    scans, orders, conversations, tickets, coupons, points) through the domain, then bring
    the read models up to date. Deterministic for a seed. docs/benchmarks.md."""
    from api.bench.seed import SeedPlan, Tenant

    c = bootstrap(Settings())
    try:
        if c.head() > 0:
            err.print(
                f"[red]scrm seed needs an empty store; this one has {c.head():,} events[/red]"
            )
            raise typer.Exit(2)
        with Progress(
            TextColumn("seed"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
        ) as progress:
            task = progress.add_task("seed", total=events)
            tenant = Tenant(
                c, SeedPlan(customers, events, seed, days), lambda n: progress.advance(task, n)
            )
            result = tenant.run()
        projected, seconds = project(c)
    finally:
        c.close()
    mix = ", ".join(f"{k} {v:,}" for k, v in sorted(result.counts.items()))
    typer.echo(
        f"seeded {result.events:,} events, {result.customers:,} customers in"
        f" {result.seconds:,.1f} s ({result.events / result.seconds:,.0f} events/s); {mix}"
    )
    typer.echo(
        f"read models: {projected:,} events in {seconds:,.1f} s"
        f" ({projected / max(seconds, 1e-9):,.0f} events/s); head {result.head}"
    )


def _current(c: Container) -> None:
    if c.head() > c.engine.low_water_mark():
        project(c)


def bench_dashboards(
    requests: Annotated[int, typer.Option(min=1, help="measured requests per endpoint")] = 200,
) -> None:
    """Every dashboard's latency (p50/p95/p99/max, varied date ranges) over the store
    (`scrm seed` one first), beside /healthz and raw queries measured in the same run."""
    from api.bench.dashboards import run_dashboards

    c = bootstrap(Settings())
    try:
        _current(c)
        code = run_dashboards(c, requests, Console(width=200))
    finally:
        c.close()
    raise typer.Exit(code)


def bench_sweep(
    audience: Annotated[
        Literal["tagged", "all"],
        typer.Option(help="tagged: the ~2 % of customers tagged 待回访; all: every customer"),
    ] = "tagged",
) -> None:
    """Time `infra.automation.sweep` over every customer of the store (twice: firing, then
    finding all fired), beside streaming every customer id. Records the runs it fires."""
    from api.bench.dashboards import run_sweep

    c = bootstrap(Settings())
    try:
        _current(c)
        code = run_sweep(c, audience, Console(width=200))
    finally:
        c.close()
    raise typer.Exit(code)
