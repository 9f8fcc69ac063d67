"""Staff come and go; a customer's tags change only when something really changes."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.customers.aggregates import Customer, Staff
from domain.shared import Conflict, InvalidInput
from tests.factories import meta


def test_staff_registration_keeps_who_and_where() -> None:
    staff = Staff.register("zhang.san", " 张三 ", "east", "shanghai", meta())

    assert staff.staff_id == "zhang.san"
    assert staff.name == "张三"
    assert (staff.department, staff.region) == ("east", "shanghai")
    assert staff.departed is False
    assert staff.id == Staff.create_id("zhang.san")


@pytest.mark.parametrize("bad_id", ["", "张三", "has space", "-leading-dash", "x" * 65, None])
def test_a_staff_id_that_is_not_a_slug_is_refused_on_the_id_field(bad_id: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        Staff.register(bad_id, "张三", "east", "shanghai", meta())
    assert refused.value.field == "id"


@pytest.mark.parametrize("field", ["name", "department", "region"])
def test_a_staff_member_needs_a_name_a_department_and_a_region(field: str) -> None:
    values = {"name": "张三", "department": "east", "region": "shanghai", field: "  "}
    with pytest.raises(InvalidInput) as refused:
        Staff.register("zhang.san", meta=meta(), **values)
    assert refused.value.field == field


def test_a_staff_member_departs_only_once() -> None:
    staff = Staff.register("zhang.san", "张三", "east", "shanghai", meta())
    staff.depart("moved away", meta())
    assert staff.departed is True
    version = staff.version

    with pytest.raises(Conflict) as twice:
        staff.depart("again", meta())

    assert twice.value.code == "already_departed"
    assert staff.version == version
    assert [type(e) for e in staff.collect_events()] == [Staff.Registered, Staff.Departed]


def new_customer(tags: list[str]) -> Customer:
    return Customer(
        id=uuid4(),
        owner="zhang.san",
        source_channel_code=None,
        identities=[{"kind": "openid", "value": "o-1"}],
        tags=tags,
        meta=meta(),
    )


def test_tagging_records_only_the_tags_the_customer_did_not_have() -> None:
    customer = new_customer(["vip"])
    customer.collect_events()

    added = customer.tag(["vip", " spring ", "spring", "west"], meta())

    assert added == ["spring", "west"]
    assert customer.tags == ["vip", "spring", "west"]
    (tagged,) = customer.collect_events()
    assert isinstance(tagged, Customer.Tagged)
    assert tagged.tags == ["spring", "west"]


def test_tagging_with_tags_already_there_records_nothing() -> None:
    customer = new_customer(["vip", "west"])
    customer.collect_events()

    assert customer.tag(["west", "vip"], meta()) == []
    assert customer.collect_events() == []
    assert customer.version == 1


def test_untagging_records_only_the_tags_the_customer_had() -> None:
    customer = new_customer(["vip", "west"])
    customer.collect_events()

    assert customer.untag(["east"], meta()) == []
    assert customer.collect_events() == []

    assert customer.untag(["west", "east"], meta()) == ["west"]
    assert customer.tags == ["vip"]
    (untagged,) = customer.collect_events()
    assert isinstance(untagged, Customer.Untagged)
    assert untagged.tags == ["west"]


def test_an_empty_tag_is_refused() -> None:
    customer = new_customer([])
    with pytest.raises(InvalidInput) as refused:
        customer.tag(["ok", " "], meta())
    assert refused.value.field == "tags"
    assert [type(e) for e in customer.collect_events()] == [Customer.Added]


def test_assigning_the_current_owner_again_records_nothing() -> None:
    customer = new_customer([])
    customer.collect_events()

    assert customer.assign_owner("zhang.san", "manual", meta()) is False
    assert customer.collect_events() == []

    assert customer.assign_owner("li.si", "manual", meta()) is True
    (assigned,) = customer.collect_events()
    assert (assigned.staff_id, assigned.previous_owner) == ("li.si", "zhang.san")
