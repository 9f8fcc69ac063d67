"""A worker's service profile: the regions, service types and skills a member of staff (or an
installer working as one) takes tickets for. Assignment reads it from the roster read model."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import (
    InvalidInput,
    Meta,
    ScrmAggregate,
    derived_id,
    require_slug,
    require_text,
)

MAX_ITEMS = 50


def _labels(
    values: object, field: str, *, allow_empty: bool = False, free_text: bool = False
) -> list[str]:
    """Distinct, sorted; slugs (service types, skills) or short texts (regions: 杭州市)."""
    if not isinstance(values, list) or (not values and not allow_empty):
        what = "a list" if allow_empty else "a non-empty list"
        raise InvalidInput(f"{field} must be {what}", field=field)
    if len(values) > MAX_ITEMS:
        raise InvalidInput(f"{field} may list at most {MAX_ITEMS}", field=field)
    out = []
    for i, v in enumerate(values):
        where = f"{field}[{i}]"
        if not isinstance(v, str):
            raise InvalidInput(f"{where} must be text", field=where)
        out.append(require_text(v, where, max_len=80) if free_text else require_slug(v, where))
    return sorted(set(out))


class Worker(ScrmAggregate):
    @staticmethod
    def create_id(staff_id: str) -> UUID:
        return derived_id("worker", staff_id)

    @event("ProfileSet")
    def __init__(
        self,
        staff_id: str,
        regions: list[str],
        service_types: list[str],
        skills: list[str],
        capacity: int | None,
        meta: Meta,
    ):
        self.staff_id = staff_id
        self._set(regions, service_types, skills, capacity)

    @classmethod
    def profile(
        cls,
        staff_id: str,
        regions: object,
        service_types: object,
        skills: object,
        capacity: object,
        meta: Meta,
    ) -> Worker:
        return cls(staff_id=staff_id, meta=meta, **check(regions, service_types, skills, capacity))

    def change(
        self, regions: object, service_types: object, skills: object, capacity: object, meta: Meta
    ) -> bool:
        new = check(regions, service_types, skills, capacity)
        if new == {
            "regions": self.regions,
            "service_types": self.service_types,
            "skills": self.skills,
            "capacity": self.capacity,
        }:
            return False
        self._changed(staff_id=self.staff_id, **new, meta=meta)
        return True

    @event("ProfileChanged")
    def _changed(
        self,
        staff_id: str,
        regions: list[str],
        service_types: list[str],
        skills: list[str],
        capacity: int | None,
        meta: Meta,
    ) -> None:
        self._set(regions, service_types, skills, capacity)

    def _set(
        self, regions: list[str], service_types: list[str], skills: list[str], capacity: int | None
    ) -> None:
        self.regions, self.service_types, self.skills = regions, service_types, skills
        self.capacity = capacity


def check(
    regions: object, service_types: object, skills: object, capacity: object
) -> dict[str, Any]:
    if capacity is not None and (
        isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 1000
    ):
        raise InvalidInput("capacity must be a whole number from 1 to 1000", field="capacity")
    return {
        "regions": _labels(regions, "regions", free_text=True),
        "service_types": _labels(service_types, "service_types"),
        "skills": _labels(skills, "skills", allow_empty=True),
        "capacity": capacity,
    }
