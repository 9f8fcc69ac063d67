"""Finding many keywords in a text at once, the same way everywhere: sensitive words in the
archive, routing rules for incoming messages, service templates for new tickets.

Text and keywords are normalised alike — full-width to half-width, case folded, separators
dropped (保-本, 保 本, 保．本 all read 保本) — then one Aho-Corasick pass finds every keyword.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Generic, TypeVar

import ahocorasick  # type: ignore[import-not-found]

T = TypeVar("T")

# Full-width ASCII (U+FF01-FF5E) and the ideographic space are the compatibility characters
# Chinese text is full of; mapping them first is exactly what NFKC would do to them, and leaves
# most messages already normalised, so the much slower full NFKC pass is usually skipped.
_WIDE = {0x3000: " ", **{c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}}
_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")  # \w without _ is exactly categories L and N


def normalise(text: str) -> str:
    """What a keyword is matched against: NFKC (full-width → half-width), case-folded, with
    whitespace, punctuation and symbols removed so separators slipped in do not hide a word."""
    text = text.translate(_WIDE)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return _NOT_LETTER_OR_DIGIT.sub("", text.casefold())


class KeywordIndex(Generic[T]):
    """Keywords, each with the things it stands for, compiled once; `find` is one pass."""

    def __init__(self, entries: Iterable[tuple[str, T]]):
        self._automaton = ahocorasick.Automaton()
        self.size = 0
        for word, value in entries:
            key = normalise(word)
            if not key:
                continue
            found = self._automaton.get(key, [])
            self._automaton.add_word(key, [*found, value])
            self.size += 1
        if self.size:
            self._automaton.make_automaton()

    def find(self, text: str) -> list[T]:
        """Every value of every keyword in `text`, in order of where the keyword ends (a value
        appears once per occurrence of its keyword)."""
        if not self.size or not text:
            return []
        return [v for _, values in self._automaton.iter(normalise(text)) for v in values]
