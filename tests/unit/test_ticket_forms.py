"""Dynamic forms: a definition's field specs are validated when written, a submission is
validated on the server with every failing field named at once, and values come out in one
normalised spelling."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.shared import InvalidInput
from domain.tickets.forms import parse_fields, validate_form

INSTALL = parse_fields(
    [
        {"name": "serial_no", "type": "text", "required": True, "pattern": "[A-Z0-9]{8,20}"},
        {"name": "distance_km", "type": "number", "minimum": 0, "maximum": 500},
        {"name": "floors", "type": "number", "integer": True, "minimum": 0},
        {"name": "materials_fee", "type": "money", "minimum": 0, "maximum": 1_000_000},
        {"name": "visit_on", "type": "date", "earliest": "2026-01-01"},
        {"name": "supplied_by", "type": "enum", "values": ["installer", "customer"]},
        {"name": "contact", "type": "phone"},
        {"name": "photos", "type": "photo", "required": True, "max_items": 3},
        {"name": "signature", "type": "signature"},
    ],
    "transitions[0].form",
)


def errors(data: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as refused:
        validate_form(INSTALL, data)
    found = refused.value.extra["errors"]
    assert refused.value.field == found[0]["field"]
    return {e["field"]: e["detail"] for e in found}


def test_a_good_form_comes_back_normalised() -> None:
    values = validate_form(
        INSTALL,
        {
            "serial_no": " SN12345678 ",
            "distance_km": 12.5,
            "floors": "3",
            "materials_fee": 4_500,
            "visit_on": "2026-11-22",
            "supplied_by": "customer",
            "contact": "+86 138-0013-8000",
            "photos": "media:photo/2026/11/abc123",
            "signature": "media:sig/xyz98765",
        },
    )
    assert values == {
        "serial_no": "SN12345678",
        "distance_km": "12.5",
        "floors": 3,
        "materials_fee": 4_500,
        "visit_on": "2026-11-22",
        "supplied_by": "customer",
        "contact": "13800138000",
        "photos": ["media:photo/2026/11/abc123"],
        "signature": "media:sig/xyz98765",
    }


def test_every_failing_field_is_named_at_once() -> None:
    found = errors(
        {
            "serial_no": "sn-1",
            "distance_km": 900,
            "floors": 2.5,
            "materials_fee": 12.5,
            "visit_on": "2025-12-31",
            "supplied_by": "brand",
            "contact": "12345",
            "photos": ["media:a1234567", "media:b1234567", "media:c1234567", "media:d1234567"],
            "signature": "",
            "colour": "red",
        }
    )
    assert set(found) == {
        "form.colour",
        "form.serial_no",
        "form.distance_km",
        "form.floors",
        "form.materials_fee",
        "form.visit_on",
        "form.supplied_by",
        "form.contact",
        "form.photos",
    }  # an empty optional signature is simply absent
    assert found["form.distance_km"] == "must be at most 500"
    assert found["form.materials_fee"].startswith("must be a whole number of fen")
    assert found["form.colour"] == "no such field in this step's form"


def test_required_fields_are_required() -> None:
    assert errors({}) == {"form.serial_no": "required", "form.photos": "required"}
    assert errors({"serial_no": "  ", "photos": []}) == {
        "form.serial_no": "required",
        "form.photos": "required",
    }


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ([{"name": "x", "type": "colour"}], "f[0].type"),
        ([{"name": "X", "type": "text"}], "f[0].name"),
        ([{"name": "x", "type": "text", "values": ["a"]}], "f[0].values"),
        ([{"name": "x", "type": "enum", "values": []}], "f[0].values"),
        ([{"name": "x", "type": "enum", "values": ["a", "a"]}], "f[0].values"),
        ([{"name": "x", "type": "text", "pattern": "("}], "f[0].pattern"),
        ([{"name": "x", "type": "money", "minimum": 0.5}], "f[0].minimum"),
        ([{"name": "x", "type": "number", "minimum": 5, "maximum": 1}], "f[0].minimum"),
        ([{"name": "x", "type": "date", "earliest": "2026-13-01"}], "f[0].earliest"),
        ([{"name": "x", "type": "photo", "max_items": 0}], "f[0].max_items"),
        ([{"name": "x", "type": "text", "required": "yes"}], "f[0].required"),
        ([{"name": "x", "type": "text"}, {"name": "x", "type": "phone"}], "f[1].name"),
        ([{"name": "x", "type": "text", "colour": 1}], "f[0].colour"),
        ({"name": "x"}, "f"),
    ],
)
def test_a_bad_field_spec_is_refused_naming_it(spec: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_fields(spec, "f")
    assert refused.value.field == field


def test_specs_round_trip_through_their_stored_spelling() -> None:
    assert parse_fields([s.as_dict() for s in INSTALL], "f") == INSTALL


@given(st.integers(min_value=0, max_value=500) | st.decimals(min_value=0, max_value=500, places=3))
def test_any_distance_in_range_is_accepted_exactly(value: Any) -> None:
    got = validate_form(
        INSTALL, {"serial_no": "ABCDEFGH", "photos": "media:p1234567", "distance_km": str(value)}
    )["distance_km"]
    assert Decimal(str(got)) == Decimal(str(value))


@given(st.text(max_size=30) | st.from_regex(r"\+86 ?1[3-9][0-9]{9}", fullmatch=True))
def test_a_phone_is_either_refused_or_eleven_digits(value: str) -> None:
    spec = parse_fields([{"name": "contact", "type": "phone", "required": True}], "f")
    try:
        got = validate_form(spec, {"contact": value})["contact"]
    except InvalidInput:
        return
    assert got.isascii() and got.isdigit() and len(got) == 11 and got.startswith("1")
