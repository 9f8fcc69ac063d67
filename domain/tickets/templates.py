"""The service template library (智能项目库): standard services — installation, repair,
return/exchange, consultation — with their steps, checklist, materials and standard answers.

A new ticket is matched to a template by service type, product and the words of its
description; the match (which template, which version, why) is recorded on the ticket.
Templates are configuration: every version is an event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.keywords import KeywordIndex
from domain.shared import Conflict, InvalidInput, Meta, ScrmAggregate, derived_id, require_slug

MAX_TERMS = 100
PRODUCT_WEIGHT = 5  # a product named outweighs a few generic words
KEYWORD_WEIGHT = 1


def _texts(raw: Any, where: str, *, required: bool = False, limit: int = MAX_TERMS) -> list[str]:
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or (required and not raw) or len(raw) > limit:
        raise InvalidInput(
            f"{where} must be a {'non-empty ' if required else ''}list of at most {limit} texts",
            field=where,
        )
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item.strip() or len(item) > 500:
            raise InvalidInput(
                f"{where}[{i}] must be a text of 1-500 characters", field=f"{where}[{i}]"
            )
        out.append(item.strip())
    return out


def parse_template(raw: Any) -> dict[str, Any]:
    """A template as stored: validated, with every list present."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a template must be an object", field="template")
    known = (
        "key",
        "name",
        "service_type",
        "products",
        "keywords",
        "steps",
        "checklist",
        "materials",
        "answers",
    )
    for key in raw:
        if key not in known:
            raise InvalidInput(f"unknown property {key!r} (known: {', '.join(known)})", field=key)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise InvalidInput("name must be a text of 1-100 characters", field="name")
    materials = raw.get("materials", [])
    if not isinstance(materials, list):
        raise InvalidInput("materials must be a list", field="materials")
    for i, m in enumerate(materials):
        if (
            not isinstance(m, Mapping)
            or not isinstance(m.get("name"), str)
            or not m["name"].strip()
            or set(m) - {"name", "unit", "quantity"}
        ):
            raise InvalidInput("a material is {name, unit?, quantity?}", field=f"materials[{i}]")
    answers = raw.get("answers", [])
    if not isinstance(answers, list) or any(
        not isinstance(a, Mapping)
        or set(a) != {"question", "answer"}
        or not all(isinstance(a[k], str) and a[k].strip() for k in a)
        for a in answers
    ):
        raise InvalidInput("answers must be a list of {question, answer}", field="answers")
    template = {
        "key": require_slug(raw.get("key", ""), "key"),
        "name": name.strip(),
        "service_type": require_slug(raw.get("service_type", ""), "service_type"),
        "products": _texts(raw.get("products"), "products"),
        "keywords": _texts(raw.get("keywords"), "keywords"),
        "steps": _texts(raw.get("steps"), "steps", required=True),
        "checklist": _texts(raw.get("checklist"), "checklist"),
        "materials": [dict(m) for m in materials],
        "answers": [dict(a) for a in answers],
    }
    if not template["products"] and not template["keywords"]:
        raise InvalidInput(
            "a template needs products or keywords to be matched by", field="products"
        )
    return template


class ServiceTemplate(ScrmAggregate):
    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("service-template", key)

    @event("Published")
    def __init__(self, key: str, template: dict[str, Any], meta: Meta):
        self.key = key
        self.versions = [template]
        self.retired = False

    @property
    def current_version(self) -> int:
        return len(self.versions)

    def revise(self, template: dict[str, Any], expected_version: int | None, meta: Meta) -> int:
        if expected_version is not None and expected_version != self.current_version:
            raise Conflict(
                f"template {self.key} is at version {self.current_version}, not {expected_version}",
                code="stale_version",
            )
        if template["key"] != self.key:
            raise InvalidInput(f"the key must stay {self.key!r}", field="key")
        if template == self.versions[-1] and not self.retired:
            raise Conflict("this template is the current version already", code="unchanged")
        self._revised(template=template, template_version=self.current_version + 1, meta=meta)
        return self.current_version

    @event("Revised")
    def _revised(self, template: dict[str, Any], template_version: int, meta: Meta) -> None:
        self.versions = [*self.versions, template]
        self.retired = False

    def retire(self, reason: str, meta: Meta) -> None:
        if self.retired:
            raise Conflict(f"template {self.key} is retired already", code="already_retired")
        self._retired(key=self.key, reason=reason, meta=meta)

    @event("Retired")
    def _retired(self, key: str, reason: str, meta: Meta) -> None:
        self.retired = True


@dataclass(frozen=True)
class TemplateMatch:
    key: str
    version: int
    score: int
    matched: tuple[str, ...]  # the products and words that matched, for the record

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "version": self.version,
            "score": self.score,
            "matched": list(self.matched),
        }


def match_template(
    templates: Sequence[tuple[int, dict[str, Any]]],
    *,
    service_type: str,
    product: str | None,
    description: str,
) -> TemplateMatch | None:
    """The best template of the ticket's service type: products named weigh more than
    generic words; nothing matched beyond the service type is no match. Ties go to the
    template whose key sorts first, so the choice is reproducible."""
    candidates = [(v, t) for v, t in templates if t["service_type"] == service_type]
    index: KeywordIndex[tuple[str, str, str]] = KeywordIndex(
        [(p, (t["key"], "product", p)) for _, t in candidates for p in t["products"]]
        + [(k, (t["key"], "keyword", k)) for _, t in candidates for k in t["keywords"]]
    )
    found: dict[str, set[tuple[str, str]]] = {}
    for key, kind, term in index.find(f"{product or ''}\n{description}"):
        found.setdefault(key, set()).add((kind, term))
    best: TemplateMatch | None = None
    for version, t in sorted(candidates, key=lambda c: c[1]["key"]):
        terms = found.get(t["key"], set())
        score = sum(PRODUCT_WEIGHT if kind == "product" else KEYWORD_WEIGHT for kind, _ in terms)
        if score and (best is None or score > best.score):
            best = TemplateMatch(t["key"], version, score, tuple(sorted(term for _, term in terms)))
    return best


LIBRARY = Path(__file__).parent / "library"


def shipped_templates() -> list[dict[str, Any]]:
    """The starting set for home appliances and smart locks (library/templates.json)."""
    raw = json.loads((LIBRARY / "templates.json").read_text(encoding="utf-8"))
    return [parse_template(t) for t in raw]
