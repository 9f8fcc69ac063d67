"""敏感词: pure matching rules. Text and patterns are normalised the same way — full-width to
half-width, case folded, and separators dropped (保-本, 保 本, 保．本 all read 保本) — then one
Aho-Corasick pass finds every pattern of every pack at once."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import ahocorasick  # type: ignore[import-not-found]

SEVERITIES = ("low", "medium", "high", "critical")


# Full-width ASCII (U+FF01-FF5E) and the ideographic space are the compatibility characters
# Chinese text is full of; mapping them first is exactly what NFKC would do to them, and leaves
# most messages already normalised, so the much slower full NFKC pass is usually skipped.
_WIDE = {0x3000: " ", **{c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}}
_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")  # \w without _ is exactly categories L and N


def normalise(text: str) -> str:
    """What a rule is matched against: NFKC (full-width → half-width), case-folded, with
    whitespace, punctuation and symbols removed so separators slipped in do not hide a word."""
    text = text.translate(_WIDE)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return _NOT_LETTER_OR_DIGIT.sub("", text.casefold())


# Payload keys that hold references, not words someone wrote.
_NOT_TEXT = frozenset(
    {
        "sdkfileid",
        "md5sum",
        "filesize",
        "fileext",
        "play_length",
        "voice_size",
        "width",
        "height",
        "latitude",
        "longitude",
        "zoom",
        "imagetext",
    }
)


def text_of(payload: object) -> str:
    """Every string a person wrote in a msgaudit payload: what is scanned and searched."""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        return "\n".join(text_of(v) for k, v in payload.items() if k not in _NOT_TEXT)
    if isinstance(payload, list):
        return "\n".join(text_of(v) for v in payload)
    return ""


@dataclass(frozen=True)
class Rule:
    word: str
    severity: str


@dataclass(frozen=True)
class Hit:
    pack_id: str
    pack_version: int
    word: str
    severity: str


class Matcher:
    """All rules of all packs in force, compiled once; `scan` is one pass over the text."""

    def __init__(self, packs: list[tuple[str, int, list[Rule]]]):
        self._automaton = ahocorasick.Automaton()
        self.size = 0
        for pack_id, version, rules in packs:
            for rule in rules:
                key = normalise(rule.word)
                if not key:
                    continue
                found = self._automaton.get(key, [])
                self._automaton.add_word(
                    key, [*found, Hit(pack_id, version, rule.word, rule.severity)]
                )
                self.size += 1
        if self.size:
            self._automaton.make_automaton()

    def scan(self, text: str) -> list[Hit]:
        if not self.size or not text:
            return []
        seen: dict[tuple[str, str], Hit] = {}
        for _, hits in self._automaton.iter(normalise(text)):
            for hit in hits:
                seen.setdefault((hit.pack_id, hit.word), hit)  # one hit per rule per message
        return list(seen.values())


# Packs shipped with the product, by industry. Tenants add their own words as a pack of their
# own; every change is a new version, recorded as an event.
SHIPPED_PACKS: dict[str, list[Rule]] = {
    "finance": [
        Rule(w, s)
        for w, s in [
            ("保本", "critical"),
            ("保本保息", "critical"),
            ("稳赚", "critical"),
            ("稳赚不赔", "critical"),
            ("零风险", "critical"),
            ("无风险", "high"),
            ("保证收益", "critical"),
            ("刚性兑付", "high"),
            ("高收益无风险", "critical"),
            ("内幕消息", "high"),
        ]
    ],
    "education": [
        Rule(w, s)
        for w, s in [
            ("保过", "critical"),
            ("包过", "critical"),
            ("免试入学", "high"),
            ("包录取", "critical"),
            ("保录取", "critical"),
            ("内部名额", "high"),
            ("不过退款", "medium"),
        ]
    ],
    "medical": [
        Rule(w, s)
        for w, s in [
            ("根治", "critical"),
            ("100%有效", "critical"),
            ("无副作用", "high"),
            ("药到病除", "high"),
            ("包治百病", "critical"),
            ("永不复发", "critical"),
            ("立竿见影", "medium"),
        ]
    ],
}
