"""Embedded mode: follow the store's notification log directly and keep read models current.

SQLite has no LISTEN/NOTIFY in eventsourcing, so the follower polls at a short interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from infra.events import EventRecord
from projections.engine import ProjectionEngine

log = logging.getLogger("scrm.follower")

ReadLog = Callable[[int, int], Sequence[EventRecord]]


class StoreFollower:
    def __init__(
        self, engine: ProjectionEngine, read_log: ReadLog, interval: float = 0.02, batch: int = 500
    ):
        self.engine = engine
        self.read_log = read_log
        self.interval = interval
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def catch_up(self) -> int:
        """Apply everything recorded so far; returns the number of events read."""
        total = 0
        while True:
            after = self.engine.low_water_mark()
            records = self.read_log(after, self.batch)
            if not records:
                return total
            self.engine.apply_batch(records)
            total += len(records)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
                self.error = None
            except Exception as exc:  # keep following; the batch is retried whole
                self.error = exc
                log.exception("projection batch failed; retrying")
                self._stop.wait(1.0)
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scrm-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
