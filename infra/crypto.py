"""Per-customer encryption of personal data (crypto-shredding), keyed hashes, token keys.

Each customer has a random AES-256 data key, stored wrapped (RFC 3394 AES key wrap) by the
master key. Destroying the wrapped key is erasure: events keep their ciphertext and still
verify, but nobody can read them again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from domain.shared import Gone
from infra.db import Database

TOKEN_PREFIX = "pd1."  # version the format so keys and ciphers can rotate later
KEYS_DDL = (
    "CREATE TABLE IF NOT EXISTS scrm_data_keys ("
    " customer_id TEXT PRIMARY KEY, wrapped TEXT, created_at TEXT NOT NULL,"
    " destroyed_at TEXT)"
)


def derive_key(master: bytes, purpose: str) -> bytes:
    """Independent sub-keys from the master key, one per purpose."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"scrm:{purpose}".encode()
    ).derive(master)


class Vault:
    """Implements domain.ports.PersonalDataVault."""

    def __init__(self, db: Database, master_key: bytes, cache_size: int = 10_000):
        self.db = db
        self._kek = master_key
        self._index_key = derive_key(master_key, "blind-index")
        self._cache: OrderedDict[UUID, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        with db.transaction() as cur:
            cur.execute(KEYS_DDL)

    def seal(self, customer_id: UUID, plaintext: str) -> str:
        key = self._data_key(customer_id, create=True)
        if key is None:  # erased: a new key would make new personal data readable again
            raise Gone("this customer's personal data has been erased", code="erased")
        nonce = os.urandom(12)
        ct = AESGCM(key).encrypt(nonce, plaintext.encode(), customer_id.bytes)
        return TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()

    def unseal(self, customer_id: UUID, token: str) -> str | None:
        if not token.startswith(TOKEN_PREFIX):
            raise ValueError("not a sealed value")
        key = self._data_key(customer_id, create=False)
        if key is None:
            return None
        raw = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :])
        return AESGCM(key).decrypt(raw[:12], raw[12:], customer_id.bytes).decode()

    def blind_index(self, kind: str, value: str) -> str:
        return hmac.new(self._index_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def destroy(self, customer_id: UUID) -> bool:
        """Crypto-shred one customer's personal data."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE scrm_data_keys SET wrapped = NULL, destroyed_at = ?"
                " WHERE customer_id = ? AND wrapped IS NOT NULL",
                (datetime.now(UTC).isoformat(), str(customer_id)),
            )
            changed = cur.rowcount > 0
        with self._lock:
            self._cache.pop(customer_id, None)
        return changed

    def _data_key(self, customer_id: UUID, *, create: bool) -> bytes | None:
        with self._lock:
            if customer_id in self._cache:
                self._cache.move_to_end(customer_id)
                return self._cache[customer_id]
        rows = self.db.query(
            "SELECT wrapped, destroyed_at FROM scrm_data_keys WHERE customer_id = ?",
            (str(customer_id),),
        )
        if rows and rows[0][0] is None:
            return None  # erased: never make a new key for an erased customer
        if not rows:
            if not create:
                return None
            key = AESGCM.generate_key(256)
            wrapped = base64.b64encode(aes_key_wrap(self._kek, key)).decode()
            with self.db.transaction() as cur:
                cur.execute(
                    "INSERT INTO scrm_data_keys (customer_id, wrapped, created_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (customer_id) DO NOTHING",
                    (str(customer_id), wrapped, datetime.now(UTC).isoformat()),
                )
                inserted = cur.rowcount == 1
            if not inserted:
                return self._data_key(customer_id, create=False)  # whoever won the race
            self._remember(customer_id, key)
            return key
        key = aes_key_unwrap(self._kek, base64.b64decode(rows[0][0]))
        self._remember(customer_id, key)
        return key

    def _remember(self, customer_id: UUID, key: bytes) -> None:
        with self._lock:
            self._cache[customer_id] = key
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


def mask_phone(phone: str) -> str:
    """Display masking for roles without clearance: 138****5678."""
    if len(phone) <= 7:
        return phone[:1] + "*" * (len(phone) - 1)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)
