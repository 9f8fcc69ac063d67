"""What the relay and the projector share: a connection to NATS, the stream they use, and a
stop() that is safe from any thread or a signal handler."""

from __future__ import annotations

import asyncio

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

DUPLICATE_WINDOW_SECONDS = 600.0


async def ensure_stream(js: JetStreamContext, stream: str, prefix: str) -> None:
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=stream,
                subjects=[f"{prefix}.>"],
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
            )
        )


class BusWorker:
    def __init__(self, nats_url: str, stream: str, prefix: str):
        self.nats_url = nats_url
        self.stream = stream
        self.prefix = prefix
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def connect(self) -> tuple[Client, JetStreamContext, asyncio.Event]:
        """Call at the start of run(): binds stop() to this event loop."""
        self._loop = asyncio.get_running_loop()
        stopping = self._stopping = asyncio.Event()
        nc = await nats.connect(self.nats_url, max_reconnect_attempts=-1)
        js = nc.jetstream(publish_async_max_pending=4000)
        await ensure_stream(js, self.stream, self.prefix)
        return nc, js, stopping

    def stop(self) -> None:
        """Safe to call from any thread or a signal handler."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
