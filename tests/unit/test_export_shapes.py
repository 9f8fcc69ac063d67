"""Exports work out who an event names once per shape of event: two events of one shape must
name the same people, so the shape holds every field that decides who they are."""

from __future__ import annotations

from typing import Any

import pytest

from infra.events import EventRecord
from infra.exports import _CUSTOMER_FIELDS, _STAFF_FIELDS, _shape


def _record(context: str = "conversations", actor: str = "staff:a", **data: Any) -> EventRecord:
    return EventRecord(
        1, "9c1ffc0c-0a5b-5564-a45c-ed14875c5776", 1, "t", context, "Happened",
        "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", actor, "test", "c", "x", data,
    )  # fmt: skip


@pytest.mark.parametrize(
    "field",
    [*_STAFF_FIELDS, *_CUSTOMER_FIELDS, "sender", "recipients", "room_id", "subject"],
)
def test_every_field_that_names_someone_is_part_of_the_shape(field: str) -> None:
    one = _record(**{field: ["x"] if field == "recipients" else "x"})
    other = _record(**{field: ["y"] if field == "recipients" else "y"})
    assert _shape(one) != _shape(other)


def test_the_actor_the_context_and_a_customers_own_id_are_part_of_the_shape() -> None:
    assert _shape(_record(actor="staff:a")) != _shape(_record(actor="staff:b"))
    assert _shape(_record(context="tickets")) != _shape(_record(context="orders"))
    customer = _record(context="customers")
    assert _shape(customer) != _shape(customer._replace(originator_id="another"))
    # Elsewhere, the aggregate's own id says nothing about who is named.
    assert _shape(_record()) == _shape(_record()._replace(originator_id="another"))


def test_fields_that_name_nobody_do_not_split_shapes() -> None:
    assert _shape(_record(sender="a", text="hello")) == _shape(_record(sender="a", text="bye"))
