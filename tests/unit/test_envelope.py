"""Every event carries the envelope, and its business name says where it comes from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.customers.aggregates import ChannelCode, Customer, IdentityClaim, Staff
from domain.shared import Conflict, InvalidInput, Meta, event_context, event_name
from tests.factories import meta


def test_the_envelope_keeps_business_time_in_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    m = meta(at=datetime(2025, 3, 2, 1, 0, tzinfo=beijing))

    assert m.occurred_at == datetime(2025, 3, 1, 17, 0, tzinfo=UTC)
    assert m.occurred_at.utcoffset() == timedelta(0)


def test_an_envelope_without_a_timezone_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        meta(at=datetime(2025, 3, 1, 9, 0))
    assert refused.value.field == "occurred_at"


@pytest.mark.parametrize("missing", ["actor", "source", "correlation_id", "causation_id"])
def test_an_envelope_missing_who_or_why_is_refused(missing: str) -> None:
    fields = {
        "occurred_at": datetime.now(UTC),
        "actor": "staff:li",
        "source": "api",
        "correlation_id": "req-1",
        "causation_id": "cmd-1",
        missing: "",
    }
    with pytest.raises(InvalidInput) as refused:
        Meta(**fields)  # type: ignore[arg-type]
    assert refused.value.field == missing


def test_every_event_carries_the_envelope_of_its_command() -> None:
    registered = meta(actor="user:admin", source="api")
    departed = meta(actor="staff:boss", source="scheduler")
    staff = Staff.register("zhang.san", "张三", "east", "shanghai", registered)
    staff.depart("moved to Beijing", departed)

    events = staff.collect_events()

    assert [type(e) for e in events] == [Staff.Registered, Staff.Departed]
    for event, envelope in zip(events, [registered, departed], strict=True):
        assert event.meta == envelope
        assert event.meta.occurred_at == envelope.occurred_at
        assert event.meta.actor == envelope.actor
        assert event.meta.source == envelope.source
        assert event.meta.correlation_id == envelope.correlation_id
        assert event.meta.causation_id == envelope.causation_id


def test_event_names_join_the_aggregate_and_the_fact() -> None:
    assert event_name(ChannelCode.Scanned) == "ChannelCodeScanned"
    assert event_name(ChannelCode.ScanRefused) == "ChannelCodeScanRefused"
    assert event_name(Customer.Added) == "CustomerAdded"
    assert event_name(Staff.Departed) == "StaffDeparted"
    assert event_name(IdentityClaim.Claimed) == "IdentityClaimClaimed"


def test_customer_events_belong_to_the_customers_context() -> None:
    for cls in (ChannelCode.Scanned, Customer.Tagged, Staff.Registered, IdentityClaim.Claimed):
        assert event_context(cls) == "customers"


def test_a_client_that_saw_an_older_version_gets_a_stale_version_conflict() -> None:
    staff = Staff.register("li.si", "李四", "east", "shanghai", meta())
    assert staff.version == 1
    staff.check_version(None)  # nobody stated a version: no check
    staff.check_version(1)

    staff.depart("", meta())

    with pytest.raises(Conflict) as stale:
        staff.check_version(1)
    assert stale.value.code == "stale_version"
