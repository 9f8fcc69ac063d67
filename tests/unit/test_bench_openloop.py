"""The orders benchmark's open-loop driver: its arithmetic and its HTTP client (no services)."""

from __future__ import annotations

import asyncio

from api.bench.openloop import HttpConnection, OpenLoopRun, Request, run_async


def _steady(rate: float, seconds: float, lag: float, every: float | None = None) -> OpenLoopRun:
    """Requests due at `rate`/s, each sent on time, answered and visible `lag` later; with
    `every`, the system only manages one per `every` seconds (a growing backlog)."""
    n = int(rate * seconds)
    requests = []
    for k in range(n):
        due = 100.0 + k / rate
        done = due + lag if every is None else max(due, 100.0 + k * every) + lag
        requests.append(Request(due=due, sent=due, done=done, position=k + 1, visible=done))
    return OpenLoopRun(asked=rate, seconds=seconds, concurrency=8, requests=requests)


def test_a_run_that_keeps_up_achieves_the_rate_asked_and_is_sustained() -> None:
    run = _steady(100, 10, lag=0.02)
    assert 97 <= run.achieved() <= 100
    assert run.sustained()
    assert max(run.lag()) == min(run.lag()) and abs(run.lag()[0] - 0.02) < 1e-9


def test_a_growing_backlog_shows_as_a_lower_rate_and_is_not_sustained() -> None:
    run = _steady(100, 10, lag=0.02, every=1 / 80)
    assert 75 <= run.achieved() <= 81
    assert not run.sustained()
    assert max(run.lag()) > 2  # counted from the due time: the backlog is not hidden


def test_errors_late_sends_and_a_cut_schedule_are_not_sustained() -> None:
    failed = _steady(100, 10, lag=0.02)
    failed.requests[5].error = "HTTP 500"
    assert not failed.sustained()
    late = _steady(100, 10, lag=0.02)
    for r in late.requests[-50:]:
        r.sent = r.due + 0.5
    assert not late.sustained()
    cut = _steady(100, 10, lag=0.02)
    cut.stopped = 1
    assert not cut.sustained()


def test_the_client_keeps_its_connection_and_reopens_one_the_server_closed() -> None:
    async def main() -> list[tuple[int, bytes]]:
        accepted = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                body = await reader.readexactly(length)
                close = body == b"bye"
                answer = b'{"position": %d}' % accepted
                writer.write(
                    b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n%s\r\n%s"
                    % (len(answer), b"Connection: close\r\n" if close else b"", answer)
                )
                await writer.drain()
                if close:
                    writer.close()
                    return

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = HttpConnection("127.0.0.1", port, "/x", {"Authorization": "Bearer t"})
        try:
            return [await conn.post(body) for body in (b"{}", b"bye", b"{}")]
        finally:
            await conn.close()
            server.close()
            await server.wait_closed()

    answers = run_async(main())
    assert answers == [
        (201, b'{"position": 1}'),
        (201, b'{"position": 1}'),
        (201, b'{"position": 2}'),
    ]
