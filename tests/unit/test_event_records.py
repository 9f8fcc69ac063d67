"""The record every projection and the bus see: envelope, business name, plain JSON data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import given, settings

from domain.shared import Meta
from infra.bootstrap import Container
from infra.events import EventRecord, dumps, plain_state
from tests.factories import meta
from tests.unit.test_store_transcoding import FAST, STANDARD, values
from tests.unit.world import T0, embedded_only, hire, print_code, scan

STORED_META = Meta(
    occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    actor="staff:a",
    source="test",
    correlation_id="c",
    causation_id="x",
)


@embedded_only
def test_a_record_carries_position_envelope_and_plain_data(container: Container) -> None:
    app = container.customers
    hire(app, "a")
    code_id = print_code(app, ["a"], tags=["spring"])
    result = scan(app, code_id, "wm-1", at=T0)

    scanned = container.read_log(result.position - 1, 1)[0]  # type: ignore[operator]

    assert scanned.position == result.position
    assert scanned.originator_id == str(code_id)
    assert scanned.originator_version == 2
    assert scanned.topic.endswith("ChannelCode.Scanned")
    assert (scanned.context, scanned.name) == ("customers", "ChannelCodeScanned")
    assert scanned.occurred_at == "2025-03-01T09:00:00Z"
    assert scanned.recorded_at.endswith("Z")
    assert scanned.data["customer_id"] == result.customer_id
    assert scanned.data["assigned_staff"] == "a"
    assert not {"meta", "originator_id", "timestamp"} & set(scanned.data)
    assert scanned.msg_id == f"scrm:{result.position}"
    assert scanned.subject("scrm") == "scrm.customers.ChannelCodeScanned"


@embedded_only
def test_a_record_survives_the_trip_over_the_bus_unchanged(container: Container) -> None:
    app = container.customers
    hire(app, "a")
    print_code(app, ["a"])
    app.add_customer(
        identities=[("phone", "13812345678")], tags=["vip"], owner="a", meta=meta(at=T0)
    )

    records = container.read_log(0, 100)

    assert [EventRecord.from_body(r.body()) for r in records] == records
    assert b"13812345678" not in b"".join(r.body() for r in records)


def test_the_log_reads_in_order_from_any_position(container: Container) -> None:
    app = container.customers
    hire(app, "a", "b", "c")

    everything = container.read_log(0, 100)
    batches = list(container.log_batches(batch=2))

    assert [r.position for r in everything] == [1, 2, 3]
    assert [[r.position for r in b] for b in batches] == [[1, 2], [3]]
    assert container.read_log(3, 100) == []
    assert container.head() == 3


def test_records_decoded_straight_from_the_stored_json_equal_those_built_via_the_domain(
    container: Container,
) -> None:
    from api.demo import load_demo
    from infra.events import to_record, to_record_via_domain

    load_demo(container.customers)
    app = container.customers
    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    names = set()
    for n in notifications:
        fast, slow = to_record(n, app.mapper), to_record_via_domain(n, app.mapper)
        assert fast == slow, n.topic
        names.add(fast.name)
    # Every kind of event the demo records, refusals and disabling included.
    assert {
        "ChannelCodeScanned",
        "ChannelCodeScanRefused",
        "ChannelCodeDisabled",
        "CustomerAdded",
        "IdentityClaimClaimed",
        "StaffRegistered",
    } <= names


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_the_stored_json_read_straight_equals_the_transcoders_own_decoding(value: Any) -> None:
    """`plain_state` rewrites the transcoder's wrappers in the stored bytes; what it answers
    is what decoding through the transcoder and writing the result as JSON gives, or None (the
    record then goes through the domain class)."""
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    stored_meta = Meta(
        occurred_at=when, actor="staff:a", source="test", correlation_id="c", causation_id="x"
    )
    for transcoder in (STANDARD, FAST):
        stored = transcoder.encode({"timestamp": when, "meta": stored_meta, "value": value})
        answer = plain_state(stored)
        if answer is None:
            continue
        data, found_meta = answer
        decoded = transcoder.decode(stored)
        try:
            dumps(decoded)
        except (TypeError, orjson.JSONEncodeError):  # past 64 bits: no JSON for the bus either
            continue
        assert data == orjson.loads(dumps({k: v for k, v in decoded.items() if k != "meta"}))
        assert found_meta == orjson.loads(dumps(decoded["meta"].__dict__))


@pytest.mark.parametrize(
    ("value", "read_straight"),
    [
        (datetime(2026, 3, 1, 9, 30, 0, 5, tzinfo=UTC), "2026-03-01T09:30:00.000005Z"),
        (
            datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8))),
            "2026-03-01T09:30:00+08:00",
        ),
        (UUID("12345678123456781234567812345678"), "12345678-1234-5678-1234-567812345678"),
        (Decimal("0.125"), "0.125"),
        ({"_type_": "colour", "_data_": "red"}, None),
        ('{"_type_":"uuid_hex","_data_":"1"}', '{"_type_":"uuid_hex","_data_":"1"}'),
        ([{"at": datetime(2026, 1, 1, tzinfo=UTC)}], [{"at": "2026-01-01T00:00:00Z"}]),
    ],
)
def test_wrappers_are_read_straight_and_anything_else_goes_through_the_domain(
    value: Any, read_straight: Any
) -> None:
    stored = FAST.encode(
        {"timestamp": datetime(2026, 1, 1, tzinfo=UTC), "meta": STORED_META, "value": value}
    )
    answer = plain_state(stored)
    if read_straight is None:
        assert answer is None  # a type this reader does not know: the domain class decodes it
    else:
        assert answer is not None and answer[0]["value"] == read_straight
