"""Processes that follow the log after the read models (segment evaluation, message routing):
each runs rounds on a daemon thread, woken after every projection batch and every `interval`
seconds in any case. A round keeps its own checkpoint; one that fails is retried whole, and the
aggregates it changes decide whether anything is recorded, so a retry records nothing twice."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger("scrm.processes")


class Rounds(Protocol):
    def run_once(self) -> object | None:
        """One round over what is new; None when there was nothing."""
        ...


class ProcessLoop:
    def __init__(self, process: Rounds, name: str, interval: float = 1.0):
        self.process = process
        self.name = name
        self.interval = interval
        self.error: BaseException | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"scrm-{name}", daemon=True)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.process.run_once() is not None:
                    pass
                self.error = None
            except Exception as exc:  # keep following; the round is retried whole
                self.error = exc
                log.exception("%s round failed; retrying", self.name)
                self._stop.wait(1.0)
            self._wake.wait(self.interval)
