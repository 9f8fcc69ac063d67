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
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from domain.shared import Gone
from infra.db import Database

_INSERT_CHUNK = 300  # rows per multi-row INSERT: 900 parameters, under SQLite's bound
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
        self._terms_key = derive_key(master_key, "search-terms")
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

    def unseal(self, customer_id: UUID, token: str, *, trust_cache: bool = False) -> str | None:
        """Plaintext, or None once the key is destroyed. By default the key's existence is
        checked in the key store, so a destruction by another process takes effect at once;
        a projector that follows the log (and so sees every erasure) may trust its cache."""
        if trust_cache:
            key = self._data_key(customer_id, create=False)
            return None if key is None else _open(key, customer_id, token)
        return self.unseal_many([(customer_id, token)])[0]

    def unseal_many(self, items: list[tuple[UUID, str]]) -> list[str | None]:
        """Several values with one key-store round trip: keys destroyed elsewhere are dropped
        from the cache before anything is opened."""
        if not all(token.startswith(TOKEN_PREFIX) for _, token in items):
            raise ValueError("not a sealed value")
        alive = self.alive({customer_id for customer_id, _ in items})
        out: list[str | None] = []
        for customer_id, token in items:
            key = self._data_key(customer_id, create=False) if customer_id in alive else None
            out.append(None if key is None else _open(key, customer_id, token))
        return out

    def alive(self, ids: set[UUID]) -> set[UUID]:
        """Which of these keys still exist (not destroyed, not tombstoned)."""
        alive = {i for i, wrapped in self._stored(ids).items() if wrapped is not None}
        with self._lock:
            for gone in ids - alive:
                self._cache.pop(gone, None)
        return alive

    def open_with_any(
        self, items: list[tuple[str, Iterable[UUID]]]
    ) -> list[tuple[str | None, bool]]:
        """Sealed values whose key id is not recorded beside them, each with the key ids that
        may have sealed it (for the audit trail, which shows events of every context): see
        `KeyRing.open_with_any`. A ring of its own, so the key store is asked afresh (keys
        destroyed elsewhere are dropped from the cache); no key is ever made."""
        return KeyRing(self).open_with_any(items)

    def key_ring(self) -> KeyRing:
        """Keys for one long read (an export), each asked of the key store once."""
        return KeyRing(self)

    def ensure_keys(self, ids: set[UUID]) -> None:
        """Make (or load) many keys at once, for a bulk command about to seal for them. One
        transaction offers a new key for every subject not cached (`INSERT .. ON CONFLICT DO
        NOTHING`) and reads back what the store holds for them all, whoever made it: one
        round trip for the answer, where a read, a write and a read back took three
        transactions. Destroyed keys stay destroyed (their tombstone row is never
        replaced, and reads back as destroyed)."""
        with self._lock:
            wanted = sorted(str(i) for i in ids if i not in self._cache)
        if not wanted:
            return
        # In id order, so two processes making overlapping keys never wait on each other
        # crosswise (a deadlock) inside their transactions.
        now = datetime.now(UTC).isoformat()
        rows = [
            (
                name,
                base64.b64encode(aes_key_wrap(self._kek, AESGCM.generate_key(256))).decode(),
                now,
            )
            for name in wanted
        ]
        stored: list[tuple[str, str | None]] = []
        with self.db.transaction(pipeline=True) as cur:
            if self.db.dialect == "postgres":
                # No wait for this commit's own flush: a new key matters only once something
                # sealed with it is stored, and that later commit (any process's) flushes
                # the write-ahead log up to itself, so this row with it. Lost in a crash
                # before then, the key had sealed nothing that was kept.
                cur.execute("SET LOCAL synchronous_commit = off")
            for start in range(0, len(rows), _INSERT_CHUNK):
                chunk = rows[start : start + _INSERT_CHUNK]
                cur.execute(
                    "INSERT INTO scrm_data_keys (customer_id, wrapped, created_at) VALUES "
                    + ", ".join(["(?, ?, ?)"] * len(chunk))
                    + " ON CONFLICT (customer_id) DO NOTHING",
                    [value for row in chunk for value in row],
                )
            for start in range(0, len(wanted), 500):
                names = wanted[start : start + 500]
                cur.execute(
                    "SELECT customer_id, wrapped FROM scrm_data_keys"
                    f" WHERE customer_id IN ({','.join('?' * len(names))})",
                    names,
                )
                stored.extend(cur.fetchall())
        for customer_id, wrapped in stored:
            if wrapped is not None:
                key = aes_key_unwrap(self._kek, base64.b64decode(wrapped))
                self._remember(UUID(customer_id), key)

    def _stored(self, ids: Iterable[UUID]) -> dict[UUID, str | None]:
        """The key store's rows for these ids (wrapped key, None once destroyed), 500 at a
        time; ids with no row are absent."""
        wanted = [str(i) for i in ids]
        found: dict[UUID, str | None] = {}
        if self.db.dialect == "postgres":  # one array parameter, not hundreds to parse
            for customer_id, wrapped in self.db.query(
                "SELECT customer_id, wrapped FROM scrm_data_keys WHERE customer_id = ANY(?)",
                (wanted,),
            ):
                found[UUID(customer_id)] = wrapped
            return found
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for customer_id, wrapped in self.db.query(
                "SELECT customer_id, wrapped FROM scrm_data_keys"
                f" WHERE customer_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                found[UUID(customer_id)] = wrapped
        return found

    def blind_index(self, kind: str, value: str) -> str:
        return hmac.new(self._index_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def search_terms(self, normalised: str) -> set[int]:
        """Keyed hashes of a text's character bigrams, for substring search over content that is
        only stored sealed: the index holds no words, and without the key no bigram can be
        guessed back. 64 bits are plenty: a collision only adds a candidate that the decrypting
        check then drops."""
        key = self._terms_key
        return {
            int.from_bytes(
                hashlib.blake2b(normalised[i : i + 2].encode(), digest_size=8, key=key).digest(),
                "big",
                signed=True,
            )
            for i in range(len(normalised) - 1)
        }

    def destroy(self, customer_id: UUID) -> bool:
        """Crypto-shred one data subject's personal data. A subject with no key yet gets a
        tombstone, so nothing sealed for it later becomes readable. Answers whether a key was
        destroyed now (False when there was none or it was already gone)."""
        now = datetime.now(UTC).isoformat()
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE scrm_data_keys SET wrapped = NULL, destroyed_at = ?"
                " WHERE customer_id = ? AND wrapped IS NOT NULL",
                (now, str(customer_id)),
            )
            changed = cur.rowcount > 0
            cur.execute(
                "INSERT INTO scrm_data_keys (customer_id, wrapped, created_at, destroyed_at)"
                " VALUES (?, NULL, ?, ?) ON CONFLICT (customer_id) DO NOTHING",
                (str(customer_id), now, now),
            )
        with self._lock:
            self._cache.pop(customer_id, None)
        return changed

    def forget(self, customer_id: UUID) -> None:
        """Drop a cached key (another process destroyed it)."""
        with self._lock:
            self._cache.pop(customer_id, None)

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


class KeyRing:
    """The data keys one reader needs, each asked of the key store once and kept ready to
    decrypt with (an export opens hundreds of thousands of values under a few thousand keys:
    asking the store per batch, and unwrapping per batch, was most of its cost). Whether a key
    was destroyed is as the store said when the ring first asked for it: a reader that must
    not show anything erased meanwhile checks erasures again at its end (infra/exports.py)."""

    def __init__(self, vault: Vault):
        self._vault = vault
        self._ciphers: dict[UUID, tuple[AESGCM, bytes]] = {}  # key id -> (cipher, its AAD)
        self._destroyed: set[UUID] = set()
        self._absent: set[UUID] = set()  # never had a key

    def open_with_any(
        self, items: list[tuple[str, Iterable[UUID]]]
    ) -> list[tuple[str | None, bool]]:
        """Each value opens with the candidate whose AES-GCM authentication succeeds: the key
        id is the associated data, so a wrong candidate fails cleanly. Answers
        `(plaintext, erased)` per value: `(text, False)` opened; `(None, True)` no live
        candidate opens it and one of its candidates' keys is destroyed (erased);
        `(None, False)` no candidate opens it."""
        wanted = [(token, tuple(ids)) for token, ids in items]
        out = [self._with_known(token, ids) for token, ids in wanted]
        # Candidates never asked of the key store, for the values the known keys did not
        # open: asked all at once, then those values tried again. (Most values open with the
        # first candidate; the rest, an event's own id, need not be asked at all then.)
        failed = [n for n, plain in enumerate(out) if plain is None]
        unknown = {
            i
            for n in failed
            for i in wanted[n][1]
            if i not in self._ciphers and i not in self._destroyed and i not in self._absent
        }
        if unknown:
            self._load(unknown)
            for n in failed:
                out[n] = self._with_known(*wanted[n])
        destroyed = self._destroyed
        return [
            (plain, plain is None and any(i in destroyed for i in ids))
            for plain, (_, ids) in zip(out, wanted, strict=True)
        ]

    def _with_known(self, token: str, ids: tuple[UUID, ...]) -> str | None:
        from cryptography.exceptions import InvalidTag

        if not token.startswith(TOKEN_PREFIX):
            return None
        raw = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :])
        ciphers = self._ciphers
        for i in ids:
            found = ciphers.get(i)
            if found is None:
                continue
            try:
                return found[0].decrypt(raw[:12], raw[12:], found[1]).decode()
            except (InvalidTag, ValueError):  # another subject's key
                continue
        return None

    def _load(self, ids: set[UUID]) -> None:
        vault = self._vault
        stored = vault._stored(ids)
        self._absent |= ids - stored.keys()
        with vault._lock:
            for gone in ids - {i for i, wrapped in stored.items() if wrapped is not None}:
                vault._cache.pop(gone, None)
            cached = {i: vault._cache[i] for i in stored if i in vault._cache}
        for i, wrapped in stored.items():
            if wrapped is None:
                self._destroyed.add(i)
                continue
            key = cached.get(i) or aes_key_unwrap(vault._kek, base64.b64decode(wrapped))
            self._ciphers[i] = (AESGCM(key), i.bytes)


def _open(key: bytes, customer_id: UUID, token: str) -> str:
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError("not a sealed value")
    raw = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :])
    return AESGCM(key).decrypt(raw[:12], raw[12:], customer_id.bytes).decode()


def mask_phone(phone: str) -> str:
    """Display masking for roles without clearance: 138****5678."""
    if len(phone) <= 7:
        return phone[:1] + "*" * (len(phone) - 1)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)
