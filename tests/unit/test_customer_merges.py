"""Two records of one person are merged by an event on each; a wrong merge is undone by two
more, and nothing recorded in between is lost."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.customers.aggregates import Customer
from domain.customers.application import CustomersApp
from domain.customers.privacy import key_ids
from domain.scope import Scope
from domain.shared import Conflict, Gone, InvalidInput, derived_id
from infra.bootstrap import Container
from tests.factories import meta
from tests.unit.test_projection_engine import A_TMALL_ORDER
from tests.unit.world import T0, embedded_only, names_in_log

ADMIN = Scope(role="admin")


def customer(*identities: tuple[str, str], tags: list[str] | None = None) -> Customer:
    c = Customer(
        id=uuid4(),
        owner="a",
        source_channel_code=None,
        identities=[{"kind": k, "value": v} for k, v in identities],
        tags=tags or [],
        meta=meta(at=T0),
    )
    c.collect_events()
    return c


def two() -> tuple[Customer, Customer]:
    """A has an openid, a vip tag and staff a; B a WeCom id, a sealed phone, vip and spring,
    staff a (heard of later) and b, and an Official Account follow."""
    a = customer(("openid", "o-a"), tags=["vip"])
    b = customer(("wecom_external_userid", "wm-b"), ("phone", "pd1.sealed-for-b"))
    b.tag(["vip", "spring"], meta(at=T0))
    a.add_contact("a", half=False, channel_code=None, meta=meta(at=T0))
    b.add_contact("a", half=True, channel_code=None, meta=meta(at=T0 + timedelta(hours=1)))
    b.add_contact("b", half=False, channel_code=None, meta=meta(at=T0))
    b.subscribe("wx-oa", channel_code=None, meta=meta(at=T0))
    a.collect_events()
    b.collect_events()
    return a, b


def test_a_merge_records_what_moved_on_the_survivor_and_where_it_went_on_the_absorbed() -> None:
    a, b = two()

    a.absorb(b, "same phone, confirmed by call", meta(actor="user:li"))

    (merged,) = a.collect_events()
    (merged_into,) = b.collect_events()
    assert isinstance(merged, Customer.Merged) and isinstance(merged_into, Customer.MergedInto)
    assert merged.absorbed_id == b.id and merged_into.survivor_id == a.id
    assert merged.reason == merged_into.reason == "same phone, confirmed by call"
    assert merged.meta.actor == merged_into.meta.actor == "user:li"
    assert merged.tags == ["vip", "spring"] and merged.added_tags == ["spring"]
    assert set(merged.contacts) == {"a", "b"}
    assert merged.contacts_taken == ["a", "b"]  # b's news of staff a is the later one
    # The phone keeps the key it was sealed under, and says whose it is.
    assert {"kind": "phone", "value": "pd1.sealed-for-b", "sealed_for": str(b.id)} in a.identities
    assert {"kind": "wecom_external_userid", "value": "wm-b"} in a.identities
    assert a.tags == ["vip", "spring"]
    assert a.contacts["a"]["status"] == "half" and a.subscriptions["wx-oa"]["status"]
    assert b.merged_into == a.id


def test_a_merge_needs_a_reason_and_records_nothing_without_one() -> None:
    a, b = two()
    with pytest.raises(InvalidInput) as refused:
        a.absorb(b, "   ", meta())
    assert refused.value.field == "reason"
    assert a.collect_events() == [] and b.collect_events() == []


def test_a_customer_cannot_be_merged_into_itself() -> None:
    a, _ = two()
    with pytest.raises(Conflict) as refused:
        a.absorb(a, "oops", meta())
    assert refused.value.code == "merge_into_self"


def test_a_merged_customer_cannot_be_merged_again_nor_absorb_anyone() -> None:
    a, b = two()
    c = customer(("openid", "o-c"))
    a.absorb(b, "one person", meta())

    with pytest.raises(Conflict) as again:
        c.absorb(b, "one person", meta())
    with pytest.raises(Conflict) as into_merged:
        b.absorb(c, "one person", meta())

    assert again.value.code == "already_merged"
    assert again.value.extra == {"merged_into": str(a.id)}
    assert str(a.id) in again.value.detail
    assert into_merged.value.code == "survivor_merged"
    assert into_merged.value.extra == {"merged_into": str(a.id)}


def test_commands_to_a_merged_customer_are_refused_naming_the_survivor() -> None:
    a, b = two()
    a.absorb(b, "one person", meta())
    b.collect_events()

    for command in (
        lambda: b.tag(["x"], meta()),
        lambda: b.add_identity("openid", "o-x", meta()),
        lambda: b.add_contact("c", half=False, channel_code=None, meta=meta()),
        lambda: b.restrict_for_erasure("email", meta()),
    ):
        with pytest.raises(Conflict) as refused:
            command()
        assert refused.value.code == "customer_merged"
        assert refused.value.extra == {"merged_into": str(a.id)}
    assert b.collect_events() == []


@pytest.mark.parametrize("side", ["survivor", "absorbed"])
def test_a_customer_waiting_for_erasure_is_neither_merged_nor_merged_into(side: str) -> None:
    a, b = two()
    (a if side == "survivor" else b).restrict_for_erasure("email", meta())
    with pytest.raises(Gone) as refused:
        a.absorb(b, "one person", meta())
    assert refused.value.code == "customer_restricted"


def test_an_undo_gives_back_what_the_merge_brought_as_it_is_now() -> None:
    a, b = two()
    a.absorb(b, "one person", meta())
    # While merged: b's follow is dropped, staff b's contact changes, a new staff member and
    # a new tag arrive, and spring is taken off.
    a.unsubscribe("wx-oa", meta(at=T0 + timedelta(days=1)))
    a.remove_contact("b", by="customer", meta=meta(at=T0 + timedelta(days=1)))
    a.add_contact("c", half=False, channel_code=None, meta=meta(at=T0 + timedelta(days=1)))
    a.tag(["gold"], meta())
    a.add_identity("unionid", "u-a", meta())
    a.collect_events()
    b.collect_events()

    a.undo_merge(b, "two people after all", meta(actor="user:wang"))

    (undone,) = b.collect_events()
    (unmerged,) = a.collect_events()
    assert isinstance(undone, Customer.MergeUndone) and isinstance(unmerged, Customer.Unmerged)
    assert undone.meta.actor == unmerged.meta.actor == "user:wang"
    assert b.merged_into is None
    assert b.identities == [
        {"kind": "wecom_external_userid", "value": "wm-b"},
        {"kind": "phone", "value": "pd1.sealed-for-b"},
    ]
    assert b.tags == ["vip", "spring"]
    assert b.contacts["b"]["status"] == "removed_by_customer"  # the change made while merged
    assert b.subscriptions["wx-oa"]["status"] == "unsubscribed"
    assert set(b.contacts) == {"a", "b"}
    # The survivor keeps its own and what was recorded on it meanwhile.
    assert a.identities == [{"kind": "openid", "value": "o-a"}, {"kind": "unionid", "value": "u-a"}]
    assert a.tags == ["vip", "gold"]
    assert set(a.contacts) == {"a", "c"} and a.subscriptions == {}
    assert unmerged.tags == ["spring"] and unmerged.contacts == ["b"]
    assert a.merges == ()


def test_only_the_merge_in_force_can_be_undone() -> None:
    a, b = two()
    c = customer(("openid", "o-c"))
    with pytest.raises(Conflict) as never:
        a.undo_merge(b, "why not", meta())
    a.absorb(b, "one person", meta())
    a.undo_merge(b, "two people", meta())
    c.absorb(b, "one person after all, with c", meta())

    with pytest.raises(Conflict) as elsewhere:
        a.undo_merge(b, "again", meta())

    assert never.value.code == elsewhere.value.code == "merge_not_in_force"
    assert str(c.id) in elsewhere.value.detail
    c.undo_merge(b, "two people", meta())
    assert b.merged_into is None


def test_an_undo_keeps_on_the_survivor_what_another_merge_in_force_also_brought() -> None:
    a, b = two()
    c = customer(("openid", "o-c"), tags=["spring"])
    a.absorb(b, "one person", meta())
    a.absorb(c, "one person", meta())

    a.undo_merge(b, "two people", meta())

    assert a.tags == ["vip", "spring"]
    assert {"kind": "openid", "value": "o-c"} in a.identities


# --- through the application: claims, keys, one recording ----------------------------------


def add(app: CustomersApp, *identities: tuple[str, str], tags: list[str] | None = None) -> UUID:
    return UUID(
        app.add_customer(identities=list(identities), tags=tags or [], owner=None, meta=meta()).id
    )


@embedded_only
def test_both_events_are_saved_in_one_recording_and_the_answer_names_its_position(
    app: CustomersApp, container: Container
) -> None:
    a, b = add(app, ("openid", "o-a")), add(app, ("wecom_external_userid", "wm-b"))
    before = container.head()

    done = app.merge_customers(
        a, b, reason="one person", expected_versions=None, scope=ADMIN, meta=meta()
    )

    assert names_in_log(container, before) == ["CustomerMerged", "CustomerMergedInto"]
    assert done.position == container.head() == before + 2
    assert (done.id, done.absorbed_id) == (str(a), str(b))


@embedded_only
def test_a_stale_expected_version_of_either_side_records_nothing(
    app: CustomersApp, container: Container
) -> None:
    a, b = add(app, ("openid", "o-a")), add(app, ("wecom_external_userid", "wm-b"))
    before = container.head()
    for stated in ({a: 1, b: 2}, {a: 2}):
        with pytest.raises(Conflict) as refused:
            app.merge_customers(
                a, b, reason="one person", expected_versions=stated, scope=ADMIN, meta=meta()
            )
        assert refused.value.code == "stale_version"
    with pytest.raises(InvalidInput) as stranger:
        app.merge_customers(
            a, b, reason="x", expected_versions={uuid4(): 1}, scope=ADMIN, meta=meta()
        )
    assert stranger.value.field == "expected_versions"
    assert container.head() == before
    app.merge_customers(
        a, b, reason="one person", expected_versions={a: 1, b: 1}, scope=ADMIN, meta=meta()
    )


@embedded_only
def test_after_a_merge_the_absorbed_customers_identities_resolve_to_the_survivor(
    app: CustomersApp,
) -> None:
    a = add(app, ("openid", "o-a"))
    b = add(app, ("wecom_external_userid", "wm-b"), ("phone", "13800000001"))
    app.merge_customers(a, b, reason="one person", expected_versions=None, scope=ADMIN, meta=meta())

    found = app._find_customer({"wecom_external_userid": "wm-b"})
    assert found is not None and found.id == a
    # Already the survivor's: nothing to record.
    version = app.get_customer(a, ADMIN).version
    assert (
        app.add_identity(a, kind="phone", value="13800000001", scope=ADMIN, meta=meta()).version
        == version
    )
    with pytest.raises(Conflict) as direct:
        app.add_identity(b, kind="openid", value="o-new", scope=ADMIN, meta=meta())
    assert direct.value.code == "customer_merged"

    app.undo_merge(a, b, reason="two people", scope=ADMIN, meta=meta())
    found = app._find_customer({"wecom_external_userid": "wm-b"})
    assert found is not None and found.id == b


@embedded_only
def test_the_survivors_erasure_covers_the_keys_of_what_was_merged_in(app: CustomersApp) -> None:
    a = add(app, ("openid", "o-a"))
    b = add(app, ("wecom_external_userid", "wm-b"), ("phone", "13800000001"))
    app.merge_customers(a, b, reason="one person", expected_versions=None, scope=ADMIN, meta=meta())
    survivor = app.get_customer(a, ADMIN)

    keys = key_ids(survivor)

    assert keys[:2] == [a, b]
    assert derived_id("subject", "wecom_external_userid:wm-b") in keys
    assert "wecom_external_userid:wm-b" in survivor.archive_subjects()
    app.undo_merge(a, b, reason="two people", scope=ADMIN, meta=meta())
    assert key_ids(app.get_customer(a, ADMIN)) == [a]


@embedded_only
def test_a_merge_and_its_undo_replay_to_the_same_state(app: CustomersApp) -> None:
    a = add(app, ("openid", "o-a"), tags=["vip"])
    b = add(app, ("wecom_external_userid", "wm-b"), tags=["spring"])
    app.merge_customers(a, b, reason="one person", expected_versions=None, scope=ADMIN, meta=meta())
    assert app.get_customer(a, ADMIN).tags == ["vip", "spring"]
    app.undo_merge(a, b, reason="two people", scope=ADMIN, meta=meta())

    survivor, absorbed = app.get_customer(a, ADMIN), app.get_customer(b, ADMIN)

    assert (survivor.tags, absorbed.tags) == (["vip"], ["spring"])
    assert survivor.merges in ((), []) and absorbed.merged_into is None


@embedded_only
def test_an_order_matched_by_the_absorbed_customers_phone_links_to_the_survivor(
    app: CustomersApp, container: Container
) -> None:
    a = add(app, ("openid", "o-a"))
    b = add(app, ("phone", "13800138000"))  # the receiver's phone of A_TMALL_ORDER
    app.merge_customers(a, b, reason="one person", expected_versions=None, scope=ADMIN, meta=meta())

    container.orders.receive(A_TMALL_ORDER, "digest-1", meta(source="taobao"))

    survivor = app.get_customer(a, ADMIN)
    assert {"kind": "taobao_buyer", "value": A_TMALL_ORDER.buyer_id} in survivor.identities
    assert names_in_log(container)[-1] == "CustomerIdentityLinked"


def test_a_customer_under_a_legal_hold_is_not_absorbed_but_may_survive() -> None:
    a, b = two()
    b.note_hold(uuid4(), meta())
    with pytest.raises(Conflict) as refused:
        a.absorb(b, "one person", meta())
    assert refused.value.code == "absorbed_under_legal_hold"
    b.absorb(a, "one person", meta())
    assert a.merged_into == b.id
