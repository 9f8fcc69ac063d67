"""The two watchers of phase 3: when every read model has reached a position (`Visibility`),
and when a position first appeared on the bus (`BusTap`)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import threading
import time
from typing import Any

import psycopg


class Visibility(threading.Thread):
    """Times each command from its return until every projection has reached its position.

    Polls `min(position)` of the engine's projections over its own autocommit connection
    (the same rows `engine.positions()` reads, without pool and dict overhead), and only
    while something is pending."""

    def __init__(self, db_url: str, names: list[str], interval: float):
        super().__init__(name="bench-visibility", daemon=True)
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.names = names
        self.interval = interval
        self.pending: list[tuple[int, float]] = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.samples: list[tuple[int, float, float]] = []  # position, returned, visible
        self.polls = 0
        self.error: BaseException | None = None

    def low(self) -> int:
        row = self.conn.execute(
            "SELECT min(position) FROM projection_positions WHERE name = ANY(%s)", (self.names,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def expect(self, position: int, returned_at: float) -> None:
        with self.lock:
            heapq.heappush(self.pending, (position, returned_at))

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                with self.lock:
                    waiting = bool(self.pending)
                if waiting:
                    low = self.low()
                    seen = time.perf_counter()
                    self.polls += 1
                    with self.lock:
                        while self.pending and self.pending[0][0] <= low:
                            position, returned = heapq.heappop(self.pending)
                            self.samples.append((position, returned, seen))
                time.sleep(self.interval)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout: float) -> int:
        """Wait (bounded) for what is pending; returns how many were never seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.is_alive():
            with self.lock:
                if not self.pending:
                    break
            time.sleep(0.01)
        self.halt.set()
        self.join(timeout=5)
        self.conn.close()
        with self.lock:
            return len(self.pending)


class BusTap(threading.Thread):
    """Notes when each position first appears on the bus (a push consumer of its own), to
    split commit → visible into relay (commit → on the bus) and projector (bus → visible)."""

    def __init__(self, nats_url: str, stream: str, prefix: str):
        super().__init__(name="bench-bus-tap", daemon=True)
        self.nats_url, self.stream, self.prefix = nats_url, stream, prefix
        self.seen: dict[int, float] = {}
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halt: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()

    async def _main(self) -> None:
        import nats
        from nats.js.api import DeliverPolicy

        self._loop = asyncio.get_running_loop()
        self._halt = asyncio.Event()
        nc = await nats.connect(self.nats_url, connect_timeout=3, allow_reconnect=False)
        try:

            async def on_msg(msg: Any) -> None:
                now = time.perf_counter()
                # The relay publishes position p with the message id `scrm:<p>`.
                msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
                if msg_id.startswith("scrm:"):
                    self.seen.setdefault(int(msg_id[5:]), now)

            sub = await nc.jetstream().subscribe(
                f"{self.prefix}.>",
                stream=self.stream,
                cb=on_msg,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
            self.ready.set()
            await asyncio.wait_for(self._halt.wait(), timeout=600)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        finally:
            await nc.close()

    def finish(self) -> None:
        if self.ident is None:
            return  # never started
        for _ in range(100):  # the loop may still be starting
            if self._loop is not None and self._halt is not None:
                break
            if not self.is_alive():
                return
            time.sleep(0.01)
        if self._loop is not None and self._halt is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._halt.set)
        self.join(timeout=10)
