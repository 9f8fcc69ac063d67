"""客户画像 and the customer list, as the read models show them after the log is applied."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.scope import Scope
from infra.bootstrap import Container
from projections.customers.portrait import get_portrait, list_customers
from projections.customers.staff import list_staff
from tests.factories import meta
from tests.unit.world import World, embedded_only, project


@pytest.fixture
def world(container: Container) -> World:
    world = World(container.customers)
    project(container)
    return world


def ids(rows: list[dict]) -> list[UUID]:
    return [UUID(r["id"]) for r in rows]


def test_a_portrait_shows_owner_source_identities_tags_and_timeline(
    container: Container, world: World
) -> None:
    portrait = get_portrait(container.read_db, str(world.c1))

    assert portrait is not None
    assert portrait["owner"] == "a"
    assert portrait["source_channel_code"] == str(world.spring)
    assert portrait["identities"] == [{"kind": "wecom_external_userid", "value": "v1"}]
    assert portrait["tags"] == ["vip"]
    assert portrait["version"] == 3
    assert portrait["added_at"] == "2025-03-01T09:00:00Z"
    assert portrait["last_activity_at"] == "2025-03-01T12:00:00Z"
    timeline = portrait["timeline"]
    assert [t["event"] for t in timeline] == [
        "CustomerAdded",
        "ChannelCodeScanned",
        "ChannelCodeScanned",
        "CustomerTagged",
        "CustomerUntagged",
    ]
    positions = [t["position"] for t in timeline]
    assert positions == sorted(positions)
    assert timeline[2]["occurred_at"] == "2025-03-01T10:00:00Z"
    assert timeline[2]["actor"] == "integration:wecom"
    assert timeline[2]["data"]["new_customer"] is False
    assert (timeline[3]["actor"], timeline[3]["data"]["tags"]) == ("staff:a", ["vip"])
    assert timeline[4]["data"]["tags"] == ["spring"]


@embedded_only
def test_a_portrait_keeps_the_phone_sealed(container: Container, world: World) -> None:
    portrait = get_portrait(container.read_db, str(world.c5))

    assert portrait is not None
    phone = next(i["value"] for i in portrait["identities"] if i["kind"] == "phone")
    assert phone.startswith("pd1.")
    assert "13812345678" not in str(portrait)
    assert container.vault.unseal(world.c5, phone) == "13812345678"


@embedded_only
def test_an_unknown_customer_has_no_portrait(container: Container, world: World) -> None:
    assert get_portrait(container.read_db, "00000000-0000-0000-0000-000000000000") is None


def test_the_customer_list_filters_by_tag_owner_code_and_department(
    container: Container, world: World
) -> None:
    db = container.read_db
    w = world

    assert ids(list_customers(db)) == [w.c1, w.c2, w.c3, w.c4, w.c5]
    assert ids(list_customers(db, tag="spring")) == [w.c2, w.c3]
    assert ids(list_customers(db, tag="vip")) == [w.c1, w.c5]
    assert ids(list_customers(db, owner="a")) == [w.c1, w.c3]
    assert ids(list_customers(db, channel_code=str(w.west))) == [w.c4]
    assert ids(list_customers(db, department="east")) == [w.c1, w.c2, w.c3, w.c5]
    assert ids(list_customers(db, department="west")) == [w.c4]
    assert ids(list_customers(db, department="east", tag="vip", owner="b")) == [w.c5]
    assert list_customers(db, tag="nobody-has-this") == []


def test_the_customer_list_pages_by_position(container: Container, world: World) -> None:
    db = container.read_db
    pages, after = [], 0

    while page := list_customers(db, after=after, limit=2):
        pages.append(ids(page))
        after = page[-1]["cursor"]

    assert pages == [[world.c1, world.c2], [world.c3, world.c4], [world.c5]]
    first = list_customers(db, limit=1)[0]
    assert first["tags"] == ["vip"]
    assert ids(list_customers(db, tag="spring", after=first["cursor"], limit=1)) == [world.c2]


@embedded_only
def test_the_staff_directory_shows_departures(container: Container, world: World) -> None:
    container.customers.record_departure("b", reason="resigned", meta=meta())
    project(container)

    staff = {s["id"]: s for s in list_staff(container.read_db)}

    assert list(staff) == ["a", "b", "w"]
    assert staff["b"]["departed_at"] is not None
    assert staff["a"]["departed_at"] is None
    assert [s["id"] for s in list_staff(container.read_db, department="west")] == ["w"]


@embedded_only
def test_a_reassigned_customer_moves_in_the_list(container: Container, world: World) -> None:
    container.customers.assign_owner(
        world.c2, staff_id="a", expected_version=None, scope=Scope("admin"), meta=meta()
    )
    project(container)

    assert ids(list_customers(container.read_db, owner="a")) == [world.c1, world.c2, world.c3]
    assert ids(list_customers(container.read_db, owner="b")) == [world.c5]
