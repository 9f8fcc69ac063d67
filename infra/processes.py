"""Processes that follow the log after the read models (segment evaluation, message routing,
settlement, loyalty, anomalies, handover, automation, campaigns): each runs rounds on a daemon
thread, woken after every projection batch and every `interval` seconds in any case. A round
keeps its own checkpoint; one that fails is retried whole, and the aggregates it changes decide
whether anything is recorded, so a retry records nothing twice."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from infra.checkpoints import Checkpoints

if TYPE_CHECKING:
    from infra.bootstrap import Container
    from infra.events import EventRecord

log = logging.getLogger("scrm.processes")


class Rounds(Protocol):
    def run_once(self) -> object | None:
        """One round over what is new; None when there was nothing."""
        ...


class LogFollower(Rounds, Protocol):
    """A process that records from what the read models hold, behind them: its checkpoint
    `marks[MARK]` is the log position everything up to has been handled for."""

    MARK: ClassVar[str]
    marks: Checkpoints


class BehindTheReadModels:
    """The round every log follower runs: what is new up to the read models' low-water mark
    (at most ROUND records) goes to `handle`, then the checkpoint moves past it. While
    `concerned()` says nothing can concern the process (no rule published yet), the log is not
    even read: this runs after every projection batch. `handle` dispatches each record to
    `HANDLERS` by business name unless a process needs the round whole."""

    MARK: ClassVar[str]  # the checkpoint's name in TABLE
    TABLE: ClassVar[str]
    ROUND: ClassVar[int] = 500
    HANDLERS: ClassVar[dict[str, Callable[[Any, EventRecord], None]]] = {}

    def __init__(self, c: Container):
        self.c = c
        self.marks = Checkpoints(c.read_db, self.TABLE, [self.MARK])
        self.reached = 0  # the read models' low-water mark when this round began
        self._round = threading.Lock()

    def run_once(self) -> int | None:
        with self._round:
            reached = self.c.engine.low_water_mark()
            done = self.marks.get(self.MARK)
            if reached <= done:
                return None
            upto = self.reached = reached
            if self.concerned():
                records = [r for r in self.c.read_log(done, self.ROUND) if r.position <= reached]
                if len(records) == self.ROUND:
                    upto = records[-1].position
                self.handle(records)
            with self.c.read_db.transaction() as cur:
                self.marks.advance(cur, self.MARK, upto)
            return upto

    def concerned(self) -> bool:
        return True

    def handle(self, records: Sequence[EventRecord]) -> None:
        for record in records:
            handler = self.HANDLERS.get(record.name)
            if handler is not None:
                handler(self, record)


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
