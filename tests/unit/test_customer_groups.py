"""Customer groups (客户群) from WeCom's change_external_chat callbacks: once, in order, final
once dismissed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.customers.application import CustomersApp
from domain.customers.groups import CustomerGroup, GroupChange
from domain.inbox import InboxOutcome
from domain.shared import InvalidInput
from infra.bootstrap import Container, bootstrap
from infra.wecom.callbacks import xml_items
from projections.customers.groups import get_group, list_groups
from tests.factories import meta
from tests.unit.world import T0, embedded_only, hire, names_in_log, project

CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"


def wecom_at(seconds: int) -> Any:
    return meta(actor="integration:wecom", source="wecom", at=T0 + timedelta(seconds=seconds))


def change(
    app: CustomersApp, at: int, change_type: str, detail: str | None = None, **more: Any
) -> InboxOutcome:
    """One callback about CHAT at T0 + `at` seconds; its digest names it, as WeCom's body would."""
    digest = f"{change_type}:{detail}:{at}:{sorted(more.items())}"
    members = tuple(more.pop("members", ()))
    return app.apply_group_change(
        GroupChange(
            change_type=change_type,
            chat_id=more.pop("chat_id", CHAT),
            digest=digest,
            update_detail=detail,
            members=members,
            **more,
        ),
        wecom_at(at),
    )


def group_of(app: CustomersApp, chat_id: str = CHAT) -> CustomerGroup:
    return app.load(CustomerGroup, CustomerGroup.create_id(chat_id), "group")


def test_a_group_is_created_members_join_and_quit_and_it_is_dismissed(app: CustomersApp) -> None:
    hire(app, "zhang.wei")
    assert change(app, 0, "create", owner="zhang.wei", name="春季群").outcome == "applied"
    change(app, 10, "update", "add_member", members=["wmA", "wmB", "zhang.wei"], join_scene=3)
    change(app, 20, "update", "del_member", members=["wmB"], quit_scene=0)
    assert change(app, 30, "dismiss").outcome == "applied"

    group = group_of(app)
    assert (group.owner, group.name, group.dismissed) == ("zhang.wei", "春季群", True)
    assert {u: m["status"] for u, m in group.members.items()} == {
        "wmA": "joined",
        "wmB": "quit",
        "zhang.wei": "joined",
    }


def test_the_same_callback_twice_has_one_effect(app: CustomersApp, container: Container) -> None:
    change(app, 0, "create")
    head = container.head()

    again = change(app, 0, "create")

    assert again.outcome == "duplicate"
    assert container.head() == head


def test_a_late_update_after_dismissal_does_not_revive_the_group(
    app: CustomersApp, container: Container
) -> None:
    change(app, 0, "create")
    change(app, 30, "dismiss")
    before = container.head()

    late = change(app, 10, "update", "add_member", members=["wmLate"])

    assert late.outcome == "stale"
    assert names_in_log(container, before) == ["InboxReceiptReceived"]
    assert group_of(app).dismissed and "wmLate" not in group_of(app).members


def test_a_group_first_heard_of_through_an_update_is_created_with_it(
    app: CustomersApp, container: Container
) -> None:
    change(app, 10, "update", "add_member", members=["wmA"])
    assert names_in_log(container) == [
        "CustomerGroupCreated",
        "CustomerGroupMembersJoined",
        "InboxReceiptReceived",
    ]
    created = container.read_log(0, 1)[0]
    assert created.data["first_change"] == "update:add_member"
    # The create, sent before but delivered after, tells nothing new.
    assert change(app, 0, "create").outcome == "stale"


def test_a_dismissal_heard_first_makes_every_late_change_stale(app: CustomersApp) -> None:
    change(app, 30, "dismiss")

    assert change(app, 0, "create").outcome == "stale"
    assert change(app, 10, "update", "change_name", name="late").outcome == "stale"
    assert group_of(app).dismissed and group_of(app).name is None


def test_an_older_join_arriving_after_a_newer_quit_does_not_re_add_the_member(
    app: CustomersApp,
) -> None:
    change(app, 0, "create")
    change(app, 20, "update", "del_member", members=["wmA"], quit_scene=1)

    late = change(app, 10, "update", "add_member", members=["wmA"])

    assert late.outcome == "stale"
    assert group_of(app).members["wmA"]["status"] == "quit"


def test_a_change_naming_several_members_applies_to_those_it_is_news_for(
    app: CustomersApp, container: Container
) -> None:
    change(app, 0, "create")
    change(app, 20, "update", "del_member", members=["wmA"])

    change(app, 10, "update", "add_member", members=["wmA", "wmB"])

    joined = [r for r in container.read_log(0, 100) if r.name == "CustomerGroupMembersJoined"]
    assert [m["userid"] for m in joined[-1].data["members"]] == ["wmB"]
    assert joined[-1].data["skipped"] == ["wmA"]
    assert {u: m["status"] for u, m in group_of(app).members.items()} == {
        "wmA": "quit",
        "wmB": "joined",
    }


@embedded_only
def test_in_the_same_second_member_versions_tell_which_change_came_first(
    app: CustomersApp,
) -> None:
    change(app, 0, "create")
    # Joined (v1 -> v2) and quit (v2 -> v3) in the same second; the quit is delivered first.
    change(
        app,
        5,
        "update",
        "del_member",
        members=["wmA"],
        last_member_version="v2",
        member_version="v3",
    )
    late = change(
        app,
        5,
        "update",
        "add_member",
        members=["wmA"],
        last_member_version="v1",
        member_version="v2",
    )
    assert late.outcome == "stale"
    assert group_of(app).members["wmA"]["status"] == "quit"


def test_owner_and_name_changes_older_than_what_is_known_are_stale(app: CustomersApp) -> None:
    change(app, 0, "create", owner="a", name="one")
    change(app, 20, "update", "change_owner", owner="b")
    change(app, 20, "update", "change_name", name="two")

    assert change(app, 10, "update", "change_owner", owner="c").outcome == "stale"
    assert change(app, 10, "update", "change_name", name="old").outcome == "stale"
    assert change(app, 25, "update", "change_notice").outcome == "applied"
    assert (group_of(app).owner, group_of(app).name) == ("b", "two")


def test_external_members_who_are_customers_are_linked_to_them(
    app: CustomersApp, container: Container
) -> None:
    hire(app, "wolfgang")  # staff whose userid happens to start like an external one
    customer = app.add_customer(
        identities=[("wecom_external_userid", "wmKnown")], tags=[], owner=None, meta=meta()
    )
    change(app, 0, "update", "add_member", members=["wmKnown", "wmStranger", "wolfgang"])

    joined = [r for r in container.read_log(0, 100) if r.name == "CustomerGroupMembersJoined"]
    assert joined[0].data["members"] == [
        {"userid": "wmKnown", "kind": "external", "customer_id": customer.id},
        {"userid": "wmStranger", "kind": "external", "customer_id": None},
        {"userid": "wolfgang", "kind": "staff", "customer_id": None},
    ]


def test_an_update_detail_scrm_does_not_know_is_kept_on_record(
    app: CustomersApp, container: Container
) -> None:
    outcome = change(app, 0, "update", "change_avatar")

    assert outcome.outcome == "received"
    receipt = container.read_log(0, 10)[-1]
    assert names_in_log(container) == ["InboxReceiptReceived"]
    assert receipt.data["outcome"] == "received: not acted on"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"change_type": "create", "chat_id": ""}, "ChatId"),
        ({"change_type": "create", "chat_id": "bad id!"}, "ChatId"),
        ({"change_type": "update", "chat_id": CHAT}, "UpdateDetail"),
        ({"change_type": "rename", "chat_id": CHAT}, "ChangeType"),
        (
            {
                "change_type": "update",
                "chat_id": CHAT,
                "update_detail": "add_member",
                "members": ("wm<script>",),
            },
            "MemChangeList",
        ),
    ],
)
def test_a_malformed_group_change_names_its_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        GroupChange(digest="d", **fields)
    assert refused.value.field == field


def test_member_lists_are_read_nested_or_in_the_older_flat_form() -> None:
    nested = (
        "<xml><MemChangeList><Item><![CDATA[wmA]]></Item><Item>zhang.wei</Item>"
        "</MemChangeList></xml>"
    )
    flat = "<xml><MemChangeList><![CDATA[wmA,zhang.wei]]></MemChangeList></xml>"

    assert xml_items(nested, "MemChangeList") == ["wmA", "zhang.wei"]
    assert xml_items(flat, "MemChangeList") == ["wmA", "zhang.wei"]
    assert xml_items("<xml><ChatId>x</ChatId></xml>", "MemChangeList") == []


def test_the_read_model_shows_each_group_with_its_members(
    app: CustomersApp, container: Container
) -> None:
    hire(app, "a")
    customer = app.add_customer(
        identities=[("wecom_external_userid", "wmKnown")], tags=[], owner=None, meta=meta()
    )
    change(app, 0, "create", owner="a", name="VIP")
    change(app, 10, "update", "add_member", members=["wmKnown", "wmLater", "a"], join_scene=0)
    change(app, 20, "update", "del_member", members=["wmKnown"], quit_scene=0)
    change(app, 5, "create", chat_id="wrOther", owner="b")
    change(app, 30, "dismiss", chat_id="wrOther")
    # wmLater becomes a customer after joining: the group shows the link all the same.
    later = app.add_customer(
        identities=[("wecom_external_userid", "wmLater")], tags=[], owner=None, meta=meta()
    )
    project(container)

    group = get_group(container.read_db, CHAT)
    assert group is not None
    assert (group["owner"], group["name"], group["status"], group["member_count"]) == (
        "a",
        "VIP",
        "active",
        2,
    )
    assert [(m["userid"], m["status"], m["customer_id"]) for m in group["members"]] == [
        ("a", "joined", None),
        ("wmLater", "joined", later.id),
        ("wmKnown", "quit", customer.id),
    ]
    db = container.read_db
    assert [g["chat_id"] for g in list_groups(db)] == [CHAT, "wrOther"]
    assert [g["chat_id"] for g in list_groups(db, status="dismissed")] == ["wrOther"]
    assert [g["chat_id"] for g in list_groups(db, owner="a")] == [CHAT]
    assert [g["chat_id"] for g in list_groups(db, department="east")] == [CHAT]
    assert get_group(db, "wrNobody") is None


@embedded_only
def test_a_busy_group_reloads_from_its_snapshot_with_the_same_members(
    app: CustomersApp, container: Container
) -> None:
    change(app, 0, "create")
    for n in range(110):
        detail = "add_member" if n % 3 else "del_member"
        change(app, n + 1, "update", detail, members=[f"wm{n % 7}"])
    group_id = CustomerGroup.create_id(CHAT)
    assert app.snapshots is not None
    assert [s.originator_version for s in app.snapshots.get(group_id)] == [100]

    fresh = bootstrap(container.settings)  # another process: nothing cached
    try:
        loaded = fresh.customers.repository.get(group_id)
        replayed = None
        for event in fresh.customers.events.get(group_id):
            replayed = event.mutate(replayed)
        assert isinstance(loaded, CustomerGroup) and isinstance(replayed, CustomerGroup)
        assert loaded.version == replayed.version == 111
        assert loaded.members == replayed.members and loaded.as_of == replayed.as_of
    finally:
        fresh.close()
