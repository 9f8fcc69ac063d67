"""The projector's side of the bus: a durable JetStream pull consumer feeding projections.

Each fetched batch is applied in one transaction that also moves every projection's
position; only then is the batch acknowledged. A crash before the ack means redelivery, and
the positions make the redelivered events no-ops. Ordering is enforced by stream sequence:
if a delivery skips ahead (a redelivery racing a new fetch), the missing sequences are read
directly from the stream first, so no event is ever passed over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from infra.checkpoints import Checkpoints
from infra.db import Database
from infra.events import EventRecord
from infra.nats.worker import BusWorker

log = logging.getLogger("scrm.projector")


class Projector(BusWorker):
    def __init__(
        self,
        db: Database,
        apply_batch: Callable[[Sequence[EventRecord], Callable[[object], None]], int],
        nats_url: str,
        stream: str,
        prefix: str,
        durable: str = "scrm-projector",
        batch: int = 500,
    ):
        super().__init__(nats_url, stream, prefix)
        self.db = db
        self.apply_batch = apply_batch
        self.durable = durable
        self.batch = batch
        self.applied = 0
        self.foreign = 0  # messages on the stream that the relay did not publish (skipped)
        # The last stream sequence applied, moved in the same transaction as the read models.
        self.checkpoints = Checkpoints(db, "projector_positions", [durable])

    def stream_seq(self) -> int:
        return self.checkpoints.get(self.durable)

    def _cursor_writer(self, seq: int) -> Callable[[object], None]:
        """Moves the stream cursor inside the same transaction as the projections' rows."""
        return lambda cur: self.checkpoints.advance(cur, self.durable, seq)

    def _decode(self, seq: int, headers: dict[str, str] | None, data: bytes) -> EventRecord | None:
        """The event a message carries, or None for a message that is not one. The relay
        publishes every event with `Nats-Msg-Id: scrm:<position>`; anything else on the
        stream's subjects (a test or benchmark publishing there, another tool) is skipped
        with a warning, rather than retried for ever, which stalled every read model behind
        it. A message that claims to be an event and cannot be decoded still stops the
        projector: skipping it would lose an event."""
        msg_id = (headers or {}).get("Nats-Msg-Id", "")
        if not msg_id.startswith("scrm:"):
            self.foreign += 1
            log.warning(
                "stream sequence %d is not an scrm event (Nats-Msg-Id %r): skipped",
                seq,
                msg_id[:40],
            )
            return None
        return EventRecord.from_body(data)

    async def _fill_gap(self, js: JetStreamContext, start: int, stop: int) -> list[EventRecord]:
        """Read stream sequences [start, stop) directly: the bus keeps what a delivery skipped."""
        out = []
        for seq in range(start, stop):
            try:
                raw = await js.get_msg(self.stream, seq)
            except Exception:  # a purged or deleted sequence holds nothing to apply
                continue
            if raw.data:
                record = self._decode(seq, raw.headers, raw.data)
                if record is not None:
                    out.append(record)
        return out

    async def _apply(self, js: JetStreamContext, msgs: list[Msg], last_seq: int) -> int:
        """Apply one fetched batch in stream order, then ack it. Returns the new cursor."""
        records: list[EventRecord] = []
        newest = last_seq
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq <= newest:
                continue  # already applied: a redelivery
            if seq > newest + 1:
                records += await self._fill_gap(js, newest + 1, seq)
            record = self._decode(seq, msg.headers, msg.data)
            if record is not None:
                records.append(record)
            newest = seq
        if newest > last_seq:
            self.applied += await asyncio.to_thread(
                self.apply_batch, records, self._cursor_writer(newest)
            )
        await msgs[-1].ack()  # AckPolicy.ALL: acknowledges the whole batch
        return newest

    async def run(self, idle_exit: float | None = None) -> int:
        """Follow the stream. With `idle_exit`, return after that long without new events."""
        nc, js, stopping = await self.connect()
        loop = asyncio.get_running_loop()
        try:
            last_seq = await asyncio.to_thread(self.stream_seq)
            log.info(
                "consuming %s as %s after stream sequence %d", self.stream, self.durable, last_seq
            )
            sub = await js.pull_subscribe(
                f"{self.prefix}.>",
                durable=self.durable,
                stream=self.stream,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.ALL,
                    deliver_policy=DeliverPolicy.ALL,
                    max_ack_pending=20_000,
                    ack_wait=30,
                ),
            )
            idle_since = loop.time()
            while not stopping.is_set():
                try:
                    msgs = await sub.fetch(self.batch, timeout=0.5)
                except (NatsTimeout, TimeoutError):  # nats-py raises either when idle
                    msgs = []
                if not msgs:
                    if idle_exit is not None and loop.time() - idle_since >= idle_exit:
                        break
                    await asyncio.sleep(0.01)  # an empty answer can come back at once
                    continue
                idle_since = loop.time()
                while not stopping.is_set():
                    try:
                        last_seq = await self._apply(js, msgs, last_seq)
                        break
                    except Exception:
                        # Nothing of the batch was committed or acked: retry the batch in hand
                        # (never skip it) from the cursor as the database has it.
                        log.exception("projection batch failed; retrying")
                        await asyncio.sleep(1.0)
                        last_seq = await asyncio.to_thread(self.stream_seq)
        finally:
            await nc.close()
        return self.applied
