"""The raw baselines each figure is printed beside, measured in the same run on the same
services: single-row INSERT transactions (phases 1 and 2) and plain JetStream publish →
receipt (phase 3)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

import psycopg

from api.bench.loop import LoopResult, closed_loop
from api.bench.plan import Plan


def insert_baseline(db_url: str, plan: Plan) -> LoopResult:
    """psycopg single-row INSERT transactions over plan.clients connections."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_raw_insert (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL,"
            " created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    # About the size of one stored event.
    payload = '{"bench": "' + "x" * 400 + '"}'

    def open_conn(_: int) -> psycopg.Connection[Any]:
        return psycopg.connect(db_url, autocommit=True)

    def insert(conn: psycopg.Connection[Any], t: int, i: int) -> tuple[str, str | None]:
        conn.execute("INSERT INTO bench_raw_insert (payload) VALUES (%s)", (payload,))
        return "insert", None

    return closed_loop(
        plan.clients,
        min(plan.warmup, 1.0),
        plan.insert_seconds,
        open_conn,
        insert,
        lambda conn: conn.close(),
    )


def raw_bus(
    nats_url: str, stream: str, subject: str, rate: int, seconds: float, payload: bytes
) -> tuple[list[float], list[float], int]:
    """Publish at a steady rate; a push consumer and a pull consumer (fetch(500, 0.5), like
    the projector) timestamp receipt. Returns (push latencies, pull latencies, sent)."""
    return asyncio.run(_raw_bus(nats_url, stream, subject, rate, seconds, payload))


async def _raw_bus(
    nats_url: str, stream: str, subject: str, rate: int, seconds: float, payload: bytes
) -> tuple[list[float], list[float], int]:
    import nats
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    n = max(1, int(rate * seconds))
    sent = [math.nan] * n
    push_lat: list[float] = []
    pull_lat: list[float] = []
    nc = await nats.connect(nats_url, connect_timeout=3, allow_reconnect=False)
    try:
        js = nc.jetstream()

        async def on_push(msg: Any) -> None:
            push_lat.append(time.perf_counter() - sent[int(msg.data[:12])])

        push = await js.subscribe(
            subject,
            stream=stream,
            cb=on_push,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        pull = await js.pull_subscribe(
            subject,
            stream=stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.ALL,
                deliver_policy=DeliverPolicy.NEW,
                max_ack_pending=20_000,
                ack_wait=30,
            ),
        )
        stop_at = [math.inf]

        async def pull_loop() -> None:
            hard = time.perf_counter() + seconds * 3 + 15
            while len(pull_lat) < n and time.perf_counter() < min(stop_at[0], hard):
                try:
                    msgs = await pull.fetch(500, timeout=0.5)
                except (TimeoutError, NatsTimeout):
                    continue
                now = time.perf_counter()
                for m in msgs:
                    pull_lat.append(now - sent[int(m.data[:12])])
                await msgs[-1].ack()

        puller = asyncio.create_task(pull_loop())
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[i] = time.perf_counter()
            # The first 12 bytes carry the message's index, to find when it was sent.
            await js.publish(subject, f"{i:012d}".encode() + payload)
        stop_at[0] = time.perf_counter() + 5
        await puller
        for _ in range(500):  # the push side: bounded wait for the tail
            if len(push_lat) >= n:
                break
            await asyncio.sleep(0.01)
        with contextlib.suppress(Exception):
            await push.unsubscribe()
        with contextlib.suppress(Exception):
            await pull.unsubscribe()
    finally:
        await nc.close()
    return push_lat, pull_lat, n
