"""Keyword search over the archive without storing its words.

Content is stored sealed with each data subject's key, so neither pg_trgm nor SQLite FTS can
see it. Instead this read model keeps, per message, the keyed hashes of the character bigrams
of its normalised text (the same normalisation the compliance scanner uses: full-width to
half-width, case, separators dropped). A query hashes its own bigrams, finds the messages that
hold all of them, and the caller confirms each candidate by decrypting it — the index narrows,
the plaintext decides. Chinese needs no word segmenter: any substring of two or more characters
is found. It works the same on SQLite and PostgreSQL, and an erased subject's rows go with the
key (a rebuild cannot re-create them: the content no longer decrypts).
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

import orjson

from domain.conversations.aggregates import ArchivedMessage
from domain.conversations.compliance import normalise, text_of
from domain.customers.aggregates import Customer
from domain.shared import InvalidInput, derived_id
from infra.events import EventRecord
from projections.base import Projection, handles

MIN_KEYWORD = 2  # one bigram; a single character would match a large share of any archive
MAX_KEYWORD = 100


class TermSource(Protocol):
    """What the index needs from the vault (infra.crypto.Vault)."""

    def unseal(self, customer_id: UUID, token: str, *, trust_cache: bool = False) -> str | None: ...

    def search_terms(self, normalised: str) -> set[int]: ...


class Search(Projection):
    name = "search"
    tables = ("search_terms", "search_documents")
    ddl = (
        "CREATE TABLE IF NOT EXISTS search_documents ("
        " message_id TEXT PRIMARY KEY, subject TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS search_documents_subject ON search_documents (subject)",
        "CREATE TABLE IF NOT EXISTS search_terms ("
        " term BIGINT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (term, message_id))",
    )

    def __init__(self, vault: TermSource | None = None):
        super().__init__()  # a batch's documents and terms are held; erasure writes first
        self.vault = vault

    def bind(self, vault: TermSource) -> None:
        self.vault = self.vault or vault

    @handles(ArchivedMessage, "Archived")
    def _archived(self, e: EventRecord, cur: Any) -> None:
        if self.vault is None:
            raise RuntimeError("the search index needs the vault (bootstrap passes it)")
        d = e.data
        if not d.get("sealed"):
            return  # stored without content (its subject was already erased)
        plain = self.vault.unseal(
            derived_id("subject", d["subject"]), d["sealed"], trust_cache=True
        )
        if plain is None:
            return  # erased before this (re)build reached it: nothing to index
        terms = self.vault.search_terms(normalise(text_of(orjson.loads(plain))))
        self.held.add(
            "INSERT INTO search_documents (message_id, subject) VALUES (?, ?)"
            " ON CONFLICT (message_id) DO NOTHING",
            (e.originator_id, d["subject"]),
        )
        for term in terms:
            self.held.add(
                "INSERT INTO search_terms (term, message_id) VALUES (?, ?)"
                " ON CONFLICT (term, message_id) DO NOTHING",
                (term, e.originator_id),
            )

    @handles(Customer, "Erased")
    def _erased(self, e: EventRecord, cur: Any) -> None:
        """An erased data subject's messages are no longer findable by their words."""
        subjects = e.data["subjects"]
        if not subjects:
            return
        self.held.write(cur)
        marks = ",".join("?" * len(subjects))
        cur.execute(
            "DELETE FROM search_terms WHERE message_id IN"
            f" (SELECT message_id FROM search_documents WHERE subject IN ({marks}))",
            subjects,
        )
        cur.execute(f"DELETE FROM search_documents WHERE subject IN ({marks})", subjects)


def keyword_filter(vault: TermSource, keyword: str) -> tuple[str, list[object], str]:
    """A WHERE clause over conversations_messages.message_id narrowing to candidate messages,
    its parameters, and the normalised keyword each candidate must then contain."""
    wanted = normalise(keyword)
    if not MIN_KEYWORD <= len(wanted) <= MAX_KEYWORD:
        raise InvalidInput(
            f"a keyword needs {MIN_KEYWORD}-{MAX_KEYWORD} letters or digits"
            " (punctuation and spaces are ignored)",
            field="keyword",
        )
    terms = sorted(vault.search_terms(wanted))
    marks = ",".join("?" * len(terms))
    clause = (
        "message_id IN (SELECT message_id FROM search_terms"
        f" WHERE term IN ({marks}) GROUP BY message_id HAVING COUNT(*) = ?)"
    )
    return clause, [*terms, len(terms)], wanted


def contains(plain_payload: Any, wanted: str) -> bool:
    """The decrypting check: does the message really contain the keyword?"""
    return wanted in normalise(text_of(plain_payload))
