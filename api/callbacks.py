"""What every signed platform callback shares once its signature is checked: a bounded body,
the replay guard, and the envelope its events carry (the platform's own time, the
integration as actor, a causation id from the message's digest)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import Request

from domain.shared import Meta
from infra.bootstrap import Container
from infra.wecom.callbacks import MalformedCallback, digest, require

MAX_BODY = 256 * 1024


async def read_body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise MalformedCallback("the body is too large")
    return body


def check_replay(c: Container, source: str, timestamp: str, nonce: str) -> None:
    assert c.replay_guard is not None
    c.replay_guard.check(source, timestamp, nonce, time.time())


def remember(c: Container, source: str, nonce: str) -> None:
    """After the callback was handled: a repeat of it is now a replay."""
    assert c.replay_guard is not None
    c.replay_guard.remember(source, nonce, time.time())


def envelope(
    fields: dict[str, str], plaintext: str, source: str, correlation_id: str
) -> tuple[Meta, str]:
    """The Meta for a callback's events, and the digest that makes it one message."""
    created = require(fields, "CreateTime")
    try:
        occurred_at = datetime.fromtimestamp(int(created), UTC)
    except (ValueError, OverflowError):
        raise MalformedCallback("CreateTime is not a unix time", field="CreateTime") from None
    hashed = digest(plaintext)
    meta = Meta(
        occurred_at=occurred_at,
        actor=f"integration:{source}",
        source=source,
        correlation_id=correlation_id,
        causation_id=f"{source}:{hashed[:24]}",
    )
    return meta, hashed
