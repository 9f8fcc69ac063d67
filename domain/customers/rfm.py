"""Recency, frequency and monetary scores (RFM) of a customer's purchases, 1 (low) to 5 (high).

The bands are configuration that decides what the portrait shows and which segments a
customer falls into, so they are event-sourced: every version is an event with the time it
takes effect, and a score names the model version that gave it.

Bands are absolute, not quintiles of the population: a customer's score then depends on their
own purchases only, does not shift when others buy, and can be explained in one line
("last paid order 12 days ago, ≤ 30 days → R 5").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import Conflict, InvalidInput, Meta, ScrmAggregate, Versions, derived_id
from domain.store import ScrmApplication


@dataclass(frozen=True)
class RfmBands:
    # Four ascending upper bounds in days: ≤ recency[0] scores 5, ≤ recency[1] 4, ... else 1.
    recency_days: tuple[int, int, int, int]
    # Four ascending lower bounds: ≥ frequency[0] paid orders scores 2, ... ≥ frequency[3] 5.
    frequency: tuple[int, int, int, int]
    # Four ascending lower bounds in fen of lifetime value, scored like frequency.
    monetary: tuple[int, int, int, int]

    def score(self, days_since_last_order: int, orders: int, lifetime_value: int) -> dict[str, int]:
        r = 5 - sum(days_since_last_order > bound for bound in self.recency_days)
        f = 1 + sum(orders >= bound for bound in self.frequency)
        m = 1 + sum(lifetime_value >= bound for bound in self.monetary)
        return {"r": r, "f": f, "m": m}

    def as_dict(self) -> dict[str, list[int]]:
        return {
            "recency_days": list(self.recency_days),
            "frequency": list(self.frequency),
            "monetary": list(self.monetary),
        }

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> RfmBands:
        """Validated bands; an error names the band at fault (HTTP 422)."""
        if not isinstance(raw, Mapping):
            raise InvalidInput("bands must be an object", field="bands")
        found: dict[str, tuple[int, int, int, int]] = {}
        for name, minimum in (("recency_days", 0), ("frequency", 1), ("monetary", 0)):
            value = raw.get(name)
            if (
                not isinstance(value, list | tuple)
                or len(value) != 4
                or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
            ):
                raise InvalidInput(f"{name} must be a list of 4 whole numbers", field=name)
            if value[0] < minimum or any(a >= b for a, b in pairwise(value)):
                raise InvalidInput(
                    f"{name} must be strictly ascending, starting at {minimum} or more",
                    field=name,
                )
            found[name] = (value[0], value[1], value[2], value[3])
        unknown = sorted(set(raw) - set(found))
        if unknown:
            raise InvalidInput(f"unknown band {unknown[0]!r}", field=unknown[0])
        return cls(**found)


# The starting model: a month / a quarter / half a year / a year; 2, 3, 5, 10 paid orders;
# 500, 2,000, 5,000, 10,000 yuan of lifetime value.
DEFAULT_BANDS = RfmBands(
    recency_days=(30, 90, 180, 365),
    frequency=(2, 3, 5, 10),
    monetary=(50_000, 200_000, 500_000, 1_000_000),
)


class RfmModel(Versions, ScrmAggregate):
    """The tenant's one RFM model. Version 0 is DEFAULT_BANDS, in force until a version
    published here takes effect."""

    VERSION, WHAT = "model_version", "RFM model"

    @staticmethod
    def create_id() -> UUID:
        return derived_id("portrait", "rfm-model")

    @event("Published")
    def __init__(self, bands: dict[str, list[int]], effective_from: datetime, meta: Meta):
        self.versions = []
        self._add(bands, effective_from)

    def revise(self, bands: RfmBands, effective_from: datetime, meta: Meta) -> None:
        self._revised(
            bands=bands.as_dict(),
            effective_from=effective_from,
            model_version=len(self.versions) + 1,
            meta=meta,
        )

    @event("Revised")
    def _revised(
        self,
        bands: dict[str, list[int]],
        effective_from: datetime,
        model_version: int,
        meta: Meta,
    ) -> None:
        self._add(bands, effective_from)

    def _add(self, bands: dict[str, list[int]], effective_from: datetime) -> None:
        self._add_version(effective_from, bands=bands)


def publish_rfm_model(
    app: ScrmApplication,
    *,
    bands: Mapping[str, Any],
    effective_from: datetime,
    expected_version: int | None,
    meta: Meta,
) -> tuple[int, int | None]:
    """Publish the next version of the model. `expected_version` is the model version the
    caller last saw (0: none published yet); another admin's publication in between is a
    409, not a silent overwrite. Answers (model_version, position)."""
    parsed = RfmBands.parse(bands)
    if effective_from.tzinfo is None:
        raise InvalidInput("effective_from must include a timezone", field="effective_from")

    def attempt() -> tuple[int, int | None]:
        model = app.find(RfmModel, RfmModel.create_id())
        current = len(model.versions) if model is not None else 0
        if expected_version is not None and expected_version != current:
            raise Conflict(
                f"the RFM model is at version {current}, not {expected_version}",
                code="stale_version",
            )
        if model is None:
            model = RfmModel(bands=parsed.as_dict(), effective_from=effective_from, meta=meta)
        else:
            model.revise(parsed, effective_from, meta)
        return len(model.versions), app.save_all(model)

    return app.retrying(attempt)
