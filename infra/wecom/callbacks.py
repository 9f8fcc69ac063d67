"""Receiving WeCom callbacks: replay protection and reading the (encrypted) XML safely."""

from __future__ import annotations

import hashlib
from typing import Any

import defusedxml.ElementTree as SafeXML
from defusedxml import DefusedXmlException

from infra.db import Database
from infra.wecom.crypto import CallbackRejected

NONCES_DDL = (
    "CREATE TABLE IF NOT EXISTS callback_nonces (source TEXT NOT NULL, nonce TEXT NOT NULL,"
    " seen_at BIGINT NOT NULL, PRIMARY KEY (source, nonce))"
)


class ReplayGuard:
    """A callback's timestamp must be within the window of now, and its nonce unseen within
    it. Nonces are remembered only once a callback was handled, so WeCom's retry of one we
    failed to handle is still accepted; a repeat of one we handled is refused."""

    def __init__(self, db: Database, window_seconds: int):
        self.db = db
        self.window = window_seconds
        with db.transaction() as cur:
            cur.execute(NONCES_DDL)

    def check(self, source: str, timestamp: str, nonce: str, now: float) -> None:
        try:
            sent = int(timestamp)
        except ValueError:
            raise CallbackRejected("timestamp is not a number") from None
        if abs(now - sent) > self.window:
            raise CallbackRejected("timestamp outside the accepted window")
        if not nonce or len(nonce) > 64:
            raise CallbackRejected("nonce missing or too long")
        rows = self.db.query(
            "SELECT seen_at FROM callback_nonces WHERE source = ? AND nonce = ?", (source, nonce)
        )
        if rows and now - int(rows[0][0]) <= self.window:
            raise CallbackRejected("nonce seen again within the window")

    def remember(self, source: str, nonce: str, now: float) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO callback_nonces (source, nonce, seen_at) VALUES (?, ?, ?)"
                " ON CONFLICT (source, nonce) DO UPDATE SET seen_at = excluded.seen_at",
                (source, nonce, int(now)),
            )
            cur.execute(
                "DELETE FROM callback_nonces WHERE seen_at < ?", (int(now) - 2 * self.window,)
            )


class MalformedCallback(Exception):
    """Signed correctly but not a message we can read (HTTP 422, nothing recorded)."""

    def __init__(self, detail: str, field: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field = field


def xml_fields(text: str | bytes) -> dict[str, str]:
    """The child elements of a flat WeCom <xml> document, as text. Entities, DTDs and external
    references are refused (defusedxml)."""
    try:
        root = SafeXML.fromstring(text)
    except (SafeXML.ParseError, DefusedXmlException) as exc:
        raise MalformedCallback(f"the body is not acceptable XML: {type(exc).__name__}") from None
    return {child.tag: (child.text or "").strip() for child in root}


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def require(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if not value:
        raise MalformedCallback(f"{name} is missing", field=name)
    return str(value)


def xml_items(text: str | bytes, name: str) -> list[str]:
    """The `<Item>`s of one list element (MemChangeList), in order. WeCom sent such lists
    as one comma-separated text before it nested them, so a flat text is split instead."""
    try:
        root = SafeXML.fromstring(text)
    except (SafeXML.ParseError, DefusedXmlException) as exc:
        raise MalformedCallback(f"the body is not acceptable XML: {type(exc).__name__}") from None
    element = root.find(name)
    if element is None:
        return []
    items = [(item.text or "").strip() for item in element.findall("Item")]
    if not items:
        items = (element.text or "").split(",")
    return [item.strip() for item in items if item.strip()]
