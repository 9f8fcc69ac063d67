"""Staff handover (离职继承 / 在职转接): customers, open tickets and groups go to a named colleague
or round-robin to the least loaded in the department, skipping the departed and the full;
WeCom's refusals stay pending with its reason until retried; a repeated command records
nothing twice; the new owner reads the customer's history, under the archive's usual rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from api.routes.conversations import _participants
from domain.customers.groups import GroupChange
from domain.customers.wecom import ContactChange
from domain.scope import Scope
from domain.shared import Conflict, Forbidden, InvalidInput, NotFound
from infra.bootstrap import Container
from infra.wecom.transfers import RecordingWecomTransfers
from tests.factories import meta
from tests.unit.world import embedded_only, hire, names_in_log, project

ADMIN = Scope("admin", subject="hr")
pytestmark = embedded_only  # no store-specific behaviour: PostgreSQL runs in e2e


def customers_of(c: Container, owner: str, *userids: str) -> list[str]:
    return [
        c.customers.add_customer(
            identities=[("wecom_external_userid", u)], tags=[], owner=owner, meta=meta()
        ).id
        for u in userids
    ]


def start(c: Container, **overrides: Any) -> Any:
    request: dict[str, Any] = {
        "kind": "transfer", "from_staff": "a", "to_staff": None, "department": "east",
        "reason": "moved to the west office", "key": None, "customer_limit": None,
        "scope": ADMIN, "meta": meta(actor="user:hr"),
    }  # fmt: skip
    return c.handover.start(**{**request, **overrides})


def owner(c: Container, customer_id: str) -> str | None:
    return c.customers.get_customer(UUID(customer_id), ADMIN).owner  # type: ignore[no-any-return]


def transfers(c: Container) -> RecordingWecomTransfers:
    assert isinstance(c.handover.transfers, RecordingWecomTransfers)
    return c.handover.transfers


def test_round_robin_goes_to_the_least_loaded_skipping_the_departed_and_the_full(
    container: Container,
) -> None:
    c = container
    hire(c.customers, "a", "b", "c", "d")
    c.customers.record_departure("d", reason="left", meta=meta())
    customers_of(c, "b", "wm-b1", "wm-b2")
    mine = customers_of(c, "a", "wm-1", "wm-2", "wm-3", "wm-4", "wm-5")
    c.customers.apply_group_change(
        GroupChange("create", "wrChat1", "g-1", owner="a", name="老客户群"), meta(source="wecom")
    )
    project(c)

    answer = start(c, customer_limit=3)

    # c (0) takes two, then b (2) and c tie at 2 and b goes first by id, then c; both are full
    # at 3, so the fifth waits: nobody in the department can take more customers.
    assert [owner(c, m) for m in mine[:4]] == ["c", "c", "b", "c"]
    assert owner(c, mine[4]) == "a"
    items = {i["item"]: i for i in answer.items}
    assert (items[f"customer:{mine[4]}"]["status"], items[f"customer:{mine[4]}"]["reason"]) == (
        "pending",
        "no_receiver",
    )
    assert items["group:wrChat1"]["to"] == "b"  # groups are balanced by groups held
    assert answer.status == "open"
    calls = transfers(c).calls
    assert {call["takeover_userid"] for call in calls if "takeover_userid" in call} == {"b", "c"}
    assert all(call["api"] != "resigned/transfer_customer" for call in calls)  # 在职转接


def test_wecom_refusals_stay_pending_with_the_reason_and_a_retry_hands_them_over(
    container: Container,
) -> None:
    c = container
    hire(c.customers, "a", "b", "c")
    first, second = customers_of(c, "a", "wm-1", "wm-2")
    project(c)
    transfers(c).refuse["wm-2"] = 40099  # WeCom: the receiver is at their limit

    answer = start(c, to_staff="b", department=None, key="a-to-b")
    assert answer.pending == 1 and owner(c, first) == "b" and owner(c, second) == "a"
    refused = next(i for i in answer.items if i["ref"] == second)
    assert refused["reason"] == "customer_limit_exceed"

    # Within 24 hours the first customer refuses (客户拒绝): WeCom's transfer_fail callback.
    c.customers.apply_contact_change(
        ContactChange("transfer_fail", "b", "wm-1", "digest-tf-1", datetime.now(UTC),
                      fail_reason="customer_refused"),
        meta(actor="integration:wecom", source="wecom"),
    )  # fmt: skip
    project(c)
    assert c.handover_follower is not None
    c.handover_follower.run_once()
    c.handover_follower.run_once()  # the same failure again: nothing more
    assert owner(c, first) == "a"  # WeCom keeps the customer with a
    shown = c.handover.handover("a-to-b")
    assert shown.items[f"customer:{first}"]["reason"] == "customer_refused"
    assert names_in_log(c).count("HandoverItemPending") == 2

    retried = c.handover.retry("a-to-b", items=None, to_staff="c", scope=ADMIN, meta=meta())
    assert retried.status == "completed" and retried.pending == 0
    assert (owner(c, first), owner(c, second)) == ("c", "c")
    head = c.head()
    again = c.handover.retry("a-to-b", items=None, to_staff="c", scope=ADMIN, meta=meta())
    assert again.position is None and c.head() == head
    assert names_in_log(c).count("HandoverItemRetried") == 2
    assert names_in_log(c).count("HandoverCompleted") == 1


def test_the_same_start_twice_records_nothing_twice_and_another_request_is_refused(
    container: Container,
) -> None:
    c = container
    hire(c.customers, "a", "b")
    customers_of(c, "a", "wm-1")
    project(c)
    first = start(c, to_staff="b", department=None, key="k-1")
    head = c.head()
    again = start(c, to_staff="b", department=None, key="k-1")
    assert again.position is None and c.head() == head and again.status == "completed"
    assert len(transfers(c).calls) == 1
    assert first.items == again.items
    with pytest.raises(Conflict) as other:
        start(c, key="k-1")
    assert other.value.code == "handover_exists" and c.head() == head


def test_impossible_handovers_are_refused_and_record_nothing(container: Container) -> None:
    c = container
    hire(c.customers, "a", "b", "gone")
    hire(c.customers, "w", department="west")
    c.customers.record_departure("gone", reason="left", meta=meta())
    project(c)
    head = c.head()
    refusals: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"to_staff": "a", "department": None}, Conflict, "handover_to_self"),
        ({"to_staff": "gone", "department": None}, Conflict, "receiver_departed"),
        ({"to_staff": "nobody", "department": None}, NotFound, "not_found"),
        ({"from_staff": "nobody"}, NotFound, "not_found"),
        ({"kind": "departure"}, Conflict, "staff_not_departed"),
        ({"kind": "retire"}, InvalidInput, "invalid_input"),
        ({"to_staff": "b"}, InvalidInput, "invalid_input"),  # a colleague and a department
        ({"department": "nowhere"}, Conflict, "no_receiver"),
        ({"customer_limit": 0}, InvalidInput, "invalid_input"),
        ({"scope": Scope("manager", department="west")}, Forbidden, "forbidden"),
        ({"to_staff": "w", "department": None, "scope": Scope("manager", department="east")},
         Forbidden, "forbidden"),
    ]  # fmt: skip
    for overrides, error, code in refusals:
        with pytest.raises(error) as refused:
            start(c, **overrides)
        assert refused.value.code == code, overrides  # type: ignore[attr-defined]
    assert c.head() == head


def test_a_departure_hands_over_open_tickets_and_the_new_owner_reads_the_history(
    container: Container,
) -> None:
    from tests.unit.test_tickets import INSTALLATION, open_one

    c = container
    hire(c.customers, "a", "b")
    hire(c.customers, "w", department="west")
    (customer,) = customers_of(c, "a", "wmCustomer0001")
    c.tickets.define_workflow(INSTALLATION, meta())
    ticket = open_one(c.tickets, customer_id=UUID(customer), assignee="a")
    c.conversations.ingest(
        [{"seq": 1, "msgid": "m1", "action": "send", "from": "a", "tolist": ["wmCustomer0001"],
          "roomid": "", "msgtime": 1_767_000_000_000, "msgtype": "text",
          "text": {"content": "您好"}}],
        meta(),
    )  # fmt: skip
    c.customers.record_departure("a", reason="resigned", meta=meta())
    project(c)

    answer = start(c, kind="departure", to_staff="b", department=None)

    assert answer.status == "completed"
    assert c.tickets.get_ticket(UUID(ticket)).assignee == "b"
    assert transfers(c).calls[0]["api"] == "resigned/transfer_customer"  # 离职继承
    project(c)
    # The new owner reads the whole conversation, the one who left no longer, and a manager
    # of another department not at all: the archive's rules, as for any customer of theirs.
    assert _participants(c, Scope("staff", staff_id="b"), UUID(customer), None) == [
        "wmCustomer0001"
    ]
    assert _participants(c, Scope("manager", department="east"), UUID(customer), None)
    for outsider in (Scope("staff", staff_id="a"), Scope("manager", department="west")):
        with pytest.raises(Forbidden):
            _participants(c, outsider, UUID(customer), None)
