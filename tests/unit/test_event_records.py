"""The record every projection and the bus see: envelope, business name, plain JSON data."""

from __future__ import annotations

from infra.bootstrap import Container
from infra.events import EventRecord
from tests.factories import meta
from tests.unit.world import T0, embedded_only, hire, print_code, scan


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
