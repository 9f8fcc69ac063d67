"""What the phases of one run share, and its set-up and clean-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from api.bench.loop import LoopResult
from api.bench.plan import Plan
from api.bench.processes import Processes
from api.bench.scratch import Scratch
from api.bench.table import Report
from api.bench.workload import Workload

if TYPE_CHECKING:
    from infra.bootstrap import Container


class Bench:
    def __init__(self, plan: Plan, admin_url: str, nats_url: str, err: Console):
        self.plan = plan
        self.err = err
        self.report = Report()
        self.scratch = Scratch(admin_url, nats_url)
        self.procs = Processes(self.scratch.tmp, self.scratch.env, self.report.notes, err)
        self.workload = Workload(self.scratch.tag, plan)
        self.insert: LoopResult | None = None  # phase 1's INSERT baseline, reused by phase 2

    @property
    def container(self) -> Container:
        assert self.scratch.container is not None, "setup() first"
        return self.scratch.container

    def say(self, text: str) -> None:
        self.err.print(f"[dim]bench[/dim] {text}")

    def setup(self) -> None:
        """The scratch database and stream, the benchmark's own container over them, and the
        staff and channel codes every phase's commands need."""
        scratch = self.scratch
        scratch.create_database()
        self.say(
            f"scratch database {scratch.db_name}, stream {scratch.stream}, prefix {scratch.prefix}"
        )
        scratch.create_stream()
        container = scratch.bootstrap()
        runs = [f"lag{k}" for k in range(len(self.plan.lag_rates))]
        self.workload.seed(container.customers, ["http", "direct", *runs, "topup"])

    def cleanup(self) -> None:
        self.procs.close()
        self.report.failures.extend(self.scratch.teardown())
