"""The closed loop that phases 1 and 2 and the INSERT baseline measure with."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoopResult:
    """A closed loop: every thread calls its op back-to-back; only calls that start and end
    inside the measured window count."""

    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    head_delta: int | None = None

    @property
    def ok(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def all_latencies(self) -> list[float]:
        return [x for v in self.latencies.values() for x in v]

    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else math.nan


Op = Callable[[Any, int, int], tuple[str, str | None]]  # (state, thread, i) -> (kind, error)


def closed_loop(
    threads: int,
    warmup: float,
    seconds: float,
    open_state: Callable[[int], Any],
    op: Op,
    close_state: Callable[[Any], None] = lambda _: None,
    head: Callable[[], int] | None = None,
) -> LoopResult:
    """Run `op` on `threads` threads for warmup + seconds. `head`, when given, is read at both
    ends of the measured window, to count the events appended inside it."""
    barrier = threading.Barrier(threads + 1, timeout=60)
    window = [0.0, 0.0]
    results: list[tuple[dict[str, list[float]], Counter[str]]] = [
        ({}, Counter()) for _ in range(threads)
    ]

    def worker(t: int) -> None:
        lats, errors = results[t]
        try:
            state = open_state(t)
        except Exception as exc:
            errors[f"setup: {type(exc).__name__}"] += 1
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            return
        try:
            barrier.wait()
            start, end = window
            i = 0
            while True:
                t0 = time.perf_counter()
                if t0 >= end:
                    break
                try:
                    kind, error = op(state, t, i)
                except Exception as exc:
                    kind, error = "error", type(exc).__name__
                t1 = time.perf_counter()
                if t0 >= start and t1 <= end:
                    if error is None:
                        lats.setdefault(kind, []).append(t1 - t0)
                    else:
                        errors[f"{kind}: {error}"] += 1
                if error is not None:
                    time.sleep(0.001)  # never spin on a failing service
                i += 1
        except threading.BrokenBarrierError:
            errors["barrier"] += 1
        finally:
            close_state(state)

    pool = [
        threading.Thread(target=worker, args=(t,), name=f"bench-{t}", daemon=True)
        for t in range(threads)
    ]
    for th in pool:
        th.start()
    now = time.perf_counter()
    window[0], window[1] = now + warmup, now + warmup + seconds
    barrier.wait()
    head_delta = None
    if head is not None:
        time.sleep(max(0.0, window[0] - time.perf_counter()))
        first = head()
        time.sleep(max(0.0, window[1] - time.perf_counter()))
        head_delta = head() - first
    for th in pool:
        th.join(timeout=warmup + seconds + 60)
    out = LoopResult(seconds=seconds, head_delta=head_delta)
    for lats, errors in results:
        for kind, values in lats.items():
            out.latencies.setdefault(kind, []).extend(values)
        out.errors.update(errors)
    return out
