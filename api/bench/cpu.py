"""CPU seconds spent by the processes a run involves, from /proc (Linux; elsewhere NaN).

On a 2-core machine shared by the API, PostgreSQL, NATS, the relay, the projector and the
load generator, a rate is bounded by the CPU one request costs all of them together; these
counters say who spends it. PostgreSQL is counted by the backends serving the scratch
database (their process title names it), not the server's shared background processes, so
other databases' work on the same server is left out; nats-server is counted whole.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

_PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()  # fields from 3 (state) on


def _all_pids() -> list[int]:
    return [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]


def tree(root: int) -> list[int]:
    """`root` and its descendants (uvicorn's worker processes, say)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        fields = _stat(pid)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def by_pid(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes still alive."""
    out: dict[int, float] = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return out


class Probe:
    """CPU seconds per group of processes between two samples. Groups are re-enumerated at
    each sample (backends and workers come and go); a process that started in between
    counts from zero, one that ended in between is lost (rare: pools keep their
    connections)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]):
        self.groups = groups
        self.start: dict[str, dict[int, float]] = {}

    @staticmethod
    def available() -> bool:
        return _PROC.is_dir()

    def sample(self) -> dict[str, dict[int, float]]:
        return {name: by_pid(pids()) for name, pids in self.groups.items()}

    def begin(self) -> None:
        self.start = self.sample()

    def end(self) -> dict[str, float]:
        """CPU seconds each group spent since begin()."""
        if not self.available():
            return {name: math.nan for name in self.groups}
        now = self.sample()
        return {
            name: sum(t - self.start.get(name, {}).get(pid, 0.0) for pid, t in now[name].items())
            for name in self.groups
        }


def matching(*words: str) -> list[int]:
    """Processes whose command line contains every word (PostgreSQL backends' titles name
    their database: `postgres: 15/main: postgres scrm_bench_x 127.0.0.1(5432) idle`)."""
    out = []
    for pid in _all_pids():
        try:
            cmdline = (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if all(w in cmdline for w in words):
            out.append(pid)
    return out


def machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat):
    the difference between two readings says how busy it was, whoever was running."""
    try:
        fields = (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return math.nan, math.nan
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / _TICK, sum(ticks) / _TICK
