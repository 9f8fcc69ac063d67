"""Phase 6's open-loop driver: HTTP requests sent on a fixed schedule, each timed until every
read model has reached the position its answer returned.

One asyncio loop (uvloop when installed) does all of it, so nothing in the bench process
competes for the GIL while a run is measured:
- the sender: request n is due at t0 + n / rate whatever happened to the others (open loop:
  a slow answer does not slow the schedule down). Up to `concurrency` requests are in flight,
  each on a keep-alive HTTP/1.1 connection of its own. The client is a few lines over asyncio
  streams, not httpx: it writes prepared bytes and reads the status line, the headers and
  Content-Length bytes, ~20 µs of CPU a request where httpx takes ~10× that — this machine's
  2 cores are shared with the API, PostgreSQL, NATS, the relay and the projector, so what the
  load generator burns is taken from the system it measures. A request that finds every
  connection busy waits for one: its lateness (sent − due) is recorded, and latencies are
  counted from the time it was due, so a backlog in the client is never hidden
  (no coordinated omission).
- the watcher: while anything is pending, `min(position)` over the read models'
  `projection_positions` rows, every `Target.interval`; a push is visible once every read
  model has reached its position.
- the tap: a push consumer of its own on the stream, noting when each position (the relay's
  `Nats-Msg-Id: scrm:<position>`) first appears on the bus, to split push → visible into
  relay and projector.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is installed (it is with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that POSTs prepared bodies to one path."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]):
        self.host, self.port = host, port
        head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.head = head.encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        try:
            line = await self.reader.readline()
            if not line:
                raise ConnectionResetError("the server closed the connection")
            status = int(line.split(None, 2)[1])
            length, close = 0, False
            while True:
                header = await self.reader.readline()
                if header in (b"\r\n", b""):
                    break
                name, _, value = header.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
                elif name == b"transfer-encoding":
                    raise ValueError("chunked answers are not expected here")
            answer = await self.reader.readexactly(length)
        except BaseException:
            await self.close()  # never reuse a connection in an unknown state
            raise
        if close:
            await self.close()
        return status, answer


@dataclass
class Request:
    due: float
    sent: float = math.nan
    done: float = math.nan
    position: int | None = None
    visible: float = math.nan
    error: str | None = None


@dataclass
class OpenLoopRun:
    """One steady run: what was asked, and each request's times."""

    asked: float  # requests/s
    seconds: float  # length of the schedule
    concurrency: int
    requests: list[Request]
    bus: dict[int, float] = field(default_factory=dict)  # position -> first seen on the bus
    polls: int = 0
    unseen: int = 0  # answered 200 but never visible within the wait
    stopped: int = 0  # never sent: the schedule was cut (see `max_behind`)
    cut_after: float = math.nan  # seconds into the schedule when it was cut

    @property
    def t0(self) -> float:
        return self.requests[0].due if self.requests else math.nan

    def visible(self) -> list[Request]:
        return [r for r in self.requests if not math.isnan(r.visible)]

    def answered(self) -> list[Request]:
        return [r for r in self.requests if r.error is None and not math.isnan(r.done)]

    def errors(self) -> Counter[str]:
        return Counter(r.error for r in self.requests if r.error is not None)

    def achieved(self) -> float:
        """Requests visible per second, from the first one's due time to the last one seen:
        a system that falls behind finishes late and shows a lower rate."""
        seen = self.visible()
        if not seen:
            return 0.0
        span = max(r.visible for r in seen) - self.t0
        return len(seen) / max(span, 1 / self.asked)

    def lag(self) -> list[float]:
        """Due → visible in every read model."""
        return [r.visible - r.due for r in self.visible()]

    def http(self) -> list[float]:
        """Request written → answer read."""
        return [r.done - r.sent for r in self.answered()]

    def lateness(self) -> list[float]:
        return [r.sent - r.due for r in self.requests if not math.isnan(r.sent)]

    def relay_part(self) -> list[float]:
        """Due → on the bus. (Can be below the HTTP latency: the relay may publish the
        committed events before the answer reaches the client.)"""
        return [self.bus[r.position] - r.due for r in self.visible() if r.position in self.bus]

    def projector_part(self) -> list[float]:
        """On the bus → visible."""
        return [r.visible - self.bus[r.position] for r in self.visible() if r.position in self.bus]

    def sustained(self, tolerance: float = 0.95, late: float = 0.1) -> bool:
        """Kept up: every request answered 200 and seen, at ≥ 95 % of the asked rate, and
        99 % of them sent within 100 ms of their due time."""
        lateness = sorted(self.lateness())
        p99 = lateness[max(0, math.ceil(0.99 * len(lateness)) - 1)] if lateness else math.inf
        return (
            not self.errors()
            and not self.unseen
            and not self.stopped
            and self.achieved() >= tolerance * self.asked
            and p99 <= late
        )


class _Watcher:
    """Polls the read models' lowest position while something is pending."""

    def __init__(self, conn: Any, names: list[str], interval: float):
        self.conn, self.names, self.interval = conn, names, interval
        self.pending: list[tuple[int, int]] = []  # (position, request index)
        self.polls = 0
        self.halt = False

    async def low(self) -> int:
        cur = await self.conn.execute(
            "SELECT min(position) FROM projection_positions WHERE name = ANY(%s)",
            (self.names,),
            prepare=True,
        )
        row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    async def run(self, requests: list[Request]) -> None:
        while not self.halt:
            if self.pending:
                low = await self.low()
                seen = time.perf_counter()
                self.polls += 1
                while self.pending and self.pending[0][0] <= low:
                    _, n = heapq.heappop(self.pending)
                    requests[n].visible = seen
            await asyncio.sleep(self.interval)


async def _tap(nats_url: str, stream: str, prefix: str, seen: dict[int, float]) -> Any:
    """A push consumer noting when each position first appears on the bus; returns the
    connection (close it to stop)."""
    import nats
    from nats.js.api import DeliverPolicy

    nc = await nats.connect(nats_url, connect_timeout=3, allow_reconnect=False)

    async def on_msg(msg: Any) -> None:
        now = time.perf_counter()
        msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        if msg_id.startswith("scrm:"):
            seen.setdefault(int(msg_id[5:]), now)

    await nc.jetstream().subscribe(
        f"{prefix}.>",
        stream=stream,
        cb=on_msg,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.NEW,
    )
    return nc


@dataclass(frozen=True)
class Target:
    """Where the requests go and how visibility is read."""

    host: str
    port: int
    path: str
    headers: dict[str, str]
    db_url: str
    names: list[str]  # the read models that must reach a position
    nats_url: str
    stream: str
    prefix: str
    interval: float = 0.001  # watcher poll
    concurrency: int = 64


def open_loop(
    target: Target,
    bodies: list[bytes],
    rate: float,
    *,
    warmup: list[bytes],
    settle: float = 30.0,
    on_error: Callable[[int, bytes], None] | None = None,
    marks: tuple[Callable[[], None], Callable[[], None]] | None = None,
    max_behind: float = 2.0,
) -> OpenLoopRun:
    """Send `bodies` at `rate`/s (after `warmup`, sent together and waited for), each timed
    until visible; wait up to `settle` seconds for the last ones. `marks`: called when the
    clock starts and once the last push is visible (to count events, CPU seconds).
    A system that cannot keep up falls further behind the schedule every second: once the
    next request is more than `max_behind` seconds late the schedule is cut (the rest are
    counted as `stopped`), which bounds the run and says plainly that the rate was not held."""
    return run_async(_open_loop(target, bodies, rate, warmup, settle, on_error, marks, max_behind))


async def _open_loop(
    target: Target,
    bodies: list[bytes],
    rate: float,
    warmup: list[bytes],
    settle: float,
    on_error: Callable[[int, bytes], None] | None,
    marks: tuple[Callable[[], None], Callable[[], None]] | None,
    max_behind: float,
) -> OpenLoopRun:
    import psycopg

    seconds = len(bodies) / rate
    run = OpenLoopRun(asked=rate, seconds=seconds, concurrency=target.concurrency, requests=[])
    pg = await psycopg.AsyncConnection.connect(target.db_url, autocommit=True)
    nc = await _tap(target.nats_url, target.stream, target.prefix, run.bus)
    idle = asyncio.Queue[HttpConnection]()
    conns = [
        HttpConnection(target.host, target.port, target.path, target.headers)
        for _ in range(target.concurrency)
    ]
    for conn in conns:
        idle.put_nowait(conn)
    watcher = _Watcher(pg, target.names, target.interval)
    try:
        # Warm-up: every connection opened and used once, each answer seen in the read
        # models, so the clock starts on a system that is up and idle.
        warm = [Request(due=time.perf_counter()) for _ in warmup]

        async def warm_one(n: int) -> None:
            conn = await idle.get()
            try:
                status, answer = await conn.post(warmup[n])
                if status != 200:
                    raise RuntimeError(f"warm-up push answered {status}: {answer[:300]!r}")
                warm[n].position = int(orjson.loads(answer)["position"])
            finally:
                idle.put_nowait(conn)

        await asyncio.gather(*(warm_one(n) for n in range(len(warmup))))
        highest = max((r.position or 0 for r in warm), default=0)
        deadline = time.perf_counter() + settle
        while await watcher.low() < highest:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"warm-up pushes not visible within {settle:.0f} s")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        if marks is not None:
            marks[0]()

        poller = asyncio.create_task(watcher.run(run.requests))
        t0 = time.perf_counter() + 0.05
        run.requests.extend(Request(due=t0 + n / rate) for n in range(len(bodies)))
        hard_stop = t0 + seconds * 3 + 10
        tasks: set[asyncio.Task[None]] = set()

        async def send(n: int, conn: HttpConnection) -> None:
            request = run.requests[n]
            try:
                request.sent = time.perf_counter()
                status, answer = await conn.post(bodies[n])
                request.done = time.perf_counter()
                if status != 200:
                    request.error = f"HTTP {status}"
                    if on_error is not None:
                        on_error(status, answer)
                    return
                position = int(orjson.loads(answer)["position"])
                request.position = position
                heapq.heappush(watcher.pending, (position, n))
            except asyncio.CancelledError:
                request.error = "no answer by the hard stop"
                raise
            except Exception as exc:
                request.error = type(exc).__name__
            finally:
                idle.put_nowait(conn)

        for n in range(len(bodies)):
            delay = run.requests[n].due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            conn = await idle.get()  # waits while `concurrency` requests are in flight
            now = time.perf_counter()
            if now > hard_stop or now - run.requests[n].due > max_behind:
                idle.put_nowait(conn)
                run.stopped = len(bodies) - n
                run.cut_after = now - t0
                del run.requests[n:]
                break
            task = asyncio.create_task(send(n, conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(list(tasks), timeout=max(1.0, hard_stop - time.perf_counter()))
            for task in list(tasks):  # still unanswered at the hard stop
                task.cancel()
        deadline = time.perf_counter() + settle
        while watcher.pending and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        run.unseen = len(watcher.pending)
        if marks is not None:
            marks[1]()
        watcher.halt = True
        await poller
        run.polls = watcher.polls
        await asyncio.sleep(0.05)  # the tap's last messages
    finally:
        watcher.halt = True
        for conn in conns:
            await conn.close()
        with contextlib.suppress(Exception):
            await nc.close()
        await pg.close()
    return run
