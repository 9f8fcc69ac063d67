"""The relay: the store's notification log is the outbox; JetStream is the bus.

It publishes every event in log order with `Nats-Msg-Id: scrm:<position>` and records how far
it got only after JetStream acknowledged. Killed at any moment, it restarts from its last
recorded position: anything published but not recorded is published again and JetStream's
de-duplication drops it. Nothing is skipped, because the position only moves past acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nats.js import JetStreamContext

from infra.checkpoints import Checkpoints
from infra.db import Database
from infra.events import EventRecord
from infra.nats.worker import BusWorker

log = logging.getLogger("scrm.relay")


@dataclass
class RelayStats:
    published: int = 0
    duplicates: int = 0


class Relay(BusWorker):
    def __init__(
        self,
        db: Database,
        read_log: Callable[[int, int], Sequence[EventRecord]],
        nats_url: str,
        stream: str,
        prefix: str,
        batch: int = 500,
        idle_wait: float = 0.05,
        wait_for_new: Callable[[float], None] | None = None,
        record_every: float = 0.25,
    ):
        super().__init__(nats_url, stream, prefix)
        self.db = db
        self.read_log = read_log
        self.batch = batch
        self.idle_wait = idle_wait
        # Blocks until the store signals new events (PostgreSQL LISTEN) or the timeout passes.
        self.wait_for_new = wait_for_new
        # How often, at most, the position is recorded while events keep coming (and always
        # once caught up, and on stopping): one transaction per published batch was the
        # relay's main cost under a steady trickle of small commits. Recording later is safe:
        # a restart re-publishes from the recorded position, JetStream drops what it has
        # within its duplicate window, and consumers skip positions they have applied.
        self.record_every = record_every
        self.stats = RelayStats()
        self.checkpoints = Checkpoints(db, "relay_positions", [stream])

    def position(self) -> int:
        return self.checkpoints.get(self.stream)

    def _record(self, position: int) -> None:
        # advance() never moves backwards, even if two relays were started by mistake.
        with self.db.transaction() as cur:
            self.checkpoints.advance(cur, self.stream, position)

    async def publish_batch(self, js: JetStreamContext, records: Sequence[EventRecord]) -> None:
        """Publish in order and wait for every ack (the caller records the position)."""
        futures = [
            await js.publish_async(
                r.subject(self.prefix), r.body(), headers={"Nats-Msg-Id": r.msg_id}
            )
            for r in records
        ]
        acks = await asyncio.gather(*futures)
        self.stats.published += len(acks)
        self.stats.duplicates += sum(1 for a in acks if getattr(a, "duplicate", False))

    async def run(self, until_caught_up: bool = False) -> RelayStats:
        nc, js, stopping = await self.connect()
        loop = asyncio.get_running_loop()
        after = recorded = 0
        try:
            after = recorded = await asyncio.to_thread(self.position)
            log.info("publishing to stream %s from position %d", self.stream, after)
            record_at = loop.time() + self.record_every
            while not stopping.is_set():
                records = await asyncio.to_thread(self.read_log, after, self.batch)
                if records:
                    await self.publish_batch(js, records)
                    after = records[-1].position
                    if loop.time() >= record_at:
                        await asyncio.to_thread(self._record, after)
                        recorded, record_at = after, loop.time() + self.record_every
                    # A short batch drained the log: wait for the next commit's NOTIFY (one
                    # sent meanwhile wakes us at once) rather than read again to find nothing.
                    if len(records) == self.batch or self.wait_for_new is None or until_caught_up:
                        continue
                else:
                    if recorded < after:  # caught up: record now
                        await asyncio.to_thread(self._record, after)
                        recorded, record_at = after, loop.time() + self.record_every
                    if until_caught_up:
                        break
                if self.wait_for_new is not None:
                    await asyncio.to_thread(self.wait_for_new, 0.5)
                else:
                    await asyncio.sleep(self.idle_wait)
        finally:
            if recorded < after:  # all acked: a restart resumes here (best effort, see above)
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._record, after)
            await nc.close()
        return self.stats
