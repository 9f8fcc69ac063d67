"""What a run prints: the figures' formatting, the rows, and the table with its notes."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from api.bench.plan import Plan


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def fmt_rate(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:,.0f}/s"


def fmt_ms(x: float) -> str:
    return "—" if math.isnan(x) else f"{x * 1000:.1f}"


def fmt_lat(values: list[float]) -> str:
    return f"p50 {fmt_ms(percentile(values, 50))} / p99 {fmt_ms(percentile(values, 99))} ms"


def fmt_lat3(values: list[float]) -> str:
    """p50 / p95 / p99 in ms."""
    p50, p95, p99 = (fmt_ms(percentile(values, q)) for q in (50, 95, 99))
    return f"p50 {p50} / p95 {p95} / p99 {p99} ms"


def fmt_ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def fmt_lat_ratio(a: list[float], b: list[float]) -> str:
    if not (a and b):
        return "—"
    p50 = fmt_ratio(percentile(a, 50), percentile(b, 50))
    return f"{p50} / {fmt_ratio(percentile(a, 99), percentile(b, 99))}"


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
class Report:
    """What the phases found, filled in as they run and printed once at the end."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def render(rows: list[Row], plan: Plan, quick: bool) -> Table:
    out = Table(
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
        out.add_column(name, **kw)  # type: ignore[arg-type]
    # By phase, whatever order the phases ran in (row ids: phase digit, then letters).
    for r in sorted(rows, key=lambda r: r.id[:1]):
        out.add_row(r.id, r.figure, r.value, r.baseline, r.baseline_value, r.ratio, r.target)
    return out


def print_report(
    out: Console,
    report: Report,
    crashes: list[tuple[str, int, str]],
    plan: Plan,
    quick: bool,
    started: float,
) -> None:
    out.print(render(report.rows, plan, quick))
    out.print("ratio = scrm ÷ baseline (throughput: higher is better; latency: lower is better)")
    for note in report.notes:
        out.print(f"  • {note}")
    for (name, why), n in Counter((name, why) for name, _, why in crashes).items():
        out.print(f"[yellow]  ! {name} crashed {n}× and was restarted: {why}[/yellow]")
    out.print(f"  • total {time.perf_counter() - started:.0f} s")
    for failure in report.failures:
        out.print(f"[red]  ✗ {failure}[/red]")
