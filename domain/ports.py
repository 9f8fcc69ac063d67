"""Ports the domain's service layer needs from infrastructure, as protocols.

The composition root (infra/bootstrap.py) plugs real implementations in; the domain never
imports infra.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from domain.shared import DomainError


class PersonalDataVault(Protocol):
    """Encrypts personal data with the customer's own key (crypto-shredding on erasure)."""

    def seal(self, customer_id: UUID, plaintext: str) -> str:
        """Ciphertext token safe to store in events and read models.

        Raises Gone (code `erased`) once the customer's key has been destroyed."""
        ...

    def unseal(self, customer_id: UUID, token: str, *, trust_cache: bool = False) -> str | None:
        """Plaintext, or None when the customer's key has been destroyed (erased)."""
        ...

    def unseal_many(self, items: list[tuple[UUID, str]]) -> list[str | None]:
        """Several values at once, each None where its key has been destroyed."""
        ...

    def ensure_keys(self, ids: set[UUID]) -> None:
        """Prepare many keys at once before sealing for them (bulk commands)."""
        ...

    def destroy(self, customer_id: UUID) -> bool:
        """Crypto-shred one data subject (erasure). True if a key was destroyed now."""
        ...

    def blind_index(self, kind: str, value: str) -> str:
        """Keyed hash for equality lookups (same phone -> same index) without clear text."""
        ...


class AggregateLocks(Protocol):
    """Serialises commands on one hot aggregate (a busy channel code) across threads and
    processes, so they queue instead of losing optimistic races over and over. Correctness
    never depends on it: the store's version check still decides."""

    def hold(self, aggregate_id: UUID) -> AbstractContextManager[None]: ...


class WelcomeSender(Protocol):
    """Sends a channel code's welcome message (欢迎语) to a customer who has just added a
    staff member, with the WelcomeCode of that add (WeCom's externalcontact/send_welcome_msg).
    A WelcomeCode works once and for 20 seconds, so callers ask at most once per code."""

    def send_welcome(self, welcome_code: str, text: str) -> str | None:
        """None once WeCom accepted the message; otherwise why not, to be recorded."""
        ...


class OrderDetailUnavailable(DomainError):
    """A platform's order detail API could not be asked, or answered with an error (HTTP 502).
    Nothing of the push is recorded, so the platform's retry can succeed. `code` says which:
    `platform_unreachable`, `platform_error`, or `detail_not_current` (the detail is behind
    the status the push announced). `detail` names the API and its error code, never a
    secret or personal data."""

    code = "platform_unavailable"


class OrderDetailFetcher(Protocol):
    """The order detail a platform's open API gives for one order id, for pushes that carry
    only ids and a status (Douyin order.orderDetail, Youzan youzan.trade.get)."""

    def fetch(self, platform: str, order_id: str) -> dict[str, Any]:
        """The detail in the platform's own documented shape (the response's `data`), ready
        for that platform's adapter. Raises OrderDetailUnavailable when the API is unreachable
        or answers an error, and InvalidInput (code `detail_required`, naming the missing
        settings) when fetching is not configured for the platform."""
        ...


@dataclass(frozen=True)
class TransferResult:
    """What a payout gateway answered: `settled` (with its reference), `failed` (with the
    reason; a retry may succeed) or `pending` (ask again later with the same key)."""

    status: str
    reference: str | None = None
    reason: str | None = None


class PayoutGateway(Protocol):
    """Sends money to a payee: WeChat Pay's transfer to a wallet in production. The same
    idempotency key must never pay twice: a gateway asked again answers the first result."""

    def transfer(
        self, idempotency_key: str, payee_id: str, account: str | None, amount: int
    ) -> TransferResult: ...


class WecomTransfers(Protocol):
    """Asks WeCom to move customers and customer groups from one member to another:
    externalcontact/transfer_customer and groupchat/onjob_transfer while the member is in
    service (在职转接), externalcontact/resigned/transfer_customer and groupchat/transfer once
    they have left (离职继承). Each answers WeCom's errcode per customer or group (0: the
    transfer has started; a customer may still refuse within 24 hours, which WeCom reports
    later as a transfer_fail callback)."""

    def transfer_customers(
        self,
        *,
        departed: bool,
        handover_userid: str,
        takeover_userid: str,
        external_userids: list[str],
    ) -> dict[str, int]:
        """errcode per external userid (at most 100 per call, as WeCom takes them)."""
        ...

    def transfer_groups(
        self, *, departed: bool, chat_ids: list[str], new_owner: str
    ) -> dict[str, int]:
        """errcode per chat id."""
        ...


@dataclass(frozen=True)
class OutreachResult:
    """What an outbound message gateway answered: `sent` (with its reference) or `failed`
    (with the reason; a retry with the same key may succeed)."""

    status: str
    reference: str | None = None
    reason: str | None = None


class OutreachGateway(Protocol):
    """Sends a templated message to a customer: a WeCom message to an external contact
    (externalcontact/add_msg_template) or an Official Account template message
    (message/template/send). The same idempotency key never sends twice: a gateway asked
    again answers the first result."""

    def send(
        self,
        idempotency_key: str,
        channel: str,
        recipient: str,
        template: str,
        params: dict[str, Any],
    ) -> OutreachResult: ...
