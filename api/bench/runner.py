"""`run_bench`: check the services, run the phases in order, clean up, print."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable

from rich.console import Console

from api.bench.archive import phase_archive
from api.bench.commands import phase_direct, phase_http
from api.bench.context import Bench
from api.bench.lag import phase_lag
from api.bench.orders import phase_orders
from api.bench.plan import FULL, QUICK
from api.bench.rebuild import phase_rebuild
from api.bench.scratch import DEFAULT_NATS, admin_url, pg_problem, services_problem
from api.bench.table import print_report
from infra.settings import Settings

PHASES = (
    ("HTTP", phase_http),
    ("direct appends", phase_direct),
    ("commit → read model", phase_lag),
    ("rebuild", phase_rebuild),
    # Orders before the archive: its pushes need the relay and the projector caught up with
    # the log, and the archive phase's ~33k events would only lengthen that catch-up.
    ("orders", phase_orders),
    ("archive", phase_archive),
)


def _run(bench: Bench) -> None:
    """Set up, then every phase; a phase that fails is reported and the next one still runs."""
    bench.procs.start_supervisor()
    bench.setup()
    for name, phase in PHASES:
        started = time.perf_counter()
        try:
            phase(bench)
        except Exception as exc:
            bench.report.failures.append(f"{name}: {type(exc).__name__}: {exc}")
            bench.err.print(f"[red]phase {name} failed[/red]\n{traceback.format_exc()}")
        bench.report.notes.append(f"phase {name}: {time.perf_counter() - started:.1f} s wall")


def run_bench(settings: Settings, quick: bool = False) -> int:
    """Run the benchmark and print its table. 0 when every figure was measured, 1 when a phase
    failed, 2 when PostgreSQL or NATS is missing. Targets are printed, never enforced."""
    return _execute(settings, quick, "set-up", _run, needs_nats=True)


def run_archive_bench(settings: Settings, quick: bool = False) -> int:
    """Phase 5 alone (`scrm archive bench`): a scratch PostgreSQL database (no stream, no
    subprocesses) and a scratch SQLite directory. Exit codes as `run_bench`'s."""

    def archive(bench: Bench) -> None:
        bench.scratch.create_database()
        bench.say(f"scratch database {bench.scratch.db_name}")
        bench.scratch.bootstrap()
        phase_archive(bench)

    return _execute(settings, quick, "archive", archive, needs_nats=False)


def run_orders_bench(settings: Settings, quick: bool = False) -> int:
    """Phase 6 alone (`scrm orders bench`): a scratch database and stream, the bulk import,
    then the API, relay and projector subprocesses for the pushes. Exit codes as
    `run_bench`'s."""

    def orders(bench: Bench) -> None:
        bench.procs.start_supervisor()
        bench.scratch.create_database()
        bench.scratch.create_stream()
        bench.say(f"scratch database {bench.scratch.db_name}, stream {bench.scratch.stream}")
        bench.scratch.bootstrap()
        phase_orders(bench)

    return _execute(settings, quick, "orders", orders, needs_nats=True)


def _execute(
    settings: Settings,
    quick: bool,
    label: str,
    body: Callable[[Bench], None],
    *,
    needs_nats: bool,
) -> int:
    """What every entry point shares: check the services, run, clean up, print the table."""
    plan = QUICK if quick else FULL
    out = Console(width=None if sys.stdout.isatty() else 180)
    err = Console(stderr=True)
    admin = admin_url(settings)
    nats_url = settings.nats_url or DEFAULT_NATS
    problem = services_problem(admin, nats_url) if needs_nats else pg_problem(admin)
    if problem:
        err.print(f"[red]{problem}[/red]")
        return 2
    bench = Bench(plan, admin, nats_url, err)
    started = time.perf_counter()
    try:
        body(bench)
    except Exception as exc:
        bench.report.failures.append(f"{label}: {type(exc).__name__}: {exc}")
        err.print(f"[red]{label} failed[/red]\n{traceback.format_exc()}")
    finally:
        bench.cleanup()
    print_report(out, bench.report, bench.procs.crashes, plan, quick, started)
    return 1 if bench.report.failures else 0
