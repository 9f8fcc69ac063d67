"""Adding customers by hand, their identities and tags, on the real store."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.customers.aggregates import IdentityClaim
from domain.customers.application import CustomersApp
from domain.scope import Scope
from domain.shared import Conflict, Forbidden, InvalidInput
from infra.bootstrap import Container
from tests.factories import meta
from tests.unit.world import embedded_only, hire, print_code, scan

ADMIN = Scope("admin")


def add(app: CustomersApp, *identities: tuple[str, str], owner: str | None = "a") -> UUID:
    recorded = app.add_customer(
        identities=list(identities), tags=["fair"], owner=owner, meta=meta()
    )
    return UUID(recorded.id)


def test_a_phone_is_stored_sealed_and_claimed_by_a_keyed_hash(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    head = container.head()

    customer_id = add(app, ("phone", "138-1234 5678"), ("openid", "o-1"))

    added, *claims = container.read_log(head, 100)
    assert added.name == "CustomerAdded"
    phone = next(i["value"] for i in added.data["identities"] if i["kind"] == "phone")
    assert phone.startswith("pd1.")
    assert "13812345678" not in phone and "5678" not in phone
    assert container.vault.unseal(customer_id, phone) == "13812345678"
    assert [c.name for c in claims] == ["IdentityClaimClaimed", "IdentityClaimClaimed"]
    phone_claim = next(c for c in claims if c.data["kind"] == "phone")
    assert phone_claim.data["key"] == container.vault.blind_index("phone", "13812345678")
    assert "13812345678" not in str([r.data for r in container.read_log(head, 100)])


def test_a_phone_already_claimed_in_another_format_is_taken_and_nothing_is_recorded(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    first = add(app, ("phone", "13812345678"))
    head = container.head()

    with pytest.raises(Conflict) as taken:
        add(app, ("openid", "o-new"), ("phone", "138 1234-5678"))

    assert taken.value.code == "identity_taken"
    assert taken.value.field == "identities.phone"
    assert container.head() == head
    assert app.find(IdentityClaim, IdentityClaim.create_id("openid", "o-new")) is None
    phone_key = container.vault.blind_index("phone", "13812345678")
    claim = app.find(IdentityClaim, IdentityClaim.create_id("phone", phone_key))
    assert claim is not None
    assert claim.customer_id == first


@embedded_only
def test_an_openid_first_seen_on_a_scan_cannot_be_given_to_a_new_customer(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])
    app.scan_channel_code(code_id, identities={"openid": "o-1"}, device=None, ip=None, meta=meta())
    head = container.head()

    with pytest.raises(Conflict) as taken:
        add(app, ("openid", "o-1"))

    assert taken.value.code == "identity_taken"
    assert taken.value.field == "identities.openid"
    assert container.head() == head


@embedded_only
def test_a_customer_needs_an_identity_and_an_active_owner(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a", "gone")
    app.record_departure("gone", reason="", meta=meta())
    head = container.head()

    with pytest.raises(InvalidInput) as no_identity:
        add(app)
    with pytest.raises(InvalidInput) as departed_owner:
        add(app, ("openid", "o-1"), owner="gone")
    with pytest.raises(InvalidInput) as unknown_owner:
        add(app, ("openid", "o-1"), owner="nobody")
    with pytest.raises(InvalidInput) as bad_phone:
        add(app, ("phone", "call me"))

    assert no_identity.value.field == "identities"
    assert departed_owner.value.field == unknown_owner.value.field == "owner"
    assert bad_phone.value.field == "identities.phone"
    assert container.head() == head


@embedded_only
def test_adding_a_phone_to_a_customer_seals_it_and_claims_it(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    customer_id = add(app, ("openid", "o-1"))
    other = add(app, ("openid", "o-2"))

    app.add_identity(customer_id, kind="phone", value="13812345678", scope=ADMIN, meta=meta())
    head = container.head()
    with pytest.raises(Conflict) as taken:
        app.add_identity(other, kind="phone", value="13812345678", scope=ADMIN, meta=meta())

    customer = app.repository.get(customer_id)
    sealed = customer.identities[-1]["value"]
    assert sealed.startswith("pd1.")
    assert container.vault.unseal(customer_id, sealed) == "13812345678"
    assert taken.value.code == "identity_taken"
    assert container.head() == head


def test_changing_tags_records_only_what_changed(container: Container, app: CustomersApp) -> None:
    hire(app, "a")
    customer_id = add(app, ("openid", "o-1"))
    head = container.head()

    recorded = app.change_tags(
        customer_id,
        add=["vip", "fair"],
        remove=["cold"],
        expected_version=1,
        scope=ADMIN,
        meta=meta(),
    )
    nothing = app.change_tags(
        customer_id,
        add=["vip"],
        remove=["cold"],
        expected_version=None,
        scope=ADMIN,
        meta=meta(),
    )

    assert [r.name for r in container.read_log(head, 100)] == ["CustomerTagged"]
    assert container.read_log(head, 100)[0].data["tags"] == ["vip"]
    assert recorded.version == 2
    assert nothing.position is None
    assert app.repository.get(customer_id).tags == ["fair", "vip"]


def test_changing_tags_on_a_version_someone_else_moved_on_is_stale_and_records_nothing(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a")
    customer_id = add(app, ("openid", "o-1"))
    app.change_tags(
        customer_id, add=["vip"], remove=[], expected_version=1, scope=ADMIN, meta=meta()
    )
    head = container.head()

    with pytest.raises(Conflict) as stale:
        app.change_tags(
            customer_id,
            add=["west"],
            remove=["vip"],
            expected_version=1,
            scope=ADMIN,
            meta=meta(),
        )

    assert stale.value.code == "stale_version"
    assert container.head() == head
    assert app.repository.get(customer_id).tags == ["fair", "vip"]


@embedded_only
def test_staff_may_only_change_their_own_customers(container: Container, app: CustomersApp) -> None:
    hire(app, "a", "b")
    customer_id = add(app, ("openid", "o-1"), owner="a")
    head = container.head()

    with pytest.raises(Forbidden):
        app.change_tags(
            customer_id,
            add=["vip"],
            remove=[],
            expected_version=None,
            scope=Scope("staff", staff_id="b"),
            meta=meta(),
        )
    app.change_tags(
        customer_id,
        add=["vip"],
        remove=[],
        expected_version=None,
        scope=Scope("staff", staff_id="a"),
        meta=meta(),
    )

    assert container.head() == head + 1


@embedded_only
def test_a_manager_assigns_customers_only_to_staff_of_their_department(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a", "b", department="east")
    hire(app, "w", department="west")
    customer_id = add(app, ("openid", "o-1"), owner="a")
    east = Scope("manager", department="east")

    with pytest.raises(Forbidden):
        app.assign_owner(customer_id, staff_id="w", expected_version=None, scope=east, meta=meta())
    app.assign_owner(customer_id, staff_id="b", expected_version=1, scope=east, meta=meta())
    with pytest.raises(Forbidden):
        app.get_customer(customer_id, Scope("manager", department="west"))

    assert app.repository.get(customer_id).owner == "b"
    (assigned,) = container.read_log(container.head() - 1, 1)
    assert assigned.name == "CustomerOwnerAssigned"
    assert assigned.data == {"staff_id": "b", "previous_owner": "a", "reason": "manual"}


@embedded_only
def test_a_customer_scanned_in_is_found_again_by_its_claim(app: CustomersApp) -> None:
    hire(app, "a")
    code_id = print_code(app, ["a"])
    result = scan(app, code_id, "wm-9")

    claim = app.find(IdentityClaim, IdentityClaim.create_id("wecom_external_userid", "wm-9"))

    assert claim is not None
    assert str(claim.customer_id) == result.customer_id


def test_adding_an_identity_the_customer_already_has_records_nothing_and_is_no_conflict(
    container: Container, app: CustomersApp
) -> None:
    added = app.add_customer(
        identities=[("phone", "13800138000")], tags=[], owner=None, meta=meta()
    )
    head = container.head()
    again = app.add_identity(
        UUID(added.id), kind="phone", value="138-0013-8000", scope=Scope(role="admin"), meta=meta()
    )
    assert again.position is None and container.head() == head
