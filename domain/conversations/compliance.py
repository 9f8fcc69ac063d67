"""敏感词: pure matching rules over domain/keywords.py: every pattern of every pack in force is
found in one pass, with separators and full-width forms unable to hide a word."""

from __future__ import annotations

from dataclasses import dataclass

from domain.keywords import KeywordIndex, normalise

__all__ = ["SEVERITIES", "SHIPPED_PACKS", "Hit", "Matcher", "Rule", "normalise", "text_of"]

SEVERITIES = ("low", "medium", "high", "critical")


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
        self._index = KeywordIndex(
            (rule.word, Hit(pack_id, version, rule.word, rule.severity))
            for pack_id, version, rules in packs
            for rule in rules
        )
        self.size = self._index.size

    def scan(self, text: str) -> list[Hit]:
        seen: dict[tuple[str, str], Hit] = {}
        for hit in self._index.find(text):
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
