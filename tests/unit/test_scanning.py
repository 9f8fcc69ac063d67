"""Scanning a channel code through the customers application, on the real store."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.customers.aggregates import IdentityClaim
from domain.customers.application import CustomersApp
from domain.shared import Conflict, Gone, InvalidInput, NotFound, Refused
from infra.bootstrap import Container
from tests.factories import meta
from tests.unit.world import T0, code_of, embedded_only, hire, names_in_log, print_code, scan


def test_a_first_scan_adds_a_customer_with_the_codes_tags_owned_by_the_assigned_staff(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a", "b")
    code_id = print_code(app, ["a", "b"], tags=["spring", "vip"])

    result = scan(app, code_id, "wm-001")

    assert result.new_customer is True
    assert result.assigned_staff == "a"
    assert result.welcome_message == "欢迎"
    assert result.position == container.head()
    customer = app.repository.get(UUID(result.customer_id))
    assert customer.owner == "a"
    assert customer.tags == ["spring", "vip"]
    assert customer.source_channel_code == code_id
    assert customer.identities == [{"kind": "wecom_external_userid", "value": "wm-001"}]
    assert names_in_log(container)[-3:] == [
        "CustomerAdded",
        "IdentityClaimClaimed",
        "ChannelCodeScanned",
    ]


@embedded_only
def test_the_scan_event_carries_the_envelope_of_the_callback(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])
    envelope = meta(actor="integration:wecom", source="wecom", at=T0)

    app.scan_channel_code(
        code_id, identities={"openid": "o-1"}, device=None, ip=None, meta=envelope
    )

    scanned = container.read_log(container.head() - 1, 1)[0]
    assert scanned.name == "ChannelCodeScanned"
    assert scanned.occurred_at == "2025-03-01T09:00:00Z"
    assert (scanned.actor, scanned.source) == ("integration:wecom", "wecom")
    assert scanned.correlation_id == envelope.correlation_id
    assert scanned.causation_id == envelope.causation_id


@embedded_only
def test_device_and_ip_are_kept_only_as_keyed_hashes(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])

    scan(app, code_id, "wm-001")

    scanned = container.read_log(container.head() - 1, 1)[0]
    assert scanned.data["device_hash"] == container.vault.blind_index("device", "device-wm-001")
    assert scanned.data["ip_hash"] == container.vault.blind_index("ip", "10.0.0.1")
    assert "10.0.0.1" not in str(scanned.data)


@embedded_only
def test_scans_by_new_visitors_take_turns_round_the_pool(app: CustomersApp) -> None:
    hire(app, "a", "b", "c")
    code_id = print_code(app, ["a", "b", "c"])

    assigned = [scan(app, code_id, f"wm-{i}").assigned_staff for i in range(7)]

    assert assigned == ["a", "b", "c", "a", "b", "c", "a"]


def test_a_returning_visitor_gets_the_same_customer_and_owner_without_using_a_turn(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a", "b")
    code_id = print_code(app, ["a", "b"])
    first = scan(app, code_id, "wm-001")
    head = container.head()

    again = scan(app, code_id, "wm-001", at=T0 + timedelta(hours=1))
    next_visitor = scan(app, code_id, "wm-002")

    assert again.new_customer is False
    assert again.customer_id == first.customer_id
    assert again.assigned_staff == "a"
    assert names_in_log(container, head)[0] == "ChannelCodeScanned"  # no second customer
    assert next_visitor.assigned_staff == "b"
    assert code_of(app, code_id).scans == 3


@embedded_only
def test_a_returning_visitor_known_by_a_second_identity_has_it_added_and_claimed(
    app: CustomersApp,
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])
    first = scan(app, code_id, "wm-001")

    again = scan(app, code_id, "wm-001", openid="o-001")
    by_openid = app.scan_channel_code(
        code_id, identities={"openid": "o-001"}, device=None, ip=None, meta=meta(at=T0)
    )

    assert again.customer_id == first.customer_id == by_openid.customer_id
    customer = app.repository.get(UUID(first.customer_id))
    assert {"kind": "openid", "value": "o-001"} in customer.identities


@embedded_only
def test_a_returning_visitors_extra_identity_that_belongs_to_someone_else_is_left_alone(
    app: CustomersApp,
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])
    first = scan(app, code_id, "wm-001")
    other = app.scan_channel_code(
        code_id, identities={"openid": "o-taken"}, device=None, ip=None, meta=meta(at=T0)
    )

    again = scan(app, code_id, "wm-001", openid="o-taken")

    assert again.customer_id == first.customer_id
    customer = app.repository.get(UUID(first.customer_id))
    assert customer.identities == [{"kind": "wecom_external_userid", "value": "wm-001"}]
    claim = app.find(IdentityClaim, IdentityClaim.create_id("openid", "o-taken"))
    assert claim is not None
    assert str(claim.customer_id) == other.customer_id


@embedded_only
def test_a_departed_staff_member_is_skipped(app: CustomersApp) -> None:
    hire(app, "a", "b", "c")
    code_id = print_code(app, ["a", "b", "c"])
    app.record_departure("b", reason="resigned", meta=meta())

    assigned = [scan(app, code_id, f"wm-{i}").assigned_staff for i in range(4)]

    assert assigned == ["a", "c", "a", "c"]


@embedded_only
def test_a_returning_visitor_whose_owner_departed_is_handed_to_the_next_in_turn(
    app: CustomersApp,
) -> None:
    hire(app, "a", "b")
    code_id = print_code(app, ["a", "b"])
    first = scan(app, code_id, "wm-001")
    app.record_departure("a", reason="resigned", meta=meta())

    again = scan(app, code_id, "wm-001")

    assert again.customer_id == first.customer_id
    assert again.assigned_staff == "b"
    assert app.repository.get(UUID(first.customer_id)).owner == "b"


def assert_refused_and_recorded(
    container: Container, app: CustomersApp, code_id: UUID, *, reason: str, at=T0
) -> Refused:
    head = container.head()
    with pytest.raises(Refused) as refused:
        scan(app, code_id, f"late-{uuid4().hex[:6]}", at=at)
    assert refused.value.code == reason
    assert refused.value.position == head + 1 == container.head()
    (record,) = container.read_log(head, 100)
    assert record.name == "ChannelCodeScanRefused"
    assert record.position == refused.value.position
    assert record.originator_id == str(code_id)
    assert record.data["reason"] == reason
    return refused.value


def test_a_scan_past_the_cap_is_refused_and_recorded(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"], max_scans=2)
    scan(app, code_id, "wm-1")
    scan(app, code_id, "wm-2")

    refused = assert_refused_and_recorded(container, app, code_id, reason="code_exhausted")

    assert isinstance(refused.cause, Conflict)
    assert code_of(app, code_id).scans == 2


@embedded_only
def test_a_scan_after_expiry_is_refused_as_gone_and_recorded(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"], expires_at=T0 + timedelta(days=1))
    scan(app, code_id, "wm-1", at=T0)

    refused = assert_refused_and_recorded(
        container, app, code_id, reason="code_expired", at=T0 + timedelta(days=1)
    )

    assert isinstance(refused.cause, Gone)


@embedded_only
def test_a_scan_of_a_disabled_code_is_refused_as_gone_and_recorded(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])
    app.disable_channel_code(code_id, reason="fair over", expected_version=1, meta=meta())

    refused = assert_refused_and_recorded(container, app, code_id, reason="code_disabled")

    assert isinstance(refused.cause, Gone)


@embedded_only
def test_a_scan_when_the_whole_pool_has_left_is_refused_and_recorded(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])
    app.record_departure("a", reason="resigned", meta=meta())

    assert_refused_and_recorded(container, app, code_id, reason="no_available_staff")


@embedded_only
def test_disabling_a_code_someone_else_changed_meanwhile_is_a_stale_version(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])
    scan(app, code_id, "wm-1")
    head = container.head()

    with pytest.raises(Conflict) as stale:
        app.disable_channel_code(code_id, reason="", expected_version=1, meta=meta())

    assert stale.value.code == "stale_version"
    assert container.head() == head


MALFORMED_SCANS = [
    ({}, "visitor"),
    ({"openid": None}, "visitor"),
    ({"phone": "13812345678"}, "visitor.phone"),
    ({"email": "a@b.c"}, "visitor.email"),
    ({"openid": "has space"}, "visitor.openid"),
    ({"unionid": "  "}, "visitor.unionid"),
]


def test_a_malformed_scan_is_invalid_and_records_nothing(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])
    head = container.head()

    for identities, field in MALFORMED_SCANS:
        with pytest.raises(InvalidInput) as invalid:
            app.scan_channel_code(code_id, identities=identities, device=None, ip=None, meta=meta())
        assert invalid.value.field == field, identities

    assert container.head() == head
    assert code_of(app, code_id).scans == 0


@embedded_only
def test_a_scan_of_an_unknown_code_is_not_found_and_records_nothing(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    head = container.head()

    with pytest.raises(NotFound):
        scan(app, uuid4(), "wm-1")

    assert container.head() == head


@embedded_only
def test_a_code_naming_unregistered_staff_is_refused_and_not_recorded(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    head = container.head()

    with pytest.raises(InvalidInput) as invalid:
        print_code(app, ["a", "ghost"])

    assert invalid.value.field == "staff_pool"
    assert container.head() == head
