"""The outbound message gateway (WeCom messages to external contacts, Official Account
template messages).

Neither WeCom's externalcontact/add_msg_template nor the Official Account's
message/template/send can be reached from here, so the shipped gateway records what it was
asked to send, as `RecordingPayoutGateway` does for payouts. Like the real ones behind an
idempotency key, a key sent already answers the first result and sends nothing more."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from domain.ports import OutreachResult
from infra.db import Database
from infra.events import dumps, sortable_time


class RecordingOutreachGateway:
    """Records each message instead of sending it. `fail_next` holds reasons: each send
    while it is not empty fails with the next one (a gateway outage, for retries)."""

    def __init__(self, db: Database):
        self.db = db
        self.fail_next: list[str] = []
        self.calls: list[str] = []  # every key asked, in this process: a re-send shows here
        with db.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS outreach_gateway_messages ("
                " idempotency_key TEXT PRIMARY KEY, channel TEXT NOT NULL,"
                " recipient TEXT NOT NULL, template TEXT NOT NULL, params TEXT NOT NULL,"
                " reference TEXT NOT NULL, sent_at TEXT NOT NULL)"
            )

    def send(
        self,
        idempotency_key: str,
        channel: str,
        recipient: str,
        template: str,
        params: dict[str, Any],
    ) -> OutreachResult:
        self.calls.append(idempotency_key)
        if self.fail_next:
            return OutreachResult("failed", reason=self.fail_next.pop(0))
        reference = "msg-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO outreach_gateway_messages (idempotency_key, channel, recipient,"
                " template, params, reference, sent_at) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                (
                    idempotency_key, channel, recipient, template, dumps(params).decode(),
                    reference, sortable_time(datetime.now(UTC)),
                ),
            )  # fmt: skip
        return OutreachResult("sent", reference=reference)

    def messages(self) -> list[tuple[str, str, str, str]]:
        """(channel, recipient, template, idempotency key) of every message sent, in order."""
        return [
            (str(c), str(r), str(t), str(k))
            for c, r, t, k in self.db.query(
                "SELECT channel, recipient, template, idempotency_key"
                " FROM outreach_gateway_messages ORDER BY sent_at, idempotency_key"
            )
        ]
